//! What a run tells the places teams look, after it ends: pull-request comments and
//! drift issues on GitHub ([`github`]), merge-request notes on GitLab ([`gitlab`]), both
//! kept by [`comments`], signed webhooks ([`notify`]) and a Prometheus textfile
//! ([`metrics`]). Every one reads a finished run's [`Outcome`] or report.

pub mod comments;
pub mod github;
pub mod gitlab;
mod http;
pub mod metrics;
pub mod notify;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::workspace::config::NotifyEvent;

/// A report could not be made or delivered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A setting or environment variable is missing or wrong.
    #[error("{0}")]
    Setting(String),
    /// An input file cannot be read or is not what it should be.
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A request failed for good.
    #[error("{method} {url}: {message}")]
    Http {
        /// HTTP method.
        method: String,
        /// The URL, without credentials.
        url: String,
        /// Status and the service's message, or the transport error.
        message: String,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// Resources failed in a run, by address, with the error (never a secret: provider
/// errors are redacted before they reach a report).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Failure {
    /// Resource address.
    pub address: String,
    /// The error.
    pub error: String,
}

/// A finished run as reports see it: fleet-level counts, never attribute values.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// A unique id of this run.
    pub run_id: String,
    /// `plan`, `apply`, `destroy` or `drift`.
    pub command: String,
    /// Whether the run did what it was asked (drift found is a success of `drift`).
    pub succeeded: bool,
    /// Wall time, seconds.
    pub duration_seconds: f64,
    /// When it ended, RFC 3339.
    pub finished_at: String,
    /// Tenants the run covered.
    pub tenants: Vec<String>,
    /// Changes planned or made, by action (`add`, `change`, `replace`, `destroy`).
    pub changes: BTreeMap<String, u64>,
    /// Resources that failed.
    pub failures: Vec<Failure>,
    /// Resources found drifted (drift only).
    pub drifted: Option<u64>,
    /// Tenants with drift (drift only).
    pub drifted_tenants: Vec<String>,
    /// A rollout halted on its failure budget.
    pub rollout_halted: bool,
    /// API calls by (provider, operation).
    pub api_calls: Vec<(String, String, u64)>,
    /// Tenants of the workspace by status (`active`, `suspended`, `deleted`).
    pub tenant_status: BTreeMap<String, u64>,
    /// The error that ended the run, when it failed.
    pub error: Option<String>,
}

impl Outcome {
    /// The events of `[notify]` this run raises.
    pub fn events(&self) -> Vec<NotifyEvent> {
        let mut e = Vec::new();
        match self.command.as_str() {
            "apply" | "destroy" => e.push(if self.succeeded && self.failures.is_empty() {
                NotifyEvent::ApplySucceeded
            } else {
                NotifyEvent::ApplyFailed
            }),
            "drift" if self.succeeded => e.push(if self.drifted.unwrap_or(0) > 0 {
                NotifyEvent::DriftFound
            } else {
                NotifyEvent::DriftClean
            }),
            _ => {}
        }
        if self.rollout_halted {
            e.push(NotifyEvent::RolloutHalted);
        }
        e
    }
}

/// The value of environment variable `k`, unless unset or blank.
fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.trim().is_empty())
}

/// A fresh run id: time and process, unique across the runners of a fleet.
pub fn run_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{}-{}-{:04x}",
        now.unix_timestamp(),
        std::process::id(),
        rand::random::<u16>()
    )
}
