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

/// API calls and budget use of a run, as `--json` reports them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApiUsage {
    /// Calls per provider and operation.
    pub api_calls: Vec<ApiCall>,
    /// Token buckets: rate, calls, throttling answers, time spent waiting.
    pub api_budgets: Vec<crate::providers::budget::BudgetReport>,
}

/// The plan as a JSON document.
pub fn json(plan: &Plan, usage: &ApiUsage) -> Value {
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
        "unchanged_tenants": plan.unchanged_tenants,
        "guard": guard(plan),
        "waves": plan.waves,
        "deferred": plan.deferred,
        "changes": changes,
        "api_calls": usage.api_calls,
        "api_budgets": usage.api_budgets,
    })
}

/// Writes the document `json` builds to `w` as it goes, without holding it in memory:
/// a plan of 10,000 tenants is as large again as a `Value` tree, so `plan --json`
/// serializes straight from the plan.
pub fn write_json(plan: &Plan, usage: &ApiUsage, w: impl std::io::Write) -> serde_json::Result<()> {
    let mut w = std::io::BufWriter::new(w);
    serde_json::to_writer_pretty(&mut w, &Doc { plan, usage })?;
    use std::io::Write;
    w.write_all(b"\n").map_err(serde_json::Error::io)?;
    w.flush().map_err(serde_json::Error::io)
}

struct Doc<'a> {
    plan: &'a Plan,
    usage: &'a ApiUsage,
}

impl Serialize for Doc<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (p, sum) = (self.plan, self.plan.summary());
        let mut m = s.serialize_map(Some(14))?;
        m.serialize_entry("format_version", &p.format_version)?;
        m.serialize_entry("kind", "plan")?;
        m.serialize_entry("mode", &p.mode)?;
        m.serialize_entry("state_serial", &p.state_serial)?;
        m.serialize_entry("refreshed", &p.refreshed)?;
        m.serialize_entry("tenants", &p.tenants)?;
        m.serialize_entry(
            "summary",
            &j!({ "add": sum.add, "change": sum.change, "replace": sum.replace, "destroy": sum.destroy, "unchanged": p.unchanged }),
        )?;
        m.serialize_entry("unchanged_tenants", &p.unchanged_tenants)?;
        m.serialize_entry("guard", &guard(p))?;
        m.serialize_entry("waves", &p.waves)?;
        m.serialize_entry("deferred", &p.deferred)?;
        m.serialize_entry("changes", &Changes(&p.changes))?;
        m.serialize_entry("api_calls", &self.usage.api_calls)?;
        m.serialize_entry("api_budgets", &self.usage.api_budgets)?;
        m.end()
    }
}

/// The bulk-change guard's verdict, with whether apply refuses.
fn guard(p: &Plan) -> Value {
    let mut v = serde_json::to_value(&p.guard).unwrap_or_default();
    v["refuses"] = Value::Bool(p.guard.refuses());
    v
}

struct Changes<'a>(&'a [crate::plan::ResourceChange]);

impl Serialize for Changes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(Change))
    }
}

struct Change<'a>(&'a crate::plan::ResourceChange);

impl Serialize for Change<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let c = self.0;
        let mut m = s.serialize_map(Some(7))?;
        m.serialize_entry("address", &c.address.to_string())?;
        m.serialize_entry("tenant", c.address.scope.as_str())?;
        m.serialize_entry("type", &c.address.rtype)?;
        m.serialize_entry("name", &c.address.name)?;
        m.serialize_entry("action", c.action.verb())?;
        m.serialize_entry("reasons", &c.reasons)?;
        m.serialize_entry("attributes", &Attributes(&c.attributes))?;
        m.end()
    }
}

struct Attributes<'a>(&'a [crate::plan::AttrChange]);

impl Serialize for Attributes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|a| {
            j!({
                "name": a.name,
                "before": a.before.as_ref().map(plain),
                "after": a.after.as_ref().map(plain),
                "sensitive": a.sensitive,
                "forces_replace": a.forces_replace,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_the_document_byte_for_byte() {
        let plan: Plan = serde_json::from_value(j!({
            "format_version": 1, "mode": "normal", "state_serial": 3, "input_hash": "",
            "tenants": ["acme"], "refreshed": true, "edges": [], "unchanged": 2,
            "changes": [{
                "address": "acme/local_file.site", "action": "update",
                "reasons": ["template changed"],
                "attributes": [{ "name": "content", "before": "a", "after": "\u{1}(known after apply)", "sensitive": false, "forces_replace": false }]
            }]
        }))
        .unwrap();
        let usage = ApiUsage {
            api_calls: vec![ApiCall {
                provider: "aws".into(),
                operation: "s3.GetBucket".into(),
                count: 2,
            }],
            api_budgets: vec![],
        };
        let mut streamed = Vec::new();
        write_json(&plan, &usage, &mut streamed).unwrap();
        let built = serde_json::to_string_pretty(&json(&plan, &usage)).unwrap() + "\n";
        assert_eq!(String::from_utf8(streamed).unwrap(), built);
    }
}
