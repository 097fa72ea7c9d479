//! `time_sleep`: waits on create and/or destroy (rollout pacing between dependent resources).

use async_trait::async_trait;

use super::Builtin;
use crate::providers::resource::{read_recorded, recover_recorded};
use crate::providers::{ApplyRequest, DeleteRequest, ReadRequest, RecoverRequest, ResourceType};
use std::time::Duration;

use serde_json::Value;

use crate::providers::attrs::opt_str;
use crate::providers::{ApplyResponse, AttrSchema, ProviderError, ResourceSchema};
use crate::value::Attrs;

pub(super) fn schema() -> ResourceSchema {
    ResourceSchema {
        type_name: "time_sleep",
        attributes: vec![
            AttrSchema::optional("create_duration").force_new(),
            AttrSchema::optional("destroy_duration"),
        ],
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h`.
fn duration(c: &Attrs, key: &str) -> Result<Option<Duration>, ProviderError> {
    let Some(s) = opt_str(c, key)? else {
        return Ok(None);
    };
    let bad = || {
        ProviderError::invalid(format!(
            "`{key}` must look like `500ms`, `30s`, `5m` or `1h`, got `{s}`"
        ))
    };
    let split = s.find(|ch: char| !ch.is_ascii_digit()).ok_or_else(bad)?;
    let n: u64 = s[..split].parse().map_err(|_| bad())?;
    let d = match &s[split..] {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(bad()),
    };
    Ok(Some(d))
}

pub(super) fn validate(c: &Attrs) -> Result<(), ProviderError> {
    for k in ["create_duration", "destroy_duration"] {
        if c.get(k).and_then(Value::as_str) != Some(crate::value::UNKNOWN) {
            duration(c, k)?;
        }
    }
    Ok(())
}

pub(super) async fn create(
    c: &Attrs,
    prior: Option<&Attrs>,
) -> Result<ApplyResponse, ProviderError> {
    if prior.is_none() {
        if let Some(d) = duration(c, "create_duration")? {
            tokio::time::sleep(d).await;
        }
    }
    Ok(ApplyResponse {
        id: "slept".into(),
        attributes: c.clone(),
    })
}

pub(super) async fn destroy(prior: &Attrs) -> Result<(), ProviderError> {
    if let Some(d) = duration(prior, "destroy_duration")? {
        tokio::time::sleep(d).await;
    }
    Ok(())
}

/// `time_sleep`: one at a time, since a batch shares one call timeout.
pub(super) struct TimeSleep;

#[async_trait]
impl ResourceType<Builtin> for TimeSleep {
    fn schema(&self) -> ResourceSchema {
        schema()
    }
    fn validate(&self, _: &Builtin, c: &Attrs) -> Result<(), ProviderError> {
        validate(c)
    }
    async fn read(&self, _: &Builtin, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        read_recorded(req)
    }
    async fn apply(&self, b: &Builtin, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        b.count("time.sleep");
        create(&req.config, req.prior.as_ref()).await
    }
    async fn delete(&self, _: &Builtin, req: &DeleteRequest) -> Result<(), ProviderError> {
        destroy(&req.prior).await
    }
    async fn recover(
        &self,
        _: &Builtin,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        recover_recorded(req)
    }
}
