//! `azure_resource_group`: PUT/GET/DELETE on Microsoft.Resources (api-version 2021-04-01).
//! Deletion is long-running and also removes everything in the group.

use async_trait::async_trait;
use serde_json::json;

use super::super::{AttrSchema, ProviderError, ResourceSchema};
use super::{check_name, classify, found, req, split_tags, tags, Arm, Clients, Live};
use crate::value::Attrs;

pub(super) fn validate(c: &Attrs) -> Result<(), ProviderError> {
    check_name(
        c,
        "name",
        "resource group name",
        |n| {
            (1..=90).contains(&n.len())
                && !n.ends_with('.')
                && n.chars()
                    .all(|ch| ch.is_alphanumeric() || "-_.()".contains(ch))
        },
        "1-90 letters, digits, `-`, `_`, `.`, `(`, `)`, not ending in `.`",
    )
}

pub(super) async fn read(cx: &Clients, c: &Attrs) -> Result<Option<Live>, ProviderError> {
    let name = req(c, "name")?;
    cx.count("resourceGroups.get");
    let rg = found(
        "resource group get",
        cx.resources
            .resource_groups_client()
            .get(name, &cx.subscription)
            .await,
    )?;
    Ok(rg.map(|rg| {
        let (user, owner) = split_tags(rg.tags.as_ref());
        let mut a = Attrs::new();
        a.insert("name".into(), json!(name));
        a.insert("location".into(), json!(rg.location));
        a.insert("tags".into(), user);
        a.insert("id".into(), json!(rg.id));
        Live { attrs: a, owner }
    }))
}

pub(super) async fn apply(cx: &Clients, c: &Attrs, addr: &str) -> Result<(), ProviderError> {
    let mut rg = azure_mgmt_resources::models::ResourceGroup::new(req(c, "location")?.into());
    rg.tags = Some(tags(c, addr)?);
    cx.count("resourceGroups.createOrUpdate");
    cx.resources
        .resource_groups_client()
        .create_or_update(req(c, "name")?, rg, &cx.subscription)
        .await
        .map_err(|e| classify("resource group create", e))?;
    Ok(())
}

pub(super) async fn delete(cx: &Clients, c: &Attrs) -> Result<(), ProviderError> {
    cx.count("resourceGroups.delete");
    let sent = found(
        "resource group delete",
        cx.resources
            .resource_groups_client()
            .delete(req(c, "name")?, &cx.subscription)
            .send()
            .await,
    )?;
    if let Some(rsp) = sent {
        cx.settle("resource group delete", &rsp).await?;
    }
    Ok(())
}

/// `azure_resource_group`.
pub(super) struct Group;

#[async_trait]
impl Arm for Group {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "azure_resource_group",
            attributes: vec![
                AttrSchema::required("name").force_new(),
                AttrSchema::required("location").force_new(),
                AttrSchema::optional("tags"),
                AttrSchema::computed("id"),
            ],
        }
    }
    fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        validate(c)
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
