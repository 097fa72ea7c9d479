//! The template engine and the context each template sees: `tenant`, `tier`, `settings`,
//! `inputs`, `workspace`, `tags` (and `tenants` for shared modules).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::RenderError;
use crate::workspace::tier::ModuleSpec;
use crate::workspace::{DomainKind, LoadedTenant, Shared, Status, Tier, Workspace};

/// A tera instance holding every template of the modules in use, and their sources.
pub(super) fn engine(
    ws: &Workspace,
) -> Result<(tera::Tera, BTreeMap<String, String>), Vec<RenderError>> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    // Templates must not read the environment: the same inputs always render the same.
    tera.register_function(
        "get_env",
        |_: &std::collections::HashMap<String, tera::Value>| -> tera::Result<tera::Value> {
            Err(tera::Error::msg(
                "`get_env` is disabled: templates see only the workspace",
            ))
        },
    );
    // SQL quoting for templates that put tenant values into SQL text (policy expressions):
    // `{{ x | sql_literal }}` is a string literal, `{{ x | sql_ident }}` an identifier.
    for (name, quote) in [
        (
            "sql_literal",
            crate::providers::postgres::sql::literal as fn(&str) -> String,
        ),
        ("sql_ident", crate::providers::postgres::sql::ident),
    ] {
        tera.register_filter(
            name,
            move |v: &tera::Value,
                  _: &std::collections::HashMap<String, tera::Value>|
                  -> tera::Result<tera::Value> {
                let text = match v {
                    tera::Value::String(s) => s.clone(),
                    tera::Value::Number(n) => n.to_string(),
                    tera::Value::Bool(b) => b.to_string(),
                    other => {
                        return Err(tera::Error::msg(format!(
                            "`{name}` quotes text, numbers and booleans, not {other}"
                        )))
                    }
                };
                Ok(tera::Value::String(quote(&text)))
            },
        );
    }
    let mut sources = BTreeMap::new();
    let mut errors = Vec::new();
    for m in ws.modules.values() {
        for (name, src) in &m.templates {
            sources.insert(name.clone(), src.clone());
        }
    }
    let all: Vec<(&str, &str)> = sources
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    if let Err(e) = tera.add_raw_templates(all) {
        // tera names the template in the outermost error ("Failed to parse 'NAME'") and
        // puts the parser's text, with its line, in the innermost one.
        let outer = e.to_string();
        let template = sources
            .keys()
            .find(|n| outer.contains(&format!("'{n}'")))
            .cloned()
            .unwrap_or_else(|| "modules".into());
        let (msg, line) = explain(&e, "");
        errors.push(RenderError {
            template,
            line,
            tenant: None,
            resource: None,
            message: format!("template syntax error: {msg}"),
            syntax: true,
        });
    }
    if errors.is_empty() {
        Ok((tera, sources))
    } else {
        Err(errors)
    }
}

/// A readable message and, where it can be found, the template line of a tera error.
pub(super) fn explain(e: &tera::Error, source: &str) -> (String, Option<usize>) {
    let full = crate::causes::with_causes(e);
    let var = regex::Regex::new(r"Variable `([^`]+)` not found")
        .ok()
        .and_then(|re| re.captures(&full))
        .map(|c| c[1].to_string());
    if let Some(var) = var {
        let line = source
            .lines()
            .position(|l| l.contains(&var))
            .map(|i| i + 1)
            .or_else(|| {
                let last = var.rsplit('.').next().unwrap_or(&var);
                source.lines().position(|l| l.contains(last)).map(|i| i + 1)
            });
        return (format!("undefined variable `{var}`"), line);
    }
    let line = regex::Regex::new(r"--> (\d+):\d+")
        .ok()
        .and_then(|re| re.captures(&full))
        .and_then(|c| c[1].parse().ok());
    // The innermost cause says what is wrong; the outer ones only where.
    let mut innermost: &dyn std::error::Error = e;
    while let Some(s) = innermost.source() {
        innermost = s;
    }
    (innermost.to_string().trim().to_string(), line)
}

/// Module inputs with defaults applied and types checked.
pub(super) fn inputs(
    spec: &ModuleSpec,
    given: &serde_json::Map<String, Value>,
) -> Result<Value, String> {
    let mut out = serde_json::Map::new();
    for k in given.keys() {
        if !spec.inputs.contains_key(k) {
            let known: Vec<&str> = spec.inputs.keys().map(String::as_str).collect();
            return Err(format!(
                "unknown input `{k}` (declared: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    for (k, s) in &spec.inputs {
        let v = given.get(k).cloned().or_else(|| s.default.clone());
        match v {
            Some(v) if !s.kind.accepts(&v) => {
                return Err(
                    format!("input `{k}` must be of type {:?}, got {v}", s.kind).to_lowercase()
                )
            }
            Some(v) => {
                out.insert(k.clone(), v);
            }
            None if s.required => return Err(format!("input `{k}` is required")),
            None => {
                out.insert(k.clone(), Value::Null);
            }
        }
    }
    Ok(Value::Object(out))
}

/// The `workspace` object.
pub(super) fn workspace(ws: &Workspace) -> Value {
    json!({ "name": ws.config.workspace.name, "vars": serde_json::to_value(&ws.config.workspace.vars).unwrap_or(Value::Null) })
}

fn tenant_view(t: &LoadedTenant, workspace: &Value) -> Value {
    let s = &t.spec;
    // The name the tenant is served under: `<label>.<base_domain>` for subdomains.
    let hostname =
        s.domain.as_ref().map(
            |d| match (d.kind, workspace["vars"]["base_domain"].as_str()) {
                (DomainKind::Subdomain, Some(base)) => format!("{}.{base}", d.name),
                _ => d.name.clone(),
            },
        );
    json!({
        "hostname": hostname,
        "id": s.id,
        "name": s.name.clone().unwrap_or_else(|| s.id.clone()),
        "plan": s.plan,
        "status": s.status.as_str(),
        "region": s.region,
        "residency": s.residency,
        "domain": s.domain,
        "aliases": s.aliases,
        "labels": s.labels,
        "settings": t.settings,
    })
}

/// The base context of one tenant (without `inputs`).
pub(super) fn tenant(t: &LoadedTenant, tier_name: &str, tier: &Tier, workspace: &Value) -> Value {
    let view = tenant_view(t, workspace);
    json!({
        "tenant": view,
        "settings": t.settings,
        "tier": { "name": tier_name, "description": tier.description, "features": tier.features, "limits": tier.limits },
        "workspace": workspace,
        "tags": { "tenant": t.spec.id, "tier": tier_name, "managed_by": "landlord" },
        // Validation expressions see the tenant document at the root too.
        "id": t.spec.id,
        "domain": t.spec.domain,
        "status": t.spec.status.as_str(),
    })
}

/// The base context of shared modules: every active tenant is listed in `tenants`.
pub(super) fn shared(ws: &Workspace, shared: &Shared, workspace: &Value) -> Value {
    let tenants: Vec<Value> = ws
        .tenants
        .iter()
        .filter(|t| t.spec.status == Status::Active)
        .map(|t| tenant_view(t, workspace))
        .collect();
    json!({
        "tenants": tenants,
        "settings": if shared.settings.is_null() { json!({}) } else { shared.settings.clone() },
        "workspace": workspace,
        "tags": { "tenant": crate::addr::SHARED, "managed_by": "landlord" },
    })
}
