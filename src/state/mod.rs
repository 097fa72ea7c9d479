//! Recorded state: resources, write-ahead intents, locks, run history and encrypted
//! secrets behind the `StateStore` trait; `sled` is the embedded default backend,
//! PostgreSQL and S3 the shared ones, where runs lock tenants rather than the state.
//!
//! Records hold every attribute in memory; the backend seals the sensitive ones with the
//! tenant's data key before anything touches disk. Every write is durable on return.
//! Must not import workspace, render, plan, apply or providers.

pub mod audit;
pub mod crypto;
pub mod holder;
mod pg_store;
mod s3_store;
mod sdk;
mod seal;
mod sled_store;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub use pg_store::{PgLocation, PgStore, SCHEMA_VERSION};
pub use s3_store::{S3Location, S3Store};
pub use sled_store::{hostname, SledStore};

/// Version of the on-disk and export format.
pub const FORMAT_VERSION: u32 = 1;

/// The operation a write-ahead intent announced (part of the on-disk format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntentOp {
    /// Create.
    Create,
    /// Update in place.
    Update,
    /// Delete.
    Delete,
}

/// Lifecycle settings of a resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// Refuse to delete or replace the resource.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prevent_destroy: bool,
    /// Attributes whose differences are ignored when planning.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_changes: Vec<String>,
}

/// One managed resource as recorded after a successful apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceRecord {
    /// Address.
    pub address: ResourceAddr,
    /// Provider that manages it.
    pub provider: String,
    /// Provider id.
    pub id: String,
    /// Every attribute (sensitive ones are sealed on disk).
    pub attributes: Attrs,
    /// Names of the sensitive attributes.
    #[serde(default)]
    pub sensitive: Vec<String>,
    /// Addresses it depended on when applied (destroy order).
    #[serde(default)]
    pub dependencies: Vec<ResourceAddr>,
    /// Lifecycle settings when applied.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// RFC 3339 time of creation.
    pub created_at: String,
    /// RFC 3339 time of the last change.
    pub updated_at: String,
    /// State serial of the last change.
    pub serial: u64,
}

/// A write-ahead record: announced before a provider call, removed with its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// Unique id; also the provider's idempotency token.
    pub token: String,
    /// Address.
    pub address: ResourceAddr,
    /// What is under way.
    pub op: IntentOp,
    /// Configuration being applied (sensitive ones sealed on disk).
    pub config: Attrs,
    /// Names of sensitive configuration attributes.
    #[serde(default)]
    pub sensitive: Vec<String>,
    /// Dependencies of the resource.
    #[serde(default)]
    pub dependencies: Vec<ResourceAddr>,
    /// Lifecycle settings.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// RFC 3339 time (with fractions of a second) the intent was written.
    pub started_at: String,
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// What the lock covers: `workspace` or a tenant id.
    pub scope: String,
    /// User name.
    pub owner: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Command line summary (`landlord apply`).
    pub command: String,
    /// RFC 3339 time taken.
    pub since: String,
    /// RFC 3339 time after which it is stale.
    pub expiry: String,
    /// When the holding process started (clock ticks since boot): with the pid, tells
    /// the live holder from a leftover record of a process whose pid was reused.
    #[serde(default)]
    pub process_start: Option<u64>,
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{} (pid {}, `{}`, since {})",
            self.owner, self.host, self.pid, self.command, self.since
        )
    }
}

/// The records a run limited to `tenants` needs: theirs, the shared scope's and those of
/// the scopes of `also` (what they depend on); every record when `tenants` is empty.
pub fn records_for<'a>(
    store: &dyn StateStore,
    tenants: &[String],
    also: impl IntoIterator<Item = &'a ResourceAddr>,
) -> Result<Vec<ResourceRecord>, StateError> {
    if tenants.is_empty() {
        return store.resources();
    }
    let mut scopes: std::collections::BTreeSet<String> = tenants.iter().cloned().collect();
    scopes.insert(crate::addr::SHARED.to_string());
    scopes.extend(also.into_iter().map(|a| a.scope.to_string()));
    store.resources_in(&scopes.into_iter().collect::<Vec<_>>())
}

/// One row of run history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Sortable run id.
    pub id: String,
    /// User name.
    pub user: String,
    /// Host name.
    pub host: String,
    /// Command line summary.
    pub command: String,
    /// RFC 3339 start.
    pub started: String,
    /// RFC 3339 end.
    pub finished: String,
    /// Outcome summary (`3 created, 1 updated, 0 deleted, 0 failed`).
    pub summary: String,
    /// Serial before the run.
    pub serial_before: u64,
    /// Serial after the run.
    pub serial_after: u64,
    /// The tenants the run was limited to, else those it changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
}

/// What to record when an intent completes.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The resource exists with these attributes.
    Put(Box<ResourceRecord>),
    /// The resource is gone.
    Remove(ResourceAddr),
    /// Nothing changed.
    Nothing,
}

/// A state operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The database could not be opened or written.
    #[error("state at `{path}`: {message}")]
    Storage {
        /// State directory.
        path: String,
        /// What failed.
        message: String,
    },
    /// A record could not be decoded.
    #[error("state at `{path}` is corrupt: {message}; restore it with `landlord state import` from an export")]
    Corrupt {
        /// State directory.
        path: String,
        /// What could not be read.
        message: String,
    },
    /// Another run holds the lock.
    #[error("state is locked by {holder}; waited {waited:?}{advice}")]
    Locked {
        /// The holder.
        holder: String,
        /// How long this run waited.
        waited: Duration,
        /// What to do about it, when anything (`state unlock` only for a lock that can
        /// outlive its holder).
        advice: String,
    },
    /// The master key is missing, malformed or wrong.
    #[error("master key: {0}")]
    Key(String),
    /// An import file is not usable.
    #[error("cannot import state: {0}")]
    Import(String),
}

/// The format name of a whole state (`state export`).
pub const EXPORT_FORMAT: &str = "landlord-state";

/// A random lineage id for a new state.
fn new_lineage() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A text field of an export entry (a record's `address`, an intent's `token`).
fn entry_field(v: &serde_json::Value, field: &str) -> Result<String, StateError> {
    v.get(field)
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| StateError::Import(format!("an entry has no `{field}`")))
}

/// Everything in a state, with secrets still sealed: the `state export` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// Always `landlord-state`.
    pub format: String,
    /// Format version.
    pub version: u32,
    /// Random id of this state's lineage.
    pub lineage: String,
    /// Serial.
    pub serial: u64,
    /// Stored resource records (sealed).
    pub resources: Vec<serde_json::Value>,
    /// Stored intents (sealed).
    pub intents: Vec<serde_json::Value>,
    /// Wrapped data keys by scope.
    pub keys: std::collections::BTreeMap<String, String>,
    /// Run history.
    pub history: Vec<RunRecord>,
    /// Audit chains, by tenant and position.
    #[serde(default)]
    pub audit: Vec<audit::AuditEvent>,
    /// Fleet bookkeeping: input digests, rollout progress, certificate issuance history.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub notes: std::collections::BTreeMap<String, serde_json::Value>,
}

impl Export {
    /// The export of `store`, around the sealed records, intents and wrapped keys each
    /// backend reads its own way.
    fn of(
        store: &dyn StateStore,
        lineage: String,
        resources: Vec<serde_json::Value>,
        intents: Vec<serde_json::Value>,
        keys: std::collections::BTreeMap<String, String>,
    ) -> Result<Export, StateError> {
        Ok(Export {
            format: EXPORT_FORMAT.into(),
            version: FORMAT_VERSION,
            lineage,
            serial: store.serial()?,
            resources,
            intents,
            keys,
            history: store.history()?,
            audit: store.audit()?,
            notes: store.notes("")?.into_iter().collect(),
        })
    }

    /// Refuses an export of another format or version.
    fn check_format(&self) -> Result<(), StateError> {
        if self.format != EXPORT_FORMAT || self.version != FORMAT_VERSION {
            return Err(StateError::Import(format!(
                "expected format `{EXPORT_FORMAT}` version {FORMAT_VERSION}, got `{}` version {}",
                self.format, self.version
            )));
        }
        Ok(())
    }
}

/// Storage for state. Implementations make each write durable before returning.
pub trait StateStore: Send + Sync {
    /// The current serial (bumped by every committed change).
    fn serial(&self) -> Result<u64, StateError>;
    /// The state's lineage: a random id given when it was created, kept by export/import.
    fn lineage(&self) -> Result<String, StateError>;
    /// Whether a secret was ever sealed in this state (a data key exists).
    fn holds_sealed(&self) -> Result<bool, StateError>;
    /// Checks that the master key opens this state's sealed secrets.
    fn check_key(&self) -> Result<(), StateError>;
    /// Every resource record, sorted by address.
    fn resources(&self) -> Result<Vec<ResourceRecord>, StateError>;
    /// The records of `scopes` (tenant ids, `_shared`) only, sorted by address: a run
    /// limited to some tenants reads and unseals nothing else.
    fn resources_in(&self, scopes: &[String]) -> Result<Vec<ResourceRecord>, StateError> {
        Ok(self
            .resources()?
            .into_iter()
            .filter(|r| scopes.iter().any(|s| s == r.address.scope.as_str()))
            .collect())
    }
    /// The version of each of `scopes`: how many changes were committed to it (the length
    /// of its audit chain; 0 for a scope never changed).
    fn versions(
        &self,
        scopes: &[String],
    ) -> Result<std::collections::BTreeMap<String, u64>, StateError> {
        let mut out: std::collections::BTreeMap<String, u64> =
            scopes.iter().map(|s| (s.clone(), 0)).collect();
        for e in self.audit()? {
            if let Some(v) = out.get_mut(&e.tenant) {
                *v = (*v).max(e.seq);
            }
        }
        Ok(out)
    }
    /// The addresses recorded (those of `scopes` only, when given), sorted; nothing is
    /// unsealed.
    fn addresses(&self, scopes: &[String]) -> Result<Vec<ResourceAddr>, StateError>;
    /// The scopes (tenant ids, `_shared`) that have records (nothing is unsealed).
    fn scopes(&self) -> Result<std::collections::BTreeSet<String>, StateError>;
    /// How many records are recorded, per resource type (nothing is unsealed).
    fn count_by_type(&self) -> Result<std::collections::BTreeMap<String, u64>, StateError>;
    /// How many records this store has read (and unsealed) so far, for `--stats`.
    fn records_read(&self) -> u64 {
        0
    }
    /// Whether an open store is held by this process alone (every scope is ours to
    /// change); `false` where runs lock tenants instead.
    fn exclusive(&self) -> bool {
        true
    }
    /// Requests (or statements) sent to a shared backend so far and bytes of state
    /// written, for `--stats`; `None` for the embedded one.
    fn traffic(&self) -> Option<(u64, u64)> {
        None
    }
    /// One record.
    fn resource(&self, addr: &ResourceAddr) -> Result<Option<ResourceRecord>, StateError>;
    /// Durably records intents before their provider call (one durable write).
    fn begin_many(&self, intents: &[Intent]) -> Result<(), StateError>;
    /// Removes intents and records their outcomes in one transaction; returns the new serial.
    fn commit_many(&self, outcomes: Vec<(String, Outcome)>) -> Result<u64, StateError>;
    /// Durably records one intent.
    fn begin(&self, intent: &Intent) -> Result<(), StateError> {
        self.begin_many(std::slice::from_ref(intent))
    }
    /// Records the outcome of one intent.
    fn commit(&self, token: &str, outcome: Outcome) -> Result<u64, StateError> {
        self.commit_many(vec![(token.to_string(), outcome)])
    }
    /// Intents left by runs that did not finish.
    fn intents(&self) -> Result<Vec<Intent>, StateError>;
    /// Writes a record directly (`state mv`, imports).
    fn put(&self, record: ResourceRecord) -> Result<u64, StateError>;
    /// Forgets a record without touching the real object (`state rm`).
    fn forget(&self, addr: &ResourceAddr) -> Result<u64, StateError>;
    /// Records `record` under its (new) address and forgets `from`, in one durable write.
    fn rename(&self, from: &ResourceAddr, record: ResourceRecord) -> Result<u64, StateError>;
    /// Takes the lock of a scope, or fails naming the holder.
    fn lock(&self, info: &LockInfo) -> Result<(), StateError>;
    /// Releases a lock held by this process.
    fn unlock(&self, scope: &str) -> Result<(), StateError>;
    /// Takes the locks of several scopes, in scope order, or fails naming a holder.
    fn lock_many(&self, infos: &[LockInfo]) -> Result<(), StateError> {
        let mut sorted: Vec<&LockInfo> = infos.iter().collect();
        sorted.sort_by(|a, b| a.scope.cmp(&b.scope));
        sorted.into_iter().try_for_each(|i| self.lock(i))
    }
    /// Releases several locks held by this process.
    /// Every lock is tried; the first failure is returned.
    fn unlock_many(&self, scopes: &[String]) -> Result<(), StateError> {
        let mut first = Ok(());
        for s in scopes {
            if let (Err(e), Ok(())) = (self.unlock(s), &first) {
                first = Err(e);
            }
        }
        first
    }
    /// Removes locks whatever holds them (`state unlock`); returns what was removed.
    fn force_unlock(&self, scope: Option<&str>) -> Result<Vec<LockInfo>, StateError>;
    /// Current locks.
    fn locks(&self) -> Result<Vec<LockInfo>, StateError>;
    /// Fleet bookkeeping under keys starting with `prefix` (input digests, rollout
    /// progress, issuance history), sorted by key. Never secret.
    fn notes(&self, prefix: &str) -> Result<Vec<(String, serde_json::Value)>, StateError>;
    /// Sets (`Some`) or removes (`None`) notes, in one durable write.
    fn set_notes(&self, notes: Vec<(String, Option<serde_json::Value>)>) -> Result<(), StateError>;
    /// Appends a history row.
    fn record_run(&self, run: &RunRecord) -> Result<(), StateError>;
    /// Run history, oldest first.
    fn history(&self) -> Result<Vec<RunRecord>, StateError>;
    /// Every audit event, by tenant and position.
    fn audit(&self) -> Result<Vec<audit::AuditEvent>, StateError>;
    /// The keyed digest of a record, as audit events carry it.
    fn digest(&self, record: &ResourceRecord) -> String;
    /// Everything, secrets sealed.
    fn export(&self) -> Result<Export, StateError>;
    /// Replaces everything with an export.
    fn import(&self, export: &Export) -> Result<(), StateError>;
}

/// Now, as RFC 3339.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Now, as RFC 3339 with nanoseconds (for intents, whose age matters to recovery).
pub fn now_precise() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
