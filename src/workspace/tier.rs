//! Tiers (`plans/<name>.yaml`) and modules (`modules/<group>/<name>/`): their raw shapes.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// One module used by a tier or by `shared.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleUse {
    /// Module name, `<group>/<name>`.
    #[serde(rename = "use")]
    pub module: String,
    /// Input values (may contain template expressions).
    #[serde(default)]
    pub inputs: serde_json::Map<String, Value>,
    /// A template expression; the module is used only when it is true.
    #[serde(default)]
    pub when: Option<String>,
}

/// A setting path a tenant may override.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customization {
    /// Dotted path under `settings`; covers everything below it.
    pub path: String,
    /// Allowed values, when restricted.
    #[serde(default)]
    pub one_of: Option<Vec<Value>>,
    /// Regex a string value must match.
    #[serde(default)]
    pub pattern: Option<String>,
}

/// A validation rule on the tenant document (settings merged).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Dotted path from the tenant root, e.g. `domain.name` or `settings.storage.retention_days`.
    pub path: String,
    /// The value must be present.
    #[serde(default)]
    pub required: bool,
    /// The value must be present when this expression holds.
    #[serde(default)]
    pub required_when: Option<String>,
    /// Regex a string value must match.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Allowed values.
    #[serde(default)]
    pub one_of: Option<Vec<Value>>,
    /// Message shown instead of the generic one.
    #[serde(default)]
    pub message: Option<String>,
}

/// A tier: which modules a tenant gets, defaults, allowed customizations and rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// What the tier offers.
    #[serde(default)]
    pub description: String,
    /// Modules rendered for each tenant of the tier.
    #[serde(default)]
    pub modules: Vec<ModuleUse>,
    /// Default settings.
    #[serde(default)]
    pub defaults: Value,
    /// The allow-list of overridable settings.
    #[serde(default)]
    pub customizations: Vec<Customization>,
    /// Validation rules.
    #[serde(default)]
    pub validation: Vec<Rule>,
    /// Numeric limits, e.g. `custom_domains`.
    #[serde(default)]
    pub limits: BTreeMap<String, u64>,
    /// Feature flags, available to templates.
    #[serde(default)]
    pub features: Vec<String>,
    /// Allowed jurisdictions or regions for every tenant of the tier (empty = any).
    #[serde(default)]
    pub residency: Vec<String>,
}

/// `shared.yaml`: workspace-wide modules rendered once under `_shared/`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Shared {
    /// Modules rendered once.
    #[serde(default)]
    pub modules: Vec<ModuleUse>,
    /// Settings available to shared templates as `settings`.
    #[serde(default)]
    pub settings: Value,
}

/// Type of a module input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    /// Text.
    String,
    /// true/false.
    Bool,
    /// Integer.
    Int,
    /// Any number.
    Number,
    /// A list.
    List,
    /// A mapping.
    Map,
    /// Anything.
    Any,
}

impl InputType {
    /// Whether `v` has this type.
    pub fn accepts(self, v: &Value) -> bool {
        match self {
            InputType::String => v.is_string(),
            InputType::Bool => v.is_boolean(),
            InputType::Int => v.is_i64() || v.is_u64(),
            InputType::Number => v.is_number(),
            InputType::List => v.is_array(),
            InputType::Map => v.is_object(),
            InputType::Any => true,
        }
    }
}

/// A declared module input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Expected type.
    #[serde(rename = "type", default = "any")]
    pub kind: InputType,
    /// Default value.
    #[serde(default)]
    pub default: Option<Value>,
    /// Whether a value must be given.
    #[serde(default)]
    pub required: bool,
    /// What the input does.
    #[serde(default)]
    pub description: String,
}

fn any() -> InputType {
    InputType::Any
}

/// `module.yaml`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModuleSpec {
    /// What the module provisions.
    #[serde(default)]
    pub description: String,
    /// Declared inputs.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputSpec>,
}

/// A loaded module: its spec and its templates.
#[derive(Debug, Clone)]
pub struct Module {
    /// `<group>/<name>`.
    pub name: String,
    /// Where it came from, for messages (`modules/local/site` or `builtin:modules/local/site`).
    pub origin: String,
    /// The parsed `module.yaml`.
    pub spec: ModuleSpec,
    /// `(template name, source)` of each `*.tera` file, sorted by name.
    pub templates: Vec<(String, String)>,
    /// Digest of its files (see `inputs`).
    pub digest: String,
}
