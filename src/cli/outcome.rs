//! The outcome of the running command, noted as it goes, then written to
//! `--metrics-file` and sent to `[notify]` webhooks once the command has ended.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use crate::apply;
use crate::ops::Session;
use crate::plan::{drift, Plan, Summary};
use crate::report::{self, Failure, Outcome};
use crate::workspace::config::NotifyConfig;

/// The outcome of this process's command, when it is one that reports.
static RUN: Mutex<Option<Noted>> = Mutex::new(None);

/// The outcome so far, and `[notify]` with the workspace name once a session read them.
struct Noted {
    outcome: Outcome,
    notify: Option<(NotifyConfig, String)>,
}

/// Changes something of the outcome being noted (nothing when no command reports).
fn note(f: impl FnOnce(&mut Outcome)) {
    if let Some(n) = RUN.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        f(&mut n.outcome);
    }
}

/// A reporting command has started.
pub struct Watch {
    start: Instant,
    metrics: Option<PathBuf>,
}

/// Starts noting the outcome of `command`.
pub fn begin(command: &str, metrics: Option<PathBuf>) -> Watch {
    *RUN.lock().unwrap_or_else(|e| e.into_inner()) = Some(Noted {
        outcome: Outcome {
            run_id: report::run_id(),
            command: command.to_string(),
            ..Outcome::default()
        },
        notify: None,
    });
    Watch {
        start: Instant::now(),
        metrics,
    }
}

/// The session's tenants, their statuses, and the API calls made so far.
pub fn session(s: &Session) {
    if let Some(n) = RUN.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        n.notify = Some((
            s.ws.config.notify.clone(),
            s.ws.config.workspace.name.clone(),
        ));
    }
    let calls = s.registry.stats().snapshot();
    note(|o| {
        o.tenant_status.clear();
        for t in &s.ws.tenants {
            *o.tenant_status
                .entry(t.spec.status.as_str().to_string())
                .or_insert(0) += 1;
        }
        o.api_calls = calls.into_iter().map(|((p, op), n)| (p, op, n)).collect();
    });
}

/// The tenants `p` changes (`_shared` for the workspace's own resources).
pub fn touched(p: &Plan) -> BTreeSet<String> {
    p.changes
        .iter()
        .map(|c| c.address.scope.as_str().to_string())
        .collect()
}

/// The changes of a plan (what `plan` would do) and the tenants they touch.
pub fn planned(s: &Summary, tenants: BTreeSet<String>) {
    let tenants = tenants.into_iter().collect();
    note(|o| {
        o.changes = [
            ("add", s.add),
            ("change", s.change),
            ("replace", s.replace),
            ("destroy", s.destroy),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v as u64))
        .collect();
        o.tenants = tenants;
    });
}

/// What an apply, a destroy or one wave of a rollout did, to which tenants; a rollout's
/// waves add up.
pub fn applied(r: &apply::Report, tenants: BTreeSet<String>) {
    note(|o| {
        for (k, v) in [
            ("add", r.created),
            ("change", r.updated),
            ("replace", r.replaced),
            ("destroy", r.deleted),
        ] {
            *o.changes.entry(k.to_string()).or_insert(0) += v as u64;
        }
        let mut all: BTreeSet<String> = std::mem::take(&mut o.tenants).into_iter().collect();
        all.extend(tenants);
        o.tenants = all.into_iter().collect();
        o.failures.extend(r.failed.iter().map(|(a, e)| Failure {
            address: a.to_string(),
            error: e.clone(),
        }));
    });
}

/// A rollout stopped on its failure budget.
pub fn halted() {
    note(|o| o.rollout_halted = true);
}

/// What a drift check found.
pub fn drifted(r: &drift::Report) {
    let tenants: Vec<String> = r.tenants.keys().cloned().collect();
    let drifted: Vec<String> = drift::tenant_lines(r)
        .keys()
        .map(|t| t.to_string())
        .collect();
    note(|o| {
        o.drifted = Some(r.items.len() as u64);
        o.drifted_tenants = drifted;
        o.tenants = tenants;
    });
}

impl Watch {
    /// Ends the outcome with the command's result, writes the metrics file and sends the
    /// notifications; failures to do so are warnings.
    pub async fn finish(self, dir: &Path, result: &anyhow::Result<u8>) {
        let Some(Noted {
            outcome: mut o,
            notify,
        }) = RUN.lock().unwrap_or_else(|e| e.into_inner()).take()
        else {
            return;
        };
        o.duration_seconds = self.start.elapsed().as_secs_f64();
        o.finished_at = crate::state::now_rfc3339();
        match result {
            // 2 is "changes" (plan) or "drift" (drift): the command did its job.
            Ok(code) => o.succeeded = *code == super::EXIT_OK || *code == super::EXIT_CHANGES,
            Err(e) => {
                o.succeeded = false;
                o.error = Some(format!("{e:#}"));
            }
        }
        if let Some(path) = &self.metrics {
            if let Err(e) = report::metrics::write(&crate::ops::out_path(dir, path), &o) {
                eprintln!("warning: {e}");
            }
        }
        // A run that failed before its session read landlord.toml reads it now; one that
        // cannot be read has already failed the run with its own error.
        let notify = notify.or_else(|| {
            crate::workspace::load_config(dir)
                .ok()
                .map(|c| (c.notify, c.workspace.name))
        });
        if let Some((config, workspace)) = notify {
            for w in report::notify::send(&config, &o, &workspace).await {
                eprintln!("warning: {w}");
            }
        }
    }
}
