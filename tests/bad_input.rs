//! Each case: an applied quick start, one bad input, then `validate`, `plan` and `apply`
//! must all exit 1 with a message naming file (and line), tenant and field or resource,
//! and the state directory's files (and `state export`) must be byte-identical before and
//! after.

use crate::support::Ws;

/// `validate`, `plan` and `apply` all exit 1 with every `expect` in the message.
fn fails_everywhere(ws: &Ws, expect: &[&str]) {
    for args in [&["validate"][..], &["plan"], &["apply", "--auto-approve"]] {
        let r = ws.run(args);
        assert_eq!(r.code, 1, "{args:?} must fail\n{}", r.all());
        for e in expect {
            assert!(
                r.stderr.contains(e),
                "{args:?}: expected {e:?} in the message\n{}",
                r.all()
            );
        }
        assert!(!r.stderr.contains("panicked"), "{}", r.all());
    }
}

fn check(setup: impl Fn(&Ws), expect: &[&str]) {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    // The export opens the state, and sled may tidy its files when a process opens or
    // closes it: the files are taken after it, so only the failing commands lie between.
    let before = ws.export();
    let files = crate::support::state_files(&ws);
    setup(&ws);
    fails_everywhere(&ws, expect);
    assert_eq!(
        crate::support::state_files(&ws),
        files,
        "the state files must be byte-identical"
    );
    assert_eq!(ws.export(), before, "state must be byte-identical");
}

const TPL: &str = "modules/test/broken/broken.yaml.tera";

#[test]
fn malformed_yaml() {
    check(
        |ws| {
            ws.write(
                "tenants/globex.yaml",
                "id: globex\nplan: professional\ndomain: { kind: subdomain, name: globex\n",
            )
        },
        &["tenants/globex.yaml:", "malformed YAML", "tenant `globex`"],
    );
}

#[test]
fn unknown_tier() {
    check(
        |ws| ws.edit("tenants/initech.yaml", "plan: basic", "plan: gold"),
        &["tenants/initech.yaml:3: tenant `initech`: field `plan`: unknown tier `gold`"],
    );
}

#[test]
fn invalid_tenant_id() {
    check(
        |ws| {
            ws.write(
                "tenants/Bad_Id.yaml",
                "id: Bad_Id\nplan: basic\ndomain: { kind: subdomain, name: bad }\n",
            )
        },
        &[
            "tenants/Bad_Id.yaml:1",
            "field `id`",
            "invalid tenant id `Bad_Id`",
        ],
    );
}

#[test]
fn customization_not_allowed_by_tier() {
    check(
        |ws| {
            ws.write(
                "tenants/initech.yaml",
                &(ws.read("tenants/initech.yaml")
                    + "settings:\n  nginx:\n    client_max_body_size: 1g\n"),
            )
        },
        &[
            "tenants/initech.yaml:9",
            "tenant `initech`",
            "field `settings.nginx.client_max_body_size`",
            "not customizable in tier `basic`",
        ],
    );
}

#[test]
fn customization_option_not_offered() {
    check(
        |ws| {
            ws.edit(
                "tenants/globex.yaml",
                "rate_limit_burst: 100",
                "rate_limit_burst: 7",
            )
        },
        &[
            "tenants/globex.yaml:8",
            "field `settings.nginx.rate_limit_burst`",
            "expected one of 20, 50, 100",
        ],
    );
}

#[test]
fn validation_rule_broken() {
    check(
        |ws| ws.edit("tenants/globex.yaml", "kind: subdomain", "kind: custom"),
        &[
            "tenants/globex.yaml:6",
            "tenant `globex`",
            "field `domain.kind`",
            "must be one of subdomain",
        ],
    );
}

#[test]
fn residency_violation() {
    check(
        |ws| {
            ws.edit(
                "tenants/acme.yaml",
                "region: eu-west-1",
                "region: us-east-1",
            )
        },
        &[
            "tenants/acme.yaml:5",
            "tenant `acme`",
            "field `region`",
            "residency violation: region `us-east-1` is outside the tenant's residency [eu]",
        ],
    );
}

#[test]
fn undefined_template_variable() {
    check(
        |ws| {
            crate::support::broken_module(ws, "- type: local_file\n  name: x\n  properties:\n    filename: out/{{ tenant.id }}/x\n    content: \"{{ tenant.nickname }}\"\n")
        },
        &[
            &format!("{TPL}:5"),
            "tenant `initech`",
            "undefined variable `tenant.nickname`",
        ],
    );
}

#[test]
fn unknown_resource_type() {
    check(
        |ws| {
            crate::support::broken_module(
                ws,
                "- type: aws_s3_bukket\n  name: x\n  properties: {}\n",
            )
        },
        &[
            TPL,
            "tenant `initech`",
            "resource `aws_s3_bukket.x`",
            "unknown resource type `aws_s3_bukket`",
        ],
    );
}

#[test]
fn missing_required_property() {
    check(
        |ws| {
            crate::support::broken_module(
                ws,
                "- type: local_file\n  name: x\n  properties: { filename: out/x }\n",
            )
        },
        &[
            TPL,
            "tenant `initech`",
            "resource `local_file.x`",
            "missing required property `content`",
        ],
    );
}

#[test]
fn duplicate_address() {
    check(
        |ws| {
            crate::support::broken_module(ws, "- type: random_id\n  name: db\n  properties: { byte_length: 4 }\n- type: random_id\n  name: db\n  properties: { byte_length: 8 }\n")
        },
        &[
            TPL,
            "tenant `initech`",
            "duplicate address `initech/random_id.db`",
        ],
    );
}

#[test]
fn reference_to_unknown_resource() {
    check(
        |ws| {
            crate::support::broken_module(ws, "- type: local_file\n  name: x\n  properties: { filename: out/x, content: \"${local_file.nope.content}\" }\n")
        },
        &[
            TPL,
            "tenant `initech`",
            "resource `local_file.x`",
            "reference to unknown resource `local_file.nope`",
        ],
    );
}

#[test]
fn reference_to_another_tenant() {
    check(
        |ws| {
            crate::support::broken_module(ws, "- type: local_file\n  name: x\n  properties: { filename: out/x, content: \"${globex/random_password.db.result}\" }\n")
        },
        &[
            TPL,
            "tenant `initech`",
            "reference to another tenant `globex` is not allowed",
        ],
    );
}

#[test]
fn dependency_cycle() {
    check(
        |ws| {
            crate::support::broken_module(
                ws,
                "- type: local_file\n  name: a\n  properties: { filename: out/a, content: \"${local_file.b.content}\" }\n- type: local_file\n  name: b\n  properties: { filename: out/b, content: \"${local_file.a.content}\" }\n",
            )
        },
        &[TPL, "dependency cycle: initech/local_file.a -> initech/local_file.b -> initech/local_file.a"],
    );
}

#[test]
fn local_file_escaping_the_workspace() {
    check(
        |ws| {
            crate::support::broken_module(ws, "- type: local_file\n  name: x\n  properties: { filename: ../../etc/landlord-escape, content: hi }\n")
        },
        &[
            TPL,
            "tenant `initech`",
            "resource `local_file.x`",
            "escapes the workspace root",
        ],
    );
}

#[test]
fn unknown_module_input() {
    check(
        |ws| {
            ws.edit(
                "plans/basic.yaml",
                "inputs: { length: 20 }",
                "inputs: { lenght: 20 }",
            )
        },
        &[
            "plans/basic.yaml",
            "tenant `initech`",
            "unknown input `lenght`",
        ],
    );
}

#[test]
fn bad_cli_flags_and_corrupt_plan_file() {
    let ws = Ws::example("quickstart");
    let r = ws.run(&["plan", "--parallelism", "4"]);
    assert_eq!(r.code, 1, "an unknown flag is an error, not \"changes\"");
    let r = ws.run(&["apply", "--parallelism", "0", "--auto-approve"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("--parallelism"), "{}", r.all());
    let r = ws.run(&["plan", "--lock-timeout", "soon"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not a duration"), "{}", r.all());
    ws.write("bad.plan", "not a plan");
    let r = ws.run(&["apply", ws.join("bad.plan").to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("is not a landlord plan"), "{}", r.all());
    let empty = tempfile::tempdir().unwrap();
    let r = std::process::Command::new(crate::support::bin())
        .arg("-C")
        .arg(empty.path())
        .arg("plan")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("not a landlord workspace"));
}

/// A bad `landlord.toml` fails every command with the file, before any state is touched.
fn check_config(example: &str, from: &str, to: &str, expect: &[&str]) {
    let ws = Ws::example(example).with_env(vec![("LANDLORD_AZURE_TOKEN".into(), "t".into())]);
    ws.edit("landlord.toml", from, to);
    fails_everywhere(&ws, expect);
    assert!(!ws.join("state").exists(), "no state was created");
}

#[test]
fn s3_state_backend_without_bucket() {
    check_config(
        "quickstart",
        "[state]\n",
        "[state]\nbackend = \"s3\"\n",
        &["landlord.toml", "the `s3` state backend needs `bucket`"],
    );
}

#[test]
fn unknown_state_backend() {
    check_config(
        "quickstart",
        "[state]\n",
        "[state]\nbackend = \"consul\"\n",
        &[
            "landlord.toml",
            "unknown state backend `consul`: expected `sled`, `s3` or `postgres`",
        ],
    );
}

#[test]
fn azure_settings_are_checked() {
    check_config(
        "azure",
        "dns_nameservers = []",
        "dns_nameservers = [\"ns1.example.net\"]",
        &["`dns_nameservers`: `ns1.example.net` is not an IP address and port"],
    );
    check_config(
        "azure",
        "dns_nameservers = []",
        "dns_servers = []",
        &["unknown setting `dns_servers`"],
    );
}
