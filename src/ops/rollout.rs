//! Rollouts: a plan applied wave by wave, each wave judged against its failure budget
//! before the next starts, with the progress kept in state (`rollout` note) so a paused
//! or halted rollout can be resumed or aborted by a later run.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{OpenState, OpsError, Session};
use crate::addr::SHARED;
use crate::apply::{self, Hook};
use crate::plan::waves::{self, WavePlan};
use crate::plan::Plan;
use crate::state::{now_precise, now_rfc3339};
use crate::workspace::fleet::{FailureBudget, RolloutConfig, TenantFacts, WaveSpec};

/// The state note holding the current rollout.
const NOTE: &str = "rollout";

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A run is applying it (or died doing so: resume continues it).
    Running,
    /// Stopped at a `pause_after` gate.
    Paused,
    /// Stopped because a wave's failures exceeded its budget (or the run was interrupted).
    Halted,
    /// Every wave is through.
    Finished,
    /// Ended by `rollout abort`.
    Aborted,
}

impl Status {
    /// The word shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Halted => "halted",
            Status::Finished => "finished",
            Status::Aborted => "aborted",
        }
    }
}

/// One wave's membership and progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaveRecord {
    /// Wave name.
    pub name: String,
    /// Every tenant of the wave, in rollout order.
    pub tenants: Vec<String>,
    /// Failed tenants tolerated, as configured.
    pub failure_budget: FailureBudget,
    /// Changes in flight at once.
    #[serde(default)]
    pub parallel: Option<usize>,
    /// Stop after this wave.
    #[serde(default)]
    pub pause_after: bool,
    /// Tenants with changes when the wave first ran (the budget's base).
    #[serde(default)]
    pub changed: usize,
    /// Tenants applied successfully by this rollout.
    #[serde(default)]
    pub done: Vec<String>,
    /// Tenants whose last attempt failed, with the first error.
    #[serde(default)]
    pub failed: BTreeMap<String, String>,
    /// RFC 3339 time the wave started first.
    #[serde(default)]
    pub started: Option<String>,
    /// RFC 3339 time it finished.
    #[serde(default)]
    pub finished: Option<String>,
}

impl WaveRecord {
    /// Failed tenants this wave tolerates.
    pub fn allowed_failures(&self) -> usize {
        self.failure_budget.allowed(self.changed)
    }
}

/// A rollout, as kept in state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Sortable id (start time).
    pub id: String,
    /// Digest of the workspace inputs it started from.
    pub input_hash: String,
    /// Who started it.
    pub actor: String,
    /// RFC 3339 start.
    pub started: String,
    /// RFC 3339 time of the last change.
    pub updated: String,
    /// Where it stands.
    pub status: Status,
    /// Index of the wave to run next (the halted wave when halted).
    pub wave: usize,
    /// The waves.
    pub waves: Vec<WaveRecord>,
}

impl Rollout {
    /// Whether a later run may continue it.
    pub fn resumable(&self) -> bool {
        matches!(
            self.status,
            Status::Running | Status::Paused | Status::Halted
        )
    }

    /// Tenants of the waves not through yet, not done: what resuming still applies.
    pub fn pending_tenants(&self) -> Vec<String> {
        let mut out: Vec<String> = self.waves[self.wave.min(self.waves.len())..]
            .iter()
            .flat_map(|w| w.tenants.iter().filter(|t| !w.done.contains(t)).cloned())
            .collect();
        if self.wave == 0 {
            out.push(SHARED.into());
        }
        out.sort();
        out
    }
}

/// How a rollout run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Every wave is through.
    Finished,
    /// Stopped at the gate after this wave.
    Paused(String),
    /// A wave's failures exceeded its budget.
    Halted {
        /// The wave.
        wave: String,
        /// Failed tenants and their first errors.
        failed: BTreeMap<String, String>,
        /// The budget.
        allowed: usize,
    },
    /// Stopped by an interrupt.
    Interrupted,
}

/// Receives a rollout's progress.
pub trait RolloutHook: Send + Sync {
    /// Wave `index` of `total` starts with `changes` resource changes; returns the hook
    /// for its changes.
    fn wave_started(
        &self,
        index: usize,
        total: usize,
        wave: &WaveRecord,
        tenants: usize,
        changes: usize,
    ) -> Box<dyn Hook>;
    /// The wave ended (its record updated); `applied` are the tenants it applied in this
    /// run (the failed ones are in `wave.failed`).
    fn wave_finished(&self, wave: &WaveRecord, report: &apply::Report, applied: &[String]);
}

/// The rollout recorded in state, if any.
pub fn load(st: &OpenState) -> Result<Option<Rollout>, OpsError> {
    let Some((_, v)) = st.store.notes(NOTE)?.into_iter().find(|(k, _)| k == NOTE) else {
        return Ok(None);
    };
    serde_json::from_value(v).map(Some).map_err(|e| {
        OpsError::Usage(format!(
            "the rollout recorded in state cannot be read ({e}); `landlord rollout abort` clears it"
        ))
    })
}

/// Writes the rollout to state.
pub fn save(st: &OpenState, r: &mut Rollout) -> Result<(), OpsError> {
    r.updated = now_rfc3339();
    let v = serde_json::to_value(&*r).map_err(|e| OpsError::Usage(e.to_string()))?;
    st.store.set_notes(vec![(NOTE.into(), Some(v))])?;
    Ok(())
}

/// The waves `config` makes of the workspace's tenants and of the tenants `plan` changes
/// that have no file any more.
pub fn assign(s: &Session, plan: &Plan, config: &RolloutConfig) -> Vec<(WaveSpec, Vec<String>)> {
    let selected = crate::addr::Selection::new(&plan.tenants);
    let mut facts: Vec<TenantFacts<'_>> =
        s.ws.tenants
            .iter()
            .filter(|t| selected.holds(&t.spec.id))
            .map(|t| TenantFacts {
                id: &t.spec.id,
                tier: Some(&t.spec.plan),
                labels: Some(&t.spec.labels),
                region: t.spec.region.as_deref(),
            })
            .collect();
    let known: BTreeSet<&str> = facts.iter().map(|f| f.id).collect();
    let gone: BTreeSet<&str> = plan
        .changes
        .iter()
        .map(|c| c.address.scope.as_str())
        .filter(|t| *t != SHARED && !known.contains(t))
        .collect();
    facts.extend(gone.into_iter().map(|id| TenantFacts {
        id,
        tier: None,
        labels: None,
        region: None,
    }));
    waves::assign(&facts, &config.waves)
}

/// The rollout configuration of a run: `file` when given, else `[rollout]`.
pub fn config(s: &Session, file: Option<&std::path::Path>) -> Result<RolloutConfig, OpsError> {
    match file {
        Some(f) => RolloutConfig::from_file(f)
            .map_err(|e| OpsError::Load(crate::workspace::LoadErrors(vec![e]))),
        None => Ok(s.ws.config.rollout.clone()),
    }
}

/// Adds the waves to a plan (`plan --rollout`); certificate orders over a CA limit are
/// deferred in wave order.
pub fn with_waves(
    s: &Session,
    st: &OpenState,
    mut plan: Plan,
    config: &RolloutConfig,
) -> Result<Plan, OpsError> {
    let assigned = assign(s, &plan, config);
    plan.waves = waves::plan_waves(&plan, &assigned);
    super::ca_limits::refresh(&mut plan, &s.registry, st)?;
    let deferred: BTreeSet<&str> = plan.deferred.iter().map(|d| d.tenant.as_str()).collect();
    for w in &mut plan.waves {
        w.deferred = w
            .changed
            .iter()
            .filter(|t| deferred.contains(t.as_str()))
            .cloned()
            .collect();
    }
    Ok(plan)
}

/// A new rollout of a plan with waves; refuses while an unfinished rollout of the same
/// inputs exists (that one is resumed or aborted, not restarted).
pub fn begin(st: &OpenState, plan: &Plan) -> Result<Rollout, OpsError> {
    if let Some(old) = load(st)? {
        if old.resumable() && old.input_hash == plan.input_hash {
            return Err(OpsError::Usage(format!(
                "a rollout of these inputs is {} at wave `{}`: run `landlord rollout resume` to go on or `landlord rollout abort` to end it",
                old.status.as_str(),
                old.waves.get(old.wave).map_or("-", |w| w.name.as_str())
            )));
        }
    }
    let now = now_rfc3339();
    Ok(Rollout {
        id: format!(
            "{:020}",
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        ),
        input_hash: plan.input_hash.clone(),
        actor: super::actor(),
        started: now.clone(),
        updated: now,
        status: Status::Running,
        wave: 0,
        waves: plan
            .waves
            .iter()
            .map(|w: &WavePlan| WaveRecord {
                name: w.name.clone(),
                tenants: w.tenants.clone(),
                failure_budget: w.failure_budget,
                parallel: w.parallel,
                pause_after: w.pause_after,
                changed: 0,
                done: vec![],
                failed: BTreeMap::new(),
                started: None,
                finished: None,
            })
            .collect(),
    })
}

/// Applies `plan` wave by wave from the rollout's current wave, recording progress after
/// every wave; tenants done by this rollout are never applied again.
pub async fn run(
    s: &Session,
    st: &OpenState,
    plan: &Plan,
    rollout: &mut Rollout,
    opts: &apply::Options,
    hook: &dyn RolloutHook,
) -> Result<Ending, OpsError> {
    rollout.status = Status::Running;
    save(st, rollout)?;
    let total = rollout.waves.len();
    while rollout.wave < total {
        let i = rollout.wave;
        let wave = &rollout.waves[i];
        let mut scopes: BTreeSet<String> = wave
            .tenants
            .iter()
            .filter(|t| !wave.done.contains(t))
            .cloned()
            .collect();
        if i == 0 {
            scopes.insert(SHARED.into());
        }
        let part = waves::subplan(plan, &scopes);
        let changed: BTreeSet<String> = part
            .changes
            .iter()
            .map(|c| c.address.scope.to_string())
            .collect();
        let tenants_changed = changed.iter().filter(|t| *t != SHARED).count();
        let w = &mut rollout.waves[i];
        w.started.get_or_insert_with(now_precise);
        w.changed = w.changed.max(tenants_changed);
        if !part.has_changes() {
            w.finished = Some(now_precise());
            w.failed.clear();
            rollout.wave += 1;
            save(st, rollout)?;
            continue;
        }
        let progress = hook.wave_started(i, total, w, tenants_changed, part.changes.len());
        let mut wave_opts = opts.clone();
        if let Some(p) = w.parallel {
            wave_opts.parallelism = p;
        }
        let command = format!("landlord apply --rollout (wave {})", w.name);
        let report = super::run_plan(s, st, &part, &command, &wave_opts, progress.as_ref()).await?;
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        for (a, m) in &report.failed {
            failed
                .entry(a.scope.to_string())
                .or_insert_with(|| format!("{a}: {m}"));
        }
        for a in &report.skipped {
            failed
                .entry(a.scope.to_string())
                .or_insert_with(|| format!("{a}: skipped, a dependency failed"));
        }
        let w = &mut rollout.waves[i];
        let applied: Vec<String> = changed
            .iter()
            .filter(|t| *t != SHARED && !failed.contains_key(*t) && report.interrupted.is_none())
            .cloned()
            .collect();
        w.done.extend(applied.iter().cloned());
        // `_shared` failing fails the wave outright: every tenant builds on it.
        let shared_failed = failed.remove(SHARED);
        w.failed = failed;
        if let Some(e) = shared_failed {
            w.failed.insert(SHARED.into(), e);
        }
        hook.wave_finished(w, &report, &applied);
        if report.interrupted.is_some() {
            rollout.status = Status::Halted;
            save(st, rollout)?;
            return Ok(Ending::Interrupted);
        }
        let allowed = w.allowed_failures();
        let over = w.failed.contains_key(SHARED) || w.failed.len() > allowed;
        if over {
            let (wave, failed) = (w.name.clone(), w.failed.clone());
            rollout.status = Status::Halted;
            save(st, rollout)?;
            return Ok(Ending::Halted {
                wave,
                failed,
                allowed,
            });
        }
        w.finished = Some(now_precise());
        let (name, pause) = (w.name.clone(), w.pause_after);
        rollout.wave += 1;
        if pause && rollout.wave < total {
            rollout.status = Status::Paused;
            save(st, rollout)?;
            return Ok(Ending::Paused(name));
        }
        save(st, rollout)?;
    }
    rollout.status = Status::Finished;
    save(st, rollout)?;
    Ok(Ending::Finished)
}

/// Ends the recorded rollout (`rollout abort`); returns it.
pub fn abort(st: &OpenState) -> Result<Rollout, OpsError> {
    let mut r = load(st)?.ok_or_else(|| OpsError::Usage("there is no rollout to abort".into()))?;
    if !r.resumable() {
        return Err(OpsError::Usage(format!(
            "the last rollout is already {}",
            r.status.as_str()
        )));
    }
    r.status = Status::Aborted;
    save(st, &mut r)?;
    Ok(r)
}
