//! `landlord.toml`: workspace name and variables, state backend, provider settings, regions.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::error::WorkspaceError;

/// The parsed `landlord.toml`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[workspace]`: name and template variables.
    #[serde(default)]
    pub workspace: WorkspaceSection,
    /// `[state]`: where state lives.
    #[serde(default)]
    pub state: StateSection,
    /// `[providers.<name>]`: provider settings, parsed by each provider.
    #[serde(default)]
    pub providers: BTreeMap<String, toml::Table>,
    /// `[regions]`: extra region → jurisdiction mappings for residency checks.
    #[serde(default)]
    pub regions: BTreeMap<String, String>,
    /// `[guard]`: thresholds of the bulk-change guard.
    #[serde(default)]
    pub guard: super::fleet::GuardConfig,
    /// `[rollout]`: the waves of `apply --rollout`.
    #[serde(default)]
    pub rollout: super::fleet::RolloutConfig,
    /// `[notify]`: webhooks told how runs ended.
    #[serde(default)]
    pub notify: NotifyConfig,
}

/// `[notify]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// `[[notify.webhook]]`: where to send.
    #[serde(default)]
    pub webhook: Vec<WebhookConfig>,
    /// The first wait before a failed delivery is tried again (doubled each time).
    #[serde(default = "default_backoff", deserialize_with = "de_duration")]
    pub backoff: std::time::Duration,
    /// How long one delivery may take, retries included.
    #[serde(default = "default_notify_timeout", deserialize_with = "de_duration")]
    pub timeout: std::time::Duration,
}

fn default_notify_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}

fn default_backoff() -> std::time::Duration {
    std::time::Duration::from_secs(1)
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    let s = String::deserialize(d)?;
    crate::duration::parse_duration(&s).map_err(serde::de::Error::custom)
}

/// One `[[notify.webhook]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The environment variable holding the URL (URLs often carry a token).
    pub url_env: String,
    /// Events to send; every event when omitted.
    #[serde(default)]
    pub events: Vec<NotifyEvent>,
    /// The environment variable holding the HMAC-SHA256 secret that signs each body
    /// (`X-Hub-Signature-256`, as GitHub signs its webhooks).
    #[serde(default)]
    pub secret_env: Option<String>,
}

/// What a webhook can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum NotifyEvent {
    /// An apply or destroy finished without a failed resource.
    #[serde(rename = "apply.succeeded")]
    ApplySucceeded,
    /// An apply or destroy failed, wholly or for some resources.
    #[serde(rename = "apply.failed")]
    ApplyFailed,
    /// A drift check found drift.
    #[serde(rename = "drift.found")]
    DriftFound,
    /// A drift check found none.
    #[serde(rename = "drift.clean")]
    DriftClean,
    /// A rollout stopped on its failure budget.
    #[serde(rename = "rollout.halted")]
    RolloutHalted,
}

impl NotifyEvent {
    /// The event's name.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::ApplySucceeded => "apply.succeeded",
            NotifyEvent::ApplyFailed => "apply.failed",
            NotifyEvent::DriftFound => "drift.found",
            NotifyEvent::DriftClean => "drift.clean",
            NotifyEvent::RolloutHalted => "rollout.halted",
        }
    }
}

/// `[workspace]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceSection {
    /// Workspace name, available to templates as `workspace.name`.
    #[serde(default)]
    pub name: String,
    /// Free variables, available to templates as `workspace.vars`.
    #[serde(default)]
    pub vars: toml::Table,
}

/// `[state]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// Backend name: `sled` (embedded, the default), `s3` or `postgres` (shared).
    #[serde(default = "default_backend")]
    pub backend: String,
    /// S3 backend: bucket.
    #[serde(default)]
    pub bucket: Option<String>,
    /// S3 backend: object key of the state (default `landlord/state.json`).
    #[serde(default)]
    pub key: Option<String>,
    /// S3 backend: region of the bucket (default: the AWS SDK's region chain); also the
    /// region of `kms_key_id`.
    #[serde(default)]
    pub region: Option<String>,
    /// A KMS key that encrypts the master key in `key_file` (instead of a plain key file).
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// PostgreSQL backend: the environment variable holding the connection URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// PostgreSQL backend: a `[providers.postgresql.<name>]` server to keep state on
    /// (instead of `url_env`).
    #[serde(default)]
    pub server: Option<String>,
    /// PostgreSQL backend with `server`: the database (default: the server's).
    #[serde(default)]
    pub database: Option<String>,
    /// PostgreSQL backend: the schema of landlord's tables (default `landlord`).
    #[serde(default)]
    pub schema: Option<String>,
    /// State directory, relative to the workspace.
    #[serde(default = "default_state_path")]
    pub path: String,
    /// Master key file used when `LANDLORD_MASTER_KEY` is not set, relative to the workspace.
    #[serde(default = "default_key_file")]
    pub key_file: String,
}

impl Default for StateSection {
    fn default() -> Self {
        StateSection {
            backend: default_backend(),
            bucket: None,
            key: None,
            region: None,
            kms_key_id: None,
            url_env: None,
            server: None,
            database: None,
            schema: None,
            path: default_state_path(),
            key_file: default_key_file(),
        }
    }
}

fn default_backend() -> String {
    "sled".into()
}
fn default_state_path() -> String {
    "state".into()
}
fn default_key_file() -> String {
    ".landlord/master.key".into()
}

impl Config {
    /// Parses `landlord.toml` text; `path` names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, WorkspaceError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            WorkspaceError::syntax(
                path,
                format!(
                    "invalid landlord.toml: {}",
                    crate::suggest::with_hint(e.message())
                ),
            )
            .at_line(line)
        })?;
        let st = &cfg.state;
        let problem = match (st.backend.as_str(), &st.bucket) {
            ("sled", _) | ("s3", Some(_)) => None,
            ("postgres", _) => match (&st.url_env, &st.server) {
                (Some(_), None) | (None, Some(_)) => None,
                (Some(_), Some(_)) => Some((
                    "the `postgres` state backend takes `url_env` or `server`, not both".to_string(),
                    "state.server",
                )),
                (None, None) => Some((
                    "the `postgres` state backend needs `url_env` (the environment variable holding the connection URL) or `server` (a [providers.postgresql.<name>] server, with `database`)".to_string(),
                    "state.url_env",
                )),
            },
            ("s3", None) => Some((
                "the `s3` state backend needs `bucket` (and optionally `key`, `region`)".to_string(),
                "state.bucket",
            )),
            (other, _) => Some((
                format!("unknown state backend `{other}`: expected `sled`, `s3` or `postgres`"),
                "state.backend",
            )),
        };
        if let Some((message, field)) = problem {
            return Err(WorkspaceError::policy(path, message).field(field));
        }
        cfg.rollout
            .check()
            .map_err(|m| WorkspaceError::policy(path, m).field("rollout.waves"))?;
        Ok(cfg)
    }

    /// The jurisdiction a region belongs to (`eu-west-1` → `eu`), if known.
    pub fn jurisdiction(&self, region: &str) -> Option<String> {
        if let Some(j) = self.regions.get(region) {
            return Some(j.clone());
        }
        const AZURE_EU: &[&str] = &[
            "westeurope",
            "northeurope",
            "francecentral",
            "germanywestcentral",
            "swedencentral",
        ];
        const AZURE_US: &[&str] = &[
            "eastus",
            "eastus2",
            "westus",
            "westus2",
            "westus3",
            "centralus",
        ];
        if AZURE_EU.contains(&region) {
            return Some("eu".into());
        }
        if AZURE_US.contains(&region) {
            return Some("us".into());
        }
        let prefix = region.split('-').next()?;
        matches!(
            prefix,
            "eu" | "us" | "ca" | "ap" | "sa" | "me" | "af" | "il" | "mx"
        )
        .then(|| prefix.to_string())
    }
}
