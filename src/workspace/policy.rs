//! Tier policy enforced at load: tenant id, customization allow-list, validation rules,
//! limits and residency. Every violation names tenant, file, field and rule.

use std::path::Path;

use regex::Regex;
use serde_json::Value;

use super::config::Config;
use super::error::{line_of, WorkspaceError};
use super::tenant::{DomainKind, Tenant};
use super::tier::{Rule, Tier};

/// Looks up a dotted path in a JSON value.
pub fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |cur, seg| cur.get(seg))
        .filter(|v| !v.is_null())
}

/// Deep-merges `over` into `base` (mappings merge, everything else replaces).
pub fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                deep_merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (_, Value::Null) => {}
        (b, o) => *b = o.clone(),
    }
}

fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, x) in o {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, x, out);
            }
        }
        Value::Null if prefix.is_empty() => {}
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// A condition compiled once and shared by every tenant that evaluates it (a tier's
/// `when:` and `required_when` run for each of thousands of tenants).
type Compiled = Result<std::sync::Arc<tera::Tera>, String>;

/// The name of the one template in a compiled condition.
const CONDITION: &str = "condition";

fn compiled(inner: &str) -> Compiled {
    static CACHE: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, Compiled>>,
    > = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(inner.to_string())
        .or_insert_with(|| {
            let mut t = tera::Tera::default();
            t.add_raw_template(CONDITION, &format!("{{% if {inner} %}}1{{% endif %}}"))
                .map(|_| std::sync::Arc::new(t))
                .map_err(|e| crate::causes::with_causes(&e))
        })
        .clone()
}

/// Evaluates a tera boolean expression (optionally wrapped in `{{ }}`) against `ctx`.
pub fn eval_condition(expr: &str, ctx: &Value) -> Result<bool, String> {
    let ctx = tera::Context::from_value(ctx.clone()).map_err(|e| e.to_string())?;
    eval_condition_in(expr, &ctx)
}

/// [`eval_condition`] against a template context already built.
pub fn eval_condition_in(expr: &str, ctx: &tera::Context) -> Result<bool, String> {
    let inner = expr
        .trim()
        .trim_start_matches("{{")
        .trim_end_matches("}}")
        .trim();
    let fail = |msg: String| format!("cannot evaluate `{inner}`: {msg}");
    let tera = compiled(inner).map_err(fail)?;
    tera.render(CONDITION, ctx)
        .map(|s| s == "1")
        .map_err(|e| fail(crate::causes::with_causes(&e)))
}

/// A tier's `pattern:` compiled once for all its tenants.
fn regex(pattern: &str, path: &Path) -> Result<Regex, WorkspaceError> {
    static CACHE: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, Result<Regex, String>>>,
    > = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| WorkspaceError::policy(path, format!("invalid pattern `{pattern}`: {e}")))
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Checks one tenant against its tier and returns its settings (defaults merged with
/// allowed overrides). `path`/`text` are the tenant file, `tier_path` the tier file.
pub fn check_tenant(
    tenant: &Tenant,
    tier_name: &str,
    tier: &Tier,
    tier_path: &Path,
    config: &Config,
    path: &Path,
    text: &str,
) -> Result<Value, Vec<WorkspaceError>> {
    let cx = Check {
        tenant,
        tier_name,
        tier,
        tier_path,
        path,
        text,
    };
    let mut errs = Vec::new();
    cx.customizations(&mut errs);
    let mut settings = if tier.defaults.is_null() {
        Value::Object(Default::default())
    } else {
        tier.defaults.clone()
    };
    deep_merge(&mut settings, &tenant.settings);
    // Validation rules run on the tenant document with settings merged.
    let mut doc = serde_json::to_value(tenant).unwrap_or(Value::Null);
    doc["settings"] = settings.clone();
    for rule in &tier.validation {
        cx.rule(rule, &doc, &mut errs);
    }
    cx.limits(&mut errs);
    cx.residency(config, &mut errs);
    if errs.is_empty() {
        Ok(settings)
    } else {
        Err(errs)
    }
}

/// One tenant checked against its tier: where errors point.
struct Check<'a> {
    tenant: &'a Tenant,
    tier_name: &'a str,
    tier: &'a Tier,
    tier_path: &'a Path,
    path: &'a Path,
    text: &'a str,
}

impl Check<'_> {
    /// An error on `field` of the tenant file, with its line.
    fn err(&self, field: &str, msg: String) -> WorkspaceError {
        WorkspaceError::policy(self.path, msg)
            .tenant(&self.tenant.id)
            .field(field)
            .at_line(line_of(self.text, field))
    }

    /// Pushes an error when `v` does not match the tier's `pattern`.
    fn pattern(
        &self,
        pat: &str,
        v: &Value,
        field: &str,
        msg: impl Fn(&str) -> String,
        errs: &mut Vec<WorkspaceError>,
    ) {
        match regex(pat, self.tier_path) {
            Ok(re) if !re.is_match(&value_text(v)) => {
                errs.push(self.err(field, msg(&value_text(v))))
            }
            Ok(_) => {}
            Err(e) => errs.push(e),
        }
    }

    /// The customization allow-list: every tenant setting must be customizable, with an
    /// allowed value.
    fn customizations(&self, errs: &mut Vec<WorkspaceError>) {
        let tier_name = self.tier_name;
        let mut overrides = Vec::new();
        leaves("", &self.tenant.settings, &mut overrides);
        for (p, v) in &overrides {
            let field = format!("settings.{p}");
            let allowed = self
                .tier
                .customizations
                .iter()
                .find(|c| p == &c.path || p.starts_with(&format!("{}.", c.path)));
            let Some(c) = allowed else {
                let list: Vec<&str> = self
                    .tier
                    .customizations
                    .iter()
                    .map(|c| c.path.as_str())
                    .collect();
                let list = if list.is_empty() {
                    "none".to_string()
                } else {
                    list.join(", ")
                };
                errs.push(self.err(&field, format!("setting `{p}` is not customizable in tier `{tier_name}` (customizable: {list})")));
                continue;
            };
            if let Some(opts) = &c.one_of {
                if !opts.contains(v) {
                    let list: Vec<String> = opts.iter().map(value_text).collect();
                    errs.push(self.err(
                        &field,
                        format!(
                            "value `{}` is not allowed by tier `{tier_name}`: expected one of {}",
                            value_text(v),
                            list.join(", ")
                        ),
                    ));
                }
            }
            if let Some(pat) = &c.pattern {
                let msg = |v: &str| {
                    format!("value `{v}` does not match pattern `{pat}` of tier `{tier_name}`")
                };
                self.pattern(pat, v, &field, msg, errs);
            }
        }
    }

    /// One validation rule of the tier.
    fn rule(&self, rule: &Rule, doc: &Value, errs: &mut Vec<WorkspaceError>) {
        let tier_name = self.tier_name;
        let v = get_path(doc, &rule.path);
        let required = rule.required
            || match &rule.required_when {
                Some(expr) => match eval_condition(expr, doc) {
                    Ok(b) => b,
                    Err(m) => {
                        errs.push(WorkspaceError::policy(
                            self.tier_path,
                            format!("rule on `{}`: {m}", rule.path),
                        ));
                        false
                    }
                },
                None => false,
            };
        let custom = |generic: String| rule.message.clone().unwrap_or(generic);
        let Some(v) = v else {
            if required {
                let why = rule
                    .required_when
                    .as_ref()
                    .map(|w| format!(" when `{w}`"))
                    .unwrap_or_default();
                errs.push(self.err(
                    &rule.path,
                    custom(format!("is required by tier `{tier_name}`{why}")),
                ));
            }
            return;
        };
        if let Some(pat) = &rule.pattern {
            let msg = |v: &str| {
                custom(format!(
                    "value `{v}` does not match pattern `{pat}` required by tier `{tier_name}`"
                ))
            };
            self.pattern(pat, v, &rule.path, msg, errs);
        }
        if let Some(opts) = &rule.one_of {
            if !opts.contains(v) {
                let list: Vec<String> = opts.iter().map(value_text).collect();
                errs.push(self.err(
                    &rule.path,
                    custom(format!(
                        "value `{}` must be one of {} (tier `{tier_name}`)",
                        value_text(v),
                        list.join(", ")
                    )),
                ));
            }
        }
    }

    /// The tier's limits (custom domains).
    fn limits(&self, errs: &mut Vec<WorkspaceError>) {
        let Some(&max) = self.tier.limits.get("custom_domains") else {
            return;
        };
        let tenant = self.tenant;
        let primary = tenant
            .domain
            .as_ref()
            .is_some_and(|d| d.kind != DomainKind::Subdomain) as u64;
        let count = primary + tenant.aliases.len() as u64;
        if count > max {
            errs.push(self.err(
                "aliases",
                format!(
                    "{count} custom domains exceed the limit of {max} of tier `{}`",
                    self.tier_name
                ),
            ));
        }
    }

    /// Residency: the tenant's region must sit inside its own residency and the tier's.
    fn residency(&self, config: &Config, errs: &mut Vec<WorkspaceError>) {
        let Some(region) = &self.tenant.region else {
            return;
        };
        for (allowed, whose) in [
            (&self.tenant.residency, "the tenant's residency"),
            (&self.tier.residency, "tier residency"),
        ] {
            if !allowed.is_empty() && !region_allowed(config, region, allowed) {
                errs.push(self.err(
                    "region",
                    format!(
                        "residency violation: region `{region}` is outside {whose} [{}]",
                        allowed.join(", ")
                    ),
                ));
            }
        }
    }
}

/// Whether `region` is listed in `allowed` directly or by its jurisdiction.
pub fn region_allowed(config: &Config, region: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| a == region)
        || config
            .jurisdiction(region)
            .is_some_and(|j| allowed.contains(&j))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_and_paths() {
        let mut a = json!({"s": {"v": false, "r": 90}});
        deep_merge(&mut a, &json!({"s": {"v": true}}));
        assert_eq!(a, json!({"s": {"v": true, "r": 90}}));
        assert_eq!(get_path(&a, "s.r"), Some(&json!(90)));
        assert_eq!(get_path(&a, "s.x"), None);
    }

    #[test]
    fn conditions() {
        let doc = json!({"domain": {"kind": "custom"}});
        assert!(eval_condition("domain.kind == 'custom'", &doc).unwrap());
        assert!(!eval_condition("{{ domain.kind == 'subdomain' }}", &doc).unwrap());
        assert!(eval_condition("nope ==", &doc).is_err());
    }

    #[test]
    fn compiled_conditions_and_patterns_answer_as_before_and_repeat_their_errors() {
        let doc = serde_json::json!({ "domain": { "kind": "custom" } });
        for _ in 0..3 {
            assert!(eval_condition("domain.kind == 'custom'", &doc).unwrap());
            assert!(!eval_condition("{{ domain.kind == 'subdomain' }}", &doc).unwrap());
        }
        let (first, again) = (
            eval_condition("nope ==", &doc).unwrap_err(),
            eval_condition("nope ==", &doc).unwrap_err(),
        );
        assert_eq!(
            first, again,
            "a broken condition fails the same way every time"
        );
        assert!(first.starts_with("cannot evaluate `nope ==`"), "{first}");
        let missing = eval_condition("tenant.missing == 1", &doc).unwrap_err();
        assert!(missing.contains("tenant.missing"), "{missing}");
        let p = Path::new("plans/basic.yaml");
        assert!(regex("^[a-z]+$", p).unwrap().is_match("acme"));
        assert!(regex("^[a-z]+$", p).unwrap().is_match("globex"));
        let (e1, e2) = (regex("(", p).unwrap_err(), regex("(", p).unwrap_err());
        assert_eq!(e1.to_string(), e2.to_string());
        assert!(e1.to_string().contains("plans/basic.yaml"), "{e1}");
    }

    #[test]
    fn residency_by_jurisdiction() {
        let c = Config::default();
        assert!(region_allowed(&c, "eu-west-1", &["eu".into()]));
        assert!(!region_allowed(&c, "us-east-1", &["eu".into()]));
        assert!(region_allowed(&c, "us-east-1", &["us-east-1".into()]));
    }
}
