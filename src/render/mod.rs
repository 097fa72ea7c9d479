//! Rendering: every tenant (and `shared.yaml`) through its tier's module templates into
//! the desired resource graph, with explicit and implicit (reference) dependencies.
//!
//! Templates are strict: an undefined variable is an error, `get_env` is disabled, and
//! only templates of the module library can be included. Each resource is checked
//! against its provider schema here, so a bad template fails before any state is read.

mod context;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::addr::{ResourceAddr, Scope};
use crate::graph::Dag;
use crate::providers::{AttrKind, Registry};
use crate::state::Lifecycle;
use crate::value::{self, Attrs};
use crate::workspace::policy::{eval_condition_in, region_allowed};
use crate::workspace::{ModuleUse, Status, Workspace};

/// One resource the workspace wants.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredResource {
    /// Address.
    pub address: ResourceAddr,
    /// Properties; strings may hold `${...}` references.
    pub properties: Attrs,
    /// Every resource it depends on (explicit `depends_on` and references).
    pub depends_on: Vec<ResourceAddr>,
    /// Lifecycle settings.
    pub lifecycle: Lifecycle,
    /// Template that produced it.
    pub template: String,
}

/// The desired resource graph.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// Resources sorted by address.
    pub resources: Vec<DesiredResource>,
    /// Dependency graph over `resources` indices.
    pub dag: Dag,
    /// Status of every tenant rendered (those selected), for the reasons of deletes.
    pub tenants: BTreeMap<String, Status>,
}

impl Desired {
    /// Index of a resource by address.
    pub fn index_of(&self, a: &ResourceAddr) -> Option<usize> {
        self.resources.binary_search_by(|r| r.address.cmp(a)).ok()
    }
}

/// A template or resource that cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RenderError {
    /// Template (or tier file) concerned.
    pub template: String,
    /// 1-based line in the template, when known.
    pub line: Option<usize>,
    /// Tenant being rendered (`None` for shared resources).
    pub tenant: Option<String>,
    /// Resource concerned (`<type>.<name>`), when any.
    pub resource: Option<String>,
    /// The template text itself is wrong (a syntax error), whatever tenant renders it.
    pub syntax: bool,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.template)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        match (&self.tenant, self.syntax) {
            (_, true) => {}
            (Some(t), _) => write!(f, ": tenant `{t}`")?,
            (None, _) => write!(f, ": shared")?,
        }
        if let Some(r) = &self.resource {
            write!(f, ": resource `{r}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every rendering problem; never empty.
#[derive(Debug, thiserror::Error)]
pub struct RenderErrors(pub Vec<RenderError>);

/// Tenants named in full when one problem repeats across many of them.
const NAMED_TENANTS: usize = 3;

impl fmt::Display for RenderErrors {
    /// One line per problem; a problem shared by more than three tenants (the same
    /// template line, resource and message) is one line naming the first three.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        type Key<'a> = (&'a str, Option<usize>, Option<&'a str>, &'a str);
        let mut groups: Vec<(Key<'_>, Vec<&RenderError>)> = Vec::new();
        let mut index: std::collections::HashMap<Key<'_>, usize> = Default::default();
        for e in &self.0 {
            let key = (
                e.template.as_str(),
                e.line,
                e.resource.as_deref(),
                e.message.as_str(),
            );
            match index.get(&key) {
                Some(&i) => groups[i].1.push(e),
                None => {
                    index.insert(key, groups.len());
                    groups.push((key, vec![e]));
                }
            }
        }
        let mut lines = Vec::new();
        for ((template, line, resource, message), errors) in groups {
            if errors.len() <= NAMED_TENANTS {
                lines.extend(errors.iter().map(|e| e.to_string()));
                continue;
            }
            let named: Vec<String> = errors[..NAMED_TENANTS]
                .iter()
                .map(|e| format!("`{}`", e.tenant.as_deref().unwrap_or("_shared")))
                .collect();
            let mut l = template.to_string();
            if let Some(n) = line {
                l.push_str(&format!(":{n}"));
            }
            l.push_str(&format!(
                ": tenants {} and {} more",
                named.join(", "),
                errors.len() - NAMED_TENANTS
            ));
            if let Some(r) = resource {
                l.push_str(&format!(": resource `{r}`"));
            }
            l.push_str(&format!(": {message}"));
            lines.push(l);
        }
        f.write_str(&lines.join("\n"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    #[serde(rename = "type")]
    rtype: String,
    name: String,
    #[serde(default)]
    properties: Attrs,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    lifecycle: Lifecycle,
}

struct Renderer<'a> {
    ws: &'a Workspace,
    registry: &'a Registry,
    tera: &'a tera::Tera,
    sources: &'a BTreeMap<String, String>,
    errors: Vec<RenderError>,
}

impl<'a> Renderer<'a> {
    /// Resources sorted by address; a second definition of an address is an error.
    fn unique(
        &mut self,
        mut raw: Vec<(DesiredResource, Vec<String>)>,
    ) -> Vec<(DesiredResource, Vec<String>)> {
        raw.sort_by(|a, b| a.0.address.cmp(&b.0.address));
        let mut resources: Vec<(DesiredResource, Vec<String>)> = Vec::with_capacity(raw.len());
        for item in raw {
            if let Some(prev) = resources.last().filter(|p| p.0.address == item.0.address) {
                let (prev_t, addr) = (prev.0.template.clone(), item.0.address.clone());
                self.at(
                    &item.0,
                    format!("duplicate address `{addr}` (also defined in `{prev_t}`)"),
                );
                continue;
            }
            resources.push(item);
        }
        resources
    }

    /// The resource a `depends_on` entry or reference of `res` names, if it may use it:
    /// known, in its own tenant or shared, and (for references) with that attribute.
    #[allow(clippy::too_many_arguments)]
    fn target(
        &mut self,
        res: &DesiredResource,
        addrs: &BTreeSet<ResourceAddr>,
        scope: Option<&Scope>,
        rtype: &str,
        name: &str,
        what: &str,
        attr: Option<&str>,
    ) -> Option<ResourceAddr> {
        let here = &res.address.scope;
        let scope = scope.cloned().unwrap_or_else(|| here.clone());
        if let (Scope::Tenant(other), true) = (&scope, &scope != here) {
            self.at(
                res,
                format!("{what} to another tenant `{other}` is not allowed (tenant isolation)"),
            );
            return None;
        }
        let a = ResourceAddr::new(scope, rtype, name)
            .ok()
            .filter(|a| addrs.contains(a));
        let Some(a) = a else {
            self.at(res, format!("{what} to unknown resource `{rtype}.{name}`"));
            return None;
        };
        if let (Some(attr), Some((_, schema))) = (attr, self.registry.get(rtype)) {
            if schema.attr(attr).is_none() {
                self.at(
                    res,
                    format!("reference to unknown attribute `{attr}` of `{rtype}.{name}`"),
                );
                return None;
            }
        }
        Some(a)
    }

    /// What `res` depends on: its explicit `depends_on` and every resource it references.
    fn dependencies(
        &mut self,
        res: &DesiredResource,
        explicit: &[String],
        addrs: &BTreeSet<ResourceAddr>,
    ) -> Vec<ResourceAddr> {
        let mut deps = BTreeSet::new();
        for d in explicit {
            let (scope, rest) = match d.strip_prefix("shared.") {
                Some(rest) => (Some(Scope::Shared), rest),
                None => (None, d.as_str()),
            };
            match rest.split_once('.') {
                Some((t, n)) => {
                    if let Some(a) =
                        self.target(res, addrs, scope.as_ref(), t, n, "depends_on", None)
                    {
                        deps.insert(a);
                    }
                }
                None => self.at(
                    res,
                    format!("depends_on entry `{d}` must be `<type>.<name>`"),
                ),
            }
        }
        match value::references_in(&res.properties) {
            Ok(refs) => {
                for rf in refs {
                    let (scope, attr) = (rf.scope.as_ref(), Some(rf.attr.as_str()));
                    if let Some(a) =
                        self.target(res, addrs, scope, &rf.rtype, &rf.name, "reference", attr)
                    {
                        deps.insert(a);
                    }
                }
            }
            Err(e) => self.at(res, e.to_string()),
        }
        if deps.remove(&res.address) {
            self.at(
                res,
                format!(
                    "dependency cycle: `{}` depends on itself (a reference to its own attributes or its own name in `depends_on`)",
                    res.address.local()
                ),
            );
        }
        deps.into_iter().collect()
    }

    /// The dependency graph of `out`; a cycle is an error naming it.
    fn graph(&mut self, out: &[DesiredResource]) -> Dag {
        let mut dag = Dag::new(out.len());
        let index: BTreeMap<&ResourceAddr, usize> = out
            .iter()
            .enumerate()
            .map(|(i, d)| (&d.address, i))
            .collect();
        for (i, d) in out.iter().enumerate() {
            for dep in &d.depends_on {
                if let Some(&j) = index.get(dep) {
                    dag.add_edge(i, j);
                }
            }
        }
        if let Some(cycle) = dag.find_cycle() {
            let first = &out[cycle[0]];
            let mut names: Vec<String> =
                cycle.iter().map(|&i| out[i].address.to_string()).collect();
            names.push(first.address.to_string());
            self.at(first, format!("dependency cycle: {}", names.join(" -> ")));
        }
        dag
    }

    fn err(
        &mut self,
        template: &str,
        tenant: Option<&str>,
        resource: Option<String>,
        line: Option<usize>,
        message: String,
    ) {
        self.errors.push(RenderError {
            template: template.into(),
            line,
            tenant: tenant.map(str::to_string),
            resource,
            message,
            syntax: false,
        });
    }

    /// Records an error about one resource.
    fn at(&mut self, r: &DesiredResource, message: String) {
        let (template, tenant, local) = (
            r.template.clone(),
            r.address.tenant().map(str::to_string),
            r.address.local(),
        );
        self.err(&template, tenant.as_deref(), Some(local), None, message);
    }

    /// Renders the modules of one scope into raw resources.
    fn render_scope(
        &mut self,
        scope: &Scope,
        uses: &[ModuleUse],
        used_in: &str,
        base: Value,
        out: &mut Vec<(DesiredResource, Vec<String>)>,
    ) {
        let tenant = match scope {
            Scope::Tenant(t) => Some(t.as_str()),
            Scope::Shared => None,
        };
        // One context for the scope: each module only replaces `inputs` (the whole context
        // used to be copied for every module of every tenant).
        let mut ctx = match tera::Context::from_value(base) {
            Ok(c) => c,
            Err(e) => {
                self.err(used_in, tenant, None, None, e.to_string());
                return;
            }
        };
        for u in uses {
            if let Some(cond) = &u.when {
                ctx.remove("inputs");
                match eval_condition_in(cond, &ctx) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(m) => {
                        self.err(
                            used_in,
                            tenant,
                            None,
                            None,
                            format!("module `{}`: `when`: {m}", u.module),
                        );
                        continue;
                    }
                }
            }
            let Some(module) = self.ws.modules.get(&u.module) else {
                continue;
            };
            let inputs = match context::inputs(&module.spec, &u.inputs) {
                Ok(i) => i,
                Err(m) => {
                    self.err(
                        used_in,
                        tenant,
                        None,
                        None,
                        format!("module `{}`: {m}", u.module),
                    );
                    continue;
                }
            };
            ctx.insert("inputs", &inputs);
            let templates: Vec<String> = module
                .templates
                .iter()
                .map(|(n, _)| n.clone())
                .filter(|n| n.ends_with(".yaml.tera"))
                .collect();
            for name in templates {
                let text = match self.tera.render(&name, &ctx) {
                    Ok(t) => t,
                    Err(e) => {
                        let (msg, line) = context::explain(
                            &e,
                            self.sources.get(&name).map(String::as_str).unwrap_or(""),
                        );
                        self.err(&name, tenant, None, line, msg);
                        continue;
                    }
                };
                if let Some(l) = crate::workspace::depth::too_deep(&text) {
                    let msg = format!(
                        "rendered output nests deeper than {} levels (rendered line {l})",
                        crate::workspace::depth::MAX_DEPTH
                    );
                    self.err(&name, tenant, None, None, msg);
                    continue;
                }
                let raws: Vec<RawResource> =
                    match serde_yaml_ng::from_str::<Option<Vec<RawResource>>>(&text) {
                        Ok(v) => v.unwrap_or_default(),
                        Err(e) => {
                            let line = e.location().map(|l| l.line());
                            let msg = format!(
                                "rendered output is not a list of resources: {}{}",
                                e,
                                line.map(|l| format!(" (rendered line {l})"))
                                    .unwrap_or_default()
                            );
                            self.err(&name, tenant, None, None, msg);
                            continue;
                        }
                    };
                for raw in raws {
                    let local = format!("{}.{}", raw.rtype, raw.name);
                    match ResourceAddr::new(scope.clone(), &raw.rtype, &raw.name) {
                        Ok(address) => out.push((
                            DesiredResource {
                                address,
                                properties: raw.properties,
                                depends_on: vec![],
                                lifecycle: raw.lifecycle,
                                template: name.clone(),
                            },
                            raw.depends_on,
                        )),
                        Err(e) => self.err(&name, tenant, Some(local), None, e.to_string()),
                    }
                }
            }
        }
    }

    /// Checks one resource against its schema and the tenant's residency.
    fn check_schema(&mut self, r: &DesiredResource, residency: &[String]) {
        let Some((provider, schema)) = self.registry.get(&r.address.rtype) else {
            let msg = format!(
                "unknown resource type `{}` (known: {})",
                r.address.rtype,
                self.registry.type_names().join(", ")
            );
            self.at(r, msg);
            return;
        };
        for a in &schema.attributes {
            if a.kind == AttrKind::Required && r.properties.get(a.name).is_none_or(Value::is_null) {
                self.at(r, format!("missing required property `{}`", a.name));
            }
        }
        for k in r.properties.keys() {
            match schema.attr(k) {
                None => self.at(
                    r,
                    format!("unknown property `{k}` for type `{}`", r.address.rtype),
                ),
                Some(a) if a.kind == AttrKind::Computed => self.at(
                    r,
                    format!("property `{k}` is computed by the provider and cannot be set"),
                ),
                _ => {}
            }
        }
        let placed = ["region", "location"]
            .into_iter()
            .filter_map(|key| match r.properties.get(key) {
                Some(Value::String(region)) => Some((format!("`{key}`"), region.clone())),
                _ => None,
            })
            .chain(
                provider
                    .region(&r.address, &r.properties)
                    .map(|region| ("the server's region".to_string(), region)),
            );
        for (what, region) in placed {
            if !residency.is_empty()
                && !region.contains("${")
                && !region_allowed(&self.ws.config, &region, residency)
            {
                self.at(r, format!("residency violation: {what} `{region}` is outside the tenant's residency [{}]", residency.join(", ")));
            }
        }
        // Providers validate what is known now; referenced values are unknown until apply.
        let known: Attrs = r
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), mask_references(v)))
            .collect();
        if let Err(e) = provider.validate(&r.address, &known) {
            self.at(r, e.to_string());
        }
    }
}

impl Renderer<'_> {
    /// Lets the provider fill defaults and derived attributes into the configuration.
    fn complete(&mut self, r: &mut DesiredResource) {
        let Some((provider, _)) = self.registry.get(&r.address.rtype) else {
            return;
        };
        let provider = provider.clone();
        if let Err(e) = provider.complete(&r.address, &mut r.properties) {
            self.at(r, e.to_string());
        }
    }
}

/// The value with every string that holds a reference replaced by the unknown marker.
fn mask_references(v: &Value) -> Value {
    match v {
        Value::String(s) if s.contains("${") => Value::String(value::UNKNOWN.into()),
        Value::Array(a) => Value::Array(a.iter().map(mask_references).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), mask_references(x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Renders the workspace into the desired resource graph.
pub fn render(ws: &Workspace, registry: &Registry) -> Result<Desired, RenderErrors> {
    render_for(ws, registry, &[])
}

/// The workspace's compiled templates and template context: made once, used by every
/// batch of a plan made in batches.
pub struct Engine {
    tera: tera::Tera,
    sources: BTreeMap<String, String>,
    workspace: serde_json::Value,
}

impl Engine {
    /// Compiles the templates of `ws`.
    pub fn new(ws: &Workspace) -> Result<Engine, RenderErrors> {
        let (tera, sources) = context::engine(ws).map_err(RenderErrors)?;
        Ok(Engine {
            tera,
            sources,
            workspace: context::workspace(ws),
        })
    }
}

/// Renders only the tenants in `only` (and the shared scope); every tenant when empty.
/// A selected tenant that refers to an unselected one fails to render here; callers fall
/// back to [`render`].
pub fn render_for(
    ws: &Workspace,
    registry: &Registry,
    only: &[String],
) -> Result<Desired, RenderErrors> {
    render_batch(ws, registry, &Engine::new(ws)?, only, None)
}

/// [`render_for`] for a batch of a plan made in batches: with `shared` (the addresses
/// of the shared resources, rendered with an earlier batch), the shared scope is not
/// rendered again, and references to those addresses link.
pub fn render_batch(
    ws: &Workspace,
    registry: &Registry,
    engine: &Engine,
    only: &[String],
    shared: Option<&[ResourceAddr]>,
) -> Result<Desired, RenderErrors> {
    let (tera, sources, workspace_ctx) = (&engine.tera, &engine.sources, &engine.workspace);
    let mut r = Renderer {
        ws,
        registry,
        tera,
        sources,
        errors: vec![],
    };
    let mut raw: Vec<(DesiredResource, Vec<String>)> = Vec::new();
    let mut residency: BTreeMap<Scope, Vec<String>> = BTreeMap::new();

    if let (Some(shared), None) = (&ws.shared, shared) {
        let base = context::shared(ws, shared, workspace_ctx);
        r.render_scope(
            &Scope::Shared,
            &shared.modules,
            "shared.yaml",
            base,
            &mut raw,
        );
    }
    let mut tenants = BTreeMap::new();
    let mut selected = Vec::new();
    let wanted = crate::addr::Selection::new(only);
    for t in ws.tenants.iter().filter(|t| wanted.holds(&t.spec.id)) {
        tenants.insert(t.spec.id.clone(), t.spec.status);
        if t.spec.status == Status::Deleted {
            continue;
        }
        if ws.tiers.contains_key(&t.spec.plan) {
            residency.insert(Scope::Tenant(t.spec.id.clone()), t.spec.residency.clone());
            selected.push(t);
        }
    }
    // Tenants render independently: a fleet is split over the cores, each part in order,
    // and the parts joined in order, so the result is the same as one pass.
    let render_part = |part: &[&crate::workspace::LoadedTenant]| {
        let mut rr = Renderer {
            ws,
            registry,
            tera,
            sources,
            errors: vec![],
        };
        let mut out = Vec::new();
        for t in part {
            let Some(tier) = ws.tiers.get(&t.spec.plan) else {
                continue;
            };
            let scope = Scope::Tenant(t.spec.id.clone());
            let base = context::tenant(t, &t.spec.plan, &tier.tier, workspace_ctx);
            let used_in = tier.origin.display().to_string();
            rr.render_scope(&scope, &tier.tier.modules, &used_in, base, &mut out);
        }
        (out, rr.errors)
    };
    for (out, errors) in crate::parallel::parts(&selected, render_part) {
        raw.extend(out);
        r.errors.extend(errors);
    }

    let mut resources = r.unique(raw);
    let addrs: BTreeSet<ResourceAddr> = resources
        .iter()
        .map(|(d, _)| d.address.clone())
        .chain(shared.into_iter().flatten().cloned())
        .collect();
    // Each resource is checked, completed and linked on its own, over the cores; errors
    // keep their order: every check's, then every link's.
    let checked = crate::parallel::parts_mut(&mut resources, |part| {
        let renderer = || Renderer {
            ws,
            registry,
            tera,
            sources,
            errors: vec![],
        };
        let (mut checks, mut links) = (renderer(), renderer());
        for (res, explicit) in part.iter_mut() {
            let res_residency = residency
                .get(&res.address.scope)
                .map_or(&[][..], Vec::as_slice);
            checks.check_schema(res, res_residency);
            checks.complete(res);
            res.depends_on = links.dependencies(res, explicit, &addrs);
        }
        (checks.errors, links.errors)
    });
    let mut link_errors = Vec::new();
    for (checks, links) in checked {
        r.errors.extend(checks);
        link_errors.extend(links);
    }
    r.errors.extend(link_errors);
    let out: Vec<DesiredResource> = resources.into_iter().map(|(res, _)| res).collect();
    let dag = r.graph(&out);
    if !r.errors.is_empty() {
        return Err(RenderErrors(r.errors));
    }
    Ok(Desired {
        resources: out,
        dag,
        tenants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(tenant: &str, message: &str) -> RenderError {
        RenderError {
            template: "modules/app/a.yaml.tera".into(),
            line: Some(3),
            tenant: Some(tenant.into()),
            resource: None,
            message: message.into(),
            syntax: false,
        }
    }

    #[test]
    fn a_problem_shared_by_many_tenants_is_one_line() {
        let mut all: Vec<RenderError> = (0..500)
            .map(|i| err(&format!("t{i:03}"), "undefined variable `x`"))
            .collect();
        all.push(err("t999", "other"));
        let text = RenderErrors(all).to_string();
        assert_eq!(
            text,
            "modules/app/a.yaml.tera:3: tenants `t000`, `t001`, `t002` and 497 more: undefined variable `x`\n\
             modules/app/a.yaml.tera:3: tenant `t999`: other"
        );
        let few = RenderErrors(vec![err("a", "m"), err("b", "m")]).to_string();
        assert_eq!(few.lines().count(), 2, "{few}");
    }
}
