//! `azure_storage_account` on Microsoft.Storage (api-version 2023-05-01; creation is
//! long-running) and `azure_storage_container` on the account's blob endpoint (data
//! plane, shared-key auth with the account key listed through ARM, like azurerm).

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;

use azure_storage::{CloudLocation, StorageCredentials};
use azure_storage_blobs::prelude::{ClientBuilder, ContainerClient, PublicAccess};
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::super::attrs::{check_one_of, Case};
use super::super::{AttrSchema, ProviderError, ResourceSchema};
use super::{
    arm_json, check_name, classify, found, model, req, split_tags, tags, Arm, Clients, Live,
};
use crate::value::Attrs;

const TIERS: &[&str] = &["Standard", "Premium"];
const REPLICATION: &[&str] = &["LRS", "GRS", "RAGRS", "ZRS", "GZRS", "RAGZRS"];
const KINDS: &[&str] = &[
    "StorageV2",
    "Storage",
    "BlobStorage",
    "BlockBlobStorage",
    "FileStorage",
];
const TLS: &[&str] = &["TLS1_0", "TLS1_1", "TLS1_2"];
const ACCESS: &[&str] = &["private", "blob", "container"];
/// Container metadata key carrying the landlord address (metadata names are identifiers).
const CONTAINER_TAG: &str = "landlord_address";

pub(super) fn validate_account(c: &Attrs) -> Result<(), ProviderError> {
    check_name(
        c,
        "name",
        "storage account name",
        |n| {
            (3..=24).contains(&n.len())
                && n.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        },
        "3-24 lowercase letters and digits, unique across Azure",
    )?;
    check_one_of(c, "account_tier", TIERS, Case::Exact)?;
    check_one_of(c, "account_replication_type", REPLICATION, Case::Exact)?;
    check_one_of(c, "account_kind", KINDS, Case::Exact)?;
    check_one_of(c, "min_tls_version", TLS, Case::Exact)
}

pub(super) fn validate_container(c: &Attrs) -> Result<(), ProviderError> {
    check_name(
        c,
        "name",
        "container name",
        |n| {
            (3..=63).contains(&n.len())
                && n.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && n.ends_with(|ch: char| ch.is_ascii_alphanumeric())
                && !n.contains("--")
                && n.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        },
        "3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit",
    )?;
    check_one_of(c, "container_access_type", ACCESS, Case::Exact)
}

pub(super) async fn read_account(cx: &Clients, c: &Attrs) -> Result<Option<Live>, ProviderError> {
    let (rg, name) = (req(c, "resource_group_name")?, req(c, "name")?);
    cx.count("storageAccounts.getProperties");
    let acct = found(
        "storage account get",
        cx.storage
            .storage_accounts_client()
            .get_properties(rg, name, &cx.subscription)
            .await,
    )?;
    Ok(acct.map(|acct| {
        let v = arm_json(&acct);
        let (user, owner) = split_tags(v.get("tags"));
        let sku = v.pointer("/sku/name").and_then(Value::as_str).unwrap_or("");
        let (tier, replication) = sku.split_once('_').unwrap_or((sku, ""));
        let p = &v["properties"];
        let mut a = Attrs::new();
        a.insert("name".into(), json!(name));
        a.insert("resource_group_name".into(), json!(rg));
        a.insert("location".into(), v["location"].clone());
        a.insert("account_tier".into(), json!(tier));
        a.insert("account_replication_type".into(), json!(replication));
        a.insert("account_kind".into(), v["kind"].clone());
        a.insert("min_tls_version".into(), p["minimumTlsVersion"].clone());
        a.insert(
            "https_traffic_only_enabled".into(),
            p["supportsHttpsTrafficOnly"].clone(),
        );
        a.insert("tags".into(), user);
        a.insert("id".into(), v["id"].clone());
        a.insert(
            "primary_blob_endpoint".into(),
            p.pointer("/primaryEndpoints/blob")
                .cloned()
                .unwrap_or(Value::Null),
        );
        Live { attrs: a, owner }
    }))
}

pub(super) async fn apply_account(
    cx: &Clients,
    c: &Attrs,
    addr: &str,
) -> Result<(), ProviderError> {
    let (rg, name) = (req(c, "resource_group_name")?, req(c, "name")?);
    let s = |k: &str, d: &str| c.get(k).and_then(Value::as_str).unwrap_or(d).to_string();
    let params: azure_mgmt_storage::models::StorageAccountCreateParameters = model(
        "storage account",
        json!({
            "location": req(c, "location")?,
            "kind": s("account_kind", "StorageV2"),
            "sku": { "name": format!("{}_{}", req(c, "account_tier")?, req(c, "account_replication_type")?) },
            "tags": tags(c, addr)?,
            "properties": {
                "minimumTlsVersion": s("min_tls_version", "TLS1_2"),
                "supportsHttpsTrafficOnly": c.get("https_traffic_only_enabled").and_then(Value::as_bool).unwrap_or(true),
            },
        }),
    )?;
    cx.count("storageAccounts.create");
    let rsp = cx
        .storage
        .storage_accounts_client()
        .create(rg, name, params, &cx.subscription)
        .send()
        .await
        .map_err(|e| classify(&format!("storage account `{name}` create"), e))?;
    cx.settle(&format!("storage account `{name}` create"), &rsp)
        .await
}

pub(super) async fn delete_account(cx: &Clients, c: &Attrs) -> Result<(), ProviderError> {
    let (rg, name) = (req(c, "resource_group_name")?, req(c, "name")?);
    cx.count("storageAccounts.delete");
    found(
        "storage account delete",
        cx.storage
            .storage_accounts_client()
            .delete(rg, name, &cx.subscription)
            .send()
            .await,
    )?;
    let mut accounts = cx.accounts.lock().await;
    accounts.located.remove(name);
    accounts.keys.remove(name);
    Ok(())
}

/// How to reach one account's blob service.
pub(super) struct Access {
    account: String,
    blob_endpoint: String,
    key: String,
}

/// Storage accounts found in the subscription and the keys read so far.
#[derive(Default)]
pub(super) struct Accounts {
    /// Account name -> (resource group, blob endpoint).
    located: HashMap<String, (String, String)>,
    keys: HashMap<String, Arc<Access>>,
}

/// The blob endpoint and key of an account, `None` when no such account exists.
async fn access(cx: &Clients, account: &str) -> Result<Option<Arc<Access>>, ProviderError> {
    let mut accounts = cx.accounts.lock().await;
    if let Some(a) = accounts.keys.get(account) {
        return Ok(Some(a.clone()));
    }
    if !accounts.located.contains_key(account) {
        // One listing locates every account of the subscription.
        let mut pages = cx
            .storage
            .storage_accounts_client()
            .list(&cx.subscription)
            .into_stream();
        while let Some(page) = pages.next().await {
            cx.count("storageAccounts.list");
            for acct in page.map_err(|e| classify("storage account list", e))?.value {
                let v = arm_json(&acct);
                let id = v["id"].as_str().unwrap_or_default();
                let segs: Vec<&str> = id.split('/').collect();
                let rg = segs
                    .iter()
                    .position(|s| s.eq_ignore_ascii_case("resourceGroups"))
                    .and_then(|i| segs.get(i + 1));
                let (Some(name), Some(rg), Some(blob)) = (
                    v["name"].as_str(),
                    rg,
                    v.pointer("/properties/primaryEndpoints/blob")
                        .and_then(Value::as_str),
                ) else {
                    continue;
                };
                accounts
                    .located
                    .insert(name.to_string(), (rg.to_string(), blob.to_string()));
            }
        }
    }
    let Some((rg, blob)) = accounts.located.get(account).cloned() else {
        return Ok(None);
    };
    cx.count("storageAccounts.listKeys");
    // Parsed by hand: ARM answers `"permissions": "FULL"`, which the crate's enum
    // (`Read` | `Full`) refuses.
    let sent = found(
        "storage account list keys",
        cx.storage
            .storage_accounts_client()
            .list_keys(&rg, account, &cx.subscription)
            .send()
            .await,
    )?;
    let key = match sent {
        Some(rsp) => {
            let body = rsp
                .into_raw_response()
                .into_body()
                .collect()
                .await
                .map_err(|e| classify("storage account list keys", e))?;
            serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.pointer("/keys/0/value")?.as_str().map(str::to_string))
        }
        None => None,
    };
    let Some(key) = key else {
        accounts.located.remove(account);
        return Ok(None);
    };
    let a = Arc::new(Access {
        account: account.to_string(),
        blob_endpoint: blob,
        key,
    });
    accounts.keys.insert(account.to_string(), a.clone());
    Ok(Some(a))
}

fn container_client(a: &Access, name: &str) -> ContainerClient {
    let location = CloudLocation::Custom {
        account: a.account.clone(),
        uri: a.blob_endpoint.trim_end_matches('/').to_string(),
    };
    let key = azure_core::auth::Secret::new(a.key.clone());
    ClientBuilder::with_location(location, StorageCredentials::access_key(&a.account, key))
        .container_client(name)
}

fn public_access(c: &Attrs) -> PublicAccess {
    match c.get("container_access_type").and_then(Value::as_str) {
        Some("blob") => PublicAccess::Blob,
        Some("container") => PublicAccess::Container,
        _ => PublicAccess::None,
    }
}

pub(super) async fn read_container(cx: &Clients, c: &Attrs) -> Result<Option<Live>, ProviderError> {
    let (account, name) = (req(c, "storage_account_name")?, req(c, "name")?);
    let Some(a) = access(cx, account).await? else {
        return Ok(None);
    };
    cx.count("containers.getProperties");
    let props = found(
        "container get",
        container_client(&a, name).get_properties().await,
    )?;
    Ok(props.map(|p| {
        let access = match p.container.public_access {
            PublicAccess::Blob => "blob",
            PublicAccess::Container => "container",
            PublicAccess::None => "private",
        };
        let mut attrs = Attrs::new();
        attrs.insert("storage_account_name".into(), json!(account));
        attrs.insert("name".into(), json!(name));
        attrs.insert("container_access_type".into(), json!(access));
        attrs.insert(
            "id".into(),
            json!(format!("{}/{name}", a.blob_endpoint.trim_end_matches('/'))),
        );
        Live {
            attrs,
            // The crate keeps the `x-ms-meta-` header prefix on metadata names.
            owner: p.container.metadata.iter().find_map(|(k, v)| {
                let k = k.strip_prefix("x-ms-meta-").unwrap_or(k);
                k.eq_ignore_ascii_case(CONTAINER_TAG).then(|| v.clone())
            }),
        }
    }))
}

pub(super) async fn apply_container(
    cx: &Clients,
    c: &Attrs,
    prior: Option<&Attrs>,
    addr: &str,
) -> Result<(), ProviderError> {
    let (account, name) = (req(c, "storage_account_name")?, req(c, "name")?);
    let a = access(cx, account).await?.ok_or_else(|| {
        ProviderError::transient(format!(
            "storage account `{account}` is not in the subscription (yet)"
        ))
    })?;
    let client = container_client(&a, name);
    let what = format!("container `{account}/{name}`");
    if prior.is_some() {
        cx.count("containers.setAcl");
        return client
            .set_acl(public_access(c))
            .await
            .map(|_| ())
            .map_err(|e| classify(&format!("{what} update"), e));
    }
    let mut metadata = azure_core::request_options::Metadata::new();
    metadata.insert(CONTAINER_TAG, addr.to_string());
    cx.count("containers.create");
    client
        .create()
        .public_access(public_access(c))
        .metadata(metadata)
        .await
        .map_err(|e| classify(&format!("{what} create"), e))
}

pub(super) async fn delete_container(cx: &Clients, c: &Attrs) -> Result<(), ProviderError> {
    let (account, name) = (req(c, "storage_account_name")?, req(c, "name")?);
    let Some(a) = access(cx, account).await? else {
        return Ok(());
    };
    cx.count("containers.delete");
    found(
        "container delete",
        container_client(&a, name).delete().await,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(v: Value) -> Attrs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn account_names_follow_azure_rules() {
        for ok in ["abc", "tenant01data", "a23456789012345678901234"] {
            assert!(
                validate_account(&attrs(json!({ "name": ok }))).is_ok(),
                "{ok}"
            );
        }
        for bad in ["ab", "Tenant", "ten-ant", "a234567890123456789012345"] {
            let e = validate_account(&attrs(json!({ "name": bad }))).unwrap_err();
            assert!(
                e.to_string().contains("3-24 lowercase letters and digits"),
                "{e}"
            );
        }
        let unknown = attrs(json!({ "name": crate::value::UNKNOWN }));
        assert!(
            validate_account(&unknown).is_ok(),
            "computed names are checked later"
        );
        let e = validate_account(&attrs(
            json!({ "name": "abc", "min_tls_version": "TLS1_3" }),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("TLS1_0, TLS1_1, TLS1_2"), "{e}");
    }

    #[test]
    fn container_names_follow_azure_rules() {
        assert!(validate_container(&attrs(json!({ "name": "data-01" }))).is_ok());
        for bad in ["da", "-data", "data-", "da--ta", "Data"] {
            assert!(
                validate_container(&attrs(json!({ "name": bad }))).is_err(),
                "{bad}"
            );
        }
    }
}

/// `azure_storage_account`.
pub(super) struct Account;

#[async_trait]
impl Arm for Account {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "azure_storage_account",
            attributes: vec![
                AttrSchema::required("name").force_new(),
                AttrSchema::required("resource_group_name").force_new(),
                AttrSchema::required("location").force_new(),
                AttrSchema::required("account_tier").force_new(),
                AttrSchema::required("account_replication_type"),
                AttrSchema::optional("account_kind").force_new(),
                AttrSchema::optional("min_tls_version"),
                AttrSchema::optional("https_traffic_only_enabled"),
                AttrSchema::optional("tags"),
                AttrSchema::computed("id"),
                AttrSchema::computed("primary_blob_endpoint"),
            ],
        }
    }
    fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        validate_account(c)
    }
    async fn read(&self, cx: &Clients, c: &Attrs) -> Result<Option<Live>, ProviderError> {
        read_account(cx, c).await
    }
    async fn put(
        &self,
        cx: &Clients,
        c: &Attrs,
        _prior: Option<&Attrs>,
        addr: &str,
    ) -> Result<(), ProviderError> {
        apply_account(cx, c, addr).await
    }
    async fn delete(&self, cx: &Clients, c: &Attrs) -> Result<(), ProviderError> {
        delete_account(cx, c).await
    }
}

/// `azure_storage_container`.
pub(super) struct Container;

#[async_trait]
impl Arm for Container {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "azure_storage_container",
            attributes: vec![
                AttrSchema::required("storage_account_name").force_new(),
                AttrSchema::required("name").force_new(),
                AttrSchema::optional("container_access_type"),
                AttrSchema::computed("id"),
            ],
        }
    }
    fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        validate_container(c)
    }
    async fn read(&self, cx: &Clients, c: &Attrs) -> Result<Option<Live>, ProviderError> {
        read_container(cx, c).await
    }
    async fn put(
        &self,
        cx: &Clients,
        c: &Attrs,
        prior: Option<&Attrs>,
        addr: &str,
    ) -> Result<(), ProviderError> {
        apply_container(cx, c, prior, addr).await
    }
    async fn delete(&self, cx: &Clients, c: &Attrs) -> Result<(), ProviderError> {
        delete_container(cx, c).await
    }
}
