//! The PostgreSQL family at scale: N tenants on the built-in `postgres-schema` tier (a
//! role, a schema, a grant and three migrations each) against a fresh local PostgreSQL 15
//! cluster, timing the release `landlord` binary and counting its round trips to the
//! server: the initial apply, and a no-change plan with refresh.
//!
//! Run: `cargo bench --bench postgres_scale -- 1000` (default: 1000).

#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::time::Instant;

use serde_json::Value;
use support::postgres::Pg;
use support::Ws;

const MIGRATIONS: [(&str, &str); 3] = [
    (
        "0001_accounts.sql",
        "CREATE TABLE accounts (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE);\n",
    ),
    (
        "0002_invoices.sql",
        "CREATE TABLE invoices (id bigserial PRIMARY KEY, account_id bigint REFERENCES accounts (id), cents bigint NOT NULL);\n",
    ),
    (
        "0003_invoice_index.sql",
        "CREATE INDEX invoices_account ON invoices (account_id);\n",
    ),
];

fn workspace(pg: &Pg, n: usize) -> Ws {
    let (var, password) = pg.password_env();
    let ws = Ws::empty().with_env(vec![(var, password)]);
    ws.write(
        "landlord.toml",
        &format!(
            "[workspace]\nname = \"pgbench\"\n\n{}max_connections = 16\nsslmode = \"disable\"\n",
            pg.provider_toml("main", "eu-west-1")
        ),
    );
    ws.write(
        "shared.yaml",
        "modules:\n  - use: postgres/shared-database\n    inputs: { migrations: migrations/pooled }\n",
    );
    ws.write(
        "migrations/pooled/0001_notes.sql",
        "CREATE TABLE notes (tenant_id text, body text);\n",
    );
    for (name, sql) in MIGRATIONS {
        ws.write(&format!("migrations/tenant/{name}"), sql);
    }
    for i in 0..n {
        let id = format!("tenant-{i:05}");
        ws.write(
            &format!("tenants/{id}.yaml"),
            &format!("id: {id}\nplan: postgres-schema\nstatus: active\nregion: eu-west-1\n"),
        );
    }
    ws
}

/// Calls to PostgreSQL a `--json` report counted: connections, queries and statement
/// batches (a query with parameters is two round trips on the wire; BEGIN and COMMIT
/// around a migration file are not counted).
fn round_trips(report: &Value) -> u64 {
    report["api_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .filter(|c| c["provider"] == "postgresql")
                .filter_map(|c| c["count"].as_u64())
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() { vec![1000] } else { sizes };
    println!(
        "{:>8} {:>10}  {:<34} {:>9} {:>12}",
        "tenants", "resources", "phase", "seconds", "calls"
    );
    for n in sizes {
        let pg = Pg::start();
        let ws = workspace(&pg, n);
        let phases: [(&str, &[&str], i32); 2] = [
            (
                "apply (initial)",
                &["apply", "--auto-approve", "--json", "--parallelism", "32"],
                0,
            ),
            (
                "plan (no changes, refresh)",
                &["plan", "--json", "--detailed-exitcode"],
                0,
            ),
        ];
        for (name, args, want) in phases {
            let start = Instant::now();
            let r = ws.run(args);
            let secs = start.elapsed().as_secs_f64();
            assert_eq!(r.code, want, "{name} exited {}:\n{}", r.code, r.stderr);
            let report: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
            println!(
                "{n:>8} {:>10}  {name:<34} {secs:>9.2} {:>12}",
                n * 5 + 2,
                round_trips(&report)
            );
        }
        let histories = pg.psql(
            "saas",
            "SELECT count(*) FROM pg_class WHERE relname = 'landlord_schema_migrations'",
        );
        assert_eq!(histories, (n + 1).to_string(), "every schema was migrated");
    }
}
