//! Certificate authority limits: every certificate order is kept in state (`issuance/`
//! notes); a plan whose orders would exceed a limit of the CA (new orders per window,
//! certificates per registered domain, duplicate certificates) defers the excess tenants
//! to a later run, with the reason, instead of failing them at the CA.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{OpenState, OpsError};
use crate::apply::Report;
use crate::plan::{Action, Deferral, Plan, ResourceChange};
use crate::providers::{IssuanceLimit, LimitKind, Registry};

/// The note prefix of issuance events.
const PREFIX: &str = "issuance/";

/// Events older than this are dropped when new ones are recorded.
const KEEP: Duration = Duration::from_secs(8 * 86_400);

/// One order sent to a CA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Issuance {
    /// Seconds since the Unix epoch.
    at: f64,
    /// Whose limit it counts against (the ACME directory).
    scope: String,
    /// Resource type.
    #[serde(rename = "type")]
    rtype: String,
    /// Names of the certificate, sorted.
    names: Vec<String>,
    /// Tenant.
    tenant: String,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// `example.co` of `shop.example.co`: the last two labels (the public suffix list would
/// be exact for suffixes like `co.uk`, where this counts more names together).
fn registered_domain(name: &str) -> String {
    let labels: Vec<&str> = name.trim_end_matches('.').rsplit('.').take(2).collect();
    labels.into_iter().rev().collect::<Vec<_>>().join(".")
}

/// The names a planned certificate asks for.
fn names_of(c: &ResourceChange) -> Vec<String> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    if let Some(cn) = c.properties.get("common_name").and_then(|v| v.as_str()) {
        names.insert(cn.to_ascii_lowercase());
    }
    for n in c
        .properties
        .get("dns_names")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
    {
        names.insert(n.to_ascii_lowercase());
    }
    names.into_iter().collect()
}

/// Whether `event` counts against `limit` for a certificate of `names`.
fn counts(limit: &IssuanceLimit, event: &Issuance, names: &[String]) -> bool {
    if event.scope != limit.scope || event.rtype != limit.type_name {
        return false;
    }
    match limit.kind {
        LimitKind::Orders => true,
        LimitKind::Duplicates => event.names == names,
        LimitKind::PerDomain => {
            let mine: BTreeSet<String> = names.iter().map(|n| registered_domain(n)).collect();
            event
                .names
                .iter()
                .any(|n| mine.contains(&registered_domain(n)))
        }
    }
}

fn history(st: &OpenState) -> Result<Vec<Issuance>, OpsError> {
    Ok(st
        .store
        .notes(PREFIX)?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_value(v).ok())
        .collect())
}

/// Whether `c` orders a certificate under one of `limits`.
pub fn is_order(c: &ResourceChange, limits: &[IssuanceLimit]) -> bool {
    matches!(c.action, Action::Create | Action::Replace)
        && limits.iter().any(|l| l.type_name == c.address.rtype)
}

/// The tenants of `plan` whose certificate orders would exceed a CA limit, taking
/// tenants in `order` (earlier ones first; the rest by id).
pub fn deferrals(
    plan: &Plan,
    registry: &Registry,
    st: &OpenState,
    order: &[String],
) -> Result<Vec<Deferral>, OpsError> {
    let limits = registry.issuance_limits();
    let mut by_tenant: BTreeMap<String, Vec<&ResourceChange>> = BTreeMap::new();
    for c in plan.changes.iter().filter(|c| is_order(c, &limits)) {
        by_tenant
            .entry(c.address.scope.to_string())
            .or_default()
            .push(c);
    }
    if by_tenant.is_empty() {
        return Ok(vec![]);
    }
    let rank: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let mut tenants: Vec<String> = by_tenant.keys().cloned().collect();
    tenants.sort_by_key(|t| {
        (
            rank.get(t.as_str()).copied().unwrap_or(usize::MAX),
            t.clone(),
        )
    });
    let now = now();
    let mut events = history(st)?;
    let mut out = vec![];
    for tenant in tenants {
        let mut admitted = vec![];
        let mut reason = None;
        'orders: for c in &by_tenant[&tenant] {
            let names = names_of(c);
            for l in limits.iter().filter(|l| l.type_name == c.address.rtype) {
                let since = now - l.window.as_secs_f64();
                let used: Vec<&Issuance> = events
                    .iter()
                    .chain(&admitted)
                    .filter(|e| e.at > since && counts(l, e, &names))
                    .collect();
                if used.len() as u64 >= l.max {
                    let frees = used.iter().map(|e| e.at).fold(f64::INFINITY, f64::min)
                        + l.window.as_secs_f64();
                    reason = Some(format!(
                        "{}: {} used in the window; deferred to a run after {}",
                        l.name,
                        used.len(),
                        rfc3339(frees)
                    ));
                    break 'orders;
                }
            }
            admitted.push(Issuance {
                at: now,
                scope: limits
                    .iter()
                    .find(|l| l.type_name == c.address.rtype)
                    .map(|l| l.scope.clone())
                    .unwrap_or_default(),
                rtype: c.address.rtype.clone(),
                names,
                tenant: tenant.clone(),
            });
        }
        match reason {
            Some(reason) => out.push(Deferral { tenant, reason }),
            None => events.extend(admitted),
        }
    }
    Ok(out)
}

fn rfc3339(secs: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs.ceil() as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Sets `plan.deferred` from the issuance history now, taking tenants in rollout order
/// when the plan has waves.
pub fn refresh(plan: &mut Plan, registry: &Registry, st: &OpenState) -> Result<(), OpsError> {
    let order: Vec<String> = plan
        .waves
        .iter()
        .flat_map(|w| w.tenants.iter().cloned())
        .collect();
    plan.deferred = deferrals(plan, registry, st, &order)?;
    Ok(())
}

/// Records the certificate orders `plan` sent (every limited create or replace that was
/// not skipped), and forgets events older than a week and a day.
pub fn record(
    st: &OpenState,
    registry: &Registry,
    plan: &Plan,
    report: &Report,
) -> Result<(), OpsError> {
    let limits = registry.issuance_limits();
    if limits.is_empty() {
        return Ok(());
    }
    let skipped: BTreeSet<&crate::addr::ResourceAddr> = report.skipped.iter().collect();
    let now = now();
    let mut notes = vec![];
    for c in &plan.changes {
        let Some(l) = limits.iter().find(|l| l.type_name == c.address.rtype) else {
            continue;
        };
        if !matches!(c.action, Action::Create | Action::Replace) || skipped.contains(&c.address) {
            continue;
        }
        let e = Issuance {
            at: now,
            scope: l.scope.clone(),
            rtype: c.address.rtype.clone(),
            names: names_of(c),
            tenant: c.address.scope.to_string(),
        };
        let key = format!("{PREFIX}{:020}/{}", (now * 1e6) as u64, c.address);
        notes.push((key, serde_json::to_value(e).ok()));
    }
    if notes.is_empty() {
        return Ok(());
    }
    for (k, v) in st.store.notes(PREFIX)? {
        let old = serde_json::from_value::<Issuance>(v)
            .map(|e| e.at < now - KEEP.as_secs_f64())
            .unwrap_or(true);
        if old {
            notes.push((k, None));
        }
    }
    st.store.set_notes(notes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_domains_and_what_counts() {
        assert_eq!(registered_domain("shop.acme.test."), "acme.test");
        let limit = |kind| IssuanceLimit {
            type_name: "acme_certificate",
            scope: "dir".into(),
            kind,
            max: 1,
            window: Duration::from_secs(60),
            name: String::new(),
        };
        let e = Issuance {
            at: 0.0,
            scope: "dir".into(),
            rtype: "acme_certificate".into(),
            names: vec!["a.acme.test".into()],
            tenant: "acme".into(),
        };
        let other = vec!["b.acme.test".to_string()];
        assert!(counts(&limit(LimitKind::Orders), &e, &other));
        assert!(counts(&limit(LimitKind::PerDomain), &e, &other));
        assert!(!counts(&limit(LimitKind::Duplicates), &e, &other));
        assert!(counts(&limit(LimitKind::Duplicates), &e, &e.names));
        assert!(!counts(
            &limit(LimitKind::PerDomain),
            &e,
            &["x.globex.test".into()]
        ));
    }
}
