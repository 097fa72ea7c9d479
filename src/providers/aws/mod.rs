//! The `aws` provider on aws-sdk-rust: Route 53 zones and batched records, S3 buckets,
//! ACM certificates, KMS keys and aliases.
//!
//! Settings: `[providers.aws]` with `region`, `profile`, `endpoint_url` (emulators) and
//! `assume_role_arn`; credentials from the standard AWS chain. A resource may set
//! `region`; one client set is built per region in use. The SDK retries single calls
//! (standard mode, 3 attempts, backoff with jitter) so a throttled call does not restart a
//! multi-call create; what still fails comes back as a retryable error and the engine
//! retries the whole operation.
//!
//! Crash recovery finds objects again without state: hosted zones by a caller reference
//! derived from the intent token, ACM certificates by idempotency token and address tag,
//! KMS keys by address tag, S3 buckets by name when they carry our address tag (or no tag
//! at all in our own account: a create interrupted before tagging), records by name/type.

mod acm;
mod cdata;
mod error;
mod kms;
mod route53;
mod s3;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::{
    ApiStats, ApplyRequest, ApplyResponse, DeleteRequest, PlanRequest, PlanResponse, Provider,
    ProviderError, ReadRequest, ReadResponse, RecoverRequest, Recovery, ResourceSchema, Settings,
    SettingsError,
};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub(crate) const NAME: &str = "aws";

/// Tag carrying the landlord address of every taggable object.
pub(crate) const ADDRESS_TAG: &str = "landlord:address";

/// Regions the provider accepts (commercial partition).
const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "mx-central-1",
    "sa-east-1",
];

/// `[providers.aws]`.
#[derive(Debug, Clone, Default)]
struct AwsSettings {
    region: String,
    profile: Option<String>,
    endpoint_url: Option<String>,
    assume_role_arn: Option<String>,
}

impl AwsSettings {
    fn parse(settings: &Settings) -> Result<Self, SettingsError> {
        let mut s = AwsSettings {
            region: "us-east-1".into(),
            ..Default::default()
        };
        let Some(t) = settings.tables.get("aws") else {
            return Ok(s);
        };
        let bad = |m: String| SettingsError {
            provider: "aws".into(),
            message: m,
        };
        for (k, v) in t {
            let text = v
                .as_str()
                .ok_or_else(|| bad(format!("`{k}` must be a string")))?
                .to_string();
            match k.as_str() {
                "region" => s.region = text,
                "profile" => s.profile = Some(text),
                "endpoint_url" => s.endpoint_url = Some(text),
                "assume_role_arn" => s.assume_role_arn = Some(text),
                other => return Err(bad(format!("unknown setting `{other}` (expected region, profile, endpoint_url, assume_role_arn)"))),
            }
        }
        if !REGIONS.contains(&s.region.as_str()) {
            return Err(bad(format!("unknown region `{}`", s.region)));
        }
        Ok(s)
    }
}

/// SDK clients of one region.
pub(crate) struct Clients {
    pub(crate) route53: aws_sdk_route53::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) acm: aws_sdk_acm::Client,
    pub(crate) kms: aws_sdk_kms::Client,
    pub(crate) region: String,
}

/// The AWS provider.
pub struct Aws {
    settings: AwsSettings,
    schemas: Vec<ResourceSchema>,
    clients: std::sync::Mutex<HashMap<String, Arc<OnceCell<Arc<Clients>>>>>,
    stats: Arc<ApiStats>,
}

impl Aws {
    /// Builds the provider from `[providers.aws]` (all optional).
    pub fn new(settings: &Settings, stats: Arc<ApiStats>) -> Result<Aws, SettingsError> {
        let schemas = vec![
            route53::zone_schema(),
            route53::record_schema(),
            s3::bucket_schema(),
            s3::object_schema(),
            acm::certificate_schema(),
            acm::validation_schema(),
            kms::key_schema(),
            kms::alias_schema(),
        ];
        Ok(Aws {
            settings: AwsSettings::parse(settings)?,
            schemas,
            clients: Default::default(),
            stats,
        })
    }

    /// Counts one API call.
    pub(crate) fn count(&self, service: &str, operation: &str) {
        self.stats.record(NAME, &format!("{service}.{operation}"));
    }

    /// The region a resource lives in.
    fn region_of(&self, attrs: &Attrs) -> String {
        attrs
            .get("region")
            .and_then(Value::as_str)
            .unwrap_or(&self.settings.region)
            .to_string()
    }

    /// Clients for a region, built on first use.
    pub(crate) async fn clients(&self, region: &str) -> Arc<Clients> {
        let cell = {
            let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(region.to_string()).or_default().clone()
        };
        cell.get_or_init(|| async { Arc::new(self.build_clients(region).await) })
            .await
            .clone()
    }

    async fn build_clients(&self, region: &str) -> Clients {
        use aws_config::{BehaviorVersion, Region};
        let loader = || {
            let mut l = aws_config::defaults(BehaviorVersion::latest())
                .region(Region::new(region.to_string()))
                .retry_config(
                    aws_config::retry::RetryConfig::standard()
                        .with_max_attempts(3)
                        .with_initial_backoff(std::time::Duration::from_millis(50)),
                );
            if let Some(p) = &self.settings.profile {
                l = l.profile_name(p);
            }
            if let Some(e) = &self.settings.endpoint_url {
                l = l.endpoint_url(e);
            }
            l
        };
        let mut conf = loader().load().await;
        if let Some(role) = &self.settings.assume_role_arn {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name("landlord")
                .region(Region::new(region.to_string()))
                .configure(&conf)
                .build()
                .await;
            conf = loader().credentials_provider(provider).load().await;
        }
        let s3_conf = aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(self.settings.endpoint_url.is_some())
            .build();
        Clients {
            route53: aws_sdk_route53::Client::from_conf(
                aws_sdk_route53::config::Builder::from(&conf)
                    .http_client(cdata::CdataClient(https_client()))
                    .build(),
            ),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            acm: aws_sdk_acm::Client::new(&conf),
            kms: aws_sdk_kms::Client::new(&conf),
            region: region.to_string(),
        }
    }

    async fn apply_one(&self, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let c = self.clients(&self.region_of(&req.config)).await;
        match req.address.rtype.as_str() {
            "aws_route53_zone" => route53::apply_zone(self, &c, req).await,
            "aws_s3_bucket" => s3::apply(self, &c, req).await,
            "aws_s3_object" => s3::apply_object(self, &c, req).await,
            "aws_acm_certificate" => acm::apply_certificate(self, &c, req).await,
            "aws_acm_certificate_validation" => acm::apply_validation(self, &c, req).await,
            "aws_kms_key" => kms::apply_key(self, &c, req).await,
            "aws_kms_alias" => kms::apply_alias(self, &c, req).await,
            other => Err(ProviderError::invalid(format!(
                "unknown resource type `{other}`"
            ))),
        }
    }
}

/// The SDK's default HTTPS client (rustls with aws-lc).
fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https()
}

/// The tags landlord writes: the user's plus the address tag.
pub(crate) fn tags_with_address(
    c: &Attrs,
    addr: &ResourceAddr,
) -> Result<BTreeMap<String, String>, ProviderError> {
    let mut t = super::attrs::tags_of(c)?;
    t.insert(ADDRESS_TAG.into(), addr.to_string());
    Ok(t)
}

/// Tags as recorded: without landlord's own.
pub(crate) fn user_tags(all: impl IntoIterator<Item = (String, String)>) -> Value {
    let m: serde_json::Map<String, Value> = all
        .into_iter()
        .filter(|(k, _)| !k.starts_with("landlord:"))
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    Value::Object(m)
}

/// A short, stable token for APIs with length limits (ACM: 32 word characters).
pub(crate) fn short_token(token: &str, len: usize) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))[..len].to_string()
}

fn valid_region(c: &Attrs) -> Result<(), ProviderError> {
    match c.get("region").and_then(Value::as_str) {
        Some(r) if r != crate::value::UNKNOWN && !REGIONS.contains(&r) => {
            Err(ProviderError::invalid(format!("unknown region `{r}`")))
        }
        _ => Ok(()),
    }
}

#[async_trait]
impl Provider for Aws {
    fn name(&self) -> &str {
        NAME
    }

    fn schemas(&self) -> &[ResourceSchema] {
        &self.schemas
    }

    fn validate(&self, address: &ResourceAddr, config: &Attrs) -> Result<(), ProviderError> {
        valid_region(config)?;
        match address.rtype.as_str() {
            "aws_route53_zone" => route53::validate_zone(config),
            "aws_route53_record" => route53::validate_record(config),
            "aws_s3_bucket" => s3::validate(config),
            "aws_kms_key" => kms::validate_key(config),
            "aws_kms_alias" => kms::validate_alias(config),
            "aws_acm_certificate" => acm::validate_certificate(config),
            _ => Ok(()),
        }
    }

    /// A request sent just before a kill may still be executing (an emulator's first call
    /// to a service takes hundreds of milliseconds): give it time to land before looking.
    fn recovery_settle(&self) -> std::time::Duration {
        std::time::Duration::from_secs(2)
    }

    fn max_batch(&self, type_name: &str) -> usize {
        match type_name {
            "aws_route53_record" => route53::MAX_CHANGES,
            _ => 1,
        }
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        let c = self.clients(&self.region_of(&req.prior)).await;
        let current = match req.address.rtype.as_str() {
            "aws_route53_zone" => route53::read_zone(self, &c, &req.id, &req.prior).await?,
            "aws_route53_record" => route53::read_records(self, &c, std::slice::from_ref(&req))
                .await
                .pop()
                .unwrap_or(Ok(None))?,
            "aws_s3_bucket" => s3::read(self, &c, &req.prior).await?,
            "aws_s3_object" => s3::read_object(self, &c, &req.prior).await?,
            "aws_acm_certificate" => acm::read_certificate(self, &c, &req.id, &req.prior).await?,
            "aws_acm_certificate_validation" => acm::read_validation(self, &c, &req.prior).await?,
            "aws_kms_key" => kms::read_key(self, &c, &req.id, &req.prior).await?,
            "aws_kms_alias" => kms::read_alias(self, &c, &req.prior).await?,
            other => {
                return Err(ProviderError::invalid(format!(
                    "unknown resource type `{other}`"
                )))
            }
        };
        Ok(ReadResponse { current })
    }

    async fn read_many(&self, reqs: Vec<ReadRequest>) -> Vec<Result<ReadResponse, ProviderError>> {
        // Records are read a zone at a time; everything else one by one.
        let mut out: Vec<Option<Result<ReadResponse, ProviderError>>> = vec![None; reqs.len()];
        let mut records: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, r) in reqs.iter().enumerate() {
            if r.address.rtype == "aws_route53_record" {
                records.entry(self.region_of(&r.prior)).or_default().push(i);
            }
        }
        for (region, idx) in records {
            let c = self.clients(&region).await;
            let batch: Vec<ReadRequest> = idx.iter().map(|&i| reqs[i].clone()).collect();
            for (i, res) in idx
                .into_iter()
                .zip(route53::read_records(self, &c, &batch).await)
            {
                out[i] = Some(res.map(|current| ReadResponse { current }));
            }
        }
        super::read_rest(self, reqs, out).await
    }

    async fn plan(&self, _req: PlanRequest) -> Result<PlanResponse, ProviderError> {
        Ok(PlanResponse::default())
    }

    async fn apply(&self, reqs: Vec<ApplyRequest>) -> Vec<Result<ApplyResponse, ProviderError>> {
        if reqs.iter().all(|r| r.address.rtype == "aws_route53_record") {
            let c = match reqs.first() {
                Some(r) => self.clients(&self.region_of(&r.config)).await,
                None => return vec![],
            };
            return route53::apply_records(self, &c, &reqs).await;
        }
        super::in_order(reqs.iter().map(|r| self.apply_one(r)).collect()).await
    }

    async fn delete(&self, req: DeleteRequest) -> Result<(), ProviderError> {
        let c = self.clients(&self.region_of(&req.prior)).await;
        match req.address.rtype.as_str() {
            "aws_route53_zone" => route53::delete_zone(self, &c, &req).await,
            "aws_route53_record" => route53::delete_record(self, &c, &req).await,
            "aws_s3_bucket" => s3::delete(self, &c, &req).await,
            "aws_s3_object" => s3::delete_object(self, &c, &req).await,
            "aws_acm_certificate" => acm::delete_certificate(self, &c, &req).await,
            "aws_acm_certificate_validation" => Ok(()),
            "aws_kms_key" => kms::delete_key(self, &c, &req).await,
            "aws_kms_alias" => kms::delete_alias(self, &c, &req).await,
            other => Err(ProviderError::invalid(format!(
                "unknown resource type `{other}`"
            ))),
        }
    }

    async fn delete_many(&self, reqs: Vec<DeleteRequest>) -> Vec<Result<(), ProviderError>> {
        // Records of a region go in batched deletes; anything else one by one.
        match reqs.first() {
            Some(first)
                if reqs.iter().all(|r| {
                    r.address.rtype == "aws_route53_record"
                        && self.region_of(&r.prior) == self.region_of(&first.prior)
                }) =>
            {
                let c = self.clients(&self.region_of(&first.prior)).await;
                route53::delete_records(self, &c, &reqs).await
            }
            _ => {
                let mut out = Vec::with_capacity(reqs.len());
                for r in reqs {
                    out.push(self.delete(r).await);
                }
                out
            }
        }
    }

    async fn recover(&self, req: RecoverRequest) -> Result<Recovery, ProviderError> {
        let source = req.prior.as_ref().unwrap_or(&req.config);
        let c = self.clients(&self.region_of(source)).await;
        if req.op == super::IntentOp::Delete {
            let del = DeleteRequest {
                address: req.address.clone(),
                id: req.id.clone().unwrap_or_default(),
                prior: source.clone(),
            };
            self.delete(del).await?;
            return Ok(Recovery::Gone);
        }
        // An interrupted update: the object is known by its id; read what it is now.
        if let (super::IntentOp::Update, Some(id), Some(prior)) = (req.op, &req.id, &req.prior) {
            let read = ReadRequest {
                address: req.address.clone(),
                id: id.clone(),
                prior: prior.clone(),
            };
            return Ok(match self.read(read).await?.current {
                Some(attributes) => Recovery::Adopt(ApplyResponse {
                    id: id.clone(),
                    attributes,
                }),
                None => Recovery::Gone,
            });
        }
        let found = match req.address.rtype.as_str() {
            "aws_route53_zone" => route53::recover_zone(self, &c, &req).await?,
            "aws_route53_record" => {
                let rr = ReadRequest {
                    address: req.address.clone(),
                    id: String::new(),
                    prior: req.config.clone(),
                };
                route53::read_records(self, &c, &[rr])
                    .await
                    .pop()
                    .unwrap_or(Ok(None))?
                    .map(|a| (route53::record_id(&a), a))
            }
            "aws_s3_bucket" => s3::recover(self, &c, &req).await?,
            "aws_s3_object" => s3::read_object(self, &c, &req.config)
                .await?
                .map(|a| (s3::object_id(&a), a)),
            "aws_acm_certificate" => acm::recover_certificate(self, &c, &req).await?,
            "aws_kms_key" => kms::recover_key(self, &c, &req).await?,
            "aws_kms_alias" => kms::read_alias(self, &c, &req.config)
                .await?
                .map(|a| (kms::alias_id(&a), a)),
            _ => None,
        };
        Ok(match found {
            Some((id, attributes)) => Recovery::Adopt(ApplyResponse { id, attributes }),
            None => Recovery::Gone,
        })
    }
}
