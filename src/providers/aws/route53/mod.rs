//! `aws_route53_zone` ([`zone`]) and `aws_route53_record` ([`record`]), and what both
//! use: name rules, zone listing and change submission.

mod record;
mod zone;

pub(super) use record::Record;
pub(super) use zone::Zone;

use aws_sdk_route53::types::{Change, ChangeBatch, ResourceRecordSet, RrType};
use serde_json::Value;

use super::error::classify;
use super::{Aws, Clients};
use crate::providers::ProviderError;
use crate::value::UNKNOWN;

/// Record sets per ListResourceRecordSets page.
const PAGE: i32 = 300;

fn known(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| *s != UNKNOWN)
}

fn check_name(what: &str, name: &str) -> Result<(), ProviderError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && !name.ends_with('.')
        && name.split('.').enumerate().all(|(i, l)| {
            !l.is_empty()
                && l.len() <= 63
                && (l.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                }) || (i == 0 && l == "*"))
        });
    if ok {
        Ok(())
    } else {
        Err(ProviderError::invalid(format!(
            "invalid {what} `{name}`: expected lowercase DNS labels without a trailing dot"
        )))
    }
}

fn bare_zone_id(id: &str) -> String {
    id.trim_start_matches("/hostedzone/").to_string()
}

/// Lowercase, no trailing dot, `*` unescaped.
fn norm_name(n: &str) -> String {
    n.trim_end_matches('.')
        .replace("\\052", "*")
        .to_ascii_lowercase()
}

struct ZoneGone;

/// Every record set of a zone (or, with `start`, at most one page from that name/type).
async fn list_zone(
    aws: &Aws,
    c: &Clients,
    zone: &str,
    start: Option<(&str, &str)>,
) -> Result<Result<Vec<ResourceRecordSet>, ProviderError>, ZoneGone> {
    let mut out = Vec::new();
    let mut next: Option<(String, RrType)> = start.map(|(n, t)| (n.to_string(), RrType::from(t)));
    loop {
        aws.count("route53", "ListResourceRecordSets");
        let mut call = c.route53.list_resource_record_sets().hosted_zone_id(zone);
        call = match (&next, start) {
            (Some((n, t)), _) => call.start_record_name(n).start_record_type(t.clone()),
            _ => call,
        };
        call = call.max_items(if start.is_some() { 1 } else { PAGE });
        let page = match call.send().await {
            Ok(p) => p,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_hosted_zone()) =>
            {
                return Err(ZoneGone)
            }
            Err(e) => return Ok(Err(classify("route53 ListResourceRecordSets", e))),
        };
        out.extend(page.resource_record_sets().iter().cloned());
        if start.is_some() || !page.is_truncated() {
            return Ok(Ok(out));
        }
        match (page.next_record_name(), page.next_record_type()) {
            (Some(n), Some(t)) => next = Some((n.to_string(), t.clone())),
            _ => return Ok(Ok(out)),
        }
    }
}

async fn submit(
    aws: &Aws,
    c: &Clients,
    zone: &str,
    changes: Vec<Change>,
) -> Result<(), ProviderError> {
    aws.count("route53", "ChangeResourceRecordSets");
    let batch = ChangeBatch::builder()
        .set_changes(Some(changes))
        .build()
        .map_err(|e| ProviderError::failed(e.to_string()))?;
    c.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| classify("route53 ChangeResourceRecordSets", e))?;
    Ok(())
}
