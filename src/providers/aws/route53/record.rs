//! `aws_route53_record`: record changes of one zone go out in as few
//! ChangeResourceRecordSets calls as the limits allow (1,000 changes with UPSERT counting
//! twice, 32,000 characters of values); refresh lists each zone once.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ResourceRecord, ResourceRecordSet, RrType,
};
use serde_json::{json, Value};

use super::{check_name, known, list_zone, norm_name, submit, ZoneGone};
use crate::providers::attrs::{
    check_record_type, keep_config, opt_u64, req_str, CLOUD_RECORD_TYPES,
};
use crate::providers::aws::Aws;
use crate::providers::aws::Clients;
use crate::providers::{
    ApplyRequest, ApplyResponse, AttrSchema, DeleteRequest, ErrorKind, ProviderError, ReadRequest,
    RecoverRequest, ResourceSchema, ResourceType,
};
use crate::value::Attrs;

/// Changes per ChangeResourceRecordSets call (an UPSERT counts twice).
pub(super) const MAX_CHANGES: usize = 1000;
/// Characters of record values per call.
const MAX_CHARS: usize = 32_000;
fn record_schema() -> ResourceSchema {
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

fn validate_record(c: &Attrs) -> Result<(), ProviderError> {
    check_record_type(c, CLOUD_RECORD_TYPES)?;
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
fn record_id(a: &Attrs) -> String {
    format!(
        "{}_{}_{}",
        a.get("zone_id").and_then(Value::as_str).unwrap_or_default(),
        a.get("name").and_then(Value::as_str).unwrap_or_default(),
        a.get("type").and_then(Value::as_str).unwrap_or_default()
    )
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
async fn apply_records(
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
async fn delete_records(
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

async fn delete_record(aws: &Aws, c: &Clients, req: &DeleteRequest) -> Result<(), ProviderError> {
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

/// `aws_route53_record`: batched per zone on apply, delete and refresh.
pub(crate) struct Record;

#[async_trait]
impl ResourceType<Aws> for Record {
    fn schema(&self) -> ResourceSchema {
        record_schema()
    }
    fn validate(&self, _: &Aws, c: &Attrs) -> Result<(), ProviderError> {
        crate::providers::aws::valid_region(c)?;
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
        aws.per_region(
            reqs,
            |r| &r.prior,
            |c, batch| async move { read_records(aws, &c, &batch).await },
        )
        .await
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
        aws.per_region(
            reqs,
            |r| &r.config,
            |c, batch| async move { apply_records(aws, &c, &batch).await },
        )
        .await
    }
    async fn delete(&self, aws: &Aws, req: &DeleteRequest) -> Result<(), ProviderError> {
        delete_record(aws, &*aws.at(&req.prior).await, req).await
    }
    async fn delete_many(
        &self,
        aws: &Aws,
        reqs: &[DeleteRequest],
    ) -> Vec<Result<(), ProviderError>> {
        aws.per_region(
            reqs,
            |r| &r.prior,
            |c, batch| async move { delete_records(aws, &c, &batch).await },
        )
        .await
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
            .map(|a| crate::providers::aws::adopted((record_id(&a), a))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(action: ChangeAction, value_len: usize) -> Change {
        let set = ResourceRecordSet::builder()
            .name("a.example.test")
            .r#type(RrType::Txt)
            .ttl(300)
            .resource_records(
                ResourceRecord::builder()
                    .value("x".repeat(value_len))
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        Change::builder()
            .action(action)
            .resource_record_set(set)
            .build()
            .unwrap()
    }

    #[test]
    fn an_upsert_counts_twice_in_changes_and_characters() {
        let c = change(ChangeAction::Upsert, 10);
        assert_eq!(
            weight(c.action(), c.resource_record_set().unwrap()),
            (2, 20)
        );
        let c = change(ChangeAction::Create, 10);
        assert_eq!(
            weight(c.action(), c.resource_record_set().unwrap()),
            (1, 10)
        );
    }

    #[test]
    fn batches_stay_within_a_thousand_changes_and_32000_characters() {
        let creates: Vec<(usize, Change)> = (0..1500)
            .map(|i| (i, change(ChangeAction::Create, 1)))
            .collect();
        let sizes: Vec<usize> = batches(creates).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1000, 500]);
        let upserts: Vec<(usize, Change)> = (0..600)
            .map(|i| (i, change(ChangeAction::Upsert, 1)))
            .collect();
        let sizes: Vec<usize> = batches(upserts).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![500, 100], "an UPSERT counts twice");
        let long: Vec<(usize, Change)> = (0..5)
            .map(|i| (i, change(ChangeAction::Create, 10_000)))
            .collect();
        let b = batches(long);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 2]);
        assert_eq!(b[1][0].0, 3, "order is kept");
    }
}
