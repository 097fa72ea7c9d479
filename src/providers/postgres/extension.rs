//! `postgresql_extension`: an extension installed in one database (`CREATE EXTENSION`),
//! its schema and version kept as configured.

use async_trait::async_trait;
use serde_json::json;

use super::super::attrs::{opt_str, req_str};
use super::super::{AttrSchema, ProviderError, ResourceSchema};
use super::conn::Server;
use super::sql::{check_idents, ident, literal};
use super::{classify, Catalog, Live, Postgres, Wanted};
use crate::addr::ResourceAddr;
use crate::providers::ApplyRequest;
use crate::value::Attrs;

/// `postgresql_extension`.
pub(super) struct Extension;

#[async_trait]
impl Catalog for Extension {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "postgresql_extension",
            attributes: vec![
                AttrSchema::optional("server").force_new(),
                AttrSchema::required("database").force_new(),
                AttrSchema::required("name").force_new(),
                AttrSchema::optional("schema"),
                AttrSchema::optional("version"),
            ],
        }
    }

    fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        check_idents(c, &["database", "name", "schema"])
    }

    fn marked(&self) -> bool {
        false
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
        server.count("select.pg_extension");
        let rows = conn
            .query(
                "SELECT e.extname::text, n.nspname::text, e.extversion \
                 FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace \
                 WHERE e.extname = ANY($1)",
                &[&names],
            )
            .await
            .map_err(|e| classify("read extensions", e))?;
        Ok(names
            .iter()
            .map(|name| {
                let row = rows.iter().find(|r| r.get::<_, &str>(0) == *name)?;
                let mut a = Attrs::new();
                a.insert("name".into(), json!(name));
                a.insert("schema".into(), json!(row.get::<_, String>(1)));
                a.insert("version".into(), json!(row.get::<_, String>(2)));
                Some(Live {
                    attrs: a,
                    owner: None,
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
        let (schema, version) = (opt_str(c, "schema")?, opt_str(c, "version")?);
        let mut stmts = vec![];
        match live {
            None => {
                let mut s = format!("CREATE EXTENSION IF NOT EXISTS {name}");
                if let Some(schema) = schema {
                    s.push_str(&format!(" SCHEMA {}", ident(schema)));
                }
                if let Some(v) = version {
                    s.push_str(&format!(" VERSION {}", literal(v)));
                }
                stmts.push(s);
            }
            Some(l) => {
                if let Some(schema) = schema.filter(|s| l.attrs.get("schema") != Some(&json!(s))) {
                    stmts.push(format!(
                        "ALTER EXTENSION {name} SET SCHEMA {}",
                        ident(schema)
                    ));
                }
                if let Some(v) = version.filter(|v| l.attrs.get("version") != Some(&json!(v))) {
                    stmts.push(format!("ALTER EXTENSION {name} UPDATE TO {}", literal(v)));
                }
            }
        }
        if stmts.is_empty() {
            return Ok(Attrs::new());
        }
        let db = Some(req_str(c, "database")?);
        server
            .batch(db, "extension", &format!("apply extension {raw}"), &stmts)
            .await?;
        Ok(Attrs::new())
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
        server
            .batch(
                Some(req_str(prior, "database")?),
                "drop.extension",
                &format!("drop extension {name}"),
                &[format!("DROP EXTENSION IF EXISTS {}", ident(name))],
            )
            .await
    }
}
