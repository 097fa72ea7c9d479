use serde_json::json;

use crate::support::arm::Arm;
use crate::support::Ws;

const SUB: &str = "/subscriptions/00000000-0000-0000-0000-000000000001";

fn workspace(arm: &Arm) -> Ws {
    let ws =
        Ws::example("azure").with_env(vec![("LANDLORD_AZURE_TOKEN".into(), "test-token".into())]);
    ws.edit("landlord.toml", "http://127.0.0.1:7070", &arm.endpoint);
    ws
}

fn expected() -> Vec<String> {
    let zone = format!("{SUB}/resourceGroups/azdemo-platform/providers/Microsoft.Network/dnsZones/saas.example.test");
    let mut v = vec![
        format!("{SUB}/resourcegroups/azdemo-contoso"),
        format!("{SUB}/resourcegroups/azdemo-fabrikam"),
        format!("{SUB}/resourcegroups/azdemo-platform"),
        zone.clone(),
        format!("{zone}/CNAME/contoso"),
        format!("{zone}/CNAME/fabrikam"),
    ];
    v.sort_by_key(|s| s.to_ascii_lowercase());
    v
}

#[test]
fn example_applies_plans_clean_and_destroy_polls_group_deletion() {
    let arm = Arm::start();
    let ws = workspace(&arm);
    ws.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(arm.inventory(), expected());
    let group = arm
        .get(&format!("{SUB}/resourcegroups/azdemo-fabrikam"))
        .unwrap();
    assert_eq!(group["location"], "eastus", "the tenant's region");
    assert_eq!(
        group["tags"]["landlord-address"],
        "fabrikam/azure_resource_group.tenant"
    );
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    ws.ok(&["destroy", "--all", "--auto-approve"], 0);
    assert!(arm.inventory().is_empty(), "{:?}", arm.inventory());
    assert_eq!(ws.ok(&["state", "list"], 0).stdout, "");
}

#[test]
fn drift_is_reported_per_attribute_and_repaired() {
    let arm = Arm::start();
    let ws = workspace(&arm);
    ws.ok(&["apply", "--auto-approve"], 0);
    let zone = format!("{SUB}/resourceGroups/azdemo-platform/providers/Microsoft.Network/dnsZones/saas.example.test");
    arm.modify(&format!("{SUB}/resourcegroups/azdemo-contoso"), |v| {
        v["tags"]["tenant"] = json!("someone-else")
    });
    arm.modify(&format!("{zone}/CNAME/contoso"), |v| {
        v["properties"]["CNAMERecord"]["cname"] = json!("evil.example.net")
    });
    arm.modify(&format!("{zone}/CNAME/fabrikam"), |v| {
        v["properties"]["TTL"] = json!(5)
    });
    arm.modify(&zone, |v| v["tags"] = json!({}));
    arm.remove(&format!("{SUB}/resourcegroups/azdemo-fabrikam"));
    let r = ws.ok(&["drift"], 2);
    for line in [
        "~ contoso/azure_resource_group.tenant: changed out of band",
        "~ contoso/azure_dns_record_set.site: changed out of band",
        "~ fabrikam/azure_dns_record_set.site: changed out of band",
        "~ _shared/azure_dns_zone.base: changed out of band",
        "- fabrikam/azure_resource_group.tenant: deleted out of band",
    ] {
        assert!(r.stdout.contains(line), "{line}\n{}", r.all());
    }
    assert!(
        r.stdout
            .contains("records = [\"edge.saas.example.test\"] -> [\"evil.example.net\"]"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("ttl = 300 -> 5"), "{}", r.stdout);
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["drift"], 0);
    assert_eq!(arm.inventory(), expected());
}

#[test]
fn throttling_with_retry_after_converges() {
    let arm = Arm::start();
    arm.throttle_every(3);
    let ws = workspace(&arm);
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    assert_eq!(arm.inventory(), expected());
}

#[test]
fn invalid_resource_group_name_is_refused_before_any_call() {
    let arm = Arm::start();
    let ws = workspace(&arm);
    let before = ws.export();
    ws.write("modules/test/bad/module.yaml", "description: test\n");
    ws.write("modules/test/bad/b.yaml.tera", "- type: azure_resource_group\n  name: bad\n  properties: { name: \"bad/name\", location: westeurope }\n");
    ws.edit(
        "plans/standard.yaml",
        "modules:\n",
        "modules:\n  - use: test/bad\n",
    );
    let r = ws.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.stderr.contains("resource `azure_resource_group.bad`")
            && r.stderr.contains("invalid resource group name `bad/name`"),
        "{}",
        r.all()
    );
    assert_eq!(ws.export(), before);
    assert!(arm.inventory().is_empty());
    let r = ws.ok(&["plan"], 1);
    assert!(
        r.stderr.contains("invalid resource group name `bad/name`"),
        "{}",
        r.all()
    );
}

#[test]
fn killed_applies_leave_the_inventory_equal_to_state() {
    let arm = Arm::start();
    let ws = workspace(&arm);
    for t in ["contoso", "fabrikam"] {
        std::fs::remove_file(ws.join(&format!("tenants/{t}.yaml"))).unwrap();
    }
    for i in 0..16 {
        ws.write(&format!("tenants/t{i:02}.yaml"), &format!("id: t{i:02}\nplan: standard\nregion: westeurope\ndomain: {{ kind: subdomain, name: t{i:02} }}\n"));
    }
    // Pace the run so kills land in the middle of it: each tenant also waits 150 ms.
    ws.write("modules/test/pace/module.yaml", "description: pacing\n");
    ws.write(
        "modules/test/pace/p.yaml.tera",
        "- type: time_sleep\n  name: pace\n  properties: { create_duration: 150ms }\n",
    );
    ws.edit(
        "plans/standard.yaml",
        "modules:\n",
        "modules:\n  - use: test/pace\n",
    );
    let args = ["apply", "--auto-approve", "--parallelism", "4"];
    let kills = crate::support::kill_applies(&ws, &args, 12, &[0, 1, 1, 2, 3], (30, 15));
    assert!(kills >= 10, "only {kills} runs were killed mid-way");
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    let out: serde_json::Value =
        serde_json::from_str(&ws.ok(&["output", "--json"], 0).stdout).unwrap();
    let mut recorded: Vec<String> = out
        .as_object()
        .unwrap()
        .iter()
        .map(|(a, v)| {
            if a.contains("time_sleep") {
                String::new()
            } else if a.contains("azure_dns_record_set") {
                format!("{SUB}/resourceGroups/azdemo-platform/providers/Microsoft.Network/dnsZones/saas.example.test/CNAME/{}", v["name"].as_str().unwrap())
            } else {
                v["id"].as_str().unwrap().to_string()
            }
        })
        .collect();
    recorded.retain(|s| !s.is_empty());
    recorded.sort_by_key(|s| s.to_ascii_lowercase());
    let live: Vec<String> = arm.inventory();
    assert_eq!(
        live.iter()
            .map(|s| s.to_ascii_lowercase())
            .collect::<Vec<_>>(),
        recorded
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect::<Vec<_>>(),
        "no orphan, no duplicate"
    );
    assert_eq!(live.len(), 1 + 1 + 16 + 16);
}
