//! The PostgreSQL provider against a fresh PostgreSQL 15 cluster per test: the example's
//! three isolation strategies, tenant lifecycle with exports, row-level security checked
//! with real queries, migration rollouts, a drift matrix, SQL injection, crash safety,
//! TLS and bad input.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::Value;

use crate::support::postgres::Pg;
use crate::support::{kill_applies, Ws};

/// `examples/postgres` pointed at `pg`.
fn example(pg: &Pg) -> Ws {
    let (var, password) = pg.password_env();
    let ws = Ws::example("postgres").with_env(vec![(var.clone(), password)]);
    ws.edit(
        "landlord.toml",
        "port = 5432",
        &format!("port = {}", pg.port),
    );
    ws.edit("landlord.toml", "LANDLORD_PG_PASSWORD", &var);
    ws
}

/// An empty workspace named `name` whose one PostgreSQL server is `pg`.
fn empty_on(pg: &Pg, name: &str) -> Ws {
    let (var, password) = pg.password_env();
    let ws = Ws::empty().with_env(vec![(var, password)]);
    ws.write(
        "landlord.toml",
        &format!(
            "[workspace]\nname = \"{name}\"\n\n{}",
            pg.provider_toml("main", "eu-west-1")
        ),
    );
    ws
}

/// A tenant of the example on tier `postgres-<strategy>`.
fn add_tenant(ws: &Ws, id: &str, strategy: &str) {
    ws.write(
        &format!("tenants/{id}.yaml"),
        &format!("id: {id}\nplan: postgres-{strategy}\nstatus: active\nregion: eu-west-1\n"),
    );
}

/// The generated password of a tenant's role.
fn password(ws: &Ws, tenant: &str) -> String {
    ws.ok(
        &[
            "output",
            &format!("{tenant}/random_password.db"),
            "result",
            "--show-sensitive",
        ],
        0,
    )
    .stdout
    .trim()
    .to_string()
}

/// Rows of a one-column query, as a set.
fn set(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

fn strings(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn example_applies_replans_clean_suspends_and_deletes_and_the_export_restores() {
    let pg = Pg::start();
    let ws = example(&pg);
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    assert_eq!(
        set(&pg.psql(
            "postgres",
            "SELECT rolname FROM pg_roles WHERE rolname LIKE 't\\_%' AND rolcanlogin"
        )),
        strings(&["t_acme", "t_globex", "t_initech"])
    );
    assert_eq!(
        pg.psql(
            "tenant_acme",
            "SELECT count(*) FROM app.landlord_schema_migrations"
        ),
        "2"
    );
    assert_eq!(
        pg.psql(
            "saas",
            "SELECT count(*) FROM tenant_globex.landlord_schema_migrations"
        ),
        "2"
    );
    assert_eq!(
        pg.psql(
            "tenant_acme",
            "SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'"
        ),
        "1"
    );

    // Tenant data, written by the tenants' own roles.
    let globex = password(&ws, "globex");
    pg.try_psql_as(
        "t_globex",
        &globex,
        "saas",
        "INSERT INTO tenant_globex.accounts (email) VALUES ('a@globex.test'), ('b@globex.test')",
        &[],
    )
    .unwrap();
    let acme = password(&ws, "acme");
    pg.try_psql_as(
        "t_acme",
        &acme,
        "tenant_acme",
        "INSERT INTO app.accounts (email) VALUES ('a@acme.test')",
        &[],
    )
    .unwrap();

    // Suspended: the role cannot log in, its data stays.
    let initech = password(&ws, "initech");
    ws.edit(
        "tenants/initech.yaml",
        "status: active",
        "status: suspended",
    );
    let r = ws.ok(&["apply", "--auto-approve"], 0);
    assert!(r.stdout.contains("login = true -> false"), "{}", r.all());
    let refused = pg
        .try_psql_as("t_initech", &initech, "saas", "SELECT 1", &[])
        .unwrap_err();
    assert!(refused.contains("not permitted to log in"), "{refused}");

    // Deleted: exported first, then dropped; the export restores with its rows.
    ws.edit("tenants/globex.yaml", "status: active", "status: deleted");
    ws.edit("tenants/acme.yaml", "status: active", "status: deleted");
    ws.ok(&["apply", "--auto-approve", "--allow-bulk"], 0);
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname IN ('t_globex', 't_acme')"
        ),
        "0"
    );
    assert_eq!(
        pg.psql(
            "saas",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_globex'"
        ),
        "0"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'tenant_acme'"
        ),
        "0"
    );
    for (tenant, schema, rows) in [("globex", "tenant_globex", "2"), ("acme", "app", "1")] {
        let dump = ws.join(&format!("exports/{tenant}.dump"));
        let mode = std::fs::metadata(&dump)
            .unwrap_or_else(|e| panic!("no export of {tenant}: {e}"))
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the export of {tenant} is readable by others"
        );
        let scratch = format!("restore_{tenant}");
        pg.psql("postgres", &format!("CREATE DATABASE {scratch}"));
        let out = Command::new("pg_restore")
            .args([
                "--no-owner",
                "--host",
                "127.0.0.1",
                "--username",
                "postgres",
                "--port",
            ])
            .arg(pg.port.to_string())
            .arg("--dbname")
            .arg(&scratch)
            .arg(&dump)
            .env("PGPASSWORD", &pg.password)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_restore: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            pg.psql(&scratch, &format!("SELECT count(*) FROM {schema}.accounts")),
            rows
        );
        assert_eq!(
            pg.psql(
                &scratch,
                &format!("SELECT count(*) FROM {schema}.landlord_schema_migrations")
            ),
            "2",
            "the export carries its migration history"
        );
    }
    ws.ok(&["drift"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn pooled_tenants_see_only_their_own_rows() {
    let pg = Pg::start();
    let ws = example(&pg);
    add_tenant(&ws, "hooli", "pooled");
    ws.ok(&["apply", "--auto-approve"], 0);
    pg.psql(
        "saas",
        "INSERT INTO notes (tenant_id, body) VALUES ('initech', 'i1'), ('initech', 'i2'), ('hooli', 'h1')",
    );
    let initech = password(&ws, "initech");
    let hooli = password(&ws, "hooli");
    let count = |user: &str, pw: &str, tenant: Option<&str>| {
        let settings: Vec<(&str, &str)> =
            tenant.map(|t| ("app.tenant_id", t)).into_iter().collect();
        pg.try_psql_as(user, pw, "saas", "SELECT count(*) FROM notes", &settings)
            .unwrap()
    };
    assert_eq!(count("t_initech", &initech, Some("initech")), "2");
    assert_eq!(count("t_hooli", &hooli, Some("hooli")), "1");
    assert_eq!(
        count("t_initech", &initech, None),
        "0",
        "without app.tenant_id no rows"
    );
    assert_eq!(
        count("t_initech", &initech, Some("hooli")),
        "0",
        "a tenant naming another tenant's id still sees nothing of it"
    );
    let err = pg
        .try_psql_as(
            "t_initech",
            &initech,
            "saas",
            "INSERT INTO notes (tenant_id, body) VALUES ('hooli', 'planted')",
            &[("app.tenant_id", "initech")],
        )
        .unwrap_err();
    assert!(err.contains("row-level security"), "{err}");
    // Plan refuses a policy that would not filter: a role with BYPASSRLS.
    pg.psql("postgres", "ALTER ROLE t_hooli BYPASSRLS");
    let r = ws.ok(&["plan"], 1);
    assert!(
        r.stderr.contains("role `t_hooli` has BYPASSRLS") && r.stderr.contains("public.notes"),
        "{}",
        r.all()
    );
}

#[test]
fn a_new_migration_reaches_every_tenant_once_and_a_failing_one_stops_only_its_tenant() {
    let pg = Pg::start();
    let ws = example(&pg);
    for id in ["umbrella", "wayne"] {
        add_tenant(&ws, id, "schema");
    }
    ws.ok(&["apply", "--auto-approve"], 0);
    let history = |tenant: &str| -> String {
        if tenant == "acme" {
            pg.psql("tenant_acme", "SELECT string_agg(version, ',' ORDER BY version) FROM app.landlord_schema_migrations")
        } else {
            pg.psql("saas", &format!("SELECT string_agg(version, ',' ORDER BY version) FROM tenant_{tenant}.landlord_schema_migrations"))
        }
    };

    // One added file is a planned change of every tenant of the directory, by name.
    ws.write(
        "migrations/tenant/0003_notes.sql",
        "CREATE TABLE notes (id int);\n",
    );
    let plan = crate::support::plan_json(&ws, &[]);
    let migrated: BTreeSet<String> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "postgresql_migrations")
        .map(|c| {
            assert!(c["attributes"].to_string().contains("0003_notes"), "{c}");
            c["address"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        migrated,
        strings(&[
            "acme/postgresql_migrations.app",
            "globex/postgresql_migrations.schema",
            "umbrella/postgresql_migrations.schema",
            "wayne/postgresql_migrations.schema"
        ])
    );
    ws.ok(&["apply", "--auto-approve"], 0);
    for t in ["acme", "globex", "umbrella", "wayne"] {
        assert_eq!(history(t), "0001,0002,0003", "{t}");
    }
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);

    // An applied file that changed is refused, naming it.
    let original = ws.read("migrations/tenant/0001_accounts.sql");
    ws.write(
        "migrations/tenant/0001_accounts.sql",
        &format!("{original}-- edited\n"),
    );
    let r = ws.ok(&["plan"], 1);
    assert!(
        r.stderr.contains("migrations/tenant/0001_accounts.sql")
            && r.stderr.contains("changed after it was applied"),
        "{}",
        r.all()
    );
    ws.write("migrations/tenant/0001_accounts.sql", &original);

    // A migration failing on one tenant's data fails that tenant only.
    pg.psql(
        "saas",
        "INSERT INTO tenant_wayne.accounts (email) VALUES ('bad@wayne.test')",
    );
    ws.write(
        "migrations/tenant/0004_no_bad.sql",
        "-- refuse the addresses of a bad batch\nALTER TABLE accounts\n  ADD CONSTRAINT no_bad CHECK (email NOT LIKE 'bad@%');\n",
    );
    let r = ws.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.all().contains("wayne/postgresql_migrations.schema")
            && r.all().contains("0004_no_bad.sql"),
        "{}",
        r.all()
    );
    for t in ["acme", "globex", "umbrella"] {
        assert_eq!(history(t), "0001,0002,0003,0004", "{t}");
    }
    assert_eq!(history("wayne"), "0001,0002,0003");

    // A syntax error names the file and the line; every schema stays where it was.
    pg.psql("saas", "DELETE FROM tenant_wayne.accounts");
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.write(
        "migrations/tenant/0005_typo.sql",
        "-- a typo on line 3\nCREATE TABLE fine (id int);\nCREATE TABEL broken (id int);\n",
    );
    let r = ws.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.all().contains("migrations/tenant/0005_typo.sql` line 3"),
        "{}",
        r.all()
    );
    for t in ["acme", "globex", "umbrella", "wayne"] {
        assert_eq!(history(t), "0001,0002,0003,0004", "{t}");
    }
    assert_eq!(
        pg.psql(
            "saas",
            "SELECT count(*) FROM pg_class WHERE relname = 'fine'"
        ),
        "0",
        "the failed file was rolled back whole"
    );
}

#[test]
fn out_of_band_changes_are_drift_and_apply_repairs_them() {
    let pg = Pg::start();
    let ws = example(&pg);
    add_tenant(&ws, "hooli", "pooled");
    ws.ok(&["apply", "--auto-approve"], 0);
    for sql in [
        ("postgres", "ALTER ROLE t_globex NOLOGIN"),
        ("postgres", "ALTER ROLE t_acme CONNECTION LIMIT 99"),
        ("saas", "REVOKE DELETE ON notes FROM t_initech"),
        ("saas", "GRANT TEMPORARY ON DATABASE saas TO t_globex"),
        ("saas", "DROP POLICY tenant_initech ON notes"),
        ("saas", "ALTER TABLE notes DISABLE ROW LEVEL SECURITY"),
        (
            "saas",
            "ALTER SCHEMA tenant_globex RENAME TO tenant_globex_old",
        ),
        (
            "tenant_acme",
            "DELETE FROM app.landlord_schema_migrations WHERE version = '0002'",
        ),
    ] {
        pg.psql(sql.0, sql.1);
    }
    let r = ws.run(&["drift", "--json"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let j: Value = serde_json::from_str(&r.stdout).unwrap();
    let found: BTreeSet<String> = j["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            let addr = i["address"].as_str().unwrap().to_string();
            let attrs: Vec<String> = i["attributes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|a| a["name"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default();
            if attrs.is_empty() {
                vec![format!("{addr} {}", i["kind"].as_str().unwrap())]
            } else {
                attrs.into_iter().map(|a| format!("{addr}.{a}")).collect()
            }
        })
        .collect();
    for want in [
        "globex/postgresql_role.app.login",
        "acme/postgresql_role.app.connection_limit",
        "initech/postgresql_grant.tables.privileges",
        "globex/postgresql_grant.connect.privileges",
        "initech/postgresql_policy.notes deleted",
        "hooli/postgresql_policy.notes.row_security",
        "globex/postgresql_schema.tenant.name",
        "acme/postgresql_migrations.app.versions",
    ] {
        assert!(
            found.contains(want),
            "drift does not report {want}: {found:#?}"
        );
    }
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["drift"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    assert_eq!(
        pg.psql(
            "saas",
            "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE relname = 'notes'"
        ),
        "t"
    );
    assert_eq!(
        pg.psql(
            "saas",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_globex'"
        ),
        "1"
    );
    assert_eq!(
        pg.psql("saas", "SELECT count(*) FROM tenant_globex.accounts"),
        "0",
        "renamed back, not recreated beside"
    );
    assert_eq!(
        pg.psql(
            "tenant_acme",
            "SELECT count(*) FROM app.landlord_schema_migrations"
        ),
        "2"
    );
    assert_eq!(
        pg.psql("tenant_acme", "SELECT count(*) FROM app.invoices"),
        "0",
        "the deleted row was written back, the file not run again"
    );
}

#[test]
fn tenant_values_with_sql_metacharacters_are_quoted_never_run() {
    let pg = Pg::start();
    let ws = empty_on(&pg, "inj");
    ws.write(
        "modules/test/db/module.yaml",
        "description: names and values from tenant settings\n",
    );
    ws.write(
        "modules/test/db/db.yaml.tera",
        r#"- type: postgresql_role
  name: app
  properties:
    name: {{ settings.db.role | json_encode() }}
    valid_until: {{ settings.db.until | json_encode() }}
- type: postgresql_schema
  name: s
  properties:
    database: postgres
    name: {{ settings.db.schema | json_encode() }}
    owner: "${postgresql_role.app.name}"
- type: postgresql_migrations
  name: m
  properties: { database: postgres, schema: "${postgresql_schema.s.name}", source: migrations }
- type: postgresql_policy
  name: p
  properties:
    database: postgres
    schema: "${postgresql_migrations.m.schema}"
    table: t
    name: {{ settings.db.policy | json_encode() }}
    {% set literal = settings.db.note | sql_literal %}
    using: {{ "note = " ~ literal | json_encode() }}
"#,
    );
    ws.write(
        "plans/inj.yaml",
        "modules:\n  - use: test/db\ncustomizations:\n  - path: db.role\n  - path: db.schema\n  - path: db.policy\n  - path: db.note\n  - path: db.until\n",
    );
    ws.write("migrations/0001_t.sql", "CREATE TABLE t (note text);\n");
    pg.psql(
        "postgres",
        "CREATE TABLE victim (id int); CREATE ROLE bystander",
    );
    let evil = r#"x"; DROP TABLE public.victim; --"#;
    ws.write(
        "tenants/evil.yaml",
        &format!(
            "id: evil\nplan: inj\nstatus: active\nsettings:\n  db:\n    role: {role}\n    schema: {schema}\n    policy: {policy}\n    note: {note}\n    until: {until}\n",
            role = serde_json::to_string(r#"r'; DROP ROLE bystander; --"#).unwrap(),
            schema = serde_json::to_string(evil).unwrap(),
            policy = serde_json::to_string(r#"p$$; DROP TABLE public.victim; $$"#).unwrap(),
            note = serde_json::to_string(r#"it's'); DROP TABLE public.victim; --"#).unwrap(),
            until = serde_json::to_string("infinity").unwrap(),
        ),
    );
    let log_before = pg.log().lines().count();
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_class WHERE relname = 'victim'"
        ),
        "1"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'bystander'"
        ),
        "1"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_namespace WHERE nspname = '{}'",
                evil.replace('\'', "''")
            )
        ),
        "1",
        "the schema exists under exactly the name given"
    );
    // Every statement landlord sent is one of its own kinds: no DROP ran.
    let log = pg.log();
    let sent: Vec<&str> = log
        .lines()
        .skip(log_before)
        .filter_map(statement_of)
        .collect();
    assert!(!sent.is_empty(), "log_statement=all logged nothing");
    for s in &sent {
        assert!(
            !s.trim_start().to_uppercase().starts_with("DROP"),
            "a DROP ran: {s}"
        );
    }
    // A valid_until that is not a time is refused before anything runs.
    ws.edit(
        "tenants/evil.yaml",
        "until: \"infinity\"",
        "until: \"2030'; DROP ROLE bystander; --\"",
    );
    let r = ws.ok(&["plan"], 1);
    assert!(r.stderr.contains("valid_until"), "{}", r.all());
}

/// The statement a `log_statement = all` line records (simple or extended protocol).
fn statement_of(line: &str) -> Option<&str> {
    if let Some((_, s)) = line.split_once("LOG:  statement: ") {
        return Some(s);
    }
    let (_, rest) = line.split_once("LOG:  execute ")?;
    rest.split_once(": ").map(|(_, s)| s)
}

#[test]
fn killed_applies_leave_no_orphan_duplicate_or_twice_run_migration() {
    let pg = Pg::start();
    let ws = example(&pg);
    for i in 0..27 {
        add_tenant(
            &ws,
            &format!("t{i:02}"),
            if i % 3 == 0 { "database" } else { "schema" },
        );
    }
    // Slow migrations keep applies in flight long enough to be killed mid-file.
    ws.write(
        "migrations/tenant/0003_slow.sql",
        "SELECT pg_sleep(0.05);\nCREATE TABLE slow (id int);\n",
    );
    let kills = kill_applies(
        &ws,
        &["apply", "--auto-approve"],
        15,
        &[2, 5, 0, 3, 7],
        (150, 20),
    );
    assert!(
        kills >= 12,
        "only {kills} of 15 applies were still working when killed"
    );
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    let roles = pg.psql(
        "postgres",
        "SELECT count(*) FROM pg_roles WHERE rolname LIKE 't\\_%'",
    );
    assert_eq!(roles, "30", "one role per tenant");
    let schemas = pg.psql(
        "saas",
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\\_%'",
    );
    let dbs = pg.psql(
        "postgres",
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'tenant\\_%'",
    );
    assert_eq!((schemas.as_str(), dbs.as_str()), ("19", "10"));
    for db in set(&pg.psql(
        "postgres",
        "SELECT datname FROM pg_database WHERE datname LIKE 'tenant\\_%'",
    )) {
        assert_eq!(
            pg.psql(&db, "SELECT count(*) FROM app.landlord_schema_migrations"),
            "3",
            "{db}"
        );
    }
    let per_schema = pg.psql(
        "saas",
        "SELECT string_agg(DISTINCT n::text, ',') FROM (SELECT (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.landlord_schema_migrations', nspname), false, true, '')))[1]::text::int AS n FROM pg_namespace WHERE nspname LIKE 'tenant\\_%') x",
    );
    assert_eq!(
        per_schema, "3",
        "every schema ran each migration exactly once"
    );
}

#[test]
fn verify_full_talks_tls_and_refuses_a_server_it_cannot_verify() {
    let pg = Pg::start_tls();
    let ws = empty_on(&pg, "tls");
    ws.write("modules/test/role/module.yaml", "description: one role\n");
    ws.write(
        "modules/test/role/role.yaml.tera",
        "- type: postgresql_role\n  name: app\n  properties: { name: tls_role }\n",
    );
    ws.write("plans/tls.yaml", "modules:\n  - use: test/role\n");
    ws.write("tenants/acme.yaml", "id: acme\nplan: tls\nstatus: active\n");
    ws.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'tls_role'"
        ),
        "1"
    );
    // Another CA: the server cannot be verified, so nothing is read or written.
    let other = ws.join("other-ca.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=other",
        ])
        .arg("-keyout")
        .arg(ws.join("other.key"))
        .arg("-out")
        .arg(&other)
        .output()
        .unwrap();
    assert!(out.status.success());
    let toml = ws.read("landlord.toml");
    let ca = pg.ca_cert().unwrap();
    ws.write(
        "landlord.toml",
        &toml.replace(&ca.display().to_string(), &other.display().to_string()),
    );
    let r = ws.ok(&["drift"], 1);
    assert!(
        r.all().contains("certificate") || r.all().contains("UnknownIssuer"),
        "{}",
        r.all()
    );
    // Plain TCP to a TLS-only server is refused by the server.
    ws.write(
        "landlord.toml",
        &toml.replace("sslmode = \"verify-full\"", "sslmode = \"disable\""),
    );
    let r = ws.ok(&["drift"], 1);
    assert!(r.all().contains("no encryption"), "{}", r.all());
}

#[test]
fn bad_server_settings_fail_with_the_cause_and_change_nothing() {
    let pg = Pg::start();
    let ws = example(&pg);
    ws.ok(&["apply", "--auto-approve"], 0);
    let before = ws.recorded();
    let toml = ws.read("landlord.toml");
    let (var, _) = pg.password_env();
    let cases: Vec<(String, Vec<(String, String)>, &str)> = vec![
        (
            toml.replace(
                &format!("port = {}", pg.port),
                &format!("port = {}", crate::support::moto::free_port()),
            ),
            vec![],
            "Connection refused",
        ),
        (
            toml.replace(&var, "LANDLORD_TEST_UNSET_VARIABLE"),
            vec![],
            "LANDLORD_TEST_UNSET_VARIABLE",
        ),
        (
            toml.clone(),
            vec![(var.clone(), "wrong".into())],
            "password authentication failed",
        ),
        (
            toml.replace("[providers.postgresql.main]", "[providers.postgresql.eu]"),
            vec![],
            "unknown postgresql server `main`",
        ),
        (
            toml.replace("sslmode = \"disable\"", "sslmode = \"sometimes\""),
            vec![],
            "`sslmode` is `sometimes`",
        ),
    ];
    for (text, env, want) in cases {
        ws.write("landlord.toml", &text);
        let mut c = ws.cmd(&["plan"]);
        c.envs(env);
        let out = c.output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{want}: {all}");
        assert!(all.contains(want), "expected {want:?} in:\n{all}");
        if want == "Connection refused" {
            assert!(all.contains("127.0.0.1:"), "the endpoint is named: {all}");
        }
    }
    ws.write("landlord.toml", &toml);
    assert_eq!(ws.recorded(), before, "state changed");

    // Migration sources: a missing directory, a file without a version.
    ws.edit(
        "shared.yaml",
        "migrations: migrations/pooled",
        "migrations: migrations/nowhere",
    );
    let r = ws.ok(&["plan"], 1);
    assert!(r.stderr.contains("`migrations/nowhere`"), "{}", r.all());
    ws.edit(
        "shared.yaml",
        "migrations: migrations/nowhere",
        "migrations: migrations/pooled",
    );
    ws.write(
        "migrations/tenant/add_orders.sql",
        "CREATE TABLE orders (id int);\n",
    );
    let r = ws.ok(&["plan"], 1);
    assert!(
        r.stderr
            .contains("`migrations/tenant/add_orders.sql` has no version"),
        "{}",
        r.all()
    );
    assert_eq!(ws.recorded(), before, "state changed");
}

#[test]
fn role_passwords_appear_in_no_output_state_file_or_server_log() {
    let pg = Pg::start();
    let ws = example(&pg);
    let plan = ws.ok(&["plan"], 0);
    let apply = ws.ok(&["apply", "--auto-approve"], 0);
    let drift = ws.ok(&["drift", "--json"], 0);
    let output = ws.ok(&["output", "--json"], 0);
    let export = ws.export();
    let mut files = vec![];
    crate::support::walk(&ws.join("state"), &mut files);
    for tenant in ["acme", "globex", "initech"] {
        let pw = password(&ws, tenant);
        assert_eq!(pw.len(), 32);
        for (what, text) in [
            ("plan", &plan.all()),
            ("apply", &apply.all()),
            ("drift", &drift.all()),
            ("output", &output.all()),
            ("state export", &export),
            ("server log", &pg.log()),
        ] {
            assert!(!text.contains(&pw), "{tenant}'s password appears in {what}");
        }
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            assert!(
                !bytes.windows(pw.len()).any(|w| w == pw.as_bytes()),
                "{tenant}'s password is in {}",
                f.display()
            );
        }
    }
}

#[test]
fn a_server_outside_the_tenants_residency_is_refused() {
    let ws = Ws::example("postgres");
    ws.edit("tenants/acme.yaml", "residency: [eu]", "residency: [us]");
    ws.edit(
        "tenants/acme.yaml",
        "region: eu-west-1",
        "region: us-east-1",
    );
    let r = ws.ok(&["validate"], 1);
    assert!(
        r.stderr
            .contains("the server's region `eu-west-1` is outside the tenant's residency [us]"),
        "{}",
        r.all()
    );
}
