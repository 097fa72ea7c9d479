//! Long-running ARM operations: a `202 Accepted` names an operation URL
//! (`Azure-AsyncOperation`, else `Location`) that is polled, bounded, honouring
//! `Retry-After`, until the operation succeeds or fails.

use std::sync::Arc;
use std::time::Duration;

use azure_core::auth::TokenCredential;
use azure_core::headers::{HeaderName, Headers};
use azure_core::{HttpClient, Method, Request, StatusCode, Url};
use serde_json::Value;

use super::super::{ApiStats, ProviderError};

/// How long one operation may run before the call fails as transient (the next run resumes).
const LIMIT: Duration = Duration::from_secs(600);
/// Shortest wait between polls, whatever `Retry-After` says.
const MIN_WAIT: Duration = Duration::from_millis(100);
/// Wait between polls when the server gives no `Retry-After`.
const DEFAULT_WAIT: Duration = Duration::from_secs(2);

/// Follows long-running operations with the provider's credential.
pub(super) struct Poller {
    pub(super) http: Arc<dyn HttpClient>,
    pub(super) credential: Arc<dyn TokenCredential>,
    pub(super) scope: String,
    pub(super) stats: Arc<ApiStats>,
}

fn header(h: &Headers, name: &'static str) -> Option<String> {
    h.get_optional_string(&HeaderName::from_static(name))
}

/// The server's `Retry-After` (seconds), or the default wait.
fn retry_after(h: &Headers) -> Duration {
    header(h, "retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_WAIT)
        .max(MIN_WAIT)
}

impl Poller {
    /// Waits for the operation a response started; returns at once unless it is a 202.
    pub(super) async fn finish(
        &self,
        what: &str,
        status: StatusCode,
        headers: &Headers,
    ) -> Result<(), ProviderError> {
        if status != StatusCode::Accepted {
            return Ok(());
        }
        let Some(mut url) =
            header(headers, "azure-asyncoperation").or_else(|| header(headers, "location"))
        else {
            return Ok(());
        };
        let mut wait = retry_after(headers);
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            if tokio::time::Instant::now() + wait > deadline {
                return Err(ProviderError::transient(format!(
                    "{what}: the operation is still running after {}s (the next run resumes it)",
                    LIMIT.as_secs()
                )));
            }
            tokio::time::sleep(wait).await;
            let parsed = Url::parse(&url).map_err(|e| {
                ProviderError::failed(format!("{what}: invalid operation URL `{url}`: {e}"))
            })?;
            let token = self
                .credential
                .get_token(&[self.scope.as_str()])
                .await
                .map_err(|e| ProviderError::auth(format!("{what}: {e}")))?;
            let mut req = Request::new(parsed, Method::Get);
            req.insert_header(
                azure_core::headers::AUTHORIZATION,
                format!("Bearer {}", token.token.secret()),
            );
            self.stats.record("azure", "operations.get");
            let rsp = match self.http.execute_request(&req).await {
                Ok(r) => r,
                Err(_) => {
                    // A dropped connection while polling: poll again, within the deadline.
                    wait = DEFAULT_WAIT;
                    continue;
                }
            };
            let (status, headers, body) = rsp.deconstruct();
            let body = body.collect().await.unwrap_or_default();
            wait = retry_after(&headers);
            match u16::from(status) {
                202 => {
                    if let Some(next) =
                        header(&headers, "azure-asyncoperation").or(header(&headers, "location"))
                    {
                        url = next;
                    }
                }
                200..=299 => {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    match v.get("status").and_then(Value::as_str) {
                        None | Some("Succeeded") => return Ok(()),
                        Some("Failed") | Some("Canceled") => {
                            let msg = v
                                .pointer("/error/message")
                                .and_then(Value::as_str)
                                .unwrap_or("no reason given");
                            return Err(ProviderError::failed(format!(
                                "{what}: the operation {}: {msg}",
                                v["status"].as_str().unwrap_or_default().to_lowercase()
                            )));
                        }
                        Some(_) => {}
                    }
                }
                429 | 500..=599 => {}
                code => {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let msg = v
                        .pointer("/error/message")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let text = format!("{what}: polling the operation returned HTTP {code} {msg}");
                    return Err(match code {
                        401 | 403 => ProviderError::auth(text),
                        _ => ProviderError::failed(text),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_honoured_with_a_floor() {
        let mut h = Headers::new();
        assert_eq!(retry_after(&h), DEFAULT_WAIT);
        h.insert(HeaderName::from_static("retry-after"), "17");
        assert_eq!(retry_after(&h), Duration::from_secs(17));
        h.insert(HeaderName::from_static("retry-after"), "0");
        assert_eq!(retry_after(&h), MIN_WAIT);
    }
}
