//! API budgets: one token bucket per (provider, account, service), shared by every
//! tenant's calls in a run, so a fleet waits for tokens instead of being throttled by
//! the service. Throttling answers that still come halve the bucket's rate for the rest
//! of the run; each call that goes through gives back a twentieth of the configured rate
//! (additive increase, multiplicative decrease).
//!
//! Defaults are the services' published quotas (see README, "API budgets");
//! `[providers.<name>] requests_per_second` / `requests_per_hour` override them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::SettingsError;

/// A sustained rate and how many calls may go at once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    /// Calls per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: f64,
}

impl Quota {
    const fn per_second(n: f64, burst: f64) -> Quota {
        Quota {
            per_second: n,
            burst,
        }
    }
}

/// The published quota of a service, where there is one.
fn default_quota(provider: &str, service: &str) -> Option<Quota> {
    Some(match (provider, service) {
        // Route 53: five requests per second per account, all APIs together.
        ("aws", "route53") => Quota::per_second(5.0, 5.0),
        // ACM: RequestCertificate and AddTagsToCertificate 5/s; ListCertificates 8/s.
        ("aws", "acm") => Quota::per_second(5.0, 5.0),
        ("aws", "acm-read") => Quota::per_second(8.0, 8.0),
        // KMS: CreateKey, CreateAlias, UpdateAlias, DeleteAlias, ScheduleKeyDeletion,
        // EnableKeyRotation 5/s each; the reads landlord makes allow 100/s or more.
        ("aws", "kms") => Quota::per_second(5.0, 5.0),
        ("aws", "kms-read") => Quota::per_second(100.0, 100.0),
        // S3 publishes no rate for bucket configuration calls and answers 503 SlowDown
        // when they come too fast: a conservative default.
        ("aws", "s3-control") => Quota::per_second(20.0, 20.0),
        // Azure Resource Manager, per subscription: reads refill 25/s into a bucket of
        // 250, writes and deletes 10/s into 200.
        ("azure", "arm-read") => Quota::per_second(25.0, 250.0),
        ("azure", "arm-write") => Quota::per_second(10.0, 200.0),
        // Let's Encrypt: 300 new orders per account per 3 hours.
        ("acme", "orders") => Quota::per_second(300.0 / 10_800.0, 300.0),
        _ => return None,
    })
}

/// What `requests_per_second` / `requests_per_hour` of one provider table set.
#[derive(Debug, Clone, Default)]
struct Overrides {
    all: Option<Quota>,
    services: BTreeMap<String, Quota>,
}

/// The buckets of one run.
#[derive(Debug, Default)]
pub struct Budgets {
    overrides: BTreeMap<String, Overrides>,
    buckets: Mutex<BTreeMap<(String, String, String), Arc<Bucket>>>,
}

/// The keys of a provider table that belong to budgets, not to the provider.
pub const KEYS: &[&str] = &["requests_per_second", "requests_per_hour"];

impl Budgets {
    /// Budgets with the overrides of the `[providers.*]` tables, which lose those keys.
    pub fn from_tables(
        tables: &mut BTreeMap<String, toml::Table>,
    ) -> Result<Budgets, SettingsError> {
        let mut overrides = BTreeMap::new();
        for (provider, table) in tables.iter_mut() {
            let mut o = Overrides::default();
            for (key, per) in [("requests_per_second", 1.0), ("requests_per_hour", 3600.0)] {
                let Some(v) = table.remove(key) else {
                    continue;
                };
                let err = |m: String| SettingsError {
                    provider: provider.clone(),
                    message: format!("`{key}`: {m}"),
                };
                let quota = |n: f64| -> Result<Quota, SettingsError> {
                    if !(n > 0.0 && n.is_finite()) {
                        return Err(err(format!("{n} is not a positive number")));
                    }
                    // A second's worth, or an hour's, may go at once.
                    Ok(Quota::per_second(n / per, n.max(1.0)))
                };
                match v {
                    toml::Value::Integer(n) => o.all = Some(quota(n as f64)?),
                    toml::Value::Float(n) => o.all = Some(quota(n)?),
                    toml::Value::Table(t) => {
                        for (service, n) in t {
                            let n = n
                                .as_float()
                                .or_else(|| n.as_integer().map(|i| i as f64))
                                .ok_or_else(|| {
                                    err(format!("`{service}` must be a number of requests"))
                                })?;
                            o.services.insert(service, quota(n)?);
                        }
                    }
                    other => {
                        return Err(err(format!(
                            "expected a number or a table of numbers by service, got `{other}`"
                        )))
                    }
                }
            }
            overrides.insert(provider.clone(), o);
        }
        Ok(Budgets {
            overrides,
            buckets: Mutex::new(BTreeMap::new()),
        })
    }

    /// The bucket of `(provider, account, service)`, or `None` when the service has no
    /// quota (its calls never wait).
    pub fn bucket(&self, provider: &str, account: &str, service: &str) -> Option<Arc<Bucket>> {
        let key = (
            provider.to_string(),
            account.to_string(),
            service.to_string(),
        );
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = buckets.get(&key) {
            return Some(b.clone());
        }
        let o = self.overrides.get(provider);
        let quota = o
            .and_then(|o| o.services.get(service).copied().or(o.all))
            .or_else(|| default_quota(provider, service))?;
        let b = Arc::new(Bucket::new(quota));
        buckets.insert(key, b.clone());
        Some(b)
    }

    /// What each bucket used in this run.
    pub fn report(&self) -> Vec<BudgetReport> {
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|((provider, account, service), b)| {
                let s = b.state.lock().unwrap_or_else(|e| e.into_inner());
                BudgetReport {
                    provider: provider.clone(),
                    account: account.clone(),
                    service: service.clone(),
                    requests_per_second: b.quota.per_second,
                    lowest_rate: s.lowest,
                    calls: s.calls,
                    throttled: s.throttled,
                    waited_seconds: s.waited.as_secs_f64(),
                }
            })
            .collect()
    }
}

/// What one bucket did in a run (`--stats`, `--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetReport {
    /// Provider.
    pub provider: String,
    /// Account, subscription or CA account.
    pub account: String,
    /// Service.
    pub service: String,
    /// The configured rate.
    pub requests_per_second: f64,
    /// The lowest rate throttling answers brought it to.
    pub lowest_rate: f64,
    /// Calls that took a token (each HTTP attempt).
    pub calls: u64,
    /// Throttling answers.
    pub throttled: u64,
    /// Time calls spent waiting for tokens, summed.
    pub waited_seconds: f64,
}

/// A token bucket with reservations: a call takes a token now or reserves the next one
/// and sleeps until it is due, so waiting calls go in arrival order at the bucket's rate.
#[derive(Debug)]
pub struct Bucket {
    quota: Quota,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rate: f64,
    tokens: f64,
    last: Instant,
    waited: Duration,
    calls: u64,
    throttled: u64,
    lowest: f64,
}

impl Bucket {
    fn new(quota: Quota) -> Bucket {
        Bucket {
            quota,
            state: Mutex::new(State {
                rate: quota.per_second,
                tokens: quota.burst,
                last: Instant::now(),
                waited: Duration::ZERO,
                calls: 0,
                throttled: 0,
                lowest: quota.per_second,
            }),
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let elapsed = now.duration_since(s.last).as_secs_f64();
            s.tokens = (s.tokens + elapsed * s.rate).min(self.quota.burst);
            s.last = now;
            s.tokens -= 1.0;
            s.calls += 1;
            if s.tokens < 0.0 {
                let w = Duration::from_secs_f64(-s.tokens / s.rate);
                s.waited += w;
                w
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// The service throttled a call: halve the rate (to a floor of a tenth: below
    /// that, a run would mostly wait on answers that are not about its own rate).
    pub fn throttled(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.throttled += 1;
        s.rate = (s.rate / 2.0).max(self.quota.per_second / 10.0);
        s.lowest = s.lowest.min(s.rate);
    }

    /// A call went through: give back a little of the rate.
    pub fn succeeded(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.rate = (s.rate + self.quota.per_second / 20.0).min(self.quota.per_second);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_past_the_burst_wait_at_the_rate() {
        let b = Bucket::new(Quota::per_second(20.0, 2.0));
        let start = Instant::now();
        for _ in 0..6 {
            b.acquire().await;
        }
        // Two at once, then four at 20/s: 0.2 s of waiting.
        let took = start.elapsed().as_secs_f64();
        let waited = b.state.lock().unwrap().waited.as_secs_f64();
        assert!(took >= 0.19, "{took}");
        assert!((0.15..0.25).contains(&waited), "{waited}");
    }

    #[test]
    fn throttling_halves_and_success_restores_slowly() {
        let b = Bucket::new(Quota::per_second(10.0, 10.0));
        b.throttled();
        b.throttled();
        assert_eq!(b.state.lock().unwrap().rate, 2.5);
        b.throttled();
        b.throttled();
        assert_eq!(b.state.lock().unwrap().rate, 1.0, "a tenth at least");
        for _ in 0..3 {
            b.succeeded();
        }
        for _ in 0..5 {
            b.succeeded();
        }
        assert_eq!(b.state.lock().unwrap().rate, 5.0);
        for _ in 0..100 {
            b.succeeded();
        }
        let s = b.state.lock().unwrap();
        assert_eq!((s.rate, s.lowest, s.throttled), (10.0, 1.0, 4));
    }

    #[test]
    fn overrides_replace_defaults_per_service_or_for_all() {
        let mut tables: BTreeMap<String, toml::Table> = toml::from_str(
            "[aws]\nregion = \"eu-west-1\"\nrequests_per_second = { route53 = 2 }\n[acme]\nrequests_per_hour = 3\n",
        )
        .unwrap();
        let b = Budgets::from_tables(&mut tables).unwrap();
        assert!(
            !tables["aws"].contains_key("requests_per_second"),
            "the provider never sees it"
        );
        assert_eq!(
            b.bucket("aws", "a", "route53").unwrap().quota.per_second,
            2.0
        );
        assert_eq!(b.bucket("aws", "a", "kms").unwrap().quota.per_second, 5.0);
        assert!(
            b.bucket("aws", "a", "s3").is_none(),
            "object calls never wait"
        );
        let orders = b.bucket("acme", "x", "orders").unwrap().quota;
        assert_eq!((orders.per_second * 3600.0, orders.burst), (3.0, 3.0));
        let mut bad: BTreeMap<String, toml::Table> =
            toml::from_str("[aws]\nrequests_per_second = \"fast\"\n").unwrap();
        let e = Budgets::from_tables(&mut bad).unwrap_err().to_string();
        assert!(
            e.contains("requests_per_second") && e.contains("fast"),
            "{e}"
        );
    }
}
