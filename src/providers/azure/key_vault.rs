//! `azure_key_vault` on Microsoft.KeyVault (api-version 2019-09-01). Vaults use RBAC for
//! data access. A deleted vault stays soft-deleted (its name reserved) for its retention
//! period; landlord purges it on delete unless purge protection is on, like azurerm's
//! `purge_soft_delete_on_destroy`.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::super::attrs::{check_one_of, Case};
use super::super::{AttrSchema, PlanResponse, ProviderError, ResourceSchema};
use super::{
    arm_json, check_name, classify, found, model, req, split_tags, tags, Arm, Clients, Live,
};
use crate::value::Attrs;

const SKUS: &[&str] = &["standard", "premium"];
/// Azure's default soft-delete retention.
const RETENTION_DAYS: u64 = 90;

pub(super) fn validate(c: &Attrs) -> Result<(), ProviderError> {
    check_name(
        c,
        "name",
        "key vault name",
        |n| {
            (3..=24).contains(&n.len())
                && n.starts_with(|ch: char| ch.is_ascii_alphabetic())
                && n.ends_with(|ch: char| ch.is_ascii_alphanumeric())
                && !n.contains("--")
                && n.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        },
        "3-24 letters, digits and single hyphens, starting with a letter, unique across Azure",
    )?;
    check_one_of(c, "sku_name", SKUS, Case::Exact)?;
    match c.get("soft_delete_retention_days") {
        Some(Value::Number(n)) if !(7..=90).contains(&n.as_u64().unwrap_or(0)) => Err(
            ProviderError::invalid(format!("`soft_delete_retention_days` is {n}: 7 to 90")),
        ),
        _ => Ok(()),
    }
}

fn purge_protected(c: &Attrs) -> bool {
    c.get("purge_protection_enabled")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn retention(c: &Attrs) -> u64 {
    c.get("soft_delete_retention_days")
        .and_then(Value::as_u64)
        .unwrap_or(RETENTION_DAYS)
}

/// Refuses the changes Azure refuses, before anything is applied.
pub(super) fn plan(prior: Option<&Attrs>, c: &Attrs) -> Result<PlanResponse, ProviderError> {
    if let Some(p) = prior {
        if purge_protected(p) && !purge_protected(c) {
            return Err(ProviderError::invalid(
                "purge protection cannot be turned off once enabled (Azure refuses it)",
            ));
        }
        if p.contains_key("soft_delete_retention_days") && retention(p) != retention(c) {
            return Err(ProviderError::invalid(format!(
                "`soft_delete_retention_days` cannot change after the vault is created ({} -> {})",
                retention(p),
                retention(c)
            )));
        }
    }
    Ok(PlanResponse::default())
}

pub(super) async fn read(cx: &Clients, c: &Attrs) -> Result<Option<Live>, ProviderError> {
    let (rg, name) = (req(c, "resource_group_name")?, req(c, "name")?);
    cx.count("vaults.get");
    let vault = found(
        "key vault get",
        cx.vaults
            .vaults_client()
            .get(rg, name, &cx.subscription)
            .await,
    )?;
    Ok(vault.map(|vault| {
        let v = arm_json(&vault);
        let (user, owner) = split_tags(v.get("tags"));
        let p = &v["properties"];
        let mut a = Attrs::new();
        a.insert("name".into(), json!(name));
        a.insert("resource_group_name".into(), json!(rg));
        a.insert("location".into(), v["location"].clone());
        a.insert(
            "sku_name".into(),
            p.pointer("/sku/name").cloned().unwrap_or(Value::Null),
        );
        a.insert("tenant_id".into(), p["tenantId"].clone());
        a.insert(
            "soft_delete_retention_days".into(),
            json!(p["softDeleteRetentionInDays"]
                .as_u64()
                .unwrap_or(RETENTION_DAYS)),
        );
        a.insert(
            "purge_protection_enabled".into(),
            json!(p["enablePurgeProtection"].as_bool().unwrap_or(false)),
        );
        a.insert("tags".into(), user);
        a.insert("id".into(), v["id"].clone());
        a.insert("vault_uri".into(), p["vaultUri"].clone());
        Live { attrs: a, owner }
    }))
}

pub(super) async fn apply(cx: &Clients, c: &Attrs, addr: &str) -> Result<(), ProviderError> {
    let (rg, name) = (req(c, "resource_group_name")?, req(c, "name")?);
    let tenant = match c.get("tenant_id").and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None => cx.tenant_id.clone().ok_or_else(|| {
            ProviderError::invalid(
                "`tenant_id` is not set and [providers.azure] has no `tenant_id`",
            )
        })?,
    };
    let mut properties = json!({
        "tenantId": tenant,
        "sku": { "family": "A", "name": req(c, "sku_name")? },
        "enableRbacAuthorization": true,
        "enableSoftDelete": true,
        "softDeleteRetentionInDays": retention(c),
    });
    // Azure accepts only `true` here: leave it out otherwise.
    if purge_protected(c) {
        properties["enablePurgeProtection"] = json!(true);
    }
    let params: azure_mgmt_keyvault::models::VaultCreateOrUpdateParameters = model(
        "key vault",
        json!({ "location": req(c, "location")?, "tags": tags(c, addr)?, "properties": properties }),
    )?;
    let what = format!("key vault `{name}` create");
    cx.count("vaults.createOrUpdate");
    let rsp = cx
        .vaults
        .vaults_client()
        .create_or_update(rg, name, params, &cx.subscription)
        .send()
        .await
        .map_err(|e| classify(&what, e))?;
    cx.settle(&what, &rsp).await
}

pub(super) async fn delete(cx: &Clients, c: &Attrs) -> Result<(), ProviderError> {
    let (rg, name) = (req(c, "resource_group_name")?, req(c, "name")?);
    cx.count("vaults.delete");
    found(
        "key vault delete",
        cx.vaults
            .vaults_client()
            .delete(rg, name, &cx.subscription)
            .send()
            .await,
    )?;
    if purge_protected(c) {
        return Ok(());
    }
    let what = format!("key vault `{name}` purge");
    cx.count("vaults.purgeDeleted");
    let sent = found(
        &what,
        cx.vaults
            .vaults_client()
            .purge_deleted(name, req(c, "location")?, &cx.subscription)
            .send()
            .await,
    )?;
    match sent {
        Some(rsp) => cx.settle(&what, &rsp).await,
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(v: Value) -> Attrs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn vault_names_follow_azure_rules() {
        assert!(validate(&attrs(json!({ "name": "acme-prod-kv" }))).is_ok());
        for bad in [
            "kv",
            "1vault",
            "vault-",
            "va--ult",
            "a-very-long-vault-name-xyz",
        ] {
            assert!(validate(&attrs(json!({ "name": bad }))).is_err(), "{bad}");
        }
        let e = validate(&attrs(
            json!({ "name": "kv1", "soft_delete_retention_days": 3 }),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("7 to 90"), "{e}");
    }

    #[test]
    fn plan_refuses_what_azure_refuses() {
        let prior =
            attrs(json!({ "purge_protection_enabled": true, "soft_delete_retention_days": 90 }));
        let off =
            attrs(json!({ "purge_protection_enabled": false, "soft_delete_retention_days": 90 }));
        assert!(plan(Some(&prior), &off).is_err());
        let shorter =
            attrs(json!({ "purge_protection_enabled": true, "soft_delete_retention_days": 30 }));
        assert!(plan(Some(&prior), &shorter).is_err());
        assert!(plan(Some(&prior), &prior).is_ok());
        assert!(plan(None, &off).is_ok(), "a new vault may start either way");
    }
}

/// `azure_key_vault`.
pub(super) struct Vault;

#[async_trait]
impl Arm for Vault {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "azure_key_vault",
            attributes: vec![
                AttrSchema::required("name").force_new(),
                AttrSchema::required("resource_group_name").force_new(),
                AttrSchema::required("location").force_new(),
                AttrSchema::required("sku_name"),
                AttrSchema::optional("tenant_id"),
                AttrSchema::optional("soft_delete_retention_days"),
                AttrSchema::optional("purge_protection_enabled"),
                AttrSchema::optional("tags"),
                AttrSchema::computed("id"),
                AttrSchema::computed("vault_uri"),
            ],
        }
    }
    fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        validate(c)
    }
    fn plan(&self, prior: Option<&Attrs>, c: &Attrs) -> Result<PlanResponse, ProviderError> {
        plan(prior, c)
    }
    async fn read(&self, cx: &Clients, c: &Attrs) -> Result<Option<Live>, ProviderError> {
        read(cx, c).await
    }
    async fn put(
        &self,
        cx: &Clients,
        c: &Attrs,
        _prior: Option<&Attrs>,
        addr: &str,
    ) -> Result<(), ProviderError> {
        apply(cx, c, addr).await
    }
    async fn delete(&self, cx: &Clients, c: &Attrs) -> Result<(), ProviderError> {
        delete(cx, c).await
    }
}
