use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{add_slow_module, kill_applies, tenant_yaml, walk, write_slow_module, Ws};

#[test]
fn saved_plan_applies_exactly_what_was_shown_and_stale_plans_are_refused() {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.edit(
        "plans/professional.yaml",
        "client_max_body_size: 50m",
        "client_max_body_size: 100m",
    );
    std::fs::remove_file(ws.join("tenants/initech.yaml")).unwrap();
    let plan_file = ws.join("plan.bin");
    let shown: Value = serde_json::from_str(
        &ws.ok(
            &[
                "plan",
                "--json",
                "--allow-bulk",
                "--out",
                plan_file.to_str().unwrap(),
            ],
            0,
        )
        .stdout,
    )
    .unwrap();
    let mut shown: Vec<String> = shown["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap().to_string())
        .collect();
    shown.sort();
    // A template change made after the plan is not applied with it...
    let r = ws.ok(&["apply", plan_file.to_str().unwrap()], 0);
    let mut done: Vec<String> = r
        .stdout
        .lines()
        .filter(|l| l.ends_with("s]"))
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    done.sort();
    assert_eq!(done, shown, "apply executed exactly the saved plan");
    ws.ok(&["plan", "--detailed-exitcode"], 0);

    // A plan made stale by another apply to a tenant it changes is refused; one made
    // stale only for other tenants is not.
    ws.edit(
        "plans/professional.yaml",
        "client_max_body_size: 100m",
        "client_max_body_size: 10m",
    );
    ws.ok(&["plan", "--out", plan_file.to_str().unwrap()], 0);
    std::fs::remove_file(ws.join("out/globex/nginx.conf")).unwrap();
    ws.ok(&["apply", "--auto-approve", "--tenant", "globex"], 0);
    let r = ws.run(&["apply", plan_file.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr
            .contains("saved plan is stale: tenant `globex` changed since the plan was made"),
        "{}",
        r.all()
    );

    // So is one made before the workspace files changed.
    ws.ok(&["plan", "--out", plan_file.to_str().unwrap()], 0);
    ws.edit(
        "tenants/globex.yaml",
        "rate_limit_burst: 100",
        "rate_limit_burst: 50",
    );
    let r = ws.run(&["apply", plan_file.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("workspace files changed since the plan was made"),
        "{}",
        r.all()
    );
}

#[test]
fn a_second_apply_waits_for_the_lock_then_names_the_holder() {
    let ws = Ws::example("quickstart");
    add_slow_module(&ws, "4s");
    let mut first = ws
        .cmd(&["apply", "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let holder = ws.join("state/lock");
    let start = Instant::now();
    while !std::fs::read_to_string(&holder)
        .is_ok_and(|t| t.contains(&format!("\"pid\":{}", first.id())))
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the first apply never took the state"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = Instant::now();
    let r = ws.run(&[
        "apply",
        "--auto-approve",
        "--tenant",
        "initech",
        "--lock-timeout",
        "1s",
    ]);
    let waited = t.elapsed();
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("state is locked by")
            && r.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        r.all()
    );
    assert!(
        r.stderr.contains("landlord apply"),
        "names the holder's command: {}",
        r.all()
    );
    assert!(
        !r.stderr.contains("state unlock"),
        "a live local holder is never worth `state unlock`: {}",
        r.all()
    );
    assert!(waited >= Duration::from_secs(1), "waited {waited:?}");
    assert!(first.wait().unwrap().success());
    assert_eq!(
        std::fs::read_to_string(&holder).unwrap(),
        "",
        "the holder record is emptied when the run ends"
    );
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn secrets_never_appear_in_output_logs_or_state_files() {
    let ws = Ws::example("quickstart");
    let apply = ws.ok(&["apply", "--auto-approve"], 0);
    let env = ws.read("out/acme/db.env");
    let password = env
        .lines()
        .find_map(|l| l.strip_prefix("DATABASE_PASSWORD="))
        .unwrap()
        .to_string();
    assert_eq!(password.len(), 40);
    let key_line = ws
        .read("out/globex/tls.key")
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    // Force a plan that touches the sensitive file and the key file.
    ws.write("out/acme/db.env", "tampered\n");
    ws.write("out/globex/tls.key", "tampered\n");
    let mut outputs = vec![apply.stdout, apply.stderr];
    for args in [
        &["plan"][..],
        &["plan", "--json"],
        &["plan", "--markdown"],
        &["drift"],
        &["drift", "--json"],
        &["drift", "--markdown"],
        &["output"],
        &["output", "--json"],
        &["state", "show", "acme/random_password.db"],
        &["state", "export"],
    ] {
        let r = ws.run(args);
        assert!(r.code == 0 || r.code == 2, "{args:?}: {}", r.all());
        outputs.push(r.stdout);
        outputs.push(r.stderr);
    }
    let text = ws.ok(&["plan"], 0).stdout;
    assert!(
        text.contains("content = (sensitive) -> (sensitive)"),
        "{text}"
    );
    let r = ws.ok(&["apply", "--auto-approve"], 0);
    outputs.push(r.stdout);
    outputs.push(r.stderr);
    for o in &outputs {
        assert!(!o.contains(&password), "the password leaked:\n{o}");
        assert!(!o.contains(&key_line), "the private key leaked:\n{o}");
    }
    let mut files = Vec::new();
    walk(&ws.join("state"), &mut files);
    assert!(files.len() > 2);
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !contains(&bytes, &password),
            "{} holds the password",
            f.display()
        );
        assert!(
            !contains(&bytes, &key_line),
            "{} holds the private key",
            f.display()
        );
    }
    assert_eq!(
        ws.read("out/acme/db.env"),
        env,
        "apply restored the file with the same password"
    );
}

/// Records of local files in state: filename → content_sha256.
fn recorded_files(ws: &Ws) -> BTreeMap<String, String> {
    let out: Value = serde_json::from_str(&ws.ok(&["output", "--json"], 0).stdout).unwrap();
    out.as_object()
        .unwrap()
        .iter()
        .filter(|(a, _)| a.contains("/local_file."))
        .map(|(_, v)| {
            (
                v["filename"].as_str().unwrap().to_string(),
                v["content_sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn killed_applies_leave_no_orphan_and_no_duplicate() {
    use sha2::{Digest, Sha256};
    let ws = Ws::example("quickstart");
    for f in ["acme", "globex", "initech"] {
        std::fs::remove_file(ws.join(&format!("tenants/{f}.yaml"))).unwrap();
    }
    for i in 0..50 {
        let plan = if i % 2 == 0 { "basic" } else { "professional" };
        ws.write(
            &format!("tenants/t{i:02}.yaml"),
            &tenant_yaml(&format!("t{i:02}"), plan),
        );
    }
    let args = ["apply", "--auto-approve", "--parallelism", "8"];
    let kills = kill_applies(&ws, &args, 24, &[0, 1, 2, 3, 5, 8, 12], (0, 5));
    assert!(kills >= 20, "only {kills} runs were killed mid-way");
    let r = ws.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout.contains("Apply complete!") || r.stdout.contains("No changes."),
        "{}",
        r.all()
    );
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    assert!(
        !ws.ok(&["state", "list"], 0).stderr.contains("pending"),
        "no intent is left"
    );
    let audit = ws.ok(&["audit", "verify"], 0).stdout;
    let resources = ws.ok(&["state", "list"], 0).stdout.lines().count();
    assert!(
        audit.contains(&format!(
            "all {resources} recorded resources match their last event"
        )),
        "killed runs never break the audit chains: {audit}"
    );

    let recorded = recorded_files(&ws);
    assert_eq!(
        recorded.len(),
        50 * 4 + 1,
        "four files per tenant and the zone file, each recorded once"
    );
    let on_disk: Vec<String> = ws.out_files();
    let recorded_names: Vec<String> = recorded.keys().cloned().collect();
    assert_eq!(
        on_disk, recorded_names,
        "every file on disk is recorded and every record is on disk"
    );
    for (f, sha) in &recorded {
        let bytes = std::fs::read(ws.join(f)).unwrap();
        assert_eq!(
            &hex::encode(Sha256::digest(&bytes)),
            sha,
            "{f} matches its record"
        );
    }
    let zone = ws.read("out/zones/saas.example.test.zone");
    assert_eq!(zone.matches("IN CNAME edge").count(), 50);
}

#[test]
fn a_saved_plan_after_a_killed_run_applies_once_the_interrupted_operation_is_reconciled() {
    let ws = Ws::example("quickstart");
    for t in ["acme", "globex"] {
        std::fs::remove_file(ws.join(&format!("tenants/{t}.yaml"))).unwrap();
    }
    std::fs::remove_file(ws.join("shared.yaml")).unwrap();
    write_slow_module(&ws, "3s");
    ws.write("plans/basic.yaml", "modules:\n  - use: test/slow\n");
    let plan_file = ws.join("plan.bin");
    ws.ok(&["plan", "--out", plan_file.to_str().unwrap()], 0);
    // A run is killed while its only change is under way: nothing is committed.
    let mut child = ws
        .cmd(&["apply", "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(ws
        .ok(&["state", "list"], 0)
        .stderr
        .contains("1 operations of an interrupted run are pending"));
    // The interrupted create is reconciled first: no object came of it, so the tenant is
    // as the plan saw it (its version unchanged) and the plan creates it, once.
    let r = ws.run(&["apply", plan_file.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout
            .contains("initech/time_sleep.pause: interrupted create reconciled: no object exists")
            && r.stdout.contains("initech/time_sleep.pause: created"),
        "{}",
        r.all()
    );
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    assert_eq!(ws.ok(&["state", "list"], 0).stdout.lines().count(), 1);
}

#[test]
fn the_audit_chain_records_every_change_and_finds_edits_outside_landlord() {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.edit("tenants/initech.yaml", "plan: basic", "plan: professional");
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["destroy", "--tenant", "globex", "--auto-approve"], 0);
    ws.ok(&["state", "rm", "initech/local_file.nginx"], 0);

    let log = ws.ok(&["audit", "log", "--json"], 0).stdout;
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions = |addr: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["address"] == addr)
            .map(|e| e["action"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(actions("globex/local_file.nginx"), ["create", "delete"]);
    let nginx = actions("initech/local_file.nginx");
    assert_eq!(
        (nginx[0].as_str(), nginx[nginx.len() - 1].as_str()),
        ("create", "state-forget"),
        "{nginx:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["address"] == "initech/local_file.db_env" && e["action"] == "update"),
        "the tier change updated initech's files"
    );
    assert!(
        !log.contains("DATABASE_PASSWORD") && !log.contains("BEGIN"),
        "events carry digests, never values"
    );
    ws.ok(&["audit", "verify"], 0);

    // A record edited outside landlord, and an event removed from the chain.
    let original = ws.ok(&["state", "export"], 0).stdout;
    let mut ex: serde_json::Value = serde_json::from_str(&original).unwrap();
    for r in ex["resources"].as_array_mut().unwrap() {
        if r["address"] == "acme/local_file.nginx" {
            r["attributes"]["file_permission"] = serde_json::json!("0666");
        }
    }
    ws.write("tampered.json", &ex.to_string());
    ws.ok(
        &[
            "state",
            "import",
            ws.join("tampered.json").to_str().unwrap(),
        ],
        0,
    );
    let r = ws.ok(&["audit", "verify"], 1);
    assert!(
        r.stderr
            .contains("`acme/local_file.nginx`: the record differs from what event")
            && r.stderr.contains("changed outside landlord"),
        "{}",
        r.all()
    );

    let mut ex: serde_json::Value = serde_json::from_str(&original).unwrap();
    ex["audit"]
        .as_array_mut()
        .unwrap()
        .retain(|e| !(e["tenant"] == "globex" && e["seq"] == 2));
    ws.write("gap.json", &ex.to_string());
    ws.ok(
        &["state", "import", ws.join("gap.json").to_str().unwrap()],
        0,
    );
    let r = ws.ok(&["audit", "verify"], 1);
    assert!(
        r.stderr.contains("tenant `globex`: event 2 is missing"),
        "{}",
        r.all()
    );

    ws.write("original.json", &original);
    ws.ok(
        &[
            "state",
            "import",
            ws.join("original.json").to_str().unwrap(),
        ],
        0,
    );
    ws.ok(&["audit", "verify"], 0);
}
