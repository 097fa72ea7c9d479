//! The `dns` provider: `dns_record` on any RFC 2136 server (BIND, Knot, PowerDNS) with
//! TSIG-signed updates. Creates require the record set to be absent; updates are a
//! compare-and-swap against the live set, so a concurrent change is refused, not
//! overwritten. Refresh transfers each zone once (AXFR) when several of its records are
//! read. After every change the served answer is checked with a resolver until it matches.
//!
//! Settings: `[providers.dns.<name>]` with `server` (`host:port`), `zone`,
//! `tsig_key_name`, `tsig_algorithm` (default `hmac-sha256`), `tsig_secret_env` (the
//! environment variable holding the base64 secret: never in the file) and
//! `propagation_timeout_seconds` (default 30).

pub mod server;
pub mod verification;

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

pub use server::{DnsServer, RrSet};

use super::attrs::{check_record_type, RECORD_TYPES};
use super::attrs::{opt_u64, req_str};
use super::{
    ApiStats, ApplyRequest, ApplyResponse, AttrSchema, DeleteRequest, Family, ProviderError,
    ReadRequest, RecoverRequest, ResourceSchema, ResourceType, Settings, SettingsError,
};
use crate::value::{Attrs, UNKNOWN};

/// The configured DNS servers, by name, and the resolvers used for domain verification.
#[derive(Debug, Clone, Default)]
pub struct Servers {
    servers: BTreeMap<String, (DnsServer, Duration)>,
    verification_nameservers: Vec<std::net::SocketAddr>,
}

impl Servers {
    /// The resolvers of `[dns_verification] nameservers` (empty: each zone's own servers).
    pub fn verification_nameservers(&self) -> &[std::net::SocketAddr] {
        &self.verification_nameservers
    }

    /// Parses `[providers.dns.*]`.
    pub fn parse(settings: &Settings, stats: Arc<ApiStats>) -> Result<Servers, SettingsError> {
        let mut out = Servers::default();
        if let Some(t) = settings.tables.get("dns_verification") {
            let bad = |m: String| SettingsError {
                provider: "dns_verification".into(),
                message: m,
            };
            for (k, v) in t {
                if k != "nameservers" {
                    return Err(bad(crate::suggest::unknown("setting", k, &["nameservers"])));
                }
                for ns in v
                    .as_array()
                    .ok_or_else(|| bad("`nameservers` must be a list of host:port".into()))?
                {
                    let text = ns.as_str().unwrap_or_default();
                    let addr = text
                        .to_socket_addrs()
                        .ok()
                        .and_then(|mut a| a.next())
                        .ok_or_else(|| bad(format!("`{text}` is not a host:port")))?;
                    out.verification_nameservers.push(addr);
                }
            }
        }
        let Some(table) = settings.tables.get("dns") else {
            return Ok(out);
        };
        for (name, v) in table {
            let bad = |m: String| SettingsError {
                provider: format!("dns.{name}"),
                message: m,
            };
            let t = v.as_table().ok_or_else(|| bad("expected a table".into()))?;
            let s = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
            const KEYS: &[&str] = &[
                "server",
                "zone",
                "tsig_key_name",
                "tsig_algorithm",
                "tsig_secret_env",
                "propagation_timeout_seconds",
                "nameservers",
            ];
            if let Some(k) = t.keys().find(|k| !KEYS.contains(&k.as_str())) {
                return Err(bad(crate::suggest::unknown("setting", k, KEYS)));
            }
            let server =
                s("server").ok_or_else(|| bad("`server` (host:port) is required".into()))?;
            let addr = server
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| bad(format!("`server` `{server}` is not a host:port")))?;
            let zone = s("zone").ok_or_else(|| bad("`zone` is required".into()))?;
            // A missing secret is reported when the server is first used, so `validate`
            // and reviews of a plan without refresh need no secrets.
            let mut unavailable = None;
            let secret = match (s("tsig_key_name"), s("tsig_secret_env")) {
                (Some(key), Some(env)) => match std::env::var(&env) {
                    Ok(secret) => Some((
                        key,
                        s("tsig_algorithm").unwrap_or_else(|| "hmac-sha256".into()),
                        secret,
                    )),
                    Err(_) => {
                        unavailable = Some(format!(
                            "[providers.dns.{name}]: environment variable `{env}` (tsig_secret_env) is not set"
                        ));
                        None
                    }
                },
                (None, None) => None,
                _ => {
                    return Err(bad(
                        "set both `tsig_key_name` and `tsig_secret_env`, or neither".into(),
                    ))
                }
            };
            let timeout = Duration::from_secs(
                t.get("propagation_timeout_seconds")
                    .and_then(|v| v.as_integer())
                    .unwrap_or(30)
                    .max(0) as u64,
            );
            let srv = DnsServer::new(
                name,
                addr,
                &zone,
                secret
                    .as_ref()
                    .map(|(k, a, s)| (k.as_str(), a.as_str(), s.as_str())),
                stats.clone(),
            )
            .map_err(bad)?
            .unavailable(unavailable);
            let mut srv = srv;
            if let Some(list) = t.get("nameservers") {
                let list = list
                    .as_array()
                    .ok_or_else(|| bad("`nameservers` must be a list of host:port".into()))?;
                srv.nameservers = list
                    .iter()
                    .map(|v| {
                        let text = v.as_str().unwrap_or_default();
                        text.to_socket_addrs()
                            .ok()
                            .and_then(|mut a| a.next())
                            .ok_or_else(|| bad(format!("nameserver `{text}` is not a host:port")))
                    })
                    .collect::<Result<_, _>>()?;
            }
            out.servers.insert(name.clone(), (srv, timeout));
        }
        Ok(out)
    }

    /// The server named `name`.
    pub fn named(&self, name: &str) -> Option<&DnsServer> {
        self.servers.get(name).map(|(s, _)| s)
    }

    /// The server whose zone holds `fqdn` (the longest zone wins).
    pub fn for_name(&self, fqdn: &str) -> Option<(&DnsServer, Duration)> {
        self.servers
            .values()
            .filter(|(s, _)| s.serves(fqdn))
            .max_by_key(|(s, _)| s.zone.len())
            .map(|(s, t)| (s, *t))
    }
}

/// What the `dns` types share: the configured servers and the call counters.
pub struct Dns {
    servers: Arc<Servers>,
    stats: Arc<ApiStats>,
}

impl Dns {
    /// A provider over the configured servers: one table of types.
    pub fn provider(servers: Arc<Servers>, stats: Arc<ApiStats>) -> Family<Dns> {
        let types: Vec<Box<dyn ResourceType<Dns>>> =
            vec![Box::new(verification::DomainVerification), Box::new(Record)];
        Family::new("dns", Dns { servers, stats }, types)
    }

    fn server(&self, c: &Attrs) -> Result<(&DnsServer, Duration), ProviderError> {
        let zone = req_str(c, "zone")?;
        self.servers
            .for_name(zone)
            .filter(|(s, _)| s.zone == zone.trim_end_matches('.').to_ascii_lowercase())
            .ok_or_else(|| {
                ProviderError::invalid(format!(
                    "no [providers.dns.<name>] in landlord.toml serves zone `{zone}`"
                ))
            })
    }
}

/// The desired rrset of a configuration.
fn desired(c: &Attrs) -> Result<RrSet, ProviderError> {
    let values = c
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::invalid("`records` must be a list"))?;
    let mut values: Vec<String> = values
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .collect();
    values.sort();
    Ok(RrSet {
        name: req_str(c, "name")?
            .trim_end_matches('.')
            .to_ascii_lowercase(),
        rtype: req_str(c, "type")?.to_string(),
        ttl: opt_u64(c, "ttl")?.unwrap_or(300) as u32,
        values,
    })
}

/// Live attributes in the configuration's shape (values in the prior's order when equal).
fn attrs_of(live: &RrSet, prior: &Attrs) -> Attrs {
    let mut values = live.values.clone();
    if let Some(p) = prior.get("records").and_then(Value::as_array) {
        let mut sorted: Vec<String> = p
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        sorted.sort();
        if sorted == live.values {
            values = p
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
        }
    }
    let mut a = Attrs::new();
    a.insert(
        "zone".into(),
        prior.get("zone").cloned().unwrap_or(Value::Null),
    );
    a.insert("name".into(), json!(live.name));
    a.insert("type".into(), json!(live.rtype));
    a.insert("ttl".into(), json!(live.ttl));
    a.insert("records".into(), json!(values));
    a.insert("fqdn".into(), json!(live.name));
    a
}

fn planned(c: &Attrs) -> Attrs {
    let mut a = c.clone();
    a.entry("ttl").or_insert(json!(300));
    a.insert(
        "fqdn".into(),
        json!(req_str(c, "name")
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_ascii_lowercase()),
    );
    a
}

fn id(c: &Attrs) -> String {
    format!(
        "{}/{}",
        c.get("name").and_then(Value::as_str).unwrap_or_default(),
        c.get("type").and_then(Value::as_str).unwrap_or_default()
    )
}

/// `dns_record`: an rrset on an RFC 2136 server.
pub(crate) struct Record;

#[async_trait]
impl ResourceType<Dns> for Record {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "dns_record",
            attributes: vec![
                AttrSchema::required("zone").force_new(),
                AttrSchema::required("name").force_new(),
                AttrSchema::required("type").force_new(),
                AttrSchema::optional("ttl"),
                AttrSchema::required("records"),
                AttrSchema::computed("fqdn"),
            ],
        }
    }

    fn validate(&self, dns: &Dns, c: &Attrs) -> Result<(), ProviderError> {
        check_record_type(c, RECORD_TYPES)?;
        if c.get("zone")
            .and_then(Value::as_str)
            .is_some_and(|z| z != UNKNOWN)
        {
            let (server, _) = dns.server(c)?;
            if let Some(n) = c
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| *n != UNKNOWN)
            {
                if !server.serves(n) {
                    return Err(ProviderError::invalid(format!(
                        "`{n}` is not inside zone `{}`",
                        server.zone
                    )));
                }
            }
        }
        Ok(())
    }

    fn verify_after_apply(&self) -> bool {
        true
    }

    async fn read(&self, dns: &Dns, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        let (server, _) = dns.server(&req.prior)?;
        let want = desired(&req.prior)?;
        Ok(server
            .query(&want.name, &want.rtype)
            .await?
            .map(|l| attrs_of(&l, &req.prior)))
    }

    async fn read_many(
        &self,
        dns: &Dns,
        reqs: &[ReadRequest],
    ) -> Vec<Result<Option<Attrs>, ProviderError>> {
        // Zones with several records are transferred once; single records are queried.
        let mut by_zone: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, r) in reqs.iter().enumerate() {
            by_zone
                .entry(
                    r.prior
                        .get("zone")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                )
                .or_default()
                .push(i);
        }
        let mut out: Vec<Option<Result<Option<Attrs>, ProviderError>>> =
            reqs.iter().map(|_| None).collect();
        for idx in by_zone.values().filter(|i| i.len() > 1) {
            let Ok((server, _)) = dns.server(&reqs[idx[0]].prior) else {
                continue;
            };
            // A server that refuses transfers is read record by record below.
            let Ok(sets) = server.transfer().await else {
                continue;
            };
            for &i in idx {
                let r = &reqs[i];
                out[i] = Some(desired(&r.prior).map(|want| {
                    sets.iter()
                        .find(|s| s.name == want.name && s.rtype == want.rtype)
                        .map(|l| attrs_of(l, &r.prior))
                }));
            }
        }
        let mut results = Vec::with_capacity(reqs.len());
        for (i, r) in reqs.iter().enumerate() {
            results.push(match out[i].take() {
                Some(x) => x,
                None => self.read(dns, r).await,
            });
        }
        results
    }

    async fn apply(&self, dns: &Dns, r: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let (server, timeout) = dns.server(&r.config)?;
        let want = desired(&r.config)?;
        let live = server.query(&want.name, &want.rtype).await?;
        match (&r.prior, live) {
            // Already exactly as wanted (a retried or recovered create): nothing to send.
            (_, Some(live)) if live == want => {}
            (None, None) => server.create(&want).await?,
            (None, Some(live)) => {
                return Err(ProviderError::conflict(format!(
                    "`{}` {} already exists with {:?} and is not managed by landlord",
                    want.name, want.rtype, live.values
                )))
            }
            (Some(_), None) => server.create(&want).await?,
            // The live set (drifted or not) is swapped atomically: a change between this
            // read and the update is refused by the server.
            (Some(_), Some(live)) => server.swap(&live, &want).await?,
        }
        server
            .wait_served(&want.name, &want.rtype, &want.values, timeout)
            .await?;
        let a = planned(&r.config);
        Ok(ApplyResponse {
            id: id(&a),
            attributes: a,
        })
    }

    async fn delete(&self, dns: &Dns, req: &DeleteRequest) -> Result<(), ProviderError> {
        let (server, _) = dns.server(&req.prior)?;
        let want = desired(&req.prior)?;
        if server.query(&want.name, &want.rtype).await?.is_none() {
            return Ok(());
        }
        server.delete_rrset(&want.name, &want.rtype).await
    }

    async fn recover(
        &self,
        dns: &Dns,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        let (server, _) = dns.server(req.prior.as_ref().unwrap_or(&req.config))?;
        let want = desired(&req.config)?;
        Ok(server.query(&want.name, &want.rtype).await?.map(|live| {
            let a = attrs_of(&live, &req.config);
            ApplyResponse {
                id: id(&a),
                attributes: a,
            }
        }))
    }

    /// Nameservers whose answer for the record differs from what the server's API holds.
    async fn served_differences(
        &self,
        dns: &Dns,
        req: &ReadRequest,
        api: &Attrs,
    ) -> Result<Vec<(String, Attrs)>, ProviderError> {
        let (server, _) = dns.server(&req.prior)?;
        let want = desired(api)?;
        let mut out = Vec::new();
        for ns in &server.nameservers {
            let values = server.resolve_at(*ns, &want.name, &want.rtype).await?;
            if values != want.values {
                let live = RrSet {
                    values,
                    ..want.clone()
                };
                out.push((ns.to_string(), attrs_of(&live, api)));
            }
        }
        Ok(out)
    }
}
