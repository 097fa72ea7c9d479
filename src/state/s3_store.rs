//! The S3 backend, for teams that share one state from many runners: one object per
//! tenant, so runs on different tenants neither wait for each other nor upload each
//! other's records.
//!
//! Under the configured key `K`:
//! - `K/tenants/<id>.json`: the tenant's records (secrets sealed), audit chain and data
//!   key, written with `If-Match` on the ETag last read, so nothing another process wrote
//!   is ever overwritten;
//! - `K/index.json`: lineage and serial; `K/history/<run>.json`: one object per run;
//!   `K/shards/<nn>.json`: notes and record counts per tenant, spread over 32 objects by a
//!   hash of their key; each updated by a conditional read-modify-write that retries on a
//!   conflict, so a run rewrites only the shards of what it changed;
//! - `K/intents/<token>`: a batch of write-ahead intents, durable before their provider
//!   calls and removed once the tenant objects hold their outcomes;
//! - `K/locks/<id>.lock`, `K/locks/workspace.lock`: lock objects created with
//!   `If-None-Match: *`. A tenant-limited run holds its tenants' objects and checks that no
//!   fleet-wide run holds the workspace one; a fleet-wide run holds the workspace object
//!   and waits until no tenant object is left. A lock left by a process that died on this
//!   host, or past its expiry, is taken over.
//!
//! A run works on a local copy that loads tenants as it needs them. A state kept in one
//! object (`K` itself, as landlord wrote it before) is split on first use; the old object
//! is removed once the split is committed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use futures_util::StreamExt;
use serde_json::Value;

use super::audit::AuditEvent;
use super::crypto::Key;
use super::sdk::Rt;
use super::sled_store::SledStore;
use super::{
    Export, Intent, LockInfo, Outcome, ResourceRecord, RunRecord, StateError, StateStore,
    FORMAT_VERSION,
};
use crate::addr::ResourceAddr;

/// Where the state lives in S3.
#[derive(Debug, Clone)]
pub struct S3Location {
    /// Bucket.
    pub bucket: String,
    /// Object key of the state: its objects live under `<key>/`.
    pub key: String,
    /// Region of the bucket (the SDK's default chain when `None`).
    pub region: Option<String>,
}

/// The index object: lineage, serial, and one wrapped data key (so a master key is
/// checked without reading tenants).
#[derive(serde::Serialize, serde::Deserialize, Default, Clone)]
struct Index {
    format: String,
    version: u32,
    lineage: String,
    serial: u64,
    #[serde(default)]
    sample_key: Option<(String, String)>,
}

/// One of the shard objects: the notes and per-tenant record counts whose key hashes to
/// it. A run rewrites only the shards of what it changed, so no object grows with every
/// tenant and concurrent runs rarely meet on one.
#[derive(serde::Serialize, serde::Deserialize, Default, Clone)]
struct Shard {
    #[serde(default)]
    notes: BTreeMap<String, Value>,
    /// Records per type, per tenant (the bulk-change guard's fleet counts).
    #[serde(default)]
    counts: BTreeMap<String, BTreeMap<String, u64>>,
}

/// How many shard objects notes and counts are spread over.
const SHARDS: u32 = 32;

/// The shard of a note key or tenant id (FNV-1a: stable across versions and machines).
fn shard_of(key: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % SHARDS
}

const INDEX_FORMAT: &str = "landlord-state-index";

/// An intent object: sealed intents of one tenant and the wrapped key that seals them.
#[derive(serde::Serialize, serde::Deserialize)]
struct IntentBatch {
    keys: BTreeMap<String, String>,
    intents: Vec<Value>,
}

/// How often outcomes are uploaded at most (intents are durable regardless).
const UPLOAD_EVERY: Duration = Duration::from_secs(1);

/// How many objects are read or written at once.
const CONCURRENCY: usize = 32;

fn precondition_failed<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> bool {
    matches!(
        e.code(),
        Some("PreconditionFailed") | Some("ConditionalRequestConflict")
    )
}

/// An S3 failure as a state error naming the object and what was attempted.
fn sdk_error(at: &S3Location, what: &str, e: &dyn std::error::Error) -> StateError {
    StateError::Storage {
        path: format!("s3://{}/{}", at.bucket, at.key),
        message: format!(
            "cannot {what}: {}",
            aws_sdk_s3::error::DisplayErrorContext(e)
        ),
    }
}

/// An object's ETag and body; `None` when there is no such object.
async fn fetch(
    client: &aws_sdk_s3::Client,
    at: &S3Location,
    key: &str,
) -> Result<Option<(String, Vec<u8>)>, StateError> {
    let o = match client.get_object().bucket(&at.bucket).key(key).send().await {
        Ok(o) => o,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
        Err(e) => return Err(sdk_error(at, &format!("read `{key}`"), &e)),
    };
    let etag = o.e_tag().unwrap_or_default().to_string();
    let bytes = o
        .body
        .collect()
        .await
        .map_err(|e| sdk_error(at, &format!("read `{key}`"), &e))?
        .into_bytes()
        .to_vec();
    Ok(Some((etag, bytes)))
}

/// Every key under `prefix`, one ListObjectsV2 call per 1,000.
async fn list(
    client: &aws_sdk_s3::Client,
    at: &S3Location,
    prefix: &str,
) -> Result<Vec<String>, StateError> {
    let mut keys = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(&at.bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error(at, &format!("list `{prefix}`"), &e))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    Ok(keys)
}

/// What a write may replace.
#[derive(Clone, Copy)]
enum Over<'a> {
    /// Only the version with this ETag (`If-Match`).
    Version(&'a str),
    /// Nothing: the object must not exist (`If-None-Match: *`).
    Nothing,
    /// Whatever is there.
    Anything,
}

impl<'a> Over<'a> {
    /// The version `etag` names, or nothing when there is none yet.
    fn seen(etag: Option<&'a str>) -> Over<'a> {
        etag.map_or(Over::Nothing, Over::Version)
    }
}

/// Writes an object, only over what `over` allows; its new ETag, or `Ok(None)` when
/// someone else wrote it first.
async fn put_if(
    client: &aws_sdk_s3::Client,
    at: &S3Location,
    key: &str,
    over: Over<'_>,
    body: Vec<u8>,
) -> Result<Option<String>, StateError> {
    let req = client
        .put_object()
        .bucket(&at.bucket)
        .key(key)
        .content_type("application/json")
        .body(ByteStream::from(body));
    match match over {
        Over::Version(e) => req.if_match(e),
        Over::Nothing => req.if_none_match("*"),
        Over::Anything => req,
    }
    .send()
    .await
    {
        Ok(o) => Ok(Some(o.e_tag().unwrap_or_default().to_string())),
        Err(e) if e.as_service_error().is_some_and(precondition_failed) => Ok(None),
        Err(e) => Err(sdk_error(at, &format!("write `{key}`"), &e)),
    }
}

/// Removes a lock object, only if it is still the version `etag` names.
async fn delete_lock(
    client: &aws_sdk_s3::Client,
    at: &S3Location,
    key: &str,
    etag: String,
) -> Result<(), StateError> {
    client
        .delete_object()
        .bucket(&at.bucket)
        .key(key)
        .if_match(etag)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| sdk_error(at, "remove a lock object", &e))
}

/// Removes objects, 1,000 per DeleteObjects call; a leftover only costs a later look.
async fn delete_all(client: &aws_sdk_s3::Client, at: &S3Location, keys: &[String]) {
    for chunk in keys.chunks(1000) {
        let objects: Vec<ObjectIdentifier> = chunk
            .iter()
            .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
            .collect();
        let Ok(delete) = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
        else {
            continue;
        };
        let _ = client
            .delete_objects()
            .bucket(&at.bucket)
            .delete(delete)
            .send()
            .await;
    }
}

/// A boxed future that may move between threads.
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Intent objects this run knows of: the tenants they cover, and the tokens not yet
/// committed.
type IntentObjects = BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>;

/// Reads the JSON object at `key`; an object that does not parse is corrupt state,
/// named with `what`.
fn parse<T: serde::de::DeserializeOwned>(
    at: &S3Location,
    key: &str,
    what: &str,
    bytes: &[u8],
) -> Result<T, StateError> {
    serde_json::from_slice(bytes).map_err(|e| StateError::Corrupt {
        path: format!("s3://{}/{key}", at.bucket),
        message: format!("{what}: {e}"),
    })
}

/// The tenants and tokens of sealed intents.
fn scopes_and_tokens(rows: &[Value]) -> (BTreeSet<String>, BTreeSet<String>) {
    let field = |r: &Value, f: &str| r.get(f).and_then(Value::as_str).map(str::to_string);
    let scopes = rows
        .iter()
        .filter_map(|r| field(r, "address"))
        .map(|a| a.split('/').next().unwrap_or_default().to_string())
        .collect();
    let tokens = rows.iter().filter_map(|r| field(r, "token")).collect();
    (scopes, tokens)
}

/// The S3-backed state store.
pub struct S3Store {
    inner: SledStore,
    work: PathBuf,
    /// The runtime S3 calls run on.
    rt: Rt,
    client: aws_sdk_s3::Client,
    at: S3Location,
    holder: LockInfo,
    lock_timeout: Duration,
    /// Tenants loaded into the working copy, with their object's ETag (`None`: no object).
    loaded: Mutex<BTreeMap<String, Option<String>>>,
    /// Whether every tenant is loaded.
    all_loaded: std::sync::atomic::AtomicBool,
    /// Tenants changed since their last upload, and since the index last counted them.
    dirty: Mutex<(BTreeSet<String>, BTreeSet<String>)>,
    /// When tenants were last uploaded.
    uploaded: Mutex<Instant>,
    /// Intent objects written by this run or adopted from a killed one.
    intent_objects: Mutex<IntentObjects>,
    /// Lock objects held: scope → ETag.
    held: Mutex<BTreeMap<String, String>>,
    /// The index's wrapped sample key as this run opened it (checks the master key).
    sample_key: Option<(String, String)>,
    /// Requests sent and bytes uploaded (`--stats`).
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl S3Store {
    fn storage(at: &S3Location, message: impl std::fmt::Display) -> StateError {
        StateError::Storage {
            path: format!("s3://{}/{}", at.bucket, at.key),
            message: message.to_string(),
        }
    }

    /// Runs SDK calls on this store's runtime, counting `requests`.
    fn call_on<T: Send, F: std::future::Future<Output = T> + Send>(
        &self,
        requests: u64,
        f: F,
    ) -> T {
        self.requests.fetch_add(requests, Ordering::Relaxed);
        self.rt.call(f)
    }

    fn index_key(at: &S3Location) -> String {
        format!("{}/index.json", at.key)
    }
    fn tenant_key(&self, scope: &str) -> String {
        format!("{}/tenants/{scope}.json", self.at.key)
    }
    fn intent_prefix(&self) -> String {
        format!("{}/intents/", self.at.key)
    }
    fn lock_prefix(at: &S3Location) -> String {
        format!("{}/locks/", at.key)
    }
    fn lock_key(at: &S3Location, scope: &str) -> String {
        format!("{}{scope}.lock", Self::lock_prefix(at))
    }

    /// Opens the state at `at`; `work` is an empty local directory for the working copy,
    /// and locks wait up to `timeout`.
    pub fn open(
        at: S3Location,
        work: &Path,
        master: Key,
        holder: &LockInfo,
        timeout: Duration,
    ) -> Result<S3Store, StateError> {
        let (rt, client) = Self::connect(&at)?;
        let mut store = S3Store {
            inner: {
                let _ = std::fs::remove_dir_all(work);
                SledStore::open(work, master, holder, Duration::from_secs(10))?
            },
            work: work.to_path_buf(),
            rt,
            client,
            at,
            holder: holder.clone(),
            lock_timeout: timeout,
            loaded: Mutex::new(BTreeMap::new()),
            all_loaded: Default::default(),
            dirty: Mutex::new(Default::default()),
            uploaded: Mutex::new(Instant::now()),
            intent_objects: Mutex::new(BTreeMap::new()),
            held: Mutex::new(BTreeMap::new()),
            sample_key: None,
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        };
        let index = match store.read_index()? {
            Some((_, index)) => index,
            None => store.first_index()?,
        };
        store.sample_key = index.sample_key.clone();
        store.inner.import(&Export {
            format: super::EXPORT_FORMAT.into(),
            version: FORMAT_VERSION,
            lineage: index.lineage,
            serial: index.serial,
            resources: vec![],
            intents: vec![],
            keys: Default::default(),
            history: vec![],
            audit: vec![],
            notes: Default::default(),
        })?;
        // The copy starts empty (a split above filled it): tenants load as they are needed.
        store
            .loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        store.all_loaded.store(false, Ordering::Relaxed);
        Ok(store)
    }

    /// A runtime and an S3 client for `at` (credentials, region and endpoint from the
    /// standard AWS chain and environment).
    fn connect(at: &S3Location) -> Result<(Rt, aws_sdk_s3::Client), StateError> {
        let rt = Rt::new().map_err(|e| Self::storage(at, e))?;
        let conf = rt.aws_config(at.region.as_deref());
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let client = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&conf)
                .force_path_style(path_style)
                .build(),
        );
        Ok((rt, client))
    }

    fn read_index(&self) -> Result<Option<(String, Index)>, StateError> {
        let (at, client) = (&self.at, &self.client);
        let Some((etag, bytes)) = self.call_on(1, fetch(client, at, &Self::index_key(at)))? else {
            return Ok(None);
        };
        let index: Index = parse(
            at,
            &Self::index_key(at),
            "the state index is not a landlord state index",
            &bytes,
        )?;
        if index.format != INDEX_FORMAT || index.version != FORMAT_VERSION {
            return Err(StateError::Corrupt {
                path: format!("s3://{}/{}", at.bucket, Self::index_key(at)),
                message: format!(
                    "the state index has format `{}` version {}; this landlord reads `{INDEX_FORMAT}` version {FORMAT_VERSION}",
                    index.format, index.version
                ),
            });
        }
        Ok(Some((etag, index)))
    }

    /// The index of a state that has none yet: new (the first writer wins, the others
    /// read its index), or split from a one-object state at `K` under the workspace lock.
    fn first_index(&self) -> Result<Index, StateError> {
        let (at, client) = (&self.at, &self.client);
        if self.call_on(1, fetch(client, at, &at.key))?.is_none() {
            let index = Index {
                format: INDEX_FORMAT.into(),
                version: FORMAT_VERSION,
                lineage: self.inner.lineage()?,
                ..Default::default()
            };
            if self.write_index(None, &index)? {
                return Ok(index);
            }
            return self
                .read_index()?
                .map(|(_, i)| i)
                .ok_or_else(|| Self::storage(at, "the state index vanished while it was made"));
        }
        let me = LockInfo {
            scope: "workspace".into(),
            ..self.holder.clone()
        };
        self.lock(&me)?;
        let out = self.split();
        let _ = self.unlock("workspace");
        out
    }

    /// Splits the one-object state at `K` (unless another run did it meanwhile).
    fn split(&self) -> Result<Index, StateError> {
        if let Some((_, index)) = self.read_index()? {
            return Ok(index);
        }
        let (at, client) = (&self.at, &self.client);
        let Some((_, bytes)) = self.call_on(1, fetch(client, at, &at.key))? else {
            return Err(Self::storage(
                at,
                "the state object vanished while it was split; run again",
            ));
        };
        let ex: Export = parse(
            at,
            &at.key,
            "the state object is not a landlord state",
            &bytes,
        )?;
        eprintln!(
            "Splitting the state in s3://{}/{} into one object per tenant under s3://{0}/{1}/; the old object stays until the split is committed.",
            at.bucket, at.key
        );
        self.inner.import(&ex).map_err(|e| match e {
            StateError::Import(m) => StateError::Key(format!(
                "the state in s3://{}/{} cannot be read with this master key ({m}): use the key it was written with",
                at.bucket, at.key
            )),
            other => other,
        })?;
        let (index, tenants) = self.replace_with(&ex)?;
        self.call_on(1, delete_all(client, at, std::slice::from_ref(&at.key)));
        eprintln!(
            "Split committed ({} tenants); removed the old object s3://{}/{}.",
            tenants, at.bucket, at.key
        );
        Ok(index)
    }

    /// Writes every tenant of the working copy (which holds `ex`), intent objects for its
    /// intents, and an index for it; tenant objects of tenants not in `ex` are removed.
    fn replace_with(&self, ex: &Export) -> Result<(Index, usize), StateError> {
        let mut scopes = scopes_and_tokens(&ex.resources).0;
        scopes.extend(
            ex.audit
                .iter()
                .map(|e| e.tenant.clone())
                .chain(ex.keys.keys().cloned()),
        );
        let (at, client) = (&self.at, &self.client);
        let existing = self.listed_scopes()?;
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) =
            existing.iter().map(|id| (id.clone(), None)).collect();
        let stale: Vec<String> = existing
            .iter()
            .filter(|id| !scopes.contains(*id))
            .map(|id| self.tenant_key(id))
            .collect();
        // Existing objects are overwritten unconditionally: this replaces the state.
        self.upload_scopes(&scopes.iter().cloned().collect::<Vec<_>>(), true)?;
        let mut gone = stale;
        for prefix in [
            self.history_prefix(),
            format!("{}/shards/", at.key),
            self.intent_prefix(),
        ] {
            gone.extend(self.call_on(1, list(client, at, &prefix))?);
        }
        self.call_on(1, delete_all(client, at, &gone));
        self.intent_objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        if !ex.intents.is_empty() {
            self.put_intent_object(ex.intents.clone(), "import")?;
        }
        self.all_loaded.store(true, Ordering::Relaxed);
        for run in &ex.history {
            self.put_history(run)?;
        }
        let mut counts = BTreeMap::new();
        for scope in &scopes {
            counts.insert(scope.clone(), self.counts_of(scope)?);
        }
        let notes: Vec<(String, Option<Value>)> = ex
            .notes
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        self.update_shards(&notes, &counts)?;
        let index = Index {
            format: INDEX_FORMAT.into(),
            version: FORMAT_VERSION,
            lineage: ex.lineage.clone(),
            serial: ex.serial,
            sample_key: ex.keys.iter().next().map(|(s, k)| (s.clone(), k.clone())),
        };
        let current = self.read_index()?.map(|(etag, _)| etag);
        match self.write_index(current.as_deref(), &index)? {
            true => Ok((index, scopes.len())),
            false => Err(Self::storage(
                at,
                "the state index was changed by another process while the state was replaced; run again",
            )),
        }
    }

    /// Writes one run's history object.
    fn put_history(&self, run: &RunRecord) -> Result<(), StateError> {
        let body = serde_json::to_vec(run).map_err(|e| Self::storage(&self.at, e))?;
        self.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        let key = format!("{}{}.json", self.history_prefix(), run.id);
        let (at, client) = (&self.at, &self.client);
        self.call_on(1, put_if(client, at, &key, Over::Nothing, body))?;
        Ok(())
    }

    /// Writes the index over `etag` (`None`: only if there is none); `false` on a conflict.
    fn write_index(&self, etag: Option<&str>, index: &Index) -> Result<bool, StateError> {
        let body = serde_json::to_vec(index).map_err(|e| Self::storage(&self.at, e))?;
        self.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        let (at, client) = (&self.at, &self.client);
        Ok(self
            .call_on(
                1,
                put_if(client, at, &Self::index_key(at), Over::seen(etag), body),
            )?
            .is_some())
    }

    /// Raises the index's serial to this run's and gives it a sample key if it has none,
    /// again over a fresh read when another run wrote it in between.
    fn update_index(&self) -> Result<(), StateError> {
        let serial = self.inner.serial()?;
        let ours = self.inner.first_wrapped_key()?;
        self.until_written("the state index", || {
            let (etag, mut index) = self
                .read_index()?
                .ok_or_else(|| Self::storage(&self.at, "the state index is gone"))?;
            let sample = match &index.sample_key {
                Some(_) => None,
                None => ours.clone(),
            };
            if index.serial >= serial && sample.is_none() {
                return Ok(true);
            }
            index.serial = index.serial.max(serial);
            if sample.is_some() {
                index.sample_key = sample;
            }
            self.write_index(Some(&etag), &index)
        })
    }

    /// Runs `attempt`, a conditional read-modify-write of `what` (`true` once written or
    /// nothing is left to write), until it succeeds: 50 times at most, 50 ms apart.
    fn until_written(
        &self,
        what: &str,
        mut attempt: impl FnMut() -> Result<bool, StateError>,
    ) -> Result<(), StateError> {
        for _ in 0..50 {
            if attempt()? {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Self::storage(
            &self.at,
            format!("{what} kept changing under this run (50 attempts); run again"),
        ))
    }

    fn shard_key(&self, n: u32) -> String {
        format!("{}/shards/{n:02}.json", self.at.key)
    }

    fn history_prefix(&self) -> String {
        format!("{}/history/", self.at.key)
    }

    /// Runs `requests`, [`CONCURRENCY`] at a time; their results in order.
    fn all<T: Send>(
        &self,
        requests: Vec<BoxFuture<'_, Result<T, StateError>>>,
    ) -> Result<Vec<T>, StateError> {
        self.call_on(requests.len() as u64, async {
            futures_util::stream::iter(requests)
                .buffered(CONCURRENCY)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect()
        })
    }

    /// Objects read at once; `None` for a missing one.
    fn fetch_many(&self, keys: &[String]) -> Result<Vec<Option<(String, Vec<u8>)>>, StateError> {
        let (at, client) = (&self.at, &self.client);
        self.all(
            keys.iter()
                .map(|key| -> BoxFuture<'_, _> { Box::pin(fetch(client, at, key)) })
                .collect(),
        )
    }

    /// Every shard, merged.
    fn read_shards(&self) -> Result<Shard, StateError> {
        let keys: Vec<String> = (0..SHARDS).map(|n| self.shard_key(n)).collect();
        let mut all = Shard::default();
        for (key, object) in keys.iter().zip(self.fetch_many(&keys)?) {
            let Some((_, bytes)) = object else { continue };
            let shard: Shard = parse(&self.at, key, "not a landlord state shard", &bytes)?;
            all.notes.extend(shard.notes);
            all.counts.extend(shard.counts);
        }
        Ok(all)
    }

    /// Sets or removes `notes` and records `counts` (an empty count removes the tenant),
    /// each shard by a conditional read-modify-write.
    fn update_shards(
        &self,
        notes: &[(String, Option<Value>)],
        counts: &BTreeMap<String, BTreeMap<String, u64>>,
    ) -> Result<(), StateError> {
        let mut touched: BTreeSet<u32> = notes.iter().map(|(k, _)| shard_of(k)).collect();
        touched.extend(counts.keys().map(|t| shard_of(t)));
        let (at, client) = (&self.at, &self.client);
        for n in touched {
            let key = self.shard_key(n);
            self.until_written(&format!("`{key}`"), || {
                let current = self.call_on(1, fetch(client, at, &key))?;
                let (etag, mut shard) = match &current {
                    Some((etag, bytes)) => (
                        Some(etag.clone()),
                        parse::<Shard>(at, &key, "not a landlord state shard", bytes)?,
                    ),
                    None => (None, Shard::default()),
                };
                for (k, v) in notes.iter().filter(|(k, _)| shard_of(k) == n) {
                    match v {
                        Some(v) => shard.notes.insert(k.clone(), v.clone()),
                        None => shard.notes.remove(k),
                    };
                }
                for (t, c) in counts.iter().filter(|(t, _)| shard_of(t) == n) {
                    if c.is_empty() {
                        shard.counts.remove(t);
                    } else {
                        shard.counts.insert(t.clone(), c.clone());
                    }
                }
                let body = serde_json::to_vec(&shard).map_err(|e| Self::storage(at, e))?;
                self.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                Ok(self
                    .call_on(
                        1,
                        put_if(client, at, &key, Over::seen(etag.as_deref()), body),
                    )?
                    .is_some())
            })?;
        }
        Ok(())
    }

    /// Records the counts of the tenants changed since they were last counted.
    fn recount(&self) -> Result<(), StateError> {
        let scopes: Vec<String> = {
            let d = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
            d.1.iter().cloned().collect()
        };
        if scopes.is_empty() {
            return Ok(());
        }
        let mut counts = BTreeMap::new();
        for scope in &scopes {
            counts.insert(scope.clone(), self.counts_of(scope)?);
        }
        self.update_shards(&[], &counts)?;
        let mut d = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        for s in &scopes {
            d.1.remove(s);
        }
        Ok(())
    }

    /// Records per type of one tenant in the working copy.
    fn counts_of(&self, scope: &str) -> Result<BTreeMap<String, u64>, StateError> {
        self.inner.count_types(&format!("{scope}/"))
    }

    /// Every tenant with an object.
    fn listed_scopes(&self) -> Result<Vec<String>, StateError> {
        let (at, client) = (&self.at, &self.client);
        let prefix = format!("{}/tenants/", at.key);
        Ok(self
            .call_on(1, list(client, at, &prefix))?
            .iter()
            .filter_map(|k| k.strip_prefix(&prefix)?.strip_suffix(".json"))
            .map(str::to_string)
            .collect())
    }

    /// Loads the objects of `scopes` not loaded yet into the working copy.
    fn ensure(&self, scopes: &[String]) -> Result<(), StateError> {
        let missing: Vec<String> = {
            let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
            scopes
                .iter()
                .filter(|s| !loaded.contains_key(*s))
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let at = &self.at;
        let keys: Vec<String> = missing.iter().map(|s| self.tenant_key(s)).collect();
        let fetched: Vec<(String, Option<(String, Vec<u8>)>)> = missing
            .iter()
            .cloned()
            .zip(self.fetch_many(&keys)?)
            .collect();
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        for (scope, object) in fetched {
            let etag = match object {
                Some((etag, bytes)) => {
                    let part: Export = parse(
                        at,
                        &self.tenant_key(&scope),
                        "not a landlord tenant state",
                        &bytes,
                    )?;
                    self.inner.add_part(&part)?;
                    Some(etag)
                }
                None => None,
            };
            loaded.insert(scope, etag);
        }
        Ok(())
    }

    /// Loads every tenant.
    fn ensure_all(&self) -> Result<(), StateError> {
        if self.all_loaded.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.ensure(&self.listed_scopes()?)?;
        self.all_loaded.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Uploads the objects of `scopes` from the working copy, each only over the version
    /// this run read (`overwrite`: whatever is there).
    fn upload_scopes(&self, scopes: &[String], overwrite: bool) -> Result<(), StateError> {
        let mut bodies = Vec::new();
        for scope in scopes {
            let body = serde_json::to_vec(&self.inner.part(scope)?)
                .map_err(|e| Self::storage(&self.at, e))?;
            self.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            bodies.push((scope.clone(), self.tenant_key(scope), body));
        }
        let (at, client) = (&self.at, &self.client);
        let etags: BTreeMap<String, Option<String>> = self
            .loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let writes = bodies
            .into_iter()
            .map(|(scope, key, body)| -> BoxFuture<'_, _> {
                let etag = etags.get(&scope).cloned().flatten();
                Box::pin(async move {
                    let over = match overwrite {
                        true => Over::Anything,
                        false => Over::seen(etag.as_deref()),
                    };
                    match put_if(client, at, &key, over, body).await? {
                        Some(etag) => Ok((scope, Some(etag))),
                        None => Err(S3Store::storage(at, format!(
                            "the state of tenant `{scope}` was changed by another process since this run read it; nothing was overwritten — run again"
                        ))),
                    }
                })
            })
            .collect();
        let written = self.all(writes)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        for (scope, etag) in written {
            loaded.insert(scope, etag);
        }
        Ok(())
    }

    /// Makes intents durable as one object before their provider calls.
    fn put_intents(&self, intents: &[Intent]) -> Result<(), StateError> {
        let Some(first) = intents.first() else {
            return Ok(());
        };
        let tokens: Vec<&str> = intents.iter().map(|i| i.token.as_str()).collect();
        let rows = self.inner.sealed_intents(&tokens)?;
        self.put_intent_object(rows, &first.token)
    }

    /// Writes one intent object (the data keys that seal them go along: a tenant's first
    /// key may not be uploaded yet).
    fn put_intent_object(&self, rows: Vec<Value>, name: &str) -> Result<(), StateError> {
        let (scopes, tokens) = scopes_and_tokens(&rows);
        let batch = IntentBatch {
            keys: self
                .inner
                .wrapped_keys(&scopes.iter().map(String::as_str).collect::<Vec<_>>())?,
            intents: rows,
        };
        let body = serde_json::to_vec(&batch).map_err(|e| Self::storage(&self.at, e))?;
        self.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        let key = format!("{}{name}", self.intent_prefix());
        let (at, client) = (&self.at, &self.client);
        self.call_on(1, put_if(client, at, &key, Over::Anything, body))?;
        self.intent_objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (scopes, tokens));
        Ok(())
    }

    /// Intent objects other runs left (killed before their outcome was uploaded), read
    /// into the working copy once; ours are there already.
    fn adopt_intent_objects(&self) -> Result<(), StateError> {
        let (at, client) = (&self.at, &self.client);
        let keys = self.call_on(1, list(client, at, &self.intent_prefix()))?;
        let new: Vec<String> = {
            let known = self
                .intent_objects
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            keys.into_iter()
                .filter(|k| !known.contains_key(k))
                .collect()
        };
        let mut batches = Vec::new();
        let objects = self.fetch_many(&new)?;
        for (key, object) in new.into_iter().zip(objects) {
            let Some((_, bytes)) = object else { continue };
            let batch: IntentBatch = parse(at, &key, "not an intent batch", &bytes)?;
            batches.push((key, batch));
        }
        // Records first, every batch's tenants at once: reconciling an intent reads its
        // tenant's record.
        let tenants: BTreeSet<String> = batches
            .iter()
            .flat_map(|(_, b)| scopes_and_tokens(&b.intents).0)
            .collect();
        self.ensure(&tenants.into_iter().collect::<Vec<_>>())?;
        for (key, batch) in batches {
            let (scopes, tokens) = scopes_and_tokens(&batch.intents);
            self.inner.restore_keys(&batch.keys)?;
            self.inner.restore_intents(&batch.intents)?;
            self.intent_objects
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, (scopes, tokens));
        }
        Ok(())
    }

    /// Uploads the changed tenants if `force` or the last upload is old enough, then
    /// removes the intent objects whose outcomes they now hold.
    fn flush(&self, force: bool) -> Result<(), StateError> {
        let due = force
            || self
                .uploaded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .elapsed()
                >= UPLOAD_EVERY;
        if !due {
            return Ok(());
        }
        let scopes: Vec<String> = {
            let mut d = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut d.0).into_iter().collect()
        };
        if !scopes.is_empty() {
            if let Err(e) = self.upload_scopes(&scopes, false) {
                self.dirty
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .0
                    .extend(scopes);
                return Err(e);
            }
            *self.uploaded.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        }
        // An intent object is done once every outcome it announced is in an uploaded tenant.
        let pending: BTreeSet<String> = self
            .dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone();
        let done: Vec<String> = {
            let mut objects = self
                .intent_objects
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let done: Vec<String> = objects
                .iter()
                .filter(|(_, (scopes, tokens))| {
                    tokens.is_empty() && scopes.iter().all(|s| !pending.contains(s))
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in &done {
                objects.remove(k);
            }
            done
        };
        if !done.is_empty() {
            let (at, client) = (&self.at, &self.client);
            self.call_on(1, delete_all(client, at, &done));
        }
        Ok(())
    }

    /// Marks `scopes` changed; `tokens` finished.
    fn changed<'a>(&self, scopes: impl IntoIterator<Item = &'a str>, tokens: &[String]) {
        let mut d = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        for s in scopes {
            d.0.insert(s.to_string());
            d.1.insert(s.to_string());
        }
        drop(d);
        let mut objects = self
            .intent_objects
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (_, pending) in objects.values_mut() {
            for t in tokens {
                pending.remove(t);
            }
        }
    }

    /// Runs a write on the working copy for `scopes`, then makes it durable in S3.
    fn durable<T>(
        &self,
        scopes: &[&str],
        f: impl FnOnce(&SledStore) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let owned: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        self.ensure(&owned)?;
        let out = f(&self.inner)?;
        self.changed(scopes.iter().copied(), &[]);
        self.flush(true)?;
        Ok(out)
    }

    /// The holder named in a lock object, if it is there and live (`Ok(None)`: free, or
    /// taken over because its holder is gone).
    fn live_holder(&self, scope: &str) -> Result<Option<LockInfo>, StateError> {
        let (at, client) = (&self.at, &self.client);
        let key = Self::lock_key(at, scope);
        let object = self.call_on(1, fetch(client, at, &key))?;
        Ok(self.live_or_removed(&key, object))
    }

    /// The holder named by the lock object at `key`, if it is live; a stale or
    /// unreadable object is removed (only if it is still that object).
    fn live_or_removed(&self, key: &str, object: Option<(String, Vec<u8>)>) -> Option<LockInfo> {
        let (etag, bytes) = object?;
        let info = serde_json::from_slice::<LockInfo>(&bytes).ok();
        let stale = match &info {
            None => true,
            Some(h) => {
                h.expiry < super::now_rfc3339()
                    || (h.host == self.holder.host
                        && h.pid != self.holder.pid
                        && !super::holder::is_live(h))
            }
        };
        if stale {
            let _ = self.call_on(1, delete_lock(&self.client, &self.at, key, etag));
            return None;
        }
        info
    }

    /// Creates the lock objects of `infos` at once; which were created (the others
    /// exist).
    fn create_locks(&self, infos: &[&LockInfo]) -> Result<Vec<bool>, StateError> {
        let (at, client) = (&self.at, &self.client);
        let made = self.all(
            infos
                .iter()
                .map(|info| -> BoxFuture<'_, _> {
                    let body = serde_json::to_vec(info).unwrap_or_default();
                    let key = Self::lock_key(at, &info.scope);
                    Box::pin(async move { put_if(client, at, &key, Over::Nothing, body).await })
                })
                .collect(),
        )?;
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        Ok(infos
            .iter()
            .zip(made)
            .map(|(info, etag)| match etag {
                Some(etag) => {
                    held.insert(info.scope.clone(), etag);
                    true
                }
                None => false,
            })
            .collect())
    }

    /// Removes our lock objects of `scopes`, each only if it is still ours.
    fn release_many(&self, scopes: &[String]) -> Result<(), StateError> {
        let ours: Vec<(String, String)> = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            scopes
                .iter()
                .filter_map(|s| {
                    held.remove(s)
                        .map(|etag| (Self::lock_key(&self.at, s), etag))
                })
                .collect()
        };
        let (at, client) = (&self.at, &self.client);
        self.all(
            ours.into_iter()
                .map(|(key, etag)| -> BoxFuture<'_, _> {
                    Box::pin(async move { delete_lock(client, at, &key, etag).await })
                })
                .collect(),
        )?;
        Ok(())
    }

    /// Every lock object: key, ETag and the holder it names (unreadable ones left out).
    fn lock_objects(&self) -> Result<Vec<(String, String, LockInfo)>, StateError> {
        let keys = self.call_on(
            1,
            list(&self.client, &self.at, &Self::lock_prefix(&self.at)),
        )?;
        Ok(keys
            .iter()
            .zip(self.fetch_many(&keys)?)
            .filter_map(|(key, object)| {
                let (etag, bytes) = object?;
                let info = serde_json::from_slice::<LockInfo>(&bytes).ok()?;
                Some((key.clone(), etag, info))
            })
            .collect())
    }

    /// A live holder of another tenant's lock object, for a fleet-wide run.
    fn live_tenant_holder(&self) -> Result<Option<LockInfo>, StateError> {
        let prefix = Self::lock_prefix(&self.at);
        let keys: Vec<String> = self
            .call_on(1, list(&self.client, &self.at, &prefix))?
            .into_iter()
            .filter(|key| {
                key.strip_prefix(&prefix)
                    .and_then(|k| k.strip_suffix(".lock"))
                    .is_some_and(|scope| scope != "workspace")
            })
            .collect();
        let objects = self.fetch_many(&keys)?;
        Ok(keys
            .iter()
            .zip(objects)
            .find_map(|(key, object)| self.live_or_removed(key, object)))
    }

    /// The error of a run that waited `start.elapsed()` for `holder`.
    fn locked(&self, holder: LockInfo, start: Instant) -> StateError {
        // A live holder on this host is shown as such; one elsewhere cannot be checked,
        // so unlocking is named as the way out if it is gone.
        let live_here = holder.host == self.holder.host && super::holder::is_live(&holder);
        let on = if holder.scope == "workspace" {
            String::new()
        } else {
            format!(" on tenant `{}`", holder.scope)
        };
        StateError::Locked {
            holder: format!("{holder}{on}"),
            waited: start.elapsed(),
            advice: if live_here {
                String::new()
            } else {
                UNLOCK_ADVICE.into()
            },
        }
    }
}

impl Drop for S3Store {
    fn drop(&mut self) {
        // Outcomes not uploaded yet: their intents are durable, so a failure here only
        // means the next run reconciles them.
        let _ = self.flush(true);
        let counted = self.dirty.lock().map(|d| d.1.is_empty()).unwrap_or(true);
        if !counted && self.recount().is_ok() {
            let _ = self.update_index();
        }
        let held: Vec<String> = self
            .held
            .lock()
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default();
        let _ = self.release_many(&held);
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

impl StateStore for S3Store {
    fn lineage(&self) -> Result<String, StateError> {
        self.inner.lineage()
    }
    fn holds_sealed(&self) -> Result<bool, StateError> {
        if self.sample_key.is_some() {
            return Ok(true);
        }
        for scope in self.listed_scopes()? {
            self.ensure(std::slice::from_ref(&scope))?;
            if self.inner.holds_sealed()? {
                return Ok(true);
            }
        }
        Ok(false)
    }
    fn check_key(&self) -> Result<(), StateError> {
        if let Some((scope, wrapped)) = &self.sample_key {
            let keys = BTreeMap::from([(scope.clone(), wrapped.clone())]);
            return self.inner.restore_keys(&keys).map_err(|_| {
                StateError::Key(format!(
                    "the state in s3://{}/{} cannot be read with this master key: use the key it was written with",
                    self.at.bucket, self.at.key
                ))
            });
        }
        if self.holds_sealed()? {
            self.inner.check_key()?;
        }
        Ok(())
    }
    fn resources_in(&self, scopes: &[String]) -> Result<Vec<ResourceRecord>, StateError> {
        self.ensure(scopes)?;
        self.inner.resources_in(scopes)
    }
    fn records_read(&self) -> u64 {
        self.inner.records_read()
    }
    fn exclusive(&self) -> bool {
        false
    }
    fn traffic(&self) -> Option<(u64, u64)> {
        Some((
            self.requests.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        ))
    }
    fn serial(&self) -> Result<u64, StateError> {
        self.inner.serial()
    }
    fn resources(&self) -> Result<Vec<ResourceRecord>, StateError> {
        self.ensure_all()?;
        self.inner.resources()
    }
    fn resource(&self, addr: &ResourceAddr) -> Result<Option<ResourceRecord>, StateError> {
        self.ensure(&[addr.scope.to_string()])?;
        self.inner.resource(addr)
    }
    fn begin_many(&self, intents: &[Intent]) -> Result<(), StateError> {
        let scopes: Vec<String> = intents
            .iter()
            .map(|i| i.address.scope.to_string())
            .collect();
        self.ensure(&scopes)?;
        self.inner.begin_many(intents)?;
        self.put_intents(intents)
    }
    fn commit_many(&self, outcomes: Vec<(String, Outcome)>) -> Result<u64, StateError> {
        let scopes: Vec<String> = outcomes
            .iter()
            .filter_map(|(_, o)| match o {
                Outcome::Put(r) => Some(r.address.scope.to_string()),
                Outcome::Remove(a) => Some(a.scope.to_string()),
                Outcome::Nothing => None,
            })
            .collect();
        self.ensure(&scopes)?;
        let tokens: Vec<String> = outcomes.iter().map(|(t, _)| t.clone()).collect();
        let serial = self.inner.commit_many(outcomes)?;
        self.changed(scopes.iter().map(String::as_str), &tokens);
        self.flush(false)?;
        Ok(serial)
    }
    fn intents(&self) -> Result<Vec<Intent>, StateError> {
        self.adopt_intent_objects()?;
        self.inner.intents()
    }
    fn put(&self, record: ResourceRecord) -> Result<u64, StateError> {
        let scope = record.address.scope.to_string();
        self.durable(&[&scope], |s| s.put(record))
    }
    fn forget(&self, addr: &ResourceAddr) -> Result<u64, StateError> {
        self.durable(&[addr.scope.as_str()], |s| s.forget(addr))
    }
    fn rename(&self, from: &ResourceAddr, record: ResourceRecord) -> Result<u64, StateError> {
        let to = record.address.scope.to_string();
        self.durable(&[from.scope.as_str(), &to], |s| s.rename(from, record))
    }
    fn lock(&self, info: &LockInfo) -> Result<(), StateError> {
        self.lock_many(std::slice::from_ref(info))
    }
    /// Lock objects are created many at once, in tenant order: a run keeps the longest
    /// prefix it got and waits for the holder of the next. Then the other side of the
    /// fleet-wide lock is checked: a tenant-limited run backs off from a live workspace
    /// lock, a fleet-wide run from live tenant locks.
    fn lock_many(&self, infos: &[LockInfo]) -> Result<(), StateError> {
        let mut want: Vec<&LockInfo> = {
            let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            infos
                .iter()
                .filter(|i| !held.contains_key(&i.scope))
                .collect()
        };
        want.sort_by(|a, b| a.scope.cmp(&b.scope));
        want.dedup_by(|a, b| a.scope == b.scope);
        if want.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let wait = |holder: LockInfo| -> Result<(), StateError> {
            if start.elapsed() >= self.lock_timeout {
                return Err(self.locked(holder, start));
            }
            std::thread::sleep(Duration::from_millis(250));
            Ok(())
        };
        loop {
            let mut todo: Vec<&LockInfo> = {
                let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
                want.iter()
                    .copied()
                    .filter(|i| !held.contains_key(&i.scope))
                    .collect()
            };
            while !todo.is_empty() {
                let got = self.create_locks(&todo)?;
                let taken = got.iter().position(|ok| !ok).unwrap_or(got.len());
                let past: Vec<String> = todo
                    .iter()
                    .zip(&got)
                    .skip(taken)
                    .filter(|(_, ok)| **ok)
                    .map(|(i, _)| i.scope.clone())
                    .collect();
                self.release_many(&past)?;
                todo.drain(..taken);
                if let Some(next) = todo.first() {
                    // A stale object is removed by the look, and taken on the next try.
                    if let Some(h) = self.live_holder(&next.scope)? {
                        wait(h)?;
                    }
                }
            }
            let fleet_wide = want.iter().any(|i| i.scope == "workspace");
            let blocker = if fleet_wide {
                self.live_tenant_holder()?
            } else {
                self.live_holder("workspace")?
            };
            let Some(h) = blocker else {
                return Ok(());
            };
            let mine: Vec<String> = want.iter().map(|i| i.scope.clone()).collect();
            self.release_many(&mine)?;
            wait(h)?;
        }
    }
    fn unlock(&self, scope: &str) -> Result<(), StateError> {
        self.release_many(&[scope.to_string()])
    }
    fn unlock_many(&self, scopes: &[String]) -> Result<(), StateError> {
        self.release_many(scopes)
    }
    fn force_unlock(&self, scope: Option<&str>) -> Result<Vec<LockInfo>, StateError> {
        let (at, client) = (&self.at, &self.client);
        let mut removed = Vec::new();
        for (key, etag, info) in self.lock_objects()? {
            if scope.is_none_or(|s| s == info.scope) {
                self.call_on(1, delete_lock(client, at, &key, etag))?;
                removed.push(info);
            }
        }
        Ok(removed)
    }
    fn locks(&self) -> Result<Vec<LockInfo>, StateError> {
        Ok(self
            .lock_objects()?
            .into_iter()
            .map(|(_, _, info)| info)
            .collect())
    }
    fn record_run(&self, run: &RunRecord) -> Result<(), StateError> {
        // History lives in its own objects, never in the working copy.
        self.flush(true)?;
        self.put_history(run)?;
        self.recount()?;
        self.update_index()
    }
    fn history(&self) -> Result<Vec<RunRecord>, StateError> {
        let (at, client) = (&self.at, &self.client);
        let keys = self.call_on(1, list(client, at, &self.history_prefix()))?;
        let mut out = Vec::new();
        for (key, object) in keys.iter().zip(self.fetch_many(&keys)?) {
            let Some((_, bytes)) = object else { continue };
            out.push(parse::<RunRecord>(at, key, "not a history row", &bytes)?);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
    fn addresses(&self, scopes: &[String]) -> Result<Vec<ResourceAddr>, StateError> {
        if scopes.is_empty() {
            self.ensure_all()?;
        } else {
            self.ensure(scopes)?;
        }
        self.inner.addresses(scopes)
    }
    fn versions(&self, scopes: &[String]) -> Result<BTreeMap<String, u64>, StateError> {
        self.ensure(scopes)?;
        self.inner.versions(scopes)
    }
    fn scopes(&self) -> Result<BTreeSet<String>, StateError> {
        let mut out: BTreeSet<String> = self.read_shards()?.counts.into_keys().collect();
        out.extend(self.inner.scopes()?);
        Ok(out)
    }
    fn count_by_type(&self) -> Result<BTreeMap<String, u64>, StateError> {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for counts in self.read_shards()?.counts.values() {
            for (t, n) in counts {
                *out.entry(t.clone()).or_default() += n;
            }
        }
        Ok(out)
    }
    fn notes(&self, prefix: &str) -> Result<Vec<(String, Value)>, StateError> {
        Ok(self
            .read_shards()?
            .notes
            .into_iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .collect())
    }
    fn set_notes(&self, notes: Vec<(String, Option<Value>)>) -> Result<(), StateError> {
        // Notes live in the shard objects, never in the working copy.
        self.update_shards(&notes, &BTreeMap::new())
    }
    fn audit(&self) -> Result<Vec<AuditEvent>, StateError> {
        self.ensure_all()?;
        self.inner.audit()
    }
    fn digest(&self, record: &ResourceRecord) -> String {
        self.inner.digest(record)
    }
    fn export(&self) -> Result<Export, StateError> {
        self.ensure_all()?;
        self.adopt_intent_objects()?;
        let mut ex = self.inner.export()?;
        ex.history = self.history()?;
        ex.notes = self.read_shards()?.notes;
        if let Some((_, index)) = self.read_index()? {
            ex.serial = ex.serial.max(index.serial);
        }
        Ok(ex)
    }
    fn import(&self, export: &Export) -> Result<(), StateError> {
        self.inner.import(export)?;
        self.replace_with(export)?;
        Ok(())
    }
}

/// What to do about a lock object whose holder may be gone (on another host it cannot
/// be checked).
const UNLOCK_ADVICE: &str = ". If that run is gone, run `landlord state unlock`";
