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
mod budget;
mod cdata;
mod error;
mod kms;
mod route53;
mod s3;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::resource::recover_update;
use super::{
    ApiStats, ApplyResponse, Family, ProviderError, RecoverRequest, ResourceType, Settings,
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
                other => {
                    return Err(bad(crate::suggest::unknown(
                        "setting",
                        other,
                        &["region", "profile", "endpoint_url", "assume_role_arn"],
                    )))
                }
            }
        }
        if !REGIONS.contains(&s.region.as_str()) {
            return Err(bad(format!("unknown region `{}`", s.region)));
        }
        Ok(s)
    }

    /// The account whose quotas calls spend: the assumed role's account, else the
    /// profile, else `default` (the credentials of the environment).
    fn account(&self) -> String {
        self.assume_role_arn
            .as_deref()
            .and_then(|arn| arn.split(':').nth(4))
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .or_else(|| self.profile.clone())
            .unwrap_or_else(|| "default".into())
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

/// What every AWS resource type shares: settings, clients per region, call counters.
pub struct Aws {
    settings: AwsSettings,
    clients: std::sync::Mutex<HashMap<String, Arc<OnceCell<Arc<Clients>>>>>,
    stats: Arc<ApiStats>,
    budgets: Arc<crate::providers::budget::Budgets>,
}

impl Aws {
    /// Builds the provider from `[providers.aws]` (all optional): one table of types.
    pub fn provider(
        settings: &Settings,
        stats: Arc<ApiStats>,
        budgets: Arc<crate::providers::budget::Budgets>,
    ) -> Result<Family<Aws>, SettingsError> {
        let aws = Aws {
            settings: AwsSettings::parse(settings)?,
            clients: Default::default(),
            stats,
            budgets,
        };
        let types: Vec<Box<dyn ResourceType<Aws>>> = vec![
            Box::new(route53::Zone),
            Box::new(route53::Record),
            Box::new(s3::Bucket),
            Box::new(s3::Object),
            Box::new(acm::Certificate),
            Box::new(acm::Validation),
            Box::new(kms::Key),
            Box::new(kms::Alias),
        ];
        // A request sent just before a kill may still be executing (an emulator's first
        // call to a service takes hundreds of milliseconds): give it time to land.
        Ok(Family::new(NAME, aws, types).with_settle(std::time::Duration::from_secs(2)))
    }

    /// One SDK call: counted, and its error labelled, under the same operation name.
    pub(crate) async fn call<T, E>(
        &self,
        service: &str,
        operation: &str,
        call: impl std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<T, ProviderError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.count(service, operation);
        call.await
            .map_err(|e| error::classify(&format!("{service} {operation}"), e))
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

    /// Clients for the region a resource's attributes name.
    pub(crate) async fn at(&self, attrs: &Attrs) -> Arc<Clients> {
        self.clients(&self.region_of(attrs)).await
    }

    /// Runs a batched `call` once per region on that region's requests (the region each
    /// request's attributes name), answering in request order.
    pub(crate) async fn per_region<R, T, F, Fut>(
        &self,
        reqs: &[R],
        attrs: impl Fn(&R) -> &Attrs,
        call: F,
    ) -> Vec<Result<T, ProviderError>>
    where
        R: Clone,
        F: Fn(Arc<Clients>, Vec<R>) -> Fut,
        Fut: std::future::Future<Output = Vec<Result<T, ProviderError>>>,
    {
        let mut regions: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, r) in reqs.iter().enumerate() {
            regions.entry(self.region_of(attrs(r))).or_default().push(i);
        }
        let mut out: Vec<Option<Result<T, ProviderError>>> = reqs.iter().map(|_| None).collect();
        for (region, idx) in regions {
            let batch: Vec<R> = idx.iter().map(|&i| reqs[i].clone()).collect();
            let answers = call(self.clients(&region).await, batch).await;
            for (&i, res) in idx.iter().zip(answers) {
                out[i] = Some(res);
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(ProviderError::failed("no answer for the request"))))
            .collect()
    }

    /// Recovery of an object of type `t`: an interrupted update reads it by its id; an
    /// interrupted create looks for it with `find` (caller reference, idempotency token
    /// or address tag) in the region its configuration names.
    pub(crate) async fn recover_with<T, F, Fut>(
        &self,
        t: &T,
        req: &RecoverRequest,
        find: F,
    ) -> Result<Option<ApplyResponse>, ProviderError>
    where
        T: ResourceType<Aws> + ?Sized,
        F: FnOnce(Arc<Clients>) -> Fut,
        Fut: std::future::Future<Output = Result<Option<(String, Attrs)>, ProviderError>>,
    {
        if let Some(found) = recover_update(t, self, req).await? {
            return Ok(found);
        }
        Ok(find(self.at(&req.config).await).await?.map(adopted))
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
        // Every request waits for a token of its service's budget in this account.
        let budgeted = |inner| budget::BudgetClient {
            inner,
            budgets: self.budgets.clone(),
            account: self.settings.account(),
        };
        let s3_conf = aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(self.settings.endpoint_url.is_some())
            .http_client(budgeted(https_client()))
            .build();
        Clients {
            route53: aws_sdk_route53::Client::from_conf(
                aws_sdk_route53::config::Builder::from(&conf)
                    .http_client(budgeted(
                        aws_smithy_runtime_api::client::http::SharedHttpClient::new(
                            cdata::CdataClient(https_client()),
                        ),
                    ))
                    .build(),
            ),
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            acm: aws_sdk_acm::Client::from_conf(
                aws_sdk_acm::config::Builder::from(&conf)
                    .http_client(budgeted(https_client()))
                    .build(),
            ),
            kms: aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(&conf)
                    .http_client(budgeted(https_client()))
                    .build(),
            ),
            region: region.to_string(),
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

/// Tags AWS itself owns (`aws:` prefix): never removed by a tag sync.
pub(crate) fn aws_owned(key: &str) -> bool {
    key.starts_with("aws:")
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

/// Tags as recorded: without landlord's own and AWS's own.
pub(crate) fn user_tags(all: impl IntoIterator<Item = (String, String)>) -> Value {
    let m: serde_json::Map<String, Value> = all
        .into_iter()
        .filter(|(k, _)| !k.starts_with("landlord:") && !aws_owned(k))
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    Value::Object(m)
}

/// A short, stable token for APIs with length limits (ACM: 32 word characters).
pub(crate) fn short_token(token: &str, len: usize) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))[..len].to_string()
}

/// Checks a resource's `region` against the known regions.
pub(crate) fn valid_region(c: &Attrs) -> Result<(), ProviderError> {
    match c.get("region").and_then(Value::as_str) {
        Some(r) if r != crate::value::UNKNOWN && !REGIONS.contains(&r) => {
            Err(ProviderError::invalid(format!("unknown region `{r}`")))
        }
        _ => Ok(()),
    }
}

/// An object found again, as recovery answers it.
fn adopted((id, attributes): (String, Attrs)) -> ApplyResponse {
    ApplyResponse { id, attributes }
}
