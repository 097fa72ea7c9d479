//! `aws_route53_zone`: hosted zones, created under a caller reference derived from the
//! intent token (so a retried or recovered create finds its zone), tags synced by the
//! one tag rule, `force_destroy` deleting unmanaged records first.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_route53::types::{
    Change, ChangeAction, HostedZoneConfig, ResourceRecordSet, RrType, Tag, TagResourceType,
};
use serde_json::{json, Value};

use super::record::MAX_CHANGES;
use super::{bare_zone_id, check_name, known, list_zone, norm_name, submit, ZoneGone};
use crate::providers::attrs::{keep_config, opt_str, req_str, TagSync};
use crate::providers::aws::error::{classify, code};
use crate::providers::aws::{short_token, tags_with_address, user_tags, Aws, Clients};
use crate::providers::{
    ApplyRequest, ApplyResponse, AttrSchema, DeleteRequest, ProviderError, ReadRequest,
    RecoverRequest, ResourceSchema, ResourceType,
};
use crate::value::Attrs;

fn zone_schema() -> ResourceSchema {
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

fn validate_zone(c: &Attrs) -> Result<(), ProviderError> {
    match known(c.get("name")) {
        Some(n) => check_name("zone name", n),
        None => Ok(()),
    }
}

fn caller_reference(token: &str) -> String {
    format!("landlord-{}", short_token(token, 40))
}

/// Every tag of a hosted zone, landlord's own included.
async fn zone_tags(
    aws: &Aws,
    c: &Clients,
    id: &str,
) -> Result<BTreeMap<String, String>, ProviderError> {
    let out = aws
        .call(
            "route53",
            "ListTagsForResource",
            c.route53
                .list_tags_for_resource()
                .resource_type(TagResourceType::Hostedzone)
                .resource_id(id)
                .send(),
        )
        .await?;
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

async fn read_zone(
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
    let out = aws
        .call(
            "route53",
            "ListHostedZonesByName",
            c.route53.list_hosted_zones_by_name().dns_name(name).send(),
        )
        .await?;
    let want = caller_reference(token);
    Ok(out
        .hosted_zones()
        .iter()
        .find(|z| norm_name(z.name()) == name && z.caller_reference() == want)
        .map(|z| bare_zone_id(z.id())))
}

async fn recover_zone(
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
    let sync = TagSync::new(
        &zone_tags(aws, c, id).await?,
        &want,
        crate::providers::aws::aws_owned,
    );
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

async fn apply_zone(
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
            // Set on every update: the recorded comment says nothing of the live one.
            aws.call(
                "route53",
                "UpdateHostedZoneComment",
                c.route53
                    .update_hosted_zone_comment()
                    .id(id)
                    .set_comment(comment.map(str::to_string))
                    .send(),
            )
            .await?;
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

async fn delete_zone(aws: &Aws, c: &Clients, req: &DeleteRequest) -> Result<(), ProviderError> {
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

pub(crate) struct Zone;

#[async_trait]
impl ResourceType<Aws> for Zone {
    fn schema(&self) -> ResourceSchema {
        zone_schema()
    }
    fn validate(&self, _: &Aws, c: &Attrs) -> Result<(), ProviderError> {
        crate::providers::aws::valid_region(c)?;
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
        aws.recover_with(
            self,
            req,
            |c| async move { recover_zone(aws, &c, req).await },
        )
        .await
    }
}
