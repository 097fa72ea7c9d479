//! The bulk-change guard (octoDNS's safety rule, for every type): a plan that deletes or
//! replaces too large a share of what a provider manages, or deletes the data-holding
//! resources (zones, keys, vaults, databases, buckets) of more than a few tenants, is
//! refused by apply unless it was made or applied with `--allow-bulk`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Action, Plan};
use crate::providers::Registry;
use crate::workspace::GuardConfig;

/// Types whose deletion loses a tenant's data or its name for good.
pub const DATA_TYPES: &[&str] = &[
    "aws_route53_zone",
    "azure_dns_zone",
    "aws_kms_key",
    "azure_key_vault",
    "postgresql_database",
    "postgresql_schema",
    "aws_s3_bucket",
    "azure_storage_account",
    "azure_storage_container",
    "azure_resource_group",
];

/// What one provider would lose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderLoss {
    /// Provider name.
    pub provider: String,
    /// Resources it manages now.
    pub managed: u64,
    /// Resources the plan deletes or replaces.
    pub destroyed: u64,
    /// The limit in percent.
    pub limit_percent: f64,
}

impl ProviderLoss {
    /// The share destroyed, in percent.
    pub fn percent(&self) -> f64 {
        if self.managed == 0 {
            0.0
        } else {
            self.destroyed as f64 * 100.0 / self.managed as f64
        }
    }
}

/// The guard's verdict on a plan, carried by the plan (and its saved file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Why apply refuses (empty: the plan is within the limits).
    pub refusals: Vec<String>,
    /// Per-provider losses, for every provider that loses anything.
    pub losses: Vec<ProviderLoss>,
    /// Tenants losing data-holding resources, with those resources.
    pub data_loss: BTreeMap<String, Vec<String>>,
    /// The tenants destroying the most, largest first (up to five): `(tenant, count)`.
    pub largest: Vec<(String, u64)>,
    /// The plan was made with `--allow-bulk`.
    pub allow_bulk: bool,
}

impl Verdict {
    /// Whether apply must refuse this plan (without `--allow-bulk` now).
    pub fn refuses(&self) -> bool {
        !self.refusals.is_empty() && !self.allow_bulk
    }

    /// One paragraph for the terminal and pull requests.
    pub fn describe(&self) -> String {
        if self.refusals.is_empty() {
            return "Bulk-change guard: within limits.".into();
        }
        let mut s = String::from("Bulk-change guard: ");
        s.push_str(if self.allow_bulk {
            "over the limits, allowed by --allow-bulk:"
        } else {
            "apply will refuse this plan without --allow-bulk:"
        });
        for r in &self.refusals {
            s.push_str("\n  - ");
            s.push_str(r);
        }
        if !self.largest.is_empty() {
            let top: Vec<String> = self
                .largest
                .iter()
                .map(|(t, n)| format!("{t} ({n})"))
                .collect();
            s.push_str(&format!("\n  largest contributors: {}", top.join(", ")));
        }
        s
    }
}

/// Judges `plan` against `config`; `managed` counts the recorded resources per type.
pub fn judge(
    plan: &Plan,
    registry: &Registry,
    managed: &BTreeMap<String, u64>,
    config: &GuardConfig,
    allow_bulk: bool,
) -> Verdict {
    let provider_of = |t: &str| {
        registry
            .get(t)
            .map(|(p, _)| p.name().to_string())
            .unwrap_or_else(|| "unknown".into())
    };
    let mut destroyed: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_tenant: BTreeMap<String, u64> = BTreeMap::new();
    let mut data_loss: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // The tightest tenant limit of the providers losing data applies.
    let mut max_tenants = usize::MAX;
    for c in &plan.changes {
        if !c.action.destroys() {
            continue;
        }
        let provider = provider_of(&c.address.rtype);
        *per_tenant.entry(c.address.scope.to_string()).or_default() += 1;
        if c.action == Action::Delete && DATA_TYPES.contains(&c.address.rtype.as_str()) {
            max_tenants = max_tenants.min(config.limits(&provider).max_destroyed_tenants);
            data_loss
                .entry(c.address.scope.to_string())
                .or_default()
                .push(c.address.to_string());
        }
        *destroyed.entry(provider).or_default() += 1;
    }
    let mut total: BTreeMap<String, u64> = BTreeMap::new();
    for (t, n) in managed {
        *total.entry(provider_of(t)).or_default() += n;
    }
    let mut refusals = vec![];
    let mut losses = vec![];
    for (provider, n) in destroyed {
        let limits = config.limits(&provider);
        let loss = ProviderLoss {
            managed: total.get(&provider).copied().unwrap_or(0).max(n),
            provider,
            destroyed: n,
            limit_percent: limits.max_destroy_percent,
        };
        if loss.managed >= limits.min_managed && loss.percent() > limits.max_destroy_percent {
            refusals.push(format!(
                "{}: deletes or replaces {} of {} managed resources ({:.1} %, limit {} %)",
                loss.provider,
                loss.destroyed,
                loss.managed,
                loss.percent(),
                limits.max_destroy_percent
            ));
        }
        losses.push(loss);
    }
    if data_loss.len() > max_tenants {
        let names: Vec<&str> = data_loss.keys().map(String::as_str).take(10).collect();
        let more = data_loss.len().saturating_sub(names.len());
        refusals.push(format!(
            "deletes zones, keys, vaults, databases or buckets of {} tenants (limit {max_tenants}): {}{}",
            data_loss.len(),
            names.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ));
    }
    let mut largest: Vec<(String, u64)> = per_tenant.into_iter().collect();
    largest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    largest.truncate(5);
    Verdict {
        refusals,
        losses,
        data_loss,
        largest,
        allow_bulk,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(changes: &[(&str, &str)]) -> Plan {
        let changes: Vec<serde_json::Value> = changes
            .iter()
            .map(|(a, action)| serde_json::json!({"address": a, "action": action, "reasons": [], "attributes": []}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "format_version": 1, "mode": "normal", "state_serial": 1, "input_hash": "",
            "tenants": [], "refreshed": false, "edges": [], "unchanged": 0, "changes": changes,
        }))
        .unwrap()
    }

    fn judge_with(p: &Plan, managed: u64, config: &GuardConfig) -> Verdict {
        let registry = Registry::with_providers(vec![], Default::default());
        let counts = BTreeMap::from([("aws_s3_bucket".to_string(), managed)]);
        judge(p, &registry, &counts, config, false)
    }

    #[test]
    fn deleting_buckets_of_two_tenants_is_refused_and_of_one_is_not() {
        let one = plan(&[("acme/aws_s3_bucket.data", "delete")]);
        assert!(!judge_with(&one, 1000, &GuardConfig::default()).refuses());
        let two = plan(&[
            ("acme/aws_s3_bucket.data", "delete"),
            ("globex/aws_s3_bucket.data", "delete"),
        ]);
        let v = judge_with(&two, 1000, &GuardConfig::default());
        assert!(v.refuses());
        assert!(
            v.refusals[0].contains("of 2 tenants (limit 1): acme, globex"),
            "{v:?}"
        );
        // A replaced bucket is counted against the percentage only.
        let replaced = plan(&[
            ("acme/aws_s3_bucket.data", "replace"),
            ("globex/aws_s3_bucket.data", "replace"),
        ]);
        assert!(!judge_with(&replaced, 1000, &GuardConfig::default()).refuses());
    }

    #[test]
    fn the_percentage_rule_needs_enough_managed_resources() {
        let p = plan(&[
            ("acme/aws_s3_bucket.x", "replace"),
            ("acme/aws_s3_bucket.y", "replace"),
        ]);
        assert!(!judge_with(&p, 9, &GuardConfig::default()).refuses());
        let v = judge_with(&p, 10, &GuardConfig::default());
        assert!(
            v.refusals[0].contains("2 of 10 managed resources (20.0 %, limit 10 %)"),
            "{v:?}"
        );
        let lax = GuardConfig {
            max_destroy_percent: Some(25.0),
            ..Default::default()
        };
        assert!(!judge_with(&p, 10, &lax).refuses());
    }
}
