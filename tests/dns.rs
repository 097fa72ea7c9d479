use std::process::Command;

use serde_json::Value;

use crate::support::bind::Bind;
use crate::support::pebble::Pebble;
use crate::support::{walk, Ws};

/// The custom-domains example wired to this test's BIND (and Pebble).
fn workspace(bind: &Bind, pebble: Option<&Pebble>) -> Ws {
    let ws = Ws::example("custom-domains")
        .with_env(vec![("LANDLORD_TSIG_SECRET".into(), bind.secret.clone())]);
    let mut toml = ws
        .read("landlord.toml")
        .replace("127.0.0.1:5353", &bind.addr());
    if let Some(p) = pebble {
        toml = toml
            .replace("https://127.0.0.1:14000/dir", &p.directory)
            .replace(".pebble/ca.pem", p.ca_pem().to_str().unwrap());
    }
    ws.write("landlord.toml", &toml);
    ws
}

/// A workspace of DNS records only: `n` records of tenant `globex` in example.test.
fn records_only(bind: &Bind, n: usize) -> Ws {
    let ws = workspace(bind, None);
    std::fs::remove_file(ws.join("shared.yaml")).unwrap();
    std::fs::remove_file(ws.join("tenants/acme.yaml")).unwrap();
    ws.write(
        "modules/test/records/module.yaml",
        "inputs: { count: { type: int, default: 1 } }\n",
    );
    ws.write(
        "modules/test/records/r.yaml.tera",
        "- type: dns_record\n  name: site\n  properties: { zone: example.test, name: \"{{ tenant.hostname }}\", type: A, ttl: 300, records: [192.0.2.10, 192.0.2.11] }\n{% for i in range(end=inputs.count - 1) %}\n- type: dns_record\n  name: r{{ i }}\n  properties: { zone: example.test, name: \"r{{ i }}.example.test\", type: TXT, records: [\"v={{ i }}\"] }\n{% endfor %}\n",
    );
    ws.write(
        "plans/standard.yaml",
        &format!("modules:\n  - use: test/records\n    inputs: {{ count: {n} }}\n"),
    );
    ws
}

fn cert_attr(ws: &Ws, addr: &str, attr: &str) -> String {
    ws.ok(&["output", addr, attr, "--show-sensitive"], 0).stdout
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn custom_domain_is_verified_served_and_certified_by_pebble() {
    let bind = Bind::start(&["example.test", "acme.test"]);
    let pebble = Pebble::start(&bind.addr());
    let ws = workspace(&bind, Some(&pebble));
    let first = ws.ok(&["apply", "--auto-approve"], 1);
    let out = first.stdout.clone();
    assert!(
        out.contains("globex/acme_certificate.site: created"),
        "the subdomain tenant proceeds: {}",
        first.all()
    );
    let line = out
        .lines()
        .find(|l| l.contains("is not verified yet"))
        .unwrap_or_else(|| panic!("verification must fail first: {}", first.all()));
    assert!(
        line.contains("_landlord-verification.shop.acme.test"),
        "{line}"
    );
    assert!(
        out.contains("acme/acme_certificate.site: skipped")
            && out.contains("acme/dns_record.target: skipped"),
        "{out}"
    );
    let token = line.split('"').nth(1).unwrap().to_string();
    // The tenant publishes the token in their DNS.
    bind.nsupdate(&format!(
        "update add _landlord-verification.shop.acme.test 60 TXT \"{token}\""
    ));
    let r = ws.ok(&["apply", "--auto-approve"], 0);

    assert_eq!(bind.dig("globex.example.test", "A"), ["192.0.2.10"]);
    assert_eq!(bind.dig("acme.tenants.example.test", "A"), ["192.0.2.10"]);
    assert_eq!(
        bind.dig("shop.acme.test", "CNAME"),
        ["acme.tenants.example.test."]
    );
    assert!(
        bind.dig("_acme-challenge.shop.acme.test", "TXT").is_empty(),
        "challenge records are removed"
    );
    assert!(bind
        .dig("_acme-challenge.globex.example.test", "TXT")
        .is_empty());

    let dir = tempfile::tempdir().unwrap();
    let (leaf, chain, root) = (
        dir.path().join("leaf.pem"),
        dir.path().join("chain.pem"),
        dir.path().join("root.pem"),
    );
    std::fs::write(
        &leaf,
        cert_attr(&ws, "acme/acme_certificate.site", "certificate_pem"),
    )
    .unwrap();
    std::fs::write(
        &chain,
        cert_attr(&ws, "acme/acme_certificate.site", "issuer_pem"),
    )
    .unwrap();
    std::fs::write(&root, pebble.issuing_root()).unwrap();
    let verify = openssl(&[
        "verify",
        "-CAfile",
        root.to_str().unwrap(),
        "-untrusted",
        chain.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ]);
    assert!(verify.contains(": OK"), "the chain verifies: {verify}");
    let sans = openssl(&[
        "x509",
        "-in",
        leaf.to_str().unwrap(),
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    let names: Vec<&str> = sans
        .lines()
        .skip(1)
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(names, ["DNS:shop.acme.test"], "exactly its names: {sans}");

    let key = cert_attr(&ws, "acme/acme_certificate.site", "private_key_pem");
    let key_line = key.lines().nth(1).unwrap().to_string();
    let mut files = Vec::new();
    walk(&ws.join("state"), &mut files);
    for f in files {
        assert!(
            !std::fs::read(&f)
                .unwrap()
                .windows(key_line.len())
                .any(|w| w == key_line.as_bytes()),
            "{} holds the key",
            f.display()
        );
    }
    for text in [
        &first.stdout,
        &r.stdout,
        &ws.ok(&["plan", "--json"], 0).stdout,
        &ws.ok(&["output"], 0).stdout,
        &ws.ok(&["state", "export"], 0).stdout,
    ] {
        assert!(!text.contains(&key_line), "the key leaked");
    }
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn renewal_window_longer_than_the_lifetime_replaces_with_a_new_serial() {
    let bind = Bind::start(&["example.test", "acme.test"]);
    let pebble = Pebble::start(&bind.addr());
    let ws = workspace(&bind, Some(&pebble));
    std::fs::remove_file(ws.join("tenants/acme.yaml")).unwrap();
    ws.ok(&["apply", "--auto-approve"], 0);
    let serial = cert_attr(&ws, "globex/acme_certificate.site", "serial");
    ws.edit(
        "plans/standard.yaml",
        "inputs: { zone: example.test, edge_ip: 192.0.2.10 }",
        "inputs: { zone: example.test, edge_ip: 192.0.2.10, renew_before_days: 100000 }",
    );
    let plan: Value = serde_json::from_str(&ws.ok(&["plan", "--json"], 0).stdout).unwrap();
    let c = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "globex/acme_certificate.site")
        .unwrap()
        .clone();
    assert_eq!(c["action"], "replace");
    assert!(
        c["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("renewal due")),
        "{c}"
    );
    ws.ok(&["apply", "--auto-approve"], 0);
    assert_ne!(
        cert_attr(&ws, "globex/acme_certificate.site", "serial"),
        serial,
        "a new certificate"
    );
    let drift = ws.ok(&["drift"], 2).stdout;
    assert!(
        drift.contains("globex/acme_certificate.site: renewal due"),
        "still inside the window: {drift}"
    );
}

#[test]
fn a_failing_dns01_challenge_leaves_no_record_and_no_certificate() {
    let bind = Bind::start(&["example.test", "acme.test"]);
    // Pebble asks a DNS server that does not exist: every challenge fails.
    let dead = format!("127.0.0.1:{}", crate::support::moto::free_port());
    let pebble = Pebble::start(&dead);
    let ws = workspace(&bind, Some(&pebble));
    std::fs::remove_file(ws.join("tenants/acme.yaml")).unwrap();
    let r = ws.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.stdout
            .contains("globex/acme_certificate.site: FAILED to create"),
        "{}",
        r.all()
    );
    assert!(r.stdout.contains("acme"), "{}", r.all());
    assert!(
        bind.dig("_acme-challenge.globex.example.test", "TXT")
            .is_empty(),
        "no challenge record is left"
    );
    let list = ws.ok(&["state", "list"], 0);
    assert!(
        !list.stdout.contains("acme_certificate"),
        "no half-written certificate: {}",
        list.stdout
    );
    assert!(
        !list.stderr.contains("pending"),
        "no intent is left: {}",
        list.stderr
    );
    assert!(
        list.stdout.contains("globex/dns_record.site"),
        "the record went on: {}",
        list.stdout
    );
}

#[test]
fn out_of_band_change_is_drift_and_apply_restores_the_served_answer() {
    let bind = Bind::start(&["example.test", "acme.test"]);
    let ws = records_only(&bind, 1);
    ws.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        bind.dig("globex.example.test", "A"),
        ["192.0.2.10", "192.0.2.11"]
    );
    ws.ok(&["drift"], 0);
    bind.nsupdate(
        "update delete globex.example.test A\nupdate add globex.example.test 300 A 203.0.113.66",
    );
    let r = ws.ok(&["drift"], 2);
    assert!(
        r.stdout
            .contains("~ globex/dns_record.site: changed out of band"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout
            .contains("records = [\"192.0.2.10\",\"192.0.2.11\"] -> [\"203.0.113.66\"]"),
        "{}",
        r.all()
    );
    ws.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        bind.dig("globex.example.test", "A"),
        ["192.0.2.10", "192.0.2.11"],
        "the live answer matches again"
    );
    ws.ok(&["drift"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn a_wrong_tsig_secret_is_an_authentication_error_and_changes_nothing() {
    let bind = Bind::start(&["example.test", "acme.test"]);
    let ws = records_only(&bind, 1).with_env(vec![(
        "LANDLORD_TSIG_SECRET".into(),
        "c2VjcmV0LXRoYXQtaXMtd3Jvbmctc2VjcmV0LXdyb25nIQ==".into(),
    )]);
    let resources = |ws: &Ws| {
        let ex: Value = serde_json::from_str(&ws.export()).unwrap();
        (
            ex["serial"].clone(),
            ex["resources"].clone(),
            ex["intents"].clone(),
        )
    };
    let before = resources(&ws);
    let r = ws.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.stdout.contains("rejected the TSIG signature") || r.stdout.contains("check the TSIG key"),
        "names the TSIG problem: {}",
        r.all()
    );
    assert!(bind.dig("globex.example.test", "A").is_empty());
    assert_eq!(
        resources(&ws),
        before,
        "state is unchanged (the run is only logged in history)"
    );
}

#[test]
fn fifty_records_refresh_with_one_zone_transfer() {
    let bind = Bind::start(&["example.test", "acme.test"]);
    let ws = records_only(&bind, 50);
    ws.ok(&["apply", "--auto-approve"], 0);
    let plan = crate::support::plan_json(&ws, &["--detailed-exitcode"]);
    let count = |op: &str| crate::support::api_calls(&plan, op);
    assert_eq!(count("AXFR"), 1, "{plan}");
    assert_eq!(count("Query"), 0, "{plan}");
    assert_eq!(plan["summary"]["unchanged"], 50);
}

#[test]
fn validate_needs_no_secret_and_apply_names_the_missing_variable() {
    let bind = Bind::start(&["example.test", "acme.test"]);
    let ws = records_only(&bind, 1);
    let run = |args: &[&str]| {
        let out = ws
            .cmd(args)
            .env_remove("LANDLORD_TSIG_SECRET")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, _) = run(&["validate"]);
    assert_eq!(code, Some(0), "validate works without secrets");
    let (code, out) = run(&["apply", "--auto-approve"]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("environment variable `LANDLORD_TSIG_SECRET` (tsig_secret_env) is not set"),
        "{out}"
    );
}

#[test]
fn a_lagging_nameserver_is_reported_as_served_value_differs() {
    let bind = Bind::start(&["example.test", "acme.test"]);
    let secondary = Bind::start_secondary(&bind, &["example.test"]);
    let ws = records_only(&bind, 1);
    ws.edit(
        "landlord.toml",
        "zone = \"example.test\"\n",
        &format!(
            "zone = \"example.test\"\nnameservers = [\"{}\", \"{}\"]\n",
            bind.addr(),
            secondary.addr()
        ),
    );
    ws.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        bind.dig("globex.example.test", "A"),
        ["192.0.2.10", "192.0.2.11"]
    );
    assert!(
        secondary.dig("globex.example.test", "A").is_empty(),
        "the secondary lags"
    );
    let r = ws.ok(&["drift"], 2);
    let line = format!(
        "? globex/dns_record.site: served value differs at {}",
        secondary.addr()
    );
    assert!(r.stdout.contains(&line), "{}", r.all());
    assert!(
        !r.stdout.contains("changed out of band"),
        "the API value is as recorded: {}",
        r.all()
    );
    let j: Value = serde_json::from_str(&ws.ok(&["drift", "--json"], 2).stdout).unwrap();
    assert_eq!(j["items"][0]["kind"]["served-differs"], secondary.addr());
    assert_eq!(
        j["items"][0]["attributes"][0]["after"],
        serde_json::json!([])
    );
}

#[test]
fn a_ca_order_limit_defers_the_excess_tenants_until_its_window_has_passed() {
    let bind = Bind::start(&["example.test", "acme.test"]);
    let pebble = Pebble::start(&bind.addr());
    let ws = workspace(&bind, Some(&pebble));
    // Five tenants with a certificate each; the CA allows three orders per 12 seconds.
    std::fs::remove_file(ws.join("tenants/acme.yaml")).unwrap();
    for i in 1..=4 {
        ws.write(
            &format!("tenants/t{i}.yaml"),
            &format!("id: t{i}\nplan: standard\ndomain: {{ kind: subdomain, name: t{i} }}\n"),
        );
    }
    ws.edit(
        "landlord.toml",
        "contact = [\"mailto:ops@example.test\"]",
        "contact = [\"mailto:ops@example.test\"]\norder_limit = { max = 3, window = \"12s\" }",
    );
    let certificates = |ws: &Ws| {
        ws.ok(&["state", "list"], 0)
            .stdout
            .lines()
            .filter(|l| l.contains("acme_certificate"))
            .count()
    };
    // The plan says which tenants wait, and why.
    let plan = crate::support::plan_json(&ws, &[]);
    let deferred: Vec<&str> = plan["deferred"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(deferred, ["t3", "t4"]);
    assert!(
        plan["deferred"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("the CA: 3 new orders per 12s: 3 used in the window"),
        "{}",
        plan["deferred"]
    );

    let r = ws.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout
            .contains("Certificate authority limits: 2 tenants are deferred")
            && r.stdout.contains("t4: the CA: 3 new orders per 12s"),
        "{}",
        r.all()
    );
    assert_eq!(certificates(&ws), 3, "three orders went to the CA");
    // Within the window, the next run orders nothing more.
    let again = crate::support::plan_json(&ws, &[]);
    assert_eq!(again["deferred"].as_array().unwrap().len(), 2);
    // After it, the rest.
    std::thread::sleep(std::time::Duration::from_secs(13));
    let r = ws.ok(&["apply", "--auto-approve"], 0);
    assert!(!r.stdout.contains("deferred"), "{}", r.all());
    assert_eq!(certificates(&ws), 5);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}
