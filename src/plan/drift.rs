//! Drift detection, the read-only mode of plan: refresh every recorded resource and
//! report what changed or was deleted out of band, and certificates inside their
//! renewal window.

use std::fmt::Write;

use serde::Serialize;
use serde_json::{json, Value};

use crate::addr::ResourceAddr;
use crate::plan::refresh::refresh;
use crate::plan::show::attr_lines;
use crate::plan::{AttrChange, PlanError};
use crate::providers::{AttrKind, PlanRequest, ReadRequest, Registry};
use crate::state::ResourceRecord;
use crate::value::redact;

/// How a resource drifted.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftItem {
    /// Address.
    pub address: ResourceAddr,
    /// What happened.
    pub kind: DriftKind,
    /// Recorded (`before`) versus live (`after`) values, redacted.
    pub attributes: Vec<AttrChange>,
}

/// The drift report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Resources checked.
    pub checked: usize,
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
    Ok(Report {
        checked: scoped.len(),
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
    json!({ "format_version": 1, "kind": "drift", "checked": r.checked, "drifted": r.items.len(), "items": r.items })
}

/// The report as markdown.
pub fn markdown(r: &Report) -> String {
    let mut s = String::from("### landlord drift\n\n");
    if !r.has_drift() {
        let _ = writeln!(
            s,
            "**No drift.** {} resources match their recorded state.",
            r.checked
        );
        return s;
    }
    let _ = writeln!(
        s,
        "**{} of {} resources drifted.**\n\n| Resource | Drift | Attributes |\n|---|---|---|",
        r.items.len(),
        r.checked
    );
    for i in &r.items {
        let kind = match &i.kind {
            DriftKind::Changed => "changed out of band".to_string(),
            DriftKind::Deleted => "deleted out of band".to_string(),
            DriftKind::RenewalDue(r) => r.clone(),
            DriftKind::ServedDiffers(ns) => format!("served value differs at {ns}"),
        };
        let attrs: Vec<String> = i
            .attributes
            .iter()
            .map(|a| format!("`{}`", a.name))
            .collect();
        let _ = writeln!(s, "| `{}` | {kind} | {} |", i.address, attrs.join(", "));
    }
    s
}
