//! `docs/prices.toml`: every unit price the cost model uses, each with its public source and
//! the date it was read. A price without `usd` is unpriced: its items stay out of totals.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::report::files::read_text;

/// The price table, relative to the root.
pub const PRICES: &str = "docs/prices.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    pub hours_per_month: f64,
    pub aws: AwsPrices,
    pub northflank: NorthflankPrices,
}

/// One unit price and where it comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// `None`: no public source gave it (then `missing` says why).
    pub usd: Option<f64>,
    pub unit: String,
    pub what: String,
    pub source: String,
    #[serde(default)]
    pub read_via: Option<String>,
    pub read: String,
    #[serde(default)]
    pub missing: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsPrices {
    pub region: String,
    pub fargate_vcpu_hour: Price,
    pub fargate_gb_hour: Price,
    pub alb_hour: Price,
    pub alb_lcu_hour: Price,
    pub nat_gateway_hour: Price,
    pub nat_gateway_gb: Price,
    pub interface_endpoint_hour: Price,
    pub interface_endpoint_gb: Price,
    pub public_ipv4_hour: Price,
    pub data_transfer_out_gb: Price,
    pub data_transfer_out_gb_next_40tb: Price,
    pub rds_gp3_gb_month: Price,
    /// Instance class → Single-AZ hourly price.
    pub rds_instance_hour: BTreeMap<String, Price>,
    pub logs_ingest_gb: Price,
    pub logs_storage_gb_month: Price,
    pub alarm_month: Price,
    pub dashboard_month: Price,
    pub kms_key_month: Price,
    pub secret_month: Price,
    pub ecr_gb_month: Price,
    pub lambda_requests_million: Price,
    pub lambda_gb_second: Price,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NorthflankPrices {
    /// Pay-as-you-go compute: every plan is billed for its vCPU and its memory.
    pub vcpu_hour: Price,
    pub memory_gb_hour: Price,
    pub plans: BTreeMap<String, Plan>,
    pub addon_storage_gb_month: Price,
    pub egress_gb: Price,
}

/// A Northflank compute plan's size, as published; its price follows from the per-vCPU and
/// per-GB rates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub vcpu: f64,
    pub memory_mib: u32,
    pub what: String,
    pub source: String,
    pub read: String,
}

impl Plan {
    /// Memory in GB as Northflank bills it (1,024 MiB a GB: `nf-compute-20`'s 512 MiB is 0.5).
    pub fn memory_gb(&self) -> f64 {
        f64::from(self.memory_mib) / 1024.0
    }
}

impl PriceTable {
    pub fn load(root: &Path) -> Result<Self> {
        let text = read_text(root, PRICES)?;
        let table: Self = toml::from_str(&text)
            .with_context(|| format!("{PRICES} is not a valid price table"))?;
        table.validate()?;
        Ok(table)
    }

    /// Every price, named as in the file (`aws.alb_hour`, `northflank.vcpu_hour`).
    pub fn all(&self) -> Vec<(String, &Price)> {
        let a = &self.aws;
        let mut all: Vec<(String, &Price)> = [
            ("fargate_vcpu_hour", &a.fargate_vcpu_hour),
            ("fargate_gb_hour", &a.fargate_gb_hour),
            ("alb_hour", &a.alb_hour),
            ("alb_lcu_hour", &a.alb_lcu_hour),
            ("nat_gateway_hour", &a.nat_gateway_hour),
            ("nat_gateway_gb", &a.nat_gateway_gb),
            ("interface_endpoint_hour", &a.interface_endpoint_hour),
            ("interface_endpoint_gb", &a.interface_endpoint_gb),
            ("public_ipv4_hour", &a.public_ipv4_hour),
            ("data_transfer_out_gb", &a.data_transfer_out_gb),
            (
                "data_transfer_out_gb_next_40tb",
                &a.data_transfer_out_gb_next_40tb,
            ),
            ("rds_gp3_gb_month", &a.rds_gp3_gb_month),
            ("logs_ingest_gb", &a.logs_ingest_gb),
            ("logs_storage_gb_month", &a.logs_storage_gb_month),
            ("alarm_month", &a.alarm_month),
            ("dashboard_month", &a.dashboard_month),
            ("kms_key_month", &a.kms_key_month),
            ("secret_month", &a.secret_month),
            ("ecr_gb_month", &a.ecr_gb_month),
            ("lambda_requests_million", &a.lambda_requests_million),
            ("lambda_gb_second", &a.lambda_gb_second),
        ]
        .into_iter()
        .map(|(name, price)| (format!("aws.{name}"), price))
        .collect();
        all.extend(
            a.rds_instance_hour
                .iter()
                .map(|(class, p)| (format!("aws.rds_instance_hour.\"{class}\""), p)),
        );
        let n = &self.northflank;
        all.push(("northflank.vcpu_hour".into(), &n.vcpu_hour));
        all.push(("northflank.memory_gb_hour".into(), &n.memory_gb_hour));
        all.push((
            "northflank.addon_storage_gb_month".into(),
            &n.addon_storage_gb_month,
        ));
        all.push(("northflank.egress_gb".into(), &n.egress_gb));
        all
    }

    /// Every price and plan carries a source and a date; an absent price says why; no price is
    /// negative.
    fn validate(&self) -> Result<()> {
        if self.hours_per_month <= 0.0 {
            bail!("{PRICES}: hours_per_month must be positive");
        }
        for (name, price) in self.all() {
            if price.source.trim().is_empty() || price.read.trim().is_empty() {
                bail!("{PRICES}: {name} needs a `source` and the date it was `read`");
            }
            match (price.usd, &price.missing) {
                (None, None) => bail!("{PRICES}: {name} has no `usd`; say why in `missing`"),
                (Some(usd), _) if usd < 0.0 || !usd.is_finite() => {
                    bail!("{PRICES}: {name} is not a price: {usd}")
                }
                (Some(_), Some(_)) => {
                    bail!("{PRICES}: {name} has both `usd` and `missing`; keep one")
                }
                _ => {}
            }
        }
        for (name, plan) in &self.northflank.plans {
            if plan.source.trim().is_empty() || plan.read.trim().is_empty() {
                bail!(
                    "{PRICES}: northflank.plans.{name} needs a `source` and the date it was `read`"
                );
            }
            if plan.vcpu <= 0.0 || plan.memory_mib == 0 {
                bail!("{PRICES}: northflank.plans.{name} needs a positive `vcpu` and `memory_mib`");
            }
        }
        Ok(())
    }
}
