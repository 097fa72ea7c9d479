//! `postgresql_schema`: a schema in one database (the schema-per-tenant strategy).
//!
//! The schema carries the marker comment, so it is found again under another name: a
//! schema renamed out of band is drift on `name`, and apply renames it back (as a changed
//! `name` in the template renames it) instead of creating an empty one beside the data.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::super::attrs::{opt_bool, opt_str, req_str};
use super::super::{AttrSchema, ProviderError, ResourceSchema};
use super::conn::Server;
use super::sql::{check_idents, ident, literal, marked_by, marker};
use super::{classify, export, Catalog, Live, Postgres, Wanted};
use crate::addr::ResourceAddr;
use crate::providers::ApplyRequest;
use crate::value::Attrs;

/// `postgresql_schema`.
pub(super) struct Schema;

#[async_trait]
impl Catalog for Schema {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "postgresql_schema",
            attributes: vec![
                AttrSchema::optional("server").force_new(),
                AttrSchema::required("database").force_new(),
                AttrSchema::required("name"),
                AttrSchema::optional("owner"),
                AttrSchema::optional("drop_cascade"),
                AttrSchema::optional("export_on_destroy"),
            ],
        }
    }

    fn defaults(&self) -> Vec<(&'static str, Value)> {
        vec![("drop_cascade", json!(false))]
    }

    fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        check_idents(c, &["database", "name", "owner"])?;
        opt_bool(c, "drop_cascade")?;
        export::target(c)?;
        Ok(())
    }

    fn id_keys(&self) -> &'static [&'static str] {
        &["database", "name"]
    }

    async fn read(
        &self,
        _pg: &Postgres,
        server: &Server,
        conn: &tokio_postgres::Client,
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<Option<Live>>, ProviderError> {
        let names = super::names(wanted, "name")?;
        let markers: Vec<String> = wanted.iter().map(|w| marker(w.address)).collect();
        server.count("select.pg_namespace");
        let rows = conn
            .query(
                "SELECT n.nspname::text, pg_get_userbyid(n.nspowner)::text, \
                        obj_description(n.oid, 'pg_namespace') \
                 FROM pg_namespace n \
                 WHERE n.nspname = ANY($1) OR obj_description(n.oid, 'pg_namespace') = ANY($2)",
                &[&names, &markers],
            )
            .await
            .map_err(|e| classify("read schemas", e))?;
        Ok(wanted
            .iter()
            .zip(names.iter().zip(&markers))
            .map(|(_, (name, mark))| {
                let row = rows
                    .iter()
                    .find(|r| r.get::<_, Option<&str>>(2) == Some(mark.as_str()))
                    .or_else(|| rows.iter().find(|r| r.get::<_, &str>(0) == *name))?;
                let mut a = Attrs::new();
                a.insert("name".into(), json!(row.get::<_, String>(0)));
                a.insert("owner".into(), json!(row.get::<_, String>(1)));
                Some(Live {
                    attrs: a,
                    owner: marked_by(row.get(2)),
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
        let raw = req_str(c, "name")?;
        let name = ident(raw);
        let me = r.address.to_string();
        let mut stmts = vec![];
        match live {
            Some(l) if l.owner.as_deref() != Some(me.as_str()) => {
                return Err(ProviderError::conflict(format!(
                    "schema `{raw}` exists and is not landlord's {me} ({})",
                    l.owner
                        .as_deref()
                        .map_or("it carries no landlord marker".into(), |o| format!(
                            "it belongs to {o}"
                        ))
                )))
            }
            Some(l) => {
                let live_name = req_str(&l.attrs, "name")?;
                if live_name != raw {
                    stmts.push(format!(
                        "ALTER SCHEMA {} RENAME TO {name}",
                        ident(live_name)
                    ));
                }
            }
            None => stmts.push(format!("CREATE SCHEMA {name}")),
        }
        if let Some(o) = opt_str(c, "owner")? {
            stmts.push(format!("ALTER SCHEMA {name} OWNER TO {}", ident(o)));
        }
        stmts.push(format!(
            "COMMENT ON SCHEMA {name} IS {}",
            literal(&marker(&r.address))
        ));
        let op = if live.is_some() {
            "alter.schema"
        } else {
            "create.schema"
        };
        let db = Some(req_str(c, "database")?);
        server
            .batch(db, op, &format!("apply schema {raw}"), &stmts)
            .await?;
        Ok(Attrs::new())
    }

    async fn delete(
        &self,
        pg: &Postgres,
        server: &Server,
        address: &ResourceAddr,
        prior: &Attrs,
        live: &Live,
    ) -> Result<(), ProviderError> {
        if live.owner.as_deref() != Some(address.to_string().as_str()) {
            // Not ours (never created, or somebody else's under the same name).
            return Ok(());
        }
        let db = req_str(prior, "database")?;
        let name = req_str(&live.attrs, "name")?;
        if let Some(file) = export::target(prior)? {
            export::dump(server, &pg.root, &file, db, Some(name)).await?;
        }
        let cascade = if opt_bool(prior, "drop_cascade")?.unwrap_or(false) {
            " CASCADE"
        } else {
            ""
        };
        let drop = format!("DROP SCHEMA IF EXISTS {}{cascade}", ident(name));
        server
            .batch(
                Some(db),
                "drop.schema",
                &format!("drop schema {name} in {db}"),
                &[drop],
            )
            .await
    }
}
