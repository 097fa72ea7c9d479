//! `--json` rendering, schema version `PLAN_FORMAT_VERSION` (documented in README.md).

use serde::Serialize;
use serde_json::{json as j, Value};

use super::plain;
use crate::plan::Plan;

/// One line of API-call accounting.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ApiCall {
    /// Provider name.
    pub provider: String,
    /// Operation name.
    pub operation: String,
    /// Number of calls.
    pub count: u64,
}

/// The plan as a JSON document.
pub fn json(plan: &Plan, api_calls: &[ApiCall]) -> Value {
    let s = plan.summary();
    let changes: Vec<Value> = plan
        .changes
        .iter()
        .map(|c| {
            j!({
                "address": c.address.to_string(),
                "tenant": c.address.scope.as_str(),
                "type": c.address.rtype,
                "name": c.address.name,
                "action": c.action.verb(),
                "reasons": c.reasons,
                "attributes": c.attributes.iter().map(|a| j!({
                    "name": a.name,
                    "before": a.before.as_ref().map(plain),
                    "after": a.after.as_ref().map(plain),
                    "sensitive": a.sensitive,
                    "forces_replace": a.forces_replace,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    j!({
        "format_version": plan.format_version,
        "kind": "plan",
        "mode": plan.mode,
        "state_serial": plan.state_serial,
        "refreshed": plan.refreshed,
        "tenants": plan.tenants,
        "summary": { "add": s.add, "change": s.change, "replace": s.replace, "destroy": s.destroy, "unchanged": plan.unchanged },
        "changes": changes,
        "api_calls": api_calls,
    })
}
