//! API-call accounting: how many calls each provider made, per operation.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Counters of API calls by `(provider, operation)`.
#[derive(Debug, Default)]
pub struct ApiStats {
    counts: Mutex<BTreeMap<(String, String), u64>>,
}

impl ApiStats {
    /// Counts one call.
    pub fn record(&self, provider: &str, operation: &str) {
        self.add(provider, operation, 1);
    }

    /// Counts `n` calls.
    pub fn add(&self, provider: &str, operation: &str, n: u64) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *c.entry((provider.to_string(), operation.to_string()))
            .or_default() += n;
    }

    /// A copy of the counters, sorted.
    pub fn snapshot(&self) -> BTreeMap<(String, String), u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The count for one operation.
    pub fn get(&self, provider: &str, operation: &str) -> u64 {
        self.snapshot()
            .get(&(provider.to_string(), operation.to_string()))
            .copied()
            .unwrap_or(0)
    }
}
