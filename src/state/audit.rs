//! The audit chain: per tenant, an append-only list of events written in the same
//! transaction as the state change they describe. Each event carries the hash of the one
//! before it and a keyed digest of the record it wrote, so `landlord audit verify` finds
//! removed, edited or reordered events and resource records changed outside landlord.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ResourceRecord;

/// What an event did to its resource record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// The resource was created.
    Create,
    /// The resource was updated or replaced.
    Update,
    /// The resource was deleted.
    Delete,
    /// The record was written by `state mv`.
    StatePut,
    /// The record was removed by `state rm` / `state mv` (the object was left alone).
    StateForget,
}

impl AuditAction {
    /// The action of one record write: `written` (a record put, else one removed), whether
    /// a record `existed` before, and `manual` for the `state` commands; `None` when a
    /// removal found nothing.
    pub fn of_write(written: bool, existed: bool, manual: bool) -> Option<AuditAction> {
        Some(match (written, manual) {
            (false, _) if !existed => return None,
            (true, true) => AuditAction::StatePut,
            (false, true) => AuditAction::StateForget,
            (true, false) if existed => AuditAction::Update,
            (true, false) => AuditAction::Create,
            (false, false) => AuditAction::Delete,
        })
    }

    /// Whether a record exists after this action.
    pub fn leaves_record(self) -> bool {
        matches!(
            self,
            AuditAction::Create | AuditAction::Update | AuditAction::StatePut
        )
    }
}

/// The sort key of an audit event, as every backend orders them: tenant, then position.
pub fn order_key(tenant: &str, seq: u64) -> String {
    format!("{tenant}/{seq:020}")
}

/// One entry of a tenant's audit chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Tenant (scope) of the chain.
    pub tenant: String,
    /// Position in the chain, from 1.
    pub seq: u64,
    /// RFC 3339 time of the change.
    pub time: String,
    /// State serial the change produced.
    pub serial: u64,
    /// `user@host` of the process that wrote it.
    pub actor: String,
    /// What happened.
    pub action: AuditAction,
    /// Resource address.
    pub address: String,
    /// Keyed digest of the record written (none when the record was removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Hash of the previous event (empty for the first).
    pub prev: String,
    /// Hash of this event.
    pub hash: String,
}

/// A JSON value with object keys sorted, so equal content hashes equally.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Canonical bytes of any serializable value.
pub fn canonical_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(&canonical(&serde_json::to_value(v).unwrap_or(Value::Null)))
        .unwrap_or_default()
}

impl AuditEvent {
    /// The next event of a chain whose last hash is `prev` (empty for a new chain).
    #[allow(clippy::too_many_arguments)]
    pub fn next(
        tenant: &str,
        seq: u64,
        time: &str,
        serial: u64,
        actor: &str,
        action: AuditAction,
        address: &str,
        digest: Option<String>,
        prev: &str,
    ) -> AuditEvent {
        let mut e = AuditEvent {
            tenant: tenant.to_string(),
            seq,
            time: time.to_string(),
            serial,
            actor: actor.to_string(),
            action,
            address: address.to_string(),
            digest,
            prev: prev.to_string(),
            hash: String::new(),
        };
        e.hash = e.computed_hash();
        e
    }

    /// The hash of every field but `hash`.
    pub fn computed_hash(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.remove("hash");
        }
        hex::encode(Sha256::digest(canonical_bytes(&v)))
    }
}

/// What `verify` found wrong, one sentence each.
pub fn verify(
    events: &[AuditEvent],
    records: &[ResourceRecord],
    digest: impl Fn(&ResourceRecord) -> String,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut chains: BTreeMap<&str, Vec<&AuditEvent>> = BTreeMap::new();
    for e in events {
        chains.entry(e.tenant.as_str()).or_default().push(e);
    }
    // The last event per address, from intact chains.
    let mut last: BTreeMap<&str, &AuditEvent> = BTreeMap::new();
    let mut broken: Vec<&str> = Vec::new();
    for (tenant, mut chain) in chains {
        let before = problems.len();
        chain.sort_by_key(|e| e.seq);
        let mut prev = "";
        for (i, e) in chain.iter().enumerate() {
            let want = i as u64 + 1;
            if e.seq != want {
                problems.push(format!(
                    "tenant `{tenant}`: event {want} is missing (found {} next)",
                    e.seq
                ));
                break;
            }
            if e.hash != e.computed_hash() {
                problems.push(format!(
                    "tenant `{tenant}`: event {} ({} {}) was altered",
                    e.seq,
                    serde_json::to_value(e.action)
                        .unwrap_or_default()
                        .as_str()
                        .unwrap_or(""),
                    e.address
                ));
                break;
            }
            if e.prev != prev {
                problems.push(format!(
                    "tenant `{tenant}`: event {} does not follow event {}",
                    e.seq,
                    e.seq - 1
                ));
                break;
            }
            prev = &e.hash;
            last.insert(e.address.as_str(), e);
        }
        if problems.len() > before {
            broken.push(tenant);
        }
    }
    for r in records {
        let addr = r.address.to_string();
        if broken.contains(&r.address.scope.as_str()) {
            // Its chain is broken: what it last wrote is not known.
            continue;
        }
        match last.get(addr.as_str()) {
            None => problems.push(format!("`{addr}`: in state but never recorded in the audit chain")),
            Some(e) if !e.action.leaves_record() => problems.push(format!(
                "`{addr}`: in state although event {} of `{}` removed it",
                e.seq, e.tenant
            )),
            Some(e) if e.digest.as_deref() != Some(digest(r).as_str()) => problems.push(format!(
                "`{addr}`: the record differs from what event {} of `{}` wrote (changed outside landlord)",
                e.seq, e.tenant
            )),
            Some(_) => {}
        }
    }
    for (addr, e) in &last {
        if e.action.leaves_record() && !records.iter().any(|r| r.address.to_string() == *addr) {
            problems.push(format!(
                "`{addr}`: written by event {} of `{}` but missing from state",
                e.seq, e.tenant
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditEvent> {
        let mut out: Vec<AuditEvent> = Vec::new();
        for i in 1..=n {
            let prev = out.last().map(|e| e.hash.clone()).unwrap_or_default();
            out.push(AuditEvent::next(
                "acme",
                i,
                "2026-01-01T00:00:00Z",
                i,
                "ops@host",
                AuditAction::Update,
                "acme/local_file.site",
                Some(format!("d{i}")),
                &prev,
            ));
        }
        out
    }

    fn record() -> ResourceRecord {
        serde_json::from_value(serde_json::json!({
            "address": "acme/local_file.site", "provider": "builtin", "id": "x",
            "attributes": {}, "created_at": "t", "updated_at": "t", "serial": 3
        }))
        .unwrap()
    }

    #[test]
    fn an_intact_chain_matching_state_verifies() {
        assert!(verify(&chain(3), &[record()], |_| "d3".into()).is_empty());
    }

    #[test]
    fn altered_missing_and_reordered_events_are_found() {
        let mut c = chain(3);
        c[1].actor = "mallory@elsewhere".into();
        let p = verify(&c, &[record()], |_| "d3".into());
        assert!(
            p[0].contains("event 2 (update acme/local_file.site) was altered"),
            "{p:?}"
        );

        let mut c = chain(3);
        c.remove(1);
        let p = verify(&c, &[record()], |_| "d3".into());
        assert!(p[0].contains("event 2 is missing"), "{p:?}");

        let mut c = chain(3);
        c[2].prev = c[0].hash.clone();
        c[2].hash = c[2].computed_hash();
        let p = verify(&c, &[record()], |_| "d3".into());
        assert!(p[0].contains("event 3 does not follow event 2"), "{p:?}");
    }

    #[test]
    fn records_changed_or_removed_outside_landlord_are_found() {
        let p = verify(&chain(3), &[record()], |_| "other".into());
        assert!(p[0].contains("changed outside landlord"), "{p:?}");
        let p = verify(&chain(3), &[], |_| "d3".into());
        assert!(p[0].contains("missing from state"), "{p:?}");
        let p = verify(&[], &[record()], |_| "d3".into());
        assert!(p[0].contains("never recorded"), "{p:?}");
    }
}
