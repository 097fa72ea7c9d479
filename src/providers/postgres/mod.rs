//! The `postgresql` provider: tenant data on PostgreSQL servers. Roles, databases,
//! schemas, grants and default privileges, extensions, row-level security policies and
//! per-tenant schema migrations, on tokio-postgres with TLS through rustls.
//!
//! Settings, `[providers.postgresql.<name>]` (one table per server; a resource names its
//! server with `server`, which may be left out when only one is configured): `host`,
//! `port` (5432), `user` (`postgres`), `password_env` (the environment variable holding
//! the password; never the password itself), `database` (the admin database, `postgres`),
//! `sslmode` (`disable`, `prefer` (default), `require`, `verify-full`), `sslrootcert`
//! (the CA file `verify-full` checks against), `region` (residency rules apply to tenants
//! placed on the server) and `max_connections` (4: open connections to the server, over
//! all its databases).
//!
//! Every identifier is quoted and every value bound or escaped (see [`sql`]); role
//! passwords are sent as SCRAM verifiers computed here, so the clear text never reaches
//! the server or its log. Refresh reads the catalog once per database for all the
//! resources of a type in it. Objects landlord creates carry a comment `landlord:<address>`
//! (roles, databases, schemas, policies): crash recovery adopts only what carries it.

mod conn;
mod database;
mod export;
mod extension;
mod grant;
mod migrations;
mod policy;
mod role;
mod schema;
pub mod sql;
mod tls;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::attrs::opt_str;
use super::{
    ApiStats, ApplyRequest, ApplyResponse, AttrKind, DeleteRequest, Family, PlanRequest,
    PlanResponse, ProviderError, ReadRequest, RecoverRequest, ResourceSchema, ResourceType,
    Settings, SettingsError,
};
use crate::addr::ResourceAddr;
use crate::value::{Attrs, UNKNOWN};
use conn::Server;
pub use conn::{state_at_url, state_on_server, StateConnection};

const NAME: &str = "postgresql";

/// The lock held while changing ACLs in one database.
type AclLock = Arc<tokio::sync::Mutex<()>>;

/// What every PostgreSQL resource type shares: the configured servers and the
/// workspace root (migration sources and export files are relative to it).
pub struct Postgres {
    servers: BTreeMap<String, Arc<Server>>,
    root: PathBuf,
    /// One lock per (server, database): grants and policies change shared catalog rows
    /// (a table's ACL), which concurrent transactions would fail on with
    /// "tuple concurrently updated".
    acl_locks: std::sync::Mutex<BTreeMap<(String, String), AclLock>>,
    /// Migration directories as read at render, by `source` (read once per run).
    sources: std::sync::Mutex<BTreeMap<String, migrations::Scanned>>,
}

impl Postgres {
    /// Builds the provider from every `[providers.postgresql.<name>]` table.
    pub fn provider(
        settings: &Settings,
        stats: Arc<ApiStats>,
    ) -> Result<Family<Postgres>, SettingsError> {
        let err = |message: String| SettingsError {
            provider: NAME.into(),
            message,
        };
        let mut servers = BTreeMap::new();
        if let Some(t) = settings.tables.get(NAME) {
            for (name, v) in t {
                let table = v.as_table().ok_or_else(|| {
                    err(format!(
                        "`{name}` must be a table of server settings: [providers.postgresql.{name}]"
                    ))
                })?;
                let cfg = conn::ServerConfig::parse(table, &settings.root)
                    .map_err(|m| err(format!("server `{name}`: {m}")))?;
                let server = Server::new(name, cfg, stats.clone())
                    .map_err(|m| err(format!("server `{name}`: {m}")))?;
                servers.insert(name.clone(), Arc::new(server));
            }
        }
        let types: Vec<Box<dyn ResourceType<Postgres>>> = vec![
            Box::new(role::Role),
            Box::new(database::Database),
            Box::new(schema::Schema),
            Box::new(grant::Grant),
            Box::new(grant::DefaultPrivileges),
            Box::new(extension::Extension),
            Box::new(policy::Policy),
            Box::new(migrations::Migrations),
        ];
        let pg = Postgres {
            servers,
            root: settings.root.clone(),
            acl_locks: Default::default(),
            sources: Default::default(),
        };
        Ok(Family::new(NAME, pg, types))
    }

    /// The server a configuration names (or the only one configured).
    fn server(&self, c: &Attrs) -> Result<&Arc<Server>, ProviderError> {
        let names = || {
            if self.servers.is_empty() {
                "none is configured: add [providers.postgresql.<name>] to landlord.toml".into()
            } else {
                format!(
                    "configured: {}",
                    self.servers.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        };
        match opt_str(c, "server")? {
            Some(UNKNOWN) => Err(ProviderError::invalid(
                "`server` must be known when planning",
            )),
            Some(name) => self.servers.get(name).ok_or_else(|| {
                ProviderError::invalid(format!("unknown postgresql server `{name}` ({})", names()))
            }),
            None if self.servers.len() == 1 => {
                Ok(self.servers.values().next().expect("one server"))
            }
            None => Err(ProviderError::invalid(format!(
                "name the postgresql server with `server` ({})",
                names()
            ))),
        }
    }

    /// The lock serializing ACL changes in one database of one server.
    fn acl_lock(&self, server: &str, db: &str) -> AclLock {
        let mut locks = self.acl_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks
            .entry((server.to_string(), db.to_string()))
            .or_default()
            .clone()
    }
}

/// Maps a driver error to the engine's error classes, naming the operation.
fn classify(what: &str, e: tokio_postgres::Error) -> ProviderError {
    let Some(db) = e.as_db_error() else {
        // No answer from the server: refused, reset, timed out, TLS failure. The driver's
        // own text ("error connecting to server") leaves the cause to its source chain.
        let text = super::with_causes(&e);
        if text.contains("certificate") || text.contains("tls") || text.contains("TLS") {
            return ProviderError::auth(format!("{what}: {text}"));
        }
        return ProviderError::unreachable(format!("{what}: {text}"));
    };
    let text = format!("{what}: {} ({})", db.message(), db.code().code());
    match db.code().code() {
        "28P01" | "28000" => ProviderError::auth(text),
        "3D000" | "42704" | "3F000" | "42P01" => ProviderError::not_found(text),
        "42710" | "42P06" | "42P04" | "42P07" => ProviderError::already_exists(text),
        "40001" | "40P01" | "55P03" | "53300" | "57P03" | "55006" => ProviderError::transient(text),
        "XX000" if db.message().contains("concurrently") => ProviderError::transient(text),
        "42501" => ProviderError::auth(text),
        c if c.starts_with("22") || c.starts_with("42") || c == "0A000" => {
            ProviderError::invalid(text)
        }
        _ => ProviderError::failed(text),
    }
}

/// A live object as the catalog shows it: its attributes and the address its marker
/// comment names, if any.
struct Live {
    attrs: Attrs,
    owner: Option<String>,
}

/// One resource to read: its address and the attributes it is known by (recorded, or
/// the configuration when none are recorded yet).
struct Wanted<'a> {
    address: &'a ResourceAddr,
    attrs: &'a Attrs,
}

/// One PostgreSQL resource type in the family's shape: a batched catalog read per
/// database, an apply that knows the live object, a delete. The blanket
/// [`ResourceType`] impl adds the rest: defaults, grouping reads by database, reading
/// back after apply, recovery by marker.
#[async_trait]
trait Catalog: Send + Sync {
    /// The type's schema.
    fn schema(&self) -> ResourceSchema;
    /// Values filled in when the configuration leaves them out, so plan compares them.
    fn defaults(&self) -> Vec<(&'static str, Value)> {
        vec![]
    }
    /// Checks known values (identifier lengths, allowed values).
    fn validate(&self, _c: &Attrs) -> Result<(), ProviderError> {
        Ok(())
    }
    /// Attributes derived from local files (migration versions and checksums).
    fn derive(&self, _pg: &Postgres, _c: &mut Attrs) -> Result<(), ProviderError> {
        Ok(())
    }
    /// Whether objects of this type carry a marker comment (others are adopted as found).
    fn marked(&self) -> bool {
        true
    }
    /// The database the object lives in; `None` for objects of the whole server.
    fn database<'a>(&self, c: &'a Attrs) -> Result<Option<&'a str>, ProviderError> {
        opt_str(c, "database")
    }
    /// The attributes that, after the server's name, make the provider id.
    fn id_keys(&self) -> &'static [&'static str];
    /// The provider id.
    fn id(&self, server: &str, c: &Attrs) -> String {
        id_of(server, c, self.id_keys())
    }
    /// Checks a planned change against the live server (best effort: skipped when the
    /// server cannot be reached, since apply checks again).
    async fn plan(
        &self,
        _pg: &Postgres,
        _server: &Server,
        _req: &PlanRequest,
    ) -> Result<PlanResponse, ProviderError> {
        Ok(PlanResponse::default())
    }
    /// The live objects of one database (over `conn`, a connection to it), one answer per
    /// request, in one catalog read.
    async fn read(
        &self,
        pg: &Postgres,
        server: &Server,
        conn: &tokio_postgres::Client,
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<Option<Live>>, ProviderError>;
    /// Creates or updates the object to match `r.config`; returns computed attributes
    /// that the catalog cannot show (e.g. the password verifier that was set).
    async fn apply(
        &self,
        pg: &Postgres,
        server: &Server,
        r: &ApplyRequest,
        live: Option<&Live>,
    ) -> Result<Attrs, ProviderError>;
    /// How many creates/updates one apply may carry ([`Catalog::apply_batch`]).
    fn max_batch(&self) -> usize {
        1
    }
    /// Several creates/updates of one database, one answer per request; types whose
    /// changes belong in one transaction override it.
    async fn apply_batch(
        &self,
        pg: &Postgres,
        server: &Server,
        reqs: &[(&ApplyRequest, Option<&Live>)],
    ) -> Vec<Result<Attrs, ProviderError>> {
        let mut out = Vec::with_capacity(reqs.len());
        for (r, live) in reqs {
            out.push(self.apply(pg, server, r, *live).await);
        }
        out
    }
    /// Deletes the live object (the engine's delete of an object already gone never gets
    /// here).
    async fn delete(
        &self,
        pg: &Postgres,
        server: &Server,
        address: &ResourceAddr,
        prior: &Attrs,
        live: &Live,
    ) -> Result<(), ProviderError>;
}

/// The attributes recorded for a live object: `reference` (recorded or configured)
/// with every value the catalog shows for the keys it sets, plus computed ones.
fn view(schema: &ResourceSchema, reference: &Attrs, live: Attrs) -> Attrs {
    let mut a = reference.clone();
    for (k, v) in live {
        let computed = schema
            .attr(&k)
            .is_some_and(|s| s.kind == AttrKind::Computed);
        if reference.contains_key(&k) || computed {
            a.insert(k, v);
        }
    }
    a
}

impl<T: Catalog> CatalogExt for T {}

/// Reads through [`Catalog::read`] for one resource.
#[async_trait]
trait CatalogExt: Catalog {
    async fn read_one(
        &self,
        pg: &Postgres,
        address: &ResourceAddr,
        attrs: &Attrs,
    ) -> Result<Option<Live>, ProviderError> {
        let server = pg.server(attrs)?;
        let db = self.database(attrs)?;
        let mut v = read_in(self, pg, server, db, &[Wanted { address, attrs }]).await?;
        Ok(v.pop().flatten())
    }
}

#[async_trait]
impl<T: Catalog> ResourceType<Postgres> for T {
    fn schema(&self) -> ResourceSchema {
        Catalog::schema(self)
    }

    fn validate(&self, pg: &Postgres, c: &Attrs) -> Result<(), ProviderError> {
        pg.server(c)?;
        Catalog::validate(self, c)
    }

    fn complete(&self, pg: &Postgres, c: &mut Attrs) -> Result<(), ProviderError> {
        for (k, v) in self.defaults() {
            if c.get(k).is_none_or(Value::is_null) {
                c.insert(k.to_string(), v);
            }
        }
        self.derive(pg, c)
    }

    fn region(&self, pg: &Postgres, c: &Attrs) -> Option<String> {
        pg.server(c).ok()?.cfg.region.clone()
    }

    async fn plan(&self, pg: &Postgres, req: &PlanRequest) -> Result<PlanResponse, ProviderError> {
        let server = pg.server(&req.config)?;
        Catalog::plan(self, pg, server, req).await
    }

    async fn read(&self, pg: &Postgres, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        let schema = Catalog::schema(self);
        Ok(self
            .read_one(pg, &req.address, &req.prior)
            .await?
            .map(|l| view(&schema, &req.prior, l.attrs)))
    }

    async fn read_many(
        &self,
        pg: &Postgres,
        reqs: &[ReadRequest],
    ) -> Vec<Result<Option<Attrs>, ProviderError>> {
        let schema = Catalog::schema(self);
        let mut out: Vec<Option<Result<Option<Attrs>, ProviderError>>> =
            reqs.iter().map(|_| None).collect();
        // One catalog read per (server, database).
        for ((server, db), idx) in locations(self, pg, reqs, |r| &r.prior, &mut out) {
            let server = &pg.servers[&server];
            let wanted: Vec<Wanted> = idx
                .iter()
                .map(|&i| Wanted {
                    address: &reqs[i].address,
                    attrs: &reqs[i].prior,
                })
                .collect();
            match read_in(self, pg, server, db.as_deref(), &wanted).await {
                Ok(lives) => {
                    for (&i, l) in idx.iter().zip(lives) {
                        out[i] = Some(Ok(l.map(|l| view(&schema, &reqs[i].prior, l.attrs))));
                    }
                }
                Err(e) => {
                    for &i in &idx {
                        out[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(ProviderError::failed("no answer"))))
            .collect()
    }

    fn max_batch(&self) -> usize {
        Catalog::max_batch(self)
    }

    async fn apply(&self, pg: &Postgres, r: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        self.apply_many(pg, std::slice::from_ref(r))
            .await
            .pop()
            .unwrap_or_else(|| Err(ProviderError::failed("no answer")))
    }

    async fn apply_many(
        &self,
        pg: &Postgres,
        reqs: &[ApplyRequest],
    ) -> Vec<Result<ApplyResponse, ProviderError>> {
        let mut out: Vec<Option<Result<ApplyResponse, ProviderError>>> =
            reqs.iter().map(|_| None).collect();
        for ((server, db), idx) in locations(self, pg, reqs, |r| &r.config, &mut out) {
            let server = &pg.servers[&server];
            let group: Vec<&ApplyRequest> = idx.iter().map(|&i| &reqs[i]).collect();
            let answers = apply_group(self, pg, server, db.as_deref(), &group).await;
            for (&i, a) in idx.iter().zip(answers) {
                out[i] = Some(a);
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(ProviderError::failed("no answer"))))
            .collect()
    }

    async fn delete(&self, pg: &Postgres, req: &DeleteRequest) -> Result<(), ProviderError> {
        let server = pg.server(&req.prior)?;
        match self.read_one(pg, &req.address, &req.prior).await? {
            Some(live) => Catalog::delete(self, pg, server, &req.address, &req.prior, &live).await,
            None => Ok(()),
        }
    }

    async fn recover(
        &self,
        pg: &Postgres,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        let source = req.prior.as_ref().unwrap_or(&req.config);
        let server = pg.server(source)?;
        let owner = req.address.to_string();
        Ok(match self.read_one(pg, &req.address, source).await? {
            Some(live) if !self.marked() || live.owner.as_deref() == Some(owner.as_str()) => {
                let attributes = view(&Catalog::schema(self), source, live.attrs);
                Some(ApplyResponse {
                    id: self.id(&server.name, &attributes),
                    attributes,
                })
            }
            _ => None,
        })
    }
}

/// Requests grouped by where they live, (server, database), keeping each one's position;
/// a request naming no valid server gets its error in `out`.
fn locations<T: Catalog + ?Sized, R, A>(
    t: &T,
    pg: &Postgres,
    reqs: &[R],
    attrs: impl Fn(&R) -> &Attrs,
    out: &mut [Option<Result<A, ProviderError>>],
) -> BTreeMap<(String, Option<String>), Vec<usize>> {
    let mut groups: BTreeMap<(String, Option<String>), Vec<usize>> = BTreeMap::new();
    for (i, r) in reqs.iter().enumerate() {
        let a = attrs(r);
        let key = pg
            .server(a)
            .and_then(|s| Ok((s.name.clone(), t.database(a)?.map(str::to_string))));
        match key {
            Ok(k) => groups.entry(k).or_default().push(i),
            Err(e) => out[i] = Some(Err(e)),
        }
    }
    groups
}

/// The live objects of `wanted` in `db` (none when the database itself is gone).
async fn read_in<T: Catalog + ?Sized>(
    t: &T,
    pg: &Postgres,
    server: &Server,
    db: Option<&str>,
    wanted: &[Wanted<'_>],
) -> Result<Vec<Option<Live>>, ProviderError> {
    match conn_if_exists(server, db).await? {
        Some(conn) => Catalog::read(t, pg, server, &conn, wanted).await,
        None => Ok(wanted.iter().map(|_| None).collect()),
    }
}

/// Applies requests of one database: one catalog read of the live objects, the type's
/// (possibly batched) apply, one catalog read back.
async fn apply_group<T: Catalog + ?Sized>(
    t: &T,
    pg: &Postgres,
    server: &Server,
    db: Option<&str>,
    reqs: &[&ApplyRequest],
) -> Vec<Result<ApplyResponse, ProviderError>> {
    let all = |e: ProviderError| reqs.iter().map(|_| Err(e.clone())).collect();
    // The live objects as the recorded attributes know them (e.g. the password verifier
    // that tells whether the password changed out of band).
    let known: Vec<Attrs> = reqs
        .iter()
        .map(|r| {
            let mut k = r.config.clone();
            for (key, v) in r.prior.iter().flatten() {
                k.entry(key.clone()).or_insert_with(|| v.clone());
            }
            k
        })
        .collect();
    let wanted: Vec<Wanted> = reqs
        .iter()
        .zip(&known)
        .map(|(r, attrs)| Wanted {
            address: &r.address,
            attrs,
        })
        .collect();
    let lives = match read_in(t, pg, server, db, &wanted).await {
        Ok(l) => l,
        Err(e) => return all(e),
    };
    let pairs: Vec<(&ApplyRequest, Option<&Live>)> = reqs
        .iter()
        .copied()
        .zip(lives.iter().map(Option::as_ref))
        .collect();
    let applied = Catalog::apply_batch(t, pg, server, &pairs).await;
    // Read back what was applied, as the configuration plus what apply computed.
    let references: Vec<Option<Attrs>> = reqs
        .iter()
        .zip(&applied)
        .map(|(r, a)| {
            a.as_ref().ok().map(|extra| {
                let mut reference = r.config.clone();
                reference.extend(extra.clone());
                reference
            })
        })
        .collect();
    let back: Vec<(usize, Wanted)> = references
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.as_ref().map(|attrs| {
                (
                    i,
                    Wanted {
                        address: &reqs[i].address,
                        attrs,
                    },
                )
            })
        })
        .collect();
    let (positions, wanted): (Vec<usize>, Vec<Wanted>) = back.into_iter().unzip();
    let read_back = if wanted.is_empty() {
        Ok(vec![])
    } else {
        read_in(t, pg, server, db, &wanted).await
    };
    let schema = Catalog::schema(t);
    let mut out: Vec<Result<ApplyResponse, ProviderError>> = applied
        .into_iter()
        .map(|a| {
            a.map(|_| ApplyResponse {
                id: String::new(),
                attributes: Attrs::new(),
            })
        })
        .collect();
    match read_back {
        Err(e) => {
            for &i in &positions {
                out[i] = Err(e.clone());
            }
        }
        Ok(lives) => {
            for (&i, live) in positions.iter().zip(lives) {
                let reference = references[i].as_ref().expect("applied");
                out[i] = match live {
                    None => Err(ProviderError::transient("the object is not readable yet")),
                    Some(live) => {
                        let attributes = view(&schema, reference, live.attrs);
                        Ok(ApplyResponse {
                            id: Catalog::id(t, &server.name, &attributes),
                            attributes,
                        })
                    }
                };
            }
        }
    }
    out
}

/// The `key` attribute of every wanted resource, in order.
fn names<'a>(wanted: &[Wanted<'a>], key: &str) -> Result<Vec<&'a str>, ProviderError> {
    wanted
        .iter()
        .map(|w| super::attrs::req_str(w.attrs, key))
        .collect()
}

/// A provider id: the server, then the values of `keys`, joined by `/`.
fn id_of(server: &str, c: &Attrs, keys: &[&str]) -> String {
    let mut id = server.to_string();
    for k in keys {
        id.push('/');
        id.push_str(c.get(*k).and_then(Value::as_str).unwrap_or_default());
    }
    id
}

/// A string list attribute (`[]` when absent).
fn str_list(c: &Attrs, k: &str) -> Result<Vec<String>, ProviderError> {
    match c.get(k) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ProviderError::invalid(format!("`{k}` must be a list of strings, got {v}"))
                })
            })
            .collect(),
        Some(v) => Err(ProviderError::invalid(format!(
            "`{k}` must be a list of strings, got {v}"
        ))),
    }
}

/// An optional integer attribute (may be negative, e.g. `connection_limit: -1`).
fn opt_i64(c: &Attrs, k: &str) -> Result<Option<i64>, ProviderError> {
    match c.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| ProviderError::invalid(format!("`{k}` must be an integer, got {v}"))),
    }
}

/// A connection to `db`, or `None` when that database does not exist (so nothing in it
/// does either).
async fn conn_if_exists<'s>(
    server: &'s Server,
    db: Option<&str>,
) -> Result<Option<conn::Conn<'s>>, ProviderError> {
    match server.conn(db).await {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.kind == super::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A live list of names, in the order `reference` lists them when both hold the same
/// names (an order the template chose is no change), sorted otherwise.
fn in_order_of(mut live: Vec<String>, reference: &Attrs, key: &str) -> Value {
    live.sort();
    let want = str_list(reference, key).unwrap_or_default();
    let mut sorted = want.clone();
    sorted.sort();
    if sorted == live {
        serde_json::json!(want)
    } else {
        serde_json::json!(live)
    }
}
