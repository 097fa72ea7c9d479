//! `postgresql_role`: a login (or group) role of the whole server.
//!
//! The password is sent as a SCRAM-SHA-256 verifier computed here, and that verifier is
//! recorded (sealed, as the password is). Refresh compares it with the server's, so a
//! password changed out of band is drift without the password ever being read back.
//! (The server's verifiers are readable by superusers only; with a lesser admin user a
//! changed password cannot be seen.) Deleting a role first reassigns and drops what it
//! owns in every database it has objects or privileges in.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::super::attrs::{opt_bool, opt_str, req_str};
use super::super::{AttrSchema, ProviderError, ResourceSchema};
use super::conn::Server;
use super::sql::{check_idents, ident, literal, marked_by, marker};
use super::{classify, in_order_of, opt_i64, str_list, Catalog, Live, Postgres, Wanted};
use crate::addr::ResourceAddr;
use crate::providers::ApplyRequest;
use crate::value::{Attrs, UNKNOWN};

/// `postgresql_role`.
pub(super) struct Role;

/// Text read back in place of a password that no longer matches its verifier.
const CHANGED: &str = "(changed out of band)";

fn valid_until_ok(v: &str) -> bool {
    v == "infinity"
        || time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).is_ok()
}

#[async_trait]
impl Catalog for Role {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "postgresql_role",
            attributes: vec![
                AttrSchema::optional("server").force_new(),
                AttrSchema::required("name").force_new(),
                AttrSchema::optional("login"),
                AttrSchema::optional("password").sensitive(),
                AttrSchema::optional("connection_limit"),
                AttrSchema::optional("inherit"),
                AttrSchema::optional("roles"),
                AttrSchema::optional("valid_until"),
                AttrSchema::computed("password_scram").sensitive(),
            ],
        }
    }

    fn defaults(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("login", json!(false)),
            ("connection_limit", json!(-1)),
            ("inherit", json!(true)),
            ("roles", json!([])),
            ("valid_until", json!("infinity")),
        ]
    }

    fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        check_idents(c, &["name", "roles"])?;
        if let Some(n) = opt_str(c, "name")? {
            if n != UNKNOWN && (n.starts_with("pg_") || n.eq_ignore_ascii_case("public")) {
                return Err(ProviderError::invalid(format!(
                    "role name `{n}` is reserved by PostgreSQL"
                )));
            }
        }
        match opt_str(c, "valid_until")? {
            Some(v) if v != UNKNOWN && !valid_until_ok(v) => Err(ProviderError::invalid(format!(
                "`valid_until` is `{v}`: expected `infinity` or an RFC 3339 time such as 2027-01-31T00:00:00Z"
            ))),
            _ => {
                opt_bool(c, "login")?;
                opt_bool(c, "inherit")?;
                opt_i64(c, "connection_limit")?;
                Ok(())
            }
        }
    }

    fn database<'a>(&self, _c: &'a Attrs) -> Result<Option<&'a str>, ProviderError> {
        Ok(None)
    }

    fn id_keys(&self) -> &'static [&'static str] {
        &["name"]
    }

    async fn read(
        &self,
        _pg: &Postgres,
        server: &Server,
        conn: &tokio_postgres::Client,
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<Option<Live>>, ProviderError> {
        let names = super::names(wanted, "name")?;
        let verifier = if server.is_superuser(conn).await? {
            "(SELECT a.rolpassword FROM pg_authid a WHERE a.oid = r.oid)"
        } else {
            "NULL::text"
        };
        let q = format!(
            "SELECT r.rolname, r.rolcanlogin, r.rolconnlimit, r.rolinherit, \
               CASE WHEN r.rolvaliduntil IS NULL OR r.rolvaliduntil = 'infinity' THEN 'infinity' \
                    ELSE to_char(r.rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') END, \
               ARRAY(SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid \
                     WHERE m.member = r.oid ORDER BY 1), \
               shobj_description(r.oid, 'pg_authid'), {verifier} \
             FROM pg_roles r WHERE r.rolname = ANY($1)"
        );
        server.count("select.pg_roles");
        let rows = conn
            .query(&q, &[&names])
            .await
            .map_err(|e| classify("read roles", e))?;
        Ok(wanted
            .iter()
            .zip(&names)
            .map(|(w, name)| {
                let row = rows.iter().find(|r| r.get::<_, &str>(0) == *name)?;
                let mut a = Attrs::new();
                a.insert("name".into(), json!(name));
                a.insert("login".into(), json!(row.get::<_, bool>(1)));
                a.insert("connection_limit".into(), json!(row.get::<_, i32>(2)));
                a.insert("inherit".into(), json!(row.get::<_, bool>(3)));
                a.insert("valid_until".into(), json!(row.get::<_, String>(4)));
                a.insert("roles".into(), in_order_of(row.get(5), w.attrs, "roles"));
                let live_verifier: Option<String> = row.get(7);
                let recorded = w.attrs.get("password_scram").and_then(Value::as_str);
                if let (Some(live), Some(recorded)) = (&live_verifier, recorded) {
                    if live != recorded {
                        a.insert("password".into(), json!(CHANGED));
                    }
                }
                Some(Live {
                    attrs: a,
                    owner: marked_by(row.get::<_, Option<&str>>(6)),
                })
            })
            .collect())
    }

    async fn apply(
        &self,
        _pg: &Postgres,
        server: &Server,
        r: &ApplyRequest,
        live: Option<&Live>,
    ) -> Result<Attrs, ProviderError> {
        let c = &r.config;
        let name = ident(req_str(c, "name")?);
        let login = opt_bool(c, "login")?.unwrap_or(false);
        let mut options = vec![
            if login { "LOGIN" } else { "NOLOGIN" }.to_string(),
            if opt_bool(c, "inherit")?.unwrap_or(true) {
                "INHERIT"
            } else {
                "NOINHERIT"
            }
            .to_string(),
            format!(
                "CONNECTION LIMIT {}",
                opt_i64(c, "connection_limit")?.unwrap_or(-1)
            ),
            format!(
                "VALID UNTIL {}",
                literal(opt_str(c, "valid_until")?.unwrap_or("infinity"))
            ),
        ];
        let mut extra = Attrs::new();
        if let Some(password) = opt_str(c, "password")? {
            let prior = r.prior.as_ref();
            let unchanged = prior.and_then(|p| p.get("password")) == c.get("password")
                && live.is_some_and(|l| l.attrs.get("password").is_none());
            let recorded = prior.and_then(|p| p.get("password_scram")).cloned();
            match recorded.filter(|_| unchanged) {
                Some(v) => {
                    extra.insert("password_scram".into(), v);
                }
                None => {
                    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
                    options.push(format!("PASSWORD {}", literal(&verifier)));
                    extra.insert("password_scram".into(), json!(verifier));
                }
            }
        }
        let options = options.join(" ");
        let live_roles = match live {
            Some(l) => str_list(&l.attrs, "roles")?,
            None => vec![],
        };
        let want_roles = str_list(c, "roles")?;
        let mut stmts = vec![match live {
            None => format!("CREATE ROLE {name} WITH {options}"),
            Some(_) => format!("ALTER ROLE {name} WITH {options}"),
        }];
        stmts.push(format!(
            "COMMENT ON ROLE {name} IS {}",
            literal(&marker(&r.address))
        ));
        for g in want_roles.iter().filter(|g| !live_roles.contains(g)) {
            stmts.push(format!("GRANT {} TO {name}", ident(g)));
        }
        for g in live_roles.iter().filter(|g| !want_roles.contains(g)) {
            stmts.push(format!("REVOKE {} FROM {name}", ident(g)));
        }
        let op = if live.is_some() {
            "alter.role"
        } else {
            "create.role"
        };
        server
            .batch(None, op, &format!("apply role {name}"), &stmts)
            .await?;
        if !login && live.is_some_and(|l| l.attrs.get("login") == Some(&json!(true))) {
            // Login just revoked (a suspended tenant): end the role's open sessions too.
            server.count("select.pg_terminate_backend");
            server
                .conn(None)
                .await?
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                    &[&req_str(c, "name")?],
                )
                .await
                .map_err(|e| classify("end the sessions of a role losing LOGIN", e))?;
        }
        Ok(extra)
    }

    async fn delete(
        &self,
        _pg: &Postgres,
        server: &Server,
        _address: &ResourceAddr,
        prior: &Attrs,
        _live: &Live,
    ) -> Result<(), ProviderError> {
        let name = req_str(prior, "name")?;
        // Databases where the role owns objects or holds privileges (pg_shdepend knows).
        let dbs: Vec<String> = {
            let c = server.conn(None).await?;
            server.count("select.pg_shdepend");
            c.query(
                "SELECT DISTINCT d.datname::text FROM pg_shdepend s \
                 JOIN pg_database d ON d.oid = s.dbid \
                 WHERE s.refclassid = 'pg_authid'::regclass \
                   AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1) \
                   AND d.datallowconn AND d.datname <> current_database()",
                &[&name],
            )
            .await
            .map_err(|e| classify("find the databases a role has objects in", e))?
            .iter()
            .map(|r| r.get(0))
            .collect()
        };
        let release = format!(
            "REASSIGN OWNED BY {r} TO CURRENT_USER; DROP OWNED BY {r}",
            r = ident(name)
        );
        for db in &dbs {
            let c = server.conn(Some(db)).await?;
            server.count("drop.owned");
            match c.batch_execute(&release).await {
                Ok(()) => {}
                // The database was dropped meanwhile.
                Err(e) if e.code().is_some_and(|c| c.code() == "3D000") => {}
                Err(e) => {
                    return Err(classify(
                        &format!("release objects of role {name} in {db}"),
                        e,
                    ))
                }
            }
        }
        server
            .batch(
                None,
                "drop.role",
                &format!("drop role {name}"),
                &[release, format!("DROP ROLE IF EXISTS {}", ident(name))],
            )
            .await
    }
}
