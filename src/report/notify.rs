//! `[notify]`: after a run, each webhook whose events it raised gets one JSON POST,
//! signed with HMAC-SHA256 when it names a secret (`X-Hub-Signature-256: sha256=<hex>`,
//! as GitHub signs its webhooks). Deliveries are retried with backoff; one that still
//! fails is a warning, never a failed run.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

use super::{http, Outcome, ReportError};
use crate::workspace::config::{NotifyConfig, NotifyEvent, WebhookConfig};

/// Tenant ids listed in one body at most; the count is always given.
const MAX_TENANTS: usize = 1000;

/// The body of `event` for `o` in workspace `workspace`.
pub fn body(event: NotifyEvent, o: &Outcome, workspace: &str) -> Value {
    json!({
        "event": event.as_str(),
        "run_id": o.run_id,
        "workspace": workspace,
        "command": o.command,
        "succeeded": o.succeeded,
        "finished_at": o.finished_at,
        "duration_seconds": o.duration_seconds,
        "tenant_count": o.tenants.len(),
        "tenants": o.tenants.iter().take(MAX_TENANTS).collect::<Vec<_>>(),
        "changes": o.changes,
        "failures": o.failures,
        "drifted_resources": o.drifted,
        "drifted_tenants": o.drifted_tenants,
        "error": o.error,
    })
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends `o`'s events to the webhooks that want them; the warnings of deliveries that
/// failed (the run's result does not change).
pub async fn send(config: &NotifyConfig, o: &Outcome, workspace: &str) -> Vec<String> {
    let events = o.events();
    if config.webhook.is_empty() || events.is_empty() {
        return vec![];
    }
    // One client for every delivery of the run.
    let client = match http::client_within(config.timeout.min(Duration::from_secs(10))) {
        Ok(c) => c,
        Err(e) => return vec![format!("no notification was sent: {e}")],
    };
    let mut warnings = Vec::new();
    for hook in &config.webhook {
        for event in &events {
            if !hook.events.is_empty() && !hook.events.contains(event) {
                continue;
            }
            // A webhook that does not answer must not hold a scheduled job for minutes.
            let sent = tokio::time::timeout(
                config.timeout,
                deliver(&client, hook, config, *event, o, workspace),
            );
            let failed = match sent.await {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {:?} ([notify] timeout)", config.timeout),
            };
            warnings.push(format!(
                "the {} notification to ${} was not delivered: {failed}",
                event.as_str(),
                hook.url_env
            ));
        }
    }
    warnings
}

async fn deliver(
    client: &reqwest::Client,
    hook: &WebhookConfig,
    config: &NotifyConfig,
    event: NotifyEvent,
    o: &Outcome,
    workspace: &str,
) -> Result<(), ReportError> {
    let url = super::env(&hook.url_env)
        .ok_or_else(|| ReportError::Setting(format!("${} is not set", hook.url_env)))?;
    let secret = match &hook.secret_env {
        Some(k) => Some(super::env(k).ok_or_else(|| {
            ReportError::Setting(format!("${k} (the signing secret) is not set"))
        })?),
        None => None,
    };
    let payload = serde_json::to_vec(&body(event, o, workspace)).unwrap_or_default();
    let signed = secret.map(|s| signature(s.as_bytes(), &payload));
    let delivery = format!("{}-{}", o.run_id, event.as_str());
    let res = http::send(&Method::POST, &url, config.backoff, || {
        let mut r = client
            .post(&url)
            .header("Content-Type", "application/json")
            .header("X-Landlord-Event", event.as_str())
            .header("X-Landlord-Delivery", &delivery)
            .body(payload.clone());
        if let Some(sig) = &signed {
            r = r.header("X-Hub-Signature-256", sig);
        }
        r
    })
    .await?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(ReportError::Http {
            method: "POST".into(),
            url: http::shown(&url),
            message: format!(
                "answered {} after {} attempts",
                res.status(),
                http::ATTEMPTS
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_githubs() {
        // The example of GitHub's "Validating webhook deliveries" page.
        assert_eq!(
            signature(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn events_follow_the_outcome() {
        let o = |command: &str, ok: bool, drifted: Option<u64>| Outcome {
            command: command.into(),
            succeeded: ok,
            drifted,
            ..Outcome::default()
        };
        assert_eq!(
            o("apply", true, None).events(),
            vec![NotifyEvent::ApplySucceeded]
        );
        assert_eq!(
            o("destroy", false, None).events(),
            vec![NotifyEvent::ApplyFailed]
        );
        assert_eq!(
            o("drift", true, Some(2)).events(),
            vec![NotifyEvent::DriftFound]
        );
        assert_eq!(
            o("drift", true, Some(0)).events(),
            vec![NotifyEvent::DriftClean]
        );
        assert!(
            o("drift", false, None).events().is_empty(),
            "a failed check says nothing of drift"
        );
        assert!(o("plan", true, None).events().is_empty());
    }
}
