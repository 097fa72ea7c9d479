//! `aws_kms_key` (rotation, description, tags; found again by address tag) and `aws_kms_alias`.

use async_trait::async_trait;
use aws_sdk_kms::types::{KeyState, Tag};
use serde_json::{json, Value};

use super::error::classify;
use super::{tags_with_address, user_tags, Aws, Clients, ADDRESS_TAG};
use std::collections::BTreeMap;

use crate::providers::attrs::{keep_config, opt_bool, opt_str, opt_u64, req_str, TagSync};
use crate::providers::{
    ApplyRequest, ApplyResponse, AttrSchema, DeleteRequest, ProviderError, ReadRequest,
    RecoverRequest, ResourceSchema, ResourceType,
};
use crate::value::{Attrs, UNKNOWN};

pub(super) fn key_schema() -> ResourceSchema {
    ResourceSchema {
        type_name: "aws_kms_key",
        attributes: vec![
            AttrSchema::optional("description"),
            AttrSchema::optional("enable_key_rotation"),
            AttrSchema::optional("deletion_window_in_days"),
            AttrSchema::optional("tags"),
            AttrSchema::optional("region").force_new(),
            AttrSchema::computed("key_id"),
            AttrSchema::computed("arn"),
        ],
    }
}

pub(super) fn alias_schema() -> ResourceSchema {
    ResourceSchema {
        type_name: "aws_kms_alias",
        attributes: vec![
            AttrSchema::required("name").force_new(),
            AttrSchema::required("target_key_id"),
            AttrSchema::optional("region").force_new(),
            AttrSchema::computed("arn"),
        ],
    }
}

pub(super) fn validate_key(c: &Attrs) -> Result<(), ProviderError> {
    match opt_u64(c, "deletion_window_in_days")? {
        Some(d) if !(7..=30).contains(&d) => Err(ProviderError::invalid(format!(
            "`deletion_window_in_days` must be 7-30, got {d}"
        ))),
        _ => Ok(()),
    }
}

pub(super) fn validate_alias(c: &Attrs) -> Result<(), ProviderError> {
    match c.get("name").and_then(Value::as_str) {
        Some(n)
            if n != UNKNOWN
                && (!n.starts_with("alias/") || n.starts_with("alias/aws/") || n.len() > 256) =>
        {
            Err(ProviderError::invalid(format!(
                "alias name `{n}` must start with `alias/` (and not `alias/aws/`)"
            )))
        }
        _ => Ok(()),
    }
}

async fn key_tags(
    aws: &Aws,
    c: &Clients,
    id: &str,
) -> Result<Vec<(String, String)>, ProviderError> {
    let out = aws
        .call(
            "kms",
            "ListResourceTags",
            c.kms.list_resource_tags().key_id(id).send(),
        )
        .await?;
    Ok(out
        .tags()
        .iter()
        .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
        .collect())
}

pub(super) async fn read_key(
    aws: &Aws,
    c: &Clients,
    id: &str,
    prior: &Attrs,
) -> Result<Option<Attrs>, ProviderError> {
    aws.count("kms", "DescribeKey");
    let out = match c.kms.describe_key().key_id(id).send().await {
        Ok(o) => o,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(classify("kms DescribeKey", e)),
    };
    let Some(m) = out.key_metadata() else {
        return Ok(None);
    };
    if matches!(
        m.key_state(),
        Some(KeyState::PendingDeletion) | Some(KeyState::PendingReplicaDeletion)
    ) {
        return Ok(None);
    }
    let rot = aws
        .call(
            "kms",
            "GetKeyRotationStatus",
            c.kms.get_key_rotation_status().key_id(id).send(),
        )
        .await?;
    let mut a = Attrs::new();
    a.insert(
        "description".into(),
        json!(m.description().unwrap_or_default()),
    );
    a.insert(
        "enable_key_rotation".into(),
        json!(rot.key_rotation_enabled()),
    );
    a.insert("tags".into(), user_tags(key_tags(aws, c, id).await?));
    a.insert("key_id".into(), json!(m.key_id()));
    a.insert("arn".into(), json!(m.arn().unwrap_or_default()));
    keep_config(&mut a, prior, &["deletion_window_in_days", "region"]);
    Ok(Some(a))
}

/// Makes the key's live tags the configured ones plus the address tag.
async fn sync_tags(
    aws: &Aws,
    c: &Clients,
    id: &str,
    cfg: &Attrs,
    req: &ApplyRequest,
) -> Result<(), ProviderError> {
    let want = tags_with_address(cfg, &req.address)?;
    let live: BTreeMap<String, String> = key_tags(aws, c, id).await?.into_iter().collect();
    let sync = TagSync::new(&live, &want, super::aws_owned);
    if !sync.remove.is_empty() {
        aws.call(
            "kms",
            "UntagResource",
            c.kms
                .untag_resource()
                .key_id(id)
                .set_tag_keys(Some(sync.remove))
                .send(),
        )
        .await?;
    }
    if !sync.set.is_empty() {
        let tags = sync
            .set
            .into_iter()
            .map(|(k, v)| {
                Tag::builder()
                    .tag_key(k)
                    .tag_value(v)
                    .build()
                    .map_err(|e| ProviderError::invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        aws.call(
            "kms",
            "TagResource",
            c.kms.tag_resource().key_id(id).set_tags(Some(tags)).send(),
        )
        .await?;
    }
    Ok(())
}

fn kms_tags(c: &Attrs, req: &ApplyRequest) -> Result<Vec<Tag>, ProviderError> {
    tags_with_address(c, &req.address)?
        .into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .map_err(|e| ProviderError::invalid(e.to_string()))
        })
        .collect()
}

pub(super) async fn apply_key(
    aws: &Aws,
    c: &Clients,
    req: &ApplyRequest,
) -> Result<ApplyResponse, ProviderError> {
    let cfg = &req.config;
    let description = opt_str(cfg, "description")?.unwrap_or_default();
    let (id, arn) = match req
        .prior
        .as_ref()
        .and_then(|p| p.get("key_id"))
        .and_then(Value::as_str)
    {
        Some(id) => {
            let prior = req.prior.as_ref().expect("prior is set");
            // Set on every update: the recorded description says nothing of the live one.
            aws.call(
                "kms",
                "UpdateKeyDescription",
                c.kms
                    .update_key_description()
                    .key_id(id)
                    .description(description)
                    .send(),
            )
            .await?;
            sync_tags(aws, c, id, cfg, req).await?;
            (
                id.to_string(),
                prior
                    .get("arn")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            )
        }
        None => {
            // Tags go with the create call, so a key is always found again by its address.
            let out = aws
                .call(
                    "kms",
                    "CreateKey",
                    c.kms
                        .create_key()
                        .description(description)
                        .set_tags(Some(kms_tags(cfg, req)?))
                        .send(),
                )
                .await?;
            let m = out
                .key_metadata()
                .ok_or_else(|| ProviderError::failed("kms CreateKey returned no key"))?;
            (
                m.key_id().to_string(),
                m.arn().unwrap_or_default().to_string(),
            )
        }
    };
    let rotation = opt_bool(cfg, "enable_key_rotation")?.unwrap_or(false);
    let was = req
        .prior
        .as_ref()
        .and_then(|p| p.get("enable_key_rotation"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // On an update the live setting may differ from the recorded one: always set it.
    if rotation || was || req.prior.is_some() {
        let op = if rotation {
            "EnableKeyRotation"
        } else {
            "DisableKeyRotation"
        };
        aws.count("kms", op);
        let res = if rotation {
            c.kms
                .enable_key_rotation()
                .key_id(&id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("kms EnableKeyRotation", e))
        } else {
            c.kms
                .disable_key_rotation()
                .key_id(&id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("kms DisableKeyRotation", e))
        };
        res?;
    }
    let mut a = cfg.clone();
    a.insert("key_id".into(), json!(id));
    a.insert("arn".into(), json!(arn));
    Ok(ApplyResponse { id, attributes: a })
}

pub(super) async fn recover_key(
    aws: &Aws,
    c: &Clients,
    req: &RecoverRequest,
) -> Result<Option<(String, Attrs)>, ProviderError> {
    let addr = req.address.to_string();
    let mut marker: Option<String> = None;
    loop {
        let page = aws
            .call(
                "kms",
                "ListKeys",
                c.kms.list_keys().set_marker(marker.clone()).send(),
            )
            .await?;
        for k in page.keys() {
            let Some(id) = k.key_id() else { continue };
            if key_tags(aws, c, id)
                .await?
                .iter()
                .any(|(k, v)| k == ADDRESS_TAG && *v == addr)
            {
                if let Some(a) = read_key(aws, c, id, &req.config).await? {
                    return Ok(Some((id.to_string(), a)));
                }
            }
        }
        if !page.truncated() {
            return Ok(None);
        }
        marker = page.next_marker().map(str::to_string);
    }
}

pub(super) async fn delete_key(
    aws: &Aws,
    c: &Clients,
    req: &DeleteRequest,
) -> Result<(), ProviderError> {
    let days = opt_u64(&req.prior, "deletion_window_in_days")?.unwrap_or(30) as i32;
    aws.count("kms", "ScheduleKeyDeletion");
    match c
        .kms
        .schedule_key_deletion()
        .key_id(&req.id)
        .pending_window_in_days(days)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_not_found_exception() || s.is_kms_invalid_state_exception()
            }) =>
        {
            Ok(())
        }
        Err(e) => Err(classify("kms ScheduleKeyDeletion", e)),
    }
}

pub(super) fn alias_id(a: &Attrs) -> String {
    a.get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub(super) async fn read_alias(
    aws: &Aws,
    c: &Clients,
    prior: &Attrs,
) -> Result<Option<Attrs>, ProviderError> {
    let name = req_str(prior, "name")?;
    let mut marker: Option<String> = None;
    loop {
        let page = aws
            .call(
                "kms",
                "ListAliases",
                c.kms.list_aliases().set_marker(marker.clone()).send(),
            )
            .await?;
        if let Some(a) = page.aliases().iter().find(|a| a.alias_name() == Some(name)) {
            let mut out = Attrs::new();
            out.insert("name".into(), json!(name));
            out.insert(
                "target_key_id".into(),
                json!(a.target_key_id().unwrap_or_default()),
            );
            out.insert("arn".into(), json!(a.alias_arn().unwrap_or_default()));
            keep_config(&mut out, prior, &["region"]);
            return Ok(Some(out));
        }
        if !page.truncated() {
            return Ok(None);
        }
        marker = page.next_marker().map(str::to_string);
    }
}

pub(super) async fn apply_alias(
    aws: &Aws,
    c: &Clients,
    req: &ApplyRequest,
) -> Result<ApplyResponse, ProviderError> {
    let name = req_str(&req.config, "name")?;
    let target = req_str(&req.config, "target_key_id")?;
    let exists = req.prior.is_some() || read_alias(aws, c, &req.config).await?.is_some();
    if exists {
        aws.call(
            "kms",
            "UpdateAlias",
            c.kms
                .update_alias()
                .alias_name(name)
                .target_key_id(target)
                .send(),
        )
        .await?;
    } else {
        aws.call(
            "kms",
            "CreateAlias",
            c.kms
                .create_alias()
                .alias_name(name)
                .target_key_id(target)
                .send(),
        )
        .await?;
    }
    let mut a = read_alias(aws, c, &req.config)
        .await?
        .ok_or_else(|| ProviderError::transient(format!("alias `{name}` not readable yet")))?;
    a.insert("target_key_id".into(), json!(target));
    Ok(ApplyResponse {
        id: name.to_string(),
        attributes: a,
    })
}

pub(super) async fn delete_alias(
    aws: &Aws,
    c: &Clients,
    req: &DeleteRequest,
) -> Result<(), ProviderError> {
    let name = req_str(&req.prior, "name")?;
    aws.count("kms", "DeleteAlias");
    match c.kms.delete_alias().alias_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(classify("kms DeleteAlias", e)),
    }
}

/// `aws_kms_key`.
pub(super) struct Key;

#[async_trait]
impl ResourceType<Aws> for Key {
    fn schema(&self) -> ResourceSchema {
        key_schema()
    }
    fn validate(&self, _: &Aws, c: &Attrs) -> Result<(), ProviderError> {
        super::valid_region(c)?;
        validate_key(c)
    }
    fn verify_after_apply(&self) -> bool {
        true
    }
    async fn read(&self, aws: &Aws, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        read_key(aws, &*aws.at(&req.prior).await, &req.id, &req.prior).await
    }
    async fn apply(&self, aws: &Aws, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        apply_key(aws, &*aws.at(&req.config).await, req).await
    }
    async fn delete(&self, aws: &Aws, req: &DeleteRequest) -> Result<(), ProviderError> {
        delete_key(aws, &*aws.at(&req.prior).await, req).await
    }
    async fn recover(
        &self,
        aws: &Aws,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        aws.recover_with(
            self,
            req,
            |c| async move { recover_key(aws, &c, req).await },
        )
        .await
    }
}

/// `aws_kms_alias`.
pub(super) struct Alias;

#[async_trait]
impl ResourceType<Aws> for Alias {
    fn schema(&self) -> ResourceSchema {
        alias_schema()
    }
    fn validate(&self, _: &Aws, c: &Attrs) -> Result<(), ProviderError> {
        super::valid_region(c)?;
        validate_alias(c)
    }
    fn verify_after_apply(&self) -> bool {
        true
    }
    async fn read(&self, aws: &Aws, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        read_alias(aws, &*aws.at(&req.prior).await, &req.prior).await
    }
    async fn apply(&self, aws: &Aws, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        apply_alias(aws, &*aws.at(&req.config).await, req).await
    }
    async fn delete(&self, aws: &Aws, req: &DeleteRequest) -> Result<(), ProviderError> {
        delete_alias(aws, &*aws.at(&req.prior).await, req).await
    }
    async fn recover(
        &self,
        aws: &Aws,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        // Aliases are found by name: no id is needed.
        let c = aws.at(&req.config).await;
        Ok(read_alias(aws, &c, &req.config)
            .await?
            .map(|a| super::adopted((alias_id(&a), a))))
    }
}
