//! The monthly bill of one target at one traffic level, as priced line items.
//!
//! Traffic is page views at the load balancer: each renders the web page (the `web_index`
//! scenario), which calls the api once. Only production (AWS) and the project (Northflank)
//! receive it; staging idles.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::inputs::{
    AwsEnvironment, EcsService, Measurements, NorthflankAddon, NorthflankJob, NorthflankProject,
    NorthflankService,
};
use super::prices::{Price, PriceTable};

pub const NETWORK: &str = "network";
pub const LOAD_BALANCING: &str = "load balancing";
pub const COMPUTE: &str = "compute";
pub const DATABASE: &str = "database";
pub const OBSERVABILITY: &str = "observability";
pub const SECRETS: &str = "encryption and secrets";
pub const REGISTRY: &str = "CI/registry storage";
/// The order the tables list concerns in.
pub const CONCERNS: [&str; 7] = [
    NETWORK,
    LOAD_BALANCING,
    COMPUTE,
    DATABASE,
    OBSERVABILITY,
    SECRETS,
    REGISTRY,
];

/// Migration runs a month, for the Lambda item: one per deploy, a deploy a day (an assumption,
/// not a measurement; at the function's timeout, so an upper bound per run).
pub const DEPLOYS_PER_MONTH: f64 = 30.0;
const GB: f64 = 1e9;
/// AWS's first egress tier: 10 TB a month.
const FIRST_EGRESS_TIER_GB: f64 = 10_000.0;

/// One line of a bill. `usd: None` is unpriced or unmeasured: listed, never added.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub concern: String,
    pub item: String,
    pub quantity: String,
    pub usd: Option<f64>,
}

/// Workload → instances running at a traffic level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instances {
    /// What the measured capacity needs at the scaling target.
    pub needed: u32,
    /// What runs: `needed` within the scaling bounds (AWS) or at least the template's count
    /// (Northflank, which this template does not autoscale).
    pub running: u32,
    /// `needed` exceeds what the configuration allows.
    pub short: bool,
}

/// The bill of one target (an AWS environment, or the Northflank project).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bill {
    pub items: Vec<Item>,
    pub instances: BTreeMap<String, Instances>,
}

impl Bill {
    /// The sum of the priced items.
    pub fn total(&self) -> f64 {
        self.items.iter().filter_map(|i| i.usd).sum()
    }

    /// Every item is priced.
    pub fn complete(&self) -> bool {
        self.items.iter().all(|i| i.usd.is_some())
    }

    /// Concern → sum of its priced items, `None` when one of them is unpriced.
    pub fn by_concern(&self) -> BTreeMap<&str, (f64, bool)> {
        let mut out: BTreeMap<&str, (f64, bool)> = BTreeMap::new();
        for item in &self.items {
            let entry = out.entry(&item.concern).or_insert((0.0, true));
            match item.usd {
                Some(usd) => entry.0 += usd,
                None => entry.1 = false,
            }
        }
        out
    }
}

/// The traffic a bill is computed for.
#[derive(Debug, Clone, Copy)]
pub struct Traffic {
    pub requests_per_second: f64,
    pub hours: f64,
}

impl Traffic {
    fn requests_per_month(self) -> f64 {
        self.requests_per_second * 3600.0 * self.hours
    }
}

struct Biller<'a> {
    prices: &'a PriceTable,
    hours: f64,
    items: Vec<Item>,
}

impl<'a> Biller<'a> {
    fn new(prices: &'a PriceTable) -> Self {
        Self {
            prices,
            hours: prices.hours_per_month,
            items: Vec::new(),
        }
    }

    /// Adds `quantity` units of `price`.
    fn add(
        &mut self,
        concern: &str,
        item: impl Into<String>,
        quantity: f64,
        unit: &str,
        price: &Price,
    ) {
        self.items.push(Item {
            concern: concern.to_owned(),
            item: item.into(),
            quantity: format!("{} {unit}", round_quantity(quantity)),
            usd: price.usd.map(|p| cents(p * quantity)),
        });
    }

    /// Adds an item no price or measurement covers.
    fn unpriced(&mut self, concern: &str, item: impl Into<String>, why: &str) {
        self.items.push(Item {
            concern: concern.to_owned(),
            item: item.into(),
            quantity: why.to_owned(),
            usd: None,
        });
    }
}

fn cents(usd: f64) -> f64 {
    (usd * 100.0).round() / 100.0
}

fn round_quantity(q: f64) -> String {
    if q == q.round() {
        format!("{q:.0}")
    } else if q >= 10.0 {
        format!("{q:.1}")
    } else {
        format!("{q:.3}")
    }
}

/// Instances one workload needs: none without traffic, else enough to stay at the target
/// utilisation with the measured requests/s per vCPU.
pub fn needed(rps: f64, per_vcpu: f64, vcpu: f64, utilisation: f64) -> u32 {
    if rps <= 0.0 {
        return 0;
    }
    let per_instance = per_vcpu * vcpu * utilisation;
    if per_instance <= 0.0 {
        return u32::MAX;
    }
    (rps / per_instance).ceil() as u32
}

fn ecs_instances(service: &EcsService, name: &str, rps: f64, measured: &Measurements) -> Instances {
    let per_vcpu = measured.requests_per_vcpu.get(name).copied().unwrap_or(0.0);
    let needed = needed(rps, per_vcpu, service.vcpu, service.target_utilisation);
    Instances {
        needed,
        running: needed.clamp(service.min, service.max),
        short: needed > service.max,
    }
}

/// The month of one AWS environment.
pub fn aws_bill(
    env: &AwsEnvironment,
    traffic: Traffic,
    measured: &Measurements,
    prices: &PriceTable,
) -> Bill {
    let mut b = Biller::new(prices);
    let mut instances = BTreeMap::new();
    aws_network(&mut b, env, traffic, measured);
    aws_load_balancing(&mut b, env, traffic, measured);
    for (name, service) in &env.services {
        let count = ecs_instances(service, name, traffic.requests_per_second, measured);
        aws_task(&mut b, name, service, count.running);
        instances.insert(name.clone(), count);
    }
    aws_lambda(&mut b, env);
    aws_database(&mut b, env);
    aws_observability(&mut b, env, traffic, measured);
    let a = &prices.aws;
    b.add(
        SECRETS,
        "KMS customer managed keys",
        env.kms_keys as f64,
        "keys",
        &a.kms_key_month,
    );
    b.add(
        SECRETS,
        "Secrets Manager secrets",
        env.secrets as f64,
        "secrets",
        &a.secret_month,
    );
    aws_registry(&mut b, env, measured);
    Bill {
        items: b.items,
        instances,
    }
}

fn log_gb_per_month(env: &AwsEnvironment, traffic: Traffic, measured: &Measurements) -> f64 {
    env.log_groups
        .iter()
        .filter_map(|g| g.service.as_ref())
        .filter_map(|s| measured.log_bytes_per_request.get(s))
        .map(|bytes| bytes * traffic.requests_per_month() / GB)
        .sum()
}

fn aws_network(b: &mut Biller, env: &AwsEnvironment, traffic: Traffic, measured: &Measurements) {
    let (prices, hours) = (b.prices, b.hours);
    let a = &prices.aws;
    b.add(
        NETWORK,
        "NAT gateways",
        env.nat_gateways as f64 * hours,
        "gateway-hours",
        &a.nat_gateway_hour,
    );
    b.add(
        NETWORK,
        "NAT gateway public IPv4 addresses",
        env.elastic_ips as f64 * hours,
        "address-hours",
        &a.public_ipv4_hour,
    );
    // Nothing the services do needs the internet: image layers come through the S3 gateway
    // endpoint, ECR, logs and secrets through interface endpoints.
    let item = "NAT data processing (AWS traffic goes through the VPC endpoints)";
    b.add(NETWORK, item, 0.0, "GB", &a.nat_gateway_gb);
    b.add(
        NETWORK,
        "interface endpoints (per Availability Zone)",
        env.endpoint_zones as f64 * hours,
        "endpoint-hours",
        &a.interface_endpoint_hour,
    );
    // Service logs reach CloudWatch through the logs endpoint, or through NAT without one.
    let logs = log_gb_per_month(env, traffic, measured);
    if env.endpoint_zones > 0 {
        let item = "interface endpoint processing (service logs to CloudWatch)";
        b.add(NETWORK, item, logs, "GB", &a.interface_endpoint_gb);
    } else {
        let item = "NAT processing of the service logs (no logs endpoint)";
        b.add(NETWORK, item, logs, "GB", &a.nat_gateway_gb);
    }
    aws_egress(
        b,
        measured.response_bytes * traffic.requests_per_month() / GB,
    );
    let why = "not measured: flow records per request are not benchmarked";
    b.unpriced(NETWORK, "VPC flow log ingestion", why);
}

/// Pages to users, priced in tiers: the first 10 TB a month, then the next 40 TB.
fn aws_egress(b: &mut Biller, gb: f64) {
    let prices = b.prices;
    let a = &prices.aws;
    let first = gb.min(FIRST_EGRESS_TIER_GB);
    let item = "data transfer out (pages to users), first 10 TB";
    b.add(NETWORK, item, first, "GB", &a.data_transfer_out_gb);
    if gb > FIRST_EGRESS_TIER_GB {
        let next = (gb - FIRST_EGRESS_TIER_GB).min(4.0 * FIRST_EGRESS_TIER_GB);
        let item = "data transfer out (pages to users), next 40 TB";
        b.add(NETWORK, item, next, "GB", &a.data_transfer_out_gb_next_40tb);
    }
    if gb > 5.0 * FIRST_EGRESS_TIER_GB {
        let why = "no price for that tier in docs/prices.toml";
        b.unpriced(NETWORK, "data transfer out beyond 50 TB", why);
    }
}

fn aws_load_balancing(
    b: &mut Biller,
    env: &AwsEnvironment,
    traffic: Traffic,
    measured: &Measurements,
) {
    let (prices, hours) = (b.prices, b.hours);
    let a = &prices.aws;
    for lb in &env.load_balancers {
        b.add(
            LOAD_BALANCING,
            "Application Load Balancer",
            hours,
            "hours",
            &a.alb_hour,
        );
        b.add(
            LOAD_BALANCING,
            "load balancer public IPv4 addresses (one per zone)",
            lb.public_addresses as f64 * hours,
            "address-hours",
            &a.public_ipv4_hour,
        );
        // LCUs: the larger of GB processed per hour and new connections / 25 (each request a
        // new connection: the worst case). Rule evaluations stay within the 10 free ones.
        let gb_per_hour = measured.response_bytes * traffic.requests_per_second * 3600.0 / GB;
        let connections = traffic.requests_per_second / 25.0;
        b.add(
            LOAD_BALANCING,
            "load balancer capacity units",
            gb_per_hour.max(connections) * hours,
            "LCU-hours",
            &a.alb_lcu_hour,
        );
    }
}

fn aws_task(b: &mut Biller, name: &str, service: &EcsService, tasks: u32) {
    let (prices, hours) = (b.prices, b.hours);
    let a = &prices.aws;
    let task_hours = f64::from(tasks) * hours;
    b.add(
        COMPUTE,
        format!("{name}: Fargate vCPU ({tasks} × {} vCPU)", service.vcpu),
        task_hours * service.vcpu,
        "vCPU-hours",
        &a.fargate_vcpu_hour,
    );
    b.add(
        COMPUTE,
        format!(
            "{name}: Fargate memory ({tasks} × {} GB)",
            service.memory_gb
        ),
        task_hours * service.memory_gb,
        "GB-hours",
        &a.fargate_gb_hour,
    );
}

fn aws_lambda(b: &mut Biller, env: &AwsEnvironment) {
    let prices = b.prices;
    let a = &prices.aws;
    for lambda in &env.lambdas {
        let runs = DEPLOYS_PER_MONTH;
        b.add(
            COMPUTE,
            "migration Lambda runs (one per deploy, a deploy a day)",
            runs / 1e6,
            "million requests",
            &a.lambda_requests_million,
        );
        b.add(
            COMPUTE,
            "migration Lambda duration (at its timeout: an upper bound)",
            runs * lambda.timeout_seconds * lambda.memory_gb,
            "GB-seconds",
            &a.lambda_gb_second,
        );
    }
}

fn aws_database(b: &mut Biller, env: &AwsEnvironment) {
    let (prices, hours) = (b.prices, b.hours);
    let a = &prices.aws;
    for db in &env.databases {
        let copies = if db.multi_az { 2.0 } else { 1.0 };
        let layout = if db.multi_az {
            "Multi-AZ: primary and standby"
        } else {
            "Single-AZ"
        };
        let item = format!("RDS {} ({layout})", db.instance_class);
        match a.rds_instance_hour.get(&db.instance_class) {
            Some(price) => b.add(DATABASE, item, copies * hours, "instance-hours", price),
            None => b.unpriced(DATABASE, item, "instance class not in docs/prices.toml"),
        }
        b.add(
            DATABASE,
            format!("RDS gp3 storage ({layout})"),
            copies * db.storage_gb,
            "GB-months",
            &a.rds_gp3_gb_month,
        );
    }
}

fn aws_observability(
    b: &mut Biller,
    env: &AwsEnvironment,
    traffic: Traffic,
    measured: &Measurements,
) {
    let prices = b.prices;
    let a = &prices.aws;
    let days_per_month = b.hours / 24.0;
    for group in &env.log_groups {
        let Some(service) = &group.service else {
            continue;
        };
        let bytes = measured
            .log_bytes_per_request
            .get(service)
            .copied()
            .unwrap_or(0.0);
        let ingest = bytes * traffic.requests_per_month() / GB;
        b.add(
            OBSERVABILITY,
            format!("{service} logs ingested"),
            ingest,
            "GB",
            &a.logs_ingest_gb,
        );
        // Steady state: a retention period's worth of months stored (uncompressed bytes; AWS
        // bills the compressed size, so an upper bound).
        let months = f64::from(group.retention_days.unwrap_or(365)) / days_per_month;
        b.add(
            OBSERVABILITY,
            format!(
                "{service} logs stored ({} days' retention, steady state)",
                group.retention_days.unwrap_or(365)
            ),
            ingest * months,
            "GB-months",
            &a.logs_storage_gb_month,
        );
    }
    b.add(
        OBSERVABILITY,
        "metric alarms",
        env.alarms as f64,
        "alarms",
        &a.alarm_month,
    );
    b.add(
        OBSERVABILITY,
        "dashboards",
        env.dashboards as f64,
        "dashboards",
        &a.dashboard_month,
    );
}

fn aws_registry(b: &mut Biller, env: &AwsEnvironment, measured: &Measurements) {
    let prices = b.prices;
    let a = &prices.aws;
    let kept = env.images_kept.unwrap_or(1) as f64;
    let gb: f64 = env
        .ecr_repositories
        .iter()
        .filter_map(|repo| measured.image_bytes.get(repo))
        .map(|bytes| bytes * kept / GB)
        .sum();
    b.add(
        REGISTRY,
        format!(
            "ECR images ({} repositories × {kept} kept; binary size, a lower bound)",
            env.ecr_repositories.len()
        ),
        gb,
        "GB-months",
        &a.ecr_gb_month,
    );
}

/// The month of the Northflank project: each service at the instances its autoscaling runs,
/// the migration job's runs, the database addon, egress.
pub fn northflank_bill(
    project: &NorthflankProject,
    traffic: Traffic,
    measured: &Measurements,
    prices: &PriceTable,
) -> Bill {
    let mut b = Biller::new(prices);
    let mut instances = BTreeMap::new();
    for (name, service) in &project.services {
        if let Some(count) = northflank_service(&mut b, name, service, traffic, measured) {
            instances.insert(name.clone(), count);
        }
    }
    for job in &project.jobs {
        northflank_job(&mut b, job);
    }
    for addon in &project.addons {
        northflank_addon(&mut b, addon);
    }
    b.add(
        NETWORK,
        "egress (pages to users)",
        page_gb(traffic, measured),
        "GB",
        &prices.northflank.egress_gb,
    );
    Bill {
        items: b.items,
        instances,
    }
}

/// GB of pages a month returns to users.
pub fn page_gb(traffic: Traffic, measured: &Measurements) -> f64 {
    measured.response_bytes * traffic.requests_per_month() / GB
}

/// `hours` of one `plan` instance, billed for its vCPU and its memory; false when the table
/// has no such plan (then the item is listed unpriced).
fn northflank_plan(b: &mut Biller, concern: &str, what: &str, plan: &str, hours: f64) -> bool {
    let prices = b.prices;
    let n = &prices.northflank;
    let Some(size) = n.plans.get(plan) else {
        b.unpriced(
            concern,
            format!("{what}: plan {plan}"),
            "plan not in docs/prices.toml",
        );
        return false;
    };
    b.add(
        concern,
        format!("{what}: {plan} vCPU ({} vCPU)", size.vcpu),
        hours * size.vcpu,
        "vCPU-hours",
        &n.vcpu_hour,
    );
    b.add(
        concern,
        format!("{what}: {plan} memory ({} GB)", size.memory_gb()),
        hours * size.memory_gb(),
        "GB-hours",
        &n.memory_gb_hour,
    );
    true
}

/// A service's instances: what the measured capacity of its plan's vCPU needs at its
/// autoscaling threshold, within the template's bounds.
fn northflank_service(
    b: &mut Biller,
    name: &str,
    service: &NorthflankService,
    traffic: Traffic,
    measured: &Measurements,
) -> Option<Instances> {
    let vcpu = b.prices.northflank.plans.get(&service.plan).map(|p| p.vcpu);
    let per_vcpu = measured.requests_per_vcpu.get(name).copied().unwrap_or(0.0);
    let needed = vcpu.map(|vcpu| {
        needed(
            traffic.requests_per_second,
            per_vcpu,
            vcpu,
            service.target_utilisation,
        )
    });
    let running = needed.map_or(service.min, |n| n.clamp(service.min, service.max));
    let what = format!("{name} ({running} instances)");
    let hours = f64::from(running) * b.hours;
    if !northflank_plan(b, COMPUTE, &what, &service.plan, hours) {
        return None;
    }
    let needed = needed.unwrap_or(0);
    Some(Instances {
        needed,
        running,
        short: needed > service.max,
    })
}

/// The migration job: one run per deploy, each at its deadline (an upper bound), as the AWS
/// side bills its Lambda.
fn northflank_job(b: &mut Biller, job: &NorthflankJob) {
    let Some(deadline) = job.deadline_seconds else {
        let item = format!("{} job runs", job.name);
        b.unpriced(
            COMPUTE,
            item,
            "the template sets no run deadline to bound a run",
        );
        return;
    };
    let hours = DEPLOYS_PER_MONTH * deadline / 3600.0;
    let what = format!(
        "{} job ({DEPLOYS_PER_MONTH} runs × {deadline} s deadline, an upper bound)",
        job.name
    );
    northflank_plan(b, COMPUTE, &what, &job.plan, hours);
}

fn northflank_addon(b: &mut Biller, addon: &NorthflankAddon) {
    let replicas = f64::from(addon.replicas);
    let what = format!("{} ({} replicas)", addon.name, addon.replicas);
    northflank_plan(b, DATABASE, &what, &addon.plan, replicas * b.hours);
    let storage = addon.storage_gb * replicas;
    let item = format!("{}: storage", addon.name);
    let prices = b.prices;
    let price = &prices.northflank.addon_storage_gb_month;
    b.add(DATABASE, item, storage, "GB-months", price);
}

#[cfg(test)]
mod tests {
    use super::needed;

    #[test]
    fn instances_follow_capacity_and_headroom() {
        assert_eq!(needed(0.0, 3000.0, 0.25, 0.6), 0, "no traffic, no need");
        assert_eq!(needed(10.0, 3000.0, 0.25, 0.6), 1);
        // 3000 req/s per vCPU × 0.25 vCPU × 60 % = 450 req/s per task.
        assert_eq!(needed(450.0, 3000.0, 0.25, 0.6), 1);
        assert_eq!(needed(451.0, 3000.0, 0.25, 0.6), 2);
        assert_eq!(needed(500.0, 3000.0, 1.0, 0.6), 1);
    }
}
