//! `aws_acm_certificate` and `aws_acm_certificate_validation`, which waits, bounded, until
//! the certificate is issued. A certificate is either requested from ACM (`domain_name`,
//! DNS validation) or imported (`certificate_body` + `private_key`, e.g. from
//! `acme_certificate`); a new body is re-imported under the same ARN, so listeners and
//! distributions that use it keep working through renewals.

use async_trait::async_trait;
use std::time::{Duration, Instant};

use aws_sdk_acm::types::{CertificateStatus, Tag, ValidationMethod};
use serde_json::{json, Value};

use super::error::classify;
use super::{short_token, tags_with_address, user_tags, Aws, Clients, ADDRESS_TAG};
use std::collections::BTreeMap;

use crate::providers::attrs::{keep_config, opt_str, req_str, TagSync};
use crate::providers::resource::recover_update;
use crate::providers::{
    ApplyRequest, ApplyResponse, AttrSchema, DeleteRequest, ProviderError, ReadRequest,
    RecoverRequest, ResourceSchema, ResourceType,
};
use crate::value::Attrs;

pub(super) fn certificate_schema() -> ResourceSchema {
    ResourceSchema {
        type_name: "aws_acm_certificate",
        attributes: vec![
            AttrSchema::optional("domain_name").force_new(),
            AttrSchema::optional("subject_alternative_names").force_new(),
            AttrSchema::optional("validation_method").force_new(),
            AttrSchema::optional("certificate_body"),
            AttrSchema::optional("private_key").sensitive(),
            AttrSchema::optional("certificate_chain"),
            AttrSchema::optional("tags"),
            AttrSchema::optional("region").force_new(),
            AttrSchema::computed("arn"),
            AttrSchema::computed("status"),
            AttrSchema::computed("not_after"),
            AttrSchema::computed("domain_validation_options"),
        ],
    }
}

pub(super) fn validation_schema() -> ResourceSchema {
    ResourceSchema {
        type_name: "aws_acm_certificate_validation",
        attributes: vec![
            AttrSchema::required("certificate_arn").force_new(),
            AttrSchema::optional("validation_record_fqdns").force_new(),
            AttrSchema::optional("timeout"),
            AttrSchema::optional("region").force_new(),
            AttrSchema::computed("status"),
        ],
    }
}

/// Whether the configuration imports a certificate (rather than requesting one).
fn imported(c: &Attrs) -> bool {
    c.contains_key("certificate_body")
}

/// A certificate is requested (`domain_name`) or imported (`certificate_body` and
/// `private_key`), never both.
pub(super) fn validate_certificate(c: &Attrs) -> Result<(), ProviderError> {
    match (
        c.contains_key("domain_name"),
        imported(c),
        c.contains_key("private_key"),
    ) {
        (true, false, false) | (false, true, true) => Ok(()),
        (true, true, _) => Err(ProviderError::invalid(
            "set either `domain_name` (request a certificate) or `certificate_body` (import one), not both",
        )),
        (false, true, false) => Err(ProviderError::invalid(
            "an imported certificate needs `private_key`",
        )),
        (_, false, true) => Err(ProviderError::invalid(
            "`private_key` goes with `certificate_body` (an imported certificate)",
        )),
        (false, false, false) => Err(ProviderError::invalid(
            "set `domain_name` to request a certificate, or `certificate_body` and `private_key` to import one",
        )),
    }
}

fn sans(c: &Attrs) -> Vec<String> {
    c.get("subject_alternative_names")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn tags(aws: &Aws, c: &Clients, arn: &str) -> Result<Vec<(String, String)>, ProviderError> {
    let out = aws
        .call(
            "acm",
            "ListTagsForCertificate",
            c.acm
                .list_tags_for_certificate()
                .certificate_arn(arn)
                .send(),
        )
        .await?;
    Ok(out
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

pub(super) async fn read_certificate(
    aws: &Aws,
    c: &Clients,
    arn: &str,
    prior: &Attrs,
) -> Result<Option<Attrs>, ProviderError> {
    aws.count("acm", "DescribeCertificate");
    let out = match c
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
    {
        Ok(o) => o,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(classify("acm DescribeCertificate", e)),
    };
    let Some(d) = out.certificate() else {
        return Ok(None);
    };
    let domain = d.domain_name().unwrap_or_default().to_string();
    let others: Vec<&String> = d
        .subject_alternative_names()
        .iter()
        .filter(|s| **s != domain)
        .collect();
    let dvo: Vec<Value> = d
        .domain_validation_options()
        .iter()
        .map(|v| {
            let rr = v.resource_record();
            json!({
                "domain_name": v.domain_name(),
                "resource_record_name": rr.map(|r| r.name().trim_end_matches('.')),
                "resource_record_type": rr.map(|r| r.r#type().as_str()),
                "resource_record_value": rr.map(|r| r.value()),
            })
        })
        .collect();
    let mut a = Attrs::new();
    a.insert("domain_name".into(), json!(domain));
    if imported(prior) {
        // ACM returns the body (never the key): compare it with what was imported.
        let got = aws
            .call(
                "acm",
                "GetCertificate",
                c.acm.get_certificate().certificate_arn(arn).send(),
            )
            .await?;
        let live = got.certificate().unwrap_or_default();
        let body = match prior.get("certificate_body").and_then(Value::as_str) {
            Some(p) if p.trim() == live.trim() => p.to_string(),
            _ => live.to_string(),
        };
        a.insert("certificate_body".into(), json!(body));
        keep_config(&mut a, prior, &["private_key", "certificate_chain"]);
    } else {
        if prior.contains_key("subject_alternative_names") || !others.is_empty() {
            a.insert("subject_alternative_names".into(), json!(others));
        }
        a.insert("validation_method".into(), json!("DNS"));
    }
    if let Some(t) = d.not_after() {
        a.insert(
            "not_after".into(),
            json!(t
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .unwrap_or_default()),
        );
    }
    a.insert("tags".into(), user_tags(tags(aws, c, arn).await?));
    a.insert("arn".into(), json!(arn));
    a.insert(
        "status".into(),
        json!(d.status().map(|s| s.as_str()).unwrap_or("UNKNOWN")),
    );
    a.insert("domain_validation_options".into(), json!(dvo));
    keep_config(&mut a, prior, &["region"]);
    Ok(Some(a))
}

fn acm_tags(c: &Attrs, req: &ApplyRequest) -> Result<Vec<Tag>, ProviderError> {
    tags_with_address(c, &req.address)?
        .into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| ProviderError::invalid(e.to_string()))
        })
        .collect()
}

/// Makes the certificate's tags the configured ones (plus the address tag).
async fn sync_tags(
    aws: &Aws,
    c: &Clients,
    arn: &str,
    cfg: &Attrs,
    req: &ApplyRequest,
) -> Result<(), ProviderError> {
    let want = tags_with_address(cfg, &req.address)?;
    let live: BTreeMap<String, String> = tags(aws, c, arn).await?.into_iter().collect();
    let sync = TagSync::new(&live, &want, super::aws_owned);
    let build = |(k, v): (&String, &String)| {
        Tag::builder()
            .key(k)
            .value(v)
            .build()
            .map_err(|e| ProviderError::invalid(e.to_string()))
    };
    if !sync.remove.is_empty() {
        let stale = sync
            .remove
            .iter()
            .filter_map(|k| live.get_key_value(k))
            .map(build)
            .collect::<Result<Vec<_>, _>>()?;
        aws.call(
            "acm",
            "RemoveTagsFromCertificate",
            c.acm
                .remove_tags_from_certificate()
                .certificate_arn(arn)
                .set_tags(Some(stale))
                .send(),
        )
        .await?;
    }
    if !sync.set.is_empty() {
        let set = sync.set.iter().map(build).collect::<Result<Vec<_>, _>>()?;
        aws.call(
            "acm",
            "AddTagsToCertificate",
            c.acm
                .add_tags_to_certificate()
                .certificate_arn(arn)
                .set_tags(Some(set))
                .send(),
        )
        .await?;
    }
    Ok(())
}

/// Imports the configured certificate, or re-imports it under its ARN.
async fn import_certificate(
    aws: &Aws,
    c: &Clients,
    req: &ApplyRequest,
    prior_arn: Option<&str>,
) -> Result<ApplyResponse, ProviderError> {
    use aws_sdk_acm::primitives::Blob;
    let cfg = &req.config;
    let pem = |k: &str| opt_str(cfg, k).map(|v| v.map(|t| Blob::new(t.as_bytes())));
    aws.count("acm", "ImportCertificate");
    let call = c
        .acm
        .import_certificate()
        .certificate(Blob::new(req_str(cfg, "certificate_body")?.as_bytes()))
        .private_key(Blob::new(req_str(cfg, "private_key")?.as_bytes()))
        .set_certificate_chain(pem("certificate_chain")?);
    // Tags go with the first import only; a re-import keeps the ARN and its tags.
    let call = match prior_arn {
        Some(arn) => call.certificate_arn(arn),
        None => call.set_tags(Some(acm_tags(cfg, req)?)),
    };
    let arn = call
        .send()
        .await
        .map_err(|e| classify("acm ImportCertificate", e))?
        .certificate_arn()
        .unwrap_or_default()
        .to_string();
    if prior_arn.is_some() {
        sync_tags(aws, c, &arn, cfg, req).await?;
    }
    let mut attrs = read_certificate(aws, c, &arn, cfg)
        .await?
        .ok_or_else(|| ProviderError::transient(format!("certificate `{arn}` not readable yet")))?;
    keep_config(
        &mut attrs,
        cfg,
        &["certificate_body", "private_key", "certificate_chain"],
    );
    Ok(ApplyResponse {
        id: arn,
        attributes: attrs,
    })
}

pub(super) async fn apply_certificate(
    aws: &Aws,
    c: &Clients,
    req: &ApplyRequest,
) -> Result<ApplyResponse, ProviderError> {
    let cfg = &req.config;
    let prior_arn = req
        .prior
        .as_ref()
        .and_then(|p| p.get("arn"))
        .and_then(Value::as_str);
    if imported(cfg) {
        return import_certificate(aws, c, req, prior_arn).await;
    }
    let arn = match prior_arn {
        Some(arn) => {
            sync_tags(aws, c, arn, cfg, req).await?;
            arn.to_string()
        }
        None => {
            if opt_str(cfg, "validation_method")?.is_some_and(|m| m != "DNS") {
                return Err(ProviderError::invalid(
                    "only `validation_method: DNS` is supported",
                ));
            }
            aws.count("acm", "RequestCertificate");
            let names = sans(cfg);
            let out = c
                .acm
                .request_certificate()
                .domain_name(req_str(cfg, "domain_name")?)
                .set_subject_alternative_names((!names.is_empty()).then_some(names))
                .validation_method(ValidationMethod::Dns)
                // The same token within the hour returns the same certificate: retries and
                // crash recovery cannot create a second one.
                .idempotency_token(short_token(&req.token, 32))
                .set_tags(Some(acm_tags(cfg, req)?))
                .send()
                .await
                .map_err(|e| classify("acm RequestCertificate", e))?;
            out.certificate_arn().unwrap_or_default().to_string()
        }
    };
    let mut attrs = read_certificate(aws, c, &arn, cfg)
        .await?
        .ok_or_else(|| ProviderError::transient(format!("certificate `{arn}` not readable yet")))?;
    keep_config(
        &mut attrs,
        cfg,
        &["subject_alternative_names", "validation_method"],
    );
    Ok(ApplyResponse {
        id: arn,
        attributes: attrs,
    })
}

pub(super) async fn recover_certificate(
    aws: &Aws,
    c: &Clients,
    req: &RecoverRequest,
) -> Result<Option<(String, Attrs)>, ProviderError> {
    let addr = req.address.to_string();
    let mut next: Option<String> = None;
    loop {
        let page = aws
            .call(
                "acm",
                "ListCertificates",
                c.acm
                    .list_certificates()
                    .set_next_token(next.clone())
                    .send(),
            )
            .await?;
        for s in page.certificate_summary_list() {
            let Some(arn) = s.certificate_arn() else {
                continue;
            };
            if tags(aws, c, arn)
                .await?
                .iter()
                .any(|(k, v)| k == ADDRESS_TAG && *v == addr)
            {
                return Ok(read_certificate(aws, c, arn, &req.config)
                    .await?
                    .map(|a| (arn.to_string(), a)));
            }
        }
        match page.next_token() {
            Some(t) => next = Some(t.to_string()),
            None => return Ok(None),
        }
    }
}

pub(super) async fn delete_certificate(
    aws: &Aws,
    c: &Clients,
    req: &DeleteRequest,
) -> Result<(), ProviderError> {
    aws.count("acm", "DeleteCertificate");
    match c
        .acm
        .delete_certificate()
        .certificate_arn(&req.id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(classify("acm DeleteCertificate", e)),
    }
}

fn timeout(c: &Attrs) -> Result<Duration, ProviderError> {
    let Some(t) = opt_str(c, "timeout")? else {
        return Ok(Duration::from_secs(300));
    };
    let bad = || {
        ProviderError::invalid(format!(
            "`timeout` must look like `90s` or `10m`, got `{t}`"
        ))
    };
    let (n, unit) = t.split_at(t.find(|ch: char| !ch.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = n.parse().map_err(|_| bad())?;
    match unit {
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(bad()),
    }
}

pub(super) async fn apply_validation(
    aws: &Aws,
    c: &Clients,
    req: &ApplyRequest,
) -> Result<ApplyResponse, ProviderError> {
    let arn = req_str(&req.config, "certificate_arn")?;
    let deadline = Instant::now() + timeout(&req.config)?;
    loop {
        let out = aws
            .call(
                "acm",
                "DescribeCertificate",
                c.acm.describe_certificate().certificate_arn(arn).send(),
            )
            .await?;
        let status = out.certificate().and_then(|d| d.status()).cloned();
        match status {
            Some(CertificateStatus::Issued) => {
                let mut a = req.config.clone();
                a.insert("status".into(), json!("ISSUED"));
                return Ok(ApplyResponse {
                    id: arn.to_string(),
                    attributes: a,
                });
            }
            Some(
                s @ (CertificateStatus::Failed
                | CertificateStatus::ValidationTimedOut
                | CertificateStatus::Revoked
                | CertificateStatus::Expired),
            ) => {
                return Err(ProviderError::failed(format!(
                    "certificate `{arn}` is {}: it will not be issued",
                    s.as_str()
                )));
            }
            _ if Instant::now() >= deadline => {
                return Err(ProviderError::failed(format!(
                    "certificate `{arn}` was not issued within the validation timeout; check that its DNS validation records are published"
                )));
            }
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

pub(super) async fn read_validation(
    aws: &Aws,
    c: &Clients,
    prior: &Attrs,
) -> Result<Option<Attrs>, ProviderError> {
    let arn = req_str(prior, "certificate_arn")?;
    Ok(read_certificate(aws, c, arn, &Attrs::new())
        .await?
        .map(|_| prior.clone()))
}

/// `aws_acm_certificate`.
pub(super) struct Certificate;

#[async_trait]
impl ResourceType<Aws> for Certificate {
    fn schema(&self) -> ResourceSchema {
        certificate_schema()
    }
    fn validate(&self, _: &Aws, c: &Attrs) -> Result<(), ProviderError> {
        super::valid_region(c)?;
        validate_certificate(c)
    }
    fn verify_after_apply(&self) -> bool {
        true
    }
    async fn read(&self, aws: &Aws, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        read_certificate(aws, &*aws.at(&req.prior).await, &req.id, &req.prior).await
    }
    async fn apply(&self, aws: &Aws, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        apply_certificate(aws, &*aws.at(&req.config).await, req).await
    }
    async fn delete(&self, aws: &Aws, req: &DeleteRequest) -> Result<(), ProviderError> {
        delete_certificate(aws, &*aws.at(&req.prior).await, req).await
    }
    async fn recover(
        &self,
        aws: &Aws,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        aws.recover_with(self, req, |c| async move {
            recover_certificate(aws, &c, req).await
        })
        .await
    }
}

/// `aws_acm_certificate_validation`: waits for issuance; deleting it deletes nothing.
pub(super) struct Validation;

#[async_trait]
impl ResourceType<Aws> for Validation {
    fn schema(&self) -> ResourceSchema {
        validation_schema()
    }
    fn validate(&self, _: &Aws, c: &Attrs) -> Result<(), ProviderError> {
        super::valid_region(c)
    }
    async fn read(&self, aws: &Aws, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        read_validation(aws, &*aws.at(&req.prior).await, &req.prior).await
    }
    async fn apply(&self, aws: &Aws, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        apply_validation(aws, &*aws.at(&req.config).await, req).await
    }
    async fn delete(&self, _: &Aws, _: &DeleteRequest) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn recover(
        &self,
        aws: &Aws,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        // An unrecorded wait left nothing behind: the next apply waits again.
        Ok(recover_update(self, aws, req).await?.flatten())
    }
}
