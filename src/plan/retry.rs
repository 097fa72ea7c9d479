//! The engine's retry policy for provider calls, shared by refresh and apply: retryable
//! errors are retried with exponential backoff and jitter (or the service's
//! `Retry-After` when longer), throttled ones for a while longer, every call bounded by a
//! timeout.

use std::time::{Duration, Instant};

use rand::Rng;

use crate::providers::{ErrorKind, ProviderError};

/// How provider calls are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per call for retryable errors (at least 1).
    pub attempts: u32,
    /// First retry delay; doubles each attempt, with jitter.
    pub backoff: Duration,
    /// How long a throttled call keeps being retried after its attempts are used up,
    /// counted from its first attempt.
    pub throttle_budget: Duration,
    /// Time limit of one call.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            backoff: Duration::from_millis(200),
            throttle_budget: Duration::from_secs(120),
            timeout: Duration::from_secs(600),
        }
    }
}

/// The longest single wait between two attempts, whatever a service asks for.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// Receives one line per retried call: process-wide, since calls run in spawned tasks
/// that cannot borrow the command's progress printer.
type RetryObserver = Box<dyn Fn(&str) + Send + Sync>;

static OBSERVER: std::sync::RwLock<Option<RetryObserver>> = std::sync::RwLock::new(None);

/// Sends a line for every retry ("`addr`: retrying in 0.8s (attempt 2 of 5): cause") to
/// `f` (a progress printer), replacing the previous receiver.
pub fn observe_retries(f: impl Fn(&str) + Send + Sync + 'static) {
    if let Ok(mut o) = OBSERVER.write() {
        *o = Some(Box::new(f));
    }
}

fn notify(line: &str) {
    if let Ok(o) = OBSERVER.read() {
        if let Some(f) = o.as_ref() {
            f(line);
        }
    }
}

/// Attempts of a call whose endpoint does not answer at all.
const UNREACHABLE_ATTEMPTS: u32 = 2;

fn backoff(opts: &RetryPolicy, attempt: u32) -> Duration {
    let base = opts.backoff.saturating_mul(1u32 << attempt.min(10));
    let jitter = rand::thread_rng().gen_range(0..=base.as_millis().max(1) as u64 / 2);
    base + Duration::from_millis(jitter)
}

/// Calls the provider with a batch, retrying the requests whose errors are retryable
/// (with backoff, or the service's `Retry-After` when longer) up to `opts.attempts`, and
/// throttled ones past that until `opts.throttle_budget` has passed; one result per
/// request, in order. A call that exceeds `opts.timeout` fails all its
/// requests as timed out, which leaves their outcome unknown.
pub(crate) async fn call_with_retries<R, T, F, Fut>(
    reqs: Vec<R>,
    opts: RetryPolicy,
    call: F,
) -> Vec<Result<T, ProviderError>>
where
    R: Clone,
    F: Fn(Vec<R>, u32) -> Fut,
    Fut: std::future::Future<Output = Vec<Result<T, ProviderError>>>,
{
    let mut results: Vec<Option<Result<T, ProviderError>>> = reqs.iter().map(|_| None).collect();
    let mut pending: Vec<usize> = (0..reqs.len()).collect();
    let mut attempt = 0;
    let first = Instant::now();
    while !pending.is_empty() {
        let batch: Vec<R> = pending.iter().map(|&i| reqs[i].clone()).collect();
        let out = match tokio::time::timeout(opts.timeout, call(batch, attempt)).await {
            Ok(out) => out,
            Err(_) => pending
                .iter()
                .map(|_| {
                    Err(ProviderError::timed_out(format!(
                        "timed out after {:?}",
                        opts.timeout
                    )))
                })
                .collect(),
        };
        attempt += 1;
        let mut retry = Vec::new();
        let mut cause: Option<ProviderError> = None;
        let mut wait = backoff(&opts, attempt);
        for (&i, r) in pending.iter().zip(out) {
            let again = |e: &ProviderError| {
                let throttled = matches!(e.kind, ErrorKind::Throttled { .. });
                if e.kind == ErrorKind::Unreachable {
                    // Once more (a service restarting), not for minutes.
                    return attempt < UNREACHABLE_ATTEMPTS;
                }
                attempt < opts.attempts || (throttled && first.elapsed() < opts.throttle_budget)
            };
            match r {
                Err(e) if e.is_retryable() && again(&e) => {
                    // A throttled call waits at least as long as the service asked.
                    wait = wait.max(e.retry_after().unwrap_or_default());
                    retry.push(i);
                    cause.get_or_insert(e);
                }
                other => results[i] = Some(other),
            }
        }
        if let Some(e) = &cause {
            let what = e
                .address
                .as_ref()
                .map_or_else(|| "a call".to_string(), |a| a.to_string());
            let more = if retry.len() > 1 {
                format!(" (and {} more in its batch)", retry.len() - 1)
            } else {
                String::new()
            };
            notify(&format!(
                "{what}{more}: retrying in {:.1}s (attempt {} of {}): {e}",
                wait.min(MAX_RETRY_WAIT).as_secs_f64(),
                attempt + 1,
                if e.kind == ErrorKind::Unreachable {
                    UNREACHABLE_ATTEMPTS
                } else {
                    opts.attempts
                }
            ));
        }
        pending = retry;
        if !pending.is_empty() {
            tokio::time::sleep(wait.min(MAX_RETRY_WAIT)).await;
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ProviderError::failed("no result from provider"))))
        .collect()
}
