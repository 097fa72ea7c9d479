//! Drift detection, the read-only mode of plan: refresh every recorded resource and
//! report what changed or was deleted out of band, and certificates inside their
//! renewal window.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::addr::ResourceAddr;
use crate::plan::refresh::refresh;
use crate::plan::show::attr_lines;
use crate::plan::show::comment::{Doc, Section};
use crate::plan::{AttrChange, PlanError};
use crate::providers::{AttrKind, PlanRequest, ReadRequest, Registry};
use crate::state::ResourceRecord;
use crate::value::redact;

/// How a resource drifted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftKind {
    /// Attributes changed out of band.
    Changed,
    /// The object is gone.
    Deleted,
    /// A certificate is inside its renewal window.
    RenewalDue(String),
    /// A nameserver serves something other than what the API holds (named here).
    ServedDiffers(String),
}

/// One drifted resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftItem {
    /// Address.
    pub address: ResourceAddr,
    /// What happened.
    pub kind: DriftKind,
    /// Recorded (`before`) versus live (`after`) values, redacted.
    pub attributes: Vec<AttrChange>,
}

/// The drift report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Resources checked.
    pub checked: usize,
    /// Resources checked per tenant (`_shared` for the workspace's own).
    #[serde(default)]
    pub tenants: BTreeMap<String, usize>,
    /// Drifted resources, by address.
    pub items: Vec<DriftItem>,
}

impl Report {
    /// Whether anything drifted.
    pub fn has_drift(&self) -> bool {
        !self.items.is_empty()
    }
}

/// Compares every record in scope with the live object.
pub async fn detect(
    records: &[ResourceRecord],
    registry: &Registry,
    tenants: &[String],
) -> Result<Report, PlanError> {
    let selected = crate::addr::Selection::new(tenants);
    let scoped: Vec<&ResourceRecord> = records
        .iter()
        .filter(|r| selected.holds(r.address.scope.as_str()))
        .collect();
    let live = refresh(registry, &scoped).await?;
    let mut items = Vec::new();
    for rec in &scoped {
        let Some((provider, schema)) = registry.get(&rec.address.rtype) else {
            continue;
        };
        match live.get(&rec.address).and_then(Option::as_ref) {
            None => items.push(DriftItem {
                address: rec.address.clone(),
                kind: DriftKind::Deleted,
                attributes: vec![],
            }),
            Some(cur) => {
                let mut attrs = Vec::new();
                for (k, recorded) in &rec.attributes {
                    if schema.attr(k).is_some_and(|a| a.kind == AttrKind::Computed)
                        || rec.lifecycle.ignore_changes.contains(k)
                    {
                        continue;
                    }
                    let now = cur.get(k);
                    if now != Some(recorded) {
                        let s = rec.sensitive.contains(k);
                        let red = |v: Option<&Value>| redact(v, s);
                        attrs.push(AttrChange {
                            name: k.clone(),
                            before: red(Some(recorded)),
                            after: red(now),
                            sensitive: s,
                            forces_replace: false,
                        });
                    }
                }
                if !attrs.is_empty() {
                    items.push(DriftItem {
                        address: rec.address.clone(),
                        kind: DriftKind::Changed,
                        attributes: attrs,
                    });
                }
                let pr = provider
                    .plan(PlanRequest {
                        address: rec.address.clone(),
                        prior: Some(cur.clone()),
                        config: rec.attributes.clone(),
                    })
                    .await
                    .map_err(|e| PlanError::Provider {
                        address: rec.address.clone(),
                        message: e.to_string(),
                    })?;
                if let Some(reason) = pr.replace_reason {
                    items.push(DriftItem {
                        address: rec.address.clone(),
                        kind: DriftKind::RenewalDue(reason),
                        attributes: vec![],
                    });
                }
                // What resolvers get, apart from what the API holds.
                let read = ReadRequest {
                    address: rec.address.clone(),
                    id: rec.id.clone(),
                    prior: rec.attributes.clone(),
                };
                let served = provider.served_differences(read, cur).await.map_err(|e| {
                    PlanError::Provider {
                        address: rec.address.clone(),
                        message: format!("served-answer check failed: {e}"),
                    }
                })?;
                for (nameserver, got) in served {
                    let attributes = ["records", "ttl"]
                        .iter()
                        .filter(|k| cur.get(**k) != got.get(**k))
                        .map(|k| AttrChange {
                            name: k.to_string(),
                            before: cur.get(*k).cloned(),
                            after: got.get(*k).cloned(),
                            sensitive: false,
                            forces_replace: false,
                        })
                        .collect();
                    items.push(DriftItem {
                        address: rec.address.clone(),
                        kind: DriftKind::ServedDiffers(nameserver),
                        attributes,
                    });
                }
            }
        }
    }
    let mut per_tenant = BTreeMap::new();
    for r in &scoped {
        *per_tenant
            .entry(r.address.scope.as_str().to_string())
            .or_insert(0) += 1;
    }
    Ok(Report {
        checked: scoped.len(),
        tenants: per_tenant,
        items,
    })
}

fn line(item: &DriftItem) -> Vec<String> {
    let mut out = vec![match &item.kind {
        DriftKind::Changed => format!("~ {}: changed out of band", item.address),
        DriftKind::Deleted => format!("- {}: deleted out of band", item.address),
        DriftKind::RenewalDue(r) => format!("! {}: {r}", item.address),
        DriftKind::ServedDiffers(ns) => format!(
            "? {}: served value differs at {ns} (the API value is as recorded)",
            item.address
        ),
    }];
    for a in &item.attributes {
        out.extend(attr_lines(a).into_iter().map(|l| format!("    {l}")));
    }
    out
}

/// The report as terminal text.
pub fn text(r: &Report) -> String {
    if !r.has_drift() {
        return format!(
            "No drift. {} resources match their recorded state.\n",
            r.checked
        );
    }
    let mut s = String::new();
    for item in &r.items {
        for l in line(item) {
            let _ = writeln!(s, "{l}");
        }
    }
    let _ = writeln!(
        s,
        "\nDrift: {} of {} resources drifted.",
        r.items.len(),
        r.checked
    );
    s
}

/// The report as JSON.
pub fn json(r: &Report) -> Value {
    json!({
        "format_version": 1,
        "kind": "drift",
        "checked": r.checked,
        "drifted": r.items.len(),
        "tenants": r.tenants,
        "items": r.items,
    })
}

/// The drifted resources of each tenant, in tenant order.
fn by_tenant(r: &Report) -> BTreeMap<&str, Vec<&DriftItem>> {
    let mut m: BTreeMap<&str, Vec<&DriftItem>> = BTreeMap::new();
    for i in &r.items {
        m.entry(i.address.scope.as_str()).or_default().push(i);
    }
    m
}

/// The report's lines for each drifted tenant, in tenant order.
pub fn tenant_lines(r: &Report) -> BTreeMap<&str, Vec<String>> {
    by_tenant(r)
        .into_iter()
        .map(|(t, items)| (t, items.iter().flat_map(|i| line(i)).collect()))
        .collect()
}

/// What a drift is, in a few words.
fn kind_words(k: &DriftKind) -> String {
    match k {
        DriftKind::Changed => "changed out of band".to_string(),
        DriftKind::Deleted => "deleted out of band".to_string(),
        DriftKind::RenewalDue(r) => r.clone(),
        DriftKind::ServedDiffers(ns) => format!("served value differs at {ns}"),
    }
}

/// The report as a markdown document: a summary table of the drifted tenants, then a
/// section per drifted tenant.
pub fn document(r: &Report) -> Doc {
    let mut doc = Doc {
        title: "### landlord drift".into(),
        hint: "landlord drift --tenant {tenant}".into(),
        ..Doc::default()
    };
    if !r.has_drift() {
        let _ = writeln!(
            doc.head,
            "**No drift.** {} resources of {} tenants match their recorded state.",
            r.checked,
            r.tenants.len()
        );
        return doc;
    }
    let drifted = by_tenant(r);
    let _ = writeln!(
        doc.head,
        "**{} of {} resources drifted, in {} of {} tenants.**\n",
        r.items.len(),
        r.checked,
        drifted.len(),
        r.tenants.len()
    );
    doc.table_header =
        "| Tenant | Changed | Deleted | Renewal due | Served differs | Checked |\n|---|---:|---:|---:|---:|---:|\n"
            .into();
    for (t, items) in &drifted {
        let n = |f: fn(&DriftKind) -> bool| items.iter().filter(|i| f(&i.kind)).count();
        doc.rows.push(format!(
            "| `{t}` | {} | {} | {} | {} | {} |\n",
            n(|k| matches!(k, DriftKind::Changed)),
            n(|k| matches!(k, DriftKind::Deleted)),
            n(|k| matches!(k, DriftKind::RenewalDue(_))),
            n(|k| matches!(k, DriftKind::ServedDiffers(_))),
            r.tenants.get(*t).copied().unwrap_or(0)
        ));
        doc.sections.push(Section {
            name: t.to_string(),
            summary: format!("{} drifted", items.len()),
            lines: items.iter().flat_map(|i| line(i)).collect(),
        });
    }
    doc
}

/// The report as one markdown comment.
pub fn markdown(r: &Report) -> String {
    document(r).single(crate::plan::show::COMMENT_BUDGET)
}

/// The report as JUnit XML: a test case per tenant checked, a failure per drifted
/// resource.
pub fn junit(r: &Report) -> String {
    let drifted = by_tenant(r);
    let failing = drifted.len();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"landlord drift\" tests=\"{}\" failures=\"{failing}\" errors=\"0\">",
        r.tenants.len()
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"landlord drift\" tests=\"{}\" failures=\"{failing}\" errors=\"0\" skipped=\"0\" timestamp=\"{}\">",
        r.tenants.len(),
        crate::state::now_rfc3339()
    );
    for (tenant, checked) in &r.tenants {
        let name = xml_escape(tenant);
        let items = drifted
            .get(tenant.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if items.is_empty() {
            let _ = writeln!(
                s,
                "    <testcase classname=\"landlord.drift\" name=\"{name}\"><system-out>{checked} resources match their recorded state.</system-out></testcase>"
            );
            continue;
        }
        let _ = writeln!(
            s,
            "    <testcase classname=\"landlord.drift\" name=\"{name}\">"
        );
        for i in items {
            let kind = match i.kind {
                DriftKind::Changed => "changed",
                DriftKind::Deleted => "deleted",
                DriftKind::RenewalDue(_) => "renewal-due",
                DriftKind::ServedDiffers(_) => "served-differs",
            };
            let _ = writeln!(
                s,
                "      <failure type=\"{kind}\" message=\"{}\">{}</failure>",
                xml_escape(&format!("{}: {}", i.address, kind_words(&i.kind))),
                xml_escape(&line(i).join("\n"))
            );
        }
        s.push_str("    </testcase>\n");
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

/// `text` with the five XML special characters escaped and control characters dropped.
fn xml_escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            '\n' | '\t' => s.push(c),
            c if c.is_control() => {}
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> Report {
        let item = |a: &str, kind: DriftKind| DriftItem {
            address: a.parse().unwrap(),
            kind,
            attributes: vec![AttrChange {
                name: "content".into(),
                before: Some(json!("a <b> & \"c\"")),
                after: Some(json!("x")),
                sensitive: false,
                forces_replace: false,
            }],
        };
        Report {
            checked: 9,
            tenants: [("acme", 3), ("globex", 3), ("initech", 3)]
                .iter()
                .map(|(t, n)| (t.to_string(), *n))
                .collect(),
            items: vec![
                item("acme/local_file.site", DriftKind::Changed),
                item("acme/local_file.env", DriftKind::Deleted),
                item("initech/local_file.site", DriftKind::Changed),
            ],
        }
    }

    #[test]
    fn junit_has_a_case_per_tenant_and_a_failure_per_drifted_resource() {
        let x = junit(&report());
        assert!(x.contains("<testsuites name=\"landlord drift\" tests=\"3\" failures=\"2\""));
        assert_eq!(x.matches("<testcase ").count(), 3);
        assert_eq!(x.matches("<failure ").count(), 3);
        assert!(x.contains("name=\"globex\"><system-out>3 resources match"));
        assert!(x.contains("message=\"acme/local_file.env: deleted out of band\""));
        assert!(x.contains("a &lt;b&gt; &amp; \\&quot;c\\&quot;"), "{x}");
        assert!(!x.contains("<b>"), "values are escaped");
    }

    #[test]
    fn markdown_has_a_row_and_a_section_per_drifted_tenant() {
        let md = markdown(&report());
        assert!(md.contains("**3 of 9 resources drifted, in 2 of 3 tenants.**"));
        assert!(md.contains("| `acme` | 1 | 1 | 0 | 0 | 3 |"));
        assert!(md.contains("| `initech` | 1 | 0 | 0 | 0 | 3 |"));
        assert!(!md.contains("globex"), "clean tenants are only counted");
        assert_eq!(md.matches("<details>").count(), 2);
        assert!(md.contains("~ acme/local_file.site: changed out of band"));
    }
}
