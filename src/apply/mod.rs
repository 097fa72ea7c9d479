//! The executor: runs a plan's changes along its execution graph with bounded
//! concurrency, batching per provider, retries with backoff, per-resource timeouts,
//! write-ahead intents and a durable state write after each resource. A failure stops
//! only the dependents of the failed resource. Also reconciles intents left by a killed run.
//!
//! Progress reaches the user only through `Hook`; this module never prints.

mod recover;
pub mod timing;
mod verify;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::task::JoinSet;

use crate::addr::ResourceAddr;
use crate::graph::ReadyQueue;
use crate::plan::resolve::{resolve_config, Known};
use crate::plan::retry::call_with_retries;
pub use crate::plan::retry::RetryPolicy;
use crate::plan::{Action, Plan, PlanError, ResourceChange};
use crate::providers::{
    ApplyRequest, ApplyResponse, DeleteRequest, ErrorKind, Interrupted, Provider, ProviderError,
    RecoverRequest, Recovery, Registry,
};
use crate::state::{
    now_precise, now_rfc3339, Intent, IntentOp, Outcome, ResourceRecord, StateError, StateStore,
};
use crate::value::{is_unknown, Attrs};

pub use recover::recover;

/// How to execute.
#[derive(Debug, Clone)]
pub struct Options {
    /// Resources in flight at once.
    pub parallelism: usize,
    /// How provider calls are retried and how long one may take.
    pub retry: RetryPolicy,
    /// On failure, delete what this run created.
    pub rollback_on_failure: bool,
    /// Set (by a signal handler) to stop starting new calls; the calls in flight finish.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            parallelism: 10,
            retry: RetryPolicy::default(),
            rollback_on_failure: false,
            stop: None,
        }
    }
}

/// How one resource ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcomes {
    /// Applied.
    Done(Duration),
    /// Failed with this message.
    Failed(String),
    /// Not attempted because a dependency failed.
    Skipped,
}

/// Receives progress; implementations must not block.
pub trait Hook: Send + Sync {
    /// A change starts.
    fn started(&self, _change: &ResourceChange) {}
    /// A change ended.
    fn finished(&self, _change: &ResourceChange, _outcome: &Outcomes) {}
    /// An intent left by a killed run was reconciled.
    fn recovered(&self, _address: &ResourceAddr, _what: &str) {}
    /// A resource created by this run is being rolled back.
    fn rolled_back(&self, _address: &ResourceAddr, _error: Option<&str>) {}
}

/// A hook that ignores everything.
pub struct NoHook;
impl Hook for NoHook {}

/// What apply did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Created resources.
    pub created: usize,
    /// Updated resources.
    pub updated: usize,
    /// Replaced resources.
    pub replaced: usize,
    /// Deleted resources.
    pub deleted: usize,
    /// Failures with their messages.
    pub failed: Vec<(ResourceAddr, String)>,
    /// Resources skipped because a dependency failed.
    pub skipped: Vec<ResourceAddr>,
    /// Resources deleted again by `--rollback-on-failure`.
    pub rolled_back: Vec<ResourceAddr>,
    /// Set when the run was stopped before the plan was through.
    pub interrupted: Option<Interruption>,
}

/// Where a stopped run left its plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Interruption {
    /// Changes applied and recorded.
    pub done: usize,
    /// Changes never started.
    pub not_started: usize,
    /// Changes started that did not end in a recorded success (failed, or in flight when
    /// the run stopped: their intents are reconciled by the next run).
    pub unresolved: usize,
}

impl Report {
    /// `3 created, 1 updated, 0 replaced, 2 deleted, 0 failed`.
    pub fn summary(&self) -> String {
        format!(
            "{} created, {} updated, {} replaced, {} deleted, {} failed, {} skipped",
            self.created,
            self.updated,
            self.replaced,
            self.deleted,
            self.failed.len(),
            self.skipped.len()
        )
    }
}

/// Apply failed as a whole (individual resource failures are in the report).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// State could not be written: the run stopped to avoid losing track of objects.
    #[error(transparent)]
    State(#[from] StateError),
    /// Intents left by a killed run could not be reconciled.
    #[error("cannot reconcile the interrupted operation on {address}: {message}")]
    Recover {
        /// Resource concerned.
        address: ResourceAddr,
        /// Cause.
        message: String,
    },
}

/// The step a change is at.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Delete,
    Put,
}

struct Job {
    change: usize,
    token: String,
    config: Attrs,
    sensitive: Vec<String>,
    prior: Option<ResourceRecord>,
}

enum TaskResult {
    Put(Vec<(usize, verify::Checked)>),
    Delete(Vec<(usize, Result<(), ProviderError>)>),
}

fn token(addr: &ResourceAddr) -> String {
    let mut r = [0u8; 8];
    rand::thread_rng().fill(&mut r);
    format!(
        "{}-{}-{}",
        addr,
        time::OffsetDateTime::now_utc().unix_timestamp_nanos(),
        hex::encode(r)
    )
}

async fn call_apply(
    p: Arc<dyn Provider>,
    reqs: Vec<ApplyRequest>,
    opts: Options,
) -> Vec<Result<ApplyResponse, ProviderError>> {
    call_with_retries(reqs, opts.retry, |batch, attempt| {
        let p = p.clone();
        async move {
            if attempt == 0 {
                return p.apply(batch).await;
            }
            // A create that failed may still have happened (a later step of it failed, or
            // the answer was lost): look for it with the same token before creating again.
            // An object found as planned is adopted; one found half-made (a throttled
            // later step) is finished as an update of what exists; only one surely not
            // there is created again.
            let mut out: Vec<Option<Result<ApplyResponse, ProviderError>>> =
                batch.iter().map(|_| None).collect();
            let mut again = Vec::new();
            for (i, mut r) in batch.into_iter().enumerate() {
                if r.prior.is_none() {
                    let found = p
                        .recover(RecoverRequest {
                            address: r.address.clone(),
                            op: Interrupted::Create,
                            config: r.config.clone(),
                            prior: None,
                            id: None,
                            token: r.token.clone(),
                        })
                        .await;
                    match found {
                        Ok(Recovery::Adopt(resp)) => {
                            if check_result(&r.config, &resp).is_ok() {
                                out[i] = Some(Ok(resp));
                                continue;
                            }
                            r.prior = Some(resp.attributes);
                        }
                        Ok(Recovery::Gone) => {}
                        // Not knowing whether the first attempt landed, creating again
                        // could make a second object: the lookup is retried instead.
                        Err(e) => {
                            out[i] = Some(Err(e));
                            continue;
                        }
                    }
                }
                again.push((i, r));
            }
            let (idx, rest): (Vec<usize>, Vec<ApplyRequest>) = again.into_iter().unzip();
            if !rest.is_empty() {
                for (i, res) in idx.into_iter().zip(p.apply(rest).await) {
                    out[i] = Some(res);
                }
            }
            out.into_iter()
                .map(|o| o.unwrap_or_else(|| Err(ProviderError::failed("no result from provider"))))
                .collect()
        }
    })
    .await
}

async fn call_delete(
    p: Arc<dyn Provider>,
    reqs: Vec<DeleteRequest>,
    opts: Options,
) -> Vec<Result<(), ProviderError>> {
    call_with_retries(reqs, opts.retry, |batch, _| p.delete_many(batch)).await
}

/// Checks that every known planned value survived apply.
fn check_result(config: &Attrs, got: &ApplyResponse) -> Result<(), ProviderError> {
    for (k, want) in config {
        if is_unknown(want) {
            continue;
        }
        if got.attributes.get(k) != Some(want) {
            return Err(ProviderError::failed(format!(
                "provider bug: attribute `{k}` came back different from the planned value"
            )));
        }
    }
    Ok(())
}

struct Run<'a> {
    plan: &'a Plan,
    store: &'a dyn StateStore,
    registry: &'a Registry,
    opts: &'a Options,
    hook: &'a dyn Hook,
    records: HashMap<ResourceAddr, ResourceRecord>,
    report: Report,
    created: Vec<ResourceAddr>,
    started: HashMap<usize, Instant>,
}

impl<'a> Run<'a> {
    fn provider(
        &self,
        change: &ResourceChange,
    ) -> Result<(Arc<dyn Provider>, &'a crate::providers::ResourceSchema), String> {
        self.registry
            .get(&change.address.rtype)
            .map(|(p, s)| (p.clone(), s))
            .ok_or_else(|| format!("no provider serves type `{}`", change.address.rtype))
    }

    /// Prepares a job: resolves references against what is recorded now; returns the
    /// intent to write before the provider call.
    fn prepare(&self, ci: usize, step: Step) -> Result<(Job, Intent), String> {
        let c = &self.plan.changes[ci];
        // A create (new, or deleted out of band) starts from nothing.
        let prior = if c.action == Action::Create {
            None
        } else {
            self.records.get(&c.address).cloned()
        };
        let (config, sensitive) = if step == Step::Put {
            let (_, schema) = self.provider(c)?;
            let known = |a: &ResourceAddr| {
                self.records.get(a).map(|r| Known {
                    attrs: &r.attributes,
                    sensitive: &r.sensitive,
                    complete: true,
                })
            };
            resolve_config(&c.address, &c.properties, schema, &known)
                .map_err(|e: PlanError| e.to_string())?
        } else {
            let p = prior.as_ref();
            (
                p.map(|p| p.attributes.clone()).unwrap_or_default(),
                p.map(|p| p.sensitive.clone()).unwrap_or_default(),
            )
        };
        let op = match (step, &prior) {
            (Step::Delete, _) => IntentOp::Delete,
            (Step::Put, Some(_)) => IntentOp::Update,
            (Step::Put, None) => IntentOp::Create,
        };
        let tok = token(&c.address);
        let intent = Intent {
            token: tok.clone(),
            address: c.address.clone(),
            op,
            config: config.clone(),
            sensitive: sensitive.clone(),
            dependencies: c.depends_on.clone(),
            lifecycle: c.lifecycle.clone(),
            started_at: now_precise(),
        };
        let job = Job {
            change: ci,
            token: tok,
            config,
            sensitive,
            prior,
        };
        Ok((job, intent))
    }

    fn record(&self, job: &Job, resp: ApplyResponse, provider: &str) -> ResourceRecord {
        let c = &self.plan.changes[job.change];
        let now = now_rfc3339();
        ResourceRecord {
            address: c.address.clone(),
            provider: provider.to_string(),
            id: resp.id,
            attributes: resp.attributes,
            sensitive: job.sensitive.clone(),
            dependencies: c.depends_on.clone(),
            lifecycle: c.lifecycle.clone(),
            created_at: job
                .prior
                .as_ref()
                .map(|p| p.created_at.clone())
                .unwrap_or_else(|| now.clone()),
            updated_at: now,
            serial: 0,
        }
    }
}

/// The tasks in flight and the changes each carries (to fail them if a task panics).
#[derive(Default)]
struct Tasks {
    set: JoinSet<(Vec<Job>, TaskResult)>,
    changes: HashMap<tokio::task::Id, Vec<usize>>,
}

/// Executes `plan` against `store`.
pub async fn apply(
    plan: &Plan,
    store: &dyn StateStore,
    registry: &Registry,
    opts: &Options,
    hook: &dyn Hook,
) -> Result<Report, ApplyError> {
    // A plan limited to some tenants reads only their records and those of the scopes
    // its changes depend on.
    let touched = plan
        .changes
        .iter()
        .flat_map(|c| std::iter::once(&c.address).chain(&c.depends_on));
    let records = crate::state::records_for(store, &plan.tenants, touched)?
        .into_iter()
        .map(|r| (r.address.clone(), r))
        .collect();
    let mut run = Run {
        plan,
        store,
        registry,
        opts,
        hook,
        records,
        report: Report::default(),
        created: vec![],
        started: HashMap::new(),
    };
    let dag = plan.dag();
    let mut queue = ReadyQueue::new(&dag);
    // Second steps (the create half of a replace) run before new work.
    let mut follow_ups: VecDeque<(usize, Step)> = VecDeque::new();
    // Ready changes not yet handed to a task.
    let mut pending: VecDeque<(usize, Step)> = VecDeque::new();
    let mut tasks = Tasks::default();
    // The bound is on provider calls in flight: a batch of records is one call.
    let parallelism = opts.parallelism.max(1);
    let stopping = || {
        opts.stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
    };

    loop {
        for x in follow_ups.drain(..).rev() {
            pending.push_front(x);
        }
        while let Some(i) = queue.pop() {
            pending.push_back((i, first_step(plan.changes[i].action)));
        }
        while tasks.set.len() < parallelism && !stopping() {
            let Some((ci, step)) = pending.pop_front() else {
                break;
            };
            dispatch(&mut run, &mut queue, &mut pending, &mut tasks, ci, step)?;
        }
        if tasks.set.is_empty() && (pending.is_empty() || stopping()) {
            break;
        }
        let Some(joined) = tasks.set.join_next_with_id().await else {
            break;
        };
        let (jobs, result) = match joined {
            Ok((id, x)) => {
                tasks.changes.remove(&id);
                x
            }
            // The outcome of the calls is unknown: their intents stay for the next run.
            Err(e) => {
                let err = ProviderError::new(ErrorKind::Panicked, e.to_string());
                for ci in tasks.changes.remove(&e.id()).unwrap_or_default() {
                    let msg = format!("{err}; the next run will reconcile it");
                    fail(&mut run, &mut queue, ci, msg);
                }
                continue;
            }
        };
        match result {
            TaskResult::Delete(results) => {
                on_deleted(&mut run, &mut queue, &mut follow_ups, &jobs, results)?
            }
            TaskResult::Put(results) => on_applied(&mut run, &mut queue, &jobs, results)?,
        }
    }
    if stopping() {
        let r = &run.report;
        let done = r.created + r.updated + r.replaced + r.deleted;
        let started = run.started.len();
        run.report.interrupted = Some(Interruption {
            done,
            not_started: plan.changes.len().saturating_sub(started),
            unresolved: started.saturating_sub(done),
        });
        return Ok(run.report);
    }
    if opts.rollback_on_failure && !run.report.failed.is_empty() {
        rollback(&mut run).await?;
    }
    Ok(run.report)
}

/// Takes from `pending` the changes that may share one call with `first`: same type and
/// step, up to `max` in all, keeping the order of the rest.
fn take_batch(
    plan: &Plan,
    pending: &mut VecDeque<(usize, Step)>,
    first: usize,
    step: Step,
    max: usize,
) -> Vec<usize> {
    let mut group = vec![first];
    if max <= 1 {
        return group;
    }
    let rtype = &plan.changes[first].address.rtype;
    let mut rest = VecDeque::with_capacity(pending.len());
    for (cj, sj) in pending.drain(..) {
        if group.len() < max && sj == step && plan.changes[cj].address.rtype == *rtype {
            group.push(cj);
        } else {
            rest.push_back((cj, sj));
        }
    }
    *pending = rest;
    group
}

/// Starts one provider call for `ci` and the ready changes batched with it, after writing
/// their intents.
fn dispatch(
    run: &mut Run<'_>,
    queue: &mut ReadyQueue<'_>,
    pending: &mut VecDeque<(usize, Step)>,
    tasks: &mut Tasks,
    ci: usize,
    step: Step,
) -> Result<(), ApplyError> {
    let plan = run.plan;
    let c = &plan.changes[ci];
    let provider = match run.provider(c) {
        Ok((p, _)) => p,
        Err(msg) => {
            start(run, ci);
            fail(run, queue, ci, msg);
            return Ok(());
        }
    };
    let max = provider.max_batch(&c.address.rtype).max(1);
    let mut jobs = Vec::new();
    let mut intents = Vec::new();
    for cj in take_batch(plan, pending, ci, step, max) {
        start(run, cj);
        match run.prepare(cj, step) {
            Ok((job, intent)) => {
                jobs.push(job);
                intents.push(intent);
            }
            Err(msg) => fail(run, queue, cj, msg),
        }
    }
    if jobs.is_empty() {
        return Ok(());
    }
    run.store.begin_many(&intents)?;
    let idx: Vec<usize> = jobs.iter().map(|j| j.change).collect();
    let o = run.opts.clone();
    let handle = if step == Step::Delete {
        let reqs: Vec<DeleteRequest> = jobs
            .iter()
            .map(|j| DeleteRequest {
                address: plan.changes[j.change].address.clone(),
                id: j.prior.as_ref().map(|p| p.id.clone()).unwrap_or_default(),
                prior: j
                    .prior
                    .as_ref()
                    .map(|p| p.attributes.clone())
                    .unwrap_or_default(),
            })
            .collect();
        let ids = idx.clone();
        tasks.set.spawn(async move {
            let out = call_delete(provider, reqs, o).await;
            (jobs, TaskResult::Delete(ids.into_iter().zip(out).collect()))
        })
    } else {
        let reqs: Vec<ApplyRequest> = jobs
            .iter()
            .map(|j| ApplyRequest {
                address: plan.changes[j.change].address.clone(),
                prior: j.prior.as_ref().map(|p| p.attributes.clone()),
                config: j.config.clone(),
                token: j.token.clone(),
            })
            .collect();
        let ids = idx.clone();
        tasks.set.spawn(async move {
            let out = call_apply(provider.clone(), reqs.clone(), o.clone()).await;
            let out = verify::verify(&provider, &o, &reqs, out).await;
            (jobs, TaskResult::Put(ids.into_iter().zip(out).collect()))
        })
    };
    tasks.changes.insert(handle.id(), idx);
    Ok(())
}

/// What a failed call leaves in state: nothing when it surely failed, the intent (so the
/// next run reconciles) when its outcome is unknown.
fn failed_outcome(e: &ProviderError) -> Option<Outcome> {
    (!e.outcome_unknown()).then_some(Outcome::Nothing)
}

/// The message a failure is reported with.
fn failure_message(e: &ProviderError) -> String {
    if e.outcome_unknown() {
        format!("{e}; the next run will reconcile it")
    } else {
        e.to_string()
    }
}

/// Records a batch of deletes in one durable write, then queues the create half of
/// replaces.
fn on_deleted(
    run: &mut Run<'_>,
    queue: &mut ReadyQueue<'_>,
    follow_ups: &mut VecDeque<(usize, Step)>,
    jobs: &[Job],
    results: Vec<(usize, Result<(), ProviderError>)>,
) -> Result<(), ApplyError> {
    let plan = run.plan;
    let commits = jobs
        .iter()
        .zip(&results)
        .filter_map(|(job, (ci, r))| {
            let outcome = match r {
                Ok(()) => Some(Outcome::Remove(plan.changes[*ci].address.clone())),
                Err(e) => failed_outcome(e),
            };
            outcome.map(|o| (job.token.clone(), o))
        })
        .collect();
    run.store.commit_many(commits)?;
    for (ci, r) in results {
        let c = &plan.changes[ci];
        match r {
            Ok(()) => {
                run.records.remove(&c.address);
                if c.action == Action::Replace {
                    follow_ups.push_back((ci, Step::Put));
                } else {
                    run.report.deleted += 1;
                    succeed(run, queue, ci);
                }
            }
            Err(e) => fail(run, queue, ci, failure_message(&e)),
        }
    }
    Ok(())
}

/// Checks a batch of creates and updates, then records it in one durable write.
fn on_applied(
    run: &mut Run<'_>,
    queue: &mut ReadyQueue<'_>,
    jobs: &[Job],
    results: Vec<(usize, verify::Checked)>,
) -> Result<(), ApplyError> {
    let plan = run.plan;
    let mut commits = Vec::with_capacity(jobs.len());
    let mut outcomes = Vec::with_capacity(jobs.len());
    for (job, (ci, (r, diverged))) in jobs.iter().zip(results) {
        let c = &plan.changes[ci];
        let provider_name = run
            .registry
            .get(&c.address.rtype)
            .map(|(p, _)| p.name().to_string())
            .unwrap_or_default();
        let checked = match diverged {
            Some(_) => r,
            None => r.and_then(|resp| check_result(&job.config, &resp).map(|_| resp)),
        };
        match checked {
            // The object exists as the service holds it: record that, and fail the change.
            Ok(resp) if diverged.is_some() => {
                let rec = run.record(job, resp, &provider_name);
                commits.push((job.token.clone(), Outcome::Put(Box::new(rec.clone()))));
                let e = diverged
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                outcomes.push((ci, Err((Some(rec), e))));
            }
            Ok(resp) => {
                let rec = run.record(job, resp, &provider_name);
                commits.push((job.token.clone(), Outcome::Put(Box::new(rec.clone()))));
                outcomes.push((ci, Ok(rec)));
            }
            Err(e) => {
                if let Some(o) = failed_outcome(&e) {
                    commits.push((job.token.clone(), o));
                }
                outcomes.push((ci, Err((None, failure_message(&e)))));
            }
        }
    }
    run.store.commit_many(commits)?;
    for (ci, outcome) in outcomes {
        let c = &plan.changes[ci];
        match outcome {
            Ok(rec) => {
                run.records.insert(c.address.clone(), rec);
                match c.action {
                    Action::Replace => run.report.replaced += 1,
                    Action::Update => run.report.updated += 1,
                    _ => {
                        run.report.created += 1;
                        run.created.push(c.address.clone());
                    }
                }
                succeed(run, queue, ci);
            }
            Err((recorded, msg)) => {
                if let Some(rec) = recorded {
                    run.records.insert(c.address.clone(), rec);
                    if c.action == Action::Create {
                        run.created.push(c.address.clone());
                    }
                }
                fail(run, queue, ci, msg)
            }
        }
    }
    Ok(())
}

fn first_step(a: Action) -> Step {
    match a {
        Action::Delete | Action::Replace => Step::Delete,
        _ => Step::Put,
    }
}

/// Announces a change the first time one of its steps starts.
fn start(run: &mut Run<'_>, ci: usize) {
    let (hook, change) = (run.hook, &run.plan.changes[ci]);
    run.started.entry(ci).or_insert_with(|| {
        hook.started(change);
        Instant::now()
    });
}

fn succeed(run: &mut Run<'_>, queue: &mut ReadyQueue<'_>, ci: usize) {
    let elapsed = run
        .started
        .get(&ci)
        .map(Instant::elapsed)
        .unwrap_or_default();
    run.hook
        .finished(&run.plan.changes[ci], &Outcomes::Done(elapsed));
    queue.finish(ci);
}

fn fail(run: &mut Run<'_>, queue: &mut ReadyQueue<'_>, ci: usize, msg: String) {
    let c = &run.plan.changes[ci];
    run.hook.finished(c, &Outcomes::Failed(msg.clone()));
    run.report.failed.push((c.address.clone(), msg));
    for s in queue.fail(ci) {
        let sc = &run.plan.changes[s];
        run.hook.finished(sc, &Outcomes::Skipped);
        run.report.skipped.push(sc.address.clone());
    }
}

/// Deletes, in reverse order of creation, what this run created.
async fn rollback(run: &mut Run<'_>) -> Result<(), ApplyError> {
    let created: Vec<ResourceAddr> = run.created.drain(..).rev().collect();
    for addr in created {
        let Some(rec) = run.records.get(&addr).cloned() else {
            continue;
        };
        let Some((provider, _)) = run.registry.get(&addr.rtype) else {
            continue;
        };
        let tok = token(&addr);
        run.store.begin(&Intent {
            token: tok.clone(),
            address: addr.clone(),
            op: IntentOp::Delete,
            config: rec.attributes.clone(),
            sensitive: rec.sensitive.clone(),
            dependencies: rec.dependencies.clone(),
            lifecycle: rec.lifecycle.clone(),
            started_at: now_precise(),
        })?;
        let req = DeleteRequest {
            address: addr.clone(),
            id: rec.id.clone(),
            prior: rec.attributes.clone(),
        };
        let result = call_delete(provider.clone(), vec![req], run.opts.clone())
            .await
            .pop()
            .unwrap_or(Ok(()));
        match result {
            Ok(()) => {
                run.store.commit(&tok, Outcome::Remove(addr.clone()))?;
                run.records.remove(&addr);
                run.hook.rolled_back(&addr, None);
                run.report.rolled_back.push(addr);
            }
            Err(e) => {
                run.store.commit(&tok, Outcome::Nothing)?;
                run.hook.rolled_back(&addr, Some(&e.to_string()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
