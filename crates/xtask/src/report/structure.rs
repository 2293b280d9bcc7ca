//! Axis "Structure": AWS resources per type and concern, Northflank template nodes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::render::{AWS_ENVIRONMENTS, Renders, configuration};
use super::table::{Table, bold, code, or_dash};

const RESOURCES_HOW: &str = "count of `resource.<type>.<name>` in infra/<env>/main.tf.json; concerns group types by prefix (concern() in crates/xtask/src/report/structure.rs)";
const NODES_HOW: &str = "kinds of the root workflow of northflank/template.json and every step under it (spec.steps, recursively)";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resources {
    pub how: String,
    /// Configuration (`bootstrap`, `production`, `staging`) → resource type → count.
    pub by_type: BTreeMap<String, BTreeMap<String, u64>>,
    /// Concern → environment → count (the two application environments).
    pub by_concern: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NorthflankNodes {
    pub how: String,
    pub by_kind: BTreeMap<String, u64>,
}

impl Resources {
    pub fn compute(renders: &Renders) -> Self {
        let by_type: BTreeMap<String, BTreeMap<String, u64>> = renders
            .terraform
            .iter()
            .map(|(path, file)| (configuration(path).to_owned(), file.parsed.counts_by_type()))
            .collect();
        let mut by_concern: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for env in AWS_ENVIRONMENTS {
            for (kind, count) in by_type.get(env).into_iter().flatten() {
                *by_concern
                    .entry(concern(kind).to_owned())
                    .or_default()
                    .entry(env.to_owned())
                    .or_default() += count;
            }
        }
        Self {
            how: RESOURCES_HOW.to_owned(),
            by_type,
            by_concern,
        }
    }

    /// Resource types down, configurations across, totals last.
    pub fn types_table(&self) -> String {
        let envs: Vec<&String> = self.by_type.keys().collect();
        let types: BTreeSet<&String> = self.by_type.values().flat_map(BTreeMap::keys).collect();
        let mut table = Table::new(
            ["resource type"]
                .into_iter()
                .chain(envs.iter().map(|e| e.as_str())),
        );
        for kind in types {
            let counts = envs.iter().map(|env| or_dash(self.by_type[*env].get(kind)));
            table.row(std::iter::once(code(kind)).chain(counts));
        }
        let totals = envs
            .iter()
            .map(|env| bold(self.by_type[*env].values().sum::<u64>()));
        table.row(std::iter::once(bold("total")).chain(totals));
        table.render()
    }

    /// Concerns down, each environment's count and share across.
    pub fn concerns_table(&self) -> String {
        let total =
            |env: &str| -> u64 { self.by_concern.values().filter_map(|c| c.get(env)).sum() };
        let totals: Vec<u64> = AWS_ENVIRONMENTS.iter().map(|e| total(e)).collect();
        let mut table = Table::new(["concern", "production (share)", "staging (share)"]);
        for (concern, envs) in &self.by_concern {
            let shares = AWS_ENVIRONMENTS.iter().zip(&totals).map(|(env, all)| {
                let n = envs.get(*env).copied().unwrap_or(0);
                format!("{n} ({:.0} %)", n as f64 * 100.0 / (*all).max(1) as f64)
            });
            table.row(std::iter::once(concern.clone()).chain(shares));
        }
        table.render()
    }
}

impl NorthflankNodes {
    pub fn compute(renders: &Renders) -> Self {
        let by_kind = renders
            .template
            .parsed
            .kinds()
            .into_iter()
            .map(|(kind, n)| (kind, n.unsigned_abs()))
            .collect();
        Self {
            how: NODES_HOW.to_owned(),
            by_kind,
        }
    }

    pub fn table(&self) -> String {
        let mut table = Table::new(["node kind", "count"]);
        for (kind, n) in &self.by_kind {
            table.row([code(kind), n.to_string()]);
        }
        table.row([bold("total"), bold(self.by_kind.values().sum::<u64>())]);
        table.render()
    }
}

/// What a resource type is for, to compare with what Northflank provides without being asked.
pub fn concern(kind: &str) -> &'static str {
    let rules: &[(&[&str], &str)] = &[
        (
            &[
                "aws_vpc",
                "aws_subnet",
                "aws_route",
                "aws_internet_gateway",
                "aws_nat_gateway",
                "aws_eip",
                "aws_default_security_group",
                "aws_security_group",
                "aws_flow_log",
                "aws_service_discovery",
            ],
            "network: VPC, subnets, routes, NAT, endpoints, security groups, flow logs",
        ),
        (
            &["aws_lb", "aws_acm", "aws_route53"],
            "load balancer and TLS",
        ),
        (
            &["aws_ecs", "aws_ecr", "aws_appautoscaling", "aws_lambda"],
            "compute: ECS, ECR, autoscaling, Lambda",
        ),
        (&["aws_db"], "database"),
        (
            &["aws_cloudwatch", "aws_sns"],
            "logs, metrics, alarms, dashboard",
        ),
        (&["aws_kms"], "encryption keys"),
        (&["aws_iam"], "IAM"),
    ];
    rules
        .iter()
        .find(|(prefixes, _)| prefixes.iter().any(|p| kind.starts_with(p)))
        .map_or("other", |(_, name)| name)
}
