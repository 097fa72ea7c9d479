//! The per-type interface every resource type implements, and [`Family`]: a provider made
//! of one table of types over one shared context (clients, settings, counters).
//!
//! Adding a type is one file with one `impl ResourceType<Cx>` and one line in its
//! family's table; the [`Registry`](super::Registry) mirrors the tables, so nothing
//! dispatches on type-name strings.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;

use super::{
    ApplyRequest, ApplyResponse, DeleteRequest, Interrupted, PlanRequest, PlanResponse, Provider,
    ProviderError, ReadRequest, ReadResponse, RecoverRequest, Recovery, ResourceSchema,
};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

/// One resource type: its schema and its calls on the family context `Cx`.
///
/// Batched variants default to one call per request; types whose service batches
/// override them. An interrupted delete is finished by the engine (it deletes again), so
/// `recover` only answers for creates and updates.
#[async_trait]
pub trait ResourceType<Cx: ?Sized + Sync>: Send + Sync {
    /// The type's schema.
    fn schema(&self) -> ResourceSchema;

    /// Checks a known configuration before planning (no I/O beyond the local disk).
    fn validate(&self, _cx: &Cx, _config: &Attrs) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Fills what a configuration leaves to the provider (defaults, attributes derived
    /// from local files) so that plan compares them too.
    fn complete(&self, _cx: &Cx, _config: &mut Attrs) -> Result<(), ProviderError> {
        Ok(())
    }

    /// The region the object is placed in when the configuration does not say it with
    /// `region` or `location` (e.g. the region of the database server it names).
    fn region(&self, _cx: &Cx, _config: &Attrs) -> Option<String> {
        None
    }

    /// How many creates/updates (and deletes) one call may carry.
    fn max_batch(&self) -> usize {
        1
    }

    /// Whether a fresh read is cheap enough for the engine to verify every apply with it.
    fn verify_after_apply(&self) -> bool {
        false
    }

    /// Extra replace triggers for a planned change.
    async fn plan(&self, _cx: &Cx, _req: &PlanRequest) -> Result<PlanResponse, ProviderError> {
        Ok(PlanResponse::default())
    }

    /// The live object, or `None` when it is gone.
    async fn read(&self, cx: &Cx, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError>;

    /// Several live objects, one answer per request in order.
    async fn read_many(
        &self,
        cx: &Cx,
        reqs: &[ReadRequest],
    ) -> Vec<Result<Option<Attrs>, ProviderError>> {
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.read(cx, r).await);
        }
        out
    }

    /// Creates (no prior) or updates the object.
    async fn apply(&self, cx: &Cx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError>;

    /// Several creates/updates (at most `max_batch`), one answer per request in order.
    async fn apply_many(
        &self,
        cx: &Cx,
        reqs: &[ApplyRequest],
    ) -> Vec<Result<ApplyResponse, ProviderError>> {
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.apply(cx, r).await);
        }
        out
    }

    /// Deletes the object; gone already is success.
    async fn delete(&self, cx: &Cx, req: &DeleteRequest) -> Result<(), ProviderError>;

    /// Several deletes (at most `max_batch`), one answer per request in order.
    async fn delete_many(&self, cx: &Cx, reqs: &[DeleteRequest]) -> Vec<Result<(), ProviderError>> {
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.delete(cx, r).await);
        }
        out
    }

    /// The object an interrupted create or update left, if it exists and is ours.
    async fn recover(
        &self,
        cx: &Cx,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError>;

    /// Name servers whose answer differs from what the API holds (DNS records only).
    async fn served_differences(
        &self,
        _cx: &Cx,
        _req: &ReadRequest,
        _api: &Attrs,
    ) -> Result<Vec<(String, Attrs)>, ProviderError> {
        Ok(vec![])
    }
}

/// Recovery by the recorded id: an interrupted update reads the object it was changing.
pub(crate) async fn recover_update<Cx: ?Sized + Sync, T: ResourceType<Cx> + ?Sized>(
    t: &T,
    cx: &Cx,
    req: &RecoverRequest,
) -> Result<Option<Option<ApplyResponse>>, ProviderError> {
    let (Some(id), Some(prior)) = (&req.id, &req.prior) else {
        return Ok(None);
    };
    let read = ReadRequest {
        address: req.address.clone(),
        id: id.clone(),
        prior: prior.clone(),
    };
    Ok(Some(t.read(cx, &read).await?.map(|attributes| {
        ApplyResponse {
            id: id.clone(),
            attributes,
        }
    })))
}

/// The read of a type that lives only in state (generated values, timers, ACME
/// certificates, passed checks): the recorded attributes are the object; it cannot drift.
pub(crate) fn read_recorded(req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
    Ok(Some(req.prior.clone()))
}

/// Recovery of a type that lives only in state: an update that was not recorded keeps
/// the recorded object; an unrecorded create left nothing behind.
pub(crate) fn recover_recorded(
    req: &RecoverRequest,
) -> Result<Option<ApplyResponse>, ProviderError> {
    Ok(match (req.op, &req.prior, &req.id) {
        (Interrupted::Update, Some(prior), Some(id)) => Some(ApplyResponse {
            id: id.clone(),
            attributes: prior.clone(),
        }),
        _ => None,
    })
}

/// A provider made of a table of resource types sharing one context.
pub struct Family<Cx: 'static> {
    name: &'static str,
    cx: Cx,
    types: Vec<Box<dyn ResourceType<Cx>>>,
    schemas: Vec<ResourceSchema>,
    index: HashMap<&'static str, usize>,
    settle: Duration,
    limits: Vec<super::IssuanceLimit>,
}

impl<Cx: Send + Sync + 'static> Family<Cx> {
    /// A family named `name` over `cx` serving `types`.
    pub fn new(name: &'static str, cx: Cx, types: Vec<Box<dyn ResourceType<Cx>>>) -> Self {
        let schemas: Vec<ResourceSchema> = types.iter().map(|t| t.schema()).collect();
        let index = schemas
            .iter()
            .enumerate()
            .map(|(i, s)| (s.type_name, i))
            .collect();
        Family {
            name,
            cx,
            types,
            schemas,
            index,
            settle: Duration::ZERO,
            limits: vec![],
        }
    }

    /// Sets how long a request of a killed run may still be processed by the server.
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// The family's issuance limits.
    pub fn with_limits(mut self, limits: Vec<super::IssuanceLimit>) -> Self {
        self.limits = limits;
        self
    }

    /// The shared context.
    pub fn context(&self) -> &Cx {
        &self.cx
    }

    fn of(&self, addr: &ResourceAddr) -> Result<&dyn ResourceType<Cx>, ProviderError> {
        self.index
            .get(addr.rtype.as_str())
            .map(|&i| self.types[i].as_ref())
            .ok_or_else(|| {
                ProviderError::invalid(format!(
                    "provider `{}` does not serve type `{}`",
                    self.name, addr.rtype
                ))
            })
    }

    /// Requests grouped by type, keeping each one's position.
    fn by_type<'r, R>(
        &self,
        reqs: &'r [R],
        addr: impl Fn(&R) -> &ResourceAddr,
    ) -> BTreeMap<&'r str, Vec<usize>> {
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, r) in reqs.iter().enumerate() {
            groups.entry(addr(r).rtype.as_str()).or_default().push(i);
        }
        groups
    }
}

/// Places each group's answers back at their requests' positions.
fn scatter<T>(slots: &mut [Option<T>], idx: &[usize], answers: Vec<T>) {
    for (&i, a) in idx.iter().zip(answers) {
        slots[i] = Some(a);
    }
}

fn collect<T>(slots: Vec<Option<Result<T, ProviderError>>>) -> Vec<Result<T, ProviderError>> {
    slots
        .into_iter()
        .map(|s| s.unwrap_or_else(|| Err(ProviderError::failed("no answer from the provider"))))
        .collect()
}

/// Runs one call per type group and answers in request order; errors carry the address.
macro_rules! grouped {
    ($self:ident, $reqs:ident, $call:ident, $wrap:expr) => {{
        let mut slots: Vec<Option<_>> = $reqs.iter().map(|_| None).collect();
        for (_, idx) in $self.by_type(&$reqs, |r| &r.address) {
            let first = &$reqs[idx[0]].address;
            let group: Vec<_> = idx.iter().map(|&i| $reqs[i].clone()).collect();
            let answers = match $self.of(first) {
                Ok(t) => t.$call(&$self.cx, &group).await,
                Err(e) => group.iter().map(|_| Err(e.clone())).collect(),
            };
            let answers = answers
                .into_iter()
                .zip(&group)
                .map(|(a, r)| a.map($wrap).map_err(|e| e.at(&r.address)))
                .collect();
            scatter(&mut slots, &idx, answers);
        }
        collect(slots)
    }};
}

#[async_trait]
impl<Cx: Send + Sync + 'static> Provider for Family<Cx> {
    fn name(&self) -> &str {
        self.name
    }

    fn schemas(&self) -> &[ResourceSchema] {
        &self.schemas
    }

    fn validate(&self, address: &ResourceAddr, config: &Attrs) -> Result<(), ProviderError> {
        self.of(address)?
            .validate(&self.cx, config)
            .map_err(|e| e.at(address))
    }

    fn recovery_settle(&self) -> Duration {
        self.settle
    }

    fn issuance_limits(&self) -> Vec<super::IssuanceLimit> {
        self.limits.clone()
    }

    fn complete(&self, address: &ResourceAddr, config: &mut Attrs) -> Result<(), ProviderError> {
        self.of(address)?
            .complete(&self.cx, config)
            .map_err(|e| e.at(address))
    }

    fn region(&self, address: &ResourceAddr, config: &Attrs) -> Option<String> {
        self.of(address).ok()?.region(&self.cx, config)
    }

    fn max_batch(&self, type_name: &str) -> usize {
        self.index
            .get(type_name)
            .map_or(1, |&i| self.types[i].max_batch())
    }

    fn verify_after_apply(&self, type_name: &str) -> bool {
        self.index
            .get(type_name)
            .is_some_and(|&i| self.types[i].verify_after_apply())
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        let current = self
            .of(&req.address)?
            .read(&self.cx, &req)
            .await
            .map_err(|e| e.at(&req.address))?;
        Ok(ReadResponse { current })
    }

    async fn read_many(&self, reqs: Vec<ReadRequest>) -> Vec<Result<ReadResponse, ProviderError>> {
        grouped!(self, reqs, read_many, |current| ReadResponse { current })
    }

    async fn plan(&self, req: PlanRequest) -> Result<PlanResponse, ProviderError> {
        self.of(&req.address)?
            .plan(&self.cx, &req)
            .await
            .map_err(|e| e.at(&req.address))
    }

    async fn apply(&self, reqs: Vec<ApplyRequest>) -> Vec<Result<ApplyResponse, ProviderError>> {
        grouped!(self, reqs, apply_many, |r| r)
    }

    async fn delete(&self, req: DeleteRequest) -> Result<(), ProviderError> {
        self.of(&req.address)?
            .delete(&self.cx, &req)
            .await
            .map_err(|e| e.at(&req.address))
    }

    async fn delete_many(&self, reqs: Vec<DeleteRequest>) -> Vec<Result<(), ProviderError>> {
        grouped!(self, reqs, delete_many, |r| r)
    }

    async fn recover(&self, req: RecoverRequest) -> Result<Recovery, ProviderError> {
        let found = self
            .of(&req.address)?
            .recover(&self.cx, &req)
            .await
            .map_err(|e| e.at(&req.address))?;
        Ok(match found {
            Some(resp) => Recovery::Adopt(resp),
            None => Recovery::Gone,
        })
    }

    async fn served_differences(
        &self,
        req: ReadRequest,
        api: &Attrs,
    ) -> Result<Vec<(String, Attrs)>, ProviderError> {
        self.of(&req.address)?
            .served_differences(&self.cx, &req, api)
            .await
            .map_err(|e| e.at(&req.address))
    }
}
