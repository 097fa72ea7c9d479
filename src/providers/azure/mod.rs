//! The `azure` provider on the azure_mgmt crates (management plane): resource groups, DNS
//! zones and DNS record sets. ARM PUTs are idempotent on a deterministic resource id, so
//! crash recovery re-reads by id and adopts only objects carrying our address tag (record
//! sets, which have no tags, by name and type). Resource group deletion is a long-running
//! operation: it is polled, bounded, until the group is gone.
//!
//! Settings: `[providers.azure]` with `subscription_id`, `endpoint` (management endpoint;
//! default the public cloud) and `token_env` (an environment variable holding a bearer
//! token, for emulators and pipelines that fetch their own token).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::auth::{AccessToken, TokenCredential};
use serde_json::{json, Value};

use super::builtin::{opt_u64, req_str};
use super::{
    ApiStats, ApplyRequest, ApplyResponse, AttrSchema, DeleteRequest, IntentOp, Provider,
    ProviderError, ReadRequest, ReadResponse, RecoverRequest, Recovery, ResourceSchema, Settings,
    SettingsError,
};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

const NAME: &str = "azure";
/// Tag carrying the landlord address (ARM tag names may not contain `:`).
const ADDRESS_TAG: &str = "landlord-address";
const RECORD_TYPES: &[&str] = &["A", "AAAA", "CNAME", "TXT", "MX", "CAA"];

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

struct Clients {
    resources: azure_mgmt_resources::Client,
    dns: azure_mgmt_dns::package_2018_05::Client,
    subscription: String,
}

/// The Azure provider.
pub struct Azure {
    clients: Result<Arc<Clients>, String>,
    schemas: Vec<ResourceSchema>,
    stats: Arc<ApiStats>,
}

fn classify(what: &str, e: azure_core::Error) -> ProviderError {
    let status = e.as_http_error().map(|h| u16::from(h.status()));
    let code = e
        .as_http_error()
        .and_then(|h| h.error_code().map(str::to_string))
        .unwrap_or_default();
    let text = format!(
        "{what}: {}{}",
        if code.is_empty() {
            String::new()
        } else {
            format!("{code}: ")
        },
        e
    );
    match status {
        Some(429) | Some(500..=599) | None => ProviderError::Transient(text),
        Some(401) | Some(403) => ProviderError::Auth(text),
        Some(409) => ProviderError::Conflict(text),
        Some(400) => ProviderError::Invalid(text),
        _ => ProviderError::Failed(text),
    }
}

fn not_found(e: &azure_core::Error) -> bool {
    e.as_http_error()
        .is_some_and(|h| u16::from(h.status()) == 404)
}

impl Azure {
    /// Builds the provider; a missing `[providers.azure]` makes every call fail with a hint.
    pub fn new(settings: &Settings, stats: Arc<ApiStats>) -> Result<Azure, SettingsError> {
        let schemas = vec![
            ResourceSchema {
                type_name: "azure_resource_group",
                attributes: vec![
                    AttrSchema::required("name").force_new(),
                    AttrSchema::required("location").force_new(),
                    AttrSchema::optional("tags"),
                    AttrSchema::computed("id"),
                ],
            },
            ResourceSchema {
                type_name: "azure_dns_zone",
                attributes: vec![
                    AttrSchema::required("name").force_new(),
                    AttrSchema::required("resource_group_name").force_new(),
                    AttrSchema::optional("tags"),
                    AttrSchema::computed("id"),
                    AttrSchema::computed("name_servers"),
                ],
            },
            ResourceSchema {
                type_name: "azure_dns_record_set",
                attributes: vec![
                    AttrSchema::required("zone_name").force_new(),
                    AttrSchema::required("resource_group_name").force_new(),
                    AttrSchema::required("name").force_new(),
                    AttrSchema::required("type").force_new(),
                    AttrSchema::optional("ttl"),
                    AttrSchema::required("records"),
                    AttrSchema::computed("fqdn"),
                ],
            },
        ];
        let clients = match settings.tables.get("azure") {
            None => Err("no [providers.azure] in landlord.toml".to_string()),
            Some(t) => {
                let bad = |m: String| SettingsError {
                    provider: "azure".into(),
                    message: m,
                };
                for k in t.keys() {
                    if !["subscription_id", "endpoint", "token_env"].contains(&k.as_str()) {
                        return Err(bad(format!(
                            "unknown setting `{k}` (subscription_id, endpoint, token_env)"
                        )));
                    }
                }
                let s = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
                let subscription = s("subscription_id")
                    .ok_or_else(|| bad("`subscription_id` is required".into()))?;
                let endpoint = azure_core::Url::parse(
                    &s("endpoint").unwrap_or_else(|| "https://management.azure.com".into()),
                )
                .map_err(|e| bad(format!("invalid `endpoint`: {e}")))?;
                match s("token_env").map(|env| std::env::var(&env).map_err(|_| format!("[providers.azure]: environment variable `{env}` (token_env) is not set"))) {
                    Some(Ok(token)) => {
                        let cred: Arc<dyn TokenCredential> = Arc::new(StaticToken(token));
                        let build = |e: azure_core::Error| bad(format!("cannot build the Azure client: {e}"));
                        let resources = azure_mgmt_resources::Client::builder(cred.clone()).endpoint(endpoint.clone()).build().map_err(build)?;
                        let dns = azure_mgmt_dns::package_2018_05::Client::builder(cred).endpoint(endpoint).build().map_err(build)?;
                        Ok(Arc::new(Clients { resources, dns, subscription }))
                    }
                    Some(Err(m)) => Err(m),
                    None => Err("[providers.azure]: set `token_env` (the credential chain is not supported yet)".into()),
                }
            }
        };
        Ok(Azure {
            clients,
            schemas,
            stats,
        })
    }

    fn clients(&self) -> Result<&Clients, ProviderError> {
        self.clients
            .as_deref()
            .map_err(|m| ProviderError::Auth(m.clone()))
    }

    fn count(&self, op: &str) {
        self.stats.record(NAME, op);
    }

    async fn read_rg(&self, c: &Attrs) -> Result<Option<Attrs>, ProviderError> {
        let cl = self.clients()?;
        let name = req_str(c, "name")?;
        self.count("resourceGroups.get");
        match cl
            .resources
            .resource_groups_client()
            .get(name, &cl.subscription)
            .await
        {
            Ok(rg) => {
                let mut a = Attrs::new();
                a.insert("name".into(), json!(name));
                a.insert("location".into(), json!(rg.location));
                a.insert("tags".into(), user_tags(rg.tags.as_ref()));
                a.insert("id".into(), json!(rg.id));
                Ok(Some(a))
            }
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(classify("resource group get", e)),
        }
    }

    async fn read_zone(&self, c: &Attrs) -> Result<Option<Attrs>, ProviderError> {
        let cl = self.clients()?;
        let (rg, name) = (req_str(c, "resource_group_name")?, req_str(c, "name")?);
        self.count("dnsZones.get");
        match cl.dns.zones_client().get(rg, name, &cl.subscription).await {
            Ok(z) => {
                let mut a = Attrs::new();
                a.insert("name".into(), json!(name));
                a.insert("resource_group_name".into(), json!(rg));
                a.insert("tags".into(), user_tags(z.resource.tags.as_ref()));
                a.insert("id".into(), json!(z.resource.id));
                a.insert(
                    "name_servers".into(),
                    json!(z.properties.map(|p| p.name_servers).unwrap_or_default()),
                );
                Ok(Some(a))
            }
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(classify("dns zone get", e)),
        }
    }

    async fn read_record(&self, c: &Attrs) -> Result<Option<Attrs>, ProviderError> {
        let cl = self.clients()?;
        let (rg, zone, name, rtype) = (
            req_str(c, "resource_group_name")?,
            req_str(c, "zone_name")?,
            req_str(c, "name")?,
            req_str(c, "type")?,
        );
        self.count("recordSets.get");
        match cl
            .dns
            .record_sets_client()
            .get(rg, zone, name, rtype, &cl.subscription)
            .await
        {
            Ok(rs) => {
                let p = rs.properties.unwrap_or_default();
                let mut values = record_values(rtype, &p);
                let mut wanted: Vec<String> = strings(c.get("records"));
                wanted.sort();
                let mut sorted = values.clone();
                sorted.sort();
                if sorted == wanted {
                    values = strings(c.get("records"));
                }
                let mut a = Attrs::new();
                for k in ["zone_name", "resource_group_name", "name", "type"] {
                    a.insert(k.into(), c.get(k).cloned().unwrap_or(Value::Null));
                }
                a.insert("ttl".into(), json!(p.ttl.unwrap_or(3600)));
                a.insert("records".into(), json!(values));
                a.insert(
                    "fqdn".into(),
                    json!(p.fqdn.unwrap_or_default().trim_end_matches('.')),
                );
                Ok(Some(a))
            }
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(classify("dns record set get", e)),
        }
    }

    async fn apply_one(&self, r: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cl = self.clients()?;
        let c = &r.config;
        let addr = r.address.to_string();
        match r.address.rtype.as_str() {
            "azure_resource_group" => {
                let mut rg = azure_mgmt_resources::models::ResourceGroup::new(
                    req_str(c, "location")?.to_string(),
                );
                rg.tags = Some(tags(c, &addr)?);
                self.count("resourceGroups.createOrUpdate");
                cl.resources
                    .resource_groups_client()
                    .create_or_update(req_str(c, "name")?, rg, &cl.subscription)
                    .await
                    .map_err(|e| classify("resource group create", e))?;
                self.done(c, self.read_rg(c).await?)
            }
            "azure_dns_zone" => {
                use azure_mgmt_dns::package_2018_05::models::{Resource, Zone};
                let mut tr = Resource::new("global".into());
                tr.tags = Some(tags(c, &addr)?);
                self.count("dnsZones.createOrUpdate");
                cl.dns
                    .zones_client()
                    .create_or_update(
                        req_str(c, "resource_group_name")?,
                        req_str(c, "name")?,
                        Zone::new(tr),
                        &cl.subscription,
                    )
                    .await
                    .map_err(|e| classify("dns zone create", e))?;
                self.done(c, self.read_zone(c).await?)
            }
            "azure_dns_record_set" => {
                let rtype = req_str(c, "type")?;
                let mut p = azure_mgmt_dns::package_2018_05::models::RecordSetProperties::default();
                p.ttl = Some(opt_u64(c, "ttl")?.unwrap_or(3600) as i64);
                set_values(rtype, &mut p, &strings(c.get("records")))?;
                let mut rs = azure_mgmt_dns::package_2018_05::models::RecordSet::new();
                rs.properties = Some(p);
                self.count("recordSets.createOrUpdate");
                cl.dns
                    .record_sets_client()
                    .create_or_update(
                        req_str(c, "resource_group_name")?,
                        req_str(c, "zone_name")?,
                        req_str(c, "name")?,
                        rtype,
                        rs,
                        &cl.subscription,
                    )
                    .await
                    .map_err(|e| classify("dns record set create", e))?;
                self.done(c, self.read_record(c).await?)
            }
            other => Err(ProviderError::Invalid(format!(
                "unknown resource type `{other}`"
            ))),
        }
    }

    /// The planned configuration with the computed values read back.
    fn done(&self, c: &Attrs, live: Option<Attrs>) -> Result<ApplyResponse, ProviderError> {
        let live = live
            .ok_or_else(|| ProviderError::Transient("the resource is not readable yet".into()))?;
        let mut a = c.clone();
        for k in ["id", "name_servers", "fqdn"] {
            if let Some(v) = live.get(k) {
                a.insert(k.into(), v.clone());
            }
        }
        if a.get("ttl").is_none() && c.contains_key("records") {
            a.insert(
                "ttl".into(),
                live.get("ttl").cloned().unwrap_or(json!(3600)),
            );
        }
        Ok(ApplyResponse {
            id: live
                .get("id")
                .or(live.get("fqdn"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            attributes: a,
        })
    }

    async fn read_any(&self, rtype: &str, c: &Attrs) -> Result<Option<Attrs>, ProviderError> {
        match rtype {
            "azure_resource_group" => self.read_rg(c).await,
            "azure_dns_zone" => self.read_zone(c).await,
            "azure_dns_record_set" => self.read_record(c).await,
            other => Err(ProviderError::Invalid(format!(
                "unknown resource type `{other}`"
            ))),
        }
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Tags as landlord writes them: the user's plus the address tag.
fn tags(c: &Attrs, addr: &str) -> Result<Value, ProviderError> {
    let mut t = match c.get("tags") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(v) => {
            return Err(ProviderError::Invalid(format!(
                "`tags` must be a mapping, got {v}"
            )))
        }
    };
    t.insert(ADDRESS_TAG.into(), json!(addr));
    Ok(Value::Object(t))
}

/// Tags as recorded: without landlord's own.
fn user_tags(t: Option<&Value>) -> Value {
    let mut m = t.and_then(Value::as_object).cloned().unwrap_or_default();
    m.remove(ADDRESS_TAG);
    Value::Object(m)
}

fn address_tag(t: Option<&Value>) -> Option<String> {
    t?.get(ADDRESS_TAG)?.as_str().map(str::to_string)
}

fn record_values(
    rtype: &str,
    p: &azure_mgmt_dns::package_2018_05::models::RecordSetProperties,
) -> Vec<String> {
    match rtype {
        "A" => p
            .a_records
            .iter()
            .filter_map(|r| r.ipv4_address.clone())
            .collect(),
        "AAAA" => p
            .aaaa_records
            .iter()
            .filter_map(|r| r.ipv6_address.clone())
            .collect(),
        "CNAME" => p
            .cname_record
            .iter()
            .filter_map(|r| r.cname.clone())
            .collect(),
        "TXT" => p.txt_records.iter().map(|r| r.value.join("")).collect(),
        "MX" => p
            .mx_records
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r.preference.unwrap_or(0),
                    r.exchange.clone().unwrap_or_default()
                )
            })
            .collect(),
        "CAA" => p
            .caa_records
            .iter()
            .map(|r| {
                format!(
                    "{} {} \"{}\"",
                    r.flags.unwrap_or(0),
                    r.tag.clone().unwrap_or_default(),
                    r.value.clone().unwrap_or_default()
                )
            })
            .collect(),
        _ => vec![],
    }
}

fn set_values(
    rtype: &str,
    p: &mut azure_mgmt_dns::package_2018_05::models::RecordSetProperties,
    values: &[String],
) -> Result<(), ProviderError> {
    use azure_mgmt_dns::package_2018_05::models::{
        ARecord, AaaaRecord, CnameRecord, MxRecord, TxtRecord,
    };
    let bad = |v: &str| ProviderError::Invalid(format!("invalid {rtype} value `{v}`"));
    match rtype {
        "A" => {
            p.a_records = values
                .iter()
                .map(|v| ARecord {
                    ipv4_address: Some(v.clone()),
                })
                .collect()
        }
        "AAAA" => {
            p.aaaa_records = values
                .iter()
                .map(|v| AaaaRecord {
                    ipv6_address: Some(v.clone()),
                })
                .collect()
        }
        "CNAME" => {
            let [v] = values else {
                return Err(ProviderError::Invalid(
                    "a CNAME record set holds exactly one value".into(),
                ));
            };
            p.cname_record = Some(CnameRecord {
                cname: Some(v.clone()),
            });
        }
        "TXT" => {
            p.txt_records = values
                .iter()
                .map(|v| TxtRecord {
                    value: vec![v.clone()],
                })
                .collect()
        }
        "MX" => {
            p.mx_records = values
                .iter()
                .map(|v| {
                    let (pref, host) = v.split_once(' ').ok_or_else(|| bad(v))?;
                    Ok(MxRecord {
                        preference: Some(pref.parse().map_err(|_| bad(v))?),
                        exchange: Some(host.to_string()),
                    })
                })
                .collect::<Result<_, ProviderError>>()?
        }
        other => {
            return Err(ProviderError::Invalid(format!(
                "unsupported record type `{other}`: expected one of {}",
                RECORD_TYPES.join(", ")
            )))
        }
    }
    Ok(())
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
        let known = |k: &str| {
            c.get(k)
                .and_then(Value::as_str)
                .filter(|s| *s != crate::value::UNKNOWN)
        };
        match address.rtype.as_str() {
            "azure_resource_group" => match known("name") {
                Some(n) if n.is_empty() || n.len() > 90 || n.ends_with('.') || !n.chars().all(|ch| ch.is_alphanumeric() || "-_.()".contains(ch)) => {
                    Err(ProviderError::Invalid(format!("invalid resource group name `{n}`: 1-90 letters, digits, `-`, `_`, `.`, `(`, `)`, not ending in `.`")))
                }
                _ => Ok(()),
            },
            "azure_dns_record_set" => match known("type") {
                Some(t) if !RECORD_TYPES.contains(&t) => Err(ProviderError::Invalid(format!("unsupported record type `{t}`: expected one of {}", RECORD_TYPES.join(", ")))),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        let mut current = self.read_any(&req.address.rtype, &req.prior).await?;
        if let Some(a) = current.as_mut() {
            for k in ["ttl"] {
                if !req.prior.contains_key(k) {
                    a.remove(k);
                }
            }
        }
        Ok(ReadResponse { current })
    }

    async fn apply(&self, reqs: Vec<ApplyRequest>) -> Vec<Result<ApplyResponse, ProviderError>> {
        super::in_order(reqs.iter().map(|r| self.apply_one(r)).collect()).await
    }

    async fn delete(&self, req: DeleteRequest) -> Result<(), ProviderError> {
        let cl = self.clients()?;
        let c = &req.prior;
        match req.address.rtype.as_str() {
            "azure_resource_group" => {
                let name = req_str(c, "name")?;
                self.count("resourceGroups.delete");
                match cl
                    .resources
                    .resource_groups_client()
                    .delete(name, &cl.subscription)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e) if not_found(&e) => return Ok(()),
                    Err(e) => return Err(classify("resource group delete", e)),
                }
                // Deletion is long-running (202): poll, bounded, until the group is gone.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
                loop {
                    if self.read_rg(c).await?.is_none() {
                        return Ok(());
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ProviderError::Transient(format!(
                            "resource group `{name}` is still being deleted after 300s"
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            "azure_dns_zone" => {
                self.count("dnsZones.delete");
                match cl
                    .dns
                    .zones_client()
                    .delete(
                        req_str(c, "resource_group_name")?,
                        req_str(c, "name")?,
                        &cl.subscription,
                    )
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if not_found(&e) => Ok(()),
                    Err(e) => Err(classify("dns zone delete", e)),
                }
            }
            "azure_dns_record_set" => {
                self.count("recordSets.delete");
                let r = cl
                    .dns
                    .record_sets_client()
                    .delete(
                        req_str(c, "resource_group_name")?,
                        req_str(c, "zone_name")?,
                        req_str(c, "name")?,
                        req_str(c, "type")?,
                        &cl.subscription,
                    )
                    .send()
                    .await;
                match r {
                    Ok(_) => Ok(()),
                    Err(e) if not_found(&e) => Ok(()),
                    Err(e) => Err(classify("dns record set delete", e)),
                }
            }
            other => Err(ProviderError::Invalid(format!(
                "unknown resource type `{other}`"
            ))),
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
        // The id is deterministic: read it back; adopt what carries our address tag.
        let tagged = match req.address.rtype.as_str() {
            "azure_resource_group" => {
                let cl = self.clients()?;
                cl.resources
                    .resource_groups_client()
                    .get(req_str(&source, "name")?, &cl.subscription)
                    .await
                    .ok()
                    .map(|rg| address_tag(rg.tags.as_ref()))
            }
            "azure_dns_zone" => {
                let cl = self.clients()?;
                cl.dns
                    .zones_client()
                    .get(
                        req_str(&source, "resource_group_name")?,
                        req_str(&source, "name")?,
                        &cl.subscription,
                    )
                    .await
                    .ok()
                    .map(|z| address_tag(z.resource.tags.as_ref()))
            }
            _ => Some(Some(req.address.to_string())),
        };
        let ours = matches!(tagged, Some(Some(ref a)) if *a == req.address.to_string());
        Ok(
            match (ours, self.read_any(&req.address.rtype, &source).await?) {
                (true, Some(a)) => Recovery::Adopt(ApplyResponse {
                    id: a
                        .get("id")
                        .or(a.get("fqdn"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    attributes: a,
                }),
                _ => Recovery::Gone,
            },
        )
    }
}
