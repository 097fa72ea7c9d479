//! Tenant files (`tenants/<id>.yaml`): the raw shape as users write it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Lifecycle status of a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Provisioned and serving.
    #[default]
    Active,
    /// Kept, but templates may drop serving resources.
    Suspended,
    /// Every resource is destroyed.
    Deleted,
}

impl Status {
    /// The status as written in tenant files.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Deleted => "deleted",
        }
    }
}

/// How a tenant is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainKind {
    /// A name under the platform's base domain.
    Subdomain,
    /// The tenant's own domain pointed at the platform.
    Custom,
    /// A fully branded domain with its own zone.
    Whitelabel,
}

/// `domain:` of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// Domain kind.
    pub kind: DomainKind,
    /// Label (subdomain) or full domain name.
    pub name: String,
}

/// A tenant as written in its file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// Tenant id, equal to the file name.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Tier name (`plans/<tier>.yaml`).
    pub plan: String,
    /// Lifecycle status.
    #[serde(default)]
    pub status: Status,
    /// Home region.
    #[serde(default)]
    pub region: Option<String>,
    /// Allowed jurisdictions or regions.
    #[serde(default)]
    pub residency: Vec<String>,
    /// Primary domain.
    #[serde(default)]
    pub domain: Option<Domain>,
    /// Extra custom domain names (counted against the tier's `custom_domains` limit).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Overrides of tier defaults, only where the tier allows.
    #[serde(default)]
    pub settings: Value,
    /// Free labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}
