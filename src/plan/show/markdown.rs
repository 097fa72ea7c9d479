//! `--markdown` rendering for pull-request comments: a summary table, one collapsible
//! section per tenant, and a mermaid graph of the changes. Kept under GitHub's comment
//! limit: sections that do not fit are listed by name only.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{attr_lines, summary_line};
use crate::plan::{Action, Plan, ResourceChange};

/// Characters a comment may use; GitHub refuses more than 65,536.
pub const COMMENT_BUDGET: usize = 60_000;

/// The plan as markdown.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::from("### landlord plan\n\n");
    if !plan.has_changes() {
        let _ = writeln!(
            out,
            "**No changes.** {} resources are up to date.",
            plan.unchanged
        );
        return out;
    }
    let _ = writeln!(out, "**{}**\n", summary_line(&plan.summary()));
    let mut by_tenant: BTreeMap<&str, Vec<&ResourceChange>> = BTreeMap::new();
    for c in &plan.changes {
        by_tenant
            .entry(c.address.scope.as_str())
            .or_default()
            .push(c);
    }
    out.push_str("| Tenant | Add | Change | Replace | Destroy |\n|---|---:|---:|---:|---:|\n");
    for (t, cs) in &by_tenant {
        let n = |a: Action| cs.iter().filter(|c| c.action == a).count();
        let _ = writeln!(
            out,
            "| `{t}` | {} | {} | {} | {} |",
            n(Action::Create),
            n(Action::Update),
            n(Action::Replace),
            n(Action::Delete)
        );
    }
    out.push('\n');
    if plan.changes.len() <= 40 {
        out.push_str("```mermaid\ngraph LR\n");
        for (i, c) in plan.changes.iter().enumerate() {
            let _ = writeln!(out, "  n{i}[\"{} {}\"]", c.action.symbol(), c.address);
        }
        for (i, j) in &plan.edges {
            let _ = writeln!(out, "  n{j} --> n{i}");
        }
        out.push_str("```\n\n");
    }
    let mut omitted = Vec::new();
    for (t, cs) in &by_tenant {
        let mut sec = String::new();
        let _ = writeln!(
            sec,
            "<details><summary><b>{t}</b>: {} changes</summary>\n\n```diff",
            cs.len()
        );
        for c in cs {
            let _ = writeln!(
                sec,
                "{} {} ({})",
                c.action.symbol(),
                c.address,
                c.reasons.join("; ")
            );
            for a in &c.attributes {
                for l in attr_lines(a) {
                    let _ = writeln!(sec, "    {}", l.replace("```", "'''"));
                }
            }
        }
        sec.push_str("```\n</details>\n\n");
        if out.len() + sec.len() > COMMENT_BUDGET {
            omitted.push(*t);
        } else {
            out.push_str(&sec);
        }
    }
    if !omitted.is_empty() {
        let _ = writeln!(out, "_Details of {} tenants omitted to fit the comment size limit: {}. Run `landlord plan --tenant T` for them._", omitted.len(), omitted.join(", "));
    }
    out
}
