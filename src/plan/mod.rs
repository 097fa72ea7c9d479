//! The change plan: what apply will do to each resource and why, in which order, and
//! against which state serial and workspace inputs. Built by a three-way comparison of
//! desired (rendered), recorded (state) and live (refresh) attributes.
//!
//! A plan never holds a sensitive value: sensitive attribute diffs are redacted when the
//! plan is built, and references are kept unresolved until apply. The plan carries its
//! own execution graph; apply executes it and never re-derives it.

mod build;
pub mod drift;
pub mod file;
pub mod guard;
pub mod refresh;
pub mod resolve;
pub mod retry;
pub mod show;
pub mod waves;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::addr::ResourceAddr;
use crate::graph::Dag;
use crate::state::{Lifecycle, StateError};
use crate::value::Attrs;

pub use build::{build, Assumed, Options};

/// Version of the plan file and `--json` schema.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// What happens to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Created.
    Create,
    /// Changed in place.
    Update,
    /// Deleted and created again.
    Replace,
    /// Deleted.
    Delete,
    /// Left alone.
    NoOp,
}

impl Action {
    /// Short verb for output.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::NoOp => "no-op",
        }
    }

    /// Whether the resource is deleted (on its own or to be created again).
    pub fn destroys(self) -> bool {
        matches!(self, Action::Delete | Action::Replace)
    }

    /// Terraform-style marker.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::NoOp => " ",
        }
    }
}

/// One attribute before and after; sensitive values are already redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttrChange {
    /// Attribute name.
    pub name: String,
    /// Value before (`None` = absent).
    pub before: Option<Value>,
    /// Value after (`None` = absent); the unknown marker when known only after apply.
    pub after: Option<Value>,
    /// The values are sensitive and shown as `(sensitive)`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    /// This attribute forces a replace.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replace: bool,
}

/// The planned change of one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    /// Address.
    pub address: ResourceAddr,
    /// What happens.
    pub action: Action,
    /// Why (`new resource`, `template changed`, `drift: ...`, `renewal due`, `tenant deleted`).
    pub reasons: Vec<String>,
    /// Attribute diffs.
    pub attributes: Vec<AttrChange>,
    /// Desired properties with references unresolved (empty for deletes).
    #[serde(default)]
    pub properties: Attrs,
    /// Dependencies recorded with the resource.
    #[serde(default)]
    pub depends_on: Vec<ResourceAddr>,
    /// Lifecycle settings.
    #[serde(default)]
    pub lifecycle: Lifecycle,
}

/// Normal plan or destroy plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Converge to the workspace.
    Normal,
    /// Delete everything in scope.
    Destroy,
}

/// A reviewable, executable plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Plan format version.
    pub format_version: u32,
    /// Normal or destroy.
    pub mode: Mode,
    /// Lineage of the state the plan was made against.
    #[serde(default)]
    pub lineage: String,
    /// State serial the plan was made against.
    pub state_serial: u64,
    /// The version of every tenant the plan touches (its changes, what they depend on,
    /// the tenants it is limited to) when it was made: a saved plan is refused when one
    /// of them changed since, and only then.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub versions: std::collections::BTreeMap<String, u64>,
    /// Digest of the workspace inputs the plan was made from.
    pub input_hash: String,
    /// Tenants the plan is limited to (empty = all).
    pub tenants: Vec<String>,
    /// Whether live objects were read.
    pub refreshed: bool,
    /// Changes (no-ops excluded), in address order.
    pub changes: Vec<ResourceChange>,
    /// Execution graph: `(i, j)` means change `i` waits for change `j`.
    pub edges: Vec<(usize, usize)>,
    /// Number of resources left alone.
    pub unchanged: usize,
    /// The bulk-change guard's verdict.
    #[serde(default)]
    pub guard: guard::Verdict,
    /// Tenants left out as unchanged since their last apply (`--changed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchanged_tenants: Option<usize>,
    /// Tenants whose certificate orders would exceed a CA limit: apply leaves them to a
    /// later run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<Deferral>,
    /// Rollout waves (`plan --rollout`, `apply --rollout`); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<waves::WavePlan>,
}

/// A tenant left to a later run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deferral {
    /// Tenant id.
    pub tenant: String,
    /// Which limit, how much of it is used, and from when a run may go on.
    pub reason: String,
}

/// Counts per action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Creates.
    pub add: usize,
    /// In-place updates.
    pub change: usize,
    /// Replaces.
    pub replace: usize,
    /// Deletes.
    pub destroy: usize,
}

impl Summary {
    /// Counts one change.
    pub fn count(&mut self, a: Action) {
        match a {
            Action::Create => self.add += 1,
            Action::Update => self.change += 1,
            Action::Replace => self.replace += 1,
            Action::Delete => self.destroy += 1,
            Action::NoOp => {}
        }
    }

    /// Whether anything changes.
    pub fn has_changes(&self) -> bool {
        *self != Summary::default()
    }

    /// Adds another summary's counts.
    pub fn add_all(&mut self, o: &Summary) {
        self.add += o.add;
        self.change += o.change;
        self.replace += o.replace;
        self.destroy += o.destroy;
    }
}

impl Plan {
    /// Counts per action.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            s.count(c.action);
        }
        s
    }

    /// The same plan without changes, edges or waves.
    pub fn clone_header(&self) -> Plan {
        Plan {
            format_version: self.format_version,
            mode: self.mode,
            lineage: self.lineage.clone(),
            state_serial: self.state_serial,
            versions: self.versions.clone(),
            input_hash: self.input_hash.clone(),
            tenants: self.tenants.clone(),
            refreshed: self.refreshed,
            changes: vec![],
            edges: vec![],
            unchanged: self.unchanged,
            guard: self.guard.clone(),
            unchanged_tenants: self.unchanged_tenants,
            deferred: self.deferred.clone(),
            waves: vec![],
        }
    }

    /// The plan without the changes of its deferred tenants (what apply executes).
    pub fn without_deferred(&self) -> Plan {
        let deferred: std::collections::BTreeSet<&str> =
            self.deferred.iter().map(|d| d.tenant.as_str()).collect();
        Plan {
            waves: self.waves.clone(),
            ..self.only(|c| !deferred.contains(c.address.scope.as_str()))
        }
    }

    /// The changes `keep` selects, with the execution graph among them, and no waves.
    pub fn only(&self, keep: impl Fn(&ResourceChange) -> bool) -> Plan {
        let kept: Vec<usize> = (0..self.changes.len())
            .filter(|&i| keep(&self.changes[i]))
            .collect();
        let index: std::collections::HashMap<usize, usize> =
            kept.iter().enumerate().map(|(n, &o)| (o, n)).collect();
        Plan {
            changes: kept.iter().map(|&i| self.changes[i].clone()).collect(),
            edges: self
                .edges
                .iter()
                .filter_map(|(i, j)| Some((*index.get(i)?, *index.get(j)?)))
                .collect(),
            ..self.clone_header()
        }
    }

    /// Whether the plan changes anything.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// The scopes the plan touches: those of its changes and of what they depend on,
    /// and the tenants it is limited to.
    pub fn touched_scopes(&self) -> Vec<String> {
        let mut s: std::collections::BTreeSet<String> = self.tenants.iter().cloned().collect();
        for c in &self.changes {
            s.insert(c.address.scope.to_string());
            s.extend(c.depends_on.iter().map(|d| d.scope.to_string()));
        }
        s.into_iter().collect()
    }

    /// The execution graph over `changes`.
    pub fn dag(&self) -> Dag {
        let mut g = Dag::new(self.changes.len());
        for &(i, j) in &self.edges {
            g.add_edge(i, j);
        }
        g
    }
}

/// Planning failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// State could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// A provider call failed.
    #[error("{address}: {message}")]
    Provider {
        /// Resource concerned.
        address: ResourceAddr,
        /// What failed.
        message: String,
    },
    /// A plan would destroy a protected resource.
    #[error("{address}: the plan would {action} it, but it has `lifecycle.prevent_destroy`; unset it in the template or `landlord state rm` the resource")]
    PreventDestroy {
        /// Resource concerned.
        address: ResourceAddr,
        /// `delete` or `replace`.
        action: &'static str,
    },
    /// A reference cannot be resolved.
    #[error("{address}: {message}")]
    Reference {
        /// Resource concerned.
        address: ResourceAddr,
        /// What is wrong.
        message: String,
    },
}
