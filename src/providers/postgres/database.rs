//! `postgresql_database`: a database of the server (the database-per-tenant strategy).
//!
//! `CREATE DATABASE` cannot run in a transaction, so the marker comment follows it in a
//! second statement; recovery therefore adopts a database that carries our marker or no
//! comment at all (the window between the two statements), never one marked by another.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::super::attrs::{opt_bool, opt_str, req_str};
use super::super::{AttrSchema, ProviderError, ResourceSchema};
use super::conn::Server;
use super::sql::{check_idents, ident, literal, marked_by, marker};
use super::{classify, export, opt_i64, Catalog, Live, Postgres, Wanted};
use crate::addr::ResourceAddr;
use crate::providers::ApplyRequest;
use crate::value::Attrs;

/// `postgresql_database`.
pub(super) struct Database;

#[async_trait]
impl Catalog for Database {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "postgresql_database",
            attributes: vec![
                AttrSchema::optional("server").force_new(),
                AttrSchema::required("name").force_new(),
                AttrSchema::optional("owner"),
                AttrSchema::optional("encoding").force_new(),
                AttrSchema::optional("lc_collate").force_new(),
                AttrSchema::optional("template").force_new(),
                AttrSchema::optional("connection_limit"),
                AttrSchema::optional("allow_connections"),
                AttrSchema::optional("export_on_destroy"),
            ],
        }
    }

    fn defaults(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("encoding", json!("UTF8")),
            ("connection_limit", json!(-1)),
            ("allow_connections", json!(true)),
        ]
    }

    fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        check_idents(c, &["name", "owner", "template"])?;
        opt_i64(c, "connection_limit")?;
        opt_bool(c, "allow_connections")?;
        export::target(c)?;
        Ok(())
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
        server.count("select.pg_database");
        let rows = conn
            .query(
                "SELECT d.datname::text, pg_get_userbyid(d.datdba)::text, \
                        pg_encoding_to_char(d.encoding)::text, d.datcollate::text, \
                        d.datconnlimit, d.datallowconn, shobj_description(d.oid, 'pg_database') \
                 FROM pg_database d WHERE d.datname = ANY($1)",
                &[&names],
            )
            .await
            .map_err(|e| classify("read databases", e))?;
        Ok(wanted
            .iter()
            .zip(&names)
            .map(|(w, name)| {
                let row = rows.iter().find(|r| r.get::<_, &str>(0) == *name)?;
                let comment: Option<&str> = row.get(6);
                // No comment at all: the window between create and comment of our own
                // interrupted create (see the module doc).
                let owner = match comment {
                    None => Some(w.address.to_string()),
                    Some(_) => marked_by(comment),
                };
                let mut a = Attrs::new();
                a.insert("name".into(), json!(name));
                a.insert("owner".into(), json!(row.get::<_, String>(1)));
                a.insert("encoding".into(), json!(row.get::<_, String>(2)));
                a.insert("lc_collate".into(), json!(row.get::<_, String>(3)));
                a.insert("connection_limit".into(), json!(row.get::<_, i32>(4)));
                a.insert("allow_connections".into(), json!(row.get::<_, bool>(5)));
                Some(Live { attrs: a, owner })
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
        let raw = req_str(c, "name")?;
        let name = ident(raw);
        if let Some(l) = live {
            if l.owner.as_deref() != Some(&r.address.to_string()) {
                return Err(ProviderError::conflict(format!(
                    "database `{raw}` exists and belongs to {}",
                    l.owner.as_deref().unwrap_or("somebody else")
                )));
            }
        } else {
            let mut create = format!("CREATE DATABASE {name}");
            if let Some(o) = opt_str(c, "owner")? {
                create.push_str(&format!(" OWNER {}", ident(o)));
            }
            let encoding = opt_str(c, "encoding")?;
            let collate = opt_str(c, "lc_collate")?;
            // Another encoding or collation than template1's needs the pristine template0.
            let template = match opt_str(c, "template")? {
                Some(t) => Some(t),
                None if collate.is_some() || encoding.is_some_and(|e| e != "UTF8") => {
                    Some("template0")
                }
                None => None,
            };
            if let Some(t) = template {
                create.push_str(&format!(" TEMPLATE {}", ident(t)));
            }
            if let Some(e) = encoding {
                create.push_str(&format!(" ENCODING {}", literal(e)));
            }
            if let Some(l) = collate {
                create.push_str(&format!(" LC_COLLATE {}", literal(l)));
            }
            server
                .batch(
                    None,
                    "create.database",
                    &format!("create database {raw}"),
                    &[create],
                )
                .await?;
        }
        let stmts = [
            format!(
                "COMMENT ON DATABASE {name} IS {}",
                literal(&marker(&r.address))
            ),
            format!(
                "ALTER DATABASE {name} WITH CONNECTION LIMIT {} ALLOW_CONNECTIONS {}",
                opt_i64(c, "connection_limit")?.unwrap_or(-1),
                opt_bool(c, "allow_connections")?.unwrap_or(true)
            ),
        ];
        let mut stmts = stmts.to_vec();
        if let Some(o) = opt_str(c, "owner")? {
            stmts.push(format!("ALTER DATABASE {name} OWNER TO {}", ident(o)));
        }
        server
            .batch(
                None,
                "alter.database",
                &format!("alter database {raw}"),
                &stmts,
            )
            .await?;
        Ok(Attrs::new())
    }

    async fn delete(
        &self,
        pg: &Postgres,
        server: &Server,
        _address: &ResourceAddr,
        prior: &Attrs,
        _live: &Live,
    ) -> Result<(), ProviderError> {
        let name = req_str(prior, "name")?;
        if let Some(file) = export::target(prior)? {
            export::dump(server, &pg.root, &file, name, None).await?;
        }
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(name));
        server
            .batch(
                None,
                "drop.database",
                &format!("drop database {name}"),
                &[drop],
            )
            .await
    }
}
