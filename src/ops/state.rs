//! The state operations behind `landlord state ...`: inspect, repair and move recorded
//! resources without touching the real objects.

use super::OpsError;
use crate::addr::ResourceAddr;
use crate::state::{Export, LockInfo, ResourceRecord, StateStore};
use crate::value::redact_attrs;

/// Recorded addresses of the given tenants (all when empty), and how many operations of an
/// interrupted run are pending.
pub fn list(
    store: &dyn StateStore,
    tenants: &[String],
) -> Result<(Vec<ResourceAddr>, usize), OpsError> {
    // Addresses only: nothing is unsealed.
    let addrs = store.addresses(tenants)?;
    // A selector that matches nothing is refused here as plan, apply and drift refuse it.
    if let Some(t) = tenants
        .iter()
        .find(|t| !addrs.iter().any(|a| a.scope.as_str() == t.as_str()))
    {
        return Err(OpsError::Usage(format!(
            "unknown tenant `{t}`: nothing recorded in state for it"
        )));
    }
    Ok((addrs, store.intents()?.len()))
}

/// One record with its sensitive attributes redacted.
pub fn show(store: &dyn StateStore, addr: &ResourceAddr) -> Result<ResourceRecord, OpsError> {
    let mut r = recorded(store, addr)?;
    redact_attrs(&mut r.attributes, &r.sensitive);
    Ok(r)
}

fn recorded(store: &dyn StateStore, addr: &ResourceAddr) -> Result<ResourceRecord, OpsError> {
    store
        .resource(addr)?
        .ok_or_else(|| OpsError::Usage(format!("`{addr}` is not in state")))
}

/// Forgets records (all must exist; none is forgotten otherwise).
pub fn rm(store: &dyn StateStore, addrs: &[ResourceAddr]) -> Result<(), OpsError> {
    for a in addrs {
        recorded(store, a)?;
    }
    for a in addrs {
        store.forget(a)?;
    }
    Ok(())
}

/// Moves a record to another address of the same type, in one durable write.
pub fn mv(store: &dyn StateStore, from: &ResourceAddr, to: &ResourceAddr) -> Result<(), OpsError> {
    if from.rtype != to.rtype {
        return Err(OpsError::Usage(format!(
            "cannot move `{from}` to `{to}`: the resource type must stay the same"
        )));
    }
    if store.resource(to)?.is_some() {
        return Err(OpsError::Usage(format!("`{to}` is already in state")));
    }
    let mut r = recorded(store, from)?;
    r.address = to.clone();
    store.rename(from, r)?;
    Ok(())
}

/// Removes the locks of a tenant (all when `None`); returns what was removed.
pub fn unlock(store: &dyn StateStore, tenant: Option<&str>) -> Result<Vec<LockInfo>, OpsError> {
    Ok(store.force_unlock(tenant)?)
}

/// Imports an export document; returns it for the summary.
pub fn import(store: &dyn StateStore, text: &str, source: &str) -> Result<Export, OpsError> {
    let ex: Export = serde_json::from_str(text)
        .map_err(|e| OpsError::Usage(format!("`{source}` is not a landlord state export: {e}")))?;
    store.import(&ex)?;
    Ok(ex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::crypto::Key;
    use crate::state::SledStore;
    use crate::value::SENSITIVE_TEXT;
    use std::time::Duration;

    fn record(addr: &str) -> ResourceRecord {
        ResourceRecord {
            address: addr.parse().unwrap(),
            provider: "builtin".into(),
            id: "x".into(),
            attributes: serde_json::from_value(
                serde_json::json!({"length": 16, "result": "s3cret"}),
            )
            .unwrap(),
            sensitive: vec!["result".into()],
            dependencies: vec![],
            lifecycle: Default::default(),
            created_at: "now".into(),
            updated_at: "now".into(),
            serial: 0,
        }
    }

    #[test]
    fn mv_moves_in_one_write_and_refuses_another_type_or_a_taken_address() {
        let dir = tempfile::tempdir().unwrap();
        let holder = super::super::holder("workspace", "test", Duration::from_secs(60));
        let store = SledStore::open(dir.path(), Key::generate(), &holder, Duration::ZERO).unwrap();
        store.put(record("acme/random_password.db")).unwrap();
        let serial = store.serial().unwrap();
        let (from, to): (ResourceAddr, ResourceAddr) = (
            "acme/random_password.db".parse().unwrap(),
            "globex/random_password.db".parse().unwrap(),
        );
        mv(&store, &from, &to).unwrap();
        assert_eq!(store.serial().unwrap(), serial + 1, "one write");
        assert!(store.resource(&from).unwrap().is_none());
        let moved = store.resource(&to).unwrap().unwrap();
        assert_eq!(moved.attributes["result"], "s3cret");
        store.put(record("acme/random_password.db")).unwrap();
        assert!(mv(&store, &from, &to).is_err(), "taken");
        let other: ResourceAddr = "acme/random_id.db".parse().unwrap();
        assert!(mv(&store, &from, &other).is_err(), "type");
        assert_eq!(
            show(&store, &to).unwrap().attributes["result"],
            SENSITIVE_TEXT
        );
    }
}

/// What `state migrate` copied.
#[derive(Debug, Clone, PartialEq)]
pub struct Migrated {
    /// Resource records.
    pub resources: usize,
    /// Pending intents.
    pub intents: usize,
    /// Audit events.
    pub audit: usize,
    /// Runs of history.
    pub history: usize,
    /// Where the copy went.
    pub target: String,
}

/// Copies the workspace's state to the backend `target` describes (same master key),
/// then checks the copy: its audit chains verify and it exports exactly as the source
/// does. The source is left as it was; the target must hold no state yet.
pub fn migrate(
    root: &std::path::Path,
    config: &crate::workspace::Config,
    target: crate::workspace::config::StateSection,
    lock_timeout: std::time::Duration,
) -> Result<Migrated, OpsError> {
    let command = "landlord state migrate";
    let described = describe(&target, root);
    if described == describe(&config.state, root) {
        return Err(OpsError::Usage(format!(
            "the state is already at {described}: name another backend or location"
        )));
    }
    let source = super::open_state(root, config, command, &[], lock_timeout)?;
    let export = source.store.export()?;
    let mut to = config.clone();
    to.state = target;
    let dest = super::open_state(root, &to, command, &[], lock_timeout)?;
    let existing = dest.store.export()?;
    if !existing.resources.is_empty() || !existing.history.is_empty() || !existing.audit.is_empty()
    {
        return Err(OpsError::Usage(format!(
            "{described} already holds a state ({} resources, {} runs of history): migrate only into an empty one",
            existing.resources.len(),
            existing.history.len()
        )));
    }
    dest.store.import(&export)?;
    let problems =
        crate::state::audit::verify(&dest.store.audit()?, &dest.store.resources()?, |r| {
            dest.store.digest(r)
        });
    if !problems.is_empty() {
        return Err(OpsError::Usage(format!(
            "the copy at {described} does not verify ({}); the source is unchanged",
            problems.join("; ")
        )));
    }
    let copied = dest.store.export()?;
    if serde_json::to_vec(&copied).ok() != serde_json::to_vec(&export).ok() {
        return Err(OpsError::Usage(format!(
            "the copy at {described} differs from the source; the source is unchanged"
        )));
    }
    Ok(Migrated {
        resources: export.resources.len(),
        intents: export.intents.len(),
        audit: export.audit.len(),
        history: export.history.len(),
        target: described,
    })
}

/// Where a `[state]` section puts the state, for messages.
pub fn describe(s: &crate::workspace::config::StateSection, root: &std::path::Path) -> String {
    match s.backend.as_str() {
        "s3" => format!(
            "s3://{}/{}",
            s.bucket.clone().unwrap_or_default(),
            s.key
                .clone()
                .unwrap_or_else(|| "landlord/state.json".into())
        ),
        "postgres" => {
            let place = match (&s.url_env, &s.server) {
                (Some(var), _) => format!("the database in ${var}"),
                (None, server) => format!(
                    "server `{}` database `{}`",
                    server.clone().unwrap_or_default(),
                    s.database.clone().unwrap_or_else(|| "(default)".into())
                ),
            };
            format!(
                "postgres {place}, schema `{}`",
                s.schema.clone().unwrap_or_else(|| "landlord".into())
            )
        }
        _ => root.join(&s.path).display().to_string(),
    }
}
