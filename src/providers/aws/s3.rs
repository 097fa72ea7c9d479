//! `aws_s3_bucket`: tags, versioning, default encryption, public-access block.

use async_trait::async_trait;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, Delete,
    ObjectIdentifier, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, VersioningConfiguration,
};
use serde_json::{json, Value};

use super::error::{classify, code};
use super::{tags_with_address, user_tags, Aws, Clients, ADDRESS_TAG};
use std::collections::BTreeMap;

use crate::providers::attrs::{keep_config, opt_bool, opt_str, req_str, TagSync};
use crate::providers::{
    ApplyRequest, ApplyResponse, AttrSchema, DeleteRequest, ErrorKind, ProviderError, ReadRequest,
    RecoverRequest, ResourceSchema, ResourceType,
};
use crate::value::{Attrs, UNKNOWN};

pub(super) fn bucket_schema() -> ResourceSchema {
    ResourceSchema {
        type_name: "aws_s3_bucket",
        attributes: vec![
            AttrSchema::required("bucket").force_new(),
            AttrSchema::optional("tags"),
            AttrSchema::optional("versioning"),
            AttrSchema::optional("server_side_encryption"),
            AttrSchema::optional("block_public_access"),
            AttrSchema::optional("force_destroy"),
            AttrSchema::optional("region").force_new(),
            AttrSchema::computed("arn"),
            AttrSchema::computed("bucket_regional_domain_name"),
        ],
    }
}

/// S3 bucket naming rules (general purpose buckets).
pub(super) fn validate(c: &Attrs) -> Result<(), ProviderError> {
    let Some(name) = c
        .get("bucket")
        .and_then(Value::as_str)
        .filter(|s| *s != UNKNOWN)
    else {
        return Ok(());
    };
    let bytes = name.as_bytes();
    let ip_like = name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok());
    let ok = (3..=63).contains(&name.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && !ip_like
        && !name.starts_with("xn--")
        && !name.ends_with("-s3alias");
    if !ok {
        return Err(ProviderError::invalid(format!(
            "invalid bucket name `{name}`: 3-63 lowercase letters, digits, `.` and `-`, starting and ending with a letter or digit"
        )));
    }
    if let Some(sse) = c.get("server_side_encryption").filter(|v| !v.is_null()) {
        match sse.get("sse_algorithm").and_then(Value::as_str) {
            Some("AES256" | "aws:kms" | "aws:kms:dsse") | Some(UNKNOWN) => {}
            other => {
                return Err(ProviderError::invalid(format!(
                "`server_side_encryption.sse_algorithm` must be AES256 or aws:kms, got {other:?}"
            )))
            }
        }
    }
    Ok(())
}

fn service_code<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String {
    code(e).unwrap_or_default().to_string()
}

/// All tags of a bucket (empty when it has none).
async fn all_tags(
    aws: &Aws,
    c: &Clients,
    bucket: &str,
) -> Result<Vec<(String, String)>, ProviderError> {
    aws.count("s3", "GetBucketTagging");
    match c.s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(o) => Ok(o
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()),
        Err(e) if service_code(&e) == "NoSuchTagSet" => Ok(vec![]),
        Err(e) => Err(classify("s3 GetBucketTagging", e)),
    }
}

async fn exists(aws: &Aws, c: &Clients, bucket: &str) -> Result<bool, ProviderError> {
    aws.count("s3", "HeadBucket");
    match c.s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error().is_some_and(|s| s.is_not_found())
                || super::error::status(&e) == Some(404) =>
        {
            Ok(false)
        }
        Err(e) => Err(classify("s3 HeadBucket", e)),
    }
}

pub(super) async fn read(
    aws: &Aws,
    c: &Clients,
    prior: &Attrs,
) -> Result<Option<Attrs>, ProviderError> {
    let bucket = req_str(prior, "bucket")?;
    if !exists(aws, c, bucket).await? {
        return Ok(None);
    }
    let mut a = Attrs::new();
    a.insert("bucket".into(), json!(bucket));
    a.insert("tags".into(), user_tags(all_tags(aws, c, bucket).await?));
    let v = aws
        .call(
            "s3",
            "GetBucketVersioning",
            c.s3.get_bucket_versioning().bucket(bucket).send(),
        )
        .await?;
    a.insert(
        "versioning".into(),
        json!(v.status() == Some(&BucketVersioningStatus::Enabled)),
    );
    aws.count("s3", "GetBucketEncryption");
    let sse = match c.s3.get_bucket_encryption().bucket(bucket).send().await {
        Ok(o) => o
            .server_side_encryption_configuration()
            .and_then(|cfg| cfg.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .map(|d| {
                let mut m = json!({ "sse_algorithm": d.sse_algorithm().as_str() });
                if let Some(k) = d.kms_master_key_id() {
                    m["kms_master_key_id"] = json!(k);
                }
                m
            })
            .unwrap_or(Value::Null),
        Err(e) if service_code(&e) == "ServerSideEncryptionConfigurationNotFoundError" => {
            Value::Null
        }
        Err(e) => return Err(classify("s3 GetBucketEncryption", e)),
    };
    a.insert("server_side_encryption".into(), sse);
    aws.count("s3", "GetPublicAccessBlock");
    let pab = match c.s3.get_public_access_block().bucket(bucket).send().await {
        Ok(o) => o.public_access_block_configuration().is_some_and(|p| {
            p.block_public_acls() == Some(true)
                && p.ignore_public_acls() == Some(true)
                && p.block_public_policy() == Some(true)
                && p.restrict_public_buckets() == Some(true)
        }),
        Err(e) if service_code(&e) == "NoSuchPublicAccessBlockConfiguration" => false,
        Err(e) => return Err(classify("s3 GetPublicAccessBlock", e)),
    };
    a.insert("block_public_access".into(), json!(pab));
    a.insert("arn".into(), json!(format!("arn:aws:s3:::{bucket}")));
    a.insert(
        "bucket_regional_domain_name".into(),
        json!(format!("{bucket}.s3.{}.amazonaws.com", c.region)),
    );
    keep_config(&mut a, prior, &["force_destroy", "region"]);
    Ok(Some(a))
}

/// Whether an existing bucket of our account may be taken as ours: it carries our address
/// tag, or no tag at all (a create interrupted before its tagging call).
async fn claimable(
    aws: &Aws,
    c: &Clients,
    bucket: &str,
    addr: &str,
) -> Result<Result<(), String>, ProviderError> {
    let tags = all_tags(aws, c, bucket).await?;
    match tags.iter().find(|(k, _)| k == ADDRESS_TAG) {
        Some((_, v)) if v == addr => Ok(Ok(())),
        Some((_, v)) => Ok(Err(format!(
            "bucket `{bucket}` already exists and is managed as `{v}`"
        ))),
        None if tags.is_empty() => Ok(Ok(())),
        None => Ok(Err(format!(
            "bucket `{bucket}` already exists in this account and was not created by landlord"
        ))),
    }
}

async fn create(
    aws: &Aws,
    c: &Clients,
    req: &ApplyRequest,
    bucket: &str,
) -> Result<(), ProviderError> {
    aws.count("s3", "CreateBucket");
    let mut call = c.s3.create_bucket().bucket(bucket);
    if c.region != "us-east-1" {
        call = call.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(c.region.as_str()))
                .build(),
        );
    }
    match call.send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
            }) =>
        {
            // Ours (same account) only if the tags say so; otherwise the name is taken.
            match claimable(aws, c, bucket, &req.address.to_string()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(m)) => Err(ProviderError::conflict(m)),
                Err(e) if e.kind == ErrorKind::Auth => Err(ProviderError::conflict(format!(
                    "bucket name `{bucket}` is owned by another AWS account; bucket names are global, choose another"
                ))),
                Err(other) => Err(other),
            }
        }
        Err(e) => Err(classify("s3 CreateBucket", e)),
    }
}

/// Makes the bucket's live tags the configured ones plus the address tag (S3 replaces
/// the whole tag set, so one call both removes and sets).
async fn sync_tags(
    aws: &Aws,
    c: &Clients,
    bucket: &str,
    req: &ApplyRequest,
) -> Result<(), ProviderError> {
    let want = tags_with_address(&req.config, &req.address)?;
    let live: BTreeMap<String, String> = all_tags(aws, c, bucket).await?.into_iter().collect();
    if TagSync::new(&live, &want, super::aws_owned).is_empty() {
        return Ok(());
    }
    let bad = |e: aws_sdk_s3::error::BuildError| ProviderError::invalid(e.to_string());
    let tags = want
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    aws.call(
        "s3",
        "PutBucketTagging",
        c.s3.put_bucket_tagging()
            .bucket(bucket)
            .tagging(
                Tagging::builder()
                    .set_tag_set(Some(tags))
                    .build()
                    .map_err(bad)?,
            )
            .send(),
    )
    .await?;
    Ok(())
}

pub(super) async fn apply(
    aws: &Aws,
    c: &Clients,
    req: &ApplyRequest,
) -> Result<ApplyResponse, ProviderError> {
    let cfg = &req.config;
    let bucket = req_str(cfg, "bucket")?;
    let prior = req.prior.as_ref();
    if prior.is_none() {
        create(aws, c, req, bucket).await?;
    }
    sync_tags(aws, c, bucket, req).await?;
    let bad = |e: aws_sdk_s3::error::BuildError| ProviderError::invalid(e.to_string());

    let was = |k: &str| prior.and_then(|p| p.get(k)).cloned().unwrap_or(Value::Null);
    match opt_bool(cfg, "versioning")? {
        Some(on) if on || was("versioning") == json!(true) || prior.is_some() => {
            let status = if on {
                BucketVersioningStatus::Enabled
            } else {
                BucketVersioningStatus::Suspended
            };
            aws.call(
                "s3",
                "PutBucketVersioning",
                c.s3.put_bucket_versioning()
                    .bucket(bucket)
                    .versioning_configuration(
                        VersioningConfiguration::builder().status(status).build(),
                    )
                    .send(),
            )
            .await?;
        }
        _ => {}
    }

    match cfg.get("server_side_encryption").filter(|v| !v.is_null()) {
        Some(sse) => {
            let alg = sse
                .get("sse_algorithm")
                .and_then(Value::as_str)
                .unwrap_or("AES256");
            let mut d = ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::from(alg));
            if let Some(k) = sse.get("kms_master_key_id").and_then(Value::as_str) {
                d = d.kms_master_key_id(k);
            }
            let rule = ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(d.build().map_err(bad)?)
                .build();
            aws.call(
                "s3",
                "PutBucketEncryption",
                c.s3.put_bucket_encryption()
                    .bucket(bucket)
                    .server_side_encryption_configuration(
                        ServerSideEncryptionConfiguration::builder()
                            .rules(rule)
                            .build()
                            .map_err(bad)?,
                    )
                    .send(),
            )
            .await?;
        }
        None if cfg.contains_key("server_side_encryption")
            && !was("server_side_encryption").is_null() =>
        {
            aws.call(
                "s3",
                "DeleteBucketEncryption",
                c.s3.delete_bucket_encryption().bucket(bucket).send(),
            )
            .await?;
        }
        None => {}
    }

    match opt_bool(cfg, "block_public_access")? {
        Some(true) => {
            let pab = PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build();
            aws.call(
                "s3",
                "PutPublicAccessBlock",
                c.s3.put_public_access_block()
                    .bucket(bucket)
                    .public_access_block_configuration(pab)
                    .send(),
            )
            .await?;
        }
        Some(false) if was("block_public_access") == json!(true) => {
            aws.call(
                "s3",
                "DeletePublicAccessBlock",
                c.s3.delete_public_access_block().bucket(bucket).send(),
            )
            .await?;
        }
        _ => {}
    }
    let mut attrs = cfg.clone();
    attrs.insert("arn".into(), json!(format!("arn:aws:s3:::{bucket}")));
    attrs.insert(
        "bucket_regional_domain_name".into(),
        json!(format!("{bucket}.s3.{}.amazonaws.com", c.region)),
    );
    Ok(ApplyResponse {
        id: bucket.to_string(),
        attributes: attrs,
    })
}

pub(super) async fn recover(
    aws: &Aws,
    c: &Clients,
    req: &RecoverRequest,
) -> Result<Option<(String, Attrs)>, ProviderError> {
    let bucket = req_str(&req.config, "bucket")?;
    if !exists(aws, c, bucket).await?
        || claimable(aws, c, bucket, &req.address.to_string())
            .await?
            .is_err()
    {
        return Ok(None);
    }
    Ok(read(aws, c, &req.config)
        .await?
        .map(|a| (bucket.to_string(), a)))
}

/// Every object version and delete marker of a bucket.
async fn all_versions(
    aws: &Aws,
    c: &Clients,
    bucket: &str,
) -> Result<Vec<ObjectIdentifier>, ProviderError> {
    let mut out = Vec::new();
    let (mut key, mut version): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = aws
            .call(
                "s3",
                "ListObjectVersions",
                c.s3.list_object_versions()
                    .bucket(bucket)
                    .set_key_marker(key.clone())
                    .set_version_id_marker(version.clone())
                    .send(),
            )
            .await?;
        let ids = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                page.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            )
            .map(|(k, v)| {
                ObjectIdentifier::builder()
                    .set_key(k.map(str::to_string))
                    .set_version_id(v.map(str::to_string))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ProviderError::failed(e.to_string()))?;
        out.extend(ids);
        if page.is_truncated() != Some(true) {
            return Ok(out);
        }
        key = page.next_key_marker().map(str::to_string);
        version = page.next_version_id_marker().map(str::to_string);
    }
}

pub(super) async fn delete(
    aws: &Aws,
    c: &Clients,
    req: &DeleteRequest,
) -> Result<(), ProviderError> {
    let bucket = req_str(&req.prior, "bucket")?;
    if !exists(aws, c, bucket).await? {
        return Ok(());
    }
    let objects = all_versions(aws, c, bucket).await?;
    if !objects.is_empty() {
        if req.prior.get("force_destroy").and_then(Value::as_bool) != Some(true) {
            return Err(ProviderError::failed(format!(
                "bucket `{bucket}` holds {} objects (versions included); set `force_destroy: true` to delete them with the bucket",
                objects.len()
            )));
        }
        for chunk in objects.chunks(1000) {
            aws.count("s3", "DeleteObjects");
            let del = Delete::builder()
                .set_objects(Some(chunk.to_vec()))
                .quiet(true)
                .build()
                .map_err(|e| ProviderError::failed(e.to_string()))?;
            c.s3.delete_objects()
                .bucket(bucket)
                .delete(del)
                .send()
                .await
                .map_err(|e| classify("s3 DeleteObjects", e))?;
        }
    }
    aws.count("s3", "DeleteBucket");
    match c.s3.delete_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) if service_code(&e) == "NoSuchBucket" => Ok(()),
        Err(e) => Err(classify("s3 DeleteBucket", e)),
    }
}

pub(super) fn object_schema() -> ResourceSchema {
    ResourceSchema {
        type_name: "aws_s3_object",
        attributes: vec![
            AttrSchema::required("bucket").force_new(),
            AttrSchema::required("key").force_new(),
            AttrSchema::required("content"),
            AttrSchema::optional("content_type"),
            AttrSchema::optional("region").force_new(),
            AttrSchema::computed("etag"),
            AttrSchema::computed("last_modified"),
        ],
    }
}

/// When an object was last written, in milliseconds as listings give it (an out-of-band
/// metadata change keeps the ETag but not this).
fn modified(t: Option<&aws_smithy_types::DateTime>) -> Value {
    t.map_or(Value::Null, |t| {
        json!(t.secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000))
    })
}

/// The longest prefix every key shares: the one listing that covers them all.
fn common_prefix<'a>(keys: impl Iterator<Item = &'a str>) -> String {
    let mut prefix: Option<&str> = None;
    for k in keys {
        prefix = Some(match prefix {
            None => k,
            Some(p) => {
                let n = p
                    .char_indices()
                    .zip(k.chars())
                    .find(|((_, a), b)| a != b)
                    .map_or(p.len().min(k.len()), |((i, _), _)| i);
                &p[..n]
            }
        });
    }
    prefix.unwrap_or_default().to_string()
}

/// Refresh of many objects by listing: one ListObjectsV2 page per 1,000 keys of a bucket
/// (ETag and last write of each), and a GetObject only for an object whose ETag or last
/// write differs from what landlord recorded (its content or metadata changed out of
/// band). Reading each object would be one call per object. S3 gives LastModified in
/// whole seconds: a change of metadata alone (same content, so same ETag) made within the
/// second of landlord's own write is not seen until the object is written again.
pub(super) async fn read_objects(
    aws: &Aws,
    c: &Clients,
    reqs: &[ReadRequest],
) -> Vec<Result<Option<Attrs>, ProviderError>> {
    let mut by_bucket: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut out: Vec<Option<Result<Option<Attrs>, ProviderError>>> =
        reqs.iter().map(|_| None).collect();
    for (i, r) in reqs.iter().enumerate() {
        match req_str(&r.prior, "bucket") {
            Ok(b) => by_bucket.entry(b.to_string()).or_default().push(i),
            Err(e) => out[i] = Some(Err(e)),
        }
    }
    for (bucket, idx) in by_bucket {
        let prefix = common_prefix(
            idx.iter()
                .filter_map(|&i| reqs[i].prior.get("key").and_then(Value::as_str)),
        );
        let mut listed: BTreeMap<String, (String, Value)> = BTreeMap::new();
        let mut token: Option<String> = None;
        let listing: Result<bool, ProviderError> = loop {
            aws.count("s3", "ListObjectsV2");
            let page =
                c.s3.list_objects_v2()
                    .bucket(&bucket)
                    .prefix(&prefix)
                    .set_continuation_token(token.take())
                    .send()
                    .await;
            match page {
                Ok(p) => {
                    for o in p.contents() {
                        if let Some(k) = o.key() {
                            let etag = o.e_tag().unwrap_or_default().trim_matches('"').to_string();
                            listed.insert(k.to_string(), (etag, modified(o.last_modified())));
                        }
                    }
                    match p.next_continuation_token() {
                        Some(t) if p.is_truncated() == Some(true) => token = Some(t.to_string()),
                        _ => break Ok(true),
                    }
                }
                Err(e) if service_code(&e) == "NoSuchBucket" => break Ok(false),
                Err(e) => break Err(classify("s3 ListObjectsV2", e)),
            }
        };
        for i in idx {
            let prior = &reqs[i].prior;
            out[i] = Some(match &listing {
                Err(e) => Err(e.clone()),
                Ok(false) => Ok(None),
                Ok(true) => {
                    let key = prior.get("key").and_then(Value::as_str).unwrap_or_default();
                    match listed.get(key) {
                        None => Ok(None),
                        Some((etag, when))
                            if prior.get("etag").and_then(Value::as_str) == Some(etag.as_str())
                                && prior.get("last_modified") == Some(when) =>
                        {
                            Ok(Some(prior.clone()))
                        }
                        Some(_) => read_object(aws, c, prior).await,
                    }
                }
            });
        }
    }
    out.into_iter()
        .map(|o| o.unwrap_or_else(|| Err(ProviderError::failed("no answer for the request"))))
        .collect()
}

pub(super) fn object_id(a: &Attrs) -> String {
    format!(
        "{}/{}",
        a.get("bucket").and_then(Value::as_str).unwrap_or_default(),
        a.get("key").and_then(Value::as_str).unwrap_or_default()
    )
}

pub(super) async fn read_object(
    aws: &Aws,
    c: &Clients,
    prior: &Attrs,
) -> Result<Option<Attrs>, ProviderError> {
    let (bucket, key) = (req_str(prior, "bucket")?, req_str(prior, "key")?);
    aws.count("s3", "GetObject");
    let out = match c.s3.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => o,
        Err(e)
            if e.as_service_error().is_some_and(|s| s.is_no_such_key())
                || matches!(service_code(&e).as_str(), "NoSuchBucket" | "NoSuchKey") =>
        {
            return Ok(None)
        }
        Err(e) => return Err(classify("s3 GetObject", e)),
    };
    let etag = out
        .e_tag()
        .unwrap_or_default()
        .trim_matches('"')
        .to_string();
    let content_type = out.content_type().map(str::to_string);
    let last_modified = modified(out.last_modified());
    let body = out
        .body
        .collect()
        .await
        .map_err(|e| ProviderError::transient(format!("s3 GetObject body: {e}")))?
        .into_bytes();
    let mut a = Attrs::new();
    a.insert("bucket".into(), json!(bucket));
    a.insert("key".into(), json!(key));
    a.insert("content".into(), json!(String::from_utf8_lossy(&body)));
    if prior.contains_key("content_type") {
        a.insert("content_type".into(), json!(content_type));
    }
    a.insert("etag".into(), json!(etag));
    a.insert("last_modified".into(), last_modified);
    keep_config(&mut a, prior, &["region"]);
    Ok(Some(a))
}

pub(super) async fn apply_object(
    aws: &Aws,
    c: &Clients,
    req: &ApplyRequest,
) -> Result<ApplyResponse, ProviderError> {
    let cfg = &req.config;
    let (bucket, key, content) = (
        req_str(cfg, "bucket")?,
        req_str(cfg, "key")?,
        req_str(cfg, "content")?,
    );
    let out = aws
        .call(
            "s3",
            "PutObject",
            c.s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(content.as_bytes().to_vec().into())
                .set_content_type(opt_str(cfg, "content_type")?.map(str::to_string))
                .send(),
        )
        .await?;
    let mut a = cfg.clone();
    a.insert(
        "etag".into(),
        json!(out.e_tag().unwrap_or_default().trim_matches('"')),
    );
    // The time of this write as a listing shows it, which later listings are compared
    // with (a read gives whole seconds only). The key itself sorts first under its prefix.
    let listed = aws
        .call(
            "s3",
            "ListObjectsV2",
            c.s3.list_objects_v2()
                .bucket(bucket)
                .prefix(key)
                .max_keys(1)
                .send(),
        )
        .await?;
    let when = listed
        .contents()
        .iter()
        .find(|o| o.key() == Some(key))
        .map_or(Value::Null, |o| modified(o.last_modified()));
    a.insert("last_modified".into(), when);
    Ok(ApplyResponse {
        id: object_id(cfg),
        attributes: a,
    })
}

pub(super) async fn delete_object(
    aws: &Aws,
    c: &Clients,
    req: &DeleteRequest,
) -> Result<(), ProviderError> {
    let (bucket, key) = (req_str(&req.prior, "bucket")?, req_str(&req.prior, "key")?);
    aws.count("s3", "DeleteObject");
    match c.s3.delete_object().bucket(bucket).key(key).send().await {
        Ok(_) => Ok(()),
        Err(e) if service_code(&e) == "NoSuchBucket" => Ok(()),
        Err(e) => Err(classify("s3 DeleteObject", e)),
    }
}

/// `aws_s3_bucket`.
pub(super) struct Bucket;

#[async_trait]
impl ResourceType<Aws> for Bucket {
    fn schema(&self) -> ResourceSchema {
        bucket_schema()
    }
    fn validate(&self, _: &Aws, c: &Attrs) -> Result<(), ProviderError> {
        super::valid_region(c)?;
        validate(c)
    }
    fn verify_after_apply(&self) -> bool {
        true
    }
    async fn read(&self, aws: &Aws, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        read(aws, &*aws.at(&req.prior).await, &req.prior).await
    }
    async fn apply(&self, aws: &Aws, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        apply(aws, &*aws.at(&req.config).await, req).await
    }
    async fn delete(&self, aws: &Aws, req: &DeleteRequest) -> Result<(), ProviderError> {
        delete(aws, &*aws.at(&req.prior).await, req).await
    }
    async fn recover(
        &self,
        aws: &Aws,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        aws.recover_with(self, req, |c| async move { recover(aws, &c, req).await })
            .await
    }
}

/// `aws_s3_object`.
pub(super) struct Object;

#[async_trait]
impl ResourceType<Aws> for Object {
    fn schema(&self) -> ResourceSchema {
        object_schema()
    }
    fn validate(&self, _: &Aws, c: &Attrs) -> Result<(), ProviderError> {
        super::valid_region(c)
    }
    fn verify_after_apply(&self) -> bool {
        true
    }
    async fn read(&self, aws: &Aws, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        read_object(aws, &*aws.at(&req.prior).await, &req.prior).await
    }
    async fn read_many(
        &self,
        aws: &Aws,
        reqs: &[ReadRequest],
    ) -> Vec<Result<Option<Attrs>, ProviderError>> {
        aws.per_region(
            reqs,
            |r| &r.prior,
            |c, batch| async move { read_objects(aws, &c, &batch).await },
        )
        .await
    }
    async fn apply(&self, aws: &Aws, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        apply_object(aws, &*aws.at(&req.config).await, req).await
    }
    async fn delete(&self, aws: &Aws, req: &DeleteRequest) -> Result<(), ProviderError> {
        delete_object(aws, &*aws.at(&req.prior).await, req).await
    }
    async fn recover(
        &self,
        aws: &Aws,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        // Objects are found by bucket and key: no id is needed.
        let c = aws.at(&req.config).await;
        Ok(read_object(aws, &c, &req.config)
            .await?
            .map(|a| super::adopted((object_id(&a), a))))
    }
}
