//! Shared state at fleet scale, on PostgreSQL (a fresh Debian cluster) and on S3 (moto):
//! N tenants of two resources each (`local/db-credentials`: a generated password, sealed
//! in state, and the file it is written to).
//!
//! For each backend it reports:
//! - the first apply of the whole fleet by one runner, and by four `--shard K/4` runners
//!   started together on a second state (wall time until the last one finishes);
//! - a run that repairs one tenant: requests (statements for PostgreSQL) and bytes of
//!   state written, against the size of the whole state (what the one-object S3 layout
//!   uploaded per run);
//! - reading the whole state (`state export`), a full no-change `plan --refresh=false`
//!   (every record read and unsealed) and a `plan --tenant ONE --refresh=false`.
//!
//! Run: `cargo bench --bench state_scale -- 10000` (default 2000); `pg` or `s3` as a
//! further argument runs one backend only.

#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::time::Instant;

use support::{finish, spawn, Run, Ws};

const URL_ENV: &str = "LANDLORD_BENCH_STATE_URL";

/// The quick start with `n` two-resource tenants and `state` as its `[state]` table.
fn fleet(env: Vec<(String, String)>, n: usize, state: &str) -> Ws {
    let ws = Ws::example("quickstart").with_env(env);
    for f in ["acme", "globex", "initech"] {
        std::fs::remove_file(ws.join(&format!("tenants/{f}.yaml"))).unwrap();
    }
    ws.write(
        "plans/bench.yaml",
        "modules:\n  - use: local/db-credentials\n    inputs: { length: 20 }\n",
    );
    for i in 0..n {
        ws.write(
            &format!("tenants/t{i:05}.yaml"),
            &format!("id: t{i:05}\nplan: bench\nregion: eu-west-1\ndomain: {{ kind: subdomain, name: t{i:05} }}\n"),
        );
    }
    ws.edit("landlord.toml", "[state]\n", &format!("[state]\n{state}"));
    ws
}

fn timed(ws: &Ws, args: &[&str]) -> (f64, Run) {
    let start = Instant::now();
    let r = ws.ok(args, 0);
    (start.elapsed().as_secs_f64(), r)
}

/// The figure after `label` in a `--stats` report.
fn figure(r: &Run, label: &str) -> u64 {
    r.stderr
        .lines()
        .find_map(|l| l.split(label).nth(1))
        .and_then(|rest| {
            rest.trim()
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn measure(name: &str, one: &Ws, four: &Ws, n: usize) {
    println!("{name}, {n} tenants ({} records):", 2 * n + 2);
    let (t1, _) = timed(one, &["apply", "--auto-approve"]);
    let start = Instant::now();
    let each: Vec<f64> = std::thread::scope(|s| {
        let runners: Vec<_> = (1..=4)
            .map(|k| {
                s.spawn(move || {
                    let started = Instant::now();
                    let shard = format!("{k}/4");
                    let (code, out) =
                        finish(spawn(four, &["apply", "--auto-approve", "--shard", &shard]));
                    assert_eq!(code, 0, "{out}");
                    started.elapsed().as_secs_f64()
                })
            })
            .collect();
        runners.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let t4 = start.elapsed().as_secs_f64();
    let each_text: Vec<String> = each.iter().map(|t| format!("{t:.1}")).collect();
    println!("  first apply, one runner:              {t1:>8.1} s");
    println!(
        "  first apply, four sharded runners:    {t4:>8.1} s wall; runs of {} s ({:.1} s together: they overlapped)",
        each_text.join(", "),
        each.iter().sum::<f64>()
    );

    let start = Instant::now();
    let whole = one.export().len();
    let read = start.elapsed().as_secs_f64();
    std::fs::remove_file(one.join("out/t00042/db.env")).unwrap();
    let (t, r) = timed(
        one,
        &["apply", "--auto-approve", "--tenant", "t00042", "--stats"],
    );
    println!(
        "  repair of one tenant:                 {t:>8.2} s, {} requests, {} bytes of state written, {} records read",
        figure(&r, "State requests: "),
        figure(&r, "bytes of state written: "),
        figure(&r, "State records read: "),
    );
    println!(
        "  whole state (one-object upload size): {whole:>8} bytes, read in {read:.2} s (`state export`)"
    );
    let (t, r) = timed(one, &["plan", "--refresh=false", "--stats"]);
    println!(
        "  full no-change plan:                  {t:>8.2} s, {} records read, {} requests",
        figure(&r, "State records read: "),
        figure(&r, "State requests: "),
    );
    let (t, r) = timed(
        one,
        &["plan", "--refresh=false", "--tenant", "t00042", "--stats"],
    );
    println!(
        "  plan --tenant ONE:                    {t:>8.2} s, {} records read, {} requests",
        figure(&r, "State records read: "),
        figure(&r, "State requests: "),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(2000);
    let only =
        |b: &str| !args.iter().any(|a| a == "pg" || a == "s3") || args.iter().any(|a| a == b);
    if only("pg") {
        let pg = support::postgres::Pg::start();
        let env = vec![(URL_ENV.to_string(), pg.url("postgres"))];
        let state = |schema: &str| {
            format!("backend = \"postgres\"\nurl_env = \"{URL_ENV}\"\nschema = \"{schema}\"\n")
        };
        let one = fleet(env.clone(), n, &state("one"));
        let four = fleet(env, n, &state("four"));
        measure("PostgreSQL state", &one, &four, n);
    }
    if only("s3") {
        let moto = support::moto::Moto::start();
        let sdk = support::moto::Sdk::new(&moto.endpoint);
        for b in ["one", "four"] {
            sdk.run(sdk.s3().create_bucket().bucket(b).send())
                .expect("bucket");
        }
        let state = |bucket: &str| {
            format!("backend = \"s3\"\nbucket = \"{bucket}\"\nregion = \"us-east-1\"\n")
        };
        let one = fleet(moto.env(), n, &state("one"));
        let four = fleet(moto.env(), n, &state("four"));
        measure("S3 state (moto)", &one, &four, n);
    }
}
