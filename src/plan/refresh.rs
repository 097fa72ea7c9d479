//! Refresh: read the live object behind every recorded resource, batched per provider,
//! retried on the engine's policy.

use std::collections::HashMap;

use futures_util::future::join_all;

use crate::addr::ResourceAddr;
use crate::providers::{ReadRequest, Registry};
use crate::state::ResourceRecord;
use crate::value::Attrs;

use super::retry::{call_with_retries, RetryPolicy};
use super::PlanError;

/// Live attributes by address; `None` = gone.
pub type Live = HashMap<ResourceAddr, Option<Attrs>>;

/// Reads every record; one `read_many` call per provider and chunk.
pub async fn refresh(registry: &Registry, records: &[&ResourceRecord]) -> Result<Live, PlanError> {
    let mut groups: HashMap<usize, Vec<&ResourceRecord>> = HashMap::new();
    for r in records {
        let Some(pi) = registry.provider_index(&r.address.rtype) else {
            return Err(PlanError::Provider {
                address: r.address.clone(),
                message: format!("no provider serves type `{}`", r.address.rtype),
            });
        };
        groups.entry(pi).or_default().push(r);
    }
    let calls = groups.into_values().map(|recs| async move {
        let Some((provider, _)) = registry.get(&recs[0].address.rtype) else {
            return vec![];
        };
        let reqs: Vec<ReadRequest> = recs
            .iter()
            .map(|r| ReadRequest {
                address: r.address.clone(),
                id: r.id.clone(),
                prior: r.attributes.clone(),
            })
            .collect();
        // Reads change nothing: retryable failures are simply read again.
        let results = call_with_retries(reqs, RetryPolicy::default(), |batch, _| {
            provider.read_many(batch)
        })
        .await;
        recs.iter()
            .map(|r| r.address.clone())
            .zip(results)
            .collect::<Vec<_>>()
    });
    let mut live = Live::new();
    for group in join_all(calls).await {
        for (addr, res) in group {
            match res {
                Ok(r) => {
                    live.insert(addr, r.current);
                }
                Err(e) => {
                    return Err(PlanError::Provider {
                        address: addr,
                        message: format!("refresh failed: {e}"),
                    })
                }
            }
        }
    }
    Ok(live)
}
