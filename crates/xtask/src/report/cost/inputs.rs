//! What the cost model reads: the billable parts of each AWS environment (its render), the
//! Northflank project (the template), the services' sizes (the catalog) and the measured
//! capacity (the benchmark results).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::super::benchmarks::Results;
use super::super::render::{Node, Template, Terraform};
use super::super::sizes::{DbInstanceResource, Scalar};

/// The billable parts of one AWS environment.
#[derive(Debug, Clone)]
pub struct AwsEnvironment {
    pub name: String,
    pub nat_gateways: usize,
    /// Elastic IPs (the NAT gateways' public addresses).
    pub elastic_ips: usize,
    /// Interface endpoints × the Availability Zones each is in.
    pub endpoint_zones: usize,
    pub load_balancers: Vec<LoadBalancer>,
    pub services: BTreeMap<String, EcsService>,
    pub databases: Vec<Database>,
    pub log_groups: Vec<LogGroup>,
    pub alarms: usize,
    pub dashboards: usize,
    pub kms_keys: usize,
    /// Secrets Manager secrets, the RDS-managed master password included.
    pub secrets: usize,
    pub ecr_repositories: Vec<String>,
    /// Images each repository keeps (its lifecycle policy's `imageCountMoreThan`).
    pub images_kept: Option<u64>,
    pub lambdas: Vec<Lambda>,
}

#[derive(Debug, Clone)]
pub struct LoadBalancer {
    /// One public IPv4 address per subnet (Availability Zone) of an internet-facing one.
    pub public_addresses: usize,
}

/// An ECS service: the catalog's task size, the render's scaling bounds and target.
#[derive(Debug, Clone)]
pub struct EcsService {
    pub vcpu: f64,
    pub memory_gb: f64,
    pub min: u32,
    pub max: u32,
    /// Target CPU utilisation of the scaling policy, as a fraction.
    pub target_utilisation: f64,
}

#[derive(Debug, Clone)]
pub struct Database {
    pub instance_class: String,
    pub storage_gb: f64,
    pub multi_az: bool,
}

#[derive(Debug, Clone)]
pub struct LogGroup {
    pub name: String,
    /// The workload whose stdout it receives, when it is a service's.
    pub service: Option<String>,
    pub retention_days: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Lambda {
    pub memory_gb: f64,
    pub timeout_seconds: f64,
}

/// The billable parts of the Northflank project.
#[derive(Debug, Clone)]
pub struct NorthflankProject {
    /// Service name → plan and scaling.
    pub services: BTreeMap<String, NorthflankService>,
    pub jobs: Vec<NorthflankJob>,
    pub addons: Vec<NorthflankAddon>,
}

/// A deployment service: its plan, and the template's horizontal autoscaling (bounds and CPU
/// threshold), or its fixed instance count when it does not autoscale.
#[derive(Debug, Clone)]
pub struct NorthflankService {
    pub plan: String,
    pub min: u32,
    pub max: u32,
    /// CPU threshold of the autoscaling, as a fraction (1.0 without one).
    pub target_utilisation: f64,
}

/// A job: run on demand (the migration, once per deploy), each run within its deadline.
#[derive(Debug, Clone)]
pub struct NorthflankJob {
    pub name: String,
    pub plan: String,
    pub deadline_seconds: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct NorthflankAddon {
    pub name: String,
    pub plan: String,
    pub replicas: u32,
    pub storage_gb: f64,
}

/// Measured figures the traffic-dependent items use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurements {
    /// Service → requests/s one vCPU serves (benchmark req/s ÷ the machine's cores).
    pub requests_per_vcpu: BTreeMap<String, f64>,
    /// Service → bytes it logs per request (log bytes ÷ log lines: one line per request).
    pub log_bytes_per_request: BTreeMap<String, f64>,
    /// Bytes the load balancer returns per page view (the web page scenario's response).
    pub response_bytes: f64,
    /// Image (ECR repository) → bytes of its service binary: a lower bound of the image.
    pub image_bytes: BTreeMap<String, f64>,
    /// Where each figure comes from.
    pub source: String,
}

/// The scenario whose throughput stands for each service: the web page (which calls the api)
/// and the api's list (a page's api call).
const CAPACITY_SCENARIOS: [(&str, &str); 2] = [("web", "web_index"), ("api", "api_list")];
const PAGE_SCENARIO: &str = "web_index";

impl Measurements {
    pub fn read(results: Option<&Results>) -> Result<Self> {
        let Some(results) = results else {
            bail!(
                "the cost figures need {}: run `cargo xtask bench`",
                super::super::BENCHMARKS
            );
        };
        let cores = results
            .machine
            .cores
            .as_ref()
            .and_then(serde_json::Number::as_f64)
            .filter(|c| *c > 0.0)
            .context("benchmarks/results.json: machine.cores is missing")?;
        let mut requests_per_vcpu = BTreeMap::new();
        for (service, scenario) in CAPACITY_SCENARIOS {
            let rps = scenario_number(results, scenario, |s| s.requests_per_second.as_ref())?;
            requests_per_vcpu.insert(service.to_owned(), rps / cores);
        }
        let mut log_bytes_per_request = BTreeMap::new();
        for (service, output) in &results.log_output {
            if let (Some(bytes), Some(lines)) = (output.bytes, output.lines)
                && lines > 0
            {
                log_bytes_per_request.insert(service.clone(), bytes as f64 / lines as f64);
            }
        }
        if log_bytes_per_request.is_empty() {
            bail!("benchmarks/results.json: log_output (bytes and lines per service) is missing");
        }
        let image_bytes = results
            .sizes
            .iter()
            .filter(|a| a.kind.as_deref() == Some("service binary"))
            .filter_map(|a| Some((a.name.clone()?, a.bytes.as_ref()?.as_f64()?)))
            .collect();
        Ok(Self {
            requests_per_vcpu,
            log_bytes_per_request,
            image_bytes,
            response_bytes: scenario_number(results, PAGE_SCENARIO, |s| {
                s.bytes_per_response.as_ref()
            })?,
            source: "benchmarks/results.json: scenarios web_index and api_list (requests_per_second, bytes_per_response), machine.cores, log_output (bytes, lines), sizes (service binaries)".to_owned(),
        })
    }
}

fn scenario_number(
    results: &Results,
    scenario: &str,
    field: impl Fn(&super::super::benchmarks::ResultsScenario) -> Option<&serde_json::Number>,
) -> Result<f64> {
    results
        .scenario(scenario)
        .and_then(field)
        .and_then(serde_json::Number::as_f64)
        .with_context(|| {
            format!(
                "benchmarks/results.json: scenario {scenario} lacks the figure the cost model reads"
            )
        })
}

// Typed views of the render resources the cost model reads.

#[derive(Debug, Deserialize)]
struct EndpointResource {
    #[serde(default)]
    vpc_endpoint_type: Option<String>,
    #[serde(default)]
    subnet_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct LoadBalancerResource {
    #[serde(default)]
    internal: Option<bool>,
    #[serde(default)]
    subnets: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct EcsServiceResource {
    task_definition: String,
}

#[derive(Debug, Deserialize)]
struct ScalingTargetResource {
    min_capacity: u32,
    max_capacity: u32,
    resource_id: String,
}

#[derive(Debug, Deserialize)]
struct ScalingPolicyResource {
    resource_id: String,
    target_tracking_scaling_policy_configuration: TargetTracking,
}

#[derive(Debug, Deserialize)]
struct TargetTracking {
    target_value: f64,
}

#[derive(Debug, Deserialize)]
struct LogGroupResource {
    name: String,
    #[serde(default)]
    retention_in_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct DbPasswordResource {
    #[serde(default)]
    manage_master_user_password: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct LifecyclePolicyResource {
    policy: String,
}

#[derive(Debug, Deserialize)]
struct LifecyclePolicy {
    rules: Vec<LifecycleRule>,
}

#[derive(Debug, Deserialize)]
struct LifecycleRule {
    selection: LifecycleSelection,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LifecycleSelection {
    count_type: String,
    count_number: u64,
}

#[derive(Debug, Deserialize)]
struct LambdaResource {
    memory_size: f64,
    #[serde(default)]
    timeout: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct TaskDefinitionResource {
    cpu: Scalar,
    memory: Scalar,
}

/// `name` in a `${kind.name.attribute}` reference, when `text` holds one.
fn referenced<'a>(text: &'a str, kind: &str) -> Option<&'a str> {
    let marker = format!("{kind}.");
    let at = text
        .find(&format!("${{{marker}"))
        .map(|i| i + 2 + marker.len())?;
    text[at..].split(['.', '}']).next()
}

impl AwsEnvironment {
    pub fn read(name: &str, render: &Terraform, catalog: &catalog::Catalog) -> Result<Self> {
        let endpoints = render.resources::<EndpointResource>("aws_vpc_endpoint")?;
        let endpoint_zones = endpoints
            .values()
            .filter(|e| e.vpc_endpoint_type.as_deref() == Some("Interface"))
            .map(|e| e.subnet_ids.as_ref().map_or(1, Vec::len))
            .sum();
        let load_balancers = render
            .resources::<LoadBalancerResource>("aws_lb")?
            .into_values()
            .map(|lb| LoadBalancer {
                public_addresses: if lb.internal == Some(true) {
                    0
                } else {
                    lb.subnets.len()
                },
            })
            .collect();
        let databases = render
            .resources::<DbInstanceResource>("aws_db_instance")?
            .into_values()
            .map(|db| Database {
                instance_class: db.instance_class,
                storage_gb: db.allocated_storage.as_f64().unwrap_or(0.0),
                multi_az: db.multi_az.unwrap_or(false),
            })
            .collect();
        let managed_passwords = render
            .resources::<DbPasswordResource>("aws_db_instance")?
            .values()
            .filter(|db| db.manage_master_user_password == Some(true))
            .count();
        let (ecr_repositories, images_kept) = ecr(render)?;
        Ok(Self {
            name: name.to_owned(),
            nat_gateways: render.count("aws_nat_gateway"),
            elastic_ips: render.count("aws_eip"),
            endpoint_zones,
            load_balancers,
            services: services(render, catalog)?,
            databases,
            log_groups: log_groups(render)?,
            alarms: render.count("aws_cloudwatch_metric_alarm"),
            dashboards: render.count("aws_cloudwatch_dashboard"),
            kms_keys: render.count("aws_kms_key"),
            secrets: render.count("aws_secretsmanager_secret") + managed_passwords,
            ecr_repositories,
            images_kept,
            lambdas: render
                .resources::<LambdaResource>("aws_lambda_function")?
                .into_values()
                .map(|f| Lambda {
                    memory_gb: f.memory_size / 1024.0,
                    timeout_seconds: f.timeout.unwrap_or(3.0),
                })
                .collect(),
        })
    }
}

/// Each ECS service: size from the catalog, bounds and target from the render's scaling.
fn services(
    render: &Terraform,
    catalog: &catalog::Catalog,
) -> Result<BTreeMap<String, EcsService>> {
    let targets = render.resources::<ScalingTargetResource>("aws_appautoscaling_target")?;
    let policies = render.resources::<ScalingPolicyResource>("aws_appautoscaling_policy")?;
    let tasks = render.resources::<TaskDefinitionResource>("aws_ecs_task_definition")?;
    let mut out = BTreeMap::new();
    for (name, service) in render.resources::<EcsServiceResource>("aws_ecs_service")? {
        let task = referenced(&service.task_definition, "aws_ecs_task_definition")
            .context("an ECS service names no task definition")?;
        // The catalog's size when the service is in it (the render is derived from it).
        let (cpu, memory) = match catalog.services.get(&name) {
            Some(s) => (f64::from(s.cpu), f64::from(s.memory)),
            None => {
                let t = tasks.get(task).context("unknown task definition")?;
                (
                    t.cpu.as_f64().unwrap_or(0.0),
                    t.memory.as_f64().unwrap_or(0.0),
                )
            }
        };
        let target = targets
            .iter()
            .find(|(_, t)| referenced(&t.resource_id, "aws_ecs_service") == Some(name.as_str()));
        let utilisation = target.and_then(|(target_name, _)| {
            policies
                .values()
                .find(|p| {
                    referenced(&p.resource_id, "aws_appautoscaling_target")
                        == Some(target_name.as_str())
                })
                .map(|p| p.target_tracking_scaling_policy_configuration.target_value / 100.0)
        });
        let desired = catalog
            .services
            .get(&name)
            .map_or(1, |s| s.instances.desired);
        let (min, max) = target.map_or((desired, desired), |(_, t)| {
            (t.min_capacity, t.max_capacity)
        });
        out.insert(
            name,
            EcsService {
                vcpu: cpu / 1024.0,
                memory_gb: memory / 1024.0,
                min,
                max,
                target_utilisation: utilisation.unwrap_or(1.0),
            },
        );
    }
    Ok(out)
}

fn log_groups(render: &Terraform) -> Result<Vec<LogGroup>> {
    Ok(render
        .resources::<LogGroupResource>("aws_cloudwatch_log_group")?
        .into_values()
        .map(|g| {
            let service = g
                .name
                .rsplit_once("/ecs/")
                .map(|(_, service)| service.to_owned());
            LogGroup {
                name: g.name,
                service,
                retention_days: g.retention_in_days,
            }
        })
        .collect())
}

/// The repositories, and the images a lifecycle policy keeps in each (the largest count rule).
fn ecr(render: &Terraform) -> Result<(Vec<String>, Option<u64>)> {
    let repositories = render
        .resource
        .get("aws_ecr_repository")
        .map_or_else(Vec::new, |r| r.keys().cloned().collect());
    let mut kept = None;
    for policy in render
        .resources::<LifecyclePolicyResource>("aws_ecr_lifecycle_policy")?
        .values()
    {
        let policy: LifecyclePolicy = serde_json::from_str(&policy.policy)
            .context("an ECR lifecycle policy is not the expected JSON")?;
        for rule in policy.rules {
            if rule.selection.count_type == "imageCountMoreThan" {
                kept = kept.max(Some(rule.selection.count_number));
            }
        }
    }
    Ok((repositories, kept))
}

impl NorthflankProject {
    pub fn read(template: &Template) -> Result<Self> {
        let mut project = Self {
            services: BTreeMap::new(),
            jobs: Vec::new(),
            addons: Vec::new(),
        };
        for (node, billing, plan) in template.billed() {
            match node.kind() {
                "DeploymentService" => {
                    let service = NorthflankService::read(node, plan)?;
                    project.services.insert(node.name().to_owned(), service);
                }
                "ManualJob" | "CronJob" => project.jobs.push(NorthflankJob {
                    name: node.name().to_owned(),
                    plan: plan.to_owned(),
                    deadline_seconds: node.spec.active_deadline_seconds.map(|s| s as f64),
                }),
                "Addon" => project.addons.push(NorthflankAddon {
                    name: node.name().to_owned(),
                    plan: plan.to_owned(),
                    replicas: billing
                        .replicas
                        .as_ref()
                        .and_then(serde_json::Number::as_u64)
                        .unwrap_or(1) as u32,
                    storage_gb: billing
                        .storage
                        .as_ref()
                        .and_then(serde_json::Number::as_f64)
                        .unwrap_or(0.0)
                        / 1024.0,
                }),
                _ => {}
            }
        }
        Ok(project)
    }
}

impl NorthflankService {
    fn read(node: &Node, plan: &str) -> Result<Self> {
        let fixed = node
            .spec
            .deployment
            .as_ref()
            .and_then(|d| d.instances)
            .unwrap_or(1);
        let fixed = u32::try_from(fixed).context("instance count")?;
        let scaling = node
            .spec
            .autoscaling
            .as_ref()
            .and_then(|a| a.horizontal.as_ref())
            .filter(|h| h.enabled);
        let threshold = scaling
            .and_then(|h| h.cpu.as_ref())
            .filter(|c| c.enabled)
            .and_then(|c| c.threshold_percentage);
        Ok(Self {
            plan: plan.to_owned(),
            min: scaling.and_then(|h| h.min_replicas).unwrap_or(fixed),
            max: scaling.and_then(|h| h.max_replicas).unwrap_or(fixed),
            target_utilisation: threshold.map_or(1.0, |t| t / 100.0),
        })
    }
}

/// The catalog under the root.
pub fn load_catalog(root: &Path) -> Result<catalog::Catalog> {
    catalog::Catalog::load(root.join(catalog::FILE_NAME))
        .with_context(|| format!("cannot load {}", catalog::FILE_NAME))
}
