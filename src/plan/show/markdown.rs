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
    if let Some(l) = super::skipped_line(plan) {
        let _ = writeln!(out, "_{l}_\n");
    }
    if !plan.has_changes() {
        let _ = writeln!(
            out,
            "**No changes.** {} resources are up to date.",
            plan.unchanged
        );
        return out;
    }
    let _ = writeln!(out, "**{}**\n", summary_line(&plan.summary()));
    let deferred = super::deferred_lines(plan);
    if !deferred.is_empty() {
        let _ = writeln!(out, "{}\n", deferred.join("\n"));
    }
    if plan.guard.refuses() {
        let _ = writeln!(
            out,
            "> [!CAUTION]\n> {}\n",
            plan.guard.describe().replace('\n', "\n> ")
        );
    } else if !plan.guard.losses.is_empty() {
        let _ = writeln!(out, "{}\n", plan.guard.describe());
    }
    let mut by_tenant: BTreeMap<&str, Vec<&ResourceChange>> = BTreeMap::new();
    for c in &plan.changes {
        by_tenant
            .entry(c.address.scope.as_str())
            .or_default()
            .push(c);
    }
    if !plan.waves.is_empty() {
        out.push_str("| Wave | Tenants | With changes | Add | Change | Replace | Destroy | Failure budget |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for w in &plan.waves {
            let s = &w.summary;
            let _ = writeln!(
                out,
                "| {}{} | {} | {} | {} | {} | {} | {} | {} |",
                w.name,
                if w.pause_after { " ⏸" } else { "" },
                w.tenants.len(),
                w.changed.len(),
                s.add,
                s.change,
                s.replace,
                s.destroy,
                w.allowed_failures
            );
        }
        out.push('\n');
    }
    out.push_str("| Tenant | Add | Change | Replace | Destroy |\n|---|---:|---:|---:|---:|\n");
    // The table gets at most half the budget; the rest of the tenants are summed up.
    let mut listed = 0;
    for (t, cs) in &by_tenant {
        if out.len() > COMMENT_BUDGET / 2 {
            break;
        }
        let n = |a: Action| cs.iter().filter(|c| c.action == a).count();
        let _ = writeln!(
            out,
            "| `{t}` | {} | {} | {} | {} |",
            n(Action::Create),
            n(Action::Update),
            n(Action::Replace),
            n(Action::Delete)
        );
        listed += 1;
    }
    if listed < by_tenant.len() {
        let _ = writeln!(
            out,
            "| _{} more tenants_ | | | | |",
            by_tenant.len() - listed
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
        let _ = writeln!(
            out,
            "_Details of {} tenants omitted to fit the comment size limit. Run `landlord plan --tenant T` (or `--json`) for them._",
            omitted.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, AttrChange, Mode, Plan, ResourceChange, PLAN_FORMAT_VERSION};
    use serde_json::json;

    fn plan(tenants: usize) -> Plan {
        let changes = (0..tenants)
            .map(|i| ResourceChange {
                address: format!("t{i:04}/local_file.site").parse().unwrap(),
                action: Action::Create,
                reasons: vec!["new resource".into()],
                attributes: vec![AttrChange {
                    name: "content".into(),
                    before: None,
                    after: Some(json!(
                        "server {\n    listen 443 ssl;\n    server_name example;\n}\n"
                    )),
                    sensitive: false,
                    forces_replace: false,
                }],
                properties: Default::default(),
                depends_on: vec![],
                lifecycle: Default::default(),
            })
            .collect();
        Plan {
            format_version: PLAN_FORMAT_VERSION,
            mode: Mode::Normal,
            lineage: String::new(),
            state_serial: 0,
            versions: Default::default(),
            input_hash: String::new(),
            tenants: vec![],
            refreshed: false,
            changes,
            edges: vec![],
            unchanged: 0,
            guard: Default::default(),
            unchanged_tenants: None,
            deferred: vec![],
            waves: vec![],
        }
    }

    #[test]
    fn a_large_plan_fits_a_pull_request_comment() {
        let md = markdown(&plan(2000));
        assert!(md.len() < 65_536, "{} characters", md.len());
        assert!(md.contains("**Plan: 2000 to add, 0 to change, 0 to replace, 0 to destroy.**"));
        assert!(md.contains("_Details of "), "omitted tenants are named");
        assert!(!md.contains("```mermaid"), "no graph for large plans");
    }

    #[test]
    fn a_small_plan_has_a_section_per_tenant_and_a_graph() {
        let md = markdown(&plan(3));
        assert_eq!(md.matches("<details>").count(), 3);
        assert!(md.contains("```mermaid"));
        assert!(!md.contains("omitted"));
    }
}
