//! Changed-only runs: every apply records, per tenant, what the tenant was made of
//! (`inputs/<tenant>` notes in state); `--changed` selects the tenants whose inputs differ
//! now, reading files and notes but parsing and rendering none of the others.

use std::collections::BTreeSet;

use super::{OpenState, OpsError, Session};
use crate::addr::SHARED;
use crate::apply::Report;
use crate::plan::{Mode, Plan};
use crate::workspace::inputs::{pairs_digest, Scanner, TenantInputs};
use crate::workspace::Config;

/// The note prefix of recorded inputs.
const PREFIX: &str = "inputs/";

/// Which tenants changed since their last apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changed {
    /// Tenants (and `_shared`) to plan, sorted.
    pub tenants: Vec<String>,
    /// Tenants left out as unchanged.
    pub unchanged: usize,
}

/// The tenants of the workspace at `root` whose inputs differ from those recorded at
/// their last apply, those recorded in state without a file any more, those never applied,
/// and those with operations a killed run left (intents).
pub fn changed_tenants(
    root: &std::path::Path,
    config: &Config,
    st: &OpenState,
) -> Result<Changed, OpsError> {
    let mut scan = Scanner::new(root, config);
    let files = scan.tenant_files();
    let recorded: std::collections::HashMap<String, TenantInputs> = st
        .store
        .notes(PREFIX)?
        .into_iter()
        .filter_map(|(k, v)| {
            let id = k.strip_prefix(PREFIX)?.to_string();
            // A note this landlord cannot read counts as no note: the tenant is planned.
            Some((id, serde_json::from_value(v).ok()?))
        })
        .collect();
    let mut changed: BTreeSet<String> = BTreeSet::new();
    let mut unchanged = 0;
    for (id, digest) in &files {
        match recorded.get(id) {
            Some(was) if scan.unchanged(was, digest) => unchanged += 1,
            _ => {
                changed.insert(id.clone());
            }
        }
    }
    let with_file: BTreeSet<&str> = files.iter().map(|(id, _)| id.as_str()).collect();
    let in_state = st.store.scopes()?;
    for scope in &in_state {
        if scope != SHARED && !with_file.contains(scope.as_str()) {
            changed.insert(scope.clone());
        }
    }
    // Workspace resources: `shared.yaml`, its modules, and the list of tenants.
    let shared_exists = !scan.shared_file().is_empty() || in_state.contains(SHARED);
    if shared_exists {
        let fleet = pairs_digest(files.iter().map(|(i, d)| (i.as_str(), d.as_str())));
        let file = scan.shared_file().to_string();
        let same = recorded.get(SHARED).is_some_and(|was| {
            (was.fleet.is_empty() || was.fleet == fleet) && scan.unchanged(was, &file)
        });
        if !same {
            changed.insert(SHARED.into());
        }
    }
    for i in st.store.intents()? {
        changed.insert(i.address.scope.to_string());
    }
    Ok(Changed {
        tenants: changed.into_iter().collect(),
        unchanged,
    })
}

/// The plan of a run whose selection (`--changed`, `--shard`) holds no tenant.
pub fn nothing_changed(
    st: &OpenState,
    mode: Mode,
    unchanged: Option<usize>,
) -> Result<Plan, OpsError> {
    Ok(Plan {
        format_version: crate::plan::PLAN_FORMAT_VERSION,
        mode,
        lineage: st.store.lineage()?,
        state_serial: st.store.serial()?,
        versions: Default::default(),
        input_hash: String::new(),
        tenants: vec![],
        refreshed: false,
        changes: vec![],
        edges: vec![],
        unchanged: 0,
        guard: Default::default(),
        unchanged_tenants: unchanged,
        deferred: vec![],
        waves: vec![],
    })
}

/// Records the inputs of the tenants `plan` covered: tenants whose changes all succeeded
/// get what they were made of now, the others (failed, interrupted, destroyed, gone)
/// lose their note, so `--changed` plans them again.
pub fn record_inputs(
    s: &Session,
    st: &OpenState,
    plan: &Plan,
    report: Option<&Report>,
) -> Result<(), OpsError> {
    let mut scopes: BTreeSet<String> = if plan.tenants.is_empty() {
        s.ws.tenants
            .iter()
            .map(|t| t.spec.id.clone())
            .chain(std::iter::once(SHARED.to_string()))
            .collect()
    } else {
        plan.tenants.iter().cloned().collect()
    };
    scopes.extend(plan.changes.iter().map(|c| c.address.scope.to_string()));
    let mut unsettled: BTreeSet<String> = plan.deferred.iter().map(|d| d.tenant.clone()).collect();
    if let Some(r) = report {
        unsettled.extend(r.failed.iter().map(|(a, _)| a.scope.to_string()));
        unsettled.extend(r.skipped.iter().map(|a| a.scope.to_string()));
        if r.interrupted.is_some() {
            unsettled.extend(plan.changes.iter().map(|c| c.address.scope.to_string()));
        }
    }
    let inputs = s.ws.inputs();
    let notes = scopes
        .into_iter()
        .map(|scope| {
            let value = if plan.mode == Mode::Destroy || unsettled.contains(&scope) {
                None
            } else {
                inputs.of(&scope).and_then(|i| serde_json::to_value(i).ok())
            };
            (format!("{PREFIX}{scope}"), value)
        })
        .collect();
    st.store.set_notes(notes)?;
    Ok(())
}
