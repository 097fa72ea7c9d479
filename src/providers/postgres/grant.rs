//! `postgresql_grant` and `postgresql_default_privileges`: the exact privileges of one
//! role on one kind of object.
//!
//! Apply revokes and grants in ONE transaction, and every ACL change in a database is
//! serialized by the provider, so parallel grants never fail with "tuple concurrently
//! updated" (a table's ACL is one catalog row that grants for different roles rewrite).
//! Refresh reads the ACLs (`aclexplode`) of every object a database's grants name in one
//! query per object kind; a privilege revoked or added by hand is drift.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde_json::{json, Value};

use super::super::attrs::{check_one_of, opt_str, req_str, Case};
use super::super::{AttrSchema, ProviderError, ResourceSchema};
use super::conn::Server;
use super::sql::{check_idents, grantee, ident, qualified};
use super::{classify, str_list, Catalog, Live, Postgres, Wanted};
use crate::addr::ResourceAddr;
use crate::providers::ApplyRequest;
use crate::value::{Attrs, UNKNOWN};

const OBJECT_TYPES: &[&str] = &["database", "schema", "table", "sequence", "function"];

/// The privileges PostgreSQL knows for an object type.
fn all_privileges(object_type: &str) -> &'static [&'static str] {
    match object_type {
        "database" => &["CONNECT", "CREATE", "TEMPORARY"],
        "schema" => &["CREATE", "USAGE"],
        "table" => &[
            "DELETE",
            "INSERT",
            "REFERENCES",
            "SELECT",
            "TRIGGER",
            "TRUNCATE",
            "UPDATE",
        ],
        "sequence" => &["SELECT", "UPDATE", "USAGE"],
        "function" => &["EXECUTE"],
        "type" => &["USAGE"],
        _ => &[],
    }
}

/// Privileges in canonical form (upper case, `ALL` expanded, sorted), checked against
/// the object type.
fn normalize(c: &mut Attrs, object_type_key: &str) -> Result<(), ProviderError> {
    let Some(t) = opt_str(c, object_type_key)?.map(str::to_string) else {
        return Ok(());
    };
    let mut set = BTreeSet::new();
    for p in str_list(c, "privileges")? {
        if p == UNKNOWN || p.contains("${") {
            return Ok(());
        }
        let p = p.to_ascii_uppercase();
        let p = if p == "TEMP" {
            "TEMPORARY".to_string()
        } else {
            p
        };
        let known = all_privileges(&t);
        if p == "ALL" || p == "ALL PRIVILEGES" {
            set.extend(known.iter().map(|s| s.to_string()));
        } else if known.contains(&p.as_str()) {
            set.insert(p);
        } else {
            return Err(ProviderError::invalid(format!(
                "privilege `{p}` does not apply to {t} objects (expected {} or ALL)",
                known.join(", ")
            )));
        }
    }
    c.insert(
        "privileges".into(),
        json!(set.into_iter().collect::<Vec<_>>()),
    );
    if c.contains_key("objects") {
        let mut objects = str_list(c, "objects")?;
        objects.sort();
        objects.dedup();
        c.insert("objects".into(), json!(objects));
    }
    Ok(())
}

/// The `ON …` clause naming the objects of a grant.
fn on_clause(c: &Attrs, db: &str) -> Result<String, ProviderError> {
    let t = req_str(c, "object_type")?;
    if t == "database" {
        return Ok(format!("DATABASE {}", ident(db)));
    }
    let schema = req_str(c, "schema")?;
    if t == "schema" {
        return Ok(format!("SCHEMA {}", ident(schema)));
    }
    let objects = str_list(c, "objects")?;
    let (one, all) = match t {
        "table" => ("TABLE", "TABLES"),
        "sequence" => ("SEQUENCE", "SEQUENCES"),
        _ => ("FUNCTION", "FUNCTIONS"),
    };
    Ok(if objects.is_empty() {
        format!("ALL {all} IN SCHEMA {}", ident(schema))
    } else {
        let list: Vec<String> = objects.iter().map(|o| qualified(schema, o)).collect();
        format!("{one} {}", list.join(", "))
    })
}

/// One ACL entry: object (schema, name), grantee, privilege (`None` for an object with
/// no entry at all, so objects without privileges still count).
type AclRow = (String, String, Option<String>, Option<String>);

/// The ACL entries of every object of `object_type` in `schemas`.
async fn acl_rows(
    server: &Server,
    conn: &tokio_postgres::Client,
    object_type: &str,
    schemas: &[String],
) -> Result<Vec<AclRow>, ProviderError> {
    const GRANTEE: &str =
        "CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_get_userbyid(a.grantee)::text END";
    let q = match object_type {
        "database" => format!(
            "SELECT '', d.datname::text, {GRANTEE}, a.privilege_type::text \
             FROM pg_database d \
             LEFT JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a ON true \
             WHERE d.datname = current_database() AND cardinality($1::text[]) >= 0"
        ),
        "schema" => format!(
            "SELECT n.nspname::text, n.nspname::text, {GRANTEE}, a.privilege_type::text \
             FROM pg_namespace n \
             LEFT JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a ON true \
             WHERE n.nspname = ANY($1)"
        ),
        "function" => format!(
            "SELECT n.nspname::text, p.proname::text, {GRANTEE}, a.privilege_type::text \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             LEFT JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a ON true \
             WHERE n.nspname = ANY($1) AND p.prokind IN ('f', 'p')"
        ),
        kind => {
            let kinds = if kind == "sequence" {
                "'S'"
            } else {
                "'r', 'p', 'v', 'm', 'f'"
            };
            format!(
                "SELECT n.nspname::text, c.relname::text, {GRANTEE}, a.privilege_type::text \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN LATERAL aclexplode(coalesce(c.relacl, \
                     acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::\"char\", c.relowner))) a ON true \
                 WHERE n.nspname = ANY($1) AND c.relkind IN ({kinds})"
            )
        }
    };
    server.count(&format!("select.acl.{object_type}"));
    let rows = conn
        .query(&q, &[&schemas])
        .await
        .map_err(|e| classify(&format!("read {object_type} privileges"), e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

/// The privileges a role holds on a set of objects, as one list: the common set when
/// every object has the same; otherwise each privilege held on only some objects is
/// listed as `PRIV (on some)`. With no objects at all, `vacuous` (nothing to hold).
fn summarize(per_object: &BTreeMap<String, BTreeSet<String>>, vacuous: &[String]) -> Vec<String> {
    let mut sets = per_object.values();
    let Some(first) = sets.next() else {
        return vacuous.to_vec();
    };
    if sets.all(|s| s == first) {
        return first.iter().cloned().collect();
    }
    let all: BTreeSet<&String> = per_object.values().flatten().collect();
    all.into_iter()
        .map(|p| {
            if per_object.values().all(|s| s.contains(p)) {
                p.clone()
            } else {
                format!("{p} (on some)")
            }
        })
        .collect()
}

/// Roles of `names` that exist (`public` always does).
async fn existing_roles(
    server: &Server,
    conn: &tokio_postgres::Client,
    names: &[String],
) -> Result<BTreeSet<String>, ProviderError> {
    server.count("select.pg_roles");
    let rows = conn
        .query(
            "SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1)",
            &[&names],
        )
        .await
        .map_err(|e| classify("read roles", e))?;
    let mut out: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
    out.insert("public".into());
    Ok(out)
}

/// `postgresql_grant`.
pub(super) struct Grant;

#[async_trait]
impl Catalog for Grant {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "postgresql_grant",
            attributes: vec![
                AttrSchema::optional("server").force_new(),
                AttrSchema::required("database").force_new(),
                AttrSchema::required("role").force_new(),
                AttrSchema::optional("schema").force_new(),
                AttrSchema::required("object_type").force_new(),
                AttrSchema::optional("objects").force_new(),
                AttrSchema::required("privileges"),
            ],
        }
    }

    fn defaults(&self) -> Vec<(&'static str, Value)> {
        vec![("objects", json!([]))]
    }

    fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        check_idents(c, &["database", "role", "schema", "objects"])?;
        check_one_of(c, "object_type", OBJECT_TYPES, Case::Any)?;
        let t = opt_str(c, "object_type")?;
        if t.is_some_and(|t| t != "database" && t != UNKNOWN) && opt_str(c, "schema")?.is_none() {
            return Err(ProviderError::invalid(format!(
                "`schema` is required for object_type `{}`",
                t.unwrap_or_default()
            )));
        }
        if matches!(t, Some("database" | "schema")) && !str_list(c, "objects")?.is_empty() {
            return Err(ProviderError::invalid(
                "`objects` applies to tables, sequences and functions only",
            ));
        }
        normalize(&mut c.clone(), "object_type")
    }

    fn derive(&self, _pg: &Postgres, c: &mut Attrs) -> Result<(), ProviderError> {
        normalize(c, "object_type")
    }

    fn marked(&self) -> bool {
        false
    }

    fn id_keys(&self) -> &'static [&'static str] {
        &["database", "role", "object_type", "schema"]
    }

    async fn read(
        &self,
        _pg: &Postgres,
        server: &Server,
        conn: &tokio_postgres::Client,
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<Option<Live>>, ProviderError> {
        let roles: Vec<String> = wanted
            .iter()
            .map(|w| req_str(w.attrs, "role").map(str::to_string))
            .collect::<Result<_, _>>()?;
        let existing = existing_roles(server, conn, &roles).await?;
        // One ACL read per object kind, over every schema the grants name.
        let mut by_kind: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for w in wanted {
            let kind = req_str(w.attrs, "object_type")?.to_string();
            let schema = opt_str(w.attrs, "schema")?.unwrap_or_default().to_string();
            by_kind.entry(kind).or_default().insert(schema);
        }
        let mut acls: BTreeMap<String, Vec<AclRow>> = BTreeMap::new();
        for (kind, schemas) in by_kind {
            let schemas: Vec<String> = schemas.into_iter().collect();
            acls.insert(kind.clone(), acl_rows(server, conn, &kind, &schemas).await?);
        }
        let mut out = Vec::with_capacity(wanted.len());
        for (w, role) in wanted.iter().zip(&roles) {
            if !existing.contains(role) {
                out.push(None);
                continue;
            }
            let kind = req_str(w.attrs, "object_type")?;
            let schema = opt_str(w.attrs, "schema")?.unwrap_or_default();
            let named = str_list(w.attrs, "objects")?;
            let rows: Vec<&AclRow> = acls[kind]
                .iter()
                .filter(|r| kind == "database" || r.0 == schema)
                .collect();
            if kind == "schema" && rows.is_empty() {
                out.push(None);
                continue;
            }
            let mut per_object: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for n in &named {
                per_object.entry(n.clone()).or_default();
            }
            for (_, object, who, privilege) in rows {
                if !named.is_empty() && !named.contains(object) {
                    continue;
                }
                let set = per_object.entry(object.clone()).or_default();
                if let (Some(who), Some(p)) = (who, privilege) {
                    if who == role {
                        set.insert(p.clone());
                    }
                }
            }
            let want = str_list(w.attrs, "privileges")?;
            let mut a = Attrs::new();
            a.insert("privileges".into(), json!(summarize(&per_object, &want)));
            out.push(Some(Live {
                attrs: a,
                owner: None,
            }));
        }
        Ok(out)
    }

    fn max_batch(&self) -> usize {
        GRANT_BATCH
    }

    async fn apply(
        &self,
        pg: &Postgres,
        server: &Server,
        r: &ApplyRequest,
        live: Option<&Live>,
    ) -> Result<Attrs, ProviderError> {
        self.apply_batch(pg, server, &[(r, live)])
            .await
            .pop()
            .unwrap_or_else(|| Err(ProviderError::failed("no answer")))
    }

    /// Every grant of one (database, role) pair in the batch in ONE transaction: what is
    /// no longer wanted is revoked and what is wanted granted, atomically.
    async fn apply_batch(
        &self,
        pg: &Postgres,
        server: &Server,
        reqs: &[(&ApplyRequest, Option<&Live>)],
    ) -> Vec<Result<Attrs, ProviderError>> {
        let mut out: Vec<Result<Attrs, ProviderError>> =
            reqs.iter().map(|_| Ok(Attrs::new())).collect();
        let mut pairs: BTreeMap<(String, String), (Vec<usize>, Vec<String>)> = BTreeMap::new();
        for (i, (r, _)) in reqs.iter().enumerate() {
            match grant_statements(&r.config) {
                Ok((db, role, stmts)) => {
                    let pair = pairs.entry((db, role)).or_default();
                    pair.0.push(i);
                    pair.1.extend(stmts);
                }
                Err(e) => out[i] = Err(e),
            }
        }
        for ((db, _), (idx, stmts)) in pairs {
            if let Err(e) = acl_transaction(pg, server, &db, &stmts, "grant").await {
                for i in idx {
                    out[i] = Err(e.clone());
                }
            }
        }
        out
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
        let stmt = format!(
            "REVOKE ALL ON {} FROM {}",
            on_clause(prior, db)?,
            grantee(req_str(prior, "role")?)
        );
        ignore_gone(acl_transaction(pg, server, db, &[stmt], "revoke").await)
    }
}

/// How many grants one apply carries (one transaction per (database, role) pair in it).
const GRANT_BATCH: usize = 32;

/// The database, role and statements that make a grant's privileges exactly the
/// configured ones.
fn grant_statements(c: &Attrs) -> Result<(String, String, Vec<String>), ProviderError> {
    let db = req_str(c, "database")?;
    let role = req_str(c, "role")?;
    let on = on_clause(c, db)?;
    let to = grantee(role);
    let privileges = str_list(c, "privileges")?;
    let mut stmts = vec![format!("REVOKE ALL ON {on} FROM {to}")];
    if !privileges.is_empty() {
        stmts.push(format!("GRANT {} ON {on} TO {to}", privileges.join(", ")));
    }
    Ok((db.to_string(), role.to_string(), stmts))
}

/// Runs ACL statements in one transaction, one at a time per database.
async fn acl_transaction(
    pg: &Postgres,
    server: &Server,
    db: &str,
    stmts: &[String],
    what: &str,
) -> Result<(), ProviderError> {
    let lock = pg.acl_lock(&server.name, db);
    let _held = lock.lock().await;
    server
        .batch(Some(db), what, &format!("{what} in database {db}"), stmts)
        .await
}

/// A revoke whose role, schema or object is already gone has nothing left to revoke.
fn ignore_gone(r: Result<(), ProviderError>) -> Result<(), ProviderError> {
    match r {
        Err(e) if e.kind == crate::providers::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Object types of default privileges, their SQL plural and catalog letter.
const DEFAULT_TYPES: &[(&str, &str, &str)] = &[
    ("table", "TABLES", "r"),
    ("sequence", "SEQUENCES", "S"),
    ("function", "FUNCTIONS", "f"),
    ("type", "TYPES", "T"),
    ("schema", "SCHEMAS", "n"),
];

fn default_type(
    t: &str,
) -> Result<&'static (&'static str, &'static str, &'static str), ProviderError> {
    DEFAULT_TYPES.iter().find(|d| d.0 == t).ok_or_else(|| {
        ProviderError::invalid(format!(
            "`object_type` is `{t}`: expected table, sequence, function, type or schema"
        ))
    })
}

/// `ALTER DEFAULT PRIVILEGES FOR ROLE owner [IN SCHEMA s]` with `action`.
fn alter_default(c: &Attrs, action: &str) -> Result<String, ProviderError> {
    let (_, plural, _) = default_type(req_str(c, "object_type")?)?;
    let mut s = format!(
        "ALTER DEFAULT PRIVILEGES FOR ROLE {}",
        ident(req_str(c, "owner")?)
    );
    if let Some(schema) = opt_str(c, "schema")?.filter(|s| !s.is_empty()) {
        s.push_str(&format!(" IN SCHEMA {}", ident(schema)));
    }
    let to = grantee(req_str(c, "role")?);
    Ok(match action {
        "REVOKE" => format!("{s} REVOKE ALL ON {plural} FROM {to}"),
        privileges => format!("{s} GRANT {privileges} ON {plural} TO {to}"),
    })
}

/// `postgresql_default_privileges`: privileges `role` gets on objects `owner` creates later.
pub(super) struct DefaultPrivileges;

#[async_trait]
impl Catalog for DefaultPrivileges {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "postgresql_default_privileges",
            attributes: vec![
                AttrSchema::optional("server").force_new(),
                AttrSchema::required("database").force_new(),
                AttrSchema::required("role").force_new(),
                AttrSchema::required("owner").force_new(),
                AttrSchema::optional("schema").force_new(),
                AttrSchema::required("object_type").force_new(),
                AttrSchema::required("privileges"),
            ],
        }
    }

    fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        check_idents(c, &["database", "role", "owner", "schema"])?;
        let types: Vec<&str> = DEFAULT_TYPES.iter().map(|d| d.0).collect();
        check_one_of(c, "object_type", &types, Case::Any)?;
        normalize(&mut c.clone(), "object_type")
    }

    fn derive(&self, _pg: &Postgres, c: &mut Attrs) -> Result<(), ProviderError> {
        normalize(c, "object_type")
    }

    fn marked(&self) -> bool {
        false
    }

    fn id_keys(&self) -> &'static [&'static str] {
        &["database", "owner", "role", "object_type", "schema"]
    }

    async fn read(
        &self,
        _pg: &Postgres,
        server: &Server,
        conn: &tokio_postgres::Client,
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<Option<Live>>, ProviderError> {
        let mut roles = vec![];
        for w in wanted {
            roles.push(req_str(w.attrs, "role")?.to_string());
            roles.push(req_str(w.attrs, "owner")?.to_string());
        }
        let existing = existing_roles(server, conn, &roles).await?;
        server.count("select.pg_default_acl");
        let rows = conn
            .query(
                "SELECT pg_get_userbyid(d.defaclrole)::text, coalesce(n.nspname::text, ''), \
                        d.defaclobjtype::text, \
                        CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_get_userbyid(a.grantee)::text END, \
                        a.privilege_type::text \
                 FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace, \
                      aclexplode(d.defaclacl) a",
                &[],
            )
            .await
            .map_err(|e| classify("read default privileges", e))?;
        let mut out = Vec::with_capacity(wanted.len());
        for w in wanted {
            let (role, owner) = (req_str(w.attrs, "role")?, req_str(w.attrs, "owner")?);
            if !existing.contains(role) || !existing.contains(owner) {
                out.push(None);
                continue;
            }
            let schema = opt_str(w.attrs, "schema")?.unwrap_or_default();
            let (_, _, letter) = default_type(req_str(w.attrs, "object_type")?)?;
            let privileges: BTreeSet<String> = rows
                .iter()
                .filter(|r| {
                    r.get::<_, &str>(0) == owner
                        && r.get::<_, &str>(1) == schema
                        && r.get::<_, &str>(2) == *letter
                        && r.get::<_, &str>(3) == role
                })
                .map(|r| r.get::<_, String>(4))
                .collect();
            let mut a = Attrs::new();
            a.insert("privileges".into(), json!(privileges));
            out.push(Some(Live {
                attrs: a,
                owner: None,
            }));
        }
        Ok(out)
    }

    async fn apply(
        &self,
        pg: &Postgres,
        server: &Server,
        r: &ApplyRequest,
        _live: Option<&Live>,
    ) -> Result<Attrs, ProviderError> {
        let c = &r.config;
        let privileges = str_list(c, "privileges")?;
        let mut stmts = vec![alter_default(c, "REVOKE")?];
        if !privileges.is_empty() {
            stmts.push(alter_default(c, &privileges.join(", "))?);
        }
        acl_transaction(
            pg,
            server,
            req_str(c, "database")?,
            &stmts,
            "default privileges",
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
        let stmt = alter_default(prior, "REVOKE")?;
        ignore_gone(
            acl_transaction(pg, server, req_str(prior, "database")?, &[stmt], "revoke").await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn privileges_are_expanded_upper_cased_and_sorted() {
        let mut c = Attrs::new();
        c.insert("object_type".into(), json!("database"));
        c.insert("privileges".into(), json!(["connect", "temp", "CONNECT"]));
        normalize(&mut c, "object_type").unwrap();
        assert_eq!(c["privileges"], json!(["CONNECT", "TEMPORARY"]));
        c.insert("privileges".into(), json!(["ALL"]));
        normalize(&mut c, "object_type").unwrap();
        assert_eq!(c["privileges"], json!(["CONNECT", "CREATE", "TEMPORARY"]));
        c.insert("privileges".into(), json!(["SELECT"]));
        let e = normalize(&mut c, "object_type").unwrap_err();
        assert!(e.message.contains("SELECT"), "{e}");
    }

    #[test]
    fn a_privilege_held_on_some_objects_only_is_shown_as_such() {
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), set(&["SELECT"]));
        m.insert("b".to_string(), set(&["INSERT", "SELECT"]));
        assert_eq!(summarize(&m, &[]), vec!["INSERT (on some)", "SELECT"]);
        m.insert("b".to_string(), set(&["SELECT"]));
        assert_eq!(summarize(&m, &[]), vec!["SELECT"]);
        assert_eq!(
            summarize(&BTreeMap::new(), &["SELECT".to_string()]),
            vec!["SELECT"]
        );
    }
}
