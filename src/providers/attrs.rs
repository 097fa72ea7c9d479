//! Attribute helpers every provider shares: typed reads of configuration values, the
//! one tag-sync rule of every tagged type, and the record types DNS providers accept.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ProviderError;
use crate::value::Attrs;

/// Reads an optional string attribute.
pub(crate) fn opt_str<'a>(c: &'a Attrs, k: &str) -> Result<Option<&'a str>, ProviderError> {
    match c.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(ProviderError::invalid(format!(
            "`{k}` must be a string, got {v}"
        ))),
    }
}

/// Reads a required string attribute.
pub(crate) fn req_str<'a>(c: &'a Attrs, k: &str) -> Result<&'a str, ProviderError> {
    opt_str(c, k)?.ok_or_else(|| ProviderError::invalid(format!("`{k}` is required")))
}

/// Reads an optional non-negative integer attribute.
pub(crate) fn opt_u64(c: &Attrs, k: &str) -> Result<Option<u64>, ProviderError> {
    match c.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            ProviderError::invalid(format!("`{k}` must be a non-negative integer, got {v}"))
        }),
    }
}

/// Reads an optional boolean attribute.
pub(crate) fn opt_bool(c: &Attrs, k: &str) -> Result<Option<bool>, ProviderError> {
    match c.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(ProviderError::invalid(format!(
            "`{k}` must be true or false, got {v}"
        ))),
    }
}

/// Configuration plus computed attributes: the attributes recorded after apply.
pub(crate) fn with_computed(
    config: &Attrs,
    computed: impl IntoIterator<Item = (&'static str, Value)>,
) -> Attrs {
    let mut a = config.clone();
    for (k, v) in computed {
        a.insert(k.to_string(), v);
    }
    a
}

/// Copies configuration keys the API does not echo (e.g. `force_destroy`) from `from`.
pub(crate) fn keep_config(into: &mut Attrs, from: &Attrs, keys: &[&str]) {
    for k in keys {
        if let Some(v) = from.get(*k) {
            into.insert(k.to_string(), v.clone());
        }
    }
}

/// The `tags` mapping of a configuration, values as strings.
pub(crate) fn tags_of(c: &Attrs) -> Result<BTreeMap<String, String>, ProviderError> {
    match c.get("tags") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(o)) => Ok(o
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k.clone(), s.clone()),
                other => (k.clone(), other.to_string()),
            })
            .collect()),
        Some(v) => Err(ProviderError::invalid(format!(
            "`tags` must be a mapping, got {v}"
        ))),
    }
}

/// What to change so that an object's live tags become the desired ones.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TagSync {
    /// Tags to add or change.
    pub set: BTreeMap<String, String>,
    /// Keys to remove.
    pub remove: Vec<String>,
}

impl TagSync {
    /// The one rule of every tagged type: remove what is live and not desired (except
    /// keys the provider or the cloud owns, for which `owned` is true), add or change
    /// what differs.
    pub(crate) fn new(
        live: &BTreeMap<String, String>,
        want: &BTreeMap<String, String>,
        owned: impl Fn(&str) -> bool,
    ) -> TagSync {
        TagSync {
            set: want
                .iter()
                .filter(|(k, v)| live.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            remove: live
                .keys()
                .filter(|k| !want.contains_key(*k) && !owned(k))
                .cloned()
                .collect(),
        }
    }

    /// Whether the live tags are already the desired ones.
    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// How [`check_one_of`] compares a value with the allowed ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    /// Exactly as listed.
    Exact,
    /// In any letter case (SQL keywords).
    Any,
}

/// Checks that a known string attribute is one of `allowed`.
pub(crate) fn check_one_of(
    c: &Attrs,
    key: &str,
    allowed: &[&str],
    case: Case,
) -> Result<(), ProviderError> {
    let is = |a: &&str, v: &str| match case {
        Case::Exact => *a == v,
        Case::Any => a.eq_ignore_ascii_case(v),
    };
    match c.get(key).and_then(Value::as_str) {
        Some(v) if v != crate::value::UNKNOWN && !allowed.iter().any(|a| is(a, v)) => {
            Err(ProviderError::invalid(format!(
                "`{key}` is `{v}`: expected one of {}",
                allowed.join(", ")
            )))
        }
        _ => Ok(()),
    }
}

/// DNS record types landlord manages: every one on RFC 2136 servers.
pub(crate) const RECORD_TYPES: &[&str] = &["A", "AAAA", "CNAME", "TXT", "MX", "CAA", "SRV"];

/// The record types landlord writes through cloud DNS APIs (Route 53, Azure DNS): all but SRV.
pub(crate) const CLOUD_RECORD_TYPES: &[&str] = RECORD_TYPES.split_at(6).0;

/// Checks a known `type` attribute against the record types a provider writes.
pub(crate) fn check_record_type(c: &Attrs, allowed: &[&str]) -> Result<(), ProviderError> {
    match c.get("type").and_then(Value::as_str) {
        Some(t) if t != crate::value::UNKNOWN && !allowed.contains(&t) => {
            Err(ProviderError::invalid(format!(
                "unsupported record type `{t}`: expected one of {}",
                allowed.join(", ")
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_tag_added_by_hand_is_removed_and_a_changed_one_is_set_back() {
        let live = map(&[
            ("tenant", "someone-else"),
            ("added-by-hand", "x"),
            ("landlord:address", "a/b.c"),
        ]);
        let want = map(&[("tenant", "acme"), ("landlord:address", "a/b.c")]);
        let s = TagSync::new(&live, &want, |k| k.starts_with("aws:"));
        assert_eq!(s.set, map(&[("tenant", "acme")]));
        assert_eq!(s.remove, vec!["added-by-hand".to_string()]);
    }

    #[test]
    fn owned_keys_stay_and_equal_tags_need_no_call() {
        let live = map(&[("aws:cloudformation:stack", "s"), ("tenant", "acme")]);
        let want = map(&[("tenant", "acme")]);
        let s = TagSync::new(&live, &want, |k| k.starts_with("aws:"));
        assert!(s.is_empty(), "{s:?}");
    }

    #[test]
    fn non_string_tag_values_are_written_as_text() {
        let mut c = Attrs::new();
        c.insert("tags".into(), serde_json::json!({"tier": 3}));
        assert_eq!(tags_of(&c).unwrap(), map(&[("tier", "3")]));
        c.insert("tags".into(), serde_json::json!([1]));
        assert!(tags_of(&c).is_err());
    }
}
