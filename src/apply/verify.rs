//! Checking that what a provider says it applied is what the service now holds: a fresh
//! read after each create or update, compared attribute by attribute with the planned
//! configuration. A provider that reports success without converging fails the run with
//! the attribute named, instead of recording a state the next plan contradicts.

use std::sync::Arc;

use crate::plan::retry::call_with_retries;
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

/// One apply result after the read-back: what to record, and the error when the object
/// did not converge (recorded as the service holds it, so the next plan shows the
/// difference, and failed so the run says so).
pub(super) type Checked = (Result<ApplyResponse, ProviderError>, Option<ProviderError>);

/// Reads back each successful result whose type declares it cheap (or every one with
/// `LANDLORD_VERIFY_APPLY=always`), retrying transient read failures like any call. A
/// read that still fails leaves the apply standing: not being able to check is not a
/// failure of the change, and the next plan reads the object again.
pub(super) async fn verify(
    p: &Arc<dyn Provider>,
    opts: &super::Options,
    reqs: &[ApplyRequest],
    results: Vec<Result<ApplyResponse, ProviderError>>,
) -> Vec<Checked> {
    let always = always();
    let mut out = Vec::with_capacity(results.len());
    for (req, res) in reqs.iter().zip(results) {
        let Ok(resp) = res else {
            out.push((res, None));
            continue;
        };
        if !(always || p.verify_after_apply(&req.address.rtype)) {
            out.push((Ok(resp), None));
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
        let read = call_with_retries(vec![read], opts.retry, |mut batch, _| {
            let p = p.clone();
            async move {
                match batch.pop() {
                    Some(r) => vec![p.read(r).await],
                    None => vec![],
                }
            }
        })
        .await
        .pop()
        .unwrap_or_else(|| Err(ProviderError::failed("no answer from the provider")));
        out.push(match read {
            // Not readable (yet): the apply stands; the next plan reads the object again.
            Err(_) => (Ok(resp), None),
            Ok(r) => match r.current {
                None => (Ok(resp), None),
                Some(live) => match compare(&req.config, &live, sensitive) {
                    Ok(()) => (Ok(resp), None),
                    Err(e) => {
                        let mut held = resp;
                        for (k, v) in live {
                            if !sensitive(&k) {
                                held.attributes.insert(k, v);
                            }
                        }
                        (Ok(held), Some(e.at(&req.address)))
                    }
                },
            },
        });
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
