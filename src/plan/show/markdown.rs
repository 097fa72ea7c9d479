//! `--markdown` rendering for pull-request comments: a summary table, one collapsible
//! section per tenant, and a mermaid graph of the changes. One comment stays under
//! GitHub's limit (sections that do not fit are counted); `--markdown-out` splits the
//! whole plan into numbered parts instead.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::comment::{Doc, Section};
use super::{attr_lines, summary_line};
use crate::plan::{Action, Plan, ResourceChange};

/// Characters one comment may use; GitHub refuses more than 65,536.
pub const COMMENT_BUDGET: usize = 60_000;

/// The plan as one markdown comment.
pub fn markdown(plan: &Plan) -> String {
    document(plan).single(COMMENT_BUDGET)
}

/// The plan as markdown parts of at most `limit` characters, together holding every
/// tenant's changes.
pub fn markdown_parts(plan: &Plan, limit: usize) -> Vec<String> {
    document(plan).parts(limit)
}

/// The plan as a markdown document.
fn document(plan: &Plan) -> Doc {
    let mut doc = Doc {
        title: "### landlord plan".into(),
        hint: "landlord plan --tenant {tenant}".into(),
        ..Doc::default()
    };
    let out = &mut doc.head;
    if let Some(l) = super::skipped_line(plan) {
        let _ = writeln!(out, "_{l}_\n");
    }
    if !plan.has_changes() {
        let _ = writeln!(
            out,
            "**No changes.** {} resources are up to date.",
            plan.unchanged
        );
        return doc;
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
    doc.table_header =
        "| Tenant | Add | Change | Replace | Destroy |\n|---|---:|---:|---:|---:|\n".into();
    for (t, cs) in &by_tenant {
        let n = |a: Action| cs.iter().filter(|c| c.action == a).count();
        doc.rows.push(format!(
            "| `{t}` | {} | {} | {} | {} |\n",
            n(Action::Create),
            n(Action::Update),
            n(Action::Replace),
            n(Action::Delete)
        ));
    }
    if plan.changes.len() <= 40 {
        let m = &mut doc.middle;
        m.push_str("```mermaid\ngraph LR\n");
        for (i, c) in plan.changes.iter().enumerate() {
            let _ = writeln!(m, "  n{i}[\"{} {}\"]", c.action.symbol(), c.address);
        }
        for (i, j) in &plan.edges {
            let _ = writeln!(m, "  n{j} --> n{i}");
        }
        m.push_str("```\n\n");
    }
    for (t, cs) in &by_tenant {
        let mut lines = Vec::new();
        for c in cs {
            lines.push(format!(
                "{} {} ({})",
                c.action.symbol(),
                c.address,
                c.reasons.join("; ")
            ));
            for a in &c.attributes {
                lines.extend(attr_lines(a).into_iter().map(|l| format!("    {l}")));
            }
        }
        doc.sections.push(Section {
            name: t.to_string(),
            summary: format!("{} changes", cs.len()),
            lines,
        });
    }
    doc
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
    fn a_5000_tenant_plan_splits_into_comment_parts_listing_every_tenant() {
        let parts = markdown_parts(&plan(5000), super::super::comment::GITHUB_COMMENT_LIMIT);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.chars().count() <= 65_536));
        assert!(
            parts[0].contains("**Plan: 5000 to add, 0 to change, 0 to replace, 0 to destroy.**")
        );
        let all = parts.concat();
        for i in 0..5000 {
            assert!(
                all.contains(&format!("<b>t{i:04}</b>: 1 changes")),
                "t{i:04}"
            );
        }
        assert!(!all.contains("omitted"));
    }

    #[test]
    fn a_small_plan_has_a_section_per_tenant_and_a_graph() {
        let md = markdown(&plan(3));
        assert_eq!(md.matches("<details>").count(), 3);
        assert!(md.contains("```mermaid"));
        assert!(!md.contains("omitted"));
    }
}
