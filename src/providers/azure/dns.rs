//! `azure_dns_zone` and `azure_dns_record_set` on Microsoft.Network (api-version
//! 2018-05-01). Record sets carry landlord's address in their metadata.

use azure_mgmt_dns::package_2018_05::models::{
    ARecord, AaaaRecord, CaaRecord, CnameRecord, MxRecord, RecordSet, RecordSetProperties,
    Resource, TxtRecord, Zone,
};
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::super::attrs::{check_record_type, opt_u64, CLOUD_RECORD_TYPES};
use super::super::challenge::ChallengeZone;
use super::super::{AttrSchema, ProviderError, ResourceSchema};
use super::{classify, found, req, split_tags, tags, Arm, Clients, Live};
use crate::value::Attrs;

pub(super) fn validate(c: &Attrs) -> Result<(), ProviderError> {
    check_record_type(c, CLOUD_RECORD_TYPES)
}

pub(super) async fn read_zone(cx: &Clients, c: &Attrs) -> Result<Option<Live>, ProviderError> {
    let (rg, name) = (req(c, "resource_group_name")?, req(c, "name")?);
    cx.count("dnsZones.get");
    let z = found(
        "dns zone get",
        cx.dns.zones_client().get(rg, name, &cx.subscription).await,
    )?;
    Ok(z.map(|z| {
        let (user, owner) = split_tags(z.resource.tags.as_ref());
        let mut a = Attrs::new();
        a.insert("name".into(), json!(name));
        a.insert("resource_group_name".into(), json!(rg));
        a.insert("tags".into(), user);
        a.insert("id".into(), json!(z.resource.id));
        a.insert(
            "name_servers".into(),
            json!(z.properties.map(|p| p.name_servers).unwrap_or_default()),
        );
        Live { attrs: a, owner }
    }))
}

pub(super) async fn apply_zone(cx: &Clients, c: &Attrs, addr: &str) -> Result<(), ProviderError> {
    let mut r = Resource::new("global".into());
    r.tags = Some(tags(c, addr)?);
    cx.count("dnsZones.createOrUpdate");
    cx.dns
        .zones_client()
        .create_or_update(
            req(c, "resource_group_name")?,
            req(c, "name")?,
            Zone::new(r),
            &cx.subscription,
        )
        .await
        .map_err(|e| classify("dns zone create", e))?;
    Ok(())
}

pub(super) async fn delete_zone(cx: &Clients, c: &Attrs) -> Result<(), ProviderError> {
    cx.count("dnsZones.delete");
    let sent = found(
        "dns zone delete",
        cx.dns
            .zones_client()
            .delete(
                req(c, "resource_group_name")?,
                req(c, "name")?,
                &cx.subscription,
            )
            .send()
            .await,
    )?;
    if let Some(rsp) = sent {
        cx.settle("dns zone delete", &rsp).await?;
    }
    Ok(())
}

pub(super) async fn read_record(cx: &Clients, c: &Attrs) -> Result<Option<Live>, ProviderError> {
    let (rg, zone, name, rtype) = (
        req(c, "resource_group_name")?,
        req(c, "zone_name")?,
        req(c, "name")?,
        req(c, "type")?,
    );
    cx.count("recordSets.get");
    let rs = found(
        "dns record set get",
        cx.dns
            .record_sets_client()
            .get(rg, zone, name, rtype, &cx.subscription)
            .await,
    )?;
    Ok(rs.map(|rs| record_live(c, rtype, rs)))
}

/// A record set as landlord records it, for the configuration `c`.
fn record_live(c: &Attrs, rtype: &str, rs: RecordSet) -> Live {
    let p = rs.properties.unwrap_or_default();
    let (_, owner) = split_tags(p.metadata.as_ref());
    // Record order is not significant: keep the configured order when the sets match.
    let mut values = record_values(rtype, &p);
    let (mut wanted, mut sorted) = (strings(c.get("records")), values.clone());
    wanted.sort();
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
    Live { attrs: a, owner }
}

/// Reads record sets, listing each zone that holds more than one of them once.
async fn read_batch(cx: &Clients, configs: &[&Attrs]) -> Vec<Result<Option<Live>, ProviderError>> {
    let mut out: Vec<Option<Result<Option<Live>, ProviderError>>> =
        configs.iter().map(|_| None).collect();
    let mut zones: std::collections::BTreeMap<(String, String), Vec<usize>> = Default::default();
    for (i, c) in configs.iter().enumerate() {
        if let (Ok(rg), Ok(zone)) = (req(c, "resource_group_name"), req(c, "zone_name")) {
            zones
                .entry((rg.to_string(), zone.to_string()))
                .or_default()
                .push(i);
        }
    }
    for ((rg, zone), idx) in zones.into_iter().filter(|(_, v)| v.len() > 1) {
        let of_zone: Vec<&Attrs> = idx.iter().map(|&i| configs[i]).collect();
        match read_records_of_zone(cx, &rg, &zone, &of_zone).await {
            Ok(lives) => {
                for (&i, live) in idx.iter().zip(lives) {
                    out[i] = Some(Ok(live));
                }
            }
            Err(e) => {
                for &i in &idx {
                    out[i] = Some(Err(e.clone()));
                }
            }
        }
    }
    let mut results = Vec::with_capacity(configs.len());
    for (i, slot) in out.into_iter().enumerate() {
        results.push(match slot {
            Some(r) => r,
            None => read_record(cx, configs[i]).await,
        });
    }
    results
}

/// Reads the record sets of one zone with a listing (a page per 100 sets) instead of one
/// GET each; `None` for those that do not exist.
async fn read_records_of_zone(
    cx: &Clients,
    rg: &str,
    zone: &str,
    configs: &[&Attrs],
) -> Result<Vec<Option<Live>>, ProviderError> {
    use futures_util::StreamExt;
    let mut by_key: std::collections::HashMap<(String, String), RecordSet> = Default::default();
    let mut pages = cx
        .dns
        .record_sets_client()
        .list_by_dns_zone(rg, zone, &cx.subscription)
        .into_stream();
    while let Some(page) = pages.next().await {
        cx.count("recordSets.list");
        let page = match found("dns record set list", page)? {
            Some(p) => p,
            None => return Ok(configs.iter().map(|_| None).collect()),
        };
        for rs in page.value {
            let rtype = rs
                .type_
                .as_deref()
                .and_then(|t| t.rsplit('/').next())
                .unwrap_or_default()
                .to_ascii_uppercase();
            let name = rs.name.clone().unwrap_or_default().to_ascii_lowercase();
            by_key.insert((name, rtype), rs);
        }
    }
    configs
        .iter()
        .map(|c| {
            let (name, rtype) = (req(c, "name")?, req(c, "type")?);
            Ok(by_key
                .remove(&(name.to_ascii_lowercase(), rtype.to_ascii_uppercase()))
                .map(|rs| record_live(c, rtype, rs)))
        })
        .collect()
}

pub(super) async fn apply_record(cx: &Clients, c: &Attrs, addr: &str) -> Result<(), ProviderError> {
    let rtype = req(c, "type")?;
    let mut p = RecordSetProperties {
        ttl: Some(opt_u64(c, "ttl")?.unwrap_or(3600) as i64),
        metadata: Some(json!({ super::ADDRESS_TAG: addr })),
        ..Default::default()
    };
    set_values(rtype, &mut p, &strings(c.get("records")))?;
    let mut rs = RecordSet::new();
    rs.properties = Some(p);
    cx.count("recordSets.createOrUpdate");
    cx.dns
        .record_sets_client()
        .create_or_update(
            req(c, "resource_group_name")?,
            req(c, "zone_name")?,
            req(c, "name")?,
            rtype,
            rs,
            &cx.subscription,
        )
        .await
        .map_err(|e| classify("dns record set create", e))?;
    wait_served(cx, c).await
}

pub(super) async fn delete_record(cx: &Clients, c: &Attrs) -> Result<(), ProviderError> {
    cx.count("recordSets.delete");
    found(
        "dns record set delete",
        cx.dns
            .record_sets_client()
            .delete(
                req(c, "resource_group_name")?,
                req(c, "zone_name")?,
                req(c, "name")?,
                req(c, "type")?,
                &cx.subscription,
            )
            .send()
            .await,
    )?;
    Ok(())
}

/// Record values as strings (numbers and other scalars in their JSON form).
pub(super) fn strings(v: Option<&Value>) -> Vec<String> {
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

fn record_values(rtype: &str, p: &RecordSetProperties) -> Vec<String> {
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
    p: &mut RecordSetProperties,
    values: &[String],
) -> Result<(), ProviderError> {
    let bad = |v: &str| ProviderError::invalid(format!("invalid {rtype} value `{v}`"));
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
                return Err(ProviderError::invalid(
                    "a CNAME record set holds exactly one value",
                ));
            };
            p.cname_record = Some(CnameRecord {
                cname: Some(v.clone()),
            });
        }
        "TXT" => {
            // One TXT string holds at most 255 characters: split longer values.
            p.txt_records = values
                .iter()
                .map(|v| TxtRecord {
                    value: v
                        .as_bytes()
                        .chunks(255)
                        .map(|c| String::from_utf8_lossy(c).into_owned())
                        .collect(),
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
        "CAA" => {
            p.caa_records = values
                .iter()
                .map(|v| {
                    let mut parts = v.splitn(3, ' ');
                    let (Some(flags), Some(tag), Some(value)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        return Err(bad(v));
                    };
                    Ok(CaaRecord {
                        flags: Some(flags.parse().map_err(|_| bad(v))?),
                        tag: Some(tag.to_string()),
                        value: Some(value.trim_matches('"').to_string()),
                    })
                })
                .collect::<Result<_, ProviderError>>()?
        }
        other => {
            return Err(ProviderError::invalid(format!(
                "unsupported record type `{other}`: expected one of {}",
                CLOUD_RECORD_TYPES.join(", ")
            )))
        }
    }
    Ok(())
}

/// An Azure DNS zone used for ACME DNS-01 challenges (TXT record sets, TTL 60).
pub(super) struct AzureChallengeZone {
    pub(super) cx: Arc<Clients>,
    pub(super) resource_group: String,
    pub(super) zone: String,
    pub(super) nameservers: Vec<SocketAddr>,
}

impl AzureChallengeZone {
    /// The record set name relative to the zone (`@` for the apex).
    fn relative(&self, name: &str) -> String {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        match name.strip_suffix(&format!(".{}", self.zone)) {
            Some(rel) => rel.to_string(),
            None => "@".to_string(),
        }
    }

    /// The TXT values at `rel` and the record set's etag (`None`: no record set).
    async fn values(&self, rel: &str) -> Result<(Vec<String>, Option<String>), ProviderError> {
        let cx = &self.cx;
        cx.count("recordSets.get");
        let rs = found(
            "dns record set get",
            cx.dns
                .record_sets_client()
                .get(
                    &self.resource_group,
                    &self.zone,
                    rel,
                    "TXT",
                    &cx.subscription,
                )
                .await,
        )?;
        Ok(match rs {
            Some(r) => (
                r.properties
                    .as_ref()
                    .map(|p| record_values("TXT", p))
                    .unwrap_or_default(),
                Some(r.etag.unwrap_or_default()),
            ),
            None => (vec![], None),
        })
    }

    /// Writes the TXT values at `rel` if the record set is still as read (`etag`);
    /// `Ok(false)` when someone changed it in between.
    async fn write(
        &self,
        rel: &str,
        values: Vec<String>,
        etag: Option<String>,
    ) -> Result<bool, ProviderError> {
        let cx = &self.cx;
        let what = format!("challenge record `{rel}` in `{}`", self.zone);
        let sent = if values.is_empty() {
            let Some(etag) = etag else {
                return Ok(true);
            };
            cx.count("recordSets.delete");
            cx.dns
                .record_sets_client()
                .delete(
                    &self.resource_group,
                    &self.zone,
                    rel,
                    "TXT",
                    &cx.subscription,
                )
                .if_match(etag)
                .send()
                .await
                .map(|_| ())
        } else {
            let mut p = RecordSetProperties {
                ttl: Some(60),
                ..Default::default()
            };
            set_values("TXT", &mut p, &values)?;
            let mut rs = RecordSet::new();
            rs.properties = Some(p);
            cx.count("recordSets.createOrUpdate");
            let call = cx.dns.record_sets_client().create_or_update(
                &self.resource_group,
                &self.zone,
                rel,
                "TXT",
                rs,
                &cx.subscription,
            );
            match etag {
                Some(e) => call.if_match(e),
                None => call.if_none_match("*"),
            }
            .send()
            .await
            .map(|_| ())
        };
        match sent {
            Ok(()) => Ok(true),
            Err(e)
                if e.as_http_error()
                    .is_some_and(|h| u16::from(h.status()) == 412) =>
            {
                Ok(false)
            }
            Err(e)
                if e.as_http_error()
                    .is_some_and(|h| u16::from(h.status()) == 404) =>
            {
                Ok(true)
            }
            Err(e) => Err(classify(&what, e)),
        }
    }

    /// Read-modify-write of the TXT values at `name`, retried while other writers (another
    /// certificate's challenge for the same name) get in between.
    async fn change(
        &self,
        name: &str,
        edit: impl Fn(&mut Vec<String>),
    ) -> Result<(), ProviderError> {
        let rel = self.relative(name);
        for attempt in 0..8u64 {
            let (mut values, etag) = self.values(&rel).await?;
            edit(&mut values);
            if self.write(&rel, values, etag).await? {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50 * (attempt + 1))).await;
        }
        Err(ProviderError::transient(format!(
            "challenge record `{name}` kept changing while it was written"
        )))
    }
}

/// Where a zone's answers are checked: `preferred`, else the provider's `dns_nameservers`,
/// else the zone's own name servers (looked up by name, once per run).
async fn name_servers(
    cx: &Clients,
    resource_group: &str,
    zone: &str,
    preferred: &[SocketAddr],
) -> Result<Vec<SocketAddr>, ProviderError> {
    if !preferred.is_empty() {
        return Ok(preferred.to_vec());
    }
    if let Some(list) = cx.dns_nameservers.as_ref().filter(|l| !l.is_empty()) {
        return Ok(list.clone());
    }
    let key = (resource_group.to_string(), zone.to_string());
    let mut cache = cx.zone_servers.lock().await;
    if let Some(found) = cache.get(&key) {
        return Ok(found.clone());
    }
    let mut c = Attrs::new();
    c.insert("resource_group_name".into(), json!(resource_group));
    c.insert("name".into(), json!(zone));
    let live = read_zone(cx, &c)
        .await?
        .ok_or_else(|| ProviderError::failed(format!("Azure DNS zone `{zone}` does not exist")))?;
    let mut out = Vec::new();
    for host in strings(live.attrs.get("name_servers")) {
        if let Ok(addrs) = tokio::net::lookup_host((host.trim_end_matches('.'), 53)).await {
            out.extend(addrs.take(1));
        }
    }
    if out.is_empty() {
        return Err(ProviderError::failed(format!(
            "no name server of Azure DNS zone `{zone}` could be resolved: set [providers.azure] \
             dns_nameservers to name servers this machine reaches (or [] to skip served-answer checks)"
        )));
    }
    cache.insert(key, out.clone());
    Ok(out)
}

/// Record values compared as resolvers see them: no trailing dot, in order.
fn comparable(values: Vec<String>) -> Vec<String> {
    let mut v: Vec<String> = values
        .into_iter()
        .map(|x| x.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    v.sort();
    v
}

/// Name servers whose answer for a record set differs from what ARM holds.
pub(super) async fn served_differences(
    cx: &Clients,
    api: &Attrs,
) -> Result<Vec<(String, Attrs)>, ProviderError> {
    let (rg, zone, name, rtype) = (
        req(api, "resource_group_name")?,
        req(api, "zone_name")?,
        req(api, "name")?,
        req(api, "type")?,
    );
    let fqdn = if name == "@" {
        zone.to_string()
    } else {
        format!("{name}.{zone}")
    };
    if cx.dns_nameservers.as_ref().is_some_and(Vec::is_empty) {
        return Ok(vec![]);
    }
    let want = comparable(strings(api.get("records")));
    let mut out = Vec::new();
    for ns in name_servers(cx, rg, zone, &[]).await? {
        cx.count("resolve");
        let got = crate::providers::dns::server::lookup(ns, &fqdn, rtype).await?;
        if comparable(got.clone()) != want {
            let mut served = api.clone();
            served.insert("records".into(), json!(got));
            out.push((ns.to_string(), served));
        }
    }
    Ok(out)
}

/// Waits until every name server serves what ARM now holds for the record set, up to
/// the provider's propagation timeout (nothing to wait for when checks are off).
pub(super) async fn wait_served(cx: &Clients, c: &Attrs) -> Result<(), ProviderError> {
    let deadline = tokio::time::Instant::now() + cx.propagation_timeout;
    loop {
        let lagging = served_differences(cx, c).await?;
        let Some((ns, served)) = lagging.first() else {
            return Ok(());
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(ProviderError::transient(format!(
                "`{}` is served as {} at {ns}, not as applied, after {}s (propagation_timeout_seconds)",
                req(c, "name")?,
                served.get("records").cloned().unwrap_or_default(),
                cx.propagation_timeout.as_secs()
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[async_trait]
impl ChallengeZone for AzureChallengeZone {
    fn zone(&self) -> &str {
        &self.zone
    }

    async fn add_txt(&self, name: &str, value: &str) -> Result<(), ProviderError> {
        self.change(name, |values| {
            if !values.iter().any(|v| v == value) {
                values.push(value.to_string());
            }
        })
        .await
    }

    async fn remove_txt(&self, name: &str, value: &str) -> Result<(), ProviderError> {
        self.change(name, |values| values.retain(|v| v != value))
            .await
    }

    async fn served_txt(&self, name: &str) -> Result<Vec<String>, ProviderError> {
        let servers = name_servers(
            &self.cx,
            &self.resource_group,
            &self.zone,
            &self.nameservers,
        )
        .await?;
        self.cx.count("resolve");
        crate::providers::dns::server::lookup(servers[0], name, "TXT").await
    }
}

/// `azure_dns_zone`.
pub(super) struct DnsZone;

#[async_trait]
impl Arm for DnsZone {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "azure_dns_zone",
            attributes: vec![
                AttrSchema::required("name").force_new(),
                AttrSchema::required("resource_group_name").force_new(),
                AttrSchema::optional("tags"),
                AttrSchema::computed("id"),
                AttrSchema::computed("name_servers"),
            ],
        }
    }
    async fn read(&self, cx: &Clients, c: &Attrs) -> Result<Option<Live>, ProviderError> {
        read_zone(cx, c).await
    }
    async fn put(
        &self,
        cx: &Clients,
        c: &Attrs,
        _prior: Option<&Attrs>,
        addr: &str,
    ) -> Result<(), ProviderError> {
        apply_zone(cx, c, addr).await
    }
    async fn delete(&self, cx: &Clients, c: &Attrs) -> Result<(), ProviderError> {
        delete_zone(cx, c).await
    }
}

/// `azure_dns_record_set`.
pub(super) struct DnsRecordSet;

#[async_trait]
impl Arm for DnsRecordSet {
    fn schema(&self) -> ResourceSchema {
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
        }
    }
    fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        validate(c)
    }
    async fn read_batch(
        &self,
        cx: &Clients,
        configs: &[&Attrs],
    ) -> Option<Vec<Result<Option<Live>, ProviderError>>> {
        Some(read_batch(cx, configs).await)
    }
    async fn served_differences(
        &self,
        cx: &Clients,
        api: &Attrs,
    ) -> Result<Vec<(String, Attrs)>, ProviderError> {
        served_differences(cx, api).await
    }
    async fn read(&self, cx: &Clients, c: &Attrs) -> Result<Option<Live>, ProviderError> {
        read_record(cx, c).await
    }
    async fn put(
        &self,
        cx: &Clients,
        c: &Attrs,
        _prior: Option<&Attrs>,
        addr: &str,
    ) -> Result<(), ProviderError> {
        apply_record(cx, c, addr).await
    }
    async fn delete(&self, cx: &Clients, c: &Attrs) -> Result<(), ProviderError> {
        delete_record(cx, c).await
    }
}
