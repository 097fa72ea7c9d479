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
    ApiStats, ApplyRequest, ApplyResponse, AttrKind, DeleteRequest, IntentOp, PlanRequest,
    PlanResponse, Provider, ProviderError, ReadRequest, ReadResponse, RecoverRequest, Recovery,
    ResourceSchema, Settings, SettingsError,
};
use crate::addr::ResourceAddr;
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

/// The Azure provider.
pub struct Azure {
    clients: Result<Arc<Clients>, String>,
    schemas: Vec<ResourceSchema>,
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
        .unwrap_or_else(|| e.to_string());
    let text = match code.as_str() {
        "" => format!("{what}: {message}"),
        c => format!("{what}: {c}: {message}"),
    };
    if *e.kind() == azure_core::error::ErrorKind::Credential {
        return ProviderError::auth(text);
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

/// Checks that an attribute, when set and known, is one of `allowed`.
pub(super) fn one_of(c: &Attrs, key: &str, allowed: &[&str]) -> Result<(), ProviderError> {
    match c.get(key).and_then(Value::as_str) {
        Some(v) if v != crate::value::UNKNOWN && !allowed.contains(&v) => {
            Err(ProviderError::invalid(format!(
                "`{key}` is `{v}`: expected one of {}",
                allowed.join(", ")
            )))
        }
        _ => Ok(()),
    }
}

impl Azure {
    /// Builds the provider; a missing `[providers.azure]` makes every call fail with a hint.
    pub fn new(settings: &Settings, stats: Arc<ApiStats>) -> Result<Azure, SettingsError> {
        let schemas = [
            group::schemas(),
            dns::schemas(),
            storage::schemas(),
            key_vault::schemas(),
        ]
        .concat();
        let clients = match settings.tables.get(NAME) {
            None => Err("no [providers.azure] in landlord.toml".to_string()),
            Some(t) => Self::clients(t, stats).map_err(|message| SettingsError {
                provider: NAME.into(),
                message,
            })?,
        };
        Ok(Azure { clients, schemas })
    }

    /// Clients from the settings table; the outer error is a bad setting, the inner one a
    /// credential that is missing (reported when a resource needs it).
    #[allow(clippy::type_complexity)]
    fn clients(
        t: &toml::Table,
        stats: Arc<ApiStats>,
    ) -> Result<Result<Arc<Clients>, String>, String> {
        if let Some(k) = t.keys().find(|k| !SETTINGS.contains(&k.as_str())) {
            return Err(format!("unknown setting `{k}` ({})", SETTINGS.join(", ")));
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
        let scope = endpoint
            .join(azure_core::auth::DEFAULT_SCOPE_SUFFIX)
            .map_err(|e| format!("invalid `endpoint`: {e}"))?
            .to_string();
        let clients = Clients {
            resources: azure_mgmt_resources::Client::builder(credential.clone())
                .endpoint(endpoint.clone())
                .build()
                .map_err(build)?,
            dns: azure_mgmt_dns::package_2018_05::Client::builder(credential.clone())
                .endpoint(endpoint.clone())
                .build()
                .map_err(build)?,
            storage: azure_mgmt_storage::Client::builder(credential.clone())
                .endpoint(endpoint.clone())
                .build()
                .map_err(build)?,
            vaults: azure_mgmt_keyvault::Client::builder(credential.clone())
                .endpoint(endpoint)
                .build()
                .map_err(build)?,
            lro: lro::Poller {
                http: azure_core::new_http_client(),
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

    fn schema(&self, rtype: &str) -> Option<&ResourceSchema> {
        self.schemas.iter().find(|s| s.type_name == rtype)
    }

    async fn read_live(&self, rtype: &str, c: &Attrs) -> Result<Option<Live>, ProviderError> {
        let cx = self.cx()?;
        match rtype {
            "azure_resource_group" => group::read(cx, c).await,
            "azure_dns_zone" => dns::read_zone(cx, c).await,
            "azure_dns_record_set" => dns::read_record(cx, c).await,
            "azure_storage_account" => storage::read_account(cx, c).await,
            "azure_storage_container" => storage::read_container(cx, c).await,
            "azure_key_vault" => key_vault::read(cx, c).await,
            other => Err(unknown(other)),
        }
    }

    async fn apply_one(&self, r: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cx = self.cx()?;
        let (c, addr) = (&r.config, r.address.to_string());
        match r.address.rtype.as_str() {
            "azure_resource_group" => group::apply(cx, c, &addr).await?,
            "azure_dns_zone" => dns::apply_zone(cx, c, &addr).await?,
            "azure_dns_record_set" => dns::apply_record(cx, c, &addr).await?,
            "azure_storage_account" => storage::apply_account(cx, c, &addr).await?,
            "azure_storage_container" => {
                storage::apply_container(cx, c, r.prior.as_ref(), &addr).await?
            }
            "azure_key_vault" => key_vault::apply(cx, c, &addr).await?,
            other => return Err(unknown(other)),
        }
        let live = self
            .read_live(&r.address.rtype, c)
            .await?
            .ok_or_else(|| ProviderError::transient("the resource is not readable yet"))?;
        Ok(self.done(&r.address.rtype, c, live.attrs))
    }

    /// The planned configuration with the computed values read back.
    fn done(&self, rtype: &str, c: &Attrs, live: Attrs) -> ApplyResponse {
        let mut a = c.clone();
        if let Some(s) = self.schema(rtype) {
            for attr in s.attributes.iter().filter(|a| a.kind == AttrKind::Computed) {
                if let Some(v) = live.get(attr.name) {
                    a.insert(attr.name.into(), v.clone());
                }
            }
        }
        ApplyResponse {
            id: object_id(&live),
            attributes: a,
        }
    }

    /// Live attributes limited to what the configuration sets (and computed values).
    fn as_recorded(&self, rtype: &str, prior: &Attrs, mut a: Attrs) -> Attrs {
        if let Some(s) = self.schema(rtype) {
            for attr in &s.attributes {
                if attr.kind == AttrKind::Optional && !prior.contains_key(attr.name) {
                    a.remove(attr.name);
                }
            }
        }
        a
    }
}

fn unknown(rtype: &str) -> ProviderError {
    ProviderError::invalid(format!("unknown resource type `{rtype}`"))
}

/// The provider-side id: the ARM id, or the fqdn / URL of objects without one.
fn object_id(a: &Attrs) -> String {
    a.get("id")
        .or(a.get("fqdn"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[async_trait]
impl Provider for Azure {
    fn name(&self) -> &str {
        NAME
    }

    fn schemas(&self) -> &[ResourceSchema] {
        &self.schemas
    }

    fn validate(&self, address: &ResourceAddr, c: &Attrs) -> Result<(), ProviderError> {
        match address.rtype.as_str() {
            "azure_resource_group" => group::validate(c),
            "azure_dns_record_set" => dns::validate(c),
            "azure_storage_account" => storage::validate_account(c),
            "azure_storage_container" => storage::validate_container(c),
            "azure_key_vault" => key_vault::validate(c),
            _ => Ok(()),
        }
    }

    async fn plan(&self, req: PlanRequest) -> Result<PlanResponse, ProviderError> {
        match req.address.rtype.as_str() {
            "azure_key_vault" => key_vault::plan(req.prior.as_ref(), &req.config),
            _ => Ok(PlanResponse::default()),
        }
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        let rtype = req.address.rtype.as_str();
        let current = self
            .read_live(rtype, &req.prior)
            .await?
            .map(|l| self.as_recorded(rtype, &req.prior, l.attrs));
        Ok(ReadResponse { current })
    }

    async fn read_many(&self, reqs: Vec<ReadRequest>) -> Vec<Result<ReadResponse, ProviderError>> {
        // Record sets of a zone are listed together; everything else is read one by one.
        let mut out: Vec<Option<Result<ReadResponse, ProviderError>>> =
            reqs.iter().map(|_| None).collect();
        let mut zones: std::collections::BTreeMap<(String, String), Vec<usize>> =
            Default::default();
        for (i, r) in reqs.iter().enumerate() {
            if r.address.rtype == "azure_dns_record_set" {
                if let (Ok(rg), Ok(zone)) = (
                    req(&r.prior, "resource_group_name"),
                    req(&r.prior, "zone_name"),
                ) {
                    zones
                        .entry((rg.to_string(), zone.to_string()))
                        .or_default()
                        .push(i);
                }
            }
        }
        if let Ok(cx) = self.cx() {
            for ((rg, zone), idx) in zones.into_iter().filter(|(_, v)| v.len() > 1) {
                let configs: Vec<&Attrs> = idx.iter().map(|&i| &reqs[i].prior).collect();
                match dns::read_records_of_zone(cx, &rg, &zone, &configs).await {
                    Ok(lives) => {
                        for (&i, live) in idx.iter().zip(lives) {
                            let current = live.map(|l| {
                                self.as_recorded("azure_dns_record_set", &reqs[i].prior, l.attrs)
                            });
                            out[i] = Some(Ok(ReadResponse { current }));
                        }
                    }
                    Err(e) => {
                        for &i in &idx {
                            out[i] = Some(Err(e.clone()));
                        }
                    }
                }
            }
        }
        super::read_rest(self, reqs, out).await
    }

    async fn apply(&self, reqs: Vec<ApplyRequest>) -> Vec<Result<ApplyResponse, ProviderError>> {
        super::in_order(reqs.iter().map(|r| self.apply_one(r)).collect()).await
    }

    async fn delete(&self, req: DeleteRequest) -> Result<(), ProviderError> {
        let cx = self.cx()?;
        let c = &req.prior;
        match req.address.rtype.as_str() {
            "azure_resource_group" => group::delete(cx, c).await,
            "azure_dns_zone" => dns::delete_zone(cx, c).await,
            "azure_dns_record_set" => dns::delete_record(cx, c).await,
            "azure_storage_account" => storage::delete_account(cx, c).await,
            "azure_storage_container" => storage::delete_container(cx, c).await,
            "azure_key_vault" => key_vault::delete(cx, c).await,
            other => Err(unknown(other)),
        }
    }

    async fn served_differences(
        &self,
        req: ReadRequest,
        api: &Attrs,
    ) -> Result<Vec<(String, Attrs)>, ProviderError> {
        match req.address.rtype.as_str() {
            "azure_dns_record_set" => dns::served_differences(self.cx()?, api).await,
            _ => Ok(vec![]),
        }
    }

    async fn recover(&self, req: RecoverRequest) -> Result<Recovery, ProviderError> {
        let source = req.prior.clone().unwrap_or_else(|| req.config.clone());
        if req.op == IntentOp::Delete {
            self.delete(DeleteRequest {
                address: req.address.clone(),
                id: req.id.clone().unwrap_or_default(),
                prior: source,
            })
            .await?;
            return Ok(Recovery::Gone);
        }
        // The id is deterministic: read it back; adopt what carries our address.
        let rtype = req.address.rtype.as_str();
        Ok(match self.read_live(rtype, &source).await? {
            Some(live) if live.owner.as_deref() == Some(req.address.to_string().as_str()) => {
                let attrs = self.as_recorded(rtype, &source, live.attrs);
                Recovery::Adopt(ApplyResponse {
                    id: object_id(&attrs),
                    attributes: attrs,
                })
            }
            _ => Recovery::Gone,
        })
    }
}
