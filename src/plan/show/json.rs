//! `--json` rendering, schema version `PLAN_FORMAT_VERSION` (documented in README.md).

use serde::Serialize;
use serde_json::{json as j, Value};

use super::plain;
use crate::plan::{Plan, ResourceChange, Summary};

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
    serde_json::to_value(Doc::whole(plan, usage)).unwrap_or_default()
}

/// Writes the document `json` builds to `w` as it goes, without holding it in memory:
/// a plan of 10,000 tenants is as large again as a `Value` tree, so `plan --json`
/// serializes straight from the plan.
pub fn write_json(plan: &Plan, usage: &ApiUsage, w: impl std::io::Write) -> serde_json::Result<()> {
    let mut w = std::io::BufWriter::new(w);
    serde_json::to_writer_pretty(&mut w, &Doc::whole(plan, usage))?;
    use std::io::Write;
    w.write_all(b"\n").map_err(serde_json::Error::io)?;
    w.flush().map_err(serde_json::Error::io)
}

/// Writes the `changes` elements of one batch of a plan made in batches, `written`
/// being how many earlier batches wrote: as [`write_json`] indents them in its array.
pub fn write_json_changes(
    changes: &[ResourceChange],
    written: usize,
    w: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    for (i, c) in changes.iter().enumerate() {
        if written + i > 0 {
            w.write_all(b",\n")?;
        }
        let text = serde_json::to_string_pretty(&Change(c))?;
        for (n, line) in text.lines().enumerate() {
            if n > 0 {
                w.write_all(b"\n")?;
            }
            w.write_all(b"    ")?;
            w.write_all(line.as_bytes())?;
        }
    }
    Ok(())
}

/// Writes the document of a plan made in batches, byte for byte as [`write_json`]
/// writes the whole plan: `plan` holds its header, `summary` counts every change and
/// `body` holds the changes as [`write_json_changes`] wrote them.
pub fn write_json_batched(
    plan: &Plan,
    summary: &Summary,
    usage: &ApiUsage,
    body: &mut dyn std::io::Read,
    w: impl std::io::Write,
) -> std::io::Result<()> {
    use std::io::Write;
    let doc = Doc {
        plan,
        usage,
        summary: *summary,
        changes: Changes::Mark,
    };
    let text = serde_json::to_string_pretty(&doc)?;
    let mark = serde_json::to_string(MARK)?;
    let (head, tail) = text
        .split_once(&mark)
        .ok_or_else(|| std::io::Error::other("the plan document lost its changes"))?;
    let mut w = std::io::BufWriter::new(w);
    w.write_all(head.as_bytes())?;
    if summary.has_changes() {
        w.write_all(b"[\n")?;
        std::io::copy(body, &mut w)?;
        w.write_all(b"\n  ]")?;
    } else {
        w.write_all(b"[]")?;
    }
    w.write_all(tail.as_bytes())?;
    w.write_all(b"\n")?;
    w.flush()
}

/// Stands in for the changes of a plan made in batches while its document is written.
const MARK: &str = "\u{0}changes\u{0}";

/// The `--json` document.
struct Doc<'a> {
    plan: &'a Plan,
    usage: &'a ApiUsage,
    summary: Summary,
    changes: Changes<'a>,
}

impl<'a> Doc<'a> {
    /// The document of a whole plan.
    fn whole(plan: &'a Plan, usage: &'a ApiUsage) -> Doc<'a> {
        Doc {
            plan,
            usage,
            summary: plan.summary(),
            changes: Changes::All(&plan.changes),
        }
    }
}

impl Serialize for Doc<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (p, sum) = (self.plan, self.summary);
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
        m.serialize_entry("changes", &self.changes)?;
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

/// The `changes` of the document: every change, or the mark of a plan made in batches.
enum Changes<'a> {
    All(&'a [ResourceChange]),
    Mark,
}

impl Serialize for Changes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Changes::All(changes) => s.collect_seq(changes.iter().map(Change)),
            Changes::Mark => s.serialize_str(MARK),
        }
    }
}

struct Change<'a>(&'a ResourceChange);

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
