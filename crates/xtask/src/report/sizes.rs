//! Axis "Cost drivers": instance sizes and counts, from the catalog and the renders.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Number;

use super::render::{AWS_ENVIRONMENTS, Renders, Terraform};
use super::table::{Table, or_dash};

const HOW: &str = "services.toml (cpu units, MiB, instances); infra/<env>/main.tf.json (aws_db_instance, aws_ecs_task_definition, aws_nat_gateway, aws_vpc_endpoint of type Interface, aws_lb, aws_lambda_function); northflank/template.json (spec.billing of each node)";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sizes {
    pub how: String,
    pub catalog: BTreeMap<String, Workload>,
    pub aws: BTreeMap<String, AwsSizes>,
    pub northflank: BTreeMap<String, NorthflankSize>,
}

/// A catalog entry's size: services have instance bounds, jobs run on demand.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workload {
    pub kind: String,
    pub cpu: u32,
    pub memory: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AwsSizes {
    pub databases: Vec<Database>,
    pub tasks: BTreeMap<String, TaskSize>,
    pub nat_gateways: usize,
    pub interface_endpoints: usize,
    pub load_balancers: usize,
    pub lambda_memory_mib: Vec<Number>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Database {
    pub instance_class: String,
    pub allocated_storage_gib: Number,
    pub multi_az: bool,
}

/// A Fargate task size as the render writes it (Terraform accepts `"256"` or `256`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSize {
    pub cpu: Scalar,
    pub memory: Scalar,
}

/// A number the render may write as a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Number(Number),
    Text(String),
}

impl Scalar {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Number(n) => n.as_f64(),
            Self::Text(s) => s.parse().ok(),
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NorthflankSize {
    pub kind: String,
    pub plan: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_mib: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u64>,
}

/// Typed views of the render resources the sizes read.
#[derive(Debug, Deserialize)]
pub struct DbInstanceResource {
    pub instance_class: String,
    pub allocated_storage: Number,
    #[serde(default)]
    pub multi_az: Option<bool>,
    #[serde(default)]
    pub storage_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct VpcEndpointResource {
    #[serde(default)]
    vpc_endpoint_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LambdaResource {
    memory_size: Number,
}

impl Sizes {
    pub fn compute(root: &Path, renders: &Renders) -> Result<Self> {
        let catalog = catalog::Catalog::load(root.join(catalog::FILE_NAME))
            .with_context(|| format!("cannot load {}", catalog::FILE_NAME))?;
        let aws = AWS_ENVIRONMENTS
            .iter()
            .map(|env| Ok(((*env).to_owned(), AwsSizes::read(renders.environment(env))?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            how: HOW.to_owned(),
            catalog: workloads(&catalog),
            aws,
            northflank: northflank_sizes(renders),
        })
    }

    pub fn table(&self) -> String {
        let mut table = self.workloads_table().render();
        table.push('\n');
        table + &self.environments_table().render()
    }

    fn workloads_table(&self) -> Table {
        let mut table = Table::new([
            "workload",
            "catalog size (Fargate task)",
            "instances desired (min–max)",
            "Northflank plan",
        ]);
        for (name, w) in &self.catalog {
            let instances = match (w.desired, w.min, w.max) {
                (Some(desired), min, max) => {
                    format!("{desired} ({}–{})", or_dash(min), or_dash(max))
                }
                (None, _, _) => "on demand".to_owned(),
            };
            table.row([
                format!("{name} ({})", w.kind),
                format!("{} CPU units / {} MiB", w.cpu, w.memory),
                instances,
                or_dash(self.northflank.get(name).map(|n| &n.plan)),
            ]);
        }
        for (name, n) in &self.northflank {
            if self.catalog.contains_key(name) {
                continue;
            }
            let mut detail = n.plan.clone();
            if let Some(storage) = &n.storage_mib {
                detail += &format!(
                    ", {storage} MiB storage, {} replica(s)",
                    or_dash(n.replicas.as_ref())
                );
            }
            table.row([
                format!("{name} ({})", n.kind),
                "–".into(),
                "–".into(),
                detail,
            ]);
        }
        table
    }

    fn environments_table(&self) -> Table {
        let mut table = Table::new([
            "AWS environment",
            "RDS",
            "NAT gateways",
            "interface endpoints",
            "load balancers",
            "Lambda MiB",
        ]);
        for (env, a) in &self.aws {
            let databases = a
                .databases
                .iter()
                .map(|d| {
                    let multi_az = if d.multi_az { ", Multi-AZ" } else { "" };
                    format!(
                        "{}, {} GiB{multi_az}",
                        d.instance_class, d.allocated_storage_gib
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let lambda = a
                .lambda_memory_mib
                .iter()
                .map(Number::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            table.row([
                env.clone(),
                databases,
                a.nat_gateways.to_string(),
                a.interface_endpoints.to_string(),
                a.load_balancers.to_string(),
                lambda,
            ]);
        }
        table
    }
}

impl AwsSizes {
    fn read(render: &Terraform) -> Result<Self> {
        let databases = render
            .resources::<DbInstanceResource>("aws_db_instance")?
            .into_values()
            .map(|db| Database {
                instance_class: db.instance_class,
                allocated_storage_gib: db.allocated_storage,
                multi_az: db.multi_az.unwrap_or(false),
            })
            .collect();
        let interface_endpoints = render
            .resources::<VpcEndpointResource>("aws_vpc_endpoint")?
            .values()
            .filter(|e| e.vpc_endpoint_type.as_deref() == Some("Interface"))
            .count();
        let lambda_memory_mib = render
            .resources::<LambdaResource>("aws_lambda_function")?
            .into_values()
            .map(|f| f.memory_size)
            .collect();
        Ok(Self {
            databases,
            tasks: render.resources("aws_ecs_task_definition")?,
            nat_gateways: render.count("aws_nat_gateway"),
            interface_endpoints,
            load_balancers: render.count("aws_lb"),
            lambda_memory_mib,
        })
    }
}

fn workloads(catalog: &catalog::Catalog) -> BTreeMap<String, Workload> {
    let services = catalog.services.iter().map(|(name, s)| {
        let workload = Workload {
            kind: "service".to_owned(),
            cpu: s.cpu,
            memory: s.memory,
            desired: Some(s.instances.desired),
            min: Some(s.instances.min),
            max: Some(s.instances.max),
        };
        (name.clone(), workload)
    });
    let jobs = catalog.jobs.iter().map(|(name, j)| {
        let kind = if j.lambda {
            "job (Lambda on AWS)"
        } else {
            "job"
        };
        let workload = Workload {
            kind: kind.to_owned(),
            cpu: j.cpu,
            memory: j.memory,
            desired: None,
            min: None,
            max: None,
        };
        (name.clone(), workload)
    });
    services.chain(jobs).collect()
}

fn northflank_sizes(renders: &Renders) -> BTreeMap<String, NorthflankSize> {
    renders
        .template
        .parsed
        .billed()
        .map(|(node, billing, plan)| {
            let size = NorthflankSize {
                kind: node.kind().to_owned(),
                plan: plan.to_owned(),
                storage_mib: billing.storage.clone(),
                replicas: billing.replicas.clone(),
                instances: node.spec.deployment.as_ref().and_then(|d| d.instances),
            };
            (node.name().to_owned(), size)
        })
        .collect()
}
