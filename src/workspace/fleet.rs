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
/// `[rollout]` of `landlord.toml`: the waves `apply --rollout` goes through, in order.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// The waves.
    #[serde(default)]
    pub waves: Vec<WaveSpec>,
}

/// One wave of a rollout.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WaveSpec {
    /// Name shown in plans and status.
    pub name: String,
    /// Which of the tenants left by earlier waves may fall in this one (default: all).
    #[serde(default)]
    pub select: Selector,
    /// At most this many tenants.
    pub max_tenants: Option<usize>,
    /// This share (in percent) of the selected tenants left, in a stable order.
    pub percent: Option<f64>,
    /// Changes in flight at once in this wave (default: `--parallelism`).
    pub parallel: Option<usize>,
    /// Failed tenants the wave tolerates before the rollout halts: a count, or `"N%"`
    /// of the wave's tenants with changes.
    #[serde(default)]
    pub failure_budget: FailureBudget,
    /// Stop after this wave until `landlord rollout resume`.
    #[serde(default)]
    pub pause_after: bool,
}

/// Which tenants a wave selects: `"rest"`, or a table whose every given field must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Selector {
    /// Every tenant left (`select = "rest"`, or no `select`).
    #[default]
    Rest,
    /// Tenants matching every given field.
    Match(Match),
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Table(toml::Table),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "rest" => Ok(Selector::Rest),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "select `{w}`: expected \"rest\" or a table like {{ labels = {{ ring = \"canary\" }} }}, {{ tier = \"enterprise\" }}, {{ region = \"eu-west-1\" }} or {{ ids = [\"acme\"] }}"
            ))),
            Raw::Table(t) => Match::deserialize(toml::Value::Table(t))
                .map(Selector::Match)
                .map_err(|e| serde::de::Error::custom(format!("select: {}", e.message()))),
        }
    }
}

/// The fields of a selector table.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Tenant ids.
    #[serde(default)]
    pub ids: Vec<String>,
    /// Tier name.
    pub tier: Option<String>,
    /// Labels, all of which must be set to these values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Home region.
    pub region: Option<String>,
}

/// What a wave selector sees of a tenant.
#[derive(Debug, Clone, Copy)]
pub struct TenantFacts<'a> {
    /// Id.
    pub id: &'a str,
    /// Tier (none for a tenant known only from state).
    pub tier: Option<&'a str>,
    /// Labels.
    pub labels: Option<&'a BTreeMap<String, String>>,
    /// Home region.
    pub region: Option<&'a str>,
}

impl Selector {
    /// Whether the tenant falls under this selector.
    pub fn matches(&self, t: &TenantFacts<'_>) -> bool {
        let Selector::Match(m) = self else {
            return true;
        };
        (m.ids.is_empty() || m.ids.iter().any(|i| i == t.id))
            && m.tier.as_deref().is_none_or(|x| t.tier == Some(x))
            && m.region.as_deref().is_none_or(|x| t.region == Some(x))
            && m.labels
                .iter()
                .all(|(k, v)| t.labels.and_then(|l| l.get(k)) == Some(v))
    }
}

/// A failure budget: a count, or a percentage of the wave.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum FailureBudget {
    /// At most this many failed tenants.
    #[default]
    Zero,
    /// At most this many failed tenants.
    Count(usize),
    /// At most this share of the wave's tenants with changes (rounded down).
    Percent(f64),
}

impl FailureBudget {
    /// The number of failed tenants tolerated in a wave of `n` tenants with changes.
    pub fn allowed(self, n: usize) -> usize {
        match self {
            FailureBudget::Zero => 0,
            FailureBudget::Count(c) => c,
            FailureBudget::Percent(p) => (n as f64 * p / 100.0).floor() as usize,
        }
    }
}

impl serde::Serialize for FailureBudget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FailureBudget::Zero => s.serialize_u64(0),
            FailureBudget::Count(c) => s.serialize_u64(*c as u64),
            FailureBudget::Percent(p) => s.serialize_str(&format!("{p}%")),
        }
    }
}

impl<'de> Deserialize<'de> for FailureBudget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(usize),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Count(c) => Ok(FailureBudget::Count(c)),
            Raw::Text(t) => t
                .trim()
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<f64>().ok())
                .filter(|p| (0.0..=100.0).contains(p))
                .map(FailureBudget::Percent)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "failure_budget `{t}` is neither a count nor a percentage like \"10%\""
                    ))
                }),
        }
    }
}

impl RolloutConfig {
    /// Reads the `[rollout]` table of a TOML file (`--rollout-config`), checked.
    pub fn from_file(path: &std::path::Path) -> Result<RolloutConfig, super::WorkspaceError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            rollout: RolloutConfig,
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            super::WorkspaceError::syntax(path, format!("cannot read the rollout file: {e}"))
        })?;
        let f: File = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            super::WorkspaceError::syntax(path, format!("invalid rollout file: {}", e.message()))
                .at_line(line)
        })?;
        f.rollout
            .check()
            .map_err(|m| super::WorkspaceError::policy(path, m).field("rollout.waves"))?;
        Ok(f.rollout)
    }

    /// Checks what serde cannot: names unique and given, shares within 0–100.
    pub fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for w in &self.waves {
            if w.name.trim().is_empty() {
                return Err("a rollout wave has an empty `name`".into());
            }
            if !seen.insert(w.name.as_str()) {
                return Err(format!("two rollout waves are named `{}`", w.name));
            }
            if let Some(p) = w.percent {
                if !(p > 0.0 && p <= 100.0) {
                    return Err(format!(
                        "wave `{}`: percent {p} is not within (0, 100]",
                        w.name
                    ));
                }
            }
            if w.parallel == Some(0) || w.max_tenants == Some(0) {
                return Err(format!(
                    "wave `{}`: `parallel` and `max_tenants` must be at least 1",
                    w.name
                ));
            }
        }
        Ok(())
    }
}
