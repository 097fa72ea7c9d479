use serde_json::Value;

use crate::support::{plan_json, Ws};

const QUICKSTART_FILES: &[&str] = &[
    "out/acme/db.env",
    "out/acme/nginx.conf",
    "out/acme/tls.crt",
    "out/acme/tls.key",
    "out/globex/db.env",
    "out/globex/nginx.conf",
    "out/globex/tls.crt",
    "out/globex/tls.key",
    "out/initech/db.env",
    "out/initech/nginx.conf",
    "out/initech/tls.crt",
    "out/initech/tls.key",
    "out/zones/saas.example.test.zone",
];

fn mode(ws: &Ws, p: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(ws.join(p)).unwrap().permissions().mode() & 0o777
}

#[test]
fn quickstart_applies_every_file_and_then_plans_no_changes() {
    let ws = Ws::example("quickstart");
    let r = ws.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout.contains("Apply complete! Resources: 23 added"),
        "{}",
        r.all()
    );
    assert_eq!(ws.out_files(), QUICKSTART_FILES);
    assert_eq!(
        mode(&ws, "out/acme/db.env"),
        0o600,
        "the password file is private"
    );
    assert_eq!(mode(&ws, "out/acme/tls.key"), 0o600);
    assert!(ws
        .read("out/acme/tls.crt")
        .starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(ws
        .read("out/acme/nginx.conf")
        .contains("server_name shop.acme.test www.acme.test;"));
    let zone = ws.read("out/zones/saas.example.test.zone");
    assert!(
        zone.contains("globex IN CNAME edge") && zone.contains("initech IN CNAME edge"),
        "{zone}"
    );
    let r = ws.ok(&["plan", "--detailed-exitcode"], 0);
    assert!(r.stdout.contains("No changes."), "{}", r.all());
}

#[test]
fn tier_default_change_updates_only_that_tiers_tenants() {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.edit(
        "plans/professional.yaml",
        "client_max_body_size: 50m",
        "client_max_body_size: 75m",
    );
    let plan = plan_json(&ws, &[]);
    let changes = plan["changes"].as_array().unwrap();
    let addrs: Vec<&str> = changes
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        addrs,
        ["globex/local_file.nginx"],
        "only the professional tenant changes"
    );
    let c = &changes[0];
    assert_eq!(c["action"], "update");
    assert_eq!(c["reasons"][0], "template changed");
    let content = c["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "content")
        .unwrap();
    assert!(content["before"]
        .as_str()
        .unwrap()
        .contains("client_max_body_size 50m;"));
    assert!(content["after"]
        .as_str()
        .unwrap()
        .contains("client_max_body_size 75m;"));
    let text = ws.ok(&["plan", "--detailed-exitcode"], 2).stdout;
    assert!(
        text.contains("-     client_max_body_size 50m;")
            && text.contains("+     client_max_body_size 75m;"),
        "{text}"
    );
    assert!(
        text.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
        "{text}"
    );
    ws.ok(&["apply", "--auto-approve"], 0);
    assert!(ws
        .read("out/globex/nginx.conf")
        .contains("client_max_body_size 75m;"));
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn drift_names_resource_and_attribute_and_apply_repairs() {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["drift"], 0);
    let original = ws.read("out/globex/nginx.conf");
    crate::support::drift_globex_and_initech(&ws);
    let r = ws.ok(&["drift"], 2);
    assert!(
        r.stdout
            .contains("~ globex/local_file.nginx: changed out of band"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout.contains("    content:"),
        "names the attribute: {}",
        r.stdout
    );
    assert!(r.stdout.contains("burst=9999"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("- initech/local_file.tls_cert: deleted out of band"),
        "{}",
        r.stdout
    );
    let j: Value = serde_json::from_str(&ws.ok(&["drift", "--json"], 2).stdout).unwrap();
    assert_eq!(j["drifted"], 2);
    assert_eq!(j["items"][0]["attributes"][0]["name"], "content");
    let md = ws.ok(&["drift", "--markdown"], 2).stdout;
    assert!(md.contains("| `globex` | 1 | 0 | 0 | 0 |"), "{md}");
    assert!(md.contains("| `initech` | 0 | 1 | 0 | 0 |"), "{md}");
    assert!(
        md.contains("<b>globex</b>: 1 drifted")
            && md.contains("~ globex/local_file.nginx: changed out of band"),
        "{md}"
    );
    // The JUnit report beside the JSON: a case per tenant, a failure per drifted resource.
    let xml = ws.join("drift.xml");
    let both = ws.ok(&["drift", "--json", "--junit", xml.to_str().unwrap()], 2);
    assert_eq!(
        serde_json::from_str::<Value>(&both.stdout).unwrap()["drifted"],
        2
    );
    let xml = std::fs::read_to_string(xml).unwrap();
    let tenants = j["tenants"].as_object().unwrap().len();
    assert_eq!(xml.matches("<testcase ").count(), tenants, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
    assert!(
        xml.contains("message=\"globex/local_file.nginx: changed out of band\""),
        "{xml}"
    );
    let plan = plan_json(&ws, &[]);
    let reasons: Vec<String> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {} {}", c["address"], c["action"], c["reasons"][0]))
        .collect();
    assert_eq!(
        reasons,
        [
            r#""globex/local_file.nginx" "update" "drift: changed out of band""#,
            r#""initech/local_file.tls_cert" "create" "deleted out of band""#
        ]
    );
    ws.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(ws.read("out/globex/nginx.conf"), original);
    assert!(ws.join("out/initech/tls.crt").exists());
    ws.ok(&["drift"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

fn destroyed_order(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.contains(": destroyed ["))
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect()
}

fn assert_reverse_dependency_order(order: &[String], tenant: &str) {
    let pos = |local: &str| {
        order
            .iter()
            .position(|a| a == &format!("{tenant}/{local}"))
            .unwrap_or_else(|| panic!("{local} not destroyed: {order:?}"))
    };
    assert!(
        pos("local_file.nginx") < pos("local_file.tls_cert"),
        "{order:?}"
    );
    assert!(
        pos("local_file.tls_cert") < pos("tls_self_signed_cert.site"),
        "{order:?}"
    );
    assert!(
        pos("tls_self_signed_cert.site") < pos("tls_private_key.site"),
        "{order:?}"
    );
    assert!(
        pos("local_file.db_env") < pos("random_password.db"),
        "{order:?}"
    );
}

#[test]
fn removed_tenant_is_destroyed_in_reverse_order_and_others_untouched() {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    let acme_before = ws.read("out/acme/db.env");
    std::fs::remove_file(ws.join("tenants/initech.yaml")).unwrap();
    let plan = plan_json(&ws, &[]);
    let changes = plan["changes"].as_array().unwrap();
    let deletes = changes.iter().filter(|c| c["action"] == "delete").count();
    assert_eq!(deletes, 7);
    assert!(changes
        .iter()
        .filter(|c| c["action"] == "delete")
        .all(|c| c["tenant"] == "initech" && c["reasons"][0] == "tenant removed"));
    let zone = changes
        .iter()
        .find(|c| c["address"] == "_shared/local_file.zone")
        .expect("the zone file drops initech");
    assert_eq!(zone["action"], "update");
    let r = ws.ok(
        &[
            "apply",
            "--auto-approve",
            "--allow-bulk",
            "--parallelism",
            "1",
        ],
        0,
    );
    assert_reverse_dependency_order(&destroyed_order(&r.stdout), "initech");
    assert!(!ws.join("out/initech/nginx.conf").exists() && !ws.join("out/initech/db.env").exists());
    assert_eq!(
        ws.read("out/acme/db.env"),
        acme_before,
        "other tenants untouched"
    );
    assert!(!ws
        .read("out/zones/saas.example.test.zone")
        .contains("initech"));
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn deleted_status_destroys_and_suspended_keeps_data_but_stops_serving() {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.edit("tenants/globex.yaml", "status: active", "status: suspended");
    ws.edit("tenants/initech.yaml", "status: active", "status: deleted");
    let plan = plan_json(&ws, &[]);
    let reasons: Vec<(String, String)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "delete")
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_string(),
                c["reasons"][0].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&("globex/local_file.nginx".into(), "tenant suspended".into())),
        "{reasons:?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|(a, r)| a.starts_with("initech/") && r == "tenant deleted")
            .count(),
        7
    );
    assert_eq!(reasons.len(), 8);
    let r = ws.ok(
        &[
            "apply",
            "--auto-approve",
            "--allow-bulk",
            "--parallelism",
            "1",
        ],
        0,
    );
    assert_reverse_dependency_order(&destroyed_order(&r.stdout), "initech");
    assert!(ws.join("out/globex/db.env").exists() && !ws.join("out/globex/nginx.conf").exists());
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn destroy_tenant_touches_only_that_tenant() {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    let r = ws.ok(
        &[
            "destroy",
            "--tenant",
            "acme",
            "--auto-approve",
            "--parallelism",
            "3",
        ],
        0,
    );
    assert_reverse_dependency_order(&destroyed_order(&r.stdout), "acme");
    assert!(
        r.stdout.contains("Destroy complete! Resources: ") && !r.stdout.contains("Apply complete"),
        "{}",
        r.all()
    );
    assert!(
        !ws.join("out/acme").exists(),
        "acme's files and the directory they left empty are gone"
    );
    assert!(ws.join("out/globex/nginx.conf").exists());
    let list = ws.ok(&["state", "list"], 0).stdout;
    assert!(
        !list.contains("acme/") && list.contains("globex/"),
        "{list}"
    );
    let r = ws.run(&["destroy", "--auto-approve"]);
    assert_eq!(r.code, 1, "destroy without a target is refused");
    assert!(r.stderr.contains("--tenant"), "{}", r.all());
}

#[test]
fn renewal_window_plans_a_replace_and_drift_reports_it() {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    // A renewal window longer than the certificate's lifetime: renewal is due at once.
    ws.edit(
        "plans/basic.yaml",
        "  - use: local/tls-self-signed\n",
        "  - use: local/tls-self-signed\n    inputs: { renew_hours: 5000 }\n",
    );
    let plan = plan_json(&ws, &[]);
    let cert = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "initech/tls_self_signed_cert.site")
        .unwrap()
        .clone();
    assert_eq!(cert["action"], "replace");
    assert!(
        cert["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("renewal due")),
        "{cert}"
    );
    let before = ws.read("out/initech/tls.crt");
    ws.ok(&["apply", "--auto-approve"], 0);
    assert_ne!(
        ws.read("out/initech/tls.crt"),
        before,
        "a new certificate was written"
    );
    let r = ws.ok(&["drift"], 2);
    assert!(
        r.stdout
            .contains("! initech/tls_self_signed_cert.site: renewal due"),
        "{}",
        r.all()
    );
}

#[test]
fn output_graph_tenants_and_state_commands() {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    let out = ws
        .ok(&["output", "acme/local_file.nginx", "filename"], 0)
        .stdout;
    assert_eq!(out.trim(), "out/acme/nginx.conf");
    let r = ws.run(&["output", "acme/random_password.db", "result"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("sensitive"), "{}", r.all());
    let pw = ws
        .ok(
            &[
                "output",
                "acme/random_password.db",
                "result",
                "--show-sensitive",
            ],
            0,
        )
        .stdout;
    assert!(ws.read("out/acme/db.env").contains(pw.trim()));
    let dot = ws
        .ok(&["graph", "--format", "dot", "--tenant", "acme"], 0)
        .stdout;
    assert!(
        dot.contains("\"acme/tls_self_signed_cert.site\" -> \"acme/tls_private_key.site\";"),
        "{dot}"
    );
    let mermaid = ws.ok(&["graph", "--format", "mermaid"], 0).stdout;
    assert!(mermaid.starts_with("graph LR"));
    let tenants = ws.ok(&["tenants", "list"], 0).stdout;
    assert!(
        tenants
            .lines()
            .any(|l| l.starts_with("acme") && l.contains("enterprise") && l.contains(" 7 ")),
        "{tenants}"
    );
    ws.ok(
        &[
            "state",
            "mv",
            "globex/local_file.nginx",
            "globex/local_file.site",
        ],
        0,
    );
    assert!(ws
        .ok(&["state", "list", "--tenant", "globex"], 0)
        .stdout
        .contains("globex/local_file.site"));
    ws.ok(
        &[
            "state",
            "mv",
            "globex/local_file.site",
            "globex/local_file.nginx",
        ],
        0,
    );
    let export = ws.export();
    ws.ok(&["state", "rm", "acme/local_file.nginx"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 2);
    let file = ws.join("backup.json");
    std::fs::write(&file, &export).unwrap();
    ws.ok(&["state", "import", file.to_str().unwrap()], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    assert!(ws
        .ok(&["state", "history"], 0)
        .stdout
        .contains("landlord apply"));
}

#[test]
fn prevent_destroy_refuses_the_plan_naming_the_resource() {
    let ws = Ws::example("quickstart");
    ws.write(
        "modules/test/keep/module.yaml",
        "description: a protected value\n",
    );
    ws.write("modules/test/keep/keep.yaml.tera", "- type: random_id\n  name: keep\n  lifecycle: { prevent_destroy: true }\n  properties: { byte_length: 8 }\n");
    ws.edit(
        "plans/basic.yaml",
        "modules:\n",
        "modules:\n  - use: test/keep\n",
    );
    ws.ok(&["apply", "--auto-approve"], 0);
    let before = ws.export();
    ws.edit("tenants/initech.yaml", "status: active", "status: deleted");
    for args in [
        &["plan"][..],
        &["apply", "--auto-approve"],
        &["destroy", "--tenant", "initech", "--auto-approve"],
    ] {
        let r = ws.run(args);
        assert_eq!(r.code, 1, "{args:?}\n{}", r.all());
        assert!(
            r.stderr.contains("initech/random_id.keep") && r.stderr.contains("prevent_destroy"),
            "{}",
            r.all()
        );
    }
    assert_eq!(ws.export(), before);
    assert!(
        ws.join("out/initech/db.env").exists(),
        "nothing of the tenant was destroyed"
    );
}

#[test]
fn a_timed_out_call_keeps_its_intent_and_the_next_run_reconciles_it() {
    let ws = Ws::example("quickstart");
    crate::support::add_slow_module(&ws, "3s");
    let r = ws.ok(&["apply", "--auto-approve", "--timeout", "500ms"], 1);
    assert!(
        r.stdout
            .contains("initech/time_sleep.pause: FAILED to create: timed out after 500ms"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout.contains("Apply failed:") && r.stdout.contains("globex/local_file.nginx: created"),
        "other tenants go on: {}",
        r.all()
    );
    assert!(ws
        .ok(&["state", "list"], 0)
        .stderr
        .contains("1 operations of an interrupted run are pending"));
    let r = ws.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout
            .contains("initech/time_sleep.pause: interrupted create reconciled"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout.contains("initech/time_sleep.pause: created"),
        "{}",
        r.all()
    );
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn a_plan_for_one_tenant_reads_only_its_records_and_the_shared_ones() {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    let count = |tenant: &str| {
        ws.ok(&["state", "list", "--tenant", tenant], 0)
            .stdout
            .lines()
            .count()
    };
    let read = |args: &[&str]| -> usize {
        let r = ws.ok(args, 0);
        let line = r
            .stderr
            .lines()
            .find(|l| l.starts_with("State records read: "))
            .unwrap_or_else(|| panic!("no record count:\n{}", r.all()));
        line["State records read: ".len()..].parse().unwrap()
    };
    let all = read(&["plan", "--stats"]);
    let one = read(&["plan", "--tenant", "globex", "--stats"]);
    assert_eq!(
        one,
        count("globex") + count("_shared"),
        "globex's and the shared records only"
    );
    assert!(one < all, "{one} records for one tenant, {all} for all");
    let drift = read(&["drift", "--tenant", "globex", "--stats"]);
    assert_eq!(drift, one);
    // The targeted plan is the same as the whole plan's part for that tenant.
    ws.edit(
        "tenants/globex.yaml",
        "rate_limit_burst: 100",
        "rate_limit_burst: 50",
    );
    let whole = crate::support::plan_json(&ws, &[]);
    let part = crate::support::plan_json(&ws, &["--tenant", "globex"]);
    let of_globex: Vec<&serde_json::Value> = whole["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["tenant"] == "globex")
        .collect();
    assert_eq!(
        part["changes"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        of_globex
    );
    // Another tenant's file is not even read: a broken one blocks only whole runs, and a
    // saved plan for globex is checked against the files it read.
    let acme = ws.read("tenants/acme.yaml");
    ws.write("tenants/acme.yaml", "id: acme\nplan: [broken\n");
    ws.ok(&["plan"], 1);
    let saved = ws.join("globex.plan");
    let saved = saved.to_str().unwrap();
    ws.ok(&["plan", "--tenant", "globex", "--out", saved], 0);
    ws.ok(&["apply", saved], 0);
    ws.write("tenants/acme.yaml", &acme);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}
