use crate::support::postgres::Pg;
use crate::support::{files_match_records, kill_applies, tenant_yaml, write_slow_module, Ws};

const URL_ENV: &str = "LANDLORD_TEST_STATE_URL";

/// The quick start with `n` extra tenants (`t000`, ...) and its state on `pg`.
fn workspace(pg: &Pg, n: usize) -> Ws {
    // Every run gets the master key from the environment (as CI jobs get it from a
    // secret), so runners that start together never race to write a key file.
    let ws = Ws::example("quickstart").with_env(vec![(URL_ENV.into(), pg.url("postgres"))]);
    ws.edit(
        "landlord.toml",
        "[state]\n",
        &format!("[state]\nbackend = \"postgres\"\nurl_env = \"{URL_ENV}\"\n"),
    );
    for i in 0..n {
        let id = format!("t{i:03}");
        ws.write(&format!("tenants/{id}.yaml"), &tenant_yaml(&id, "basic"));
    }
    ws
}

/// `landlord args` with the state URL variable set to `url`; expects exit 1.
fn refused_with_url(ws: &Ws, url: &str, args: &[&str]) -> crate::support::Run {
    let r = crate::support::Run::from(ws.cmd(args).env(URL_ENV, url).output().unwrap());
    assert_eq!(r.code, 1, "{}", r.all());
    r
}

#[test]
fn four_sharded_runners_share_one_postgres_state() {
    let pg = Pg::start();
    crate::support::four_sharded_runners(&workspace(&pg, 197));
}

#[test]
fn bad_state_settings_fail_clearly_and_write_nothing() {
    let pg = Pg::start();
    let ws = workspace(&pg, 0);

    // The variable is not set.
    let r = refused_with_url(&ws, "", &["plan"]);
    assert!(
        r.stderr
            .contains("environment variable `LANDLORD_TEST_STATE_URL` (url_env) is not set"),
        "{}",
        r.all()
    );

    // Nothing listens there.
    let port = crate::support::moto::free_port();
    let nowhere = format!("postgresql://postgres:x@127.0.0.1:{port}/postgres");
    let r = refused_with_url(&ws, &nowhere, &["plan"]);
    assert!(
        r.stderr.contains("cannot connect to the state database")
            && r.stderr.contains("is the server running"),
        "{}",
        r.all()
    );

    // Wrong password: named as such, and the password is not echoed.
    let wrong = format!(
        "postgresql://postgres:Wr0ngPassw0rd@127.0.0.1:{}/postgres",
        pg.port
    );
    let r = refused_with_url(&ws, &wrong, &["plan"]);
    assert!(
        r.stderr.contains("password authentication failed")
            && r.stderr.contains("check the user and password")
            && !r.all().contains("Wr0ngPassw0rd"),
        "{}",
        r.all()
    );
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'landlord'"
        ),
        "0",
        "nothing was created"
    );

    // A state written by a newer landlord.
    ws.ok(&["apply", "--auto-approve"], 0);
    pg.psql(
        "postgres",
        "UPDATE landlord.schema_version SET version = 99",
    );
    let before = pg.psql(
        "postgres",
        "SELECT count(*), max(address) FROM landlord.resources",
    );
    let r = ws.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.stderr.contains("schema version 99")
            && r.stderr.contains("newer landlord")
            && r.stderr.contains("upgrade landlord"),
        "{}",
        r.all()
    );
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*), max(address) FROM landlord.resources"
        ),
        before
    );
    assert_eq!(
        pg.psql("postgres", "SELECT version FROM landlord.schema_version"),
        "99"
    );
}

#[test]
fn overlapping_runners_wait_per_tenant_and_name_the_holder() {
    let pg = Pg::start();
    let ws = workspace(&pg, 0);
    crate::support::overlapping_runners(&ws);
    assert_eq!(
        pg.psql("postgres", "SELECT count(*) FROM landlord.locks"),
        "0",
        "every run removed its lock rows"
    );
}

#[test]
fn killed_runners_leave_no_stale_lock_and_no_orphan() {
    let pg = Pg::start();
    let ws = workspace(&pg, 40);
    // A stale lock would make the next run wait a second and give up before working.
    let args = [
        "apply",
        "--auto-approve",
        "--parallelism",
        "4",
        "--lock-timeout",
        "1s",
    ];
    let kills = kill_applies(&ws, &args, 10, &[0, 1, 1, 2, 3], (150, 40));
    assert!(kills >= 8, "only {kills} of 10 runs were killed mid-way");
    let r = ws.ok(&["apply", "--auto-approve", "--lock-timeout", "1s"], 0);
    assert!(!r.stderr.contains("locked"), "{}", r.all());
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    ws.ok(&["audit", "verify"], 0);
    files_match_records(&ws);
    assert_eq!(
        pg.psql("postgres", "SELECT count(*) FROM landlord.intents"),
        "0",
        "every intent was reconciled"
    );
    // Killed runs leave lock rows, never locks: `state unlock` clears the rows.
    let rows: usize = pg
        .psql("postgres", "SELECT count(*) FROM landlord.locks")
        .parse()
        .unwrap();
    let r = ws.ok(&["state", "unlock"], 0);
    assert_eq!(
        r.stdout.matches("Removed the lock").count(),
        rows,
        "{}",
        r.all()
    );
    assert_eq!(
        pg.psql("postgres", "SELECT count(*) FROM landlord.locks"),
        "0"
    );
}

#[test]
fn losing_the_database_mid_run_fails_clearly_and_the_next_run_converges() {
    let pg = Pg::start();
    let ws = workspace(&pg, 30);
    // Once the run has recorded some outcomes, the server goes away.
    let (child, lines) = crate::support::apply_until(&ws, 20);
    let seen = lines.iter().filter(|l| l.ends_with("s]")).count();
    assert_eq!(seen, 20, "the run printed its progress");
    pg.pause();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}\n{}", lines.join("\n"));
    assert!(
        stderr.contains("lost the connection to the state database")
            && stderr.contains("the next run reconciles"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    pg.resume();
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    ws.ok(&["audit", "verify"], 0);
    files_match_records(&ws);
}

#[test]
fn a_saved_plan_is_refused_only_when_its_own_tenant_changed() {
    let pg = Pg::start();
    let ws = workspace(&pg, 0);
    ws.ok(&["apply", "--auto-approve"], 0);
    let plan = ws.join("acme.bin");
    let plan = plan.to_str().unwrap();
    ws.edit("tenants/acme.yaml", "status: active", "status: suspended");
    ws.ok(&["plan", "--tenant", "acme", "--out", plan], 0);
    // globex changes meanwhile: the plan for acme still applies.
    std::fs::remove_file(ws.join("out/globex/db.env")).unwrap();
    ws.ok(&["apply", "--tenant", "globex", "--auto-approve"], 0);
    ws.ok(&["apply", plan], 0);
    // acme changes after its plan was made: refused.
    ws.edit("tenants/acme.yaml", "status: suspended", "status: active");
    ws.ok(&["plan", "--tenant", "acme", "--out", plan], 0);
    std::fs::remove_file(ws.join("out/acme/db.env")).unwrap();
    ws.ok(&["apply", "--tenant", "acme", "--auto-approve"], 0);
    let r = ws.ok(&["apply", plan], 1);
    assert!(
        r.stderr
            .contains("tenant `acme` changed since the plan was made"),
        "{}",
        r.all()
    );
}

#[test]
fn state_migrates_sled_postgres_s3_sled_byte_identical() {
    let pg = Pg::start();
    let moto = crate::support::moto::Moto::start();
    let sdk = crate::support::moto::Sdk::new(&moto.endpoint);
    sdk.run(sdk.s3().create_bucket().bucket("migrated").send())
        .expect("bucket");
    let ws = Ws::example("quickstart").with_env(
        moto.env()
            .into_iter()
            .chain([(URL_ENV.to_string(), pg.url("postgres"))])
            .collect(),
    );
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["destroy", "--tenant", "globex", "--auto-approve"], 0);
    let before = ws.export();
    let secret = crate::support::acme_password;
    let password = secret(&ws);
    let toml = ws.read("landlord.toml");
    let hops: [(&[&str], String); 3] = [
        (
            &[
                "--to",
                "postgres",
                "--url-env",
                URL_ENV,
                "--schema",
                "fleet",
            ],
            format!(
                "[state]\nbackend = \"postgres\"\nurl_env = \"{URL_ENV}\"\nschema = \"fleet\"\n"
            ),
        ),
        (
            &[
                "--to",
                "s3",
                "--bucket",
                "migrated",
                "--region",
                "us-east-1",
            ],
            "[state]\nbackend = \"s3\"\nbucket = \"migrated\"\nregion = \"us-east-1\"\n".into(),
        ),
        (
            &["--to", "sled", "--path", "state-back"],
            "[state]\n".into(),
        ),
    ];
    for (flags, section) in hops {
        let mut args = vec!["state", "migrate"];
        args.extend(flags);
        let r = ws.ok(&args, 0);
        assert!(r.stdout.contains("Copied"), "{}", r.all());
        let text = toml.replace("[state]\n", &section);
        let text = if flags.contains(&"sled") {
            text.replace("path = \"state\"", "path = \"state-back\"")
        } else {
            text
        };
        ws.write("landlord.toml", &text);
        assert_eq!(ws.export(), before, "after {flags:?}");
        ws.ok(&["audit", "verify"], 0);
        assert_eq!(secret(&ws), password);
    }
    // The password is sealed in its row: nowhere in the tables in clear.
    let pw = password.trim().replace('\'', "''");
    assert!(pw.len() >= 16, "{pw}");
    for table in ["resources", "intents", "audit", "history", "notes"] {
        assert_eq!(
            pg.psql(
                "postgres",
                &format!("SELECT count(*) FROM fleet.{table} WHERE body LIKE '%{pw}%'")
            ),
            "0",
            "{table}"
        );
    }
    assert_eq!(
        pg.psql("postgres", "SELECT count(*) FROM fleet.resources WHERE address = 'acme/random_password.db' AND body LIKE '%\"secret\":%'"),
        "1"
    );
    // globex was destroyed but keeps its file; acme is as applied.
    ws.ok(&["plan", "--tenant", "acme", "--detailed-exitcode"], 0);
}

#[test]
fn a_saved_plan_reconciles_its_tenants_intents_before_it_applies() {
    let pg = Pg::start();
    let ws = workspace(&pg, 0);
    ws.ok(&["apply", "--auto-approve"], 0);
    // A run killed while acme's slow resource was being created leaves its intent.
    write_slow_module(&ws, "3s");
    ws.edit(
        "plans/enterprise.yaml",
        "modules:\n",
        "modules:\n  - use: test/slow\n",
    );
    let kills = kill_applies(
        &ws,
        &["apply", "--auto-approve", "--tenant", "acme"],
        1,
        &[0],
        (1500, 0),
    );
    assert_eq!(kills, 1);
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM landlord.intents WHERE scope = 'acme'"
        ),
        "1"
    );
    // A plan saved now (plans take no lock and reconcile nothing) still shows the create;
    // applying it takes acme's lock and reconciles the intent before anything else.
    let plan = ws.join("acme.bin");
    let plan = plan.to_str().unwrap();
    ws.ok(&["plan", "--tenant", "acme", "--out", plan], 0);
    let r = ws.ok(&["apply", plan], 0);
    let reconciled = r.stdout.find("interrupted create reconciled");
    let created = r.stdout.find("acme/time_sleep.pause: created");
    assert!(reconciled.is_some() && reconciled < created, "{}", r.all());
    assert_eq!(
        pg.psql("postgres", "SELECT count(*) FROM landlord.intents"),
        "0",
        "the interrupted create was reconciled"
    );
    ws.ok(&["plan", "--tenant", "acme", "--detailed-exitcode"], 0);
}
