//! Sealing of sensitive attributes, shared by every backend: each scope (tenant,
//! `_shared`) has a data key, wrapped by the master key and kept by the backend; a
//! record's sensitive attributes are encrypted with it, bound to the record's address.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::crypto::{self, Key};
use super::{Intent, ResourceRecord, StateError};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

/// Where a backend keeps the wrapped data keys.
pub(super) trait KeyRing {
    /// The wrapped data key of `scope`, if there is one.
    fn wrapped(&self, scope: &str) -> Result<Option<Vec<u8>>, StateError>;
    /// Stores a new wrapped key for `scope` unless one is there already; returns the
    /// stored one (another process may have stored its own first).
    fn add_wrapped(&self, scope: &str, wrapped: Vec<u8>) -> Result<Vec<u8>, StateError>;
}

/// On-disk form of a resource record or intent: sensitive attributes sealed.
#[derive(Serialize, Deserialize)]
struct Sealed<T> {
    #[serde(flatten)]
    inner: T,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

/// A record type whose sensitive attributes are sealed.
pub(super) trait Sealable: Serialize + for<'de> Deserialize<'de> {
    /// Its address.
    fn address(&self) -> &ResourceAddr;
    /// The attributes that may hold secrets.
    fn attrs(&mut self) -> &mut Attrs;
    /// The names of the sensitive ones.
    fn sensitive(&self) -> &[String];
}

impl Sealable for ResourceRecord {
    fn address(&self) -> &ResourceAddr {
        &self.address
    }
    fn attrs(&mut self) -> &mut Attrs {
        &mut self.attributes
    }
    fn sensitive(&self) -> &[String] {
        &self.sensitive
    }
}

impl Sealable for Intent {
    fn address(&self) -> &ResourceAddr {
        &self.address
    }
    fn attrs(&mut self) -> &mut Attrs {
        &mut self.config
    }
    fn sensitive(&self) -> &[String] {
        &self.sensitive
    }
}

/// The master key, the data keys unwrapped so far, and a count of records unsealed.
pub(super) struct Sealer {
    /// Where the state lives, for errors.
    path: String,
    master: Key,
    cache: Mutex<HashMap<String, Key>>,
    reads: AtomicU64,
}

impl Sealer {
    /// A sealer for the state at `path` (named in errors).
    pub fn new(path: String, master: Key) -> Sealer {
        Sealer {
            path,
            master,
            cache: Mutex::new(HashMap::new()),
            reads: AtomicU64::new(0),
        }
    }

    /// The master key.
    pub fn master(&self) -> &Key {
        &self.master
    }

    /// How many records were unsealed so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Forgets the unwrapped data keys (after the wrapped ones were replaced).
    pub fn forget_keys(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn corrupt(&self, message: String) -> StateError {
        StateError::Corrupt {
            path: self.path.clone(),
            message,
        }
    }

    /// The data key of `scope`, made (and stored in `ring`) when it has none.
    pub fn data_key(&self, ring: &dyn KeyRing, scope: &str) -> Result<Key, StateError> {
        if let Some(k) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(scope)
        {
            return Ok(k.clone());
        }
        let wrapped = match ring.wrapped(scope)? {
            Some(w) => w,
            None => ring.add_wrapped(scope, self.master.wrap(&Key::generate(), scope))?,
        };
        let key = self.master.unwrap_key(&wrapped, scope).ok_or_else(|| {
            StateError::Key(format!(
                "cannot unwrap the data key of `{scope}`: the master key ({} or the key file) is not the one this state was written with",
                crypto::MASTER_KEY_ENV
            ))
        })?;
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(scope.to_string(), key.clone());
        Ok(key)
    }

    /// Whether the data key of `scope` is unwrapped already.
    pub fn has_key(&self, scope: &str) -> bool {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(scope)
    }

    /// Unwraps data keys read in bulk, so unsealing their records asks the backend nothing.
    pub fn preload(&self, wrapped: Vec<(String, Vec<u8>)>) -> Result<(), StateError> {
        struct Given(std::collections::BTreeMap<String, Vec<u8>>);
        impl KeyRing for Given {
            fn wrapped(&self, scope: &str) -> Result<Option<Vec<u8>>, StateError> {
                Ok(self.0.get(scope).cloned())
            }
            fn add_wrapped(&self, _: &str, wrapped: Vec<u8>) -> Result<Vec<u8>, StateError> {
                Ok(wrapped)
            }
        }
        let ring = Given(wrapped.into_iter().collect());
        for scope in ring.0.keys() {
            self.data_key(&ring, scope)?;
        }
        Ok(())
    }

    /// The stored form of `inner`: JSON with its sensitive attributes sealed.
    pub fn seal<T: Sealable>(
        &self,
        ring: &dyn KeyRing,
        mut inner: T,
    ) -> Result<Vec<u8>, StateError> {
        let mut secret_map = Attrs::new();
        let sensitive = inner.sensitive().to_vec();
        let a = inner.attrs();
        for k in &sensitive {
            if let Some(v) = a.remove(k) {
                secret_map.insert(k.clone(), v);
            }
        }
        let secret = if secret_map.is_empty() {
            None
        } else {
            let addr = inner.address();
            let dk = self.data_key(ring, addr.scope.as_str())?;
            let plain = serde_json::to_vec(&secret_map).map_err(|e| self.corrupt(e.to_string()))?;
            Some(crypto::to_text(
                &dk.seal(&plain, addr.to_string().as_bytes()),
            ))
        };
        serde_json::to_vec(&Sealed { inner, secret }).map_err(|e| self.corrupt(e.to_string()))
    }

    /// A stored record with its sensitive attributes opened.
    pub fn unseal<T: Sealable>(&self, ring: &dyn KeyRing, bytes: &[u8]) -> Result<T, StateError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let s: Sealed<T> = serde_json::from_slice(bytes)
            .map_err(|e| self.corrupt(format!("undecodable record: {e}")))?;
        let mut inner = s.inner;
        if let Some(secret) = s.secret {
            let a = inner.address().clone();
            let dk = self.data_key(ring, a.scope.as_str())?;
            let sealed = crypto::from_text(&secret)
                .ok_or_else(|| self.corrupt(format!("`{a}`: secret is not base64")))?;
            let plain = dk
                .open(&sealed, a.to_string().as_bytes())
                .ok_or_else(|| StateError::Key(format!("cannot decrypt the secrets of `{a}`")))?;
            let map: Attrs =
                serde_json::from_slice(&plain).map_err(|e| self.corrupt(format!("`{a}`: {e}")))?;
            inner.attrs().extend(map);
        }
        Ok(inner)
    }

    /// Checks that a wrapped key of an import opens with this master key; its bytes.
    pub fn check_wrapped(&self, scope: &str, text: &str) -> Result<Vec<u8>, StateError> {
        let bytes = crypto::from_text(text)
            .ok_or_else(|| StateError::Import(format!("data key of `{scope}` is not base64")))?;
        self.master.unwrap_key(&bytes, scope).ok_or_else(|| {
            StateError::Import(format!(
                "data key of `{scope}` cannot be unwrapped with this master key"
            ))
        })?;
        Ok(bytes)
    }

    /// The keyed digest of a record, as audit events carry it.
    pub fn digest(&self, record: &ResourceRecord) -> String {
        self.master.mac(
            "landlord audit record",
            &super::audit::canonical_bytes(record),
        )
    }
}
