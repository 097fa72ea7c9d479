//! The provider contract: schemas, and request/response calls for read, plan, apply,
//! delete and crash recovery, plus the registry that routes a resource type to its
//! provider and the API-call accounting every provider reports into.
//!
//! The engine, not the provider, owns retries, timeouts, concurrency and state writes.
//! Providers must not import workspace, render, plan or apply.

pub mod acme;
pub mod attrs;
pub mod aws;
pub mod azure;
pub mod budget;
pub mod builtin;
pub mod challenge;
pub mod dns;
mod error;
#[cfg(test)]
pub mod fake;
pub mod postgres;
pub mod resource;
mod stats;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub(crate) use crate::causes::with_causes;
pub use error::{ErrorKind, ProviderError};
pub use resource::{Family, ResourceType};
pub use stats::ApiStats;

/// How an attribute is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrKind {
    /// Must be given in the template.
    Required,
    /// May be given; the provider fills a default.
    Optional,
    /// Set by the provider on apply.
    Computed,
}

/// One attribute of a resource type.
#[derive(Debug, Clone)]
pub struct AttrSchema {
    /// Attribute name, as in the Terraform provider of the same name.
    pub name: &'static str,
    /// Required, optional or computed.
    pub kind: AttrKind,
    /// A change forces the resource to be replaced.
    pub force_new: bool,
    /// Never shown in output; encrypted in state.
    pub sensitive: bool,
}

impl AttrSchema {
    /// A required attribute.
    pub const fn required(name: &'static str) -> Self {
        AttrSchema {
            name,
            kind: AttrKind::Required,
            force_new: false,
            sensitive: false,
        }
    }
    /// An optional attribute.
    pub const fn optional(name: &'static str) -> Self {
        AttrSchema {
            name,
            kind: AttrKind::Optional,
            force_new: false,
            sensitive: false,
        }
    }
    /// A computed attribute.
    pub const fn computed(name: &'static str) -> Self {
        AttrSchema {
            name,
            kind: AttrKind::Computed,
            force_new: false,
            sensitive: false,
        }
    }
    /// Marks the attribute force-new.
    pub const fn force_new(mut self) -> Self {
        self.force_new = true;
        self
    }
    /// Marks the attribute sensitive.
    pub const fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
}

/// The schema of one resource type.
#[derive(Debug, Clone)]
pub struct ResourceSchema {
    /// Type name, e.g. `local_file`.
    pub type_name: &'static str,
    /// Its attributes.
    pub attributes: Vec<AttrSchema>,
}

impl ResourceSchema {
    /// An attribute by name.
    pub fn attr(&self, name: &str) -> Option<&AttrSchema> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

/// Read the live object.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    /// Resource address.
    pub address: ResourceAddr,
    /// Provider id recorded in state.
    pub id: String,
    /// Attributes recorded in state.
    pub prior: Attrs,
}

/// The live object, or `None` when it is gone.
#[derive(Debug, Clone)]
pub struct ReadResponse {
    /// Current attributes.
    pub current: Option<Attrs>,
}

/// Ask the provider about a planned change.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// Resource address.
    pub address: ResourceAddr,
    /// Attributes recorded in state (none for a create).
    pub prior: Option<Attrs>,
    /// Desired configuration (may hold unknown markers).
    pub config: Attrs,
}

/// What the provider adds to the engine's plan.
#[derive(Debug, Clone, Default)]
pub struct PlanResponse {
    /// Attributes that force a replace beyond the schema's force-new ones.
    pub requires_replace: Vec<String>,
    /// Why a replace is needed even with equal configuration (e.g. `renewal due`).
    pub replace_reason: Option<String>,
    /// Computed attributes an in-place update changes (unknown to dependents until apply).
    pub changes_on_update: Vec<String>,
}

/// Create (no prior) or update a resource.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    /// Resource address.
    pub address: ResourceAddr,
    /// Prior attributes for an update.
    pub prior: Option<Attrs>,
    /// Fully known configuration.
    pub config: Attrs,
    /// Idempotency token derived from the write-ahead intent.
    pub token: String,
}

/// The object after a successful create or update.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyResponse {
    /// Provider id.
    pub id: String,
    /// All attributes (configuration and computed).
    pub attributes: Attrs,
}

/// Delete a resource; an already-gone object is success.
#[derive(Debug, Clone)]
pub struct DeleteRequest {
    /// Resource address.
    pub address: ResourceAddr,
    /// Provider id.
    pub id: String,
    /// Attributes recorded in state.
    pub prior: Attrs,
}

/// What a killed run was doing when it left an intent (interrupted deletes are finished
/// by the engine and never reach a provider).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// A create.
    Create,
    /// An update in place.
    Update,
}

/// An intent left behind by a killed run.
#[derive(Debug, Clone)]
pub struct RecoverRequest {
    /// Resource address.
    pub address: ResourceAddr,
    /// What was under way.
    pub op: Interrupted,
    /// The configuration being applied (non-sensitive parts only when sensitive ones are unavailable).
    pub config: Attrs,
    /// Attributes recorded in state before the operation, if any.
    pub prior: Option<Attrs>,
    /// Provider id recorded before the operation, if any.
    pub id: Option<String>,
    /// The idempotency token the operation used.
    pub token: String,
}

/// What recovery found.
#[derive(Debug, Clone, PartialEq)]
pub enum Recovery {
    /// The object exists and is ours: record it.
    Adopt(ApplyResponse),
    /// No object exists: forget the resource.
    Gone,
}

/// What an issuance limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Every new order of the account.
    Orders,
    /// Certificates naming the same registered domain.
    PerDomain,
    /// Certificates for exactly the same set of names.
    Duplicates,
}

/// A limit a certificate authority puts on issuance, beyond its API rate: at most `max`
/// objects of `type_name` per `window`, counted over the issuance history in state.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuanceLimit {
    /// The resource type it applies to.
    pub type_name: &'static str,
    /// Whose limit it is (the ACME directory).
    pub scope: String,
    /// What it counts.
    pub kind: LimitKind,
    /// How many.
    pub max: u64,
    /// Over what span of time.
    pub window: std::time::Duration,
    /// How users know it (`Let's Encrypt: new orders per account per 3 hours`).
    pub name: String,
}

/// A source of resources (local files, a cloud API, a DNS server).
///
/// Every call takes an owned request and returns a response, so fields can be added
/// without touching every provider. Batched calls answer one result per request, in order.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Provider name for stats and messages.
    fn name(&self) -> &str;

    /// Schemas of the resource types this provider serves.
    fn schemas(&self) -> &[ResourceSchema];

    /// Checks a known configuration before planning (no I/O beyond the local disk).
    fn validate(&self, _address: &ResourceAddr, _config: &Attrs) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Fills what a configuration leaves to the provider (defaults, attributes derived
    /// from local files), before planning.
    fn complete(&self, _address: &ResourceAddr, _config: &mut Attrs) -> Result<(), ProviderError> {
        Ok(())
    }

    /// The region an object is placed in beyond its `region`/`location` attribute.
    fn region(&self, _address: &ResourceAddr, _config: &Attrs) -> Option<String> {
        None
    }

    /// Issuance limits of the authority behind this provider (certificates per window).
    fn issuance_limits(&self) -> Vec<IssuanceLimit> {
        vec![]
    }

    /// How long a request of a killed run may still be processed by the server after the
    /// client died. Recovery of a younger intent waits that long before it looks.
    fn recovery_settle(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// How many creates/updates of `type_name` one `apply` call may carry. A batch shares
    /// one call timeout, so slow types should not be batched.
    fn max_batch(&self, _type_name: &str) -> usize {
        1
    }

    /// Whether the engine reads `type_name` back after every create or update to check
    /// that it converged.
    fn verify_after_apply(&self, _type_name: &str) -> bool {
        false
    }

    /// Reads one live object.
    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError>;

    /// Reads several objects, batching where the API allows.
    async fn read_many(&self, reqs: Vec<ReadRequest>) -> Vec<Result<ReadResponse, ProviderError>> {
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.read(r).await);
        }
        out
    }

    /// Adds provider knowledge to a planned change (extra replace triggers).
    async fn plan(&self, _req: PlanRequest) -> Result<PlanResponse, ProviderError> {
        Ok(PlanResponse::default())
    }

    /// Creates or updates resources; one result per request, in order.
    async fn apply(&self, reqs: Vec<ApplyRequest>) -> Vec<Result<ApplyResponse, ProviderError>>;

    /// Deletes one resource; gone already is success.
    async fn delete(&self, req: DeleteRequest) -> Result<(), ProviderError>;

    /// Deletes several resources of one type (up to `max_batch`), one result per request
    /// in order; providers with a batch API override this.
    async fn delete_many(&self, reqs: Vec<DeleteRequest>) -> Vec<Result<(), ProviderError>> {
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.delete(r).await);
        }
        out
    }

    /// Reconciles an intent of a create or update left by a killed run (the engine
    /// finishes interrupted deletes itself).
    async fn recover(&self, req: RecoverRequest) -> Result<Recovery, ProviderError>;

    /// What clients are served for a DNS record, where that can differ from what the
    /// API holds (secondaries, propagation): `(nameserver, attributes)` for each server
    /// whose answer differs from `api`. Empty when the provider serves nothing or all agree.
    async fn served_differences(
        &self,
        _req: ReadRequest,
        _api: &Attrs,
    ) -> Result<Vec<(String, Attrs)>, ProviderError> {
        Ok(vec![])
    }
}

/// Provider settings taken from the workspace.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The workspace directory.
    pub root: PathBuf,
    /// `[providers.<name>]` tables of `landlord.toml`.
    pub tables: BTreeMap<String, toml::Table>,
}

/// Error building providers from settings.
#[derive(Debug, thiserror::Error)]
#[error("landlord.toml: [providers.{provider}]: {message}")]
pub struct SettingsError {
    /// Provider section.
    pub provider: String,
    /// What is wrong.
    pub message: String,
}

/// The `[providers.<name>]` tables landlord reads.
pub const PROVIDER_TABLES: &[&str] = &[
    "local",
    "aws",
    "azure",
    "dns",
    "dns_verification",
    "acme",
    "postgresql",
];

/// Routes resource types to providers.
pub struct Registry {
    providers: Vec<Arc<dyn Provider>>,
    by_type: HashMap<String, (usize, usize)>,
    stats: Arc<ApiStats>,
    budgets: Arc<budget::Budgets>,
}

impl Registry {
    /// Builds the providers a workspace configures.
    pub fn new(settings: &Settings) -> Result<Registry, SettingsError> {
        if let Some(name) = settings
            .tables
            .keys()
            .find(|k| !PROVIDER_TABLES.contains(&k.as_str()))
        {
            return Err(SettingsError {
                provider: name.clone(),
                message: crate::suggest::unknown("provider table", name, PROVIDER_TABLES),
            });
        }
        let stats = Arc::new(ApiStats::default());
        let mut tables = settings.tables.clone();
        let budgets = Arc::new(budget::Budgets::from_tables(&mut tables)?);
        let settings = &Settings {
            root: settings.root.clone(),
            tables,
        };
        let builtin = builtin::Builtin::provider(settings, stats.clone())?;
        let aws = aws::Aws::provider(settings, stats.clone(), budgets.clone())?;
        let servers = Arc::new(dns::Servers::parse(settings, stats.clone())?);
        let azure = Arc::new(azure::Azure::provider(
            settings,
            stats.clone(),
            budgets.clone(),
        )?);
        let acme = acme::Acme::provider(
            settings,
            servers.clone(),
            Arc::new(azure.context().clone()),
            stats.clone(),
            budgets.clone(),
        )?;
        let dns = dns::Dns::provider(servers, stats.clone());
        let postgres = postgres::Postgres::provider(settings, stats.clone())?;
        let mut registry = Self::with_providers(
            vec![
                Arc::new(builtin),
                Arc::new(aws),
                Arc::new(dns),
                Arc::new(acme),
                azure,
                Arc::new(postgres),
            ],
            stats,
        );
        registry.budgets = budgets;
        Ok(registry)
    }

    /// A registry over the given providers.
    pub fn with_providers(providers: Vec<Arc<dyn Provider>>, stats: Arc<ApiStats>) -> Registry {
        let mut by_type = HashMap::new();
        for (pi, p) in providers.iter().enumerate() {
            for (si, s) in p.schemas().iter().enumerate() {
                by_type.insert(s.type_name.to_string(), (pi, si));
            }
        }
        Registry {
            providers,
            by_type,
            stats,
            budgets: Default::default(),
        }
    }

    /// The provider and schema serving `type_name`.
    pub fn get(&self, type_name: &str) -> Option<(&Arc<dyn Provider>, &ResourceSchema)> {
        let &(pi, si) = self.by_type.get(type_name)?;
        let p = &self.providers[pi];
        Some((p, &p.schemas()[si]))
    }

    /// Index of the provider serving `type_name`, for grouping batches.
    pub fn provider_index(&self, type_name: &str) -> Option<usize> {
        self.by_type.get(type_name).map(|&(pi, _)| pi)
    }

    /// Every known type name, sorted.
    pub fn type_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.by_type.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// The API-call counters.
    pub fn stats(&self) -> &Arc<ApiStats> {
        &self.stats
    }

    /// The issuance limits of every provider.
    pub fn issuance_limits(&self) -> Vec<IssuanceLimit> {
        self.providers
            .iter()
            .flat_map(|p| p.issuance_limits())
            .collect()
    }

    /// What each API budget used in this run.
    pub fn budgets(&self) -> Vec<budget::BudgetReport> {
        self.budgets.report()
    }
}
