//! One HTTP client for reports: a user agent, a time limit, and retries with backoff on
//! connection errors, 429 and 5xx answers.

use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

use super::ReportError;

/// Attempts of one request before it fails for good.
pub const ATTEMPTS: u32 = 4;

/// A client that names landlord and gives up on one request after 30 seconds.
pub fn client() -> Result<Client, ReportError> {
    client_within(Duration::from_secs(30))
}

/// A client that names landlord and gives up on one request after `limit`.
pub fn client_within(limit: Duration) -> Result<Client, ReportError> {
    Client::builder()
        .user_agent(concat!("landlord/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(limit.min(Duration::from_secs(10)))
        .timeout(limit)
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
            Ok(r) if last || !retryable(&r) => return Ok(r),
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

/// 429 and 5xx, and GitHub's rate limits: a 403 with `Retry-After`, or with no
/// requests remaining.
fn retryable(r: &Response) -> bool {
    let s = r.status();
    let header = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok());
    s == StatusCode::TOO_MANY_REQUESTS
        || s.is_server_error()
        || (s == StatusCode::FORBIDDEN
            && (header("retry-after").is_some() || header("x-ratelimit-remaining") == Some("0")))
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

/// A JSON REST API: the headers every request carries (credentials among them) and what
/// to suggest when it refuses them.
pub struct Api {
    client: Client,
    headers: Vec<(&'static str, String)>,
    first_wait: Duration,
    refused: &'static str,
}

impl Api {
    /// An API whose requests carry `headers`; `refused` is the hint for a 403 or 404.
    pub fn new(
        headers: Vec<(&'static str, String)>,
        refused: &'static str,
    ) -> Result<Api, ReportError> {
        Ok(Api {
            client: client()?,
            headers,
            first_wait: Duration::from_secs(1),
            refused,
        })
    }

    /// Sends `body` (if any) as JSON; the answer's JSON (`null` when empty) and the
    /// `rel="next"` page of its `Link` header.
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(Value, Option<String>), ReportError> {
        let res = send(&method, url, self.first_wait, || {
            let mut r = self.client.request(method.clone(), url);
            for (k, v) in &self.headers {
                r = r.header(*k, v);
            }
            if let Some(b) = body {
                r = r
                    .header("Content-Type", "application/json")
                    .body(b.to_string());
            }
            r
        })
        .await?;
        let status = res.status();
        let next = res
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|l| l.to_str().ok())
            .and_then(next_link);
        let text = res.text().await.unwrap_or_default();
        let fail = |message: String| ReportError::Http {
            method: method.to_string(),
            url: shown(url),
            message,
        };
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or(text);
            let hint = match status.as_u16() {
                401 => " (check the token)",
                403 | 404 => self.refused,
                _ => "",
            };
            return Err(fail(format!("{status}: {message}{hint}")));
        }
        if text.trim().is_empty() {
            return Ok((Value::Null, next));
        }
        let value = serde_json::from_str(&text)
            .map_err(|e| fail(format!("the answer is not JSON: {e}")))?;
        Ok((value, next))
    }

    /// Every item of a paginated list starting at `url`, following `rel="next"` links.
    pub async fn list(&self, url: &str) -> Result<Vec<Value>, ReportError> {
        let mut url = Some(url.to_string());
        let mut all = Vec::new();
        while let Some(u) = url {
            let (page, next) = self.call(Method::GET, &u, None).await?;
            match page {
                Value::Array(items) => all.extend(items),
                other => {
                    return Err(ReportError::Http {
                        method: "GET".into(),
                        url: shown(&u),
                        message: format!("expected a list, got {other}"),
                    })
                }
            }
            url = next;
        }
        Ok(all)
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|l| {
        let (url, rel) = l.split_once(';')?;
        rel.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        let h = r#"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.github.com/repositories/1/issues?page=2")
        );
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="prev""#), None);
    }
}
