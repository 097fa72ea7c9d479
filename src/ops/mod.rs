//! One function per operation (validate, plan, apply, destroy, drift, state commands):
//! load the workspace, open state under its lock, run the engine. The CLI only parses
//! arguments into these options and renders the results.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod batches;
pub mod ca_limits;
pub mod changed;
pub mod rollout;
pub mod shard;
pub mod state;

use crate::addr::ResourceAddr;
use crate::apply::{self, Hook};
use crate::plan::drift;
use crate::plan::{self, file, Plan, PlanError};
use crate::providers::{self, Registry};
use crate::render::{self, Desired, RenderErrors};
use crate::state::crypto::{self, KeySource};
use crate::state::{
    now_rfc3339, LockInfo, PgLocation, PgStore, ResourceRecord, RunRecord, S3Location, S3Store,
    SledStore, StateError, StateStore,
};
use crate::workspace::{self, Config, LoadErrors, Workspace};

/// An operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// The workspace cannot be loaded.
    #[error(transparent)]
    Load(#[from] LoadErrors),
    /// Templates cannot be rendered.
    #[error(transparent)]
    Render(#[from] RenderErrors),
    /// Provider settings are invalid.
    #[error(transparent)]
    Settings(#[from] providers::SettingsError),
    /// State failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Planning failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A saved plan cannot be used.
    #[error(transparent)]
    PlanFile(#[from] file::PlanFileError),
    /// Apply stopped.
    #[error(transparent)]
    Apply(#[from] apply::ApplyError),
    /// The bulk-change guard refuses the plan.
    #[error("{0}\nNothing was changed. Review the plan, then apply with --allow-bulk (or make the saved plan with it).")]
    Guard(String),
    /// The request itself is wrong.
    #[error("{0}")]
    Usage(String),
    /// The plan's text could not be written.
    #[error("writing the plan: {0}")]
    Output(std::io::Error),
}

/// A workspace with its providers, ready for operations.
pub struct Session {
    /// The loaded workspace.
    pub ws: Workspace,
    /// Providers for its resource types.
    pub registry: Registry,
}

/// Loads and validates the workspace at `dir` and builds its providers.
pub fn open(dir: &Path) -> Result<Session, OpsError> {
    open_for(dir, &[])
}

/// [`open`] for a run limited to `tenants`: only their tenant files are read.
pub fn open_for(dir: &Path, tenants: &[String]) -> Result<Session, OpsError> {
    let ws = Workspace::load_only(dir, tenants)?;
    let settings = providers::Settings {
        root: ws.root.clone(),
        tables: ws.config.providers.clone(),
    };
    let registry = Registry::new(&settings)?;
    Ok(Session { ws, registry })
}

/// State opened for a command, and where its master key came from.
pub struct OpenState {
    /// The store.
    pub store: Box<dyn StateStore>,
    /// Master key source (`Generated` means a key file was just created).
    pub key: KeySource,
    master: crypto::Key,
    scopes: Vec<String>,
}

impl OpenState {
    /// The master key, which also signs saved plans.
    pub fn master(&self) -> &crypto::Key {
        &self.master
    }

    /// Whether this run may change `scope`: it holds the whole state, the workspace
    /// lock, or that tenant's lock.
    pub fn holds(&self, scope: &str) -> bool {
        self.store.exclusive() || self.scopes.iter().any(|s| s == "workspace" || s == scope)
    }

    /// Records lock scopes (`workspace` or tenant ids) for the life of this value.
    pub fn lock_scopes(&mut self, scopes: &[String], command: &str) -> Result<(), OpsError> {
        // The store takes them in one order for every run, so two runs never wait for
        // each other in a circle.
        let infos: Vec<LockInfo> = scopes
            .iter()
            .map(|s| holder(s, command, Duration::from_secs(3600)))
            .collect();
        self.store.lock_many(&infos)?;
        self.scopes.extend(scopes.iter().cloned());
        Ok(())
    }
}

impl Drop for OpenState {
    fn drop(&mut self) {
        let _ = self.store.unlock_many(&self.scopes);
    }
}

/// Who runs landlord, for locks, history and audit: `LANDLORD_ACTOR` (a CI job id, a
/// pull-request author), else the OS user of this process (by uid, as `$USER` is unset
/// in many containers), else `uid <n>`.
pub fn actor() -> String {
    if let Some(a) = std::env::var("LANDLORD_ACTOR")
        .ok()
        .filter(|a| !a.trim().is_empty())
    {
        return a;
    }
    // SAFETY: getpwuid_r writes into the buffers we own and returns a pointer into them.
    let uid = unsafe { libc::geteuid() };
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: pw_name points at a NUL-terminated string inside `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        if let Ok(n) = name.to_str() {
            if !n.is_empty() {
                return n.to_string();
            }
        }
    }
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid {uid}"))
}

/// Who we are, for locks and history.
pub fn holder(scope: &str, command: &str, ttl: Duration) -> LockInfo {
    let expiry = time::OffsetDateTime::now_utc() + ttl;
    LockInfo {
        scope: scope.into(),
        owner: actor(),
        host: crate::state::hostname(),
        pid: std::process::id(),
        command: command.into(),
        since: now_rfc3339(),
        process_start: crate::state::holder::process_start(std::process::id()),
        expiry: expiry
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    }
}

/// Where an `s3` state lives, from `[state]`.
fn s3_location(config: &Config) -> Option<S3Location> {
    (config.state.backend == "s3").then(|| S3Location {
        bucket: config.state.bucket.clone().unwrap_or_default(),
        key: config
            .state
            .key
            .clone()
            .unwrap_or_else(|| "landlord/state.json".into()),
        region: config.state.region.clone(),
    })
}

/// Where a `postgres` state lives, from `[state]` (and `[providers.postgresql.<server>]`).
fn pg_location(root: &Path, config: &Config) -> Result<Option<PgLocation>, OpsError> {
    let st = &config.state;
    if st.backend != "postgres" {
        return Ok(None);
    }
    let bad = |message: String| StateError::Storage {
        path: "[state] in landlord.toml".into(),
        message,
    };
    let conn = match (&st.url_env, &st.server) {
        (Some(var), _) => {
            let url = std::env::var(var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    bad(format!(
                        "environment variable `{var}` (url_env) is not set: set it to the state database's connection URL, e.g. postgresql://landlord:PASSWORD@db.internal:5432/landlord"
                    ))
                })?;
            providers::postgres::state_at_url(&url, root)
                .map_err(|m| bad(format!("{m} (from `{var}`)")))?
        }
        (None, Some(server)) => providers::postgres::state_on_server(
            &config.providers,
            root,
            server,
            st.database.as_deref(),
        )
        .map_err(bad)?,
        (None, None) => return Err(bad("`url_env` or `server` is required".into()).into()),
    };
    Ok(Some(PgLocation {
        config: conn.config,
        tls: conn.tls,
        schema: st.schema.clone().unwrap_or_else(|| "landlord".into()),
        describe: conn.describe,
    }))
}

/// The workspace's master key (`LANDLORD_MASTER_KEY`, a KMS-held key file or the key
/// file), or `None` when there is none yet.
pub fn find_master_key(
    root: &Path,
    config: &Config,
) -> Result<Option<(crypto::Key, KeySource)>, OpsError> {
    let env = std::env::var(crypto::MASTER_KEY_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let key_file = root.join(&config.state.key_file);
    Ok(match (&env, &config.state.kms_key_id) {
        (None, Some(kms)) => Some(crypto::kms_master_key(
            kms,
            config.state.region.as_deref(),
            &key_file,
        )?),
        _ => crypto::read_master_key(env, &key_file)?,
    })
}

/// Opens the state of `ws`, waiting up to `lock_timeout`, and locks `scopes`
/// (`workspace` or tenant ids) for the life of the returned value.
pub fn open_state(
    root: &Path,
    config: &Config,
    command: &str,
    scopes: &[String],
    lock_timeout: Duration,
) -> Result<OpenState, OpsError> {
    let key_file = root.join(&config.state.key_file);
    // A key is generated only for a state that holds no secret yet, and written only
    // once the state is known to be such: a lost key file is never silently replaced.
    let (key, source, fresh) = match find_master_key(root, config)? {
        Some((k, s)) => (k, s, false),
        None => (
            crypto::Key::generate(),
            KeySource::Generated(key_file.clone()),
            true,
        ),
    };
    let me = holder("workspace", command, Duration::from_secs(3600));
    let pg = pg_location(root, config)?;
    let store: Box<dyn StateStore> = match (s3_location(config), pg) {
        (_, Some(at)) => Box::new(PgStore::open(at, key.clone(), &me, lock_timeout)?),
        (Some(at), None) => {
            // The working copy lives outside the workspace and goes with the run.
            let work = std::env::temp_dir().join(format!(
                "landlord-s3-{}-{}",
                std::process::id(),
                time::OffsetDateTime::now_utc().unix_timestamp_nanos()
            ));
            Box::new(S3Store::open(at, &work, key.clone(), &me, lock_timeout)?)
        }
        (None, None) => Box::new(SledStore::open(
            &root.join(&config.state.path),
            key.clone(),
            &me,
            lock_timeout,
        )?),
    };
    if fresh {
        if store.holds_sealed()? {
            return Err(StateError::Key(format!(
                "this state holds sealed secrets but no master key was found: {} is not set and the key file `{}` does not exist; restore the key file from your backup (or set {}); nothing was changed",
                crypto::MASTER_KEY_ENV,
                key_file.display(),
                crypto::MASTER_KEY_ENV
            ))
            .into());
        }
        crypto::write_key_file(&key, &key_file)?;
    } else {
        store.check_key().map_err(|e| {
            StateError::Key(format!(
                "the master key from {source} does not open this state's secrets ({e}); nothing was changed"
            ))
        })?;
    }
    let mut st = OpenState {
        store,
        key: source,
        master: key,
        scopes: vec![],
    };
    st.lock_scopes(scopes, command)?;
    Ok(st)
}

/// Refuses tenant selectors that name no tenant file and nothing in state (`st`, when
/// given).
pub fn check_tenants(
    ws: &Workspace,
    tenants: &[String],
    st: Option<&dyn StateStore>,
) -> Result<(), OpsError> {
    let unknown: Vec<&String> = tenants
        .iter()
        .filter(|t| ws.tenant(t).is_none() && *t != crate::addr::SHARED)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    // Only tenants without a file need the state read (once) to be known.
    let recorded: std::collections::BTreeSet<String> = st
        .and_then(|s| s.resources().ok())
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.address.scope.to_string())
        .collect();
    for t in unknown {
        if !recorded.contains(t) {
            return Err(OpsError::Usage(format!(
                "unknown tenant `{t}`: no tenants/{t}.yaml and nothing recorded in state"
            )));
        }
    }
    Ok(())
}

/// The ids of `ids` that name a tenant file, the shared scope or recorded resources.
pub fn known_tenants(s: &Session, st: &OpenState, ids: &[String]) -> Result<Vec<String>, OpsError> {
    let missing: Vec<String> = ids
        .iter()
        .filter(|t| s.ws.tenant(t).is_none() && *t != crate::addr::SHARED)
        .cloned()
        .collect();
    let recorded: std::collections::BTreeSet<String> = if missing.is_empty() {
        Default::default()
    } else {
        st.store
            .resources_in(&missing)?
            .into_iter()
            .map(|r| r.address.scope.to_string())
            .collect()
    };
    Ok(ids
        .iter()
        .filter(|t| !missing.contains(t) || recorded.contains(*t))
        .cloned()
        .collect())
}

/// Renders the desired graph.
pub fn desired(s: &Session) -> Result<Desired, OpsError> {
    Ok(render::render(&s.ws, &s.registry)?)
}

/// The session and desired graph of a run on `tenants`: only their files are read and
/// only they are rendered; when one of them refers to another tenant, the whole
/// workspace is read and rendered instead.
pub fn session_for(dir: &Path, tenants: &[String]) -> Result<(Session, Desired), OpsError> {
    if !tenants.is_empty() {
        let s = open_for(dir, tenants)?;
        if let Ok(d) = render::render_for(&s.ws, &s.registry, tenants) {
            return Ok((s, d));
        }
    }
    let s = open(dir)?;
    let d = desired(&s)?;
    Ok((s, d))
}

/// The records a run on `tenants` needs: theirs, the shared scope's and those of every
/// scope their desired resources depend on (every record when `tenants` is empty).
fn records_for(
    st: &OpenState,
    tenants: &[String],
    desired: Option<&Desired>,
) -> Result<Vec<ResourceRecord>, OpsError> {
    let selected = crate::addr::Selection::new(tenants);
    let deps = desired
        .map(|d| d.resources.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|r| {
            let scope = r.address.scope.as_str();
            scope == crate::addr::SHARED || selected.holds(scope)
        })
        .flat_map(|r| &r.depends_on);
    Ok(crate::state::records_for(st.store.as_ref(), tenants, deps)?)
}

/// What every plan does first: check the tenants it names, and reconcile the leftover
/// intents of the scopes this run holds.
async fn before_plan(
    s: &Session,
    st: &OpenState,
    opts: &plan::Options,
    hook: &dyn Hook,
) -> Result<(), OpsError> {
    check_tenants(&s.ws, &opts.tenants, Some(st.store.as_ref()))?;
    apply::recover(st.store.as_ref(), &s.registry, hook, &|scope| {
        st.holds(scope)
    })
    .await?;
    Ok(())
}

/// Reconciles leftover intents, then builds a plan (which takes the properties and
/// dependencies of the resources it plans out of `desired`).
pub async fn make_plan(
    s: &Session,
    st: &OpenState,
    desired: &mut Desired,
    opts: &plan::Options,
    hook: &dyn Hook,
) -> Result<Plan, OpsError> {
    before_plan(s, st, opts, hook).await?;
    let mut p = plan::build(
        desired,
        records_for(st, &opts.tenants, Some(desired))?,
        st.store.serial()?,
        &s.ws.input_hash,
        &s.registry,
        opts,
        &mut plan::Assumed::default(),
    )
    .await?;
    p.versions = st.store.versions(&p.touched_scopes())?;
    judge(s, st, &mut p, opts.allow_bulk)?;
    Ok(p)
}

/// What every plan ends with: the state's lineage, the bulk-change guard's verdict and
/// the tenants deferred by CA limits.
fn judge(s: &Session, st: &OpenState, p: &mut Plan, allow_bulk: bool) -> Result<(), OpsError> {
    p.lineage = st.store.lineage()?;
    p.guard = guard(s, st, p, allow_bulk)?;
    ca_limits::refresh(p, &s.registry, st)
}

/// The bulk-change guard's verdict on `p`; the recorded resources are counted only when
/// the plan deletes or replaces anything.
fn guard(
    s: &Session,
    st: &OpenState,
    p: &Plan,
    allow_bulk: bool,
) -> Result<plan::guard::Verdict, OpsError> {
    let destroys = p.changes.iter().any(|c| c.action.destroys());
    if !destroys {
        return Ok(plan::guard::Verdict {
            allow_bulk,
            ..Default::default()
        });
    }
    let managed = st.store.count_by_type()?;
    Ok(plan::guard::judge(
        p,
        &s.registry,
        &managed,
        &s.ws.config.guard,
        allow_bulk,
    ))
}

/// Refuses a plan over the bulk-change guard's limits, unless `allow_bulk` (now) or the
/// plan was made with it.
pub fn check_guard(p: &Plan, allow_bulk: bool) -> Result<(), OpsError> {
    if p.guard.refuses() && !allow_bulk {
        return Err(OpsError::Guard(p.guard.describe()));
    }
    Ok(())
}

/// Lock scopes for a run limited to `tenants`.
pub fn scopes(tenants: &[String]) -> Vec<String> {
    if tenants.is_empty() {
        vec!["workspace".into()]
    } else {
        tenants.to_vec()
    }
}

/// Executes a plan and records the run in history.
pub async fn run_plan(
    s: &Session,
    st: &OpenState,
    plan: &Plan,
    command: &str,
    opts: &apply::Options,
    hook: &dyn Hook,
) -> Result<apply::Report, OpsError> {
    let started = now_rfc3339();
    let before = st.store.serial()?;
    let report = apply::apply(plan, st.store.as_ref(), &s.registry, opts, hook).await?;
    changed::record_inputs(s, st, plan, Some(&report))?;
    ca_limits::record(st, &s.registry, plan, &report)?;
    let h = holder("workspace", command, Duration::ZERO);
    st.store.record_run(&RunRecord {
        id: format!(
            "{:020}",
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        ),
        user: h.owner,
        host: h.host,
        command: command.into(),
        started,
        finished: now_rfc3339(),
        summary: report.summary(),
        serial_before: before,
        serial_after: st.store.serial()?,
        tenants: if plan.tenants.is_empty() {
            let changed: std::collections::BTreeSet<String> = plan
                .changes
                .iter()
                .map(|c| c.address.scope.to_string())
                .collect();
            changed.into_iter().collect()
        } else {
            plan.tenants.clone()
        },
    })?;
    Ok(report)
}

/// Reads a saved plan, verified with the workspace's master key, before any state is
/// opened: a plan edited on its way through CI storage never gets that far. A plan made
/// for a local state that does not exist is refused without creating it.
pub fn read_saved_plan(root: &Path, config: &Config, path: &Path) -> Result<Plan, OpsError> {
    let Some((key, _)) = find_master_key(root, config)? else {
        return Err(StateError::Key(format!(
            "cannot verify the saved plan `{}`: no master key ({} is not set and the key file `{}` does not exist)",
            path.display(),
            crypto::MASTER_KEY_ENV,
            root.join(&config.state.key_file).display()
        ))
        .into());
    };
    let plan = file::load(path, &key)?;
    // A local state that does not exist cannot be the one the plan was made for; say so
    // without creating it.
    let local = root.join(&config.state.path);
    if config.state.backend == "sled" && !local.join("db").exists() {
        return Err(file::PlanFileError::OtherState {
            plan: plan.lineage,
            state: "none: this workspace has no state yet".into(),
        }
        .into());
    }
    Ok(plan)
}

/// Refuses a verified saved plan made for another state or against older state or inputs.
pub async fn check_saved_plan(
    s: &Session,
    st: &OpenState,
    plan: &Plan,
    hook: &dyn Hook,
) -> Result<(), OpsError> {
    // Operations a killed run left behind are reconciled first; if that changes state,
    // the plan no longer describes it and is refused below.
    apply::recover(st.store.as_ref(), &s.registry, hook, &|scope| {
        st.holds(scope)
    })
    .await?;
    let scopes: Vec<String> = plan.versions.keys().cloned().collect();
    file::check_fresh(
        plan,
        &st.store.lineage()?,
        st.store.serial()?,
        &st.store.versions(&scopes)?,
        &s.ws.input_hash,
    )?;
    Ok(())
}

/// Drift of the recorded resources in scope.
pub async fn drift(
    s: &Session,
    st: &OpenState,
    tenants: &[String],
    hook: &dyn Hook,
) -> Result<drift::Report, OpsError> {
    check_tenants(&s.ws, tenants, Some(st.store.as_ref()))?;
    apply::recover(st.store.as_ref(), &s.registry, hook, &|scope| {
        st.holds(scope)
    })
    .await?;
    Ok(drift::detect(&records_for(st, tenants, None)?, &s.registry, tenants).await?)
}

/// Opens the state of the workspace at `dir` reading only `landlord.toml`, so a broken
/// tenant or template never blocks state inspection and repair.
pub fn open_state_only(
    dir: &Path,
    command: &str,
    lock_timeout: Duration,
) -> Result<OpenState, OpsError> {
    let config = workspace::load_config(dir)?;
    open_state(dir, &config, command, &[], lock_timeout)
}

/// The path a relative `--out` means.
pub fn out_path(dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| dir.join(p))
    }
}

/// What `adopt` did with one resource.
#[derive(Debug)]
pub enum Adoption {
    /// The object exists and is now recorded.
    Adopted(Box<ResourceRecord>),
    /// No such object exists: apply will create it.
    Missing,
    /// Already in state.
    Recorded,
    /// It cannot be looked up (a reference to something not in state, a provider error).
    Unreadable(String),
}

/// Records objects that already exist as resources of the templates, so apply manages
/// them instead of creating others: each configuration is rendered and resolved against
/// state, the provider reads the object (by `id` where the type needs one), and state
/// records the configuration with what was read. `targets` are addresses, or whole
/// tenants when `tenants` is given; resources go in dependency order so references to
/// resources adopted just before resolve. A later plan shows where objects differ.
pub async fn adopt(
    s: &Session,
    st: &OpenState,
    targets: &[ResourceAddr],
    tenants: &[String],
    id: Option<String>,
) -> Result<Vec<(ResourceAddr, Adoption)>, OpsError> {
    let desired = desired(s)?;
    for a in targets {
        if desired.index_of(a).is_none() {
            return Err(OpsError::Usage(format!(
                "`{a}` is not in the templates: nothing would manage it"
            )));
        }
    }
    let order = desired
        .dag
        .topo_order()
        .map_err(|_| OpsError::Usage("the templates have a dependency cycle".into()))?;
    let mut records: BTreeMap<ResourceAddr, ResourceRecord> = st
        .store
        .resources()?
        .into_iter()
        .map(|r| (r.address.clone(), r))
        .collect();
    let mut out = Vec::new();
    for i in order {
        let d = &desired.resources[i];
        let wanted =
            targets.contains(&d.address) || tenants.iter().any(|t| t == d.address.scope.as_str());
        if !wanted {
            continue;
        }
        if records.contains_key(&d.address) {
            out.push((d.address.clone(), Adoption::Recorded));
            continue;
        }
        let outcome = match adopt_one(s, &records, d, id.clone()).await {
            Ok(Some(record)) => {
                st.store.put(record.clone())?;
                records.insert(record.address.clone(), record.clone());
                Adoption::Adopted(Box::new(record))
            }
            Ok(None) => Adoption::Missing,
            Err(why) => Adoption::Unreadable(why),
        };
        out.push((d.address.clone(), outcome));
    }
    Ok(out)
}

/// Reads the object of one desired resource; `None` when there is none.
async fn adopt_one(
    s: &Session,
    records: &BTreeMap<ResourceAddr, ResourceRecord>,
    d: &render::DesiredResource,
    id: Option<String>,
) -> Result<Option<ResourceRecord>, String> {
    let addr = &d.address;
    let (provider, schema) = s
        .registry
        .get(&addr.rtype)
        .ok_or_else(|| format!("no provider serves type `{}`", addr.rtype))?;
    let known = |a: &ResourceAddr| {
        records.get(a).map(|r| plan::resolve::Known {
            attrs: &r.attributes,
            sensitive: &r.sensitive,
            complete: true,
        })
    };
    let prefix = format!("{addr}: ");
    let (config, sensitive) = plan::resolve::resolve_config(addr, &d.properties, schema, &known)
        .map_err(|e| {
            let e = e.to_string();
            format!(
                "{} (adopt or apply what it refers to first)",
                e.strip_prefix(&prefix).unwrap_or(&e)
            )
        })?;
    let id = id.unwrap_or_default();
    let Some(current) = provider
        .read(providers::ReadRequest {
            address: addr.clone(),
            id: id.clone(),
            prior: config.clone(),
        })
        .await
        .map_err(|e| {
            if id.is_empty() {
                format!("{e} (if this type is looked up by id, adopt it alone with --id)")
            } else {
                e.to_string()
            }
        })?
        .current
    else {
        return Ok(None);
    };
    // The configuration as recorded, with the values only the object knows.
    let mut attributes = config;
    for a in schema
        .attributes
        .iter()
        .filter(|a| a.kind == providers::AttrKind::Computed)
    {
        if let Some(v) = current.get(a.name) {
            attributes.insert(a.name.to_string(), v.clone());
        }
    }
    let object_id = if id.is_empty() {
        ["id", "arn", "zone_id", "key_id", "fqdn", "bucket", "name"]
            .iter()
            .find_map(|k| current.get(*k).and_then(|v| v.as_str()))
            .unwrap_or_default()
            .to_string()
    } else {
        id
    };
    let now = now_rfc3339();
    Ok(Some(ResourceRecord {
        address: addr.clone(),
        provider: provider.name().to_string(),
        id: object_id,
        attributes,
        sensitive,
        dependencies: d.depends_on.clone(),
        lifecycle: d.lifecycle.clone(),
        created_at: now.clone(),
        updated_at: now,
        serial: 0,
    }))
}
