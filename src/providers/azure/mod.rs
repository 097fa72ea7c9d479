//! The `azure` provider: resource groups, DNS zones and record sets, storage accounts and
//! key vaults on the azure_mgmt crates (management plane), and blob containers on
//! azure_storage_blobs (data plane, with the account key read through ARM).
//!
//! ARM PUTs are idempotent on a deterministic resource id, so crash recovery re-reads by
//! id and adopts only objects carrying our address (a tag on ARM resources, metadata on
//! record sets and containers). Long-running operations (a `202` with an operation URL)
//! are polled, bounded, honouring `Retry-After` (see `lro`); throttled calls (`429`) are
//! retried by azure_core's pipeline after the server's `Retry-After`.
//!
//! Settings, `[providers.azure]`: `subscription_id`, `tenant_id` (the default `tenant_id`
//! of key vaults), `endpoint` (management endpoint; default the public cloud) and
//! `token_env` (an environment variable holding a bearer token, for emulators and
//! pipelines that fetch their own) and `dns_nameservers` (`host:port` of the name servers
//! whose answers `drift` compares with record sets; default each zone's own name servers,
//! looked up by name; `[]` turns the check off, e.g. for an emulator that serves no DNS)
//! and `propagation_timeout_seconds` (default 120: how long apply waits for a record set
//! to be served there). Without `token_env` the standard Azure credential
//! chain is used: environment (`AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `AZURE_TENANT_ID`,
//! workload identity), managed identity, then the Azure CLI.

mod budget;
mod dns;
mod group;
mod key_vault;
mod lro;
mod storage;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::auth::{AccessToken, TokenCredential};
use serde_json::{json, Value};

use super::challenge::ChallengeZone;
use super::{
    ApiStats, ApplyRequest, ApplyResponse, AttrKind, DeleteRequest, Family, PlanRequest,
    PlanResponse, ProviderError, ReadRequest, RecoverRequest, ResourceSchema, ResourceType,
    Settings, SettingsError,
};
use crate::value::Attrs;

const NAME: &str = "azure";
/// Tag (or metadata key) carrying the landlord address (ARM tag names may not contain `:`).
const ADDRESS_TAG: &str = "landlord-address";
const SETTINGS: &[&str] = &[
    "subscription_id",
    "tenant_id",
    "endpoint",
    "token_env",
    "dns_nameservers",
    "propagation_timeout_seconds",
];

/// A fixed bearer token.
#[derive(Debug)]
struct StaticToken(String);

#[async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(&self, _scopes: &[&str]) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0.clone(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
    async fn clear_cache(&self) -> azure_core::Result<()> {
        Ok(())
    }
}

/// The clients and settings every resource type uses.
struct Clients {
    resources: azure_mgmt_resources::Client,
    dns: azure_mgmt_dns::package_2018_05::Client,
    storage: azure_mgmt_storage::Client,
    vaults: azure_mgmt_keyvault::Client,
    lro: lro::Poller,
    subscription: String,
    tenant_id: Option<String>,
    /// Where served answers are checked: `None` each zone's own name servers, an empty
    /// list not at all.
    dns_nameservers: Option<Vec<std::net::SocketAddr>>,
    /// How long an applied record set may take to be served.
    propagation_timeout: std::time::Duration,
    stats: Arc<ApiStats>,
    /// Blob endpoint and key per storage account name, read through ARM once per run.
    accounts: tokio::sync::Mutex<storage::Accounts>,
    /// Each zone's own name servers, looked up once per run: (resource group, zone).
    zone_servers: tokio::sync::Mutex<HashMap<(String, String), Vec<std::net::SocketAddr>>>,
}

impl Clients {
    fn count(&self, op: &str) {
        self.stats.record(NAME, op);
    }

    /// Waits for the long-running operation a response may have started.
    async fn settle(
        &self,
        what: &str,
        rsp: &impl AsRef<azure_core::Response>,
    ) -> Result<(), ProviderError> {
        let raw = rsp.as_ref();
        self.lro.finish(what, raw.status(), raw.headers()).await
    }
}

/// A live object as read: the attributes landlord records and the address it carries.
struct Live {
    attrs: Attrs,
    owner: Option<String>,
}

/// What every Azure resource type shares: the clients, or why there are none (reported
/// when a resource needs them).
#[derive(Clone)]
pub struct Azure {
    clients: Result<Arc<Clients>, String>,
}

/// One ARM resource type in the family's uniform shape: read the live object by its
/// deterministic id, PUT it, DELETE it. The blanket [`ResourceType`] impl adds what all
/// of them share: read-back after apply, attributes as recorded, recovery by owner marker.
#[async_trait]
trait Arm: Send + Sync {
    /// The type's schema.
    fn schema(&self) -> ResourceSchema;
    /// Name rules and allowed values, checked at plan time.
    fn validate(&self, _c: &Attrs) -> Result<(), ProviderError> {
        Ok(())
    }
    /// Changes the plan must refuse or replace for.
    fn plan(&self, _prior: Option<&Attrs>, _c: &Attrs) -> Result<PlanResponse, ProviderError> {
        Ok(PlanResponse::default())
    }
    /// The live object named by the configuration.
    async fn read(&self, cx: &Clients, c: &Attrs) -> Result<Option<Live>, ProviderError>;
    /// Several live objects in fewer calls; `None` where the type cannot batch.
    async fn read_batch(
        &self,
        _cx: &Clients,
        _configs: &[&Attrs],
    ) -> Option<Vec<Result<Option<Live>, ProviderError>>> {
        None
    }
    /// Creates or updates the object (PUT), waiting for a long-running operation.
    async fn put(
        &self,
        cx: &Clients,
        c: &Attrs,
        prior: Option<&Attrs>,
        addr: &str,
    ) -> Result<(), ProviderError>;
    /// Deletes the object; gone already is success.
    async fn delete(&self, cx: &Clients, c: &Attrs) -> Result<(), ProviderError>;
    /// Name servers serving something else than the API holds (record sets only).
    async fn served_differences(
        &self,
        _cx: &Clients,
        _api: &Attrs,
    ) -> Result<Vec<(String, Attrs)>, ProviderError> {
        Ok(vec![])
    }
}

/// Maps an azure_core error to the engine's error classes.
fn classify(what: &str, e: azure_core::Error) -> ProviderError {
    let status = e.as_http_error().map(|h| u16::from(h.status()));
    let code = e
        .as_http_error()
        .and_then(|h| h.error_code().map(str::to_string))
        .unwrap_or_default();
    let message = e
        .as_http_error()
        .and_then(|h| h.error_message().map(str::to_string))
        .unwrap_or_else(|| super::with_causes(&e));
    let text = match code.as_str() {
        "" => format!("{what}: {message}"),
        c => format!("{what}: {c}: {message}"),
    };
    if *e.kind() == azure_core::error::ErrorKind::Credential {
        return ProviderError::auth(text);
    }
    if status.is_none() && *e.kind() == azure_core::error::ErrorKind::Io {
        return ProviderError::unreachable(text);
    }
    match status {
        // azure_core's pipeline already waited out the server's Retry-After.
        Some(429) => ProviderError::throttled(text, None),
        Some(500..=599) | None => ProviderError::transient(text),
        Some(401) | Some(403) => ProviderError::auth(text),
        Some(404) => ProviderError::not_found(text),
        Some(409) => ProviderError::conflict(text),
        Some(400) => ProviderError::invalid(text),
        _ => ProviderError::failed(text),
    }
}

/// `Ok(None)` for a 404, the value otherwise.
fn found<T>(what: &str, r: azure_core::Result<T>) -> Result<Option<T>, ProviderError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e)
            if e.as_http_error()
                .is_some_and(|h| u16::from(h.status()) == 404) =>
        {
            Ok(None)
        }
        Err(e) => Err(classify(what, e)),
    }
}

/// An azure_mgmt model from its ARM JSON form.
fn model<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> Result<T, ProviderError> {
    serde_json::from_value(v).map_err(|e| ProviderError::invalid(format!("{what}: {e}")))
}

/// The ARM JSON form of an azure_mgmt model.
fn arm_json<T: serde::Serialize>(m: &T) -> Value {
    serde_json::to_value(m).unwrap_or(Value::Null)
}

/// Tags as landlord writes them: the user's plus the address tag.
fn tags(c: &Attrs, addr: &str) -> Result<Value, ProviderError> {
    let mut t = match c.get("tags") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(v) => {
            return Err(ProviderError::invalid(format!(
                "`tags` must be a mapping, got {v}"
            )))
        }
    };
    t.insert(ADDRESS_TAG.into(), json!(addr));
    Ok(Value::Object(t))
}

/// Tags as recorded (without landlord's own) and the address they carry.
fn split_tags(t: Option<&Value>) -> (Value, Option<String>) {
    let mut m = t.and_then(Value::as_object).cloned().unwrap_or_default();
    let owner = m
        .remove(ADDRESS_TAG)
        .and_then(|v| v.as_str().map(str::to_string));
    (Value::Object(m), owner)
}

/// A required string attribute.
fn req<'a>(c: &'a Attrs, k: &str) -> Result<&'a str, ProviderError> {
    super::attrs::req_str(c, k)
}

/// Checks a name against a rule; `None` for unknown (not yet computed) values.
fn check_name(
    c: &Attrs,
    key: &str,
    what: &str,
    ok: impl Fn(&str) -> bool,
    rule: &str,
) -> Result<(), ProviderError> {
    match c.get(key).and_then(Value::as_str) {
        Some(n) if n != crate::value::UNKNOWN && !ok(n) => Err(ProviderError::invalid(format!(
            "invalid {what} `{n}`: {rule}"
        ))),
        _ => Ok(()),
    }
}

impl Azure {
    /// Builds the provider; a missing `[providers.azure]` makes every call fail with a hint.
    pub fn provider(
        settings: &Settings,
        stats: Arc<ApiStats>,
        budgets: Arc<crate::providers::budget::Budgets>,
    ) -> Result<Family<Azure>, SettingsError> {
        let clients = match settings.tables.get(NAME) {
            None => Err("no [providers.azure] in landlord.toml".to_string()),
            Some(t) => Self::clients(t, stats, budgets).map_err(|message| SettingsError {
                provider: NAME.into(),
                message,
            })?,
        };
        let types: Vec<Box<dyn ResourceType<Azure>>> = vec![
            Box::new(group::Group),
            Box::new(dns::DnsZone),
            Box::new(dns::DnsRecordSet),
            Box::new(storage::Account),
            Box::new(storage::Container),
            Box::new(key_vault::Vault),
        ];
        Ok(Family::new(NAME, Azure { clients }, types))
    }

    /// Clients from the settings table; the outer error is a bad setting, the inner one a
    /// credential that is missing (reported when a resource needs it).
    #[allow(clippy::type_complexity)]
    fn clients(
        t: &toml::Table,
        stats: Arc<ApiStats>,
        budgets: Arc<crate::providers::budget::Budgets>,
    ) -> Result<Result<Arc<Clients>, String>, String> {
        if let Some(k) = t.keys().find(|k| !SETTINGS.contains(&k.as_str())) {
            return Err(crate::suggest::unknown("setting", k, SETTINGS));
        }
        let s = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let subscription =
            s("subscription_id").ok_or_else(|| "`subscription_id` is required".to_string())?;
        let endpoint = azure_core::Url::parse(
            &s("endpoint").unwrap_or_else(|| "https://management.azure.com".into()),
        )
        .map_err(|e| format!("invalid `endpoint`: {e}"))?;
        let dns_nameservers = match t.get("dns_nameservers") {
            None => None,
            Some(v) => Some(
                v.as_array()
                    .ok_or_else(|| "`dns_nameservers` must be a list of host:port".to_string())?
                    .iter()
                    .map(|ns| {
                        let text = ns.as_str().unwrap_or_default();
                        text.parse().map_err(|_| {
                            format!("`dns_nameservers`: `{text}` is not an IP address and port")
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?,
            ),
        };
        let credential: Arc<dyn TokenCredential> = match s("token_env") {
            Some(env) => match std::env::var(&env) {
                Ok(token) => Arc::new(StaticToken(token)),
                Err(_) => {
                    return Ok(Err(format!(
                        "[providers.azure]: environment variable `{env}` (token_env) is not set"
                    )))
                }
            },
            None => match azure_identity::create_default_credential() {
                Ok(c) => c,
                Err(e) => return Ok(Err(format!("[providers.azure]: no Azure credential: {e}"))),
            },
        };
        let build = |e: azure_core::Error| format!("cannot build the Azure client: {e}");
        // The engine owns retries; azure_core's own (8 retries over up to a minute per call
        // by default) are bounded to a few seconds, so an endpoint that refuses or does not
        // answer is reported within seconds. A connect timeout covers hosts that never answer.
        let http: Arc<dyn azure_core::HttpClient> = Arc::new(
            reqwest::ClientBuilder::new()
                .pool_max_idle_per_host(0)
                .connect_timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?,
        );
        // Every ARM request spends the subscription's read or write budget.
        let http: Arc<dyn azure_core::HttpClient> = Arc::new(budget::BudgetHttp {
            inner: http,
            budgets,
            subscription: subscription.clone(),
        });
        let transport = azure_core::TransportOptions::new(http.clone());
        let retry = azure_core::RetryOptions::exponential(
            azure_core::ExponentialRetryOptions::default()
                .max_retries(3u32)
                .max_total_elapsed(std::time::Duration::from_secs(10))
                .max_delay(std::time::Duration::from_secs(5)),
        );
        let scope = endpoint
            .join(azure_core::auth::DEFAULT_SCOPE_SUFFIX)
            .map_err(|e| format!("invalid `endpoint`: {e}"))?
            .to_string();
        let clients = Clients {
            resources: azure_mgmt_resources::Client::builder(credential.clone())
                .transport(transport.clone())
                .retry(retry.clone())
                .endpoint(endpoint.clone())
                .build()
                .map_err(build)?,
            dns: azure_mgmt_dns::package_2018_05::Client::builder(credential.clone())
                .transport(transport.clone())
                .retry(retry.clone())
                .endpoint(endpoint.clone())
                .build()
                .map_err(build)?,
            storage: azure_mgmt_storage::Client::builder(credential.clone())
                .transport(transport.clone())
                .retry(retry.clone())
                .endpoint(endpoint.clone())
                .build()
                .map_err(build)?,
            vaults: azure_mgmt_keyvault::Client::builder(credential.clone())
                .transport(transport.clone())
                .retry(retry.clone())
                .endpoint(endpoint)
                .build()
                .map_err(build)?,
            lro: lro::Poller {
                http,
                credential,
                scope,
                stats: stats.clone(),
            },
            subscription,
            tenant_id: s("tenant_id"),
            dns_nameservers,
            propagation_timeout: std::time::Duration::from_secs(
                t.get("propagation_timeout_seconds")
                    .and_then(|v| v.as_integer())
                    .map(|n| n.max(0) as u64)
                    .unwrap_or(120),
            ),
            stats,
            accounts: Default::default(),
            zone_servers: Default::default(),
        };
        Ok(Ok(Arc::new(clients)))
    }

    /// An Azure DNS zone publishing ACME DNS-01 challenges; its answers are checked at
    /// `nameservers`, or at the zone's own name servers when empty.
    pub fn challenge_zone(
        &self,
        resource_group: &str,
        zone: &str,
        nameservers: Vec<std::net::SocketAddr>,
    ) -> Result<Arc<dyn ChallengeZone>, ProviderError> {
        let cx = self.clients.clone().map_err(ProviderError::auth)?;
        Ok(Arc::new(dns::AzureChallengeZone {
            cx,
            resource_group: resource_group.to_string(),
            zone: zone.trim_end_matches('.').to_ascii_lowercase(),
            nameservers,
        }))
    }

    fn cx(&self) -> Result<&Clients, ProviderError> {
        self.clients
            .as_deref()
            .map_err(|m| ProviderError::auth(m.clone()))
    }
}

/// The provider-side id: the ARM id, or the fqdn / URL of objects without one.
fn object_id(a: &Attrs) -> String {
    a.get("id")
        .or(a.get("fqdn"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The planned configuration with the computed values read back.
fn done(schema: &ResourceSchema, c: &Attrs, live: Attrs) -> ApplyResponse {
    let mut a = c.clone();
    for attr in schema
        .attributes
        .iter()
        .filter(|a| a.kind == AttrKind::Computed)
    {
        if let Some(v) = live.get(attr.name) {
            a.insert(attr.name.into(), v.clone());
        }
    }
    ApplyResponse {
        id: object_id(&live),
        attributes: a,
    }
}

/// Live attributes limited to what the configuration sets (and computed values).
fn as_recorded(schema: &ResourceSchema, prior: &Attrs, mut a: Attrs) -> Attrs {
    for attr in &schema.attributes {
        if attr.kind == AttrKind::Optional && !prior.contains_key(attr.name) {
            a.remove(attr.name);
        }
    }
    a
}

#[async_trait]
impl<T: Arm> ResourceType<Azure> for T {
    fn schema(&self) -> ResourceSchema {
        Arm::schema(self)
    }

    fn validate(&self, _: &Azure, c: &Attrs) -> Result<(), ProviderError> {
        Arm::validate(self, c)
    }

    fn verify_after_apply(&self) -> bool {
        true
    }

    async fn plan(&self, _: &Azure, req: &PlanRequest) -> Result<PlanResponse, ProviderError> {
        Arm::plan(self, req.prior.as_ref(), &req.config)
    }

    async fn read(&self, az: &Azure, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        let schema = Arm::schema(self);
        Ok(Arm::read(self, az.cx()?, &req.prior)
            .await?
            .map(|l| as_recorded(&schema, &req.prior, l.attrs)))
    }

    async fn read_many(
        &self,
        az: &Azure,
        reqs: &[ReadRequest],
    ) -> Vec<Result<Option<Attrs>, ProviderError>> {
        let schema = Arm::schema(self);
        let configs: Vec<&Attrs> = reqs.iter().map(|r| &r.prior).collect();
        let batch = match az.cx() {
            Ok(cx) => self.read_batch(cx, &configs).await,
            Err(e) => Some(reqs.iter().map(|_| Err(e.clone())).collect()),
        };
        match batch {
            Some(lives) => lives
                .into_iter()
                .zip(reqs)
                .map(|(l, r)| Ok(l?.map(|l| as_recorded(&schema, &r.prior, l.attrs))))
                .collect(),
            None => {
                let mut out = Vec::with_capacity(reqs.len());
                for r in reqs {
                    out.push(ResourceType::read(self, az, r).await);
                }
                out
            }
        }
    }

    async fn apply(&self, az: &Azure, r: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cx = az.cx()?;
        let c = &r.config;
        self.put(cx, c, r.prior.as_ref(), &r.address.to_string())
            .await?;
        let live = Arm::read(self, cx, c)
            .await?
            .ok_or_else(|| ProviderError::transient("the resource is not readable yet"))?;
        Ok(done(&Arm::schema(self), c, live.attrs))
    }

    async fn delete(&self, az: &Azure, req: &DeleteRequest) -> Result<(), ProviderError> {
        Arm::delete(self, az.cx()?, &req.prior).await
    }

    async fn recover(
        &self,
        az: &Azure,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        // The id is deterministic: read it back; adopt what carries our address.
        let source = req.prior.as_ref().unwrap_or(&req.config);
        let owner = req.address.to_string();
        Ok(match Arm::read(self, az.cx()?, source).await? {
            Some(live) if live.owner.as_deref() == Some(owner.as_str()) => {
                let attrs = as_recorded(&Arm::schema(self), source, live.attrs);
                Some(ApplyResponse {
                    id: object_id(&attrs),
                    attributes: attrs,
                })
            }
            _ => None,
        })
    }

    async fn served_differences(
        &self,
        az: &Azure,
        _req: &ReadRequest,
        api: &Attrs,
    ) -> Result<Vec<(String, Attrs)>, ProviderError> {
        Arm::served_differences(self, az.cx()?, api).await
    }
}
