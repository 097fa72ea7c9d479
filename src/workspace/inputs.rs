//! Per-tenant input digests: what a tenant's desired resources are made of (its file, its
//! tier, the modules the tier lists, `shared.yaml`, the settings templates see, the
//! library), each hashed on its own so `plan --changed` can tell which tenants changed
//! since their last apply by reading files, without parsing or rendering the others.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{library, Config};

/// The scope name of workspace resources (as in addresses).
const SHARED: &str = crate::addr::SHARED;

/// A digest of some text: 128 bits of SHA-256, in hex.
pub fn text_digest(text: &[u8]) -> String {
    hex::encode(&Sha256::digest(text)[..16])
}

/// A digest of `(name, text)` pairs in order: a module's files sorted by name, or every
/// tenant id with its file's digest.
pub fn pairs_digest<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut h = Sha256::new();
    for (name, text) in pairs {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// The digest of what `landlord.toml` gives templates and providers (workspace name and
/// variables, provider settings, regions); `[state]`, `[guard]` and `[rollout]` change
/// no tenant's resources.
pub fn settings_digest(config: &Config) -> String {
    let parts = serde_json::json!({
        "name": config.workspace.name,
        "vars": config.workspace.vars,
        "providers": config.providers,
        "regions": config.regions,
    });
    text_digest(parts.to_string().as_bytes())
}

/// This landlord's version and its built-in library.
pub fn library_digest() -> &'static str {
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIGEST.get_or_init(|| {
        text_digest(format!("{} {}", env!("CARGO_PKG_VERSION"), library::digest()).as_bytes())
    })
}

/// What one tenant (or `_shared`) was made of when it was last applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantInputs {
    /// The tenant file (`shared.yaml` for `_shared`).
    pub file: String,
    /// Tier name (empty for `_shared`).
    #[serde(default)]
    pub tier: String,
    /// The tier file.
    #[serde(default)]
    pub tier_digest: String,
    /// The modules the tier (or `shared.yaml`) lists, by name.
    pub modules: BTreeMap<String, String>,
    /// `shared.yaml` (templates may read it).
    pub shared: String,
    /// See [`settings_digest`].
    pub settings: String,
    /// See [`library_digest`].
    pub library: String,
    /// For `_shared` only, when its templates read the tenant list: every tenant id with
    /// its file digest.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fleet: String,
}

/// Reads digests from the workspace files, each tier and module once.
pub struct Scanner {
    root: PathBuf,
    shared: String,
    settings: String,
    library: String,
    tiers: HashMap<String, String>,
    modules: HashMap<String, String>,
}

impl Scanner {
    /// A scanner of the workspace at `root` with its parsed `config`.
    pub fn new(root: &Path, config: &Config) -> Scanner {
        let shared = std::fs::read(root.join("shared.yaml"))
            .map(|b| text_digest(&b))
            .unwrap_or_default();
        Scanner {
            root: root.to_path_buf(),
            shared,
            settings: settings_digest(config),
            library: library_digest().to_string(),
            tiers: HashMap::new(),
            modules: HashMap::new(),
        }
    }

    /// Every tenant file as `(id, digest of its bytes)`, sorted by id.
    pub fn tenant_files(&self) -> Vec<(String, String)> {
        super::tenant_files(&self.root)
            .into_iter()
            .filter_map(|(id, fname)| {
                let bytes = std::fs::read(self.root.join("tenants").join(fname)).ok()?;
                Some((id, text_digest(&bytes)))
            })
            .collect()
    }

    fn tier(&mut self, name: &str) -> &str {
        let root = &self.root;
        self.tiers.entry(name.to_string()).or_insert_with(|| {
            match std::fs::read(root.join("plans").join(format!("{name}.yaml"))) {
                Ok(b) => text_digest(&b),
                Err(_) => library::tier(name)
                    .map(|t| text_digest(t.as_bytes()))
                    .unwrap_or_default(),
            }
        })
    }

    fn module(&mut self, name: &str) -> &str {
        let root = &self.root;
        self.modules
            .entry(name.to_string())
            .or_insert_with(|| read_module_digest(root, name).unwrap_or_default())
    }

    /// Whether a tenant recorded with `was` and whose file now digests to `file` is made
    /// of the same inputs now.
    pub fn unchanged(&mut self, was: &TenantInputs, file: &str) -> bool {
        if was.file != file
            || was.shared != self.shared
            || was.settings != self.settings
            || was.library != self.library
        {
            return false;
        }
        if !was.tier.is_empty() && self.tier(&was.tier) != was.tier_digest {
            return false;
        }
        was.modules
            .iter()
            .all(|(name, digest)| self.module(name) == digest.as_str())
    }

    /// The digest of `shared.yaml` as read now.
    pub fn shared_file(&self) -> &str {
        &self.shared
    }
}

/// A module's digest as it reads from the workspace (or the library) now.
fn read_module_digest(root: &Path, name: &str) -> Option<String> {
    let dir = root.join("modules").join(name);
    if dir.is_dir() {
        let mut files = vec![];
        for e in std::fs::read_dir(&dir).ok()?.flatten() {
            let fname = e.file_name().to_string_lossy().to_string();
            if fname == "module.yaml" || fname.ends_with(".tera") {
                files.push((fname, std::fs::read_to_string(e.path()).ok()?));
            }
        }
        files.sort();
        return Some(pairs_digest(
            files.iter().map(|(n, t)| (n.as_str(), t.as_str())),
        ));
    }
    let files = library::module(name)?;
    Some(pairs_digest(files.iter().map(|(n, t)| (n.as_str(), *t))))
}

/// The digests every tenant of a loaded workspace shares, taken once.
pub struct Inputs<'a> {
    ws: &'a super::Workspace,
    settings: String,
}

impl super::Workspace {
    /// The inputs of this workspace as loaded, to ask per tenant.
    pub fn inputs(&self) -> Inputs<'_> {
        Inputs {
            ws: self,
            settings: settings_digest(&self.config),
        }
    }
}

impl Inputs<'_> {
    /// What tenant `id` (or `_shared`) is made of, as loaded; `None` for a tenant this
    /// workspace did not load.
    pub fn of(&self, id: &str) -> Option<TenantInputs> {
        let ws = self.ws;
        let settings = self.settings.clone();
        let library = library_digest().to_string();
        let shared = ws.shared_digest.clone();
        let modules_of = |uses: &mut dyn Iterator<Item = &String>| {
            uses.filter_map(|m| Some((m.clone(), ws.modules.get(m)?.digest.clone())))
                .collect::<BTreeMap<_, _>>()
        };
        if id == SHARED {
            // Shared templates see every tenant as `tenants`; those that never name it
            // do not change with the tenant list.
            let reads_tenants = ws.shared.iter().flat_map(|s| &s.modules).any(|u| {
                ws.modules
                    .get(&u.module)
                    .is_some_and(|m| m.templates.iter().any(|(_, src)| src.contains("tenants")))
            });
            let fleet = if reads_tenants {
                pairs_digest(
                    ws.tenants
                        .iter()
                        .map(|t| (t.spec.id.as_str(), t.digest.as_str())),
                )
            } else {
                String::new()
            };
            let modules = modules_of(
                &mut ws
                    .shared
                    .iter()
                    .flat_map(|s| s.modules.iter().map(|u| &u.module)),
            );
            return Some(TenantInputs {
                file: shared.clone(),
                tier: String::new(),
                tier_digest: String::new(),
                modules,
                shared,
                settings,
                library,
                fleet,
            });
        }
        let t = ws.tenant(id)?;
        let tier = ws.tiers.get(&t.spec.plan)?;
        Some(TenantInputs {
            file: t.digest.clone(),
            tier: t.spec.plan.clone(),
            tier_digest: tier.digest.clone(),
            modules: modules_of(&mut tier.tier.modules.iter().map(|u| &u.module)),
            shared,
            settings,
            library,
            fleet: String::new(),
        })
    }
}
