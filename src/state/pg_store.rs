//! The PostgreSQL backend, for many runners on one state: one row per resource, intent,
//! audit event, run and data key in a schema of its own (`landlord` by default), created
//! and upgraded by landlord (`schema_version`).
//!
//! Runs lock tenants, not the state: a session-level advisory lock per tenant, keyed by a
//! stable hash of (lineage, tenant), taken in tenant-id order; a run over the whole fleet
//! takes the `workspace` key exclusively, and every tenant-limited run holds it shared.
//! The server releases a session's locks when its connection drops, so a killed runner
//! leaves no stale lock; the `locks` rows only name holders to waiting runs.
//!
//! Every write is one transaction: an intent is a committed row before its provider call,
//! and an outcome lands together with its intent's removal, its audit event and its
//! tenant's new version. Reads of a run limited to tenants touch their rows only.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::Digest;
use tokio_postgres::Client;

use super::audit::{AuditAction, AuditEvent};
use super::crypto::{self, Key};
use super::sdk::Rt;
use super::seal::{KeyRing, Sealable, Sealer};
use super::{
    Export, Intent, LockInfo, Outcome, ResourceRecord, RunRecord, StateError, StateStore,
    FORMAT_VERSION,
};
use crate::addr::ResourceAddr;

/// The version of the table layout this landlord writes; a newer one is refused.
pub const SCHEMA_VERSION: i32 = 1;

/// Where a PostgreSQL state lives.
#[derive(Clone)]
pub struct PgLocation {
    /// Connection settings (host, port, user, password, database, sslmode).
    pub config: tokio_postgres::Config,
    /// TLS connector; `None` for plain connections.
    pub tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// Schema holding landlord's tables.
    pub schema: String,
    /// `postgresql://user@host:port/database`, for messages (never the password).
    pub describe: String,
}

/// Statements sent and bytes written, for `--stats` and the benchmarks.
#[derive(Default)]
struct Traffic {
    statements: AtomicU64,
    bytes: AtomicU64,
}

/// The PostgreSQL-backed state store.
pub struct PgStore {
    at: PgLocation,
    /// Quoted schema name, ready for SQL text.
    schema: String,
    rt: Rt,
    client: tokio::sync::Mutex<Option<Client>>,
    sealer: Sealer,
    lineage: Mutex<String>,
    /// `user@host`, written into audit events.
    actor: String,
    /// How long `lock` waits for a holder.
    lock_timeout: Duration,
    /// Scopes this session has locked with the keys it took, and whether it holds the
    /// workspace key shared.
    held: Mutex<(BTreeMap<String, i64>, bool)>,
    traffic: Traffic,
}

/// The text of a driver error with its causes (the driver's own text leaves them out).
fn pg_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    crate::causes::with_causes(e)
}

/// A lock key: the first 62 bits of SHA-256 over (lineage, scope), so it is positive
/// and reads back whole from `pg_locks` (high and low halves).
fn lock_key(lineage: &str, scope: &str) -> i64 {
    let d = sha2::Sha256::digest(format!("landlord lock\0{lineage}\0{scope}"));
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(b) >> 2) as i64
}

/// Whether the lock a `locks` row `l` names is held: an exclusive advisory lock on its key
/// in this database (`pg_locks` shows a bigint key as its high and low halves).
const HELD: &str = "EXISTS (SELECT 1 FROM pg_locks p
    WHERE p.locktype = 'advisory' AND p.granted AND p.mode = 'ExclusiveLock'
    AND p.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND ((p.classid::bigint << 32) | p.objid::bigint) = l.lock_key)";

/// A `(text, bigint)` row as a name and a count.
fn name_and_count(r: &tokio_postgres::Row) -> (String, u64) {
    (r.get(0), r.get::<_, i64>(1) as u64)
}

/// What the layout of `SCHEMA_VERSION` 1 creates (`{s}`: the quoted schema).
const CREATE_V1: &str = r#"
CREATE TABLE {s}.meta (key text COLLATE "C" PRIMARY KEY, value text NOT NULL);
CREATE SEQUENCE {s}.serial MINVALUE 0 START WITH 1;
CREATE TABLE {s}.resources (
    address text COLLATE "C" PRIMARY KEY,
    scope text COLLATE "C" NOT NULL,
    rtype text COLLATE "C" NOT NULL,
    body text NOT NULL);
CREATE INDEX resources_scope ON {s}.resources (scope);
CREATE TABLE {s}.intents (token text COLLATE "C" PRIMARY KEY, scope text NOT NULL, body text NOT NULL);
CREATE TABLE {s}.versions (scope text COLLATE "C" PRIMARY KEY, seq bigint NOT NULL, hash text NOT NULL);
CREATE TABLE {s}.audit (scope text COLLATE "C", seq bigint, body text NOT NULL, PRIMARY KEY (scope, seq));
CREATE TABLE {s}.history (id text COLLATE "C" PRIMARY KEY, body text NOT NULL);
CREATE TABLE {s}.keys (scope text COLLATE "C" PRIMARY KEY, wrapped bytea NOT NULL);
CREATE TABLE {s}.notes (key text COLLATE "C" PRIMARY KEY, body text NOT NULL);
CREATE TABLE {s}.locks (
    scope text COLLATE "C" PRIMARY KEY,
    lock_key bigint NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    body text NOT NULL);
"#;

/// The statements that bring layout version `n` to `n + 1`, at index `n - 1`; their count
/// is `SCHEMA_VERSION - 1` (version 1 is the first layout).
const UPGRADES: &[&str] = &[];

/// A row to write: address, scope, type and, unless it is removed, the sealed body and
/// its audit digest.
type Row = (String, Option<(Vec<u8>, String)>);

impl PgStore {
    /// Connects to the state at `at`, creating or upgrading its tables; `holder` names this
    /// run in audit events and lock rows, and locks wait up to `lock_timeout`.
    pub fn open(
        at: PgLocation,
        master: Key,
        holder: &LockInfo,
        lock_timeout: Duration,
    ) -> Result<PgStore, StateError> {
        let rt = Rt::new().map_err(|e| StateError::Storage {
            path: at.describe.clone(),
            message: e.to_string(),
        })?;
        let client = rt.call(Self::connect(&at))?;
        let store = PgStore {
            schema: format!("\"{}\"", at.schema.replace('"', "\"\"")),
            sealer: Sealer::new(at.describe.clone(), master),
            at,
            rt,
            client: tokio::sync::Mutex::new(Some(client)),
            lineage: Mutex::new(String::new()),
            actor: format!("{}@{}", holder.owner, holder.host),
            lock_timeout,
            held: Mutex::new((BTreeMap::new(), false)),
            traffic: Traffic::default(),
        };
        store.migrate_schema()?;
        let lineage = store.meta("lineage")?.unwrap_or_default();
        *store.lineage.lock().unwrap_or_else(|e| e.into_inner()) = lineage;
        Ok(store)
    }

    async fn connect(at: &PgLocation) -> Result<Client, StateError> {
        let fail = |e: tokio_postgres::Error| {
            let text = pg_text(&e);
            let hint = match e.as_db_error().map(|d| d.code().code()) {
                Some("28P01") | Some("28000") => {
                    "; check the user and password in the connection settings"
                }
                Some("3D000") => "; create the database first (landlord creates only its schema)",
                Some(_) => "",
                None => "; is the server running and reachable from here?",
            };
            StateError::Storage {
                path: at.describe.clone(),
                message: format!("cannot connect to the state database: {text}{hint}"),
            }
        };
        let mut config = at.config.clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("landlord state");
        let client = match &at.tls {
            None => {
                let (client, conn) = config.connect(tokio_postgres::NoTls).await.map_err(fail)?;
                tokio::spawn(conn);
                client
            }
            Some(tls) => {
                let (client, conn) = config.connect(tls.clone()).await.map_err(fail)?;
                tokio::spawn(conn);
                client
            }
        };
        Ok(client)
    }

    fn err(&self, what: &str, e: &tokio_postgres::Error) -> StateError {
        let lost = e.is_closed() || e.as_db_error().is_none() && pg_text(e).contains("closed");
        let message = if lost {
            format!(
                "lost the connection to the state database while trying to {what} ({}); every provider call already made keeps its intent, which the next run reconciles",
                pg_text(e)
            )
        } else {
            format!("cannot {what}: {}", pg_text(e))
        };
        StateError::Storage {
            path: self.at.describe.clone(),
            message,
        }
    }

    fn corrupt(&self, message: String) -> StateError {
        StateError::Corrupt {
            path: self.at.describe.clone(),
            message,
        }
    }

    /// Runs `f` on this store's runtime, counting `statements`.
    fn call<T: Send>(
        &self,
        statements: u64,
        f: impl std::future::Future<Output = Result<T, StateError>> + Send,
    ) -> Result<T, StateError> {
        self.traffic
            .statements
            .fetch_add(statements, Ordering::Relaxed);
        self.rt.call(f)
    }

    /// The session's client, for one call at a time.
    async fn session(&self) -> Result<tokio::sync::MappedMutexGuard<'_, Client>, StateError> {
        tokio::sync::MutexGuard::try_map(self.client.lock().await, Option::as_mut).map_err(|_| {
            StateError::Storage {
                path: self.at.describe.clone(),
                message: "the state connection is closed".into(),
            }
        })
    }

    /// SQL text with `{s}` replaced by the schema.
    fn sql(&self, text: &str) -> String {
        text.replace("{s}", &self.schema)
    }

    /// Creates the tables on first use and upgrades an older layout; refuses a newer one.
    /// Runs in one transaction under a transaction-level advisory lock, so runners that
    /// start together create the tables once.
    fn migrate_schema(&self) -> Result<(), StateError> {
        let init_key = lock_key("schema", &self.at.schema);
        let schema_name = self.at.schema.clone();
        let create = self.sql(CREATE_V1);
        let version_table =
            self.sql("CREATE TABLE IF NOT EXISTS {s}.schema_version (version integer NOT NULL)");
        let read = self.sql("SELECT version FROM {s}.schema_version");
        let set = self.sql("INSERT INTO {s}.schema_version VALUES ($1)");
        let meta = self.sql("INSERT INTO {s}.meta VALUES ('format', $1), ('lineage', $2)");
        let bump = self.sql("UPDATE {s}.schema_version SET version = $1");
        let upgrades: Vec<String> = UPGRADES.iter().map(|u| self.sql(u)).collect();
        let describe = self.at.describe.clone();
        self.call(6, async move {
            let c = &mut *self.session().await?;
            let fail = |what: &str, e: tokio_postgres::Error| StateError::Storage {
                path: describe.clone(),
                message: format!("cannot {what}: {}", pg_text(&e)),
            };
            // A newer layout is refused before anything is written.
            let exists = c
                .query_opt(
                    "SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'schema_version'",
                    &[&schema_name],
                )
                .await
                .map_err(|e| fail("read the state schema", e))?
                .is_some();
            if exists {
                let found: Option<i32> = c
                    .query_opt(&read, &[])
                    .await
                    .map_err(|e| fail("read the state schema version", e))?
                    .map(|r| r.get(0));
                match found {
                    Some(v) if v > SCHEMA_VERSION => {
                        return Err(StateError::Corrupt {
                            path: describe.clone(),
                            message: format!(
                                "the state tables have schema version {v}, written by a newer landlord; this one knows versions up to {SCHEMA_VERSION}: upgrade landlord (nothing was changed)"
                            ),
                        })
                    }
                    Some(v) if v == SCHEMA_VERSION => return Ok(()),
                    _ => {}
                }
            }
            let tx = c
                .transaction()
                .await
                .map_err(|e| fail("begin a transaction", e))?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&init_key])
                .await
                .map_err(|e| fail("lock the state schema", e))?;
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{}\"; {version_table}",
                schema_name.replace('"', "\"\"")
            ))
            .await
            .map_err(|e| fail("create the state schema", e))?;
            let found: Option<i32> = tx
                .query_opt(&read, &[])
                .await
                .map_err(|e| fail("read the state schema version", e))?
                .map(|r| r.get(0));
            match found {
                None => {
                    tx.batch_execute(&create)
                        .await
                        .map_err(|e| fail("create the state tables", e))?;
                    tx.execute(&set, &[&SCHEMA_VERSION])
                        .await
                        .map_err(|e| fail("record the state schema version", e))?;
                    tx.execute(&meta, &[&FORMAT_VERSION.to_string(), &super::new_lineage()])
                        .await
                        .map_err(|e| fail("record the state lineage", e))?;
                }
                // An older layout is brought up step by step, in this transaction.
                Some(v) if v < SCHEMA_VERSION => {
                    for step in &upgrades[(v.max(1) - 1) as usize..] {
                        tx.batch_execute(step)
                            .await
                            .map_err(|e| fail("upgrade the state tables", e))?;
                    }
                    tx.execute(&bump, &[&SCHEMA_VERSION])
                        .await
                        .map_err(|e| fail("record the state schema version", e))?;
                }
                Some(_) => {}
            }
            tx.commit()
                .await
                .map_err(|e| fail("create the state tables", e))
        })
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StateError> {
        Ok(self
            .texts(
                "read the state's metadata",
                "SELECT value FROM {s}.meta WHERE key = $1",
                vec![Box::new(key.to_string())],
            )?
            .pop())
    }

    /// The rows of `query` with `params`, each mapped by `map`.
    fn rows<T: Send>(
        &self,
        what: &'static str,
        query: &str,
        params: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>>,
        map: fn(&tokio_postgres::Row) -> T,
    ) -> Result<Vec<T>, StateError> {
        let q = self.sql(query);
        self.call(1, async move {
            let c = &mut *self.session().await?;
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            let rows = c.query(&q, &refs).await.map_err(|e| self.err(what, &e))?;
            Ok(rows.iter().map(map).collect())
        })
    }

    /// Text rows of `query` (one column), with `params`.
    fn texts(
        &self,
        what: &'static str,
        query: &str,
        params: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>>,
    ) -> Result<Vec<String>, StateError> {
        self.rows(what, query, params, |r| r.get(0))
    }

    /// Pairs of text columns of `query`, with `params`.
    fn pairs(
        &self,
        what: &'static str,
        query: &str,
        params: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>>,
    ) -> Result<Vec<(String, String)>, StateError> {
        self.rows(what, query, params, |r| (r.get(0), r.get(1)))
    }

    /// Unwraps the data keys of `scopes` not unwrapped yet, read in one statement.
    fn preload_keys(&self, scopes: Vec<String>) -> Result<(), StateError> {
        let missing: Vec<String> = scopes
            .into_iter()
            .filter(|s| !self.sealer.has_key(s))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let wrapped: Vec<(String, Vec<u8>)> = self.rows(
            "read the data keys",
            "SELECT scope, wrapped FROM {s}.keys WHERE scope = ANY($1)",
            vec![Box::new(missing)],
            |r| (r.get(0), r.get(1)),
        )?;
        self.sealer.preload(wrapped)
    }

    /// Unseals `(scope, body)` rows, with the data keys of their scopes read at once.
    fn decode<T: Sealable>(&self, rows: Vec<(String, String)>) -> Result<Vec<T>, StateError> {
        let (scopes, bodies): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
        self.preload_keys(scopes)?;
        bodies
            .iter()
            .map(|b| self.sealer.unseal(self, b.as_bytes()))
            .collect()
    }

    fn json_rows<T: for<'de> serde::Deserialize<'de>>(
        &self,
        what: &str,
        bodies: Vec<String>,
    ) -> Result<Vec<T>, StateError> {
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|e| self.corrupt(format!("{what}: {e}"))))
            .collect()
    }

    fn next_serial(&self) -> Result<u64, StateError> {
        let q = self.sql("SELECT nextval('{s}.serial')");
        self.call(1, async move {
            let c = &mut *self.session().await?;
            c.query_one(&q, &[])
                .await
                .map(|r| r.get::<_, i64>(0) as u64)
                .map_err(|e| self.err("take the next serial", &e))
        })
    }

    /// A record sealed for storage, with its audit digest.
    fn sealed(&self, r: &ResourceRecord) -> Result<(Vec<u8>, String), StateError> {
        Ok((self.sealer.seal(self, r.clone())?, self.sealer.digest(r)))
    }

    /// Writes resource rows (`None` removes), removes finished intents and appends one
    /// audit event per changed row with the tenant's new version, in one transaction.
    /// `manual` marks `state` edits.
    fn write(
        &self,
        serial: u64,
        rows: Vec<Row>,
        done: Vec<String>,
        manual: bool,
    ) -> Result<u64, StateError> {
        let written: u64 = rows
            .iter()
            .filter_map(|(_, v)| v.as_ref().map(|(b, _)| b.len() as u64))
            .sum();
        self.traffic.bytes.fetch_add(written, Ordering::Relaxed);
        let time = super::now_rfc3339();
        let q_done = self.sql("DELETE FROM {s}.intents WHERE token = ANY($1)");
        let q_existing =
            self.sql("SELECT address FROM {s}.resources WHERE address = ANY($1) FOR UPDATE");
        let q_heads =
            self.sql("SELECT scope, seq, hash FROM {s}.versions WHERE scope = ANY($1) FOR UPDATE");
        let q_delete = self.sql("DELETE FROM {s}.resources WHERE address = ANY($1)");
        let q_upsert = self.sql(
            "INSERT INTO {s}.resources (address, scope, rtype, body)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])
             ON CONFLICT (address) DO UPDATE SET scope = EXCLUDED.scope, rtype = EXCLUDED.rtype, body = EXCLUDED.body",
        );
        let q_audit = self.sql(
            "INSERT INTO {s}.audit (scope, seq, body) SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[])",
        );
        let q_heads_set = self.sql(
            "INSERT INTO {s}.versions (scope, seq, hash)
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[])
             ON CONFLICT (scope) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash",
        );
        let statements = 1 + if rows.is_empty() { 0 } else { 6 };
        let actor = self.actor.clone();
        self.call(statements, async move {
            let c = &mut *self.session().await?;
            let e = |what: &'static str| move |e: tokio_postgres::Error| self.err(what, &e);
            let tx = c.transaction().await.map_err(e("begin a transaction"))?;
            if !done.is_empty() {
                tx.execute(&q_done, &[&done])
                    .await
                    .map_err(e("remove finished intents"))?;
            }
            if !rows.is_empty() {
                let addresses: Vec<&str> = rows.iter().map(|(a, _)| a.as_str()).collect();
                let mut present: BTreeSet<String> = tx
                    .query(&q_existing, &[&addresses])
                    .await
                    .map_err(e("read the records being changed"))?
                    .into_iter()
                    .map(|r| r.get(0))
                    .collect();
                let scopes: Vec<&str> = rows
                    .iter()
                    .map(|(a, _)| a.split('/').next().unwrap_or_default())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let mut heads: BTreeMap<String, (i64, String)> = tx
                    .query(&q_heads, &[&scopes])
                    .await
                    .map_err(e("read the tenants' versions"))?
                    .into_iter()
                    .map(|r| (r.get(0), (r.get(1), r.get(2))))
                    .collect();
                let mut events: (Vec<String>, Vec<i64>, Vec<String>) = Default::default();
                // The last write of an address wins; events follow every write in order.
                let mut last: BTreeMap<&str, Option<&[u8]>> = BTreeMap::new();
                for (key, value) in &rows {
                    let existed = match value {
                        Some(_) => !present.insert(key.clone()),
                        None => present.remove(key),
                    };
                    last.insert(key.as_str(), value.as_ref().map(|(b, _)| b.as_slice()));
                    let Some(action) = AuditAction::of_write(value.is_some(), existed, manual)
                    else {
                        continue;
                    };
                    let tenant = key.split('/').next().unwrap_or_default();
                    let (seq, prev) = heads.get(tenant).cloned().unwrap_or_default();
                    let event = AuditEvent::next(
                        tenant,
                        seq as u64 + 1,
                        &time,
                        serial,
                        &actor,
                        action,
                        key,
                        value.as_ref().map(|(_, d)| d.clone()),
                        &prev,
                    );
                    events.0.push(tenant.to_string());
                    events.1.push(seq + 1);
                    events
                        .2
                        .push(serde_json::to_string(&event).unwrap_or_default());
                    heads.insert(tenant.to_string(), (seq + 1, event.hash));
                }
                let gone: Vec<&str> = last
                    .iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(k, _)| *k)
                    .collect();
                let mut put: (Vec<&str>, Vec<&str>, Vec<&str>, Vec<String>) = Default::default();
                for (k, v) in &last {
                    let Some(bytes) = v else { continue };
                    let (scope, rest) = k.split_once('/').unwrap_or((k, ""));
                    put.0.push(k);
                    put.1.push(scope);
                    put.2.push(rest.split_once('.').map_or(rest, |(t, _)| t));
                    put.3.push(String::from_utf8_lossy(bytes).into_owned());
                }
                tx.execute(&q_delete, &[&gone])
                    .await
                    .map_err(e("remove records"))?;
                tx.execute(&q_upsert, &[&put.0, &put.1, &put.2, &put.3])
                    .await
                    .map_err(e("write records"))?;
                tx.execute(&q_audit, &[&events.0, &events.1, &events.2])
                    .await
                    .map_err(e("append audit events"))?;
                let (hs, (hq, hh)): (Vec<&String>, (Vec<i64>, Vec<&String>)) =
                    heads.iter().map(|(s, (q, h))| (s, (*q, h))).unzip();
                tx.execute(&q_heads_set, &[&hs, &hq, &hh])
                    .await
                    .map_err(e("record the tenants' versions"))?;
            }
            tx.commit().await.map_err(e("commit"))
        })?;
        Ok(serial)
    }

    /// The rows of `records` for [`write`](Self::write), sealed with `serial`.
    fn rows_of(
        &self,
        serial: u64,
        records: Vec<Result<ResourceRecord, ResourceAddr>>,
    ) -> Result<Vec<Row>, StateError> {
        records
            .into_iter()
            .map(|r| match r {
                Ok(mut r) => {
                    r.serial = serial;
                    Ok((r.address.to_string(), Some(self.sealed(&r)?)))
                }
                Err(a) => Ok((a.to_string(), None)),
            })
            .collect()
    }

    fn lineage_now(&self) -> String {
        self.lineage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Tries the advisory locks of `infos` (in their order) in one round trip, and the
    /// workspace key shared first for tenants. Keeps the longest prefix it got (releasing
    /// any taken past the first refusal, so locks are always held in order) and writes
    /// its holder rows in the same transaction. Returns how many it holds now, and the
    /// scope whose holder stands in the way of the rest.
    fn try_prefix(&self, infos: &[&LockInfo]) -> Result<(usize, Option<String>), StateError> {
        let lineage = self.lineage_now();
        let ws = lock_key(&lineage, "workspace");
        let keys: Vec<i64> = infos.iter().map(|i| lock_key(&lineage, &i.scope)).collect();
        let need_shared = infos.iter().any(|i| i.scope != "workspace")
            && !self.held.lock().unwrap_or_else(|e| e.into_inner()).1;
        let upsert = self.sql(
            "INSERT INTO {s}.locks (scope, lock_key, host, pid, body)
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::int[], $5::text[])
             ON CONFLICT (scope) DO UPDATE SET lock_key = EXCLUDED.lock_key, host = EXCLUDED.host, pid = EXCLUDED.pid, body = EXCLUDED.body",
        );
        let (taken, shared) = self.call(5, async {
            let c = &mut *self.session().await?;
            let e = |what: &'static str| move |e: tokio_postgres::Error| self.err(what, &e);
            if need_shared {
                let ok: bool = c
                    .query_one("SELECT pg_try_advisory_lock_shared($1)", &[&ws])
                    .await
                    .map_err(e("take the workspace lock"))?
                    .get(0);
                if !ok {
                    return Ok((0, false));
                }
            }
            let tx = c.transaction().await.map_err(e("begin a transaction"))?;
            let got: Vec<bool> = tx
                .query(
                    "SELECT pg_try_advisory_lock(k) FROM unnest($1::bigint[]) WITH ORDINALITY AS t(k, n) ORDER BY n",
                    &[&keys],
                )
                .await
                .map_err(e("take tenant locks"))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let taken = got.iter().position(|ok| !ok).unwrap_or(got.len());
            let past: Vec<i64> = keys
                .iter()
                .zip(&got)
                .skip(taken)
                .filter(|(_, ok)| **ok)
                .map(|(k, _)| *k)
                .collect();
            if !past.is_empty() {
                tx.execute(
                    "SELECT pg_advisory_unlock(k) FROM unnest($1::bigint[]) AS t(k)",
                    &[&past],
                )
                .await
                .map_err(e("release out-of-order locks"))?;
            }
            let held = &infos[..taken];
            let rows: (Vec<&str>, Vec<i64>, Vec<&str>, Vec<i32>, Vec<String>) = (
                held.iter().map(|i| i.scope.as_str()).collect(),
                keys[..taken].to_vec(),
                held.iter().map(|i| i.host.as_str()).collect(),
                held.iter().map(|i| i.pid as i32).collect(),
                held.iter()
                    .map(|i| serde_json::to_string(i).unwrap_or_default())
                    .collect(),
            );
            tx.execute(&upsert, &[&rows.0, &rows.1, &rows.2, &rows.3, &rows.4])
                .await
                .map_err(e("record the lock holders"))?;
            tx.commit().await.map_err(e("record the lock holders"))?;
            Ok((taken, true))
        })?;
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.1 |= shared && need_shared;
        held.0.extend(
            infos[..taken]
                .iter()
                .zip(&keys)
                .map(|(i, k)| (i.scope.clone(), *k)),
        );
        let blocked = match (shared || !need_shared, infos.get(taken)) {
            (false, _) => Some("workspace".to_string()),
            (true, Some(i)) => Some(i.scope.clone()),
            (true, None) => None,
        };
        Ok((taken, blocked))
    }

    /// The live holder recorded for `scope`, if any.
    fn holder_of(&self, scope: &str) -> Result<Option<LockInfo>, StateError> {
        Ok(self.locks()?.into_iter().find(|l| l.scope == scope))
    }
}

impl KeyRing for PgStore {
    fn wrapped(&self, scope: &str) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self
            .rows(
                "read a data key",
                "SELECT wrapped FROM {s}.keys WHERE scope = $1",
                vec![Box::new(scope.to_string())],
                |r| r.get(0),
            )?
            .pop())
    }
    fn add_wrapped(&self, scope: &str, wrapped: Vec<u8>) -> Result<Vec<u8>, StateError> {
        let q = self.sql(
            "INSERT INTO {s}.keys (scope, wrapped) VALUES ($1, $2) ON CONFLICT (scope) DO NOTHING",
        );
        let s = scope.to_string();
        self.call(1, async move {
            let c = &mut *self.session().await?;
            c.execute(&q, &[&s, &wrapped])
                .await
                .map(|_| ())
                .map_err(|e| self.err("store a data key", &e))
        })?;
        self.wrapped(scope)?
            .ok_or_else(|| self.corrupt(format!("the data key of `{scope}` vanished")))
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Our lock rows go; the server drops the advisory locks with the connection.
        let q = self.sql("DELETE FROM {s}.locks WHERE host = $1 AND pid = $2");
        let host = super::hostname();
        let pid = std::process::id() as i32;
        let this = &*self;
        let _ = this.call(1, async move {
            let c = &mut *this.session().await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&host, &pid];
            let delete = c.execute(&q, &params);
            let _ = tokio::time::timeout(Duration::from_secs(2), delete).await;
            Ok(())
        });
        let _ = this.rt.call(async { this.client.lock().await.take() });
    }
}

impl StateStore for PgStore {
    fn serial(&self) -> Result<u64, StateError> {
        let q = self.sql("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {s}.serial");
        self.call(1, async move {
            let c = &mut *self.session().await?;
            c.query_one(&q, &[])
                .await
                .map(|r| r.get::<_, i64>(0) as u64)
                .map_err(|e| self.err("read the serial", &e))
        })
    }

    fn lineage(&self) -> Result<String, StateError> {
        Ok(self.lineage_now())
    }

    fn holds_sealed(&self) -> Result<bool, StateError> {
        Ok(!self
            .texts(
                "read the data keys",
                "SELECT scope FROM {s}.keys LIMIT 1",
                vec![],
            )?
            .is_empty())
    }

    fn check_key(&self) -> Result<(), StateError> {
        match self
            .texts(
                "read the data keys",
                "SELECT scope FROM {s}.keys LIMIT 1",
                vec![],
            )?
            .first()
        {
            Some(scope) => self.sealer.data_key(self, scope).map(|_| ()),
            None => Ok(()),
        }
    }

    fn resources(&self) -> Result<Vec<ResourceRecord>, StateError> {
        let rows = self.pairs(
            "read the records",
            "SELECT scope, body FROM {s}.resources ORDER BY address",
            vec![],
        )?;
        self.decode(rows)
    }

    fn resources_in(&self, scopes: &[String]) -> Result<Vec<ResourceRecord>, StateError> {
        let rows = self.pairs(
            "read the records",
            "SELECT scope, body FROM {s}.resources WHERE scope = ANY($1) ORDER BY address",
            vec![Box::new(scopes.to_vec())],
        )?;
        self.decode(rows)
    }

    fn addresses(&self, scopes: &[String]) -> Result<Vec<ResourceAddr>, StateError> {
        let texts = if scopes.is_empty() {
            self.texts(
                "read the addresses",
                "SELECT address FROM {s}.resources ORDER BY address",
                vec![],
            )?
        } else {
            self.texts(
                "read the addresses",
                "SELECT address FROM {s}.resources WHERE scope = ANY($1) ORDER BY address",
                vec![Box::new(scopes.to_vec())],
            )?
        };
        texts
            .iter()
            .map(|t| {
                t.parse()
                    .map_err(|_| self.corrupt(format!("record address `{t}` is not an address")))
            })
            .collect()
    }

    fn versions(&self, scopes: &[String]) -> Result<BTreeMap<String, u64>, StateError> {
        let found: BTreeMap<String, u64> = self
            .rows(
                "read the tenants' versions",
                "SELECT scope, seq FROM {s}.versions WHERE scope = ANY($1)",
                vec![Box::new(scopes.to_vec())],
                name_and_count,
            )?
            .into_iter()
            .collect();
        Ok(scopes
            .iter()
            .map(|s| (s.clone(), found.get(s).copied().unwrap_or(0)))
            .collect())
    }

    fn scopes(&self) -> Result<BTreeSet<String>, StateError> {
        Ok(self
            .texts(
                "read the tenants",
                "SELECT DISTINCT scope FROM {s}.resources",
                vec![],
            )?
            .into_iter()
            .collect())
    }

    fn count_by_type(&self) -> Result<BTreeMap<String, u64>, StateError> {
        Ok(self
            .rows(
                "count the records",
                "SELECT rtype, count(*) FROM {s}.resources GROUP BY rtype",
                vec![],
                name_and_count,
            )?
            .into_iter()
            .collect())
    }

    fn records_read(&self) -> u64 {
        self.sealer.reads()
    }

    fn exclusive(&self) -> bool {
        false
    }

    fn traffic(&self) -> Option<(u64, u64)> {
        Some((
            self.traffic.statements.load(Ordering::Relaxed),
            self.traffic.bytes.load(Ordering::Relaxed),
        ))
    }

    fn resource(&self, addr: &ResourceAddr) -> Result<Option<ResourceRecord>, StateError> {
        let rows = self.pairs(
            "read a record",
            "SELECT scope, body FROM {s}.resources WHERE address = $1",
            vec![Box::new(addr.to_string())],
        )?;
        Ok(self.decode(rows)?.pop())
    }

    fn begin_many(&self, intents: &[Intent]) -> Result<(), StateError> {
        let mut rows: (Vec<String>, Vec<String>, Vec<String>) = Default::default();
        for i in intents {
            let bytes = self.sealer.seal(self, i.clone())?;
            self.traffic
                .bytes
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            rows.0.push(i.token.clone());
            rows.1.push(i.address.scope.to_string());
            rows.2.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        let q = self.sql(
            "INSERT INTO {s}.intents (token, scope, body) SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[])
             ON CONFLICT (token) DO UPDATE SET body = EXCLUDED.body",
        );
        self.call(1, async move {
            let c = &mut *self.session().await?;
            c.execute(&q, &[&rows.0, &rows.1, &rows.2])
                .await
                .map(|_| ())
                .map_err(|e| self.err("record intents", &e))
        })
    }

    fn commit_many(&self, outcomes: Vec<(String, Outcome)>) -> Result<u64, StateError> {
        let mut records = Vec::new();
        let mut done = Vec::with_capacity(outcomes.len());
        for (token, outcome) in outcomes {
            match outcome {
                Outcome::Put(r) => records.push(Ok(*r)),
                Outcome::Remove(a) => records.push(Err(a)),
                Outcome::Nothing => {}
            }
            done.push(token);
        }
        if records.is_empty() {
            self.write(0, vec![], done, false)?;
            return self.serial();
        }
        let serial = self.next_serial()?;
        let rows = self.rows_of(serial, records)?;
        self.write(serial, rows, done, false)
    }

    fn intents(&self) -> Result<Vec<Intent>, StateError> {
        let rows = self.pairs(
            "read intents",
            "SELECT scope, body FROM {s}.intents ORDER BY token",
            vec![],
        )?;
        self.decode(rows)
    }

    fn put(&self, record: ResourceRecord) -> Result<u64, StateError> {
        let serial = self.next_serial()?;
        let rows = self.rows_of(serial, vec![Ok(record)])?;
        self.write(serial, rows, vec![], true)
    }

    fn forget(&self, addr: &ResourceAddr) -> Result<u64, StateError> {
        let serial = self.next_serial()?;
        self.write(serial, vec![(addr.to_string(), None)], vec![], true)
    }

    fn rename(&self, from: &ResourceAddr, record: ResourceRecord) -> Result<u64, StateError> {
        let serial = self.next_serial()?;
        let rows = self.rows_of(serial, vec![Ok(record), Err(from.clone())])?;
        self.write(serial, rows, vec![], true)
    }

    fn lock(&self, info: &LockInfo) -> Result<(), StateError> {
        self.lock_many(std::slice::from_ref(info))
    }

    fn lock_many(&self, infos: &[LockInfo]) -> Result<(), StateError> {
        let mut todo: Vec<&LockInfo> = {
            let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            infos
                .iter()
                .filter(|i| !held.0.contains_key(&i.scope))
                .collect()
        };
        todo.sort_by(|a, b| a.scope.cmp(&b.scope));
        todo.dedup_by(|a, b| a.scope == b.scope);
        let start = Instant::now();
        while !todo.is_empty() {
            let (taken, blocked) = self.try_prefix(&todo)?;
            todo.drain(..taken);
            let Some(blocking) = blocked else { continue };
            if start.elapsed() < self.lock_timeout {
                std::thread::sleep(Duration::from_millis(150));
                continue;
            }
            let holder = match self.holder_of(&blocking)? {
                Some(h) => h.to_string(),
                None if blocking == "workspace" => {
                    "a run over the whole fleet (or a tenant-limited run, while this one covers the fleet)".to_string()
                }
                None => format!("another run (on `{blocking}`)"),
            };
            let what = if blocking == "workspace" {
                String::new()
            } else {
                format!(" on tenant `{blocking}`")
            };
            return Err(StateError::Locked {
                holder: format!("{holder}{what}"),
                waited: start.elapsed(),
                advice: ". The lock is released when that run ends; the server releases a killed run's locks when its connection drops".into(),
            });
        }
        Ok(())
    }

    fn unlock(&self, scope: &str) -> Result<(), StateError> {
        self.unlock_many(&[scope.to_string()])
    }

    fn unlock_many(&self, scopes: &[String]) -> Result<(), StateError> {
        // The keys as they were taken: an import in between changes the lineage.
        let (ours, keys): (Vec<String>, Vec<i64>) = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            scopes
                .iter()
                .filter_map(|s| Some((s.clone(), held.0.remove(s)?)))
                .unzip()
        };
        if ours.is_empty() {
            return Ok(());
        }
        let q = self.sql("DELETE FROM {s}.locks WHERE scope = ANY($1) AND host = $2 AND pid = $3");
        let host = super::hostname();
        let pid = std::process::id() as i32;
        self.call(2, async move {
            let c = &mut *self.session().await?;
            c.execute(&q, &[&ours, &host, &pid])
                .await
                .map_err(|e| self.err("remove the lock rows", &e))?;
            c.execute(
                "SELECT pg_advisory_unlock(k) FROM unnest($1::bigint[]) AS t(k)",
                &[&keys],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.err("release tenant locks", &e))
        })
    }

    fn force_unlock(&self, scope: Option<&str>) -> Result<Vec<LockInfo>, StateError> {
        // Only rows whose lock is gone: a live lock belongs to a live run.
        let q = format!(
            "DELETE FROM {{s}}.locks l WHERE ($1::text IS NULL OR l.scope = $1) AND NOT {HELD} RETURNING l.body"
        );
        let bodies = self.texts(
            "remove lock rows",
            &q,
            vec![Box::new(scope.map(str::to_string))],
        )?;
        self.json_rows("lock row", bodies)
    }

    fn locks(&self) -> Result<Vec<LockInfo>, StateError> {
        let bodies = self.texts(
            "read the locks",
            &format!("SELECT l.body FROM {{s}}.locks l WHERE {HELD} ORDER BY l.scope"),
            vec![],
        )?;
        self.json_rows("lock row", bodies)
    }

    fn notes(&self, prefix: &str) -> Result<Vec<(String, serde_json::Value)>, StateError> {
        let rows = self.pairs(
            "read notes",
            "SELECT key, body FROM {s}.notes WHERE starts_with(key, $1) ORDER BY key",
            vec![Box::new(prefix.to_string())],
        )?;
        rows.into_iter()
            .map(|(k, b)| {
                let v = serde_json::from_str(&b)
                    .map_err(|e| self.corrupt(format!("note `{k}`: {e}")))?;
                Ok((k, v))
            })
            .collect()
    }

    fn set_notes(&self, notes: Vec<(String, Option<serde_json::Value>)>) -> Result<(), StateError> {
        let (mut gone, mut put): (Vec<String>, (Vec<String>, Vec<String>)) = Default::default();
        for (k, v) in notes {
            match v {
                Some(v) => {
                    put.0.push(k);
                    put.1.push(v.to_string());
                }
                None => gone.push(k),
            }
        }
        let q_del = self.sql("DELETE FROM {s}.notes WHERE key = ANY($1)");
        let q_put = self.sql(
            "INSERT INTO {s}.notes (key, body) SELECT * FROM UNNEST($1::text[], $2::text[])
             ON CONFLICT (key) DO UPDATE SET body = EXCLUDED.body",
        );
        self.call(2, async move {
            let c = &mut *self.session().await?;
            let tx = c
                .transaction()
                .await
                .map_err(|e| self.err("begin a transaction", &e))?;
            tx.execute(&q_del, &[&gone])
                .await
                .map_err(|e| self.err("remove notes", &e))?;
            tx.execute(&q_put, &[&put.0, &put.1])
                .await
                .map_err(|e| self.err("write notes", &e))?;
            tx.commit().await.map_err(|e| self.err("write notes", &e))
        })
    }

    fn record_run(&self, run: &RunRecord) -> Result<(), StateError> {
        let q = self.sql("INSERT INTO {s}.history (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body");
        let id = run.id.clone();
        let body = serde_json::to_string(run).map_err(|e| self.corrupt(e.to_string()))?;
        self.call(1, async move {
            let c = &mut *self.session().await?;
            c.execute(&q, &[&id, &body])
                .await
                .map(|_| ())
                .map_err(|e| self.err("record the run", &e))
        })
    }

    fn history(&self) -> Result<Vec<RunRecord>, StateError> {
        let bodies = self.texts(
            "read the history",
            "SELECT body FROM {s}.history ORDER BY id",
            vec![],
        )?;
        self.json_rows("history row", bodies)
    }

    fn audit(&self) -> Result<Vec<AuditEvent>, StateError> {
        let bodies = self.texts(
            "read the audit events",
            "SELECT body FROM {s}.audit",
            vec![],
        )?;
        let mut events: Vec<AuditEvent> = self.json_rows("audit event", bodies)?;
        events.sort_by_cached_key(|e| super::audit::order_key(&e.tenant, e.seq));
        Ok(events)
    }

    fn digest(&self, record: &ResourceRecord) -> String {
        self.sealer.digest(record)
    }

    fn export(&self) -> Result<Export, StateError> {
        let keys: BTreeMap<String, String> = self
            .rows(
                "read the data keys",
                "SELECT scope, wrapped FROM {s}.keys",
                vec![],
                |r| (r.get(0), crypto::to_text(&r.get::<_, Vec<u8>>(1))),
            )?
            .into_iter()
            .collect();
        let resources = self.texts(
            "read the records",
            "SELECT body FROM {s}.resources ORDER BY address",
            vec![],
        )?;
        let intents = self.texts(
            "read intents",
            "SELECT body FROM {s}.intents ORDER BY token",
            vec![],
        )?;
        Export::of(
            self,
            self.lineage_now(),
            self.json_rows("resource record", resources)?,
            self.json_rows("intent", intents)?,
            keys,
        )
    }

    fn import(&self, ex: &Export) -> Result<(), StateError> {
        ex.check_format()?;
        let mut keys: (Vec<String>, Vec<Vec<u8>>) = Default::default();
        for (scope, w) in &ex.keys {
            keys.0.push(scope.clone());
            keys.1.push(self.sealer.check_wrapped(scope, w)?);
        }
        let field = super::entry_field;
        let mut res: (Vec<String>, Vec<String>, Vec<String>, Vec<String>) = Default::default();
        for r in &ex.resources {
            let addr: ResourceAddr = field(r, "address")?
                .parse()
                .map_err(|e| StateError::Import(format!("{e}")))?;
            res.0.push(addr.to_string());
            res.1.push(addr.scope.to_string());
            res.2.push(addr.rtype.to_string());
            res.3.push(r.to_string());
        }
        let mut ints: (Vec<String>, Vec<String>, Vec<String>) = Default::default();
        for i in &ex.intents {
            let addr: ResourceAddr = field(i, "address")?
                .parse()
                .map_err(|e| StateError::Import(format!("{e}")))?;
            ints.0.push(field(i, "token")?);
            ints.1.push(addr.scope.to_string());
            ints.2.push(i.to_string());
        }
        let mut heads: BTreeMap<String, (i64, String)> = BTreeMap::new();
        let mut audit: (Vec<String>, Vec<i64>, Vec<String>) = Default::default();
        for e in &ex.audit {
            audit.0.push(e.tenant.clone());
            audit.1.push(e.seq as i64);
            audit
                .2
                .push(serde_json::to_string(e).map_err(|e| self.corrupt(e.to_string()))?);
            let h = heads.entry(e.tenant.clone()).or_default();
            if e.seq as i64 >= h.0 {
                *h = (e.seq as i64, e.hash.clone());
            }
        }
        let (hs, (hq, hh)): (Vec<String>, (Vec<i64>, Vec<String>)) = heads.into_iter().unzip();
        let history: (Vec<String>, Vec<String>) = ex
            .history
            .iter()
            .map(|h| (h.id.clone(), serde_json::to_string(h).unwrap_or_default()))
            .unzip();
        let notes: (Vec<String>, Vec<String>) = ex
            .notes
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .unzip();
        let statements = [
            self.sql("TRUNCATE {s}.resources, {s}.intents, {s}.keys, {s}.history, {s}.audit, {s}.notes, {s}.versions"),
            self.sql("INSERT INTO {s}.keys SELECT * FROM UNNEST($1::text[], $2::bytea[])"),
            self.sql("INSERT INTO {s}.resources SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])"),
            self.sql("INSERT INTO {s}.intents SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[])"),
            self.sql("INSERT INTO {s}.audit SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[])"),
            self.sql("INSERT INTO {s}.versions SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[])"),
            self.sql("INSERT INTO {s}.history SELECT * FROM UNNEST($1::text[], $2::text[])"),
            self.sql("INSERT INTO {s}.notes SELECT * FROM UNNEST($1::text[], $2::text[])"),
            self.sql("UPDATE {s}.meta SET value = $1 WHERE key = 'lineage'"),
            self.sql("SELECT setval('{s}.serial', $1, true)"),
        ];
        let lineage = ex.lineage.clone();
        let serial = ex.serial as i64;
        self.call(statements.len() as u64, async move {
            let c = &mut *self.session().await?;
            let e = |e: tokio_postgres::Error| self.err("import the state", &e);
            let tx = c.transaction().await.map_err(e)?;
            tx.execute(&statements[0], &[]).await.map_err(e)?;
            tx.execute(&statements[1], &[&keys.0, &keys.1])
                .await
                .map_err(e)?;
            tx.execute(&statements[2], &[&res.0, &res.1, &res.2, &res.3])
                .await
                .map_err(e)?;
            tx.execute(&statements[3], &[&ints.0, &ints.1, &ints.2])
                .await
                .map_err(e)?;
            tx.execute(&statements[4], &[&audit.0, &audit.1, &audit.2])
                .await
                .map_err(e)?;
            tx.execute(&statements[5], &[&hs, &hq, &hh])
                .await
                .map_err(e)?;
            tx.execute(&statements[6], &[&history.0, &history.1])
                .await
                .map_err(e)?;
            tx.execute(&statements[7], &[&notes.0, &notes.1])
                .await
                .map_err(e)?;
            tx.execute(&statements[8], &[&lineage]).await.map_err(e)?;
            tx.query_one(&statements[9], &[&serial]).await.map_err(e)?;
            tx.commit().await.map_err(e)
        })?;
        self.sealer.forget_keys();
        *self.lineage.lock().unwrap_or_else(|e| e.into_inner()) = ex.lineage.clone();
        // Every record must be readable with this master key.
        self.resources()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{lock_key, SCHEMA_VERSION, UPGRADES};

    #[test]
    fn every_layout_version_after_the_first_has_its_upgrade() {
        assert_eq!(UPGRADES.len() as i32, SCHEMA_VERSION - 1);
    }

    #[test]
    fn lock_keys_are_stable_positive_and_differ_by_lineage_and_tenant() {
        let a = lock_key("lineage-1", "acme");
        assert_eq!(a, lock_key("lineage-1", "acme"), "stable across calls");
        assert!(a >= 0, "positive, so pg_locks gives it back whole");
        assert_ne!(a, lock_key("lineage-2", "acme"));
        assert_ne!(a, lock_key("lineage-1", "globex"));
        // The same on every machine and version: runners of different builds must agree
        // (SHA-256 of "landlord lock\0<lineage>\0<tenant>", first 8 bytes, shifted by 2).
        assert_eq!(
            lock_key("0123456789abcdef01234567", "acme"),
            3_665_773_896_198_621_132
        );
    }
}
