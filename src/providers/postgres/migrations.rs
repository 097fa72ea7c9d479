//! `postgresql_migrations`: a directory of SQL files (`NNNN_name.sql`) applied to one
//! schema in version order, each in its own transaction, and recorded in
//! `landlord_schema_migrations(version, name, checksum, applied_at)` in that schema.
//!
//! The files are read when the workspace is rendered: `versions` and `checksums` are
//! derived from them, so a new file is a planned change of every tenant using the
//! directory. A file whose checksum changed after it was applied is refused (as Flyway
//! validates); a version recorded on the server without a file is drift that apply
//! refuses to guess about. A row deleted by hand for a version landlord recorded as
//! applied is written back without running the file again. A migration killed mid-file is
//! rolled back by PostgreSQL and runs again on the next apply; an advisory lock per schema
//! keeps two runners from applying the same file. Destroying the resource changes nothing
//! on the server: what the files made goes with the schema or database.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::super::attrs::{opt_str, req_str};
use super::super::{AttrSchema, PlanRequest, PlanResponse, ProviderError, ResourceSchema};
use super::conn::Server;
use super::sql::{check_idents, ident, literal, qualified};
use super::{classify, str_list, Catalog, Live, Postgres, Wanted};
use crate::addr::ResourceAddr;
use crate::providers::ApplyRequest;
use crate::value::{Attrs, UNKNOWN};

/// The history table in each migrated schema.
const TABLE: &str = "landlord_schema_migrations";

/// `postgresql_migrations`.
pub(super) struct Migrations;

/// One migration file.
#[derive(Debug, Clone, PartialEq)]
struct File {
    /// `0003` as written in the name.
    version: String,
    /// `add_orders`.
    name: String,
    /// `0003_add_orders`: how versions are listed.
    key: String,
    path: PathBuf,
}

/// Splits `0003_add_orders.sql` into version and name.
fn parse_name(file: &str) -> Option<(String, String)> {
    let stem = file.strip_suffix(".sql")?;
    let (version, name) = stem.split_once('_')?;
    let ok_version = !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit());
    let ok_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (ok_version && ok_name).then(|| (version.to_string(), name.to_string()))
}

/// The migration files of `dir`, in version order.
fn files(root: &Path, source: &str) -> Result<Vec<File>, ProviderError> {
    let dir = root.join(source);
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        ProviderError::invalid(format!(
            "`source` directory `{source}` cannot be read (relative to the workspace {}): {e}",
            root.display()
        ))
    })?;
    let mut out: Vec<File> = vec![];
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().to_string();
        if !file.ends_with(".sql") {
            continue;
        }
        let (version, name) = parse_name(&file).ok_or_else(|| {
            ProviderError::invalid(format!(
                "migration file `{source}/{file}` has no version: name files NNNN_name.sql (digits, `_`, letters, digits, `_` or `-`)"
            ))
        })?;
        out.push(File {
            key: format!("{version}_{name}"),
            version,
            name,
            path: e.path(),
        });
    }
    out.sort_by(|a, b| {
        let n = |f: &File| f.version.trim_start_matches('0').to_string();
        (n(a).len(), n(a)).cmp(&(n(b).len(), n(b)))
    });
    for w in out.windows(2) {
        if w[0].version.trim_start_matches('0') == w[1].version.trim_start_matches('0') {
            return Err(ProviderError::invalid(format!(
                "migrations `{source}/{}.sql` and `{source}/{}.sql` have the same version",
                w[0].key, w[1].key
            )));
        }
    }
    Ok(out)
}

/// A source directory's `versions` and `checksums`, or why it cannot be read.
pub(super) type Scanned = Result<(Value, Value), ProviderError>;

/// The `versions` and `checksums` of a source directory's files.
fn scan(root: &Path, source: &str) -> Result<(Value, Value), ProviderError> {
    let files = files(root, source)?;
    let mut sums = serde_json::Map::new();
    for f in &files {
        let text = std::fs::read(&f.path).map_err(|e| {
            ProviderError::invalid(format!("cannot read `{source}/{}.sql`: {e}", f.key))
        })?;
        sums.insert(f.key.clone(), json!(checksum(&text)));
    }
    let keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
    Ok((json!(keys), Value::Object(sums)))
}

fn checksum(text: &[u8]) -> String {
    hex::encode(Sha256::digest(text))
}

/// The line of `text` at a 1-based character position the server reported.
fn line_at(text: &str, position: u32) -> usize {
    text.chars()
        .take(position.saturating_sub(1) as usize)
        .filter(|&c| c == '\n')
        .count()
        + 1
}

/// The recorded `checksums` mapping.
fn checksums(c: &Attrs) -> BTreeMap<String, String> {
    c.get("checksums")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Refuses a file changed after it was applied (`applied` maps versions to checksums).
fn check_unchanged(
    source: &str,
    desired: &BTreeMap<String, String>,
    applied: &BTreeMap<String, String>,
) -> Result<(), ProviderError> {
    for (key, was) in applied {
        if let Some(now) = desired.get(key).filter(|now| *now != was) {
            return Err(ProviderError::invalid(format!(
                "migration `{source}/{key}.sql` was changed after it was applied (checksum {} then, {} now): revert it and add a new migration instead",
                &was[..12.min(was.len())],
                &now[..12.min(now.len())]
            )));
        }
    }
    Ok(())
}

#[async_trait]
impl Catalog for Migrations {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "postgresql_migrations",
            attributes: vec![
                AttrSchema::optional("server").force_new(),
                AttrSchema::required("database").force_new(),
                AttrSchema::required("schema").force_new(),
                AttrSchema::optional("role"),
                AttrSchema::required("source"),
                AttrSchema::optional("versions"),
                AttrSchema::optional("checksums"),
            ],
        }
    }

    fn validate(&self, c: &Attrs) -> Result<(), ProviderError> {
        check_idents(c, &["database", "schema", "role"])
    }

    fn derive(&self, pg: &Postgres, c: &mut Attrs) -> Result<(), ProviderError> {
        let source = req_str(c, "source")?;
        if source.contains("${") || source == UNKNOWN {
            return Err(ProviderError::invalid(
                "`source` must be a directory known when planning, not a reference",
            ));
        }
        // Every tenant of a tier names the same directory: it is read once per run.
        let (versions, sums) = {
            let mut cache = pg.sources.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .entry(source.to_string())
                .or_insert_with(|| scan(&pg.root, source))
                .clone()?
        };
        c.insert("versions".into(), versions);
        c.insert("checksums".into(), sums);
        Ok(())
    }

    fn marked(&self) -> bool {
        false
    }

    fn id_keys(&self) -> &'static [&'static str] {
        &["database", "schema"]
    }

    async fn plan(
        &self,
        _pg: &Postgres,
        _server: &Server,
        req: &PlanRequest,
    ) -> Result<PlanResponse, ProviderError> {
        if let Some(prior) = &req.prior {
            let source = req_str(&req.config, "source")?;
            check_unchanged(source, &checksums(&req.config), &checksums(prior))?;
        }
        Ok(PlanResponse::default())
    }

    async fn read(
        &self,
        _pg: &Postgres,
        server: &Server,
        conn: &tokio_postgres::Client,
        wanted: &[Wanted<'_>],
    ) -> Result<Vec<Option<Live>>, ProviderError> {
        let schemas = super::names(wanted, "schema")?;
        server.count("select.pg_namespace");
        let found = conn
            .query(
                "SELECT n.nspname::text, EXISTS (SELECT 1 FROM pg_class c \
                   WHERE c.relnamespace = n.oid AND c.relname = $2 AND c.relkind = 'r') \
                 FROM pg_namespace n WHERE n.nspname = ANY($1)",
                &[&schemas, &TABLE],
            )
            .await
            .map_err(|e| classify("read migrated schemas", e))?;
        let with_table: Vec<String> = found
            .iter()
            .filter(|r| r.get::<_, bool>(1))
            .map(|r| r.get(0))
            .collect();
        // Every history table of the database in one round trip: one small SELECT per
        // table in one simple-protocol query. (A single UNION ALL over a thousand tables
        // took 2 s of planning and locking; a thousand SELECTs take 0.1 s.)
        let mut history: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        if !with_table.is_empty() {
            let q: Vec<String> = with_table
                .iter()
                .map(|s| {
                    format!(
                        "SELECT {}, version || '_' || name, checksum FROM {} \
                         ORDER BY length(ltrim(version, '0')), ltrim(version, '0')",
                        literal(s),
                        qualified(s, TABLE)
                    )
                })
                .collect();
            server.count("select.migrations");
            let messages = conn
                .simple_query(&q.join(";\n"))
                .await
                .map_err(|e| classify("read migration history", e))?;
            for m in messages {
                if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                    let text = |i| r.get(i).unwrap_or_default().to_string();
                    history.entry(text(0)).or_default().push((text(1), text(2)));
                }
            }
        }
        Ok(schemas
            .iter()
            .zip(wanted)
            .map(|(schema, w)| {
                found.iter().find(|r| r.get::<_, &str>(0) == *schema)?;
                let rows = history.get(*schema).cloned().unwrap_or_default();
                let mut a = Attrs::new();
                a.insert(
                    "versions".into(),
                    json!(rows.iter().map(|r| &r.0).collect::<Vec<_>>()),
                );
                // A missing row shows in `versions`; the checksums of the files landlord
                // knows stay, so only a row whose checksum differs shows here.
                let mut sums = checksums(w.attrs);
                sums.extend(rows);
                a.insert(
                    "checksums".into(),
                    Value::Object(sums.into_iter().map(|(k, v)| (k, json!(v))).collect()),
                );
                Some(Live {
                    attrs: a,
                    owner: None,
                })
            })
            .collect())
    }

    async fn apply(
        &self,
        pg: &Postgres,
        server: &Server,
        r: &ApplyRequest,
        live: Option<&Live>,
    ) -> Result<Attrs, ProviderError> {
        let c = &r.config;
        let (db, schema, source) = (
            req_str(c, "database")?,
            req_str(c, "schema")?,
            req_str(c, "source")?,
        );
        let role = opt_str(c, "role")?;
        let files = files(&pg.root, source)?;
        let desired = checksums(c);
        let applied: BTreeMap<String, String> = match live {
            Some(l) => {
                let sums = checksums(&l.attrs);
                str_list(&l.attrs, "versions")?
                    .into_iter()
                    .map(|v| {
                        let sum = sums.get(&v).cloned().unwrap_or_default();
                        (v, sum)
                    })
                    .collect()
            }
            None => BTreeMap::new(),
        };
        check_unchanged(source, &desired, &applied)?;
        if let Some(extra) = applied.keys().find(|k| !desired.contains_key(*k)) {
            return Err(ProviderError::failed(format!(
                "migration {extra} is recorded in {schema}.{TABLE} but `{source}` has no file for it: restore the file (or delete the row if it was never meant to run)"
            )));
        }
        let recorded: Vec<String> = r
            .prior
            .as_ref()
            .map(|p| str_list(p, "versions"))
            .transpose()?
            .unwrap_or_default();
        let history = qualified(schema, TABLE);
        let set_role = role.map(|r| format!("SET LOCAL ROLE {}", ident(r)));
        let mut conn = server.conn(Some(db)).await?;
        {
            let tx = conn.transaction().await.map_err(|e| classify("begin", e))?;
            if let Some(s) = &set_role {
                tx.batch_execute(s)
                    .await
                    .map_err(|e| classify("set role", e))?;
            }
            server.count("create.history");
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {history} (version text PRIMARY KEY, name text NOT NULL, \
                 checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            ))
            .await
            .map_err(|e| classify(&format!("create {history}"), e))?;
            tx.commit().await.map_err(|e| classify("commit", e))?;
        }
        for f in files.iter().filter(|f| !applied.contains_key(&f.key)) {
            let text = std::fs::read_to_string(&f.path).map_err(|e| {
                ProviderError::invalid(format!("cannot read `{source}/{}.sql`: {e}", f.key))
            })?;
            let sum = checksum(text.as_bytes());
            if desired.get(&f.key) != Some(&sum) {
                return Err(ProviderError::invalid(format!(
                    "migration `{source}/{}.sql` changed since the plan was made: plan again",
                    f.key
                )));
            }
            let tx = conn.transaction().await.map_err(|e| classify("begin", e))?;
            server.count("migration.lock");
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                &[&format!("landlord:migrations:{schema}")],
            )
            .await
            .map_err(|e| classify("lock the migration history", e))?;
            // Read after the lock is held: another runner may have applied it meanwhile.
            server.count("migration.check");
            let done = tx
                .query_opt(
                    &format!("SELECT 1 FROM {history} WHERE version = $1"),
                    &[&f.version],
                )
                .await
                .map_err(|e| classify("read the migration history", e))?;
            if done.is_some() {
                continue;
            }
            let mut prelude: Vec<String> = set_role.iter().cloned().collect();
            prelude.push(format!("SET LOCAL search_path TO {}", ident(schema)));
            server.count("migration.prelude");
            tx.batch_execute(&prelude.join(";\n"))
                .await
                .map_err(|e| classify("set role and search_path", e))?;
            if !recorded.contains(&f.key) {
                server.count("migration.run");
                if let Err(e) = tx.batch_execute(&text).await {
                    let line = e
                        .as_db_error()
                        .and_then(|d| match d.position() {
                            Some(tokio_postgres::error::ErrorPosition::Original(p)) => {
                                Some(format!(" line {}", line_at(&text, *p)))
                            }
                            _ => None,
                        })
                        .unwrap_or_default();
                    let mut err = classify(&format!("migration `{source}/{}.sql`{line}", f.key), e);
                    if err.kind == crate::providers::ErrorKind::Invalid {
                        // A broken file is not retried, but it is no configuration error.
                        err.kind = crate::providers::ErrorKind::Failed;
                    }
                    return Err(err);
                }
            }
            server.count("migration.record");
            tx.execute(
                &format!("INSERT INTO {history} (version, name, checksum) VALUES ($1, $2, $3)"),
                &[&f.version, &f.name, &sum],
            )
            .await
            .map_err(|e| classify(&format!("record migration {}", f.key), e))?;
            tx.commit()
                .await
                .map_err(|e| classify(&format!("commit migration {}", f.key), e))?;
        }
        Ok(Attrs::new())
    }

    async fn delete(
        &self,
        _pg: &Postgres,
        _server: &Server,
        _address: &ResourceAddr,
        _prior: &Attrs,
        _live: &Live,
    ) -> Result<(), ProviderError> {
        // Nothing to undo: the objects the files made, and the history that records them,
        // live and go with their schema or database (which are exported first when they
        // have `export_on_destroy`, history included, so a restore knows its version).
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_need_a_version_and_a_name() {
        assert_eq!(
            parse_name("0003_add_orders.sql"),
            Some(("0003".into(), "add_orders".into()))
        );
        assert_eq!(parse_name("add_orders.sql"), None);
        assert_eq!(parse_name("v3_orders.sql"), None);
        assert_eq!(parse_name("0003_.sql"), None);
        assert_eq!(parse_name("0003_a;b.sql"), None);
    }

    #[test]
    fn error_positions_become_lines() {
        let text = "create table a (id int);\ncreate tabel b;\n";
        assert_eq!(line_at(text, 1), 1);
        assert_eq!(line_at(text, 26), 2);
    }

    #[test]
    fn files_sort_by_number_and_refuse_duplicates() {
        let d = tempfile::tempdir().unwrap();
        for f in ["10_c.sql", "2_b.sql", "0001_a.sql", "notes.txt"] {
            std::fs::write(d.path().join(f), "select 1;").unwrap();
        }
        let keys: Vec<String> = files(d.path(), ".")
            .unwrap()
            .into_iter()
            .map(|f| f.key)
            .collect();
        assert_eq!(keys, vec!["0001_a", "2_b", "10_c"]);
        std::fs::write(d.path().join("02_again.sql"), "").unwrap();
        let e = files(d.path(), ".").unwrap_err();
        assert!(e.message.contains("same version"), "{e}");
    }

    #[test]
    fn an_applied_file_that_changed_is_refused_naming_it() {
        let applied = BTreeMap::from([("0001_init".to_string(), "aaaa".to_string())]);
        let same = applied.clone();
        assert!(check_unchanged("m", &same, &applied).is_ok());
        let changed = BTreeMap::from([("0001_init".to_string(), "bbbb".to_string())]);
        let e = check_unchanged("m", &changed, &applied).unwrap_err();
        assert!(e.message.contains("`m/0001_init.sql`"), "{e}");
    }
}
