//! Workspace loading: `landlord.toml`, tenants, tiers, modules and `shared.yaml` into a
//! validated model, with tier policy enforced. Tiers and modules are looked up in the
//! workspace first, then in the built-in library.
//!
//! Imports only `addr` from the crate; never state, providers or the engine.

pub mod config;
pub mod depth;
pub mod error;
pub mod fleet;
pub mod format;
pub mod inputs;
pub mod library;
pub mod policy;
pub mod tenant;
pub mod tier;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use config::Config;
pub use error::{ErrorKind, WorkspaceError};
pub use fleet::{GuardConfig, Limits, RolloutConfig, TenantFacts, WaveSpec};
pub use tenant::{Domain, DomainKind, Status, Tenant};
pub use tier::{Module, ModuleSpec, ModuleUse, Shared, Tier};

use crate::addr::is_valid_tenant_id;

/// A tenant after validation.
#[derive(Debug, Clone)]
pub struct LoadedTenant {
    /// The tenant file as written.
    pub spec: Tenant,
    /// Its file, relative to the workspace.
    pub path: PathBuf,
    /// Tier defaults merged with the tenant's allowed overrides.
    pub settings: Value,
    /// Digest of the file's text (see `inputs`).
    pub digest: String,
}

/// A loaded tier and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedTier {
    /// The tier.
    pub tier: Tier,
    /// `plans/<name>.yaml` or `builtin:plans/<name>.yaml`.
    pub origin: PathBuf,
    /// Digest of the file's text (see `inputs`).
    pub digest: String,
}

/// A validated workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The workspace directory.
    pub root: PathBuf,
    /// `landlord.toml`.
    pub config: Config,
    /// Tenants, sorted by id.
    pub tenants: Vec<LoadedTenant>,
    /// Tiers used by the tenants, by name.
    pub tiers: BTreeMap<String, LoadedTier>,
    /// Modules used by the tiers and `shared.yaml`, by name.
    pub modules: BTreeMap<String, Module>,
    /// `shared.yaml`, if present.
    pub shared: Option<Shared>,
    /// Digest of every input file (and the built-in library): saved plans record it.
    pub input_hash: String,
    /// Digest of `shared.yaml` (empty without one; see `inputs`).
    pub shared_digest: String,
}

/// Every problem found while loading; never empty.
#[derive(Debug, thiserror::Error)]
pub struct LoadErrors(pub Vec<WorkspaceError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl From<WorkspaceError> for LoadErrors {
    fn from(e: WorkspaceError) -> Self {
        LoadErrors(vec![e])
    }
}

fn parse_yaml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, WorkspaceError> {
    if let Some(line) = depth::too_deep(text) {
        return Err(WorkspaceError::syntax(
            path,
            format!(
                "YAML nested deeper than {} levels (refused before parsing)",
                depth::MAX_DEPTH
            ),
        )
        .at_line(Some(line)));
    }
    serde_yaml_ng::from_str(text).map_err(|e| WorkspaceError::yaml(path, &e))
}

/// A workspace file's text; `None` when there is no such file.
fn read_file(root: &Path, rel: &Path) -> Result<Option<String>, WorkspaceError> {
    match std::fs::read_to_string(root.join(rel)) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(WorkspaceError::io(rel, e)),
    }
}

/// A tenant file read and parsed: what needs nothing else, done over the cores.
struct ReadTenant {
    stem: String,
    rel: PathBuf,
    /// The text (empty for a file gone since it was listed) and what it parses to.
    read: Result<(String, Result<Tenant, WorkspaceError>), WorkspaceError>,
}

impl ReadTenant {
    fn new(root: &Path, stem: &str, fname: &str) -> ReadTenant {
        let rel = PathBuf::from("tenants").join(fname);
        let read = read_file(root, &rel).map(|text| {
            let text = text.unwrap_or_default();
            let spec = parse_yaml(&rel, &text);
            (text, spec)
        });
        ReadTenant {
            stem: stem.to_string(),
            rel,
            read,
        }
    }
}

/// A tenant whose id and tier are in order, before its tier's policy is applied.
struct Checked {
    spec: Tenant,
    rel: PathBuf,
    text: String,
}

struct Loader {
    root: PathBuf,
    hasher: Sha256,
    /// Tiers whose file failed to load (reported once; their tenants add nothing).
    broken_tiers: std::collections::BTreeSet<String>,
}

/// Tenant files of the workspace as (id, file name), sorted.
fn tenant_files(root: &Path) -> Vec<(String, String)> {
    let mut names = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root.join("tenants")) {
        for entry in rd.flatten() {
            let n = entry.file_name().to_string_lossy().to_string();
            if let Some(stem) = n.strip_suffix(".yaml").or_else(|| n.strip_suffix(".yml")) {
                names.push((stem.to_string(), n));
            }
        }
    }
    names.sort();
    names
}

impl Loader {
    /// `landlord.toml`, with the workspace named after its directory when unnamed.
    fn config(&mut self) -> Result<Config, WorkspaceError> {
        let cfg_path = PathBuf::from("landlord.toml");
        let cfg_text = self.read(&cfg_path)?.ok_or_else(|| {
            WorkspaceError::io(
                self.root.join("landlord.toml"),
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not a landlord workspace (no landlord.toml); use -C DIR",
                ),
            )
        })?;
        let mut config = Config::parse(&cfg_path, &cfg_text)?;
        if config.workspace.name.is_empty() {
            config.workspace.name = self
                .root
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
                .unwrap_or_else(|| "workspace".into());
        }
        Ok(config)
    }

    /// One tenant file as read and parsed: recorded in the input digest, its id checked
    /// and its tier loaded into `tiers` on first use. The tier's policy comes after.
    fn tenant(
        &mut self,
        read: ReadTenant,
        tiers: &mut BTreeMap<String, Option<LoadedTier>>,
    ) -> Result<Checked, Vec<WorkspaceError>> {
        let ReadTenant { stem, rel, read } = read;
        let (text, spec) = read.map_err(|e| vec![e])?;
        self.record(&rel, &text);
        let spec: Tenant = spec.map_err(|e| vec![e.tenant(&stem)])?;
        let line = |f: &str| error::line_of(&text, f);
        let policy = |msg: String, field: &str| {
            vec![WorkspaceError::policy(&rel, msg)
                .tenant(&spec.id)
                .field(field)
                .at_line(line(field))]
        };
        if !is_valid_tenant_id(&spec.id) {
            return Err(policy(
                format!(
                    "invalid tenant id `{}`: expected `^[a-z][a-z0-9-]{{1,62}}$`",
                    spec.id
                ),
                "id",
            ));
        }
        if spec.id != stem {
            return Err(policy(
                format!("tenant id `{}` must equal the file name `{stem}`", spec.id),
                "id",
            ));
        }
        let mut errs = Vec::new();
        if !tiers.contains_key(&spec.plan) {
            let t = self.tier(&spec.plan).unwrap_or_else(|e| {
                errs.push(e);
                self.broken_tiers.insert(spec.plan.clone());
                None
            });
            tiers.insert(spec.plan.clone(), t);
        }
        if let Some(Some(_)) = tiers.get(&spec.plan) {
            return Ok(Checked { spec, rel, text });
        }
        if self.broken_tiers.contains(&spec.plan) {
            // The tier file itself is wrong, and says so once.
            return Err(errs);
        }
        let msg = format!(
            "unknown tier `{}` (available: {})",
            spec.plan,
            self.tier_names().join(", ")
        );
        errs.append(&mut policy(msg, "plan"));
        Err(errs)
    }

    /// Tier names of the workspace and the built-in library, sorted.
    fn tier_names(&self) -> Vec<String> {
        let mut avail = library::tier_names();
        if let Ok(rd) = std::fs::read_dir(self.root.join("plans")) {
            avail.extend(rd.flatten().filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".yaml")
                    .map(str::to_string)
            }));
        }
        avail.sort();
        avail.dedup();
        avail
    }

    /// Every module the tiers and `shared.yaml` use, each loaded once.
    fn modules(
        &mut self,
        tiers: &BTreeMap<String, LoadedTier>,
        shared: Option<&Shared>,
        shared_path: &Path,
        errs: &mut Vec<WorkspaceError>,
    ) -> BTreeMap<String, Module> {
        let mut modules = BTreeMap::new();
        let uses = tiers
            .values()
            .flat_map(|t| t.tier.modules.iter().map(move |u| (u, t.origin.clone())))
            .chain(
                shared
                    .iter()
                    .flat_map(|s| s.modules.iter().map(|u| (u, shared_path.to_path_buf()))),
            );
        for (u, used_in) in uses {
            if !modules.contains_key(&u.module) {
                match self.module(&u.module, &used_in) {
                    Ok(m) => {
                        modules.insert(u.module.clone(), m);
                    }
                    Err(e) => errs.push(e),
                }
            }
        }
        modules
    }

    fn read(&mut self, rel: &Path) -> Result<Option<String>, WorkspaceError> {
        let text = read_file(&self.root, rel)?;
        if let Some(t) = &text {
            self.record(rel, t);
        }
        Ok(text)
    }

    /// Adds a file read to the input digest.
    fn record(&mut self, rel: &Path, text: &str) {
        self.hasher.update(rel.to_string_lossy().as_bytes());
        self.hasher.update([0]);
        self.hasher.update(text.as_bytes());
        self.hasher.update([0]);
    }

    fn tier(&mut self, name: &str) -> Result<Option<LoadedTier>, WorkspaceError> {
        let rel = PathBuf::from(format!("plans/{name}.yaml"));
        let (text, origin) = match self.read(&rel)? {
            Some(t) => (t, rel),
            None => match library::tier(name) {
                Some(t) => (
                    t.to_string(),
                    PathBuf::from(format!("builtin:plans/{name}.yaml")),
                ),
                None => return Ok(None),
            },
        };
        let tier: Tier = parse_yaml(&origin, &text)?;
        Ok(Some(LoadedTier {
            tier,
            origin,
            digest: inputs::text_digest(text.as_bytes()),
        }))
    }

    fn module(&mut self, name: &str, used_in: &Path) -> Result<Module, WorkspaceError> {
        if name.split('/').count() != 2
            || name
                .split('/')
                .any(|s| s.is_empty() || s == ".." || s == ".")
        {
            return Err(WorkspaceError::policy(
                used_in,
                format!("invalid module name `{name}`: expected `<group>/<name>`"),
            ));
        }
        let dir = self.root.join("modules").join(name);
        let (files, origin): (Vec<(String, String)>, String) = if dir.is_dir() {
            let mut files = Vec::new();
            let rd = std::fs::read_dir(&dir).map_err(|e| WorkspaceError::io(&dir, e))?;
            for entry in rd {
                let entry = entry.map_err(|e| WorkspaceError::io(&dir, e))?;
                let fname = entry.file_name().to_string_lossy().to_string();
                if fname == "module.yaml" || fname.ends_with(".tera") {
                    let rel = PathBuf::from("modules").join(name).join(&fname);
                    let text = self.read(&rel)?.unwrap_or_default();
                    files.push((fname, text));
                }
            }
            files.sort();
            (files, format!("modules/{name}"))
        } else if let Some(files) = library::module(name) {
            (
                files.into_iter().map(|(n, t)| (n, t.to_string())).collect(),
                format!("builtin:modules/{name}"),
            )
        } else {
            return Err(WorkspaceError::policy(
                used_in,
                format!("unknown module `{name}`: not in `modules/` of the workspace nor in the built-in library"),
            ));
        };
        let digest = inputs::pairs_digest(files.iter().map(|(n, t)| (n.as_str(), t.as_str())));
        let mut spec = ModuleSpec::default();
        let mut templates = Vec::new();
        for (fname, text) in files {
            if fname == "module.yaml" {
                spec = parse_yaml(&PathBuf::from(format!("{origin}/module.yaml")), &text)?;
            } else {
                templates.push((format!("{origin}/{fname}"), text));
            }
        }
        if templates.is_empty() {
            return Err(WorkspaceError::policy(
                origin.clone(),
                "module has no `*.tera` template",
            ));
        }
        Ok(Module {
            name: name.to_string(),
            origin,
            spec,
            templates,
            digest,
        })
    }
}

/// The ids of the workspace's tenant files, sorted; nothing is parsed.
pub fn tenant_ids(root: &Path) -> Vec<String> {
    tenant_files(root).into_iter().map(|(id, _)| id).collect()
}

/// Reads only `landlord.toml` (for commands that need the state but not the tenants).
pub fn load_config(root: &Path) -> Result<Config, LoadErrors> {
    let path = root.join("landlord.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        WorkspaceError::io(
            &path,
            std::io::Error::new(
                e.kind(),
                format!("not a landlord workspace ({e}); use -C DIR"),
            ),
        )
    })?;
    Ok(Config::parse(Path::new("landlord.toml"), &text)?)
}

impl Workspace {
    /// Loads and validates the workspace at `root`.
    pub fn load(root: &Path) -> Result<Workspace, LoadErrors> {
        Self::load_only(root, &[])
    }

    /// Loads the workspace with only the tenant files of `only` (every tenant when empty,
    /// or when it names `_shared`, whose templates may list every tenant): a run limited to
    /// some tenants neither reads nor checks the others. The input digest covers what was
    /// read, so a saved plan is checked against the same files.
    pub fn load_only(root: &Path, only: &[String]) -> Result<Workspace, LoadErrors> {
        let selected = crate::addr::Selection::new(only);
        let all = selected.holds(crate::addr::SHARED);
        let select = |stem: &str| all || selected.holds(stem);
        let mut ld = Loader {
            root: root.to_path_buf(),
            hasher: Sha256::new(),
            broken_tiers: Default::default(),
        };
        ld.hasher.update(library::digest().as_bytes());
        let config = ld.config()?;
        let mut errs = Vec::new();
        let mut tiers: BTreeMap<String, Option<LoadedTier>> = BTreeMap::new();
        let mut tenants = Vec::new();
        let files = tenant_files(root);
        for pair in files.windows(2) {
            if pair[0].0 == pair[1].0 {
                errs.push(WorkspaceError::policy(
                    PathBuf::from("tenants").join(&pair[1].1),
                    format!(
                        "tenant `{}` is defined twice: in tenants/{} and tenants/{}; keep one file per tenant",
                        pair[0].0, pair[0].1, pair[1].1
                    ),
                ));
            }
        }
        if !errs.is_empty() {
            return Err(LoadErrors(errs));
        }
        // Reading and parsing go over the cores; the digest, ids and tiers follow in file
        // order, then each tier's policy over the cores again.
        let files: Vec<(String, String)> =
            files.into_iter().filter(|(stem, _)| select(stem)).collect();
        let read = crate::parallel::map(&files, |(stem, fname)| ReadTenant::new(root, stem, fname));
        let checked: Vec<Result<Checked, Vec<WorkspaceError>>> =
            read.into_iter().map(|r| ld.tenant(r, &mut tiers)).collect();
        let settings = crate::parallel::map(&checked, |c| {
            let Ok(c) = c else { return None };
            let tier = tiers.get(&c.spec.plan)?.as_ref()?;
            Some(
                policy::check_tenant(
                    &c.spec,
                    &c.spec.plan,
                    &tier.tier,
                    &tier.origin,
                    &config,
                    &c.rel,
                    &c.text,
                )
                .map(|settings| (settings, inputs::text_digest(c.text.as_bytes()))),
            )
        });
        for (c, settings) in checked.into_iter().zip(settings) {
            match (c, settings) {
                (Ok(c), Some(Ok((settings, digest)))) => tenants.push(LoadedTenant {
                    digest,
                    spec: c.spec,
                    path: c.rel,
                    settings,
                }),
                (Err(mut e), _) | (_, Some(Err(mut e))) => errs.append(&mut e),
                (Ok(_), None) => {}
            }
        }
        let shared_path = PathBuf::from("shared.yaml");
        let mut shared_digest = String::new();
        let shared: Option<Shared> = match ld.read(&shared_path) {
            Ok(Some(t)) => {
                shared_digest = inputs::text_digest(t.as_bytes());
                parse_yaml(&shared_path, &t).map_err(|e| errs.push(e)).ok()
            }
            Ok(None) => None,
            Err(e) => {
                errs.push(e);
                None
            }
        };
        let tiers: BTreeMap<String, LoadedTier> = tiers
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();
        let modules = ld.modules(&tiers, shared.as_ref(), &shared_path, &mut errs);
        if !errs.is_empty() {
            return Err(LoadErrors(errs));
        }
        let input_hash = hex::encode(ld.hasher.finalize());
        Ok(Workspace {
            root: root.to_path_buf(),
            config,
            tenants,
            tiers,
            modules,
            shared,
            input_hash,
            shared_digest,
        })
    }

    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(&self.config.state.path)
    }

    /// A tenant by id.
    pub fn tenant(&self, id: &str) -> Option<&LoadedTenant> {
        self.tenants
            .binary_search_by(|t| t.spec.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.tenants[i])
    }
}
