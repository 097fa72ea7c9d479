//! Building a plan: refresh, resolve, compare three ways, choose actions, order them.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::refresh::{refresh, Live};
use super::resolve::{resolve_config, Known};
use super::{Action, AttrChange, Mode, Plan, PlanError, ResourceChange, PLAN_FORMAT_VERSION};
use crate::addr::{ResourceAddr, Scope};
use crate::providers::{AttrKind, PlanRequest, PlanResponse, Registry, ResourceSchema};
use crate::render::{Desired, DesiredResource};
use crate::state::ResourceRecord;
use crate::value::{is_unknown, redact, Attrs, UNKNOWN};
use crate::workspace::Status;

/// What to plan.
#[derive(Debug, Clone)]
pub struct Options {
    /// Normal or destroy.
    pub mode: Mode,
    /// Read live objects first.
    pub refresh: bool,
    /// Limit to these tenants (`_shared` for workspace resources); empty = everything.
    pub tenants: Vec<String>,
    /// Let apply exceed the bulk-change guard's limits.
    pub allow_bulk: bool,
}

/// Diffs for a create: every configured value, then computed ones as unknown.
/// The configuration is consumed: its values move into the diff.
fn create_diff(config: Attrs, sensitive: &[String], schema: &ResourceSchema) -> Vec<AttrChange> {
    let mut out: Vec<AttrChange> = config
        .into_iter()
        .map(|(k, v)| {
            let s = sensitive.contains(&k);
            let after = if s { redact(Some(&v), true) } else { Some(v) };
            AttrChange {
                name: k,
                before: None,
                after,
                sensitive: s,
                forces_replace: false,
            }
        })
        .collect();
    for a in schema
        .attributes
        .iter()
        .filter(|a| a.kind == AttrKind::Computed)
    {
        out.push(AttrChange {
            name: a.name.into(),
            before: None,
            after: Some(Value::String(UNKNOWN.into())),
            sensitive: a.sensitive,
            forces_replace: false,
        });
    }
    out
}

struct Planned {
    attrs: Attrs,
    sensitive: Vec<String>,
    complete: bool,
}

/// What later resources may assume about planned ones, carried from one tenant batch of
/// a fleet's plan to the next (the shared resources every batch refers to).
#[derive(Default)]
pub struct Assumed(HashMap<ResourceAddr, Planned>);

impl Assumed {
    /// Forgets all but the shared resources: what a finished batch's tenants may be
    /// assumed to be is of no use to the next batch.
    pub fn keep_shared(&mut self) {
        self.0.retain(|a, _| a.scope == Scope::Shared);
    }
}

/// Builds the plan for `desired` against `records` (the whole recorded state). The
/// properties and dependencies of each planned resource move into its change: afterwards
/// `desired` still holds every address, its graph and its tenants, but not those. What
/// the shared resources may be assumed to be is left in `assumed`, for the next batch of
/// a plan made in batches (a whole plan passes a fresh one).
pub async fn build(
    desired: &mut Desired,
    records: Vec<ResourceRecord>,
    serial: u64,
    input_hash: &str,
    registry: &Registry,
    opts: &Options,
    assumed: &mut Assumed,
) -> Result<Plan, PlanError> {
    let scope = crate::addr::Selection::new(&opts.tenants);
    let records: BTreeMap<ResourceAddr, ResourceRecord> = records
        .into_iter()
        .map(|r| (r.address.clone(), r))
        .collect();
    let live: Live = if opts.refresh {
        let scoped: Vec<&ResourceRecord> = records
            .values()
            .filter(|r| scope.holds(r.address.scope.as_str()))
            .collect();
        refresh(registry, &scoped).await?
    } else {
        Live::new()
    };
    let mut changes: Vec<ResourceChange> = Vec::new();
    let mut unchanged = 0;
    let planned = &mut assumed.0;

    if opts.mode == Mode::Normal {
        // What dependents may assume is kept only for resources something depends on: a
        // fleet's leaves (most of its resources) need no second copy of their values.
        let depended: HashSet<ResourceAddr> = desired
            .resources
            .iter()
            .flat_map(|r| r.depends_on.iter().cloned())
            .collect();
        let order = desired.dag.topo_order().unwrap_or_default();
        for i in order {
            let d = &mut desired.resources[i];
            if !scope.holds(d.address.scope.as_str()) {
                continue;
            }
            let keep = depended.contains(&d.address) || d.address.scope == Scope::Shared;
            let change = plan_resource(d, &records, &live, planned, keep, registry, opts).await?;
            match change {
                Some(c) => changes.push(c),
                None => unchanged += 1,
            }
        }
    }

    // Deletes: recorded but not desired (or everything in a destroy plan).
    for (addr, rec) in &records {
        if !scope.holds(addr.scope.as_str())
            || (opts.mode == Mode::Normal && desired.index_of(addr).is_some())
        {
            continue;
        }
        if rec.lifecycle.prevent_destroy {
            return Err(PlanError::PreventDestroy {
                address: addr.clone(),
                action: "delete",
            });
        }
        let schema = registry.get(&addr.rtype).map(|(_, s)| s);
        changes.push(delete_change(
            rec,
            delete_reason(desired, opts.mode, addr),
            schema,
        ));
    }
    changes.sort_by(|a, b| a.address.cmp(&b.address));
    let edges = order_edges(&changes);
    Ok(Plan {
        format_version: PLAN_FORMAT_VERSION,
        mode: opts.mode,
        lineage: String::new(),
        state_serial: serial,
        versions: Default::default(),
        input_hash: input_hash.to_string(),
        tenants: opts.tenants.clone(),
        refreshed: opts.refresh,
        changes,
        edges,
        unchanged,
        guard: Default::default(),
        unchanged_tenants: None,
        deferred: vec![],
        waves: vec![],
    })
}

/// The change one desired resource needs (`None`: none), recording in `planned` what its
/// dependents may assume about it.
async fn plan_resource(
    d: &mut DesiredResource,
    records: &BTreeMap<ResourceAddr, ResourceRecord>,
    live: &Live,
    planned: &mut HashMap<ResourceAddr, Planned>,
    keep: bool,
    registry: &Registry,
    opts: &Options,
) -> Result<Option<ResourceChange>, PlanError> {
    let addr = &d.address;
    let (provider, schema) = registry
        .get(&addr.rtype)
        .ok_or_else(|| PlanError::Provider {
            address: addr.clone(),
            message: format!("no provider serves type `{}`", addr.rtype),
        })?;
    let (config, sensitive) = {
        let known = |a: &ResourceAddr| -> Option<Known<'_>> {
            match planned.get(a) {
                Some(p) => Some(Known {
                    attrs: &p.attrs,
                    sensitive: &p.sensitive,
                    complete: p.complete,
                }),
                None => records.get(a).map(|r| Known {
                    attrs: &r.attributes,
                    sensitive: &r.sensitive,
                    complete: true,
                }),
            }
        };
        resolve_config(addr, &d.properties, schema, &known)?
    };
    let prior = records.get(addr);
    let current: Option<&Attrs> = match prior {
        Some(_) if opts.refresh => live.get(addr).and_then(Option::as_ref),
        Some(p) => Some(&p.attributes),
        None => None,
    };
    // A create's diff (`None` here) is made from the configuration last, which it
    // consumes.
    let (action, reasons, attributes, changes_on_update) = match (prior, current) {
        (None, _) => (
            Action::Create,
            vec!["new resource".to_string()],
            None,
            vec![],
        ),
        (Some(_), None) => (
            Action::Create,
            vec!["deleted out of band".to_string()],
            None,
            vec![],
        ),
        (Some(prior), Some(current)) => {
            let diff = three_way(
                &config,
                &sensitive,
                prior,
                current,
                schema,
                &d.lifecycle.ignore_changes,
            );
            let pr = provider
                .plan(PlanRequest {
                    address: addr.clone(),
                    prior: Some(current.clone()),
                    config: config.clone(),
                })
                .await
                .map_err(|e| PlanError::Provider {
                    address: addr.clone(),
                    message: e.to_string(),
                })?;
            let (action, reasons, diffs) = diff.with_provider(&pr, prior, current);
            (action, reasons, Some(diffs), pr.changes_on_update)
        }
    };
    if action == Action::Replace && d.lifecycle.prevent_destroy {
        return Err(PlanError::PreventDestroy {
            address: addr.clone(),
            action: "replace",
        });
    }
    if keep {
        let next = assumed(
            action,
            current,
            &config,
            &sensitive,
            prior,
            &changes_on_update,
        );
        planned.insert(addr.clone(), next);
    }
    if action == Action::NoOp {
        return Ok(None);
    }
    let attributes = attributes.unwrap_or_else(|| create_diff(config, &sensitive, schema));
    Ok(Some(ResourceChange {
        address: addr.clone(),
        action,
        reasons,
        attributes,
        properties: std::mem::take(&mut d.properties),
        depends_on: std::mem::take(&mut d.depends_on),
        lifecycle: d.lifecycle.clone(),
    }))
}

/// The outcome of comparing desired, recorded and live attributes of one resource.
#[derive(Debug, Default)]
struct ThreeWay {
    /// Attributes to change, redacted.
    diffs: Vec<AttrChange>,
    /// The template wants something else than was recorded.
    template_changed: bool,
    /// The live object moved away from what was recorded and wanted.
    drifted: bool,
    /// The live object is as wanted but state records something else.
    behind: bool,
    /// A changed attribute forces a replace.
    force: bool,
}

/// The three-way diff: for each configured attribute, desired (`config`) against recorded
/// (`prior`) and live (`current`).
fn three_way(
    config: &Attrs,
    sensitive: &[String],
    prior: &ResourceRecord,
    current: &Attrs,
    schema: &ResourceSchema,
    ignore: &[String],
) -> ThreeWay {
    let mut out = ThreeWay::default();
    for (k, want) in config {
        if ignore.contains(k) {
            continue;
        }
        let (rec, cur) = (prior.attributes.get(k), current.get(k));
        let live_as_wanted = cur == Some(want) && !is_unknown(want);
        if live_as_wanted && rec == Some(want) {
            continue;
        }
        let (before, fnew) = if live_as_wanted {
            // State records something else (a change that landed in a run that failed):
            // apply again so state records it.
            out.behind = true;
            (rec, false)
        } else {
            if is_unknown(want) || rec != Some(want) {
                out.template_changed = true;
            } else {
                out.drifted = true;
            }
            let fnew = schema.attr(k).is_some_and(|a| a.force_new);
            out.force |= fnew;
            (cur, fnew)
        };
        let s = sensitive.contains(k) || prior.sensitive.contains(k);
        out.diffs.push(AttrChange {
            name: k.clone(),
            before: redact(before, s),
            after: redact(Some(want), s),
            sensitive: s,
            forces_replace: fnew,
        });
    }
    out
}

impl ThreeWay {
    /// The action, reasons and attribute changes once the provider added its replace
    /// triggers.
    fn with_provider(
        mut self,
        pr: &PlanResponse,
        prior: &ResourceRecord,
        current: &Attrs,
    ) -> (Action, Vec<String>, Vec<AttrChange>) {
        let mut reasons = Vec::new();
        if self.template_changed {
            reasons.push("template changed".to_string());
        }
        if self.drifted {
            reasons.push("drift: changed out of band".to_string());
        }
        if self.behind {
            reasons.push("state behind the live object".to_string());
        }
        if let Some(r) = &pr.replace_reason {
            reasons.push(r.clone());
        }
        for k in &pr.requires_replace {
            match self.diffs.iter_mut().find(|c| &c.name == k) {
                Some(c) => c.forces_replace = true,
                None => {
                    let s = prior.sensitive.contains(k);
                    self.diffs.push(AttrChange {
                        name: k.clone(),
                        before: redact(current.get(k), s),
                        after: Some(Value::String(UNKNOWN.into())),
                        sensitive: s,
                        forces_replace: true,
                    })
                }
            }
        }
        let action = if self.force || !pr.requires_replace.is_empty() {
            Action::Replace
        } else if !self.diffs.is_empty() {
            Action::Update
        } else {
            Action::NoOp
        };
        (action, reasons, self.diffs)
    }
}

/// What dependents may assume about a resource after its planned action.
fn assumed(
    action: Action,
    current: Option<&Attrs>,
    config: &Attrs,
    sensitive: &[String],
    prior: Option<&ResourceRecord>,
    changes_on_update: &[String],
) -> Planned {
    match (action, current) {
        (Action::NoOp, Some(cur)) => Planned {
            attrs: cur.clone(),
            sensitive: merge(sensitive, prior.map(|p| &p.sensitive)),
            complete: true,
        },
        (Action::Update, Some(cur)) => {
            // Computed values survive an update unless the provider says otherwise.
            let mut a: Attrs = cur
                .iter()
                .filter(|(k, _)| !changes_on_update.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            a.extend(config.clone());
            Planned {
                attrs: a,
                sensitive: merge(sensitive, prior.map(|p| &p.sensitive)),
                complete: false,
            }
        }
        _ => Planned {
            attrs: config.clone(),
            sensitive: sensitive.to_vec(),
            complete: false,
        },
    }
}

/// Why a recorded resource that is not desired goes.
fn delete_reason(desired: &Desired, mode: Mode, addr: &ResourceAddr) -> &'static str {
    match (mode, addr.tenant()) {
        (Mode::Destroy, _) => "destroy requested",
        (_, None) => "no longer in shared.yaml",
        (_, Some(t)) => match desired.tenants.get(t) {
            None => "tenant removed",
            Some(Status::Deleted) => "tenant deleted",
            Some(Status::Suspended) => "tenant suspended",
            Some(Status::Active) => "no longer in templates",
        },
    }
}

/// The delete of a recorded resource, showing its configured attributes going away.
fn delete_change(
    rec: &ResourceRecord,
    reason: &str,
    schema: Option<&ResourceSchema>,
) -> ResourceChange {
    let attributes = rec
        .attributes
        .iter()
        .filter(|(k, _)| {
            schema
                .and_then(|s| s.attr(k))
                .is_none_or(|a| a.kind != AttrKind::Computed)
        })
        .map(|(k, v)| {
            let s = rec.sensitive.contains(k);
            AttrChange {
                name: k.clone(),
                before: redact(Some(v), s),
                after: None,
                sensitive: s,
                forces_replace: false,
            }
        })
        .collect();
    ResourceChange {
        address: rec.address.clone(),
        action: Action::Delete,
        reasons: vec![reason.to_string()],
        attributes,
        properties: Attrs::new(),
        depends_on: rec.dependencies.clone(),
        lifecycle: rec.lifecycle.clone(),
    }
}

fn merge(a: &[String], b: Option<&Vec<String>>) -> Vec<String> {
    let mut v: Vec<String> = a.iter().chain(b.into_iter().flatten()).cloned().collect();
    v.sort();
    v.dedup();
    v
}

/// The execution graph: creates and updates after their dependencies; deletes after the
/// deletes of what depended on them; within a scope, creates after its deletes (a file
/// moved between resources is removed before it is written again).
fn order_edges(changes: &[ResourceChange]) -> Vec<(usize, usize)> {
    let index: HashMap<&ResourceAddr, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (&c.address, i))
        .collect();
    let mut deletes_by_scope: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        if c.action == Action::Delete {
            deletes_by_scope
                .entry(c.address.scope.as_str())
                .or_default()
                .push(i);
        }
    }
    let mut edges = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        if c.action == Action::Delete {
            continue;
        }
        for dep in &c.depends_on {
            if let Some(&j) = index.get(dep) {
                if changes[j].action != Action::Delete {
                    edges.push((i, j));
                }
            }
        }
        if matches!(c.action, Action::Create | Action::Replace) {
            for &j in deletes_by_scope
                .get(c.address.scope.as_str())
                .into_iter()
                .flatten()
            {
                edges.push((i, j));
            }
        }
    }
    for (j, c) in changes.iter().enumerate() {
        if c.action != Action::Delete {
            continue;
        }
        for dep in &c.depends_on {
            if let Some(&i) = index.get(dep) {
                if changes[i].action == Action::Delete {
                    edges.push((i, j));
                }
            }
        }
    }
    edges.sort_unstable();
    edges.dedup();
    edges
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::AttrSchema;
    use serde_json::json;

    fn attrs(v: serde_json::Value) -> Attrs {
        serde_json::from_value(v).unwrap()
    }

    fn record(a: serde_json::Value) -> ResourceRecord {
        ResourceRecord {
            address: "acme/aws_s3_bucket.b".parse().unwrap(),
            provider: "aws".into(),
            id: "b".into(),
            attributes: attrs(a),
            sensitive: vec![],
            dependencies: vec![],
            lifecycle: Default::default(),
            created_at: "now".into(),
            updated_at: "now".into(),
            serial: 0,
        }
    }

    fn schema() -> ResourceSchema {
        ResourceSchema {
            type_name: "aws_s3_bucket",
            attributes: vec![
                AttrSchema::required("bucket").force_new(),
                AttrSchema::optional("tags"),
            ],
        }
    }

    #[test]
    fn the_three_way_diff_tells_template_changes_drift_and_state_behind_apart() {
        let want = attrs(json!({"bucket": "b", "tags": {"t": "1"}}));
        // drift: recorded as wanted, live differs
        let d = three_way(
            &want,
            &[],
            &record(json!({"bucket": "b", "tags": {"t": "1"}})),
            &attrs(json!({"bucket": "b", "tags": {"t": "1", "x": "y"}})),
            &schema(),
            &[],
        );
        assert!(d.drifted && !d.template_changed && !d.behind && !d.force);
        assert_eq!(d.diffs[0].name, "tags");
        // template changed: recorded and live agree, the template wants more
        let d = three_way(
            &want,
            &[],
            &record(json!({"bucket": "b", "tags": {}})),
            &attrs(json!({"bucket": "b", "tags": {}})),
            &schema(),
            &[],
        );
        assert!(d.template_changed && !d.drifted);
        // state behind: live is as wanted, state recorded something else
        let d = three_way(
            &want,
            &[],
            &record(json!({"bucket": "b", "tags": {}})),
            &want,
            &schema(),
            &[],
        );
        assert!(d.behind && d.diffs.iter().all(|c| !c.forces_replace));
        // a force-new attribute that differs forces a replace; ignored ones do not count
        let d = three_way(
            &attrs(json!({"bucket": "c"})),
            &[],
            &record(json!({"bucket": "b"})),
            &attrs(json!({"bucket": "b"})),
            &schema(),
            &[],
        );
        assert!(d.force);
        let d = three_way(
            &attrs(json!({"bucket": "c"})),
            &[],
            &record(json!({"bucket": "b"})),
            &attrs(json!({"bucket": "b"})),
            &schema(),
            &["bucket".into()],
        );
        assert!(d.diffs.is_empty() && !d.force);
    }

    #[test]
    fn provider_replace_triggers_turn_an_update_into_a_replace_with_a_reason() {
        let rec = record(json!({"bucket": "b"}));
        let current = attrs(json!({"bucket": "b", "not_after": "2026-01-01"}));
        let pr = PlanResponse {
            requires_replace: vec!["not_after".into()],
            replace_reason: Some("renewal due".into()),
            ..Default::default()
        };
        let (action, reasons, diffs) = ThreeWay::default().with_provider(&pr, &rec, &current);
        assert_eq!(action, Action::Replace);
        assert_eq!(reasons, vec!["renewal due".to_string()]);
        assert!(diffs[0].forces_replace && diffs[0].name == "not_after");
        let (action, _, _) =
            ThreeWay::default().with_provider(&PlanResponse::default(), &rec, &current);
        assert_eq!(action, Action::NoOp);
    }
}
