//! `random_password` and `random_id`: values generated once and kept in state.

use super::Generated;
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use serde_json::{json, Value};

use crate::providers::attrs::{opt_bool, opt_str, opt_u64, with_computed};
use crate::providers::{ApplyResponse, AttrSchema, ProviderError, ResourceSchema};
use crate::value::Attrs;

pub(super) fn password_schema() -> ResourceSchema {
    ResourceSchema {
        type_name: "random_password",
        attributes: vec![
            AttrSchema::required("length").force_new(),
            AttrSchema::optional("special").force_new(),
            AttrSchema::optional("upper").force_new(),
            AttrSchema::optional("lower").force_new(),
            AttrSchema::optional("numeric").force_new(),
            AttrSchema::optional("override_special").force_new(),
            AttrSchema::computed("result").sensitive(),
        ],
    }
}

pub(super) fn id_schema() -> ResourceSchema {
    ResourceSchema {
        type_name: "random_id",
        attributes: vec![
            AttrSchema::required("byte_length").force_new(),
            AttrSchema::optional("prefix").force_new(),
            AttrSchema::computed("hex"),
            AttrSchema::computed("b64_url"),
        ],
    }
}

pub(super) fn validate_password(c: &Attrs) -> Result<(), ProviderError> {
    match opt_u64(c, "length")? {
        Some(n) if (1..=1024).contains(&n) => Ok(()),
        Some(n) => Err(ProviderError::invalid(format!(
            "`length` must be between 1 and 1024, got {n}"
        ))),
        None => Ok(()),
    }
}

/// Keeps the prior value on an in-place update (every input is force-new).
fn keep_prior(prior: Option<&Attrs>, c: &Attrs, keys: &[&str]) -> Option<Attrs> {
    let prior = prior?;
    let mut a = c.clone();
    for k in keys {
        a.insert(k.to_string(), prior.get(*k)?.clone());
    }
    Some(a)
}

pub(super) fn password(c: &Attrs, prior: Option<&Attrs>) -> Result<ApplyResponse, ProviderError> {
    if let Some(a) = keep_prior(prior, c, &["result"]) {
        return Ok(ApplyResponse {
            id: "none".into(),
            attributes: a,
        });
    }
    let length = opt_u64(c, "length")?
        .ok_or_else(|| ProviderError::invalid("`length` is required"))? as usize;
    let mut classes: Vec<Vec<u8>> = Vec::new();
    if opt_bool(c, "upper")?.unwrap_or(true) {
        classes.push((b'A'..=b'Z').collect());
    }
    if opt_bool(c, "lower")?.unwrap_or(true) {
        classes.push((b'a'..=b'z').collect());
    }
    if opt_bool(c, "numeric")?.unwrap_or(true) {
        classes.push((b'0'..=b'9').collect());
    }
    if opt_bool(c, "special")?.unwrap_or(true) {
        let specials = opt_str(c, "override_special")?.unwrap_or("!#$%&*()-_=+[]{}<>:?");
        classes.push(specials.bytes().collect());
    }
    classes.retain(|c| !c.is_empty());
    if classes.is_empty() {
        return Err(ProviderError::invalid("every character class is disabled"));
    }
    let all: Vec<u8> = classes.concat();
    let mut rng = OsRng;
    let mut out: Vec<u8> = (0..length)
        .map(|_| all[rng.gen_range(0..all.len())])
        .collect();
    // One character of each enabled class, when the length allows.
    for class in classes.iter().take(length) {
        let pos = rng.gen_range(0..length);
        if !out.iter().any(|b| class.contains(b)) {
            out[pos] = class[rng.gen_range(0..class.len())];
        }
    }
    let result = String::from_utf8(out).map_err(|e| ProviderError::invalid(e.to_string()))?;
    Ok(ApplyResponse {
        id: "none".into(),
        attributes: with_computed(c, [("result", Value::String(result))]),
    })
}

pub(super) fn id(c: &Attrs, prior: Option<&Attrs>) -> Result<ApplyResponse, ProviderError> {
    if let Some(a) = keep_prior(prior, c, &["hex", "b64_url"]) {
        let id = a
            .get("b64_url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        return Ok(ApplyResponse { id, attributes: a });
    }
    let n = opt_u64(c, "byte_length")?
        .ok_or_else(|| ProviderError::invalid("`byte_length` is required"))?;
    if !(1..=64).contains(&n) {
        return Err(ProviderError::invalid(format!(
            "`byte_length` must be between 1 and 64, got {n}"
        )));
    }
    let mut bytes = vec![0u8; n as usize];
    OsRng.fill_bytes(&mut bytes);
    let prefix = opt_str(c, "prefix")?.unwrap_or("");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    let attrs = with_computed(
        c,
        [
            ("hex", json!(format!("{prefix}{}", hex::encode(&bytes)))),
            ("b64_url", json!(format!("{prefix}{b64}"))),
        ],
    );
    Ok(ApplyResponse {
        id: format!("{prefix}{b64}"),
        attributes: attrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_respects_length_and_classes() {
        let c: Attrs = serde_json::from_value(json!({"length": 24, "special": false})).unwrap();
        let r = password(&c, None).unwrap();
        let s = r.attributes["result"].as_str().unwrap();
        assert_eq!(s.len(), 24);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        let again = password(&c, Some(&r.attributes)).unwrap();
        assert_eq!(
            again.attributes["result"], r.attributes["result"],
            "an update keeps the value"
        );
    }

    #[test]
    fn id_is_hex_of_byte_length() {
        let c: Attrs = serde_json::from_value(json!({"byte_length": 4})).unwrap();
        let r = id(&c, None).unwrap();
        assert_eq!(r.attributes["hex"].as_str().unwrap().len(), 8);
    }
}

/// `random_password`.
pub(super) struct Password;

impl Generated for Password {
    fn schema(&self) -> ResourceSchema {
        password_schema()
    }
    fn operation(&self) -> &'static str {
        "random.generate"
    }
    fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        validate_password(c)
    }
    fn generate(&self, c: &Attrs, prior: Option<&Attrs>) -> Result<ApplyResponse, ProviderError> {
        password(c, prior)
    }
}

/// `random_id`.
pub(super) struct Id;

impl Generated for Id {
    fn schema(&self) -> ResourceSchema {
        id_schema()
    }
    fn operation(&self) -> &'static str {
        "random.generate"
    }
    fn generate(&self, c: &Attrs, prior: Option<&Attrs>) -> Result<ApplyResponse, ProviderError> {
        id(c, prior)
    }
}
