//! Tenant ids and resource addresses: immutable value types with a stable order.
//!
//! An address is `<scope>/<type>.<name>` where scope is a tenant id or `_shared`.
//! Must not import any other module of the crate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Scope name used for workspace-wide resources rendered from `shared.yaml`.
pub const SHARED: &str = "_shared";

/// Why a string is not a valid tenant id or address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrError {
    /// The tenant id does not match `^[a-z][a-z0-9-]{1,62}$`.
    #[error("invalid tenant id `{0}`: expected a lowercase letter followed by 1-62 lowercase letters, digits or `-`")]
    TenantId(String),
    /// The address is not `<scope>/<type>.<name>`.
    #[error("invalid resource address `{0}`: expected `<tenant>/<type>.<name>`")]
    Address(String),
}

/// Returns whether `id` is a valid tenant id.
pub fn is_valid_tenant_id(id: &str) -> bool {
    let b = id.as_bytes();
    (2..=63).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn is_valid_ident(s: &str) -> bool {
    !s.is_empty()
        && s.as_bytes()[0].is_ascii_alphabetic()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// Who owns a resource: one tenant, or the workspace (`_shared`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Scope {
    /// Workspace-wide resources from `shared.yaml`.
    Shared,
    /// Resources of one tenant.
    Tenant(String),
}

impl Scope {
    /// Builds a tenant scope after checking the id.
    pub fn tenant(id: &str) -> Result<Self, AddrError> {
        if is_valid_tenant_id(id) {
            Ok(Scope::Tenant(id.to_string()))
        } else {
            Err(AddrError::TenantId(id.to_string()))
        }
    }

    /// The scope as written in addresses.
    pub fn as_str(&self) -> &str {
        match self {
            Scope::Shared => SHARED,
            Scope::Tenant(t) => t,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for Scope {
    type Error = AddrError;
    fn try_from(s: String) -> Result<Self, AddrError> {
        if s == SHARED {
            Ok(Scope::Shared)
        } else {
            Scope::tenant(&s)
        }
    }
}

/// A resource address `<scope>/<type>.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ResourceAddr {
    /// Owner of the resource.
    pub scope: Scope,
    /// Resource type, e.g. `local_file`.
    pub rtype: String,
    /// Name unique within scope and type.
    pub name: String,
}

impl ResourceAddr {
    /// Builds an address; type and name must be identifiers.
    pub fn new(scope: Scope, rtype: &str, name: &str) -> Result<Self, AddrError> {
        if !is_valid_ident(rtype) || !is_valid_ident(name) {
            return Err(AddrError::Address(format!("{scope}/{rtype}.{name}")));
        }
        Ok(ResourceAddr {
            scope,
            rtype: rtype.to_string(),
            name: name.to_string(),
        })
    }

    /// The `<type>.<name>` part, as used in `depends_on` and references.
    pub fn local(&self) -> String {
        format!("{}.{}", self.rtype, self.name)
    }

    /// The tenant id, or `None` for shared resources.
    pub fn tenant(&self) -> Option<&str> {
        match &self.scope {
            Scope::Shared => None,
            Scope::Tenant(t) => Some(t),
        }
    }
}

impl fmt::Display for ResourceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}.{}", self.scope, self.rtype, self.name)
    }
}

impl From<ResourceAddr> for String {
    fn from(a: ResourceAddr) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for ResourceAddr {
    type Error = AddrError;
    fn try_from(s: String) -> Result<Self, AddrError> {
        s.parse()
    }
}

impl FromStr for ResourceAddr {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, AddrError> {
        let bad = || AddrError::Address(s.to_string());
        let (scope, rest) = s.split_once('/').ok_or_else(bad)?;
        let (rtype, name) = rest.split_once('.').ok_or_else(bad)?;
        let scope = Scope::try_from(scope.to_string()).map_err(|_| bad())?;
        ResourceAddr::new(scope, rtype, name).map_err(|_| bad())
    }
}

/// The scopes a run is limited to (tenant ids, `_shared`), looked up in constant time;
/// no scope at all means every scope.
#[derive(Debug, Clone, Default)]
pub struct Selection<'a>(Option<std::collections::HashSet<&'a str>>);

impl<'a> Selection<'a> {
    /// The selection of `ids` (every scope when empty).
    pub fn new(ids: &'a [String]) -> Self {
        Selection((!ids.is_empty()).then(|| ids.iter().map(String::as_str).collect()))
    }

    /// Whether `scope` is selected.
    pub fn holds(&self, scope: &str) -> bool {
        self.0.as_ref().is_none_or(|s| s.contains(scope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids() {
        assert!(is_valid_tenant_id("acme"));
        assert!(is_valid_tenant_id("a1-b"));
        assert!(!is_valid_tenant_id("a"));
        assert!(!is_valid_tenant_id("Acme"));
        assert!(!is_valid_tenant_id("1acme"));
        assert!(!is_valid_tenant_id("ac_me"));
        assert!(!is_valid_tenant_id(&"a".repeat(64)));
    }

    #[test]
    fn address_round_trip_and_order() {
        let a: ResourceAddr = "acme/local_file.site".parse().unwrap();
        assert_eq!(a.to_string(), "acme/local_file.site");
        assert_eq!(a.tenant(), Some("acme"));
        let s: ResourceAddr = "_shared/local_file.zone".parse().unwrap();
        assert_eq!(s.tenant(), None);
        assert!(s < a, "shared resources sort first");
        assert!("acme/local_file".parse::<ResourceAddr>().is_err());
        assert!("ACME/x.y".parse::<ResourceAddr>().is_err());
    }

    #[test]
    fn empty_selects_every_scope() {
        let ids = vec!["acme".to_string(), "_shared".to_string()];
        let some = Selection::new(&ids);
        assert!(some.holds("acme") && some.holds("_shared") && !some.holds("globex"));
        assert!(Selection::new(&[]).holds("globex"));
    }
}
