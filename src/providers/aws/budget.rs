//! An HTTP client that makes every AWS request, the SDK's own retries included, wait
//! for a token of its (account, service) budget, and reports throttling answers to it.
//! The service is read from the request's SigV4 credential scope; KMS and ACM reads and
//! writes have budgets of their own (`X-Amz-Target`), and only S3 bucket configuration
//! calls count against S3's.

use std::sync::Arc;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

use crate::providers::budget::Budgets;

/// Wraps an HTTP client so requests spend `account`'s budgets.
#[derive(Debug, Clone)]
pub(super) struct BudgetClient {
    pub(super) inner: SharedHttpClient,
    pub(super) budgets: Arc<Budgets>,
    pub(super) account: String,
}

impl HttpClient for BudgetClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(BudgetConnector {
            inner: self.inner.http_connector(settings, components),
            budgets: self.budgets.clone(),
            account: self.account.clone(),
        })
    }
}

#[derive(Debug)]
struct BudgetConnector {
    inner: SharedHttpConnector,
    budgets: Arc<Budgets>,
    account: String,
}

/// The budget a request spends: its service, split where quotas differ.
fn service_of(request: &HttpRequest) -> Option<String> {
    let auth = request.headers().get("authorization")?;
    let scope = auth.split("Credential=").nth(1)?.split(',').next()?;
    let service = scope.split('/').nth(3)?;
    let op = request
        .headers()
        .get("x-amz-target")
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default();
    let read = ["Describe", "Get", "List"]
        .iter()
        .any(|p| op.starts_with(p));
    Some(match service {
        "kms" | "acm" if read => format!("{service}-read"),
        "s3" => {
            let writes = !matches!(request.method(), "GET" | "HEAD");
            let path = request
                .uri()
                .split("://")
                .nth(1)
                .and_then(|rest| rest.split_once('/'))
                .map_or("", |(_, p)| p.split('?').next().unwrap_or(""));
            // A bucket-level call names at most the bucket (path-style) in its path.
            if writes && path.trim_end_matches('/').split('/').count() <= 1 {
                "s3-control".into()
            } else {
                "s3".into()
            }
        }
        other => other.to_string(),
    })
}

/// Error codes of throttling answers in any AWS protocol.
const THROTTLING: &[&str] = &[
    "Throttl",
    "TooManyRequests",
    "RequestLimitExceeded",
    "SlowDown",
    "PriorRequestNotComplete",
];

impl HttpConnector for BudgetConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let bucket =
            service_of(&request).and_then(|s| self.budgets.bucket("aws", &self.account, &s));
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            if let Some(b) = &bucket {
                b.acquire().await;
            }
            let mut resp = inner.call(request).await?;
            let Some(b) = bucket else {
                return Ok(resp);
            };
            let status = resp.status().as_u16();
            if status < 400 {
                b.succeeded();
                return Ok(resp);
            }
            // Error answers are small: read the body to find the code, then hand it on.
            let bytes = super::cdata::take_body(&mut resp).await?;
            let text = String::from_utf8_lossy(&bytes);
            if status == 429 || THROTTLING.iter().any(|c| text.contains(c)) {
                b.throttled();
            }
            *resp.body_mut() = SdkBody::from(bytes);
            Ok(resp)
        })
    }
}
