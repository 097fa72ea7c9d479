//! A call-recording in-memory provider for engine tests: type `fake_item`
//! {value → uid}. It batches applies and reads, and can be told to fail.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;

use super::*;

/// What the fake has seen and holds.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Live objects by address.
    pub objects: BTreeMap<String, Attrs>,
    /// Size of every `apply` call.
    pub apply_batches: Vec<usize>,
    /// Size of every `read_many` call.
    pub read_batches: Vec<usize>,
    /// Deleted addresses in order.
    pub deletes: Vec<String>,
    /// Size of every `delete_many` call.
    pub delete_batches: Vec<usize>,
    /// Recoveries performed.
    pub recovers: Vec<String>,
    /// Remaining transient failures per resource name.
    pub transient: HashMap<String, u32>,
    /// Resource names that always fail.
    pub fatal: Vec<String>,
    /// Resource names whose apply panics.
    pub panics: Vec<String>,
    /// Resource names whose apply reports success but stores another value.
    pub lies: Vec<String>,
    /// Resource names whose first create lands half-made (value `partial`) and then
    /// fails transiently, like a multi-call create whose later call is throttled.
    pub half: Vec<String>,
    /// How many recoveries fail transiently before they answer.
    pub recover_failures: u32,
    /// Remaining throttled answers per resource name.
    pub throttled: HashMap<String, u32>,
}

/// The fake provider.
pub struct Fake {
    schemas: Vec<ResourceSchema>,
    /// Shared state, for assertions.
    pub state: Arc<Mutex<FakeState>>,
    stats: Arc<ApiStats>,
}

impl Fake {
    /// A fake counting into `stats`.
    pub fn new(stats: Arc<ApiStats>) -> Self {
        Fake {
            schemas: vec![ResourceSchema {
                type_name: "fake_item",
                attributes: vec![
                    AttrSchema::required("value"),
                    AttrSchema::optional("key").force_new(),
                    AttrSchema::computed("uid"),
                ],
            }],
            state: Arc::default(),
            stats,
        }
    }
}

#[async_trait]
impl Provider for Fake {
    fn name(&self) -> &str {
        "fake"
    }
    fn schemas(&self) -> &[ResourceSchema] {
        &self.schemas
    }
    fn max_batch(&self, _type_name: &str) -> usize {
        100
    }
    fn verify_after_apply(&self, _type_name: &str) -> bool {
        true
    }
    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        self.stats.record("fake", "Get");
        Ok(ReadResponse {
            current: self
                .state
                .lock()
                .unwrap()
                .objects
                .get(&req.address.to_string())
                .cloned(),
        })
    }
    async fn read_many(&self, reqs: Vec<ReadRequest>) -> Vec<Result<ReadResponse, ProviderError>> {
        self.stats.record("fake", "List");
        let mut st = self.state.lock().unwrap();
        st.read_batches.push(reqs.len());
        reqs.iter()
            .map(|r| {
                Ok(ReadResponse {
                    current: st.objects.get(&r.address.to_string()).cloned(),
                })
            })
            .collect()
    }
    async fn apply(&self, reqs: Vec<ApplyRequest>) -> Vec<Result<ApplyResponse, ProviderError>> {
        self.stats.record("fake", "BatchPut");
        let panics = self.state.lock().unwrap().panics.clone();
        if let Some(r) = reqs.iter().find(|r| panics.contains(&r.address.name)) {
            panic!("fake provider bug on {}", r.address);
        }
        let mut st = self.state.lock().unwrap();
        st.apply_batches.push(reqs.len());
        reqs.into_iter()
            .map(|r| {
                let name = r.address.name.clone();
                if st.fatal.contains(&name) {
                    return Err(ProviderError::invalid(format!("{name} is refused")));
                }
                if let Some(n) = st.throttled.get_mut(&name).filter(|n| **n > 0) {
                    *n -= 1;
                    return Err(ProviderError::throttled("Rate exceeded", None));
                }
                if let Some(n) = st.transient.get_mut(&name).filter(|n| **n > 0) {
                    *n -= 1;
                    return Err(ProviderError::transient("throttled"));
                }
                if r.prior.is_none() && st.half.contains(&name) {
                    st.half.retain(|n| n != &name);
                    let mut partial = r.config.clone();
                    partial.insert("value".into(), json!("partial"));
                    partial.insert("uid".into(), json!(format!("uid-{}", r.token)));
                    st.objects.insert(r.address.to_string(), partial);
                    return Err(ProviderError::throttled("SlowDown", None));
                }
                let mut a = r.config.clone();
                let uid = r
                    .prior
                    .as_ref()
                    .and_then(|p| p.get("uid").cloned())
                    .unwrap_or(json!(format!("uid-{}", r.token)));
                a.insert("uid".into(), uid.clone());
                let mut stored = a.clone();
                if st.lies.contains(&name) {
                    stored.insert("value".into(), json!("something else"));
                }
                st.objects.insert(r.address.to_string(), stored);
                Ok(ApplyResponse {
                    id: uid.as_str().unwrap_or_default().to_string(),
                    attributes: a,
                })
            })
            .collect()
    }
    async fn delete(&self, req: DeleteRequest) -> Result<(), ProviderError> {
        self.stats.record("fake", "Delete");
        let mut st = self.state.lock().unwrap();
        st.objects.remove(&req.address.to_string());
        st.deletes.push(req.address.to_string());
        Ok(())
    }
    async fn delete_many(&self, reqs: Vec<DeleteRequest>) -> Vec<Result<(), ProviderError>> {
        self.state.lock().unwrap().delete_batches.push(reqs.len());
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.delete(r).await);
        }
        out
    }
    async fn recover(&self, req: RecoverRequest) -> Result<Recovery, ProviderError> {
        let mut st = self.state.lock().unwrap();
        st.recovers.push(req.address.to_string());
        if st.recover_failures > 0 {
            st.recover_failures -= 1;
            return Err(ProviderError::transient("lookup throttled"));
        }
        match st.objects.get(&req.address.to_string()).cloned() {
            Some(a) => Ok(Recovery::Adopt(ApplyResponse {
                id: a["uid"].as_str().unwrap_or_default().into(),
                attributes: a,
            })),
            None => Ok(Recovery::Gone),
        }
    }
}
