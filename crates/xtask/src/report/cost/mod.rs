//! Axis "Cost": the monthly bill of each target by concern at three traffic levels, computed
//! from the renders, the catalog, the measured capacity and `docs/prices.toml` alone.
//!
//! [`inputs`] reads what is billable (typed readers of the renders and the bench results),
//! [`prices`] the price table, [`model`] turns both into priced line items.

pub mod inputs;
pub mod model;
pub mod prices;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::benchmarks::Results;
use super::render::{AWS_ENVIRONMENTS, Renders};
use super::table::{Table, bold, dollars};
use inputs::{AwsEnvironment, Measurements, NorthflankProject};
use model::{Bill, CONCERNS, Traffic};
use prices::{PRICES, PriceTable};

/// The traffic levels: sustained page views per second at the load balancer.
pub const LEVELS: [(&str, f64); 3] = [("idle", 0.0), ("10 req/s", 10.0), ("500 req/s", 500.0)];
/// The target every bill names Northflank's project by.
pub const NORTHFLANK: &str = "northflank";

const HOW: &str = "crates/xtask/src/report/cost: infra/<env>/main.tf.json (NAT gateways, Elastic IPs, interface endpoints × zones, load balancers, RDS instances, log groups and retention, alarms, dashboards, KMS keys, secrets, ECR repositories and lifecycle, Lambda), services.toml (task sizes), the render's scaling bounds and CPU target, northflank/template.json (plans, autoscaling bounds and CPU threshold, the job's deadline, addon replicas and storage), benchmarks/results.json (capacity, response and log bytes) and docs/prices.toml (every unit price, with source and date); unpriced or unmeasured items are listed and left out of totals";

/// The cost figures, or why they could not be computed (no benchmark results yet).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status")]
pub enum CostFigures {
    #[serde(rename = "computed")]
    Computed(Box<Cost>),
    #[serde(rename = "not computed")]
    NotComputed { reason: String },
}

impl CostFigures {
    pub fn compute(root: &Path, renders: &Renders, results: Option<&Results>) -> Result<Self> {
        if let Some(reason) = Measurements::read(results).err() {
            return Ok(Self::NotComputed {
                reason: format!("{reason:#}"),
            });
        }
        Ok(Self::Computed(Box::new(Cost::compute(
            root, renders, results,
        )?)))
    }

    fn not_computed(reason: &str) -> String {
        format!("_Not computed: {reason}._\n")
    }

    pub fn table(&self) -> String {
        match self {
            Self::Computed(cost) => cost.table(),
            Self::NotComputed { reason } => Self::not_computed(reason),
        }
    }

    pub fn choices_table(&self) -> String {
        match self {
            Self::Computed(cost) => cost.choices_table(),
            Self::NotComputed { reason } => Self::not_computed(reason),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cost {
    pub how: String,
    pub prices: String,
    pub measured: Measurements,
    /// Prices `docs/prices.toml` could not give, by name.
    pub unpriced: Vec<String>,
    pub levels: Vec<Level>,
    /// AWS choices and how much each saves at each level.
    pub choices: Vec<Choice>,
    pub crossover: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Level {
    pub name: String,
    pub requests_per_second: f64,
    /// `aws production`, `aws staging`, `northflank` → that target's month.
    pub bills: BTreeMap<String, Bill>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Choice {
    pub choice: String,
    /// Dollars a month saved at each level, in the order of `levels`.
    pub savings: Vec<f64>,
}

/// Everything the bills are computed from.
struct Inputs {
    aws: Vec<AwsEnvironment>,
    northflank: NorthflankProject,
    measured: Measurements,
    prices: PriceTable,
}

impl Cost {
    pub fn compute(root: &Path, renders: &Renders, results: Option<&Results>) -> Result<Self> {
        let inputs = Inputs::read(root, renders, results)?;
        let levels = LEVELS
            .iter()
            .map(|(name, rps)| Level {
                name: (*name).to_owned(),
                requests_per_second: *rps,
                bills: inputs.bills(*rps),
            })
            .collect();
        Ok(Self {
            how: HOW.to_owned(),
            prices: PRICES.to_owned(),
            unpriced: inputs
                .prices
                .all()
                .into_iter()
                .filter(|(_, p)| p.usd.is_none())
                .map(|(name, _)| name)
                .collect(),
            choices: inputs.choices(),
            crossover: inputs.crossover(),
            measured: inputs.measured,
            levels,
        })
    }

    /// AWS (every environment) and Northflank by concern at each level, then each AWS
    /// environment's total, then the instances each level runs.
    pub fn table(&self) -> String {
        let mut out = self.concerns_table().render();
        out += &self.footnote();
        out.push('\n');
        out += &self.environments_table().render();
        out.push('\n');
        out += &self.instances_table().render();
        let short = self.levels.iter().flat_map(|l| l.bills.values());
        if short.flat_map(|b| b.instances.values()).any(|i| i.short) {
            out += "\n† more than the configuration runs (the scaling maximum); billed at the maximum, so that level is under-served.\n";
        }
        out
    }

    fn concerns_table(&self) -> Table {
        let header = std::iter::once("concern".to_owned())
            .chain(self.levels.iter().map(|l| format!("AWS {}", l.name)))
            .chain(self.levels.iter().map(|l| format!("Northflank {}", l.name)));
        let mut table = Table::new(header);
        for concern in CONCERNS {
            let aws = self
                .levels
                .iter()
                .map(|l| cell(l.aws_bills().map(|b| concern_of(b, concern))));
            let nf = self
                .levels
                .iter()
                .map(|l| cell(l.northflank().map(|b| concern_of(b, concern))));
            table.row(std::iter::once(concern.to_owned()).chain(aws).chain(nf));
        }
        let aws = self
            .levels
            .iter()
            .map(|l| bold(cell(l.aws_bills().map(|b| (b.total(), b.complete(), true)))));
        let nf = self.levels.iter().map(|l| {
            bold(cell(
                l.northflank().map(|b| (b.total(), b.complete(), true)),
            ))
        });
        table.row(std::iter::once(bold("total a month")).chain(aws).chain(nf));
        table
    }

    /// What the starred cells leave out: each item once, with the targets that have it.
    fn footnote(&self) -> String {
        let mut left_out: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for level in &self.levels {
            for (target, bill) in &level.bills {
                for item in bill.items.iter().filter(|i| i.usd.is_none()) {
                    let targets = left_out.entry(item.item.clone()).or_default();
                    if !targets.contains(&target.as_str()) {
                        targets.push(target);
                    }
                }
            }
        }
        if left_out.is_empty() {
            return String::new();
        }
        let lines: Vec<String> = left_out
            .iter()
            .map(|(item, targets)| format!("{item} ({})", targets.join(", ")))
            .collect();
        format!("\n\\* leaves out: {}.\n", lines.join("; "))
    }

    fn environments_table(&self) -> Table {
        let mut table = Table::new(
            std::iter::once("target".to_owned()).chain(self.levels.iter().map(|l| l.name.clone())),
        );
        let targets: Vec<&String> = self
            .levels
            .first()
            .map_or_else(Vec::new, |l| l.bills.keys().collect());
        for target in targets {
            let totals = self.levels.iter().map(|l| {
                cell(
                    l.bills
                        .get(target)
                        .map(|b| (b.total(), b.complete(), true))
                        .into_iter(),
                )
            });
            table.row(std::iter::once(target.clone()).chain(totals));
        }
        table
    }

    fn instances_table(&self) -> Table {
        let mut table = Table::new(
            std::iter::once("instances billed (needed at the CPU target)".to_owned())
                .chain(self.levels.iter().map(|l| l.name.clone())),
        );
        let Some(first) = self.levels.first() else {
            return table;
        };
        for (target, bill) in &first.bills {
            for workload in bill.instances.keys() {
                let counts = self.levels.iter().map(|l| {
                    l.bills
                        .get(target)
                        .and_then(|b| b.instances.get(workload))
                        .map_or("–".to_owned(), |i| {
                            let short = if i.short { " †" } else { "" };
                            format!("{} ({}){short}", i.running, i.needed)
                        })
                });
                table.row(std::iter::once(format!("{target}: {workload}")).chain(counts));
            }
        }
        table
    }

    /// The AWS choices, what each saves, and the crossover.
    pub fn choices_table(&self) -> String {
        let mut table = Table::new(
            std::iter::once("AWS choice (one at a time)".to_owned())
                .chain(self.levels.iter().map(|l| format!("saves at {}", l.name))),
        );
        for choice in &self.choices {
            table.row(
                std::iter::once(choice.choice.clone())
                    .chain(choice.savings.iter().map(|s| dollars(*s))),
            );
        }
        let mut out = table.render();
        let _ = writeln!(out);
        for (i, level) in self.levels.iter().enumerate() {
            if let Some(best) = self
                .choices
                .iter()
                .max_by(|a, b| a.savings[i].total_cmp(&b.savings[i]))
            {
                let _ = writeln!(
                    out,
                    "- At {}, the choice that moves the AWS total most: {} ({} a month).",
                    level.name,
                    best.choice,
                    dollars(best.savings[i])
                );
            }
        }
        let _ = writeln!(out, "\n{}", self.crossover);
        out
    }
}

impl Level {
    fn aws_bills(&self) -> impl Iterator<Item = &Bill> {
        self.bills
            .iter()
            .filter(|(t, _)| *t != NORTHFLANK)
            .map(|(_, b)| b)
    }

    fn northflank(&self) -> impl Iterator<Item = &Bill> {
        self.bills.get(NORTHFLANK).into_iter()
    }
}

/// (priced sum, every item priced, any item at all) of one concern of one bill.
fn concern_of(bill: &Bill, concern: &str) -> (f64, bool, bool) {
    match bill.by_concern().get(concern) {
        Some((sum, complete)) => (*sum, *complete, true),
        None => (0.0, true, false),
    }
}

/// The sum over bills: `$X`, `$X*` when something is left out, `unpriced` when nothing is
/// priced, `–` when there is nothing.
fn cell(parts: impl Iterator<Item = (f64, bool, bool)>) -> String {
    let (mut sum, mut complete, mut any) = (0.0, true, false);
    let mut priced = false;
    for (s, c, a) in parts {
        sum += s;
        complete &= c;
        any |= a;
        priced |= a && (c || s > 0.0);
    }
    match (any, complete, priced) {
        (false, _, _) => "–".to_owned(),
        (true, true, _) => dollars(sum),
        (true, false, false) => "unpriced".to_owned(),
        (true, false, true) => format!("{}\\*", dollars(sum)),
    }
}

impl Inputs {
    fn read(root: &Path, renders: &Renders, results: Option<&Results>) -> Result<Self> {
        let catalog = inputs::load_catalog(root)?;
        let aws = AWS_ENVIRONMENTS
            .iter()
            .map(|env| AwsEnvironment::read(env, renders.environment(env), &catalog))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            aws,
            northflank: NorthflankProject::read(&renders.template.parsed)?,
            measured: Measurements::read(results).context("the cost figures")?,
            prices: PriceTable::load(root)?,
        })
    }

    /// Every target's month at `rps`: production takes the traffic, staging idles.
    fn bills(&self, rps: f64) -> BTreeMap<String, Bill> {
        self.bills_of(&self.aws, rps)
    }

    fn bills_of(&self, aws: &[AwsEnvironment], rps: f64) -> BTreeMap<String, Bill> {
        let hours = self.prices.hours_per_month;
        let mut bills: BTreeMap<String, Bill> = aws
            .iter()
            .map(|env| {
                let traffic = Traffic {
                    requests_per_second: if env.name == "production" { rps } else { 0.0 },
                    hours,
                };
                let bill = model::aws_bill(env, traffic, &self.measured, &self.prices);
                (format!("aws {}", env.name), bill)
            })
            .collect();
        let traffic = Traffic {
            requests_per_second: rps,
            hours,
        };
        let nf = model::northflank_bill(&self.northflank, traffic, &self.measured, &self.prices);
        bills.insert(NORTHFLANK.to_owned(), nf);
        bills
    }

    fn aws_total(&self, aws: &[AwsEnvironment], rps: f64) -> f64 {
        self.bills_of(aws, rps)
            .iter()
            .filter(|(t, _)| *t != NORTHFLANK)
            .map(|(_, b)| b.total())
            .sum()
    }

    fn choices(&self) -> Vec<Choice> {
        type Change = fn(&mut AwsEnvironment);
        let changes: [(&str, Change); 5] = [
            ("one NAT gateway per environment, not one per zone", |env| {
                env.nat_gateways = env.nat_gateways.min(1);
                env.elastic_ips = env.elastic_ips.min(1);
            }),
            (
                "no NAT gateways: the private subnets reach AWS only through the VPC endpoints",
                |env| {
                    env.nat_gateways = 0;
                    env.elastic_ips = 0;
                },
            ),
            (
                "no interface endpoints: AWS APIs through the NAT gateways",
                |env| {
                    if env.nat_gateways > 0 {
                        env.endpoint_zones = 0;
                    }
                },
            ),
            ("Single-AZ database", |env| {
                env.databases.iter_mut().for_each(|d| d.multi_az = false);
            }),
            ("30-day log retention, not 365", |env| {
                env.log_groups
                    .iter_mut()
                    .for_each(|g| g.retention_days = Some(30));
            }),
        ];
        let mut choices: Vec<Choice> = changes
            .iter()
            .map(|(label, change)| {
                let mut aws = self.aws.clone();
                aws.iter_mut().for_each(change);
                self.choice(label, &aws)
            })
            .collect();
        let production_only: Vec<AwsEnvironment> = self
            .aws
            .iter()
            .filter(|e| e.name == "production")
            .cloned()
            .collect();
        choices.push(self.choice("no staging environment", &production_only));
        choices
    }

    fn choice(&self, label: &str, aws: &[AwsEnvironment]) -> Choice {
        let savings = LEVELS
            .iter()
            .map(|(_, rps)| {
                let saving = self.aws_total(&self.aws, *rps) - self.aws_total(aws, *rps);
                (saving * 100.0).round() / 100.0
            })
            .collect();
        Choice {
            choice: label.to_owned(),
            savings,
        }
    }

    /// At what traffic, if any, the cheaper target changes, on the priced items; while a
    /// Northflank price is missing, which items its totals leave out and what egress price
    /// would reverse the order at the highest level.
    fn crossover(&self) -> String {
        let difference = |rps: f64| {
            let bills = self.bills(rps);
            let nf = bills.get(NORTHFLANK).map_or(0.0, Bill::total);
            self.aws_total(&self.aws, rps) - nf
        };
        let start = difference(0.0);
        let cheaper = |d: f64| if d > 0.0 { "Northflank" } else { "AWS" };
        let mut out = match (1..=500)
            .map(f64::from)
            .find(|rps| (difference(*rps) > 0.0) != (start > 0.0))
        {
            Some(rps) => format!(
                "**Crossover at {rps:.0} req/s:** below it {} is cheaper, from it {}.",
                cheaper(start),
                cheaper(difference(rps))
            ),
            None => format!(
                "**No crossover between idle and 500 req/s:** {} is cheaper at every level.",
                cheaper(start)
            ),
        };
        let unpriced: Vec<String> = self
            .prices
            .all()
            .into_iter()
            .filter(|(name, p)| name.starts_with("northflank.") && p.usd.is_none())
            .map(|(name, p)| format!("{} (`{name}`)", p.what))
            .collect();
        if unpriced.is_empty() {
            return out;
        }
        let _ = write!(
            out,
            " Northflank's totals leave out {}: no citable public source gave their prices, and the report does not guess, so its side is a lower bound.",
            unpriced.join(" and ")
        );
        if let (Some((_, top)), true) = (
            LEVELS.last(),
            self.prices.northflank.egress_gb.usd.is_none(),
        ) {
            let traffic = Traffic {
                requests_per_second: *top,
                hours: self.prices.hours_per_month,
            };
            let gb = model::page_gb(traffic, &self.measured);
            let margin = difference(*top);
            if margin > 0.0 && gb > 0.0 {
                let _ = write!(
                    out,
                    " At {top:.0} req/s it returns {:.1} TB of pages a month: Northflank stays the cheaper unless its egress costs more than ${:.3} a GB (AWS charges {} for its first 10 TB).",
                    gb / 1000.0,
                    margin / gb,
                    self.prices
                        .aws
                        .data_transfer_out_gb
                        .usd
                        .map_or("an unpriced amount".to_owned(), |p| format!("${p}")),
                );
            }
        }
        out
    }
}
