//! One PostgreSQL server: its settings, TLS, and a small bounded pool of connections
//! shared by every database of that server.
//!
//! Connections belong to one database, and a database-per-tenant workspace touches
//! thousands of them, so a pool per database would keep thousands of idle connections
//! open. This pool bounds the *server's* open connections by `max_connections`: an idle
//! connection to another database is closed to make room for a new one. (A general pool
//! crate such as deadpool keys its bound per database, which is why it is not used.)

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OnceCell, Semaphore, SemaphorePermit};
use tokio_postgres::Client;

use super::{classify, NAME};
use crate::providers::{ApiStats, ProviderError};

/// How a server's connections are encrypted (libpq's `sslmode` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, unverified (libpq's default).
    Prefer,
    /// TLS always, the certificate not verified.
    Require,
    /// TLS always, the certificate checked against `sslrootcert` and the host name.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

const SETTINGS: &[&str] = &[
    "host",
    "port",
    "user",
    "password_env",
    "database",
    "sslmode",
    "sslrootcert",
    "region",
    "max_connections",
];

/// `[providers.postgresql.<name>]`.
#[derive(Debug, Clone)]
pub(super) struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password_env: Option<String>,
    pub database: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub region: Option<String>,
    pub max_connections: usize,
}

impl ServerConfig {
    /// Parses one server table; `root` resolves a relative `sslrootcert`.
    pub fn parse(t: &toml::Table, root: &std::path::Path) -> Result<ServerConfig, String> {
        if let Some(k) = t.keys().find(|k| !SETTINGS.contains(&k.as_str())) {
            return Err(crate::suggest::unknown("setting", k, SETTINGS));
        }
        let s = |k: &str| -> Result<Option<String>, String> {
            match t.get(k) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(format!("`{k}` must be a string, got {v}")),
            }
        };
        let int = |k: &str, default: i64, max: i64| -> Result<i64, String> {
            match t.get(k) {
                None => Ok(default),
                Some(toml::Value::Integer(n)) if (1..=max).contains(n) => Ok(*n),
                Some(v) => Err(format!("`{k}` must be an integer from 1 to {max}, got {v}")),
            }
        };
        let sslmode = match s("sslmode")? {
            None => SslMode::Prefer,
            Some(m) => SslMode::parse(&m).ok_or_else(|| {
                format!("`sslmode` is `{m}`: expected disable, prefer, require or verify-full")
            })?,
        };
        let sslrootcert = s("sslrootcert")?.map(|p| root.join(p));
        if sslmode == SslMode::VerifyFull && sslrootcert.is_none() {
            return Err(
                "`sslmode = \"verify-full\"` needs `sslrootcert` (the CA certificate file)".into(),
            );
        }
        Ok(ServerConfig {
            host: s("host")?.ok_or("`host` is required")?,
            port: int("port", 5432, 65535)? as u16,
            user: s("user")?.unwrap_or_else(|| "postgres".into()),
            password_env: s("password_env")?,
            database: s("database")?.unwrap_or_else(|| "postgres".into()),
            sslmode,
            sslrootcert,
            region: s("region")?,
            max_connections: int("max_connections", 4, 1000)? as usize,
        })
    }

    /// The driver's settings for `db` on this server (password from the environment).
    pub fn driver_config(
        &self,
        server: &str,
        db: &str,
    ) -> Result<tokio_postgres::Config, ProviderError> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(db)
            .application_name("landlord")
            .connect_timeout(Duration::from_secs(10));
        if let Some(p) = self.password(server)? {
            cfg.password(p);
        }
        cfg.ssl_mode(match self.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
        Ok(cfg)
    }

    /// The TLS connector of this server's `sslmode` (`None`: plain connections).
    pub fn connector(&self) -> Result<Option<tokio_postgres_rustls::MakeRustlsConnect>, String> {
        Ok(match self.sslmode {
            SslMode::Disable => None,
            SslMode::Prefer | SslMode::Require => Some(super::tls::unverified()),
            SslMode::VerifyFull => Some(super::tls::verified(
                self.sslrootcert.as_deref().expect("checked when parsed"),
            )?),
        })
    }

    /// The admin password, from the environment variable `password_env` names.
    pub fn password(&self, server: &str) -> Result<Option<String>, ProviderError> {
        match &self.password_env {
            None => Ok(None),
            Some(var) => std::env::var(var).map(Some).map_err(|_| {
                ProviderError::auth(format!(
                    "environment variable `{var}` is not set (password_env of [providers.postgresql.{server}])"
                ))
            }),
        }
    }
}

/// A connection lent by the pool; it goes back to the pool when dropped.
pub(super) struct Conn<'a> {
    client: Option<Client>,
    database: String,
    server: &'a Server,
    _slot: SemaphorePermit<'a>,
}

impl std::ops::Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client
            .as_ref()
            .expect("a lent connection holds its client")
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .expect("a lent connection holds its client")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            if !c.is_closed() {
                if let Ok(mut idle) = self.server.idle.lock() {
                    idle.push((std::mem::take(&mut self.database), c));
                }
            }
        }
    }
}

/// One configured server and its connections.
pub(super) struct Server {
    pub name: String,
    pub cfg: ServerConfig,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    slots: Semaphore,
    idle: Mutex<Vec<(String, Client)>>,
    stats: Arc<ApiStats>,
    /// Whether the admin user may read `pg_authid` (password verifiers), asked once.
    superuser: OnceCell<bool>,
}

impl Server {
    /// A server from its settings; TLS material is loaded here, so a bad file is a
    /// settings error.
    pub fn new(name: &str, cfg: ServerConfig, stats: Arc<ApiStats>) -> Result<Server, String> {
        let tls = cfg.connector()?;
        Ok(Server {
            name: name.to_string(),
            slots: Semaphore::new(cfg.max_connections),
            cfg,
            tls,
            idle: Mutex::new(Vec::new()),
            stats,
            superuser: OnceCell::new(),
        })
    }

    /// Counts one round trip to the server.
    pub fn count(&self, op: &str) {
        self.stats.record(NAME, op);
    }

    /// `host:port`, for messages.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.cfg.host, self.cfg.port)
    }

    /// A connection to `database` (the admin database when `None`).
    pub async fn conn(&self, database: Option<&str>) -> Result<Conn<'_>, ProviderError> {
        let db = database.unwrap_or(&self.cfg.database).to_string();
        let slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| ProviderError::failed("the connection pool is closed"))?;
        let reused = {
            let mut idle = self.idle.lock().map_err(|_| poisoned())?;
            match idle.iter().position(|(d, c)| *d == db && !c.is_closed()) {
                Some(i) => Some(idle.swap_remove(i).1),
                None => {
                    idle.retain(|(_, c)| !c.is_closed());
                    let in_use = self.cfg.max_connections - self.slots.available_permits();
                    if idle.len() + in_use > self.cfg.max_connections && !idle.is_empty() {
                        // Make room: close the oldest idle connection to another database.
                        idle.remove(0);
                    }
                    None
                }
            }
        };
        let client = match reused {
            Some(c) => c,
            None => self.connect(&db).await?,
        };
        Ok(Conn {
            client: Some(client),
            database: db,
            server: self,
            _slot: slot,
        })
    }

    async fn connect(&self, db: &str) -> Result<Client, ProviderError> {
        let cfg = self.cfg.driver_config(&self.name, db)?;
        self.count("connect");
        let what = format!(
            "connect to postgresql server `{}` at {} (database `{db}`, user `{}`)",
            self.name,
            self.endpoint(),
            self.cfg.user
        );
        let client = match &self.tls {
            None => {
                let (client, connection) = cfg
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| classify(&what, e))?;
                tokio::spawn(connection);
                client
            }
            Some(tls) => {
                let (client, connection) = cfg
                    .connect(tls.clone())
                    .await
                    .map_err(|e| classify(&what, e))?;
                tokio::spawn(connection);
                client
            }
        };
        Ok(client)
    }

    /// Runs `stmts` in `database` in one round trip, atomically: PostgreSQL runs the
    /// statements of one simple-protocol query in one implicit transaction. (Statements
    /// that refuse a transaction block, such as `CREATE DATABASE`, go alone.)
    pub async fn batch(
        &self,
        database: Option<&str>,
        op: &str,
        what: &str,
        stmts: &[String],
    ) -> Result<(), ProviderError> {
        let c = self.conn(database).await?;
        self.count(op);
        c.batch_execute(&stmts.join(";\n"))
            .await
            .map_err(|e| classify(what, e))
    }

    /// Whether the admin user is a superuser (and so may read password verifiers), asked
    /// once over `c`.
    pub async fn is_superuser(&self, c: &Client) -> Result<bool, ProviderError> {
        self.superuser
            .get_or_try_init(|| async {
                self.count("select.current_role");
                let row = c
                    .query_one(
                        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
                        &[],
                    )
                    .await
                    .map_err(|e| classify("read the admin role", e))?;
                Ok(row.get::<_, bool>(0))
            })
            .await
            .copied()
    }
}

fn poisoned() -> ProviderError {
    ProviderError::failed("the connection pool lock is poisoned")
}

/// Connection settings for keeping landlord's own state on a PostgreSQL server.
pub struct StateConnection {
    /// The driver's settings.
    pub config: tokio_postgres::Config,
    /// TLS connector (`None`: plain connections).
    pub tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// `postgresql://user@host:port/database`, never the password.
    pub describe: String,
}

impl StateConnection {
    fn new(
        config: tokio_postgres::Config,
        tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    ) -> StateConnection {
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let describe = format!(
            "postgresql://{}@{host}:{port}/{}",
            config.get_user().unwrap_or("postgres"),
            config.get_dbname().unwrap_or("postgres")
        );
        StateConnection {
            config,
            tls,
            describe,
        }
    }
}

/// State on the server `[providers.postgresql.<server>]` names, in `database` (default:
/// the server's own).
pub fn state_on_server(
    tables: &std::collections::BTreeMap<String, toml::Table>,
    root: &std::path::Path,
    server: &str,
    database: Option<&str>,
) -> Result<StateConnection, String> {
    let servers = tables.get(NAME);
    let table = servers
        .and_then(|t| t.get(server))
        .and_then(toml::Value::as_table)
        .ok_or_else(|| {
            let names: Vec<&str> = servers
                .into_iter()
                .flat_map(|t| t.keys().map(String::as_str))
                .collect();
            crate::suggest::unknown("[providers.postgresql] server", server, &names)
        })?;
    let cfg = ServerConfig::parse(table, root).map_err(|m| format!("server `{server}`: {m}"))?;
    let db = database.unwrap_or(&cfg.database).to_string();
    let config = cfg.driver_config(server, &db).map_err(|e| e.to_string())?;
    Ok(StateConnection::new(config, cfg.connector()?))
}

/// State at a libpq-style URL (`postgresql://user:password@host:port/db?sslmode=require`);
/// `sslmode=verify-full` with `sslrootcert=FILE` (relative to `root`) checks the server.
pub fn state_at_url(url: &str, root: &std::path::Path) -> Result<StateConnection, String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let (mut verify, mut rootcert) = (false, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", "verify-full" | "verify-ca")) => verify = true,
            Some(("sslrootcert", f)) => rootcert = Some(root.join(f)),
            _ => kept.push(pair),
        }
    }
    if verify {
        kept.push("sslmode=require");
    }
    let text = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let config: tokio_postgres::Config = text
        .parse()
        .map_err(|e| format!("the connection URL is not valid: {e}"))?;
    let tls = if verify {
        let ca = rootcert.ok_or("`sslmode=verify-full` needs `sslrootcert=FILE` in the URL")?;
        Some(super::tls::verified(&ca)?)
    } else {
        match config.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => None,
            _ => Some(super::tls::unverified()),
        }
    };
    Ok(StateConnection::new(config, tls))
}
