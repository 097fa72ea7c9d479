//! Reconciling write-ahead intents left by a killed run: an interrupted delete is deleted
//! again; for a create or update the provider looks the object up (by deterministic name,
//! idempotency token or tags) and we adopt or forget it.

use super::{ApplyError, Hook};
use crate::providers::{DeleteRequest, Interrupted, RecoverRequest, Recovery, Registry};
use crate::state::{now_rfc3339, IntentOp, Outcome, ResourceRecord, StateStore};

/// Reconciles the pending intents of the scopes this run holds (`held`); returns how
/// many there were. Another run's intents may be in flight, and are left to it.
pub async fn recover(
    store: &dyn StateStore,
    registry: &Registry,
    hook: &dyn Hook,
    held: &(dyn Fn(&str) -> bool + Sync),
) -> Result<usize, ApplyError> {
    let mut intents = store.intents()?;
    intents.retain(|i| held(i.address.scope.as_str()));
    // Let requests the killed run sent finish on the server before looking for their result.
    let settle_until = intents
        .iter()
        .filter_map(|i| {
            let settle = registry.get(&i.address.rtype)?.0.recovery_settle();
            let started = time::OffsetDateTime::parse(
                &i.started_at,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()?;
            Some(started + settle)
        })
        .max();
    if let Some(until) = settle_until {
        let wait = until - time::OffsetDateTime::now_utc();
        if wait.is_positive() {
            tokio::time::sleep(wait.unsigned_abs()).await;
        }
    }
    for intent in &intents {
        let addr = &intent.address;
        let err = |message: String| ApplyError::Recover {
            address: addr.clone(),
            message,
        };
        let (provider, _) = registry
            .get(&addr.rtype)
            .ok_or_else(|| err(format!("no provider serves type `{}`", addr.rtype)))?;
        let prior = store.resource(addr)?;
        // An interrupted delete is finished, the same way for every type.
        if intent.op == IntentOp::Delete {
            let req = DeleteRequest {
                address: addr.clone(),
                id: prior.as_ref().map(|p| p.id.clone()).unwrap_or_default(),
                prior: prior
                    .as_ref()
                    .map(|p| p.attributes.clone())
                    .unwrap_or_else(|| intent.config.clone()),
            };
            provider.delete(req).await.map_err(|e| err(e.to_string()))?;
            store.commit(&intent.token, Outcome::Remove(addr.clone()))?;
            hook.recovered(addr, "interrupted delete reconciled: deleted");
            continue;
        }
        let op = match intent.op {
            IntentOp::Update => Interrupted::Update,
            _ => Interrupted::Create,
        };
        let req = RecoverRequest {
            address: addr.clone(),
            op,
            config: intent.config.clone(),
            prior: prior.as_ref().map(|p| p.attributes.clone()),
            id: prior.as_ref().map(|p| p.id.clone()),
            token: intent.token.clone(),
        };
        match provider
            .recover(req)
            .await
            .map_err(|e| err(e.to_string()))?
        {
            Recovery::Adopt(resp) => {
                let mut sensitive = intent.sensitive.clone();
                sensitive.extend(prior.iter().flat_map(|p| p.sensitive.iter().cloned()));
                sensitive.sort();
                sensitive.dedup();
                let now = now_rfc3339();
                let record = ResourceRecord {
                    address: addr.clone(),
                    provider: provider.name().to_string(),
                    id: resp.id,
                    attributes: resp.attributes,
                    sensitive,
                    dependencies: intent.dependencies.clone(),
                    lifecycle: intent.lifecycle.clone(),
                    created_at: prior
                        .as_ref()
                        .map(|p| p.created_at.clone())
                        .unwrap_or_else(|| now.clone()),
                    updated_at: now,
                    serial: 0,
                };
                store.commit(&intent.token, Outcome::Put(Box::new(record)))?;
                hook.recovered(
                    addr,
                    &format!(
                        "interrupted {:?} reconciled: object found and recorded",
                        intent.op
                    )
                    .to_lowercase(),
                );
            }
            Recovery::Gone => {
                store.commit(&intent.token, Outcome::Remove(addr.clone()))?;
                hook.recovered(
                    addr,
                    &format!("interrupted {:?} reconciled: no object exists", intent.op)
                        .to_lowercase(),
                );
            }
        }
    }
    Ok(intents.len())
}
