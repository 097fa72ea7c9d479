//! A fleet's plan made tenant batch by batch: each batch is rendered, planned and handed
//! on, then dropped, so a plan's memory follows the batch rather than the fleet.
//!
//! Batches are consecutive runs of tenant ids in sorted order (the shared scope in the
//! first), so the changes handed on are in address order, as in a whole plan. What later
//! batches may assume about the shared resources is carried over from the first. Only
//! the changes that whole-plan checks read (deletes and replaces for the bulk-change
//! guard, certificate orders for the CA limits) are kept, without their diffs.

use std::collections::BTreeSet;

use super::{before_plan, ca_limits, judge, records_for, OpenState, OpsError, Session};
use crate::addr::{ResourceAddr, Scope, SHARED};
use crate::apply::Hook;
use crate::plan::{self, Plan, ResourceChange, Summary};
use crate::render;

/// Tenants rendered and planned at once, unless `LANDLORD_PLAN_BATCH` sets another
/// number: at 10,000 quick-start tenants a batch peaks near 350 MiB, and a fleet of
/// up to that size is planned in one batch, as before batches existed.
pub const BATCH_TENANTS: usize = 10_000;

/// What is left of a plan made in batches once its changes were handed on.
pub struct Batched {
    /// The plan's header, guard verdict and deferrals, holding only the changes those
    /// checks read.
    pub plan: Plan,
    /// Counts of every change.
    pub summary: Summary,
    /// How many batches the plan was made in.
    pub batches: usize,
}

/// The batch size: `LANDLORD_PLAN_BATCH` when it is a positive number.
fn batch_tenants() -> usize {
    std::env::var("LANDLORD_PLAN_BATCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(BATCH_TENANTS)
}

/// The tenant lists to plan one after another; one empty list (everything at once)
/// when the whole workspace fits in one batch. Only a fleet past one batch needs the
/// state (`None` here): tenants with records but no file any more are planned too.
fn batches(
    s: &Session,
    recorded: Option<&OpenState>,
    tenants: &[String],
) -> Result<Option<Vec<Vec<String>>>, OpsError> {
    let size = batch_tenants();
    let ids: BTreeSet<String> = if tenants.is_empty() {
        if s.ws.tenants.len() <= size {
            return Ok(Some(vec![vec![]]));
        }
        let Some(st) = recorded else {
            return Ok(None);
        };
        let mut all = st.store.scopes()?;
        all.extend(s.ws.tenants.iter().map(|t| t.spec.id.clone()));
        all.insert(SHARED.to_string());
        all
    } else {
        tenants.iter().cloned().collect()
    };
    let ids: Vec<String> = ids.into_iter().collect();
    Ok(Some(ids.chunks(size).map(<[String]>::to_vec).collect()))
}

/// The state, opened by `open` on first use.
fn state<'a>(
    st: &'a mut Option<OpenState>,
    open: &mut dyn FnMut() -> Result<OpenState, OpsError>,
) -> Result<&'a OpenState, OpsError> {
    if st.is_none() {
        *st = Some(open()?);
    }
    st.as_ref()
        .ok_or_else(|| OpsError::Usage("the state could not be opened".into()))
}

/// Plans batch by batch, handing each batch's changes to `sink`. `None` when a batch
/// of some tenants does not render on its own (a tenant refers to one in another
/// batch, or a template fails): the whole workspace then renders at once and reports it.
///
/// The state in `st` is opened with `open` once the first batch has rendered (or
/// before, for a fleet past one batch): a workspace that does not render leaves the
/// state untouched, as a whole plan does.
pub async fn plan_in_batches(
    s: &Session,
    st: &mut Option<OpenState>,
    open: &mut dyn FnMut() -> Result<OpenState, OpsError>,
    opts: &plan::Options,
    hook: &dyn Hook,
    sink: &mut dyn FnMut(&[ResourceChange]) -> std::io::Result<()>,
) -> Result<Option<Batched>, OpsError> {
    let engine = render::Engine::new(&s.ws)?;
    let batches = match batches(s, None, &opts.tenants)? {
        Some(b) => b,
        None => {
            let opened = state(st, open)?;
            batches(s, Some(opened), &opts.tenants)?.unwrap_or_default()
        }
    };
    let count = batches.len();
    let limits = s.registry.issuance_limits();
    let mut assumed = plan::Assumed::default();
    let mut header: Option<Plan> = None;
    let (mut summary, mut unchanged) = (Summary::default(), 0);
    // The shared scope renders with the first batch; later ones only link to it.
    let mut shared: Option<Vec<ResourceAddr>> = None;
    let mut serial = None;
    for batch in batches {
        let mut desired =
            match render::render_batch(&s.ws, &s.registry, &engine, &batch, shared.as_deref()) {
                Ok(d) => d,
                // The whole workspace at once: its errors are the plan's.
                Err(e) if batch.is_empty() => return Err(e.into()),
                Err(_) => return Ok(None),
            };
        let st = state(st, open)?;
        let serial = match serial {
            Some(n) => n,
            None => {
                before_plan(s, st, opts, hook).await?;
                *serial.insert(st.store.serial()?)
            }
        };
        if shared.is_none() {
            shared = Some(
                desired
                    .resources
                    .iter()
                    .map(|r| r.address.clone())
                    .filter(|a| a.scope == Scope::Shared)
                    .collect(),
            );
        }
        let records = records_for(st, &batch, Some(&desired))?;
        let batch_opts = plan::Options {
            tenants: batch,
            ..opts.clone()
        };
        let p = plan::build(
            &mut desired,
            records,
            serial,
            &s.ws.input_hash,
            &s.registry,
            &batch_opts,
            &mut assumed,
        )
        .await?;
        drop(desired);
        assumed.keep_shared();
        sink(&p.changes).map_err(OpsError::Output)?;
        unchanged += p.unchanged;
        let header = header.get_or_insert_with(|| p.clone_header());
        for c in p.changes {
            summary.count(c.action);
            let orders = ca_limits::is_order(&c, &limits);
            if c.action.destroys() || orders {
                header.changes.push(ResourceChange {
                    reasons: vec![],
                    attributes: vec![],
                    depends_on: vec![],
                    properties: if orders {
                        c.properties
                    } else {
                        Default::default()
                    },
                    ..c
                });
            }
        }
    }
    let (Some(mut p), Some(st)) = (header, st.as_ref()) else {
        return Ok(None);
    };
    p.tenants = opts.tenants.clone();
    p.unchanged = unchanged;
    judge(s, st, &mut p, opts.allow_bulk)?;
    Ok(Some(Batched {
        plan: p,
        summary,
        batches: count,
    }))
}
