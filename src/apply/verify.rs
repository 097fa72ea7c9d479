//! Checking that what a provider says it applied is what the service now holds: a fresh
//! read after each create or update, compared attribute by attribute with the planned
//! configuration. A provider that reports success without converging fails the run with
//! the attribute named, instead of recording a state the next plan contradicts.

use std::sync::Arc;

use crate::providers::{ApplyRequest, ApplyResponse, Provider, ProviderError, ReadRequest};
use crate::value::{is_unknown, Attrs};

/// Whether every apply is verified, whatever the type declares (`LANDLORD_VERIFY_APPLY=always`).
fn always() -> bool {
    std::env::var("LANDLORD_VERIFY_APPLY").is_ok_and(|v| v == "always")
}

/// The first planned attribute the live object does not hold, as an error.
pub(super) fn compare(
    config: &Attrs,
    live: &Attrs,
    sensitive: impl Fn(&str) -> bool,
) -> Result<(), ProviderError> {
    for (k, want) in config {
        if is_unknown(want) || sensitive(k) {
            continue;
        }
        // Attributes the service does not echo (write-only inputs) cannot be compared.
        let Some(got) = live.get(k) else { continue };
        if got != want {
            return Err(ProviderError::failed(format!(
                "provider bug: apply reported success but `{k}` did not converge: the service holds {got}, the plan wants {want}"
            )));
        }
    }
    Ok(())
}

/// Reads back each successful result whose type declares it cheap (or every one with
/// `LANDLORD_VERIFY_APPLY=always`) and turns a non-converged one into an error.
pub(super) async fn verify(
    p: &Arc<dyn Provider>,
    reqs: &[ApplyRequest],
    results: Vec<Result<ApplyResponse, ProviderError>>,
) -> Vec<Result<ApplyResponse, ProviderError>> {
    let mut out = Vec::with_capacity(results.len());
    for (req, res) in reqs.iter().zip(results) {
        let Ok(resp) = res else {
            out.push(res);
            continue;
        };
        if !(always() || p.verify_after_apply(&req.address.rtype)) {
            out.push(Ok(resp));
            continue;
        }
        let schema = p
            .schemas()
            .iter()
            .find(|s| s.type_name == req.address.rtype);
        let sensitive = |k: &str| schema.and_then(|s| s.attr(k)).is_some_and(|a| a.sensitive);
        let read = ReadRequest {
            address: req.address.clone(),
            id: resp.id.clone(),
            prior: resp.attributes.clone(),
        };
        let checked = match p.read(read).await {
            Ok(r) => match r.current {
                Some(live) => compare(&req.config, &live, sensitive).map(|_| resp),
                // Not readable yet (eventual consistency): the next plan looks again.
                None => Ok(resp),
            },
            Err(e) => Err(e.context("reading the object back after apply")),
        };
        out.push(checked.map_err(|e| e.at(&req.address)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: serde_json::Value) -> Attrs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_tag_the_service_kept_is_named() {
        let config = attrs(json!({"name": "z", "tags": {"tenant": "acme"}}));
        let live = attrs(json!({"name": "z", "tags": {"tenant": "acme", "by-hand": "x"}}));
        let e = compare(&config, &live, |_| false).unwrap_err();
        assert!(e.to_string().contains("`tags` did not converge"), "{e}");
    }

    #[test]
    fn unknown_sensitive_and_unechoed_attributes_are_not_compared() {
        let config = attrs(json!({
            "name": "z",
            "password": "secret",
            "id": crate::value::UNKNOWN,
            "private_key": "pem",
        }));
        let live = attrs(json!({"name": "z", "password": "other", "id": "Z1"}));
        compare(&config, &live, |k| k == "password").unwrap();
    }
}
