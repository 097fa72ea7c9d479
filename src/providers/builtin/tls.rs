//! `tls_private_key` and `tls_self_signed_cert`, generated with rcgen.

use super::Generated;
use rcgen::{CertificateParams, DnType, KeyPair, SignatureAlgorithm};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::providers::attrs::{opt_u64, req_str, with_computed};
use crate::providers::{ApplyResponse, AttrSchema, PlanResponse, ProviderError, ResourceSchema};
use crate::value::Attrs;

pub(super) fn private_key_schema() -> ResourceSchema {
    ResourceSchema {
        type_name: "tls_private_key",
        attributes: vec![
            AttrSchema::required("algorithm").force_new(),
            AttrSchema::optional("ecdsa_curve").force_new(),
            AttrSchema::optional("rsa_bits").force_new(),
            AttrSchema::computed("private_key_pem").sensitive(),
            AttrSchema::computed("public_key_pem"),
        ],
    }
}

pub(super) fn self_signed_cert_schema() -> ResourceSchema {
    ResourceSchema {
        type_name: "tls_self_signed_cert",
        attributes: vec![
            AttrSchema::required("private_key_pem").force_new(),
            AttrSchema::required("subject").force_new(),
            AttrSchema::optional("dns_names").force_new(),
            AttrSchema::required("validity_period_hours").force_new(),
            AttrSchema::optional("early_renewal_hours"),
            AttrSchema::computed("cert_pem"),
            AttrSchema::computed("not_after"),
            AttrSchema::computed("validity_start_time"),
        ],
    }
}

fn algorithm(c: &Attrs) -> Result<&'static SignatureAlgorithm, ProviderError> {
    match req_str(c, "algorithm")? {
        "ECDSA" => match c
            .get("ecdsa_curve")
            .and_then(Value::as_str)
            .unwrap_or("P256")
        {
            "P256" => Ok(&rcgen::PKCS_ECDSA_P256_SHA256),
            "P384" => Ok(&rcgen::PKCS_ECDSA_P384_SHA384),
            other => Err(ProviderError::invalid(format!(
                "unsupported `ecdsa_curve` `{other}`: expected P256 or P384"
            ))),
        },
        "RSA" => match opt_u64(c, "rsa_bits")?.unwrap_or(2048) {
            2048 => Ok(&rcgen::PKCS_RSA_SHA256),
            3072 => Ok(&rcgen::PKCS_RSA_SHA384),
            4096 => Ok(&rcgen::PKCS_RSA_SHA512),
            n => Err(ProviderError::invalid(format!(
                "unsupported `rsa_bits` {n}: expected 2048, 3072 or 4096"
            ))),
        },
        other => Err(ProviderError::invalid(format!(
            "unsupported `algorithm` `{other}`: expected ECDSA or RSA"
        ))),
    }
}

pub(super) fn validate_key(c: &Attrs) -> Result<(), ProviderError> {
    match c.get("algorithm") {
        Some(Value::String(_)) => algorithm(c).map(|_| ()),
        _ => Ok(()),
    }
}

fn failed(what: &str, e: rcgen::Error) -> ProviderError {
    ProviderError::failed(format!("{what}: {e}"))
}

pub(super) fn private_key(
    c: &Attrs,
    prior: Option<&Attrs>,
) -> Result<ApplyResponse, ProviderError> {
    if let Some(p) = prior.filter(|p| p.get("private_key_pem").is_some()) {
        let mut a = c.clone();
        for k in ["private_key_pem", "public_key_pem"] {
            a.insert(k.into(), p[k].clone());
        }
        return Ok(ApplyResponse {
            id: fingerprint(&a),
            attributes: a,
        });
    }
    let alg = algorithm(c)?;
    let kp = KeyPair::generate_for(alg).map_err(|e| failed("cannot generate key", e))?;
    let attrs = with_computed(
        c,
        [
            ("private_key_pem", json!(kp.serialize_pem())),
            ("public_key_pem", json!(kp.public_key_pem())),
        ],
    );
    Ok(ApplyResponse {
        id: fingerprint(&attrs),
        attributes: attrs,
    })
}

fn fingerprint(a: &Attrs) -> String {
    use sha2::{Digest, Sha256};
    let pubkey = a
        .get("public_key_pem")
        .and_then(Value::as_str)
        .unwrap_or_default();
    hex::encode(&Sha256::digest(pubkey.as_bytes())[..16])
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub(super) fn self_signed_cert(
    c: &Attrs,
    prior: Option<&Attrs>,
) -> Result<ApplyResponse, ProviderError> {
    if let Some(p) = prior.filter(|p| p.get("cert_pem").is_some()) {
        let mut a = c.clone();
        for k in ["cert_pem", "not_after", "validity_start_time"] {
            a.insert(k.into(), p[k].clone());
        }
        let id = p
            .get("not_after")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        return Ok(ApplyResponse { id, attributes: a });
    }
    let key = KeyPair::from_pem(req_str(c, "private_key_pem")?)
        .map_err(|e| failed("`private_key_pem` is not a usable key", e))?;
    let hours = opt_u64(c, "validity_period_hours")?
        .ok_or_else(|| ProviderError::invalid("`validity_period_hours` is required"))?;
    let subject = c
        .get("subject")
        .and_then(Value::as_object)
        .ok_or_else(|| ProviderError::invalid("`subject` must be a mapping with `common_name`"))?;
    let cn = subject
        .get("common_name")
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::invalid("`subject.common_name` is required"))?;
    let names: Vec<String> = match c.get("dns_names") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ProviderError::invalid("`dns_names` must be a list of strings"))
            })
            .collect::<Result<_, _>>()?,
        None | Some(Value::Null) => vec![cn.to_string()],
        Some(_) => {
            return Err(ProviderError::invalid(
                "`dns_names` must be a list of strings",
            ))
        }
    };
    let mut params = CertificateParams::new(names)
        .map_err(|e| ProviderError::invalid(format!("invalid `dns_names`: {e}")))?;
    params.distinguished_name.push(DnType::CommonName, cn);
    if let Some(o) = subject.get("organization").and_then(Value::as_str) {
        params.distinguished_name.push(DnType::OrganizationName, o);
    }
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    let not_after = now + Duration::hours(hours as i64);
    params.not_before = now;
    params.not_after = not_after;
    let cert = params
        .self_signed(&key)
        .map_err(|e| failed("cannot sign certificate", e))?;
    let attrs = with_computed(
        c,
        [
            ("cert_pem", json!(cert.pem())),
            ("not_after", json!(rfc3339(not_after))),
            ("validity_start_time", json!(rfc3339(now))),
        ],
    );
    Ok(ApplyResponse {
        id: rfc3339(not_after),
        attributes: attrs,
    })
}

/// A certificate whose expiry is inside `early_renewal_hours` is replaced.
pub(super) fn plan_renewal(config: &Attrs, prior: &Attrs) -> PlanResponse {
    let window = config
        .get("early_renewal_hours")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let not_after = prior
        .get("not_after")
        .and_then(Value::as_str)
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
    match not_after {
        Some(t) if t - Duration::hours(window as i64) <= OffsetDateTime::now_utc() => {
            PlanResponse {
                requires_replace: vec!["not_after".into()],
                replace_reason: Some(format!("renewal due: certificate expires {}", rfc3339(t))),
                ..Default::default()
            }
        }
        _ => PlanResponse::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(v: Value) -> Attrs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn key_then_cert_and_renewal_window() {
        let k = private_key(&attrs(json!({"algorithm": "ECDSA"})), None).unwrap();
        let pem = k.attributes["private_key_pem"].as_str().unwrap();
        assert!(pem.contains("PRIVATE KEY"));
        let cfg = attrs(
            json!({"private_key_pem": pem, "subject": {"common_name": "acme.test"}, "validity_period_hours": 24, "early_renewal_hours": 1}),
        );
        let c = self_signed_cert(&cfg, None).unwrap();
        assert!(c.attributes["cert_pem"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE"));
        assert!(plan_renewal(&cfg, &c.attributes).replace_reason.is_none());
        let cfg_wide = attrs(json!({"early_renewal_hours": 48}));
        assert!(plan_renewal(&cfg_wide, &c.attributes)
            .replace_reason
            .unwrap()
            .starts_with("renewal due"));
    }

    #[test]
    fn rejects_unknown_algorithm() {
        assert!(validate_key(&attrs(json!({"algorithm": "DSA"}))).is_err());
    }
}

/// `tls_private_key`.
pub(super) struct PrivateKey;

impl Generated for PrivateKey {
    fn schema(&self) -> ResourceSchema {
        private_key_schema()
    }
    fn operation(&self) -> &'static str {
        "tls.generate_key"
    }
    fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        validate_key(c)
    }
    fn generate(&self, c: &Attrs, prior: Option<&Attrs>) -> Result<ApplyResponse, ProviderError> {
        private_key(c, prior)
    }
}

/// `tls_self_signed_cert`: replaced when its renewal is due.
pub(super) struct SelfSignedCert;

impl Generated for SelfSignedCert {
    fn schema(&self) -> ResourceSchema {
        self_signed_cert_schema()
    }
    fn operation(&self) -> &'static str {
        "tls.sign_certificate"
    }
    fn plan(&self, config: &Attrs, prior: &Attrs) -> PlanResponse {
        plan_renewal(config, prior)
    }
    fn generate(&self, c: &Attrs, prior: Option<&Attrs>) -> Result<ApplyResponse, ProviderError> {
        self_signed_cert(c, prior)
    }
}
