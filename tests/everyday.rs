//! What a new user, and a Terraform user by habit, runs into: interrupts, `version`,
//! `show`, Terraform spellings, `destroy`, who is recorded as the actor, typos in tiers,
//! selectors that match nothing, the quick start's zone serial and directories, and the
//! tenants table.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{add_slow_module, apply_until, Ws};

/// The quick start with `n` more tenants on the basic tier, each with one slow resource.
fn slow_fleet(n: usize, duration: &str) -> Ws {
    let ws = Ws::example("quickstart");
    add_slow_module(&ws, duration);
    for i in 0..n {
        let id = format!("slow{i}");
        ws.write(
            &format!("tenants/{id}.yaml"),
            &crate::support::tenant_yaml(&id, "basic"),
        );
    }
    ws
}

fn interrupt(pid: u32) {
    // SAFETY: signals our own child process.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
}

#[test]
fn the_first_interrupt_finishes_the_calls_in_flight_and_exits_130() {
    let ws = slow_fleet(6, "1500ms");
    let (child, _) = apply_until(&ws, 3);
    interrupt(child.id());
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    let re = regex::Regex::new(
        r"interrupted: (\d+) done, (\d+) not started, (\d+) in flight reconciled next run",
    )
    .unwrap();
    let c = re
        .captures(&err)
        .unwrap_or_else(|| panic!("no summary:\n{err}"));
    let (done, not_started) = (
        c[1].parse::<usize>().unwrap(),
        c[2].parse::<usize>().unwrap(),
    );
    assert!(done >= 3 && not_started > 0, "{err}");
    // What finished is recorded; nothing is left half-known; the rest follows.
    let list = ws.run(&["state", "list"]);
    assert!(!list.stderr.contains("pending"), "{}", list.all());
    let plan = crate::support::plan_json(&ws, &[]);
    assert_eq!(
        plan["changes"].as_array().unwrap().len(),
        not_started + c[3].parse::<usize>().unwrap(),
        "the next plan holds exactly what did not finish"
    );
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn a_second_interrupt_exits_at_once_and_the_next_run_reconciles() {
    // Only slow resources, so that both interrupts surely meet calls in flight.
    let ws = Ws::empty();
    ws.write("landlord.toml", "[workspace]\nname = \"slow\"\n");
    crate::support::write_slow_module(&ws, "4s");
    ws.write("plans/slow.yaml", "modules:\n  - use: test/slow\n");
    for i in 0..6 {
        ws.write(
            &format!("tenants/s{i}.yaml"),
            &format!("id: s{i}\nplan: slow\nstatus: active\n"),
        );
    }
    let child = ws
        .cmd(&["apply", "--auto-approve", "--parallelism", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    interrupt(child.id());
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    interrupt(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(out.status.code(), Some(130));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Stopped at once"));
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    let list = ws.run(&["state", "list"]);
    assert!(!list.stderr.contains("pending"), "{}", list.all());
}

#[test]
fn terraform_habits_version_show_spellings_and_destroy() {
    let ws = Ws::example("quickstart");
    let v = ws.ok(&["version"], 0).stdout;
    assert_eq!(v.trim(), format!("landlord {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(ws.ok(&["--version"], 0).stdout, v);

    let plan = ws.join("p.plan");
    let p = plan.to_str().unwrap();
    let shown = ws.ok(&["plan", "--out", p], 0).stdout;
    let files = crate::support::state_files(&ws);
    assert_eq!(
        ws.ok(&["show", p], 0).stdout,
        shown,
        "show prints what plan printed"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ws.ok(&["show", p, "--json"], 0).stdout).unwrap();
    assert!(json["changes"].as_array().is_some_and(|c| !c.is_empty()));
    let mut bytes = std::fs::read(&plan).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&plan, bytes).unwrap();
    let r = ws.ok(&["show", p], 1);
    assert!(
        r.stderr.contains("modified after it was saved"),
        "{}",
        r.all()
    );
    assert_eq!(
        crate::support::state_files(&ws),
        files,
        "show touches no state"
    );

    for (args, hint) in [
        (&["plan", "-out", "x"][..], "landlord takes `--out`"),
        (&["plan", "-out=x"], "landlord takes `--out=x`"),
        (
            &["apply", "-auto-approve"],
            "landlord takes `--auto-approve`",
        ),
        (&["plan", "--target", "acme"], "`--tenant ID`"),
        (&["plan", "-target=aws_s3_bucket.x"], "`--tenant ID`"),
        (&["plan", "-detailed-exitcode"], "`--detailed-exitcode`"),
    ] {
        let r = ws.ok(args, 1);
        assert!(r.stderr.contains(hint), "{args:?}: {}", r.all());
    }

    ws.ok(&["apply", "--auto-approve"], 0);
    let r = ws.ok(&["destroy", "--all", "--auto-approve"], 0);
    assert!(
        r.stdout
            .contains("Destroy complete! Resources: 23 destroyed."),
        "{}",
        r.all()
    );
    assert!(!r.stdout.contains("Apply complete"), "{}", r.all());
}

#[test]
fn the_actor_comes_from_landlord_actor_or_the_os_user_never_unknown() {
    let ws = Ws::example("quickstart");
    let out = ws
        .cmd(&["apply", "--auto-approve"])
        .env_remove("USER")
        .env_remove("LOGNAME")
        .output()
        .unwrap();
    assert!(out.status.success());
    ws.edit(
        "tenants/globex.yaml",
        "rate_limit_burst: 100",
        "rate_limit_burst: 50",
    );
    let out = ws
        .cmd(&["apply", "--auto-approve"])
        .env_remove("USER")
        .env("LANDLORD_ACTOR", "ci-job-4711")
        .output()
        .unwrap();
    assert!(out.status.success());
    let history = ws.ok(&["state", "history"], 0).stdout;
    assert!(!history.contains("unknown@"), "{history}");
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let me = if uid == 0 {
        "root".to_string()
    } else {
        std::env::var("USER").unwrap_or_default()
    };
    assert!(
        history.contains(&format!("{me}@")),
        "the OS user: {history}"
    );
    assert!(
        history.contains("ci-job-4711@"),
        "LANDLORD_ACTOR: {history}"
    );
    let audit = ws.ok(&["audit", "log", "--tenant", "globex"], 0).stdout;
    assert!(audit.contains("ci-job-4711@"), "{audit}");
}

#[test]
fn a_misspelt_tier_key_is_one_error_naming_the_right_key() {
    let ws = Ws::example("quickstart");
    ws.edit("plans/basic.yaml", "modules:", "moduels:");
    let r = ws.ok(&["validate"], 1);
    assert!(
        r.stderr.contains("plans/basic.yaml")
            && r.stderr
                .contains("unknown field `moduels` (did you mean `modules`?)"),
        "{}",
        r.all()
    );
    assert!(
        !r.stderr.contains("unknown tier"),
        "no follow-on error:\n{}",
        r.all()
    );
    assert!(!r.stderr.contains("malformed YAML"), "{}", r.all());
}

#[test]
fn selectors_that_match_nothing_are_refused_everywhere() {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    for args in [
        &["state", "list", "--tenant", "nosuch"][..],
        &["graph", "--tenant", "nosuch"],
        &["plan", "--tenant", "nosuch"],
        &["drift", "--tenant", "nosuch"],
    ] {
        let r = ws.ok(args, 1);
        assert!(
            r.stderr.contains("unknown tenant `nosuch`"),
            "{args:?}: {}",
            r.all()
        );
    }
    assert!(!ws
        .ok(&["state", "list", "--tenant", "acme"], 0)
        .stdout
        .is_empty());
}

#[test]
fn the_zone_serial_only_grows_and_retired_tenants_leave_no_directories() {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    let serial = |ws: &Ws| -> u64 {
        let zone = ws.read("out/zones/saas.example.test.zone");
        let re = regex::Regex::new(r"SOA .*\( (\d+) ").unwrap();
        re.captures(&zone).unwrap()[1].parse().unwrap()
    };
    let first = serial(&ws);
    ws.edit("tenants/initech.yaml", "status: active", "status: deleted");
    ws.ok(&["apply", "--auto-approve", "--allow-bulk"], 0);
    let second = serial(&ws);
    assert!(
        second > first,
        "{second} after {first}: a deleted tenant must raise the serial"
    );
    assert!(
        !ws.join("out/initech").exists(),
        "the retired tenant's directory is gone"
    );
    assert!(ws.join("out/globex").exists());
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    assert_eq!(serial(&ws), second, "no change, no new serial");
}

#[test]
fn the_tenants_table_lines_up() {
    let ws = Ws::example("quickstart");
    ws.write(
        "tenants/a-tenant-with-a-long-identifier.yaml",
        &crate::support::tenant_yaml("a-tenant-with-a-long-identifier", "professional"),
    );
    let out = ws.ok(&["tenants", "list"], 0).stdout;
    let lines: Vec<&str> = out.lines().collect();
    let header = lines[0];
    for col in ["TIER", "STATUS", "REGION", "RESOURCES", "DOMAIN"] {
        let at = header.find(col).unwrap();
        for l in &lines[1..] {
            let cell = &l[at..];
            assert!(
                !cell.starts_with(' ') || col == "RESOURCES",
                "column {col} does not line up:\n{out}"
            );
            assert!(
                l[..at].ends_with("  "),
                "column {col} does not start after the previous one:\n{out}"
            );
        }
    }
    let json: serde_json::Value =
        serde_json::from_str(&ws.ok(&["tenants", "list", "--json"], 0).stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 4);
}

#[test]
fn an_endpoint_where_nothing_listens_is_reported_within_seconds() {
    let port = crate::support::moto::free_port();
    let closed = format!("127.0.0.1:{port}");
    let azure = Ws::example("azure").with_env(vec![("LANDLORD_AZURE_TOKEN".into(), "t".into())]);
    azure.edit(
        "landlord.toml",
        "http://127.0.0.1:7070",
        &format!("http://{closed}"),
    );
    let aws =
        Ws::example("aws").with_env(crate::support::moto::env_for(&format!("http://{closed}")));
    for (name, ws) in [("azure", &azure), ("aws", &aws)] {
        let t = Instant::now();
        let r = ws.run(&["apply", "--auto-approve", "--parallelism", "4"]);
        let took = t.elapsed();
        assert_eq!(r.code, 1, "{name}: {}", r.all());
        assert!(took < Duration::from_secs(30), "{name}: took {took:?}");
        let all = r.all();
        assert!(
            all.contains("Connection refused") || all.contains("connection refused"),
            "{name}: the OS error is named:\n{all}"
        );
        assert!(all.contains("cannot reach the service"), "{name}:\n{all}");
        assert!(
            all.contains("retrying in") && all.contains("attempt 2 of 2"),
            "{name}: each retry shows as a line off a terminal:\n{all}"
        );
        if name == "azure" {
            assert!(
                all.contains(&closed),
                "{name}: the endpoint is named:\n{all}"
            );
        }
    }
}

#[test]
fn fmt_rewrites_tenants_and_tiers_canonically_and_check_reports_them() {
    let ws = Ws::example("quickstart");
    ws.ok(&["fmt", "--check"], 0);
    let messy = "# the acme tenant\nid: acme   \r\nname: Acme Corp\nplan: enterprise\nstatus: active\nregion: eu-west-1\nresidency: [eu]\ndomain:\n      kind: custom\n      name: shop.acme.test\naliases: [www.acme.test]\n\n\n\nsettings:\n    nginx: { client_max_body_size: 250m }\nlabels: { account_manager: dana }";
    ws.write("tenants/acme.yaml", messy);
    let changes = |ws: &Ws| crate::support::plan_json(ws, &["--refresh=false"])["changes"].clone();
    let before = changes(&ws);
    let r = ws.ok(&["fmt", "--check"], 2);
    assert!(r.stdout.contains("tenants/acme.yaml"), "{}", r.all());
    assert_eq!(
        ws.read("tenants/acme.yaml"),
        messy,
        "--check writes nothing"
    );
    let r = ws.ok(&["fmt"], 0);
    assert_eq!(r.stdout.trim(), "tenants/acme.yaml");
    let formatted = ws.read("tenants/acme.yaml");
    assert!(
        formatted.starts_with("# the acme tenant\nid: acme\n"),
        "{formatted}"
    );
    assert!(
        formatted.contains("domain:\n  kind: custom\n  name: shop.acme.test\n"),
        "{formatted}"
    );
    assert!(
        !formatted.contains("\n\n\n") && formatted.ends_with("}\n"),
        "{formatted}"
    );
    ws.ok(&["fmt", "--check"], 0);
    assert_eq!(changes(&ws), before, "the same tenant before and after");
    // A file that is not YAML is reported and left alone.
    ws.write("tenants/broken.yaml", "id: [broken\n");
    let r = ws.ok(&["fmt"], 1);
    assert!(r.stderr.contains("tenants/broken.yaml"), "{}", r.all());
    assert_eq!(ws.read("tenants/broken.yaml"), "id: [broken\n");
}
