//! One HTTP client for reports: a user agent, a time limit, and retries with backoff on
//! connection errors, 429 and 5xx answers.

use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};

use super::ReportError;

/// Attempts of one request before it fails for good.
pub const ATTEMPTS: u32 = 4;

/// A client that names landlord and gives up on one request after 30 seconds.
pub fn client() -> Result<Client, ReportError> {
    Client::builder()
        .user_agent(concat!("landlord/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| ReportError::Setting(format!("cannot start an HTTP client: {e}")))
}

/// The URL for messages: no query string, which may hold a token.
pub fn shown(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}

/// Sends what `make` builds, again after a backoff while the answer is a connection
/// error, 429 or 5xx; the last answer or error otherwise. `first_wait` is the first
/// backoff (doubled each time, or the server's `Retry-After` when it names one).
pub async fn send(
    method: &Method,
    url: &str,
    first_wait: Duration,
    make: impl Fn() -> RequestBuilder,
) -> Result<Response, ReportError> {
    let mut wait = first_wait;
    let mut attempt = 1;
    loop {
        let last = attempt >= ATTEMPTS;
        match make().send().await {
            Ok(r) if last || !retryable(r.status()) => return Ok(r),
            Ok(r) => {
                if let Some(after) = retry_after(&r) {
                    wait = after.min(Duration::from_secs(60));
                }
            }
            Err(e) if last || !(e.is_connect() || e.is_timeout() || e.is_request()) => {
                return Err(ReportError::Http {
                    method: method.to_string(),
                    url: shown(url),
                    message: crate::causes::with_causes(&e),
                })
            }
            Err(_) => {}
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
        attempt += 1;
    }
}

fn retryable(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

fn retry_after(r: &Response) -> Option<Duration> {
    r.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}
