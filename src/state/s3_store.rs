//! The S3 backend, for teams that share one state: the whole state is one object
//! (`state export` format) written with conditional requests, and a lock object next to it
//! (`<key>.lock`, created with `If-None-Match: *`) admits one run at a time. A run works
//! on a local sled copy. Write-ahead intents are made durable before each provider call
//! as small objects (`<key>.intents/<token>`); outcomes are uploaded with the whole state
//! at most once a second and at the end of the run, with `If-Match` on the last ETag seen
//! so nothing written by another process is ever overwritten. Intent objects are removed
//! once a state upload holds them; a run that finds some left behind (a crash before the
//! upload) merges them and reconciles them like any interrupted intent. A lock left by a
//! process that died on the same host, or past its expiry, is taken over.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use super::audit::AuditEvent;
use super::crypto::Key;
use super::sdk::Rt;
use super::sled_store::SledStore;
use super::{Export, Intent, LockInfo, Outcome, ResourceRecord, RunRecord, StateError, StateStore};
use crate::addr::ResourceAddr;

/// Where the state lives in S3.
#[derive(Debug, Clone)]
pub struct S3Location {
    /// Bucket.
    pub bucket: String,
    /// Object key of the state; the lock is `<key>.lock`.
    pub key: String,
    /// Region of the bucket (the SDK's default chain when `None`).
    pub region: Option<String>,
}

/// The S3-backed state store.
pub struct S3Store {
    inner: SledStore,
    work: PathBuf,
    /// The runtime S3 calls run on.
    rt: Rt,
    client: aws_sdk_s3::Client,
    at: S3Location,
    /// ETag of the state object as last read or written (`None`: no object yet).
    etag: Mutex<Option<String>>,
    /// ETag of our lock object.
    lock_etag: Option<String>,
    /// Intent objects written or found that the next state upload makes redundant.
    intent_objects: Mutex<Vec<String>>,
    /// When the state was last uploaded, and whether it changed since.
    uploaded: Mutex<(Instant, bool)>,
}

/// An intent object: sealed intents and the wrapped data keys that seal them.
#[derive(serde::Serialize, serde::Deserialize)]
struct IntentBatch {
    keys: std::collections::BTreeMap<String, String>,
    intents: Vec<serde_json::Value>,
}

/// How often outcomes are uploaded at most (intents are durable regardless).
const UPLOAD_EVERY: Duration = Duration::from_secs(1);

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

/// Removes the lock object, only if it is still the one with `etag`.
async fn release(
    client: &aws_sdk_s3::Client,
    at: &S3Location,
    etag: String,
) -> Result<(), StateError> {
    client
        .delete_object()
        .bucket(&at.bucket)
        .key(S3Store::lock_key(at))
        .if_match(etag)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| sdk_error(at, "remove the lock object", &e))
}

impl S3Store {
    fn storage(at: &S3Location, message: impl std::fmt::Display) -> StateError {
        StateError::Storage {
            path: format!("s3://{}/{}", at.bucket, at.key),
            message: message.to_string(),
        }
    }

    /// Runs an SDK call on this store's runtime.
    fn call_on<T: Send, F: std::future::Future<Output = T> + Send>(&self, f: F) -> T {
        self.rt.call(f)
    }

    /// Opens the state at `at`, waiting up to `timeout` for the lock; `work` is an empty
    /// local directory for the working copy.
    pub fn open(
        at: S3Location,
        work: &Path,
        master: Key,
        holder: &LockInfo,
        timeout: Duration,
    ) -> Result<S3Store, StateError> {
        let (rt, client) = Self::connect(&at)?;
        let lock_etag = Some(Self::take_lock(&rt, &client, &at, holder, timeout)?);
        let mut store = S3Store {
            inner: {
                let _ = std::fs::remove_dir_all(work);
                SledStore::open(work, master, holder, Duration::from_secs(10))?
            },
            work: work.to_path_buf(),
            rt,
            client,
            at,
            etag: Mutex::new(None),
            lock_etag,
            intent_objects: Mutex::new(Vec::new()),
            uploaded: Mutex::new((Instant::now(), false)),
        };
        store.download()?;
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

    /// Removes the lock object whoever holds it (`state unlock`, when that run is gone);
    /// returns the holder it named.
    pub fn break_lock(at: &S3Location) -> Result<Option<LockInfo>, StateError> {
        let (rt, client) = Self::connect(at)?;
        let key = Self::lock_key(at);
        rt.call(async {
            let Some((etag, bytes)) = fetch(&client, at, &key).await? else {
                return Ok(None);
            };
            release(&client, at, etag).await?;
            Ok(serde_json::from_slice::<LockInfo>(&bytes).ok())
        })
    }

    fn lock_key(at: &S3Location) -> String {
        format!("{}.lock", at.key)
    }

    fn intents_prefix(at: &S3Location) -> String {
        format!("{}.intents/", at.key)
    }

    /// Creates the lock object, or takes over a stale one; waits while a live run holds it.
    fn take_lock(
        rt: &Rt,
        client: &aws_sdk_s3::Client,
        at: &S3Location,
        holder: &LockInfo,
        timeout: Duration,
    ) -> Result<String, StateError> {
        let start = Instant::now();
        let body = serde_json::to_vec(holder).unwrap_or_default();
        let key = Self::lock_key(at);
        loop {
            let put = rt.call(async {
                client
                    .put_object()
                    .bucket(&at.bucket)
                    .key(&key)
                    .if_none_match("*")
                    .body(ByteStream::from(body.clone()))
                    .send()
                    .await
            });
            match put {
                Ok(o) => return Ok(o.e_tag().unwrap_or_default().to_string()),
                Err(e) if e.as_service_error().is_some_and(precondition_failed) => {}
                Err(e) => return Err(sdk_error(at, "create the lock object", &e)),
            }
            // Someone holds it: who, and are they still there?
            let Some((etag, bytes)) = rt.call(fetch(client, at, &key))? else {
                continue; // released in between
            };
            let info = serde_json::from_slice::<LockInfo>(&bytes).ok();
            let stale = match &info {
                None => true,
                Some(h) => {
                    h.expiry < super::now_rfc3339()
                        || (h.host == holder.host
                            && h.pid != holder.pid
                            && !super::holder::is_live(h))
                }
            };
            if stale {
                let taken = rt.call(async {
                    client
                        .put_object()
                        .bucket(&at.bucket)
                        .key(&key)
                        .if_match(&etag)
                        .body(ByteStream::from(body.clone()))
                        .send()
                        .await
                });
                if let Ok(o) = taken {
                    return Ok(o.e_tag().unwrap_or_default().to_string());
                }
                continue;
            }
            if start.elapsed() >= timeout {
                // A live holder on this host is shown as such; one elsewhere cannot be
                // checked, so unlocking is named as the way out if it is gone.
                let live_here = info
                    .as_ref()
                    .is_some_and(|h| h.host == holder.host && super::holder::is_live(h));
                return Err(StateError::Locked {
                    holder: info.map(|h| h.to_string()).unwrap_or_default(),
                    waited: start.elapsed(),
                    advice: if live_here {
                        String::new()
                    } else {
                        UNLOCK_ADVICE.into()
                    },
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Loads the state object into the working copy (nothing when there is none yet).
    fn download(&mut self) -> Result<(), StateError> {
        let (at, client) = (&self.at, &self.client);
        let Some((etag, bytes)) = self.call_on(fetch(client, at, &at.key))? else {
            // No state yet, but a first run may have been killed after writing intents.
            return self.merge_intent_objects();
        };
        let ex: Export = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            path: format!("s3://{}/{}", at.bucket, at.key),
            message: format!("the state object is not a landlord state: {e}"),
        })?;
        self.inner.import(&ex).map_err(|e| match e {
            StateError::Import(m) => StateError::Key(format!(
                "the state in s3://{}/{} cannot be read with this master key ({m}): use the key it was written with",
                at.bucket, at.key
            )),
            other => other,
        })?;
        *self.etag.lock().unwrap_or_else(|e| e.into_inner()) = Some(etag);
        self.merge_intent_objects()
    }

    /// Adds the intents of objects a crashed run left behind to the working copy.
    fn merge_intent_objects(&mut self) -> Result<(), StateError> {
        let (at, client) = (&self.at, &self.client);
        let prefix = Self::intents_prefix(at);
        let keys: Vec<String> = self.call_on(async {
            let mut keys = Vec::new();
            let mut pages = client
                .list_objects_v2()
                .bucket(&at.bucket)
                .prefix(&prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| sdk_error(at, "list intent objects", &e))?;
                keys.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_string)),
                );
            }
            Ok::<_, StateError>(keys)
        })?;
        for key in &keys {
            let Some((_, bytes)) = self.call_on(fetch(client, at, key))? else {
                continue;
            };
            let batch: IntentBatch =
                serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                    path: format!("s3://{}/{key}", at.bucket),
                    message: format!("not an intent batch: {e}"),
                })?;
            self.inner.restore_keys(&batch.keys)?;
            self.inner.restore_intents(&batch.intents)?;
        }
        self.intent_objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(keys);
        Ok(())
    }

    /// Makes intents durable as one small object before their provider calls.
    fn put_intents(&self, intents: &[Intent]) -> Result<(), StateError> {
        let Some(first) = intents.first() else {
            return Ok(());
        };
        let tokens: Vec<&str> = intents.iter().map(|i| i.token.as_str()).collect();
        // The data keys that seal them go along: a tenant's first key may not be uploaded yet.
        let mut scopes: Vec<&str> = intents.iter().map(|i| i.address.scope.as_str()).collect();
        scopes.sort();
        scopes.dedup();
        let batch = IntentBatch {
            keys: self.inner.wrapped_keys(&scopes)?,
            intents: self.inner.sealed_intents(&tokens)?,
        };
        let body = serde_json::to_vec(&batch).map_err(|e| Self::storage(&self.at, e))?;
        let key = format!("{}{}", Self::intents_prefix(&self.at), first.token);
        let (at, client) = (&self.at, &self.client);
        self.call_on(async {
            client
                .put_object()
                .bucket(&at.bucket)
                .key(&key)
                .body(ByteStream::from(body))
                .send()
                .await
        })
        .map_err(|e| sdk_error(at, "write an intent object", &e))?;
        self.intent_objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(key);
        Ok(())
    }

    /// Uploads the state if it changed and `force` or the last upload is old enough.
    fn flush(&self, force: bool) -> Result<(), StateError> {
        let (last, dirty) = *self.uploaded.lock().unwrap_or_else(|e| e.into_inner());
        if dirty && (force || last.elapsed() >= UPLOAD_EVERY) {
            self.upload()?;
        }
        Ok(())
    }

    /// Uploads the working copy, only over the object as we last saw it.
    fn upload(&self) -> Result<(), StateError> {
        let body =
            serde_json::to_vec(&self.inner.export()?).map_err(|e| Self::storage(&self.at, e))?;
        let mut etag = self.etag.lock().unwrap_or_else(|e| e.into_inner());
        let (at, client) = (&self.at, &self.client);
        let put = self.call_on(async {
            let req = client
                .put_object()
                .bucket(&at.bucket)
                .key(&at.key)
                .content_type("application/json")
                .body(ByteStream::from(body));
            match etag.as_deref() {
                Some(e) => req.if_match(e),
                None => req.if_none_match("*"),
            }
            .send()
            .await
        });
        match put {
            Ok(o) => {
                *etag = o.e_tag().map(str::to_string);
                *self.uploaded.lock().unwrap_or_else(|e| e.into_inner()) = (Instant::now(), false);
                // The uploaded state holds every intent: their objects are redundant now.
                let done: Vec<String> =
                    std::mem::take(&mut *self.intent_objects.lock().unwrap_or_else(|e| e.into_inner()));
                // One DeleteObjects call per 1,000 keys; a leftover is only reconciled again.
                for chunk in done.chunks(1000) {
                    let objects: Vec<ObjectIdentifier> = chunk
                        .iter()
                        .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
                        .collect();
                    let Ok(delete) = Delete::builder().set_objects(Some(objects)).quiet(true).build()
                    else {
                        continue;
                    };
                    let _ = self.call_on(async {
                        client
                            .delete_objects()
                            .bucket(&at.bucket)
                            .delete(delete)
                            .send()
                            .await
                    });
                }
                Ok(())
            }
            Err(e) if e.as_service_error().is_some_and(precondition_failed) => Err(Self::storage(
                at,
                "the state object was changed by another process since this run read it; nothing was overwritten — run again",
            )),
            Err(e) => Err(sdk_error(at, "write the state object", &e)),
        }
    }

    /// Runs a write on the working copy, then makes it durable in S3.
    fn durable<T>(
        &self,
        f: impl FnOnce(&SledStore) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let out = f(&self.inner)?;
        self.changed();
        self.flush(true)?;
        Ok(out)
    }

    fn changed(&self) {
        self.uploaded.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
    }
}

/// What to do about a lock object whose holder may be gone (on another host it cannot
/// be checked).
const UNLOCK_ADVICE: &str = ". If that run is gone, run `landlord state unlock`";

impl Drop for S3Store {
    fn drop(&mut self) {
        // Outcomes not uploaded yet: their intents are durable, so a failure here only
        // means the next run reconciles them.
        let _ = self.flush(true);
        if let Some(etag) = self.lock_etag.take() {
            let _ = self.call_on(release(&self.client, &self.at, etag));
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

impl StateStore for S3Store {
    fn lineage(&self) -> Result<String, StateError> {
        self.inner.lineage()
    }
    fn holds_sealed(&self) -> Result<bool, StateError> {
        self.inner.holds_sealed()
    }
    fn check_key(&self) -> Result<(), StateError> {
        self.inner.check_key()
    }
    fn resources_in(&self, scopes: &[String]) -> Result<Vec<ResourceRecord>, StateError> {
        self.inner.resources_in(scopes)
    }
    fn records_read(&self) -> u64 {
        self.inner.records_read()
    }
    fn serial(&self) -> Result<u64, StateError> {
        self.inner.serial()
    }
    fn resources(&self) -> Result<Vec<ResourceRecord>, StateError> {
        self.inner.resources()
    }
    fn resource(&self, addr: &ResourceAddr) -> Result<Option<ResourceRecord>, StateError> {
        self.inner.resource(addr)
    }
    fn begin_many(&self, intents: &[Intent]) -> Result<(), StateError> {
        self.inner.begin_many(intents)?;
        self.changed();
        self.put_intents(intents)
    }
    fn commit_many(&self, outcomes: Vec<(String, Outcome)>) -> Result<u64, StateError> {
        let serial = self.inner.commit_many(outcomes)?;
        self.changed();
        self.flush(false)?;
        Ok(serial)
    }
    fn intents(&self) -> Result<Vec<Intent>, StateError> {
        self.inner.intents()
    }
    fn put(&self, record: ResourceRecord) -> Result<u64, StateError> {
        self.durable(|s| s.put(record))
    }
    fn forget(&self, addr: &ResourceAddr) -> Result<u64, StateError> {
        self.durable(|s| s.forget(addr))
    }
    fn rename(&self, from: &ResourceAddr, record: ResourceRecord) -> Result<u64, StateError> {
        self.durable(|s| s.rename(from, record))
    }
    // The lock object admits one run at a time: per-tenant locks live in that run only.
    fn lock(&self, info: &LockInfo) -> Result<(), StateError> {
        self.inner.lock(info)
    }
    fn unlock(&self, scope: &str) -> Result<(), StateError> {
        self.inner.unlock(scope)
    }
    fn force_unlock(&self, scope: Option<&str>) -> Result<Vec<LockInfo>, StateError> {
        self.inner.force_unlock(scope)
    }
    fn locks(&self) -> Result<Vec<LockInfo>, StateError> {
        self.inner.locks()
    }
    fn record_run(&self, run: &RunRecord) -> Result<(), StateError> {
        self.durable(|s| s.record_run(run))
    }
    fn history(&self) -> Result<Vec<RunRecord>, StateError> {
        self.inner.history()
    }
    fn versions(
        &self,
        scopes: &[String],
    ) -> Result<std::collections::BTreeMap<String, u64>, StateError> {
        self.inner.versions(scopes)
    }
    fn scopes(&self) -> Result<std::collections::BTreeSet<String>, StateError> {
        self.inner.scopes()
    }
    fn count_by_type(&self) -> Result<std::collections::BTreeMap<String, u64>, StateError> {
        self.inner.count_by_type()
    }
    fn notes(&self, prefix: &str) -> Result<Vec<(String, serde_json::Value)>, StateError> {
        self.inner.notes(prefix)
    }
    fn set_notes(&self, notes: Vec<(String, Option<serde_json::Value>)>) -> Result<(), StateError> {
        self.durable(|s| s.set_notes(notes))
    }
    fn audit(&self) -> Result<Vec<AuditEvent>, StateError> {
        self.inner.audit()
    }
    fn digest(&self, record: &ResourceRecord) -> String {
        self.inner.digest(record)
    }
    fn export(&self) -> Result<Export, StateError> {
        self.inner.export()
    }
    fn import(&self, export: &Export) -> Result<(), StateError> {
        self.durable(|s| s.import(export))
    }
}
