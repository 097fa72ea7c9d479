//! `aws_route53_zone` and `aws_route53_record`. Record changes of one zone go out in as
//! few ChangeResourceRecordSets calls as the limits allow (1,000 changes with UPSERT
//! counting twice, 32,000 characters of values); refresh lists each zone once.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, HostedZoneConfig, ResourceRecord,
    ResourceRecordSet, RrType, Tag, TagResourceType,
};
use serde_json::{json, Value};

use super::error::{classify, code};
use super::{short_token, tags_with_address, user_tags, Aws, Clients};
use crate::providers::attrs::{keep_config, opt_str, opt_u64, req_str, TagSync};
use crate::providers::resource::recover_update;
use crate::providers::{
    ApplyRequest, ApplyResponse, AttrSchema, DeleteRequest, ErrorKind, ProviderError, ReadRequest,
    RecoverRequest, ResourceSchema, ResourceType,
};
use crate::value::{Attrs, UNKNOWN};

/// Changes per ChangeResourceRecordSets call (an UPSERT counts twice).
pub(super) const MAX_CHANGES: usize = 1000;
/// Characters of record values per call.
const MAX_CHARS: usize = 32_000;
/// Record sets per ListResourceRecordSets page.
const PAGE: i32 = 300;
const RECORD_TYPES: &[&str] = &["A", "AAAA", "CNAME", "TXT", "MX", "CAA"];

pub(super) fn zone_schema() -> ResourceSchema {
    ResourceSchema {
        type_name: "aws_route53_zone",
        attributes: vec![
            AttrSchema::required("name").force_new(),
            AttrSchema::optional("comment"),
            AttrSchema::optional("force_destroy"),
            AttrSchema::optional("tags"),
            AttrSchema::optional("region").force_new(),
            AttrSchema::computed("zone_id"),
            AttrSchema::computed("name_servers"),
        ],
    }
}

pub(super) fn record_schema() -> ResourceSchema {
    ResourceSchema {
        type_name: "aws_route53_record",
        attributes: vec![
            AttrSchema::required("zone_id").force_new(),
            AttrSchema::required("name").force_new(),
            AttrSchema::required("type").force_new(),
            AttrSchema::optional("ttl"),
            AttrSchema::optional("records"),
            AttrSchema::optional("alias"),
            AttrSchema::optional("region").force_new(),
            AttrSchema::computed("fqdn"),
        ],
    }
}

fn known(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| *s != UNKNOWN)
}

fn check_name(what: &str, name: &str) -> Result<(), ProviderError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && !name.ends_with('.')
        && name.split('.').enumerate().all(|(i, l)| {
            !l.is_empty()
                && l.len() <= 63
                && (l.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                }) || (i == 0 && l == "*"))
        });
    if ok {
        Ok(())
    } else {
        Err(ProviderError::invalid(format!(
            "invalid {what} `{name}`: expected lowercase DNS labels without a trailing dot"
        )))
    }
}

pub(super) fn validate_zone(c: &Attrs) -> Result<(), ProviderError> {
    match known(c.get("name")) {
        Some(n) => check_name("zone name", n),
        None => Ok(()),
    }
}

pub(super) fn validate_record(c: &Attrs) -> Result<(), ProviderError> {
    if let Some(t) = known(c.get("type")) {
        if !RECORD_TYPES.contains(&t) {
            return Err(ProviderError::invalid(format!(
                "unsupported record type `{t}`: expected one of {}",
                RECORD_TYPES.join(", ")
            )));
        }
    }
    if let Some(n) = known(c.get("name")) {
        check_name("record name", n)?;
    }
    let has_records = c.get("records").is_some_and(|v| !v.is_null());
    let has_alias = c.get("alias").is_some_and(|v| !v.is_null());
    if has_records == has_alias {
        return Err(ProviderError::invalid(
            "set exactly one of `records` and `alias`",
        ));
    }
    Ok(())
}

/// `Z123` from `/hostedzone/Z123`.
fn bare_zone_id(id: &str) -> String {
    id.trim_start_matches("/hostedzone/").to_string()
}

/// Lowercase, no trailing dot, `*` unescaped.
fn norm_name(n: &str) -> String {
    n.trim_end_matches('.')
        .replace("\\052", "*")
        .to_ascii_lowercase()
}

pub(super) fn record_id(a: &Attrs) -> String {
    format!(
        "{}_{}_{}",
        a.get("zone_id").and_then(Value::as_str).unwrap_or_default(),
        a.get("name").and_then(Value::as_str).unwrap_or_default(),
        a.get("type").and_then(Value::as_str).unwrap_or_default()
    )
}

// ---------------------------------------------------------------- zones

fn caller_reference(token: &str) -> String {
    format!("landlord-{}", short_token(token, 40))
}

/// Every tag of a hosted zone, landlord's own included.
async fn zone_tags(
    aws: &Aws,
    c: &Clients,
    id: &str,
) -> Result<BTreeMap<String, String>, ProviderError> {
    aws.count("route53", "ListTagsForResource");
    let out = c
        .route53
        .list_tags_for_resource()
        .resource_type(TagResourceType::Hostedzone)
        .resource_id(id)
        .send()
        .await
        .map_err(|e| classify("route53 ListTagsForResource", e))?;
    let tags = out.resource_tag_set().map(|s| s.tags()).unwrap_or_default();
    Ok(tags
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

pub(super) async fn read_zone(
    aws: &Aws,
    c: &Clients,
    id: &str,
    prior: &Attrs,
) -> Result<Option<Attrs>, ProviderError> {
    aws.count("route53", "GetHostedZone");
    let out = match c.route53.get_hosted_zone().id(id).send().await {
        Ok(o) => o,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_hosted_zone()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(classify("route53 GetHostedZone", e)),
    };
    let Some(z) = out.hosted_zone() else {
        return Ok(None);
    };
    let mut a = Attrs::new();
    a.insert("name".into(), json!(norm_name(z.name())));
    if let Some(comment) = z.config().and_then(|c| c.comment()) {
        a.insert("comment".into(), json!(comment));
    }
    a.insert("tags".into(), user_tags(zone_tags(aws, c, id).await?));
    a.insert("zone_id".into(), json!(bare_zone_id(z.id())));
    let ns: Vec<String> = out
        .delegation_set()
        .map(|d| d.name_servers().to_vec())
        .unwrap_or_default();
    a.insert("name_servers".into(), json!(ns));
    keep_config(&mut a, prior, &["force_destroy", "region"]);
    Ok(Some(a))
}

/// Finds a zone created under this intent's caller reference.
async fn find_zone(
    aws: &Aws,
    c: &Clients,
    name: &str,
    token: &str,
) -> Result<Option<String>, ProviderError> {
    aws.count("route53", "ListHostedZonesByName");
    let out = c
        .route53
        .list_hosted_zones_by_name()
        .dns_name(name)
        .send()
        .await
        .map_err(|e| classify("route53 ListHostedZonesByName", e))?;
    let want = caller_reference(token);
    Ok(out
        .hosted_zones()
        .iter()
        .find(|z| norm_name(z.name()) == name && z.caller_reference() == want)
        .map(|z| bare_zone_id(z.id())))
}

pub(super) async fn recover_zone(
    aws: &Aws,
    c: &Clients,
    req: &RecoverRequest,
) -> Result<Option<(String, Attrs)>, ProviderError> {
    let name = req_str(&req.config, "name")?;
    match find_zone(aws, c, name, &req.token).await? {
        Some(id) => Ok(read_zone(aws, c, &id, &req.config).await?.map(|a| (id, a))),
        None => Ok(None),
    }
}

/// Makes the zone's live tags the configured ones plus the address tag.
async fn set_zone_tags(
    aws: &Aws,
    c: &Clients,
    id: &str,
    req: &ApplyRequest,
) -> Result<(), ProviderError> {
    let want = tags_with_address(&req.config, &req.address)?;
    let sync = TagSync::new(&zone_tags(aws, c, id).await?, &want, super::aws_owned);
    if sync.is_empty() {
        return Ok(());
    }
    aws.count("route53", "ChangeTagsForResource");
    let mut call = c
        .route53
        .change_tags_for_resource()
        .resource_type(TagResourceType::Hostedzone)
        .resource_id(id);
    for (k, v) in &sync.set {
        call = call.add_tags(Tag::builder().key(k).value(v).build());
    }
    for k in sync.remove {
        call = call.remove_tag_keys(k);
    }
    call.send()
        .await
        .map_err(|e| classify("route53 ChangeTagsForResource", e))?;
    Ok(())
}

pub(super) async fn apply_zone(
    aws: &Aws,
    c: &Clients,
    req: &ApplyRequest,
) -> Result<ApplyResponse, ProviderError> {
    let name = req_str(&req.config, "name")?;
    let comment = opt_str(&req.config, "comment")?;
    let id = match req
        .prior
        .as_ref()
        .and_then(|p| p.get("zone_id"))
        .and_then(Value::as_str)
    {
        Some(id) => {
            if comment
                != req
                    .prior
                    .as_ref()
                    .and_then(|p| p.get("comment"))
                    .and_then(Value::as_str)
            {
                aws.count("route53", "UpdateHostedZoneComment");
                c.route53
                    .update_hosted_zone_comment()
                    .id(id)
                    .set_comment(comment.map(str::to_string))
                    .send()
                    .await
                    .map_err(|e| classify("route53 UpdateHostedZoneComment", e))?;
            }
            id.to_string()
        }
        None => {
            aws.count("route53", "CreateHostedZone");
            let mut call = c
                .route53
                .create_hosted_zone()
                .name(name)
                .caller_reference(caller_reference(&req.token));
            if let Some(cm) = comment {
                call = call.hosted_zone_config(HostedZoneConfig::builder().comment(cm).build());
            }
            match call.send().await {
                Ok(out) => bare_zone_id(out.hosted_zone().map(|z| z.id()).unwrap_or_default()),
                // A retry of this same create: the caller reference finds the zone.
                Err(e) if code(&e) == Some("HostedZoneAlreadyExists") => {
                    match find_zone(aws, c, name, &req.token).await? {
                        Some(id) => id,
                        None => return Err(classify("route53 CreateHostedZone", e)),
                    }
                }
                Err(e) => return Err(classify("route53 CreateHostedZone", e)),
            }
        }
    };
    set_zone_tags(aws, c, &id, req).await?;
    let attrs = read_zone(aws, c, &id, &req.config)
        .await?
        .ok_or_else(|| ProviderError::transient(format!("hosted zone `{id}` not readable yet")))?;
    // What the service holds is recorded, never the configuration in its place: a change
    // that did not converge shows up in the engine's check and in the next plan.
    Ok(ApplyResponse {
        id,
        attributes: attrs,
    })
}

pub(super) async fn delete_zone(
    aws: &Aws,
    c: &Clients,
    req: &DeleteRequest,
) -> Result<(), ProviderError> {
    let id = req.id.clone();
    if req.prior.get("force_destroy").and_then(Value::as_bool) == Some(true) {
        let apex = req
            .prior
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let sets = match list_zone(aws, c, &id, None).await {
            Ok(s) => s,
            Err(ZoneGone) => return Ok(()),
        }?;
        let doomed: Vec<ResourceRecordSet> = sets
            .into_iter()
            .filter(|s| {
                !(norm_name(s.name()) == apex && matches!(s.r#type(), RrType::Soa | RrType::Ns))
            })
            .collect();
        for chunk in doomed.chunks(MAX_CHANGES) {
            let changes = chunk
                .iter()
                .map(|s| {
                    Change::builder()
                        .action(ChangeAction::Delete)
                        .resource_record_set(s.clone())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ProviderError::failed(e.to_string()))?;
            submit(aws, c, &id, changes).await?;
        }
    }
    aws.count("route53", "DeleteHostedZone");
    match c.route53.delete_hosted_zone().id(&id).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_hosted_zone()) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_hosted_zone_not_empty()) => Err(ProviderError::failed(format!(
            "hosted zone `{id}` still holds records that landlord does not manage; set `force_destroy: true` to delete them with the zone"
        ))),
        Err(e) => Err(classify("route53 DeleteHostedZone", e)),
    }
}

// ---------------------------------------------------------------- records

struct ZoneGone;

/// Every record set of a zone (or, with `start`, at most one page from that name/type).
async fn list_zone(
    aws: &Aws,
    c: &Clients,
    zone: &str,
    start: Option<(&str, &str)>,
) -> Result<Result<Vec<ResourceRecordSet>, ProviderError>, ZoneGone> {
    let mut out = Vec::new();
    let mut next: Option<(String, RrType)> = start.map(|(n, t)| (n.to_string(), RrType::from(t)));
    loop {
        aws.count("route53", "ListResourceRecordSets");
        let mut call = c.route53.list_resource_record_sets().hosted_zone_id(zone);
        call = match (&next, start) {
            (Some((n, t)), _) => call.start_record_name(n).start_record_type(t.clone()),
            _ => call,
        };
        call = call.max_items(if start.is_some() { 1 } else { PAGE });
        let page = match call.send().await {
            Ok(p) => p,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_hosted_zone()) =>
            {
                return Err(ZoneGone)
            }
            Err(e) => return Ok(Err(classify("route53 ListResourceRecordSets", e))),
        };
        out.extend(page.resource_record_sets().iter().cloned());
        if start.is_some() || !page.is_truncated() {
            return Ok(Ok(out));
        }
        match (page.next_record_name(), page.next_record_type()) {
            (Some(n), Some(t)) => next = Some((n.to_string(), t.clone())),
            _ => return Ok(Ok(out)),
        }
    }
}

fn unquote(v: &str) -> String {
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        v[1..v.len() - 1].replace("\"\"", "")
    } else {
        v.to_string()
    }
}

fn quote(rtype: &str, v: &str) -> String {
    if rtype == "TXT" && !v.starts_with('"') {
        format!("\"{}\"", v.replace('"', "\\\""))
    } else {
        v.to_string()
    }
}

/// The attributes of a live record set, in the shape of the configuration.
fn record_attrs(zone: &str, s: &ResourceRecordSet, prior: &Attrs) -> Attrs {
    let rtype = s.r#type().as_str().to_string();
    let mut a = Attrs::new();
    a.insert("zone_id".into(), json!(zone));
    a.insert("name".into(), json!(norm_name(s.name())));
    a.insert("type".into(), json!(rtype));
    if let Some(alias) = s.alias_target() {
        a.insert(
            "alias".into(),
            json!({ "name": norm_name(alias.dns_name()), "zone_id": alias.hosted_zone_id(), "evaluate_target_health": alias.evaluate_target_health() }),
        );
    } else {
        if let Some(ttl) = s.ttl() {
            a.insert("ttl".into(), json!(ttl));
        }
        let values: Vec<String> = s
            .resource_records()
            .iter()
            .map(|r| {
                if rtype == "TXT" {
                    unquote(r.value())
                } else {
                    r.value().to_string()
                }
            })
            .collect();
        a.insert("records".into(), json!(values));
    }
    a.insert("fqdn".into(), json!(norm_name(s.name())));
    keep_config(&mut a, prior, &["region"]);
    a
}

/// Reads records, listing each zone once when several of its records are asked for.
pub(super) async fn read_records(
    aws: &Aws,
    c: &Clients,
    reqs: &[ReadRequest],
) -> Vec<Result<Option<Attrs>, ProviderError>> {
    let mut by_zone: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in reqs.iter().enumerate() {
        by_zone
            .entry(
                r.prior
                    .get("zone_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            )
            .or_default()
            .push(i);
    }
    let mut out: Vec<Result<Option<Attrs>, ProviderError>> =
        reqs.iter().map(|_| Ok(None)).collect();
    for (zone, idx) in by_zone {
        let key = |a: &Attrs| {
            (
                a.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                a.get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            )
        };
        let start = (idx.len() == 1).then(|| key(&reqs[idx[0]].prior));
        let listed = list_zone(
            aws,
            c,
            &zone,
            start.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
        )
        .await;
        let sets = match listed {
            Err(ZoneGone) => continue,
            Ok(Err(e)) => {
                for i in idx {
                    out[i] = Err(e.clone());
                }
                continue;
            }
            Ok(Ok(s)) => s,
        };
        let map: HashMap<(String, String), &ResourceRecordSet> = sets
            .iter()
            .map(|s| ((norm_name(s.name()), s.r#type().as_str().to_string()), s))
            .collect();
        for i in idx {
            let prior = &reqs[i].prior;
            out[i] = Ok(map.get(&key(prior)).map(|s| record_attrs(&zone, s, prior)));
        }
    }
    out
}

fn record_set(c: &Attrs) -> Result<ResourceRecordSet, ProviderError> {
    let name = req_str(c, "name")?;
    let rtype = req_str(c, "type")?;
    let bad = |e: aws_sdk_route53::error::BuildError| ProviderError::invalid(e.to_string());
    let mut b = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::from(rtype));
    if let Some(alias) = c.get("alias").and_then(Value::as_object) {
        let s = |k: &str| {
            alias
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let target = AliasTarget::builder()
            .dns_name(s("name"))
            .hosted_zone_id(s("zone_id"))
            .evaluate_target_health(
                alias
                    .get("evaluate_target_health")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            )
            .build()
            .map_err(bad)?;
        b = b.alias_target(target);
    } else {
        let values = c
            .get("records")
            .and_then(Value::as_array)
            .ok_or_else(|| ProviderError::invalid("`records` must be a list"))?;
        b = b.ttl(opt_u64(c, "ttl")?.unwrap_or(300) as i64);
        for v in values {
            let text = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            b = b.resource_records(
                ResourceRecord::builder()
                    .value(quote(rtype, &text))
                    .build()
                    .map_err(bad)?,
            );
        }
    }
    b.build().map_err(bad)
}

/// The configuration as it will read back.
fn planned_attrs(c: &Attrs) -> Attrs {
    let mut a = c.clone();
    if a.get("alias").is_none_or(Value::is_null) && a.get("ttl").is_none() {
        a.insert("ttl".into(), json!(300));
    }
    a.insert("fqdn".into(), c.get("name").cloned().unwrap_or(Value::Null));
    a
}

async fn submit(
    aws: &Aws,
    c: &Clients,
    zone: &str,
    changes: Vec<Change>,
) -> Result<(), ProviderError> {
    aws.count("route53", "ChangeResourceRecordSets");
    let batch = ChangeBatch::builder()
        .set_changes(Some(changes))
        .build()
        .map_err(|e| ProviderError::failed(e.to_string()))?;
    c.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| classify("route53 ChangeResourceRecordSets", e))?;
    Ok(())
}

fn weight(action: &ChangeAction, s: &ResourceRecordSet) -> (usize, usize) {
    let chars: usize = s.resource_records().iter().map(|r| r.value().len()).sum();
    let n = if *action == ChangeAction::Upsert {
        2
    } else {
        1
    };
    (n, chars * n)
}

/// Changes of one zone cut into ChangeResourceRecordSets calls within Route 53's limits
/// (1,000 changes, an UPSERT counting twice; 32,000 characters of values).
fn batches<T>(items: Vec<(T, Change)>) -> Vec<Vec<(T, Change)>> {
    let mut out: Vec<Vec<(T, Change)>> = vec![vec![]];
    let (mut n, mut chars) = (0, 0);
    for (i, ch) in items {
        let (dn, dc) = ch
            .resource_record_set()
            .map(|s| weight(ch.action(), s))
            .unwrap_or((1, 0));
        if n + dn > MAX_CHANGES || chars + dc > MAX_CHARS {
            out.push(vec![]);
            (n, chars) = (0, 0);
        }
        n += dn;
        chars += dc;
        if let Some(b) = out.last_mut() {
            b.push((i, ch));
        }
    }
    out.retain(|b| !b.is_empty());
    out
}

/// Creates (CREATE) and updates (UPSERT) records, batched per zone within the limits.
pub(super) async fn apply_records(
    aws: &Aws,
    c: &Clients,
    reqs: &[ApplyRequest],
) -> Vec<Result<ApplyResponse, ProviderError>> {
    let mut out: Vec<Option<Result<ApplyResponse, ProviderError>>> = vec![None; reqs.len()];
    let mut by_zone: BTreeMap<String, Vec<(usize, Change)>> = BTreeMap::new();
    for (i, r) in reqs.iter().enumerate() {
        let action = if r.prior.is_some() {
            ChangeAction::Upsert
        } else {
            ChangeAction::Create
        };
        let change = record_set(&r.config).and_then(|s| {
            Change::builder()
                .action(action)
                .resource_record_set(s)
                .build()
                .map_err(|e| ProviderError::invalid(e.to_string()))
        });
        match (change, req_str(&r.config, "zone_id")) {
            (Ok(ch), Ok(z)) => by_zone.entry(z.to_string()).or_default().push((i, ch)),
            (Err(e), _) | (_, Err(e)) => out[i] = Some(Err(e)),
        }
    }
    for (zone, items) in by_zone {
        for batch in batches(items) {
            let changes: Vec<Change> = batch.iter().map(|(_, c)| c.clone()).collect();
            match submit(aws, c, &zone, changes).await {
                Ok(()) => {
                    for (i, _) in &batch {
                        let attrs = planned_attrs(&reqs[*i].config);
                        out[*i] = Some(Ok(ApplyResponse {
                            id: record_id(&attrs),
                            attributes: attrs,
                        }));
                    }
                }
                // A batch is all-or-nothing: on a fatal error, try each record alone so
                // the error lands on the records that cause it.
                Err(e) if !e.is_retryable() && batch.len() > 1 => {
                    for (i, ch) in batch {
                        out[i] = Some(match submit(aws, c, &zone, vec![ch]).await {
                            Ok(()) => {
                                let attrs = planned_attrs(&reqs[i].config);
                                Ok(ApplyResponse {
                                    id: record_id(&attrs),
                                    attributes: attrs,
                                })
                            }
                            Err(e) => identical(aws, c, &reqs[i], e).await,
                        });
                    }
                }
                Err(e) if batch.len() == 1 => {
                    let i = batch[0].0;
                    out[i] = Some(identical(aws, c, &reqs[i], e).await);
                }
                Err(e) => {
                    for (i, _) in &batch {
                        out[*i] = Some(Err(e.clone()));
                    }
                }
            }
        }
    }
    out.into_iter()
        .map(|o| o.unwrap_or_else(|| Err(ProviderError::failed("record was not submitted"))))
        .collect()
}

/// A CREATE refused because the record already exists: when the live record is exactly
/// the planned one (a retried request that had landed) it is ours; when no such record is
/// listed at all (an emulator keeps ghosts of deleted records) an UPSERT creates it;
/// otherwise someone else's record is in the way and the error stands.
async fn identical(
    aws: &Aws,
    c: &Clients,
    req: &ApplyRequest,
    err: ProviderError,
) -> Result<ApplyResponse, ProviderError> {
    if req.prior.is_some() || err.kind != ErrorKind::AlreadyExists {
        return Err(err);
    }
    let planned = planned_attrs(&req.config);
    let ok = || {
        Ok(ApplyResponse {
            id: record_id(&planned),
            attributes: planned.clone(),
        })
    };
    let rr = ReadRequest {
        address: req.address.clone(),
        id: String::new(),
        prior: req.config.clone(),
    };
    match read_records(aws, c, &[rr]).await.pop() {
        Some(Ok(Some(live)))
            if ["records", "ttl", "alias"]
                .iter()
                .all(|k| live.get(*k) == planned.get(*k)) =>
        {
            ok()
        }
        Some(Ok(None)) => {
            let change = Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(record_set(&req.config)?)
                .build()
                .map_err(|e| ProviderError::failed(e.to_string()))?;
            submit(aws, c, req_str(&req.config, "zone_id")?, vec![change]).await?;
            ok()
        }
        _ => Err(ProviderError::conflict(format!(
            "{err}; the live record differs, so it was not created by landlord"
        ))),
    }
}

/// Deletes records: their live sets are read a zone at a time, then deleted in batches
/// per zone; a batch refused as a whole is retried record by record.
pub(super) async fn delete_records(
    aws: &Aws,
    c: &Clients,
    reqs: &[DeleteRequest],
) -> Vec<Result<(), ProviderError>> {
    let reads: Vec<ReadRequest> = reqs
        .iter()
        .map(|r| ReadRequest {
            address: r.address.clone(),
            id: r.id.clone(),
            prior: r.prior.clone(),
        })
        .collect();
    let mut out: Vec<Result<(), ProviderError>> = reqs.iter().map(|_| Ok(())).collect();
    let mut by_zone: BTreeMap<String, Vec<(usize, Change)>> = BTreeMap::new();
    for (i, current) in read_records(aws, c, &reads).await.into_iter().enumerate() {
        let change = match current {
            Ok(None) => continue,
            Ok(Some(cur)) => req_str(&cur, "zone_id").map(str::to_string).and_then(|z| {
                let ch = Change::builder()
                    .action(ChangeAction::Delete)
                    .resource_record_set(record_set(&cur)?)
                    .build()
                    .map_err(|e| ProviderError::failed(e.to_string()))?;
                Ok((z, ch))
            }),
            Err(e) => Err(e),
        };
        match change {
            Ok((zone, ch)) => by_zone.entry(zone).or_default().push((i, ch)),
            Err(e) => out[i] = Err(e),
        }
    }
    for (zone, items) in by_zone {
        for batch in batches(items) {
            let changes: Vec<Change> = batch.iter().map(|(_, c)| c.clone()).collect();
            match submit(aws, c, &zone, changes).await {
                Ok(()) => {}
                Err(e) if !e.is_retryable() && batch.len() > 1 => {
                    for (i, _) in batch {
                        out[i] = delete_record(aws, c, &reqs[i]).await;
                    }
                }
                Err(e) => {
                    for (i, _) in &batch {
                        out[*i] = gone_is_success(Err(e.clone()));
                    }
                }
            }
        }
    }
    out
}

/// A record or zone already gone counts as deleted.
fn gone_is_success(r: Result<(), ProviderError>) -> Result<(), ProviderError> {
    match r {
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

pub(super) async fn delete_record(
    aws: &Aws,
    c: &Clients,
    req: &DeleteRequest,
) -> Result<(), ProviderError> {
    // Delete what is live (a DELETE must match the current values exactly).
    let rr = ReadRequest {
        address: req.address.clone(),
        id: req.id.clone(),
        prior: req.prior.clone(),
    };
    let Some(current) = read_records(aws, c, &[rr])
        .await
        .pop()
        .unwrap_or(Ok(None))?
    else {
        return Ok(());
    };
    let zone = req_str(&current, "zone_id")?.to_string();
    let change = Change::builder()
        .action(ChangeAction::Delete)
        .resource_record_set(record_set(&current)?)
        .build()
        .map_err(|e| ProviderError::failed(e.to_string()))?;
    gone_is_success(submit(aws, c, &zone, vec![change]).await)
}

/// `aws_route53_zone`.
pub(super) struct Zone;

#[async_trait]
impl ResourceType<Aws> for Zone {
    fn schema(&self) -> ResourceSchema {
        zone_schema()
    }
    fn validate(&self, _: &Aws, c: &Attrs) -> Result<(), ProviderError> {
        super::valid_region(c)?;
        validate_zone(c)
    }
    fn verify_after_apply(&self) -> bool {
        true
    }
    async fn read(&self, aws: &Aws, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        read_zone(aws, &*aws.at(&req.prior).await, &req.id, &req.prior).await
    }
    async fn apply(&self, aws: &Aws, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        apply_zone(aws, &*aws.at(&req.config).await, req).await
    }
    async fn delete(&self, aws: &Aws, req: &DeleteRequest) -> Result<(), ProviderError> {
        delete_zone(aws, &*aws.at(&req.prior).await, req).await
    }
    async fn recover(
        &self,
        aws: &Aws,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        if let Some(found) = recover_update(self, aws, req).await? {
            return Ok(found);
        }
        let c = aws.at(&req.config).await;
        Ok(recover_zone(aws, &c, req).await?.map(super::adopted))
    }
}

/// `aws_route53_record`: batched per zone on apply, delete and refresh.
pub(super) struct Record;

#[async_trait]
impl ResourceType<Aws> for Record {
    fn schema(&self) -> ResourceSchema {
        record_schema()
    }
    fn validate(&self, _: &Aws, c: &Attrs) -> Result<(), ProviderError> {
        super::valid_region(c)?;
        validate_record(c)
    }
    fn max_batch(&self) -> usize {
        MAX_CHANGES
    }
    async fn read(&self, aws: &Aws, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        let c = aws.at(&req.prior).await;
        read_records(aws, &c, std::slice::from_ref(req))
            .await
            .pop()
            .unwrap_or(Ok(None))
    }
    async fn read_many(
        &self,
        aws: &Aws,
        reqs: &[ReadRequest],
    ) -> Vec<Result<Option<Attrs>, ProviderError>> {
        let mut out: Vec<Option<Result<Option<Attrs>, ProviderError>>> =
            reqs.iter().map(|_| None).collect();
        for (region, idx) in aws.by_region(reqs.iter().map(|r| &r.prior)) {
            let c = aws.clients(&region).await;
            let batch: Vec<ReadRequest> = idx.iter().map(|&i| reqs[i].clone()).collect();
            for (&i, res) in idx.iter().zip(read_records(aws, &c, &batch).await) {
                out[i] = Some(res);
            }
        }
        out.into_iter().map(|o| o.unwrap_or(Ok(None))).collect()
    }
    async fn apply(&self, aws: &Aws, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        self.apply_many(aws, std::slice::from_ref(req))
            .await
            .pop()
            .unwrap_or_else(|| Err(ProviderError::failed("record was not submitted")))
    }
    async fn apply_many(
        &self,
        aws: &Aws,
        reqs: &[ApplyRequest],
    ) -> Vec<Result<ApplyResponse, ProviderError>> {
        let mut out: Vec<Option<Result<ApplyResponse, ProviderError>>> =
            reqs.iter().map(|_| None).collect();
        for (region, idx) in aws.by_region(reqs.iter().map(|r| &r.config)) {
            let c = aws.clients(&region).await;
            let batch: Vec<ApplyRequest> = idx.iter().map(|&i| reqs[i].clone()).collect();
            for (&i, res) in idx.iter().zip(apply_records(aws, &c, &batch).await) {
                out[i] = Some(res);
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(ProviderError::failed("record was not submitted"))))
            .collect()
    }
    async fn delete(&self, aws: &Aws, req: &DeleteRequest) -> Result<(), ProviderError> {
        delete_record(aws, &*aws.at(&req.prior).await, req).await
    }
    async fn delete_many(
        &self,
        aws: &Aws,
        reqs: &[DeleteRequest],
    ) -> Vec<Result<(), ProviderError>> {
        let mut out: Vec<Result<(), ProviderError>> = reqs.iter().map(|_| Ok(())).collect();
        for (region, idx) in aws.by_region(reqs.iter().map(|r| &r.prior)) {
            let c = aws.clients(&region).await;
            let batch: Vec<DeleteRequest> = idx.iter().map(|&i| reqs[i].clone()).collect();
            for (&i, res) in idx.iter().zip(delete_records(aws, &c, &batch).await) {
                out[i] = res;
            }
        }
        out
    }
    async fn recover(
        &self,
        aws: &Aws,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        // Records are found by zone, name and type: no id is needed.
        let rr = ReadRequest {
            address: req.address.clone(),
            id: String::new(),
            prior: req.config.clone(),
        };
        Ok(self
            .read(aws, &rr)
            .await?
            .map(|a| super::adopted((record_id(&a), a))))
    }
}
