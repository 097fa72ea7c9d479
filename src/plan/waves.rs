//! Rollout waves over a plan: which tenants fall in which wave (a stable order, so
//! re-runs pick the same tenants), what each wave changes, and the part of a plan one
//! wave applies.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Plan, Summary};
use crate::addr::SHARED;
use crate::workspace::fleet::{FailureBudget, Selector, TenantFacts, WaveSpec};

/// The wave that takes the tenants no configured wave selected.
pub const REMAINING: &str = "remaining";

/// One wave as planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WavePlan {
    /// Wave name.
    pub name: String,
    /// Every tenant of the wave, in rollout order.
    pub tenants: Vec<String>,
    /// The tenants with changes (`_shared` goes with the first wave).
    pub changed: Vec<String>,
    /// Resource changes per action.
    pub summary: Summary,
    /// The failure budget as configured.
    pub failure_budget: FailureBudget,
    /// Failed tenants tolerated, given the tenants with changes.
    pub allowed_failures: usize,
    /// Changes in flight at once (none: the run's `--parallelism`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<usize>,
    /// The rollout stops after this wave until resumed.
    #[serde(default)]
    pub pause_after: bool,
    /// Tenants with changes left to a later run by certificate authority limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<String>,
}

/// The rollout position of a tenant: a hash of its id, then the id.
fn order_key(id: &str) -> ([u8; 8], &str) {
    let d = Sha256::digest(id.as_bytes());
    let mut k = [0u8; 8];
    k.copy_from_slice(&d[..8]);
    (k, id)
}

/// Splits `tenants` into `specs`' waves, in order: each wave takes, from the tenants
/// left, those its selector matches (in the stable order), cut to its `percent` of them
/// and its `max_tenants`. Tenants no wave takes form a last wave, [`REMAINING`].
pub fn assign(tenants: &[TenantFacts<'_>], specs: &[WaveSpec]) -> Vec<(WaveSpec, Vec<String>)> {
    let mut left: Vec<&TenantFacts<'_>> = tenants.iter().filter(|t| t.id != SHARED).collect();
    left.sort_by_key(|t| order_key(t.id));
    let mut out = Vec::with_capacity(specs.len() + 1);
    for spec in specs {
        let matching: Vec<usize> = left
            .iter()
            .enumerate()
            .filter(|(_, t)| spec.select.matches(t))
            .map(|(i, _)| i)
            .collect();
        let mut n = matching.len();
        if let Some(p) = spec.percent {
            n = ((matching.len() as f64) * p / 100.0).ceil() as usize;
        }
        if let Some(m) = spec.max_tenants {
            n = n.min(m);
        }
        let taken: BTreeSet<usize> = matching.into_iter().take(n).collect();
        let members = taken.iter().map(|&i| left[i].id.to_string()).collect();
        let mut i = 0;
        left.retain(|_| {
            i += 1;
            !taken.contains(&(i - 1))
        });
        out.push((spec.clone(), members));
    }
    if !left.is_empty() {
        let rest = WaveSpec {
            name: REMAINING.into(),
            select: Selector::Rest,
            max_tenants: None,
            percent: None,
            parallel: None,
            failure_budget: FailureBudget::Zero,
            pause_after: false,
        };
        out.push((rest, left.iter().map(|t| t.id.to_string()).collect()));
    }
    out
}

/// The waves of `plan` given the membership `assign` chose.
pub fn plan_waves(plan: &Plan, waves: &[(WaveSpec, Vec<String>)]) -> Vec<WavePlan> {
    let mut by_scope: BTreeMap<&str, Summary> = BTreeMap::new();
    for c in &plan.changes {
        by_scope
            .entry(c.address.scope.as_str())
            .or_default()
            .count(c.action);
    }
    waves
        .iter()
        .enumerate()
        .map(|(i, (spec, members))| {
            let mut changed: Vec<String> = vec![];
            if i == 0 && by_scope.contains_key(SHARED) {
                changed.push(SHARED.into());
            }
            changed.extend(
                members
                    .iter()
                    .filter(|t| by_scope.contains_key(t.as_str()))
                    .cloned(),
            );
            let mut summary = Summary::default();
            for t in &changed {
                summary.add_all(&by_scope[t.as_str()]);
            }
            let tenants_changed = changed.iter().filter(|t| *t != SHARED).count();
            WavePlan {
                name: spec.name.clone(),
                tenants: members.clone(),
                failure_budget: spec.failure_budget,
                allowed_failures: spec.failure_budget.allowed(tenants_changed),
                changed,
                summary,
                parallel: spec.parallel,
                pause_after: spec.pause_after,
                deferred: vec![],
            }
        })
        .collect()
}

/// The part of `plan` that changes `scopes`, with its execution graph.
pub fn subplan(plan: &Plan, scopes: &BTreeSet<String>) -> Plan {
    Plan {
        tenants: scopes.iter().cloned().collect(),
        ..plan.only(|c| scopes.contains(c.address.scope.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::fleet::Match;

    fn spec(name: &str, select: Selector, percent: Option<f64>) -> WaveSpec {
        WaveSpec {
            name: name.into(),
            select,
            max_tenants: None,
            percent,
            parallel: None,
            failure_budget: FailureBudget::Zero,
            pause_after: false,
        }
    }

    #[test]
    fn waves_take_selected_then_a_stable_share_then_the_rest() {
        let canary = BTreeMap::from([("ring".to_string(), "canary".to_string())]);
        let ids: Vec<String> = (0..60).map(|i| format!("t{i:02}")).collect();
        let facts: Vec<TenantFacts<'_>> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| TenantFacts {
                id,
                tier: Some("basic"),
                labels: (i < 3).then_some(&canary),
                region: None,
            })
            .collect();
        let by_label = Selector::Match(Match {
            labels: canary.clone(),
            ..Default::default()
        });
        let specs = [
            spec("canary", by_label, None),
            spec("early", Selector::Rest, Some(30.0)),
            spec("rest", Selector::Rest, None),
        ];
        let waves = assign(&facts, &specs);
        let sizes: Vec<usize> = waves.iter().map(|(_, m)| m.len()).collect();
        assert_eq!(sizes, [3, 18, 39], "30 % of the 57 left is 18 (rounded up)");
        let mut canaries = waves[0].1.clone();
        canaries.sort();
        assert_eq!(canaries, ["t00", "t01", "t02"]);
        // The same tenants whatever the order given, and no one twice.
        let mut reversed = facts.clone();
        reversed.reverse();
        assert_eq!(assign(&reversed, &specs), waves);
        let all: BTreeSet<&String> = waves.iter().flat_map(|(_, m)| m).collect();
        assert_eq!(all.len(), 60);
        // A tenant not selected by any wave lands in `remaining`.
        let only_canary = assign(&facts, &specs[..1]);
        assert_eq!(only_canary[1].0.name, REMAINING);
        assert_eq!(only_canary[1].1.len(), 57);
    }

    #[test]
    fn budgets_count_or_share_the_tenants_with_changes() {
        assert_eq!(FailureBudget::Count(2).allowed(100), 2);
        assert_eq!(FailureBudget::Percent(10.0).allowed(18), 1);
        assert_eq!(FailureBudget::Percent(10.0).allowed(9), 0);
        assert_eq!(FailureBudget::Zero.allowed(1000), 0);
    }
}
