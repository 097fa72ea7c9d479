//! Snapshots of the plan as a reviewer sees it: terminal text, JSON and markdown.

use crate::support::Ws;

fn filtered(name: &str, text: &str) {
    insta::with_settings!({
        filters => vec![
            (r"(?s)-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", "[CERTIFICATE]"),
            (r"state serial is \d+", "state serial is [N]"),
            (r#""state_serial": \d+"#, r#""state_serial": "[N]""#),
            // Zone serials are dates (YYYYMMDDnn).
            (r"\b20\d{8}\b", "[ZONE-SERIAL]"),
        ],
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

fn changed_workspace() -> Ws {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.edit(
        "plans/professional.yaml",
        "client_max_body_size: 50m",
        "client_max_body_size: 75m",
    );
    std::fs::remove_file(ws.join("tenants/initech.yaml")).unwrap();
    ws.write("out/acme/db.env", "tampered\n");
    ws
}

#[test]
fn plan_renderings_of_a_new_workspace() {
    let ws = Ws::example("quickstart");
    filtered(
        "create_text",
        &ws.ok(&["plan", "--tenant", "globex"], 0).stdout,
    );
    filtered(
        "create_json",
        &ws.ok(&["plan", "--json", "--tenant", "globex"], 0).stdout,
    );
    filtered("create_markdown", &ws.ok(&["plan", "--markdown"], 0).stdout);
}

#[test]
fn plan_renderings_of_updates_drift_and_deletes() {
    let ws = changed_workspace();
    filtered("change_text", &ws.ok(&["plan"], 0).stdout);
    filtered("change_json", &ws.ok(&["plan", "--json"], 0).stdout);
    filtered("change_markdown", &ws.ok(&["plan", "--markdown"], 0).stdout);
}
