//! The sled backend: one embedded database directory, trees `resources`, `intents`,
//! `locks`, `history`, `audit`, `keys` and `meta`. The directory is held exclusively by one
//! process at a time through `state/lock` (see [`holder`](super::holder)), which also
//! names the holder to a waiting process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::audit::{self, AuditAction, AuditEvent};
use super::crypto::{self, Key};
use super::holder;
use super::seal::{KeyRing, Sealable, Sealer};
use super::{
    Export, Intent, LockInfo, Outcome, ResourceRecord, RunRecord, StateError, StateStore,
    FORMAT_VERSION,
};
use crate::addr::ResourceAddr;

/// The sled-backed state store.
pub struct SledStore {
    path: PathBuf,
    /// The open database; taken on drop so it can be closed before the lock is released.
    trees: Option<Trees>,
    sealer: Sealer,
    host: String,
    /// `user@host`, written into audit events.
    actor: String,
    /// Whether this run wrote anything (then the database is settled on close).
    dirty: std::sync::atomic::AtomicBool,
    /// The directory lock, released when the store is dropped (after the database).
    _held: holder::Held,
}

/// The database and its trees.
pub struct Trees {
    db: sled::Db,
    resources: sled::Tree,
    intents: sled::Tree,
    locks: sled::Tree,
    history: sled::Tree,
    audit: sled::Tree,
    keys: sled::Tree,
    meta: sled::Tree,
    notes: sled::Tree,
}

impl std::ops::Deref for SledStore {
    type Target = Trees;
    fn deref(&self) -> &Trees {
        self.trees
            .as_ref()
            .expect("the database is open until the store is dropped")
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        let Some(trees) = self.trees.take() else {
            return;
        };
        let _ = trees.db.flush();
        drop(trees);
        // sled writes a snapshot of its log when it is next opened; a writer opens it once
        // more itself, so a later read-only command finds nothing to write.
        if self.dirty.load(std::sync::atomic::Ordering::Relaxed) {
            drop(sled::Config::new().path(&self.path).open());
        }
    }
}

impl KeyRing for SledStore {
    fn wrapped(&self, scope: &str) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self
            .keys
            .get(scope)
            .map_err(|e| self.err(e))?
            .map(|w| w.to_vec()))
    }
    fn add_wrapped(&self, scope: &str, wrapped: Vec<u8>) -> Result<Vec<u8>, StateError> {
        self.keys
            .insert(scope, wrapped.as_slice())
            .map_err(|e| self.err(e))?;
        Ok(wrapped)
    }
}

/// The format name of one tenant's part of a state.
pub(super) const PART_FORMAT: &str = "landlord-tenant-state";

/// A record as stored (sealed bytes) and its audit digest.
type StoredRecord = (Vec<u8>, String);

/// Where the audit chain of a tenant ends: `audit-head/<tenant>` in `meta`, "seq hash".
fn head_key(tenant: &str) -> String {
    format!("audit-head/{tenant}")
}

/// sled's page cache. Its default, 1 GiB, fills up when a plan reads a large state
/// once: a no-change plan of 100,000 quick-start tenants (700,002 records, 3.5 GB of
/// sled files) peaked at 1.76 GiB and took 27.5 s with it, 1.03 GiB and 22.9 s with
/// 64 MiB; at 10,000 tenants neither figure moved, nor did the applies of `plan_scale`.
const CACHE_BYTES: u64 = 64 << 20;

fn parse_head(v: &[u8]) -> (u64, String) {
    let text = String::from_utf8_lossy(v);
    let (seq, hash) = text.split_once(' ').unwrap_or(("0", ""));
    (seq.parse().unwrap_or(0), hash.to_string())
}

/// The name of this machine.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into())
}

impl SledStore {
    /// Opens (creating if needed) the state at `dir`, waiting up to `timeout` while another
    /// process holds it. `holder` is recorded so a waiting process can name us.
    pub fn open(
        dir: &Path,
        master: Key,
        holder: &LockInfo,
        timeout: Duration,
    ) -> Result<SledStore, StateError> {
        let start = Instant::now();
        let storage = |m: String| StateError::Storage {
            path: dir.display().to_string(),
            message: m,
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| storage(format!("cannot create directory: {e}")))?;
        // Our lock first (it names us to waiters); sled's own lock follows at once.
        let held = holder::take(dir, holder, timeout)?;
        let db = loop {
            match sled::Config::new()
                .path(dir)
                .cache_capacity(CACHE_BYTES)
                .open()
            {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if (e.to_string().contains("lock")
                        || e.kind() == std::io::ErrorKind::WouldBlock)
                        && start.elapsed() < timeout.max(Duration::from_secs(2)) =>
                {
                    // A process of an older landlord, which takes sled's lock only.
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(sled::Error::Corruption { .. }) | Err(sled::Error::ReportableBug(_)) => {
                    return Err(StateError::Corrupt {
                        path: dir.display().to_string(),
                        message: "the database cannot be read".into(),
                    })
                }
                Err(e) => return Err(storage(e.to_string())),
            }
        };
        let tree = |n: &str| db.open_tree(n).map_err(|e| storage(e.to_string()));
        let trees = Trees {
            resources: tree("resources")?,
            intents: tree("intents")?,
            locks: tree("locks")?,
            history: tree("history")?,
            audit: tree("audit")?,
            keys: tree("keys")?,
            meta: tree("meta")?,
            notes: tree("notes")?,
            db,
        };
        let store = SledStore {
            path: dir.to_path_buf(),
            trees: Some(trees),
            dirty: Default::default(),
            sealer: Sealer::new(dir.display().to_string(), master),
            host: hostname(),
            actor: format!("{}@{}", holder.owner, holder.host),
            _held: held,
        };
        store.init_meta()?;
        Ok(store)
    }

    fn err(&self, e: impl std::fmt::Display) -> StateError {
        StateError::Storage {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    fn corrupt(&self, what: impl std::fmt::Display) -> StateError {
        StateError::Corrupt {
            path: self.path.display().to_string(),
            message: what.to_string(),
        }
    }

    fn init_meta(&self) -> Result<(), StateError> {
        match self.meta.get("version").map_err(|e| self.err(e))? {
            Some(v) => {
                let v: u32 = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| self.corrupt("bad format version"))?;
                if v != FORMAT_VERSION {
                    return Err(self.corrupt(format!(
                        "format version {v} is not supported (expected {FORMAT_VERSION})"
                    )));
                }
            }
            None => {
                self.meta
                    .insert("version", FORMAT_VERSION.to_string().as_bytes())
                    .map_err(|e| self.err(e))?;
                self.meta
                    .insert("lineage", super::new_lineage().as_bytes())
                    .map_err(|e| self.err(e))?;
                self.meta
                    .insert("serial", &0u64.to_be_bytes())
                    .map_err(|e| self.err(e))?;
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Every value of a tree, decoded from JSON; `what` names a row in errors.
    fn rows<T: for<'de> Deserialize<'de>>(
        &self,
        tree: &sled::Tree,
        what: &str,
    ) -> Result<Vec<T>, StateError> {
        self.rows_in(tree, "", what)
    }

    /// The rows of `tree` whose keys start with `prefix`, decoded.
    fn rows_in<T: for<'de> Deserialize<'de>>(
        &self,
        tree: &sled::Tree,
        prefix: &str,
        what: &str,
    ) -> Result<Vec<T>, StateError> {
        tree.scan_prefix(prefix)
            .map(|kv| {
                let (_, v) = kv.map_err(|e| self.err(e))?;
                serde_json::from_slice(&v).map_err(|e| self.corrupt(format!("{what}: {e}")))
            })
            .collect()
    }

    fn flush(&self) -> Result<(), StateError> {
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        self.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }

    fn meta_str(&self, k: &str) -> Result<String, StateError> {
        Ok(self
            .meta
            .get(k)
            .map_err(|e| self.err(e))?
            .map(|v| String::from_utf8_lossy(&v).to_string())
            .unwrap_or_default())
    }

    fn seal<T: Sealable>(&self, inner: T) -> Result<Vec<u8>, StateError> {
        self.sealer.seal(self, inner)
    }

    fn unseal<T: Sealable>(&self, bytes: &[u8]) -> Result<T, StateError> {
        self.sealer.unseal(self, bytes)
    }

    fn next_serial(&self) -> Result<u64, StateError> {
        Ok(self.serial()? + 1)
    }

    /// Writes resource records (`None` removes; each written one with its audit digest),
    /// removes finished intents, appends one audit event per changed record and, when any
    /// record changed, bumps the serial: one transaction, then one flush. `manual` marks
    /// `state` edits, which touch no cloud object.
    fn write(
        &self,
        serial: u64,
        records: &[(String, Option<StoredRecord>)],
        done: &[String],
        manual: bool,
    ) -> Result<u64, StateError> {
        let bump = !records.is_empty();
        let time = super::now_rfc3339();
        let res: Result<(), TransactionError<()>> =
            (&self.resources, &self.intents, &self.meta, &self.audit).transaction(
                |(r, i, m, a)| {
                    for t in done {
                        i.remove(t.as_bytes())?;
                    }
                    for (key, value) in records {
                        let existed = match value {
                            Some((bytes, _)) => r.insert(key.as_bytes(), bytes.as_slice())?,
                            None => r.remove(key.as_bytes())?,
                        }
                        .is_some();
                        let Some(action) = AuditAction::of_write(value.is_some(), existed, manual)
                        else {
                            continue;
                        };
                        let tenant = key.split('/').next().unwrap_or_default();
                        let (seq, prev) = m
                            .get(head_key(tenant).as_bytes())?
                            .map(|v| parse_head(&v))
                            .unwrap_or_default();
                        let event = AuditEvent::next(
                            tenant,
                            seq + 1,
                            &time,
                            serial,
                            &self.actor,
                            action,
                            key,
                            value.as_ref().map(|(_, d)| d.clone()),
                            &prev,
                        );
                        a.insert(
                            audit::order_key(tenant, seq + 1).as_bytes(),
                            serde_json::to_vec(&event).unwrap_or_default(),
                        )?;
                        m.insert(
                            head_key(tenant).as_bytes(),
                            format!("{} {}", seq + 1, event.hash).as_bytes(),
                        )?;
                    }
                    if bump {
                        m.insert("serial", &serial.to_be_bytes())?;
                    }
                    Ok::<(), ConflictableTransactionError<()>>(())
                },
            );
        res.map_err(|e| self.err(format!("{e:?}")))?;
        self.flush()?;
        if bump {
            Ok(serial)
        } else {
            self.serial()
        }
    }

    /// The stored (sealed) form of these intents, as in an export.
    pub(super) fn sealed_intents(&self, tokens: &[&str]) -> Result<Vec<Value>, StateError> {
        tokens
            .iter()
            .filter_map(|t| self.intents.get(t.as_bytes()).transpose())
            .map(|v| {
                let v = v.map_err(|e| self.err(e))?;
                serde_json::from_slice(&v).map_err(|e| self.corrupt(format!("intent: {e}")))
            })
            .collect()
    }

    /// The wrapped data keys of these scopes (tenants), as in an export.
    pub(super) fn wrapped_keys(
        &self,
        scopes: &[&str],
    ) -> Result<BTreeMap<String, String>, StateError> {
        let mut out = BTreeMap::new();
        for scope in scopes {
            if let Some(w) = self.keys.get(scope.as_bytes()).map_err(|e| self.err(e))? {
                out.insert(scope.to_string(), crypto::to_text(&w));
            }
        }
        Ok(out)
    }

    /// The first wrapped data key (by scope), as text: a sample to check a master key
    /// against.
    pub(super) fn first_wrapped_key(&self) -> Result<Option<(String, String)>, StateError> {
        match self.keys.iter().next() {
            Some(entry) => {
                let (scope, w) = entry.map_err(|e| self.err(e))?;
                Ok(Some((
                    String::from_utf8_lossy(&scope).to_string(),
                    crypto::to_text(&w),
                )))
            }
            None => Ok(None),
        }
    }

    /// Records per type under `prefix` (a tenant's `<id>/`, or `""` for all), counted
    /// from their keys.
    pub(super) fn count_types(&self, prefix: &str) -> Result<BTreeMap<String, u64>, StateError> {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for k in self.resources.scan_prefix(prefix).keys() {
            let k = k.map_err(|e| self.err(e))?;
            let addr = String::from_utf8_lossy(&k);
            let rtype = addr
                .split_once('/')
                .and_then(|(_, r)| r.split_once('.'))
                .map(|(t, _)| t)
                .ok_or_else(|| self.corrupt(format!("record key `{addr}` is not an address")))?;
            *out.entry(rtype.to_string()).or_default() += 1;
        }
        Ok(out)
    }

    /// Adds wrapped data keys that are not here yet (each must unwrap with this master key).
    pub(super) fn restore_keys(&self, keys: &BTreeMap<String, String>) -> Result<(), StateError> {
        for (scope, w) in keys {
            if self
                .keys
                .get(scope.as_bytes())
                .map_err(|e| self.err(e))?
                .is_some()
            {
                continue;
            }
            let bytes = crypto::from_text(w)
                .filter(|b| self.sealer.master().unwrap_key(b, scope).is_some())
                .ok_or_else(|| {
                    StateError::Key(format!(
                        "the data key of `{scope}` cannot be unwrapped with this master key"
                    ))
                })?;
            self.keys
                .insert(scope.as_bytes(), bytes)
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Adds intents in their stored (sealed) form, keeping those already present.
    pub(super) fn restore_intents(&self, rows: &[Value]) -> Result<(), StateError> {
        for row in rows {
            let token = row
                .get("token")
                .and_then(Value::as_str)
                .ok_or_else(|| self.corrupt("an intent has no token"))?;
            let bytes = serde_json::to_vec(row).map_err(|e| self.err(e))?;
            self.intents
                .insert(token.as_bytes(), bytes)
                .map_err(|e| self.err(e))?;
        }
        self.flush()
    }

    /// Adds the entries of an export (records, intents, audit events with their chain
    /// heads, history, notes) to what is here; data keys are the caller's.
    fn insert_entries(&self, ex: &Export) -> Result<(), StateError> {
        let key_of = super::entry_field;
        for e in &ex.audit {
            self.audit
                .insert(
                    audit::order_key(&e.tenant, e.seq).as_bytes(),
                    serde_json::to_vec(e).map_err(|e| self.err(e))?,
                )
                .map_err(|e| self.err(e))?;
            let head = self
                .meta
                .get(head_key(&e.tenant))
                .map_err(|e| self.err(e))?
                .map(|v| parse_head(&v).0)
                .unwrap_or(0);
            if e.seq >= head {
                self.meta
                    .insert(
                        head_key(&e.tenant),
                        format!("{} {}", e.seq, e.hash).as_bytes(),
                    )
                    .map_err(|e| self.err(e))?;
            }
        }
        let put = |tree: &sled::Tree, key: &str, v: &dyn erased::Json| -> Result<(), StateError> {
            tree.insert(key.as_bytes(), v.bytes().map_err(|e| self.err(e))?)
                .map(|_| ())
                .map_err(|e| self.err(e))
        };
        for r in &ex.resources {
            put(&self.resources, &key_of(r, "address")?, r)?;
        }
        for i in &ex.intents {
            put(&self.intents, &key_of(i, "token")?, i)?;
        }
        for h in &ex.history {
            put(&self.history, &h.id, h)?;
        }
        for (k, v) in &ex.notes {
            put(&self.notes, k, v)?;
        }
        Ok(())
    }

    /// One scope's records, audit events and data key, sealed: what a shared backend
    /// keeps per tenant (intents, history and notes live elsewhere).
    pub(super) fn part(&self, scope: &str) -> Result<Export, StateError> {
        let prefix = format!("{scope}/");
        Ok(Export {
            format: PART_FORMAT.into(),
            version: FORMAT_VERSION,
            lineage: self.meta_str("lineage")?,
            serial: 0,
            resources: self.rows_in(&self.resources, &prefix, scope)?,
            intents: vec![],
            keys: self.wrapped_keys(&[scope])?,
            history: vec![],
            audit: self.rows_in(&self.audit, &prefix, "audit event")?,
            notes: Default::default(),
        })
    }

    /// Adds a tenant's part (see [`part`](Self::part)) to this copy.
    pub(super) fn add_part(&self, part: &Export) -> Result<(), StateError> {
        if part.format != PART_FORMAT || part.version != FORMAT_VERSION {
            return Err(self.corrupt(format!(
                "a tenant object has format `{}` version {}, expected `{PART_FORMAT}` version {FORMAT_VERSION}",
                part.format, part.version
            )));
        }
        self.restore_keys(&part.keys)?;
        self.insert_entries(part)?;
        self.flush()
    }

    /// A record sealed for storage, with its audit digest.
    fn sealed(&self, r: &ResourceRecord) -> Result<StoredRecord, StateError> {
        Ok((self.seal(r.clone())?, self.digest(r)))
    }
}

impl StateStore for SledStore {
    fn lineage(&self) -> Result<String, StateError> {
        self.meta_str("lineage")
    }
    fn holds_sealed(&self) -> Result<bool, StateError> {
        Ok(!self.keys.is_empty())
    }
    fn check_key(&self) -> Result<(), StateError> {
        match self.first_wrapped_key()? {
            Some((scope, _)) => self.sealer.data_key(self, &scope).map(|_| ()),
            None => Ok(()),
        }
    }
    fn serial(&self) -> Result<u64, StateError> {
        let v = self.meta.get("serial").map_err(|e| self.err(e))?;
        Ok(v.and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    fn resources(&self) -> Result<Vec<ResourceRecord>, StateError> {
        self.resources
            .iter()
            .map(|kv| {
                let (_, v) = kv.map_err(|e| self.err(e))?;
                self.unseal(&v)
            })
            .collect()
    }

    fn resources_in(&self, scopes: &[String]) -> Result<Vec<ResourceRecord>, StateError> {
        let mut out: Vec<ResourceRecord> = Vec::new();
        for scope in scopes {
            for kv in self.resources.scan_prefix(format!("{scope}/")) {
                let (_, v) = kv.map_err(|e| self.err(e))?;
                out.push(self.unseal(&v)?);
            }
        }
        out.sort_by(|a, b| a.address.cmp(&b.address));
        out.dedup_by(|a, b| a.address == b.address);
        Ok(out)
    }
    fn records_read(&self) -> u64 {
        self.sealer.reads()
    }
    fn resource(&self, addr: &ResourceAddr) -> Result<Option<ResourceRecord>, StateError> {
        match self
            .resources
            .get(addr.to_string())
            .map_err(|e| self.err(e))?
        {
            Some(v) => Ok(Some(self.unseal(&v)?)),
            None => Ok(None),
        }
    }

    fn begin_many(&self, intents: &[Intent]) -> Result<(), StateError> {
        let mut batch = sled::Batch::default();
        for intent in intents {
            let bytes = self.seal(intent.clone())?;
            batch.insert(intent.token.as_bytes(), bytes);
        }
        self.intents.apply_batch(batch).map_err(|e| self.err(e))?;
        self.flush()
    }

    fn commit_many(&self, outcomes: Vec<(String, Outcome)>) -> Result<u64, StateError> {
        let serial = self.next_serial()?;
        let mut records = Vec::new();
        let mut done = Vec::with_capacity(outcomes.len());
        for (token, outcome) in outcomes {
            match outcome {
                Outcome::Put(mut r) => {
                    r.serial = serial;
                    records.push((r.address.to_string(), Some(self.sealed(&r)?)));
                }
                Outcome::Remove(a) => records.push((a.to_string(), None)),
                Outcome::Nothing => {}
            }
            done.push(token);
        }
        self.write(serial, &records, &done, false)
    }

    fn intents(&self) -> Result<Vec<Intent>, StateError> {
        self.intents
            .iter()
            .map(|kv| {
                let (_, v) = kv.map_err(|e| self.err(e))?;
                self.unseal(&v)
            })
            .collect()
    }

    fn put(&self, mut record: ResourceRecord) -> Result<u64, StateError> {
        let serial = self.next_serial()?;
        record.serial = serial;
        let sealed = self.sealed(&record)?;
        self.write(
            serial,
            &[(record.address.to_string(), Some(sealed))],
            &[],
            true,
        )
    }

    fn forget(&self, addr: &ResourceAddr) -> Result<u64, StateError> {
        let serial = self.next_serial()?;
        self.write(serial, &[(addr.to_string(), None)], &[], true)
    }

    fn rename(&self, from: &ResourceAddr, mut record: ResourceRecord) -> Result<u64, StateError> {
        let serial = self.next_serial()?;
        record.serial = serial;
        let sealed = self.sealed(&record)?;
        let records = [
            (record.address.to_string(), Some(sealed)),
            (from.to_string(), None),
        ];
        self.write(serial, &records, &[], true)
    }

    fn lock(&self, info: &LockInfo) -> Result<(), StateError> {
        if let Some(v) = self.locks.get(&info.scope).map_err(|e| self.err(e))? {
            if let Ok(held) = serde_json::from_slice::<LockInfo>(&v) {
                let expired = held.expiry < super::now_rfc3339();
                let dead = held.host == self.host && !holder::is_live(&held);
                let ours = held.host == self.host && held.pid == std::process::id();
                if !expired && !dead && !ours {
                    return Err(StateError::Locked {
                        holder: held.to_string(),
                        waited: Duration::ZERO,
                        advice: ". If that run is gone, run `landlord state unlock`".into(),
                    });
                }
            }
        }
        self.locks
            .insert(
                &info.scope,
                serde_json::to_vec(info).map_err(|e| self.err(e))?,
            )
            .map_err(|e| self.err(e))?;
        self.flush()
    }

    fn unlock(&self, scope: &str) -> Result<(), StateError> {
        self.locks.remove(scope).map_err(|e| self.err(e))?;
        self.flush()
    }

    fn force_unlock(&self, scope: Option<&str>) -> Result<Vec<LockInfo>, StateError> {
        let removed: Vec<LockInfo> = self
            .locks()?
            .into_iter()
            .filter(|l| scope.is_none_or(|s| s == l.scope))
            .collect();
        for l in &removed {
            self.locks.remove(&l.scope).map_err(|e| self.err(e))?;
        }

        self.flush()?;
        Ok(removed)
    }

    fn locks(&self) -> Result<Vec<LockInfo>, StateError> {
        self.rows(&self.locks, "lock record")
    }

    fn record_run(&self, run: &RunRecord) -> Result<(), StateError> {
        self.history
            .insert(
                run.id.as_bytes(),
                serde_json::to_vec(run).map_err(|e| self.err(e))?,
            )
            .map_err(|e| self.err(e))?;
        self.flush()
    }

    fn history(&self) -> Result<Vec<RunRecord>, StateError> {
        self.rows(&self.history, "history row")
    }

    fn versions(&self, scopes: &[String]) -> Result<BTreeMap<String, u64>, StateError> {
        scopes
            .iter()
            .map(|s| {
                let v = self.meta.get(head_key(s)).map_err(|e| self.err(e))?;
                Ok((s.clone(), v.map(|v| parse_head(&v).0).unwrap_or(0)))
            })
            .collect()
    }

    fn addresses(&self, scopes: &[String]) -> Result<Vec<ResourceAddr>, StateError> {
        let prefixes: Vec<String> = if scopes.is_empty() {
            vec![String::new()]
        } else {
            scopes.iter().map(|s| format!("{s}/")).collect()
        };
        // In key order, as `resources` gives them.
        let mut keys: Vec<String> = Vec::new();
        for prefix in prefixes {
            for k in self.resources.scan_prefix(prefix).keys() {
                let k = k.map_err(|e| self.err(e))?;
                keys.push(String::from_utf8_lossy(&k).into_owned());
            }
        }
        keys.sort();
        keys.dedup();
        keys.iter()
            .map(|k| {
                k.parse()
                    .map_err(|_| self.corrupt(format!("record key `{k}` is not an address")))
            })
            .collect()
    }

    fn scopes(&self) -> Result<std::collections::BTreeSet<String>, StateError> {
        let mut out = std::collections::BTreeSet::new();
        let mut last = String::new();
        for k in self.resources.iter().keys() {
            let k = k.map_err(|e| self.err(e))?;
            let addr = String::from_utf8_lossy(&k);
            let scope = addr.split_once('/').map_or(addr.as_ref(), |(s, _)| s);
            if scope != last {
                last = scope.to_string();
                out.insert(last.clone());
            }
        }
        Ok(out)
    }

    fn count_by_type(&self) -> Result<BTreeMap<String, u64>, StateError> {
        self.count_types("")
    }

    fn notes(&self, prefix: &str) -> Result<Vec<(String, Value)>, StateError> {
        self.notes
            .scan_prefix(prefix)
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                let key = String::from_utf8_lossy(&k).to_string();
                let value = serde_json::from_slice(&v)
                    .map_err(|e| self.corrupt(format!("note `{key}`: {e}")))?;
                Ok((key, value))
            })
            .collect()
    }

    fn set_notes(&self, notes: Vec<(String, Option<Value>)>) -> Result<(), StateError> {
        let mut batch = sled::Batch::default();
        for (k, v) in notes {
            match v {
                Some(v) => batch.insert(
                    k.as_bytes(),
                    serde_json::to_vec(&v).map_err(|e| self.err(e))?,
                ),
                None => batch.remove(k.as_bytes()),
            }
        }
        self.notes.apply_batch(batch).map_err(|e| self.err(e))?;
        self.flush()
    }

    fn audit(&self) -> Result<Vec<AuditEvent>, StateError> {
        self.rows(&self.audit, "audit event")
    }

    fn digest(&self, record: &ResourceRecord) -> String {
        self.sealer.digest(record)
    }

    fn export(&self) -> Result<Export, StateError> {
        let mut keys = BTreeMap::new();
        for kv in self.keys.iter() {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            keys.insert(String::from_utf8_lossy(&k).to_string(), crypto::to_text(&v));
        }
        Export::of(
            self,
            self.meta_str("lineage")?,
            self.rows::<Value>(&self.resources, "resource record")?,
            self.rows::<Value>(&self.intents, "intent")?,
            keys,
        )
    }

    fn import(&self, ex: &Export) -> Result<(), StateError> {
        ex.check_format()?;
        for t in [
            &self.resources,
            &self.intents,
            &self.keys,
            &self.history,
            &self.audit,
            &self.notes,
        ] {
            t.clear().map_err(|e| self.err(e))?;
        }
        for kv in self.meta.scan_prefix("audit-head/") {
            let (k, _) = kv.map_err(|e| self.err(e))?;
            self.meta.remove(k).map_err(|e| self.err(e))?;
        }
        self.sealer.forget_keys();
        for (scope, w) in &ex.keys {
            let bytes = self.sealer.check_wrapped(scope, w)?;
            self.keys
                .insert(scope.as_bytes(), bytes)
                .map_err(|e| self.err(e))?;
        }
        self.insert_entries(ex)?;
        self.meta
            .insert("lineage", ex.lineage.as_bytes())
            .map_err(|e| self.err(e))?;
        self.meta
            .insert("serial", &ex.serial.to_be_bytes())
            .map_err(|e| self.err(e))?;
        self.flush()?;
        // Every record must be readable with this master key.
        self.resources()?;
        Ok(())
    }
}

/// Serializing values of different types through one helper.
mod erased {
    /// A value that serializes to JSON bytes.
    pub trait Json {
        fn bytes(&self) -> serde_json::Result<Vec<u8>>;
    }
    impl<T: serde::Serialize> Json for T {
        fn bytes(&self) -> serde_json::Result<Vec<u8>> {
            serde_json::to_vec(self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::audit;
    use crate::state::IntentOp;
    use crate::value::Attrs;
    use serde_json::json;

    fn holder(scope: &str) -> LockInfo {
        LockInfo {
            scope: scope.into(),
            owner: "t".into(),
            host: hostname(),
            pid: std::process::id(),
            command: "test".into(),
            since: super::super::now_rfc3339(),
            expiry: "9999".into(),
            process_start: None,
        }
    }

    fn record(addr: &str, pw: &str) -> ResourceRecord {
        ResourceRecord {
            address: addr.parse().unwrap(),
            provider: "builtin".into(),
            id: "x".into(),
            attributes: serde_json::from_value(json!({"length": 20, "result": pw})).unwrap(),
            sensitive: vec!["result".into()],
            dependencies: vec![],
            lifecycle: Default::default(),
            created_at: "now".into(),
            updated_at: "now".into(),
            serial: 0,
        }
    }

    #[test]
    fn intents_commit_and_secrets_are_sealed_on_disk() {
        let d = tempfile::tempdir().unwrap();
        let key = Key::generate();
        {
            let s = SledStore::open(d.path(), key.clone(), &holder("workspace"), Duration::ZERO)
                .unwrap();
            let r = record("acme/random_password.db", "Sup3rSecretValue");
            let intent = Intent {
                token: "t1".into(),
                address: r.address.clone(),
                op: IntentOp::Create,
                config: Attrs::new(),
                sensitive: vec![],
                dependencies: vec![],
                lifecycle: Default::default(),
                started_at: "now".into(),
            };
            s.begin(&intent).unwrap();
            assert_eq!(s.intents().unwrap().len(), 1);
            assert_eq!(s.commit("t1", Outcome::Put(Box::new(r))).unwrap(), 1);
            assert!(s.intents().unwrap().is_empty());
            let back = s.resources().unwrap();
            assert_eq!(back[0].attributes["result"], json!("Sup3rSecretValue"));
            let ex = serde_json::to_string(&s.export().unwrap()).unwrap();
            assert!(!ex.contains("Sup3rSecretValue"));
        }
        for entry in walk(d.path()) {
            let bytes = std::fs::read(&entry).unwrap();
            assert!(
                !bytes.windows(16).any(|w| w == b"Sup3rSecretValue"),
                "{entry:?} holds the secret"
            );
        }
        // sled's flusher may hold the directory lock a moment after the first store is dropped.
        let s = SledStore::open(
            d.path(),
            Key::generate(),
            &holder("workspace"),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(
            matches!(s.resources(), Err(StateError::Key(_))),
            "a wrong master key is refused"
        );
    }

    fn walk(p: &Path) -> Vec<PathBuf> {
        let mut out = vec![];
        for e in std::fs::read_dir(p).unwrap().flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
        out
    }

    /// A new store with a random master key.
    fn fresh(dir: &Path) -> SledStore {
        SledStore::open(dir, Key::generate(), &holder("workspace"), Duration::ZERO).unwrap()
    }

    #[test]
    fn every_change_appends_a_chained_audit_event_in_the_same_write() {
        let d = tempfile::tempdir().unwrap();
        let s = fresh(d.path());
        s.commit(
            "t1",
            Outcome::Put(Box::new(record("acme/random_password.db", "pw1"))),
        )
        .unwrap();
        s.commit(
            "t2",
            Outcome::Put(Box::new(record("acme/random_password.db", "pw2"))),
        )
        .unwrap();
        s.commit(
            "t3",
            Outcome::Put(Box::new(record("globex/random_password.db", "pw3"))),
        )
        .unwrap();
        s.commit(
            "t4",
            Outcome::Remove("acme/random_password.db".parse().unwrap()),
        )
        .unwrap();
        s.commit(
            "t5",
            Outcome::Remove("acme/random_password.db".parse().unwrap()),
        )
        .unwrap();
        let events = s.audit().unwrap();
        let acme: Vec<(u64, AuditAction)> = events
            .iter()
            .filter(|e| e.tenant == "acme")
            .map(|e| (e.seq, e.action))
            .collect();
        assert_eq!(
            acme,
            [
                (1, AuditAction::Create),
                (2, AuditAction::Update),
                (3, AuditAction::Delete)
            ],
            "removing what is already gone records nothing"
        );
        assert_eq!(events[1].prev, events[0].hash);
        assert!(events
            .iter()
            .all(|e| !serde_json::to_string(e).unwrap().contains("pw")));
        let problems = audit::verify(&events, &s.resources().unwrap(), |r| s.digest(r));
        assert_eq!(problems, Vec::<String>::new());
    }

    #[test]
    fn export_import_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let key = Key::generate();
        let s =
            SledStore::open(d.path(), key.clone(), &holder("workspace"), Duration::ZERO).unwrap();
        s.put(record("acme/random_password.db", "pw1")).unwrap();
        let ex = s.export().unwrap();
        s.forget(&"acme/random_password.db".parse().unwrap())
            .unwrap();
        s.import(&ex).unwrap();
        assert_eq!(s.export().unwrap(), ex);
        assert_eq!(s.resources().unwrap()[0].attributes["result"], json!("pw1"));
    }

    #[test]
    fn stale_lock_of_dead_process_is_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let s = fresh(d.path());
        let mut other = holder("acme");
        other.pid = u32::MAX / 2;
        s.lock(&other).unwrap();
        s.lock(&holder("acme")).unwrap();
        let mut live = holder("beta");
        live.pid = 1;
        s.lock(&live).unwrap();
        let err = s.lock(&holder("beta")).unwrap_err();
        assert!(err.to_string().contains("pid 1"), "{err}");
        assert_eq!(s.force_unlock(Some("beta")).unwrap().len(), 1);
    }
}
