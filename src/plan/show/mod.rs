//! Plan renderings: terminal text, versioned JSON and pull-request markdown. Values are
//! already redacted in the plan; unknown values print as `(known after apply)`.

pub mod comment;
mod json;
mod markdown;
mod text;

pub use json::{json, write_json, write_json_batched, write_json_changes, ApiCall, ApiUsage};

pub use markdown::{markdown, markdown_parts, COMMENT_BUDGET};
pub use text::{print_batched, print_text, text, write_changes};

use serde_json::Value;

use super::{AttrChange, Summary};
use crate::value::{self, UNKNOWN, UNKNOWN_TEXT};

/// `Plan: 1 to add, 2 to change, 0 to replace, 3 to destroy.`
pub fn summary_line(s: &Summary) -> String {
    format!(
        "Plan: {} to add, {} to change, {} to replace, {} to destroy.",
        s.add, s.change, s.replace, s.destroy
    )
}

/// `N tenants skipped ...` for a `--changed` plan.
pub fn skipped_line(plan: &super::Plan) -> Option<String> {
    plan.unchanged_tenants.map(|n| {
        format!(
            "{n} tenants skipped: their inputs are unchanged since their last apply (--changed)."
        )
    })
}

/// The lines naming deferred tenants and why, under a heading.
pub fn deferred_lines(plan: &super::Plan) -> Vec<String> {
    if plan.deferred.is_empty() {
        return vec![];
    }
    let mut out = vec![format!(
        "Certificate authority limits: {} tenants are deferred to a later run (apply leaves their changes alone):",
        plan.deferred.len()
    )];
    out.extend(
        plan.deferred
            .iter()
            .map(|d| format!("  {}: {}", d.tenant, d.reason)),
    );
    out
}

/// Tenant ids for display: the first `max`, then how many more.
pub fn some_tenants(ids: &[String], max: usize) -> String {
    let mut s = ids
        .iter()
        .take(max)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > max {
        s.push_str(&format!(" and {} more", ids.len() - max));
    }
    s
}

/// One line per rollout wave: members, tenants with changes, changes, budget, gate.
pub fn wave_lines(waves: &[super::waves::WavePlan]) -> Vec<String> {
    waves
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let s = &w.summary;
            format!(
                "{}. {}: {} tenants, {} with changes ({} to add, {} to change, {} to replace, {} to destroy); failure budget {}{}{}{}",
                i + 1,
                w.name,
                w.tenants.len(),
                w.changed.len(),
                s.add,
                s.change,
                s.replace,
                s.destroy,
                w.allowed_failures,
                if w.pause_after { "; pauses after" } else { "" },
                if w.deferred.is_empty() {
                    String::new()
                } else {
                    format!("; {} deferred by CA limits", w.deferred.len())
                },
                if w.changed.is_empty() {
                    String::new()
                } else {
                    format!(": {}", some_tenants(&w.changed, 10))
                }
            )
        })
        .collect()
}

/// A value for display; `None` prints as `null`.
fn show(v: Option<&Value>) -> String {
    v.map(value::display).unwrap_or_else(|| "null".into())
}

/// A value for JSON output: the unknown marker becomes its text.
fn plain(v: &Value) -> Value {
    match v {
        Value::String(s) if s == UNKNOWN => Value::String(UNKNOWN_TEXT.into()),
        Value::Array(a) => Value::Array(a.iter().map(plain).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), plain(v))).collect()),
        other => other.clone(),
    }
}

/// The lines describing one attribute change (multi-line strings as a unified diff).
pub fn attr_lines(c: &AttrChange) -> Vec<String> {
    let multi = |v: &Option<Value>| {
        v.as_ref()
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains('\n'))
    };
    if !c.sensitive && (multi(&c.before) || multi(&c.after)) {
        let before = c.before.as_ref().and_then(Value::as_str).unwrap_or("");
        let after = c.after.as_ref().and_then(Value::as_str).unwrap_or("");
        let mut out = vec![format!(
            "{}:{}",
            c.name,
            if c.forces_replace {
                "  # forces replacement"
            } else {
                ""
            }
        )];
        let diff = similar::TextDiff::from_lines(before, after);
        for (g, group) in diff.grouped_ops(3).iter().enumerate() {
            if g > 0 {
                out.push("  ...".into());
            }
            for change in group.iter().flat_map(|op| diff.iter_changes(op)) {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => "-",
                    similar::ChangeTag::Insert => "+",
                    similar::ChangeTag::Equal => " ",
                };
                out.push(format!(
                    "  {sign} {}",
                    change.value().trim_end_matches('\n')
                ));
            }
        }
        return out;
    }
    let show = |v: Option<&Value>| {
        if c.sensitive && v.is_some_and(|v| v.as_str() != Some(UNKNOWN)) {
            value::SENSITIVE_TEXT.to_string()
        } else {
            show(v)
        }
    };
    let arrow = match (&c.before, &c.after) {
        (None, after) => show(after.as_ref()),
        (before, None) => format!("{} -> null", show(before.as_ref())),
        (before, after) => format!("{} -> {}", show(before.as_ref()), show(after.as_ref())),
    };
    vec![format!(
        "{} = {arrow}{}",
        c.name,
        if c.forces_replace {
            "  # forces replacement"
        } else {
            ""
        }
    )]
}
