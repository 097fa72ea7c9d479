//! Fleet settings of `landlord.toml`: the bulk-change guard's thresholds (`[guard]`)
//! and rollout waves (`[rollout]`).

use std::collections::BTreeMap;

use serde::Deserialize;

/// Thresholds applied to one provider.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest share of a provider's managed resources one plan may delete or replace.
    pub max_destroy_percent: f64,
    /// The percentage rule applies from this many managed resources on.
    pub min_managed: u64,
    /// Most tenants whose data-holding resources one plan may delete.
    pub max_destroyed_tenants: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_destroy_percent: 10.0,
            min_managed: 10,
            max_destroyed_tenants: 1,
        }
    }
}

/// Thresholds as written in `landlord.toml` (unset ones fall back).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// See [`Limits::max_destroy_percent`].
    pub max_destroy_percent: Option<f64>,
    /// See [`Limits::min_managed`].
    pub min_managed: Option<u64>,
    /// See [`Limits::max_destroyed_tenants`].
    pub max_destroyed_tenants: Option<usize>,
}

/// `[guard]` of `landlord.toml`: defaults, and overrides in `[guard.providers.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// See [`Limits::max_destroy_percent`].
    pub max_destroy_percent: Option<f64>,
    /// See [`Limits::min_managed`].
    pub min_managed: Option<u64>,
    /// See [`Limits::max_destroyed_tenants`].
    pub max_destroyed_tenants: Option<usize>,
    /// Per-provider overrides.
    #[serde(default)]
    pub providers: BTreeMap<String, LimitsSection>,
}

impl GuardConfig {
    /// The limits of `provider`: its own, else the workspace's, else the built-in ones.
    pub fn limits(&self, provider: &str) -> Limits {
        let own = self.providers.get(provider).copied().unwrap_or_default();
        let d = Limits::default();
        Limits {
            max_destroy_percent: own
                .max_destroy_percent
                .or(self.max_destroy_percent)
                .unwrap_or(d.max_destroy_percent),
            min_managed: own
                .min_managed
                .or(self.min_managed)
                .unwrap_or(d.min_managed),
            max_destroyed_tenants: own
                .max_destroyed_tenants
                .or(self.max_destroyed_tenants)
                .unwrap_or(d.max_destroyed_tenants),
        }
    }
}
