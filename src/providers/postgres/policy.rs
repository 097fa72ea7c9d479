//! `postgresql_policy`: a row-level security policy on a table (the pooled strategy),
//! with row level security enabled and FORCEd on the table, so the table's owner is
//! filtered too.
//!
//! Plan refuses the ways RLS silently fails open: a policy for a superuser or a
//! `BYPASSRLS` role, or for the table's owner when the table is not FORCEd. The server
//! rewrites `USING` and `WITH CHECK` expressions into its own canonical text; that text is
//! recorded at apply (`using_sql`, `with_check_sql`), so refresh tells an expression
//! changed out of band from one merely spelt differently. Expressions are sent in
//! single statements over the extended protocol, which refuses a second statement
//! smuggled into an expression.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::super::attrs::{check_one_of, opt_str, req_str, Case};
use super::super::{AttrSchema, PlanRequest, PlanResponse, ProviderError, ResourceSchema};
use super::conn::Server;
use super::sql::{check_idents, grantee, ident, literal, marked_by, marker, qualified};
use super::{classify, in_order_of, str_list, Catalog, Live, Postgres, Wanted};
use crate::addr::ResourceAddr;
use crate::providers::ApplyRequest;
use crate::value::{Attrs, UNKNOWN};

/// `postgresql_policy`.
pub(super) struct Policy;

const COMMANDS: &[(&str, &str)] = &[
    ("ALL", "*"),
    ("SELECT", "r"),
    ("INSERT", "a"),
    ("UPDATE", "w"),
    ("DELETE", "d"),
];

fn table_of(c: &Attrs) -> Result<String, ProviderError> {
    Ok(qualified(
        opt_str(c, "schema")?.unwrap_or("public"),
        req_str(c, "table")?,
    ))
}

/// Refuses a policy that would not filter some of its roles.
async fn check_fail_open(server: &Server, c: &Attrs) -> Result<(), ProviderError> {
    let roles: Vec<String> = str_list(c, "roles")?
        .into_iter()
        .filter(|r| r != UNKNOWN && !r.eq_ignore_ascii_case("public"))
        .collect();
    let (Some(schema), Some(table)) = (opt_str(c, "schema")?, opt_str(c, "table")?) else {
        return Ok(());
    };
    if [schema, table].contains(&UNKNOWN) {
        return Ok(());
    }
    let forced = opt_str(c, "row_security")? != Some("enable");
    let db = req_str(c, "database")?;
    let Some(conn) = super::conn_if_exists(server, Some(db)).await? else {
        return Ok(());
    };
    server.count("select.rls_roles");
    let rows = conn
        .query(
            "SELECT r.rolname::text, r.rolsuper, r.rolbypassrls, \
                    r.oid = (SELECT c.relowner FROM pg_class c \
                             WHERE c.oid = to_regclass(quote_ident($2) || '.' || quote_ident($3))) \
             FROM pg_roles r WHERE r.rolname = ANY($1)",
            &[&roles, &schema, &table],
        )
        .await
        .map_err(|e| classify("check the policy's roles", e))?;
    for r in rows {
        let name: String = r.get(0);
        let why = if r.get::<_, bool>(1) {
            Some("is a superuser")
        } else if r.get::<_, bool>(2) {
            Some("has BYPASSRLS")
        } else if r.get::<_, Option<bool>>(3) == Some(true) && !forced {
            Some("owns the table, which is not FORCEd (row_security: enable)")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(ProviderError::invalid(format!(
                "row-level security would not apply: role `{name}` {why}, so policy on {schema}.{table} does not filter its rows"
            )));
        }
    }
    Ok(())
}

#[async_trait]
impl Catalog for Policy {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "postgresql_policy",
            attributes: vec![
                AttrSchema::optional("server").force_new(),
                AttrSchema::required("database").force_new(),
                AttrSchema::optional("schema").force_new(),
                AttrSchema::required("table").force_new(),
                AttrSchema::required("name").force_new(),
                AttrSchema::optional("command").force_new(),
                AttrSchema::optional("roles"),
                AttrSchema::optional("using"),
                AttrSchema::optional("with_check"),
                AttrSchema::optional("row_security"),
                AttrSchema::computed("using_sql"),
                AttrSchema::computed("with_check_sql"),
            ],
        }
    }

    fn defaults(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("schema", json!("public")),
            ("command", json!("ALL")),
            ("roles", json!(["public"])),
            ("row_security", json!("force")),
        ]
    }

    fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        check_idents(c, &["database", "schema", "table", "name", "roles"])?;
        let commands: Vec<&str> = COMMANDS.iter().map(|c| c.0).collect();
        check_one_of(c, "command", &commands, Case::Any)?;
        check_one_of(c, "row_security", &["force", "enable"], Case::Any)?;
        if opt_str(c, "using")?.is_none() && opt_str(c, "with_check")?.is_none() {
            return Err(ProviderError::invalid(
                "a policy needs `using` or `with_check` (an expression)",
            ));
        }
        Ok(())
    }

    fn derive(&self, _pg: &Postgres, c: &mut Attrs) -> Result<(), ProviderError> {
        if let Some(cmd) = opt_str(c, "command")?.map(str::to_ascii_uppercase) {
            c.insert("command".into(), json!(cmd));
        }
        Ok(())
    }

    fn id_keys(&self) -> &'static [&'static str] {
        &["database", "schema", "table", "name"]
    }

    async fn plan(
        &self,
        _pg: &Postgres,
        server: &Server,
        req: &PlanRequest,
    ) -> Result<PlanResponse, ProviderError> {
        match check_fail_open(server, &req.config).await {
            Err(e) if e.kind == crate::providers::ErrorKind::Invalid => Err(e),
            // The server is not reachable now: apply checks again before it creates.
            _ => Ok(PlanResponse::default()),
        }
    }

    async fn read(
        &self,
        _pg: &Postgres,
        server: &Server,
        conn: &tokio_postgres::Client,
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<Option<Live>>, ProviderError> {
        let schemas: Vec<&str> = wanted
            .iter()
            .map(|w| opt_str(w.attrs, "schema").map(|s| s.unwrap_or("public")))
            .collect::<Result<_, _>>()?;
        server.count("select.pg_policy");
        let rows = conn
            .query(
                "SELECT n.nspname::text, c.relname::text, p.polname::text, p.polcmd::text, \
                   ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END \
                         FROM unnest(p.polroles) r ORDER BY 1), \
                   pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid), \
                   c.relrowsecurity, c.relforcerowsecurity, obj_description(p.oid, 'pg_policy') \
                 FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = ANY($1)",
                &[&schemas],
            )
            .await
            .map_err(|e| classify("read policies", e))?;
        let mut out = Vec::with_capacity(wanted.len());
        for (w, schema) in wanted.iter().zip(&schemas) {
            let (table, name) = (req_str(w.attrs, "table")?, req_str(w.attrs, "name")?);
            let Some(row) = rows.iter().find(|r| {
                r.get::<_, &str>(0) == *schema
                    && r.get::<_, &str>(1) == table
                    && r.get::<_, &str>(2) == name
            }) else {
                out.push(None);
                continue;
            };
            let polcmd: String = row.get(3);
            let command = COMMANDS
                .iter()
                .find(|c| c.1 == polcmd)
                .map_or(polcmd.as_str(), |c| c.0);
            let mut a = Attrs::new();
            a.insert("schema".into(), json!(schema));
            a.insert("table".into(), json!(table));
            a.insert("name".into(), json!(name));
            a.insert("command".into(), json!(command));
            a.insert("roles".into(), in_order_of(row.get(4), w.attrs, "roles"));
            // An expression the server still holds as recorded keeps its configured text.
            for (key, sql_key, col) in [
                ("using", "using_sql", 5),
                ("with_check", "with_check_sql", 6),
            ] {
                let live: Option<String> = row.get(col);
                let recorded = w.attrs.get(sql_key).and_then(Value::as_str);
                let value = match (&live, recorded) {
                    (Some(l), Some(r)) if l == r => {
                        w.attrs.get(key).cloned().unwrap_or(Value::Null)
                    }
                    (None, _) => Value::Null,
                    (Some(l), _) => json!(l),
                };
                a.insert(key.into(), value);
                // The recorded canonical text stays: a change shows on `key` alone.
                a.insert(sql_key.into(), recorded.map_or(json!(live), |r| json!(r)));
            }
            let rls = match (row.get::<_, bool>(7), row.get::<_, bool>(8)) {
                (false, _) => "off",
                (true, false) => "enable",
                (true, true) => "force",
            };
            a.insert("row_security".into(), json!(rls));
            out.push(Some(Live {
                attrs: a,
                owner: marked_by(row.get(9)),
            }));
        }
        Ok(out)
    }

    async fn apply(
        &self,
        pg: &Postgres,
        server: &Server,
        r: &ApplyRequest,
        live: Option<&Live>,
    ) -> Result<Attrs, ProviderError> {
        let c = &r.config;
        check_fail_open(server, c).await?;
        let table = table_of(c)?;
        let name = ident(req_str(c, "name")?);
        let roles: Vec<String> = str_list(c, "roles")?.iter().map(|r| grantee(r)).collect();
        let roles = roles.join(", ");
        let using = opt_str(c, "using")?.map(|u| format!(" USING ({u})"));
        let check = opt_str(c, "with_check")?.map(|w| format!(" WITH CHECK ({w})"));
        let expressions = format!("{}{}", using.unwrap_or_default(), check.unwrap_or_default());
        let mut stmts = vec![
            format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"),
            if opt_str(c, "row_security")? == Some("enable") {
                format!("ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            } else {
                format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            },
        ];
        match live {
            Some(_) => stmts.push(format!(
                "ALTER POLICY {name} ON {table} TO {roles}{expressions}"
            )),
            None => stmts.push(format!(
                "CREATE POLICY {name} ON {table} AS PERMISSIVE FOR {} TO {roles}{expressions}",
                req_str(c, "command")?
            )),
        }
        stmts.push(format!(
            "COMMENT ON POLICY {name} ON {table} IS {}",
            literal(&marker(&r.address))
        ));
        let db = req_str(c, "database")?;
        let lock = pg.acl_lock(&server.name, db);
        let _held = lock.lock().await;
        let mut conn = server.conn(Some(db)).await?;
        let tx = conn.transaction().await.map_err(|e| classify("begin", e))?;
        server.count(if live.is_some() {
            "alter.policy"
        } else {
            "create.policy"
        });
        for s in &stmts {
            tx.execute(s.as_str(), &[])
                .await
                .map_err(|e| classify(&format!("policy {name} on {table}"), e))?;
        }
        let row = tx
            .query_one(
                "SELECT pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) \
                 FROM pg_policy p WHERE p.polrelid = to_regclass($1) AND p.polname = $2",
                &[&table, &req_str(c, "name")?],
            )
            .await
            .map_err(|e| classify("read the policy back", e))?;
        tx.commit()
            .await
            .map_err(|e| classify(&format!("commit policy {name}"), e))?;
        let mut extra = Attrs::new();
        extra.insert("using_sql".into(), json!(row.get::<_, Option<String>>(0)));
        extra.insert(
            "with_check_sql".into(),
            json!(row.get::<_, Option<String>>(1)),
        );
        Ok(extra)
    }

    async fn delete(
        &self,
        pg: &Postgres,
        server: &Server,
        _address: &ResourceAddr,
        prior: &Attrs,
        _live: &Live,
    ) -> Result<(), ProviderError> {
        let db = req_str(prior, "database")?;
        let lock = pg.acl_lock(&server.name, db);
        let _held = lock.lock().await;
        let conn = server.conn(Some(db)).await?;
        server.count("drop.policy");
        let stmt = format!(
            "DROP POLICY IF EXISTS {} ON {}",
            ident(req_str(prior, "name")?),
            table_of(prior)?
        );
        match conn.execute(stmt.as_str(), &[]).await {
            Ok(_) => Ok(()),
            // The table went first (a dropped schema): the policy went with it.
            Err(e)
                if e.code()
                    .is_some_and(|c| ["42P01", "3F000"].contains(&c.code())) =>
            {
                Ok(())
            }
            Err(e) => Err(classify("drop policy", e)),
        }
    }
}
