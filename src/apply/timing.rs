//! Provisioning figures of a run: when each tenant's first change started, when its
//! last ended, and how many it had, taken from the progress events apply sends.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Hook, Outcomes};
use crate::addr::ResourceAddr;
use crate::plan::ResourceChange;

/// One tenant's changes in a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TenantTiming {
    /// Tenant id (`_shared` for the workspace's own resources).
    pub tenant: String,
    /// Changes started.
    pub changes: usize,
    /// Changes that failed.
    pub failed: usize,
    /// Seconds from the start of execution to the tenant's first change.
    pub started_after_seconds: f64,
    /// Seconds from its first change starting to its last one ending.
    pub seconds: f64,
    /// Seconds spent in provider calls, summed over its changes.
    pub busy_seconds: f64,
}

#[derive(Debug, Default)]
struct Span {
    first: Option<Duration>,
    last: Duration,
    changes: usize,
    failed: usize,
    busy: Duration,
}

/// A hook that times each tenant's changes and passes every event on to `inner`.
pub struct Timed<'a> {
    inner: &'a dyn Hook,
    start: Instant,
    spans: Mutex<BTreeMap<String, Span>>,
}

impl<'a> Timed<'a> {
    /// Starts timing now.
    pub fn new(inner: &'a dyn Hook) -> Timed<'a> {
        Timed {
            inner,
            start: Instant::now(),
            spans: Mutex::new(BTreeMap::new()),
        }
    }

    fn with(&self, change: &ResourceChange, f: impl FnOnce(&mut Span, Duration)) {
        let at = self.start.elapsed();
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        let span = spans
            .entry(change.address.scope.as_str().to_string())
            .or_default();
        f(span, at);
    }

    /// Seconds since timing started.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Each tenant's figures, in tenant order.
    pub fn tenants(&self) -> Vec<TenantTiming> {
        let spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        spans
            .iter()
            .map(|(t, s)| {
                let first = s.first.unwrap_or_default();
                TenantTiming {
                    tenant: t.clone(),
                    changes: s.changes,
                    failed: s.failed,
                    started_after_seconds: round(first),
                    seconds: round(s.last.saturating_sub(first)),
                    busy_seconds: round(s.busy),
                }
            })
            .collect()
    }
}

/// Milliseconds are precision enough for a report.
fn round(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

impl Hook for Timed<'_> {
    fn started(&self, change: &ResourceChange) {
        self.with(change, |s, at| {
            s.first.get_or_insert(at);
            s.changes += 1;
        });
        self.inner.started(change);
    }

    fn finished(&self, change: &ResourceChange, outcome: &Outcomes) {
        self.with(change, |s, at| {
            s.last = s.last.max(at);
            match outcome {
                Outcomes::Done(took) => s.busy += *took,
                Outcomes::Failed(_) => s.failed += 1,
                Outcomes::Skipped => {}
            }
        });
        self.inner.finished(change, outcome);
    }

    fn recovered(&self, address: &ResourceAddr, what: &str) {
        self.inner.recovered(address, what);
    }

    fn rolled_back(&self, address: &ResourceAddr, error: Option<&str>) {
        self.inner.rolled_back(address, error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;

    fn change(addr: &str) -> ResourceChange {
        ResourceChange {
            address: addr.parse().unwrap(),
            action: Action::Create,
            reasons: vec![],
            attributes: vec![],
            properties: Default::default(),
            depends_on: vec![],
            lifecycle: Default::default(),
        }
    }

    #[test]
    fn each_tenant_gets_its_span_changes_and_failures() {
        let t = Timed::new(&super::super::NoHook);
        let (a1, a2, b) = (change("acme/x.a"), change("acme/x.b"), change("beta/x.a"));
        t.started(&a1);
        t.started(&b);
        std::thread::sleep(Duration::from_millis(20));
        t.finished(&a1, &Outcomes::Done(Duration::from_millis(15)));
        t.started(&a2);
        t.finished(&a2, &Outcomes::Failed("boom".into()));
        t.finished(&b, &Outcomes::Done(Duration::from_millis(5)));
        let got = t.tenants();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].tenant.as_str(), got[0].changes, got[0].failed),
            ("acme", 2, 1)
        );
        assert!(got[0].seconds >= 0.02, "{got:?}");
        assert_eq!(got[0].busy_seconds, 0.015);
        assert_eq!(
            (got[1].tenant.as_str(), got[1].changes, got[1].failed),
            ("beta", 1, 0)
        );
    }
}
