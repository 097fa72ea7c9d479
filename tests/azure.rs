use serde_json::json;

use crate::support::arm::Arm;
use crate::support::azurite::Azurite;
use crate::support::Ws;

const SUB: &str = "/subscriptions/00000000-0000-0000-0000-000000000001";

/// The ARM contract server and Azurite behind it, with the example's storage accounts.
fn servers(accounts: &[&str]) -> (Arm, Azurite) {
    let arm = Arm::start();
    let azurite = Azurite::start(accounts);
    arm.blob_endpoint(&azurite.blob_endpoint());
    (arm, azurite)
}

fn workspace(arm: &Arm) -> Ws {
    let ws =
        Ws::example("azure").with_env(vec![("LANDLORD_AZURE_TOKEN".into(), "test-token".into())]);
    ws.edit("landlord.toml", "http://127.0.0.1:7070", &arm.endpoint);
    ws
}

const ACCOUNTS: &[&str] = &["azdemocontoso", "azdemofabrikam"];

fn zone() -> String {
    format!("{SUB}/resourceGroups/azdemo-platform/providers/Microsoft.Network/dnsZones/saas.example.test")
}

fn account(tenant: &str) -> String {
    format!("{SUB}/resourceGroups/azdemo-{tenant}/providers/Microsoft.Storage/storageAccounts/azdemo{tenant}")
}

fn vault() -> String {
    format!("{SUB}/resourceGroups/azdemo-fabrikam/providers/Microsoft.KeyVault/vaults/azdemo-fabrikam-kv")
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort_by_key(|s| s.to_ascii_lowercase());
    v
}

fn expected() -> Vec<String> {
    sorted(vec![
        format!("{SUB}/resourcegroups/azdemo-contoso"),
        format!("{SUB}/resourcegroups/azdemo-fabrikam"),
        format!("{SUB}/resourcegroups/azdemo-platform"),
        zone(),
        format!("{}/CNAME/contoso", zone()),
        format!("{}/CNAME/fabrikam", zone()),
        account("contoso"),
        account("fabrikam"),
        vault(),
    ])
}

fn expected_containers() -> Vec<String> {
    vec!["azdemocontoso/data".into(), "azdemofabrikam/data".into()]
}

#[test]
fn example_applies_plans_clean_and_destroy_empties_arm_and_azurite() {
    let (arm, azurite) = servers(ACCOUNTS);
    let ws = workspace(&arm);
    ws.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(sorted(arm.inventory()), expected());
    assert_eq!(azurite.containers(), expected_containers());
    let group = arm
        .get(&format!("{SUB}/resourcegroups/azdemo-fabrikam"))
        .unwrap();
    assert_eq!(group["location"], "eastus", "the tenant's region");
    assert_eq!(
        group["tags"]["landlord-address"],
        "fabrikam/azure_resource_group.tenant"
    );
    let acct = arm.get(&account("fabrikam")).unwrap();
    assert_eq!(
        acct["sku"]["name"], "Standard_RAGRS",
        "the tenant's setting"
    );
    assert_eq!(acct["properties"]["minimumTlsVersion"], "TLS1_2");
    assert_eq!(acct["properties"]["provisioningState"], "Succeeded");
    let kv = arm.get(&vault()).unwrap();
    assert_eq!(kv["properties"]["sku"]["name"], "premium");
    assert_eq!(
        kv["properties"]["tenantId"], "00000000-0000-0000-0000-0000000000aa",
        "the provider's tenant_id"
    );
    ws.ok(&["plan", "--detailed-exitcode"], 0);

    ws.ok(&["destroy", "--all", "--auto-approve"], 0);
    assert!(arm.inventory().is_empty(), "{:?}", arm.inventory());
    assert!(azurite.containers().is_empty());
    assert!(
        arm.deleted_vaults().is_empty(),
        "the vault is purged, not left soft-deleted: {:?}",
        arm.deleted_vaults()
    );
    assert_eq!(ws.ok(&["state", "list"], 0).stdout, "");
    // The purged vault's name is free again.
    ws.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(sorted(arm.inventory()), expected());
}

#[test]
fn drift_is_reported_per_attribute_and_repaired() {
    let (arm, azurite) = servers(ACCOUNTS);
    let ws = workspace(&arm);
    ws.ok(&["apply", "--auto-approve"], 0);
    arm.modify(&format!("{SUB}/resourcegroups/azdemo-contoso"), |v| {
        v["tags"]["tenant"] = json!("someone-else")
    });
    arm.modify(&format!("{}/CNAME/contoso", zone()), |v| {
        v["properties"]["CNAMERecord"]["cname"] = json!("evil.example.net")
    });
    arm.modify(&format!("{}/CNAME/fabrikam", zone()), |v| {
        v["properties"]["TTL"] = json!(5)
    });
    arm.modify(&zone(), |v| v["tags"] = json!({}));
    arm.modify(&account("contoso"), |v| {
        v["properties"]["minimumTlsVersion"] = json!("TLS1_0");
        v["properties"]["supportsHttpsTrafficOnly"] = json!(false);
    });
    arm.modify(&vault(), |v| {
        v["properties"]["sku"]["name"] = json!("standard")
    });
    azurite.delete_container("azdemofabrikam", "data");
    let r = ws.ok(&["drift"], 2);
    for line in [
        "~ contoso/azure_resource_group.tenant: changed out of band",
        "~ contoso/azure_dns_record_set.site: changed out of band",
        "~ fabrikam/azure_dns_record_set.site: changed out of band",
        "~ _shared/azure_dns_zone.base: changed out of band",
        "~ contoso/azure_storage_account.tenant: changed out of band",
        "~ fabrikam/azure_key_vault.tenant: changed out of band",
        "- fabrikam/azure_storage_container.data: deleted out of band",
        "records = [\"edge.saas.example.test\"] -> [\"evil.example.net\"]",
        "ttl = 300 -> 5",
        "min_tls_version = \"TLS1_2\" -> \"TLS1_0\"",
        "https_traffic_only_enabled = true -> false",
        "sku_name = \"premium\" -> \"standard\"",
    ] {
        assert!(r.stdout.contains(line), "{line}\n{}", r.all());
    }
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["drift"], 0);
    assert_eq!(sorted(arm.inventory()), expected());
    assert_eq!(azurite.containers(), expected_containers());
    let acct = arm.get(&account("contoso")).unwrap();
    assert_eq!(
        acct["properties"]["minimumTlsVersion"], "TLS1_2",
        "repaired"
    );
    assert_eq!(acct["properties"]["supportsHttpsTrafficOnly"], true);
}

#[test]
fn drift_compares_what_the_zone_serves_with_what_arm_holds() {
    let (arm, _azurite) = servers(ACCOUNTS);
    let ws = workspace(&arm);
    ws.edit(
        "landlord.toml",
        "dns_nameservers = []",
        &format!("dns_nameservers = [\"{}\"]", arm.dns_addr()),
    );
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["drift"], 0);
    arm.serve_stale_cname("contoso.saas.example.test", "old-edge.example.net");
    let r = ws.ok(&["drift"], 2);
    assert!(
        r.stdout.contains(&format!(
            "? contoso/azure_dns_record_set.site: served value differs at {}",
            arm.dns_addr()
        )) && r
            .stdout
            .contains("records = [\"edge.saas.example.test\"] -> [\"old-edge.example.net.\"]"),
        "{}",
        r.all()
    );
    assert!(
        !r.stdout.contains("fabrikam/azure_dns_record_set"),
        "{}",
        r.stdout
    );

    // Apply waits for a changed record set to be served; a name server that keeps the old
    // answer fails it after the propagation timeout.
    ws.edit(
        "landlord.toml",
        "dns_nameservers =",
        "propagation_timeout_seconds = 1\ndns_nameservers =",
    );
    ws.edit(
        "landlord.toml",
        "edge_hostname = \"edge.saas.example.test\"",
        "edge_hostname = \"edge2.saas.example.test\"",
    );
    let r = ws.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.stdout
            .contains("fabrikam/azure_dns_record_set.site: updated")
            && r.all().contains("contoso/azure_dns_record_set.site")
            && r.all().contains("propagation_timeout_seconds"),
        "{}",
        r.all()
    );
    arm.serve_fresh();
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["drift"], 0);
}

#[test]
fn throttling_and_long_running_operations_converge() {
    let (arm, azurite) = servers(ACCOUNTS);
    arm.throttle_every(4);
    arm.lro_polls(4);
    let ws = workspace(&arm);
    ws.ok(&["apply", "--auto-approve"], 0);
    assert!(
        arm.polls() >= 8,
        "two account creations, four polls each: {} polls",
        arm.polls()
    );
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    assert_eq!(sorted(arm.inventory()), expected());
    assert_eq!(azurite.containers(), expected_containers());
    ws.ok(&["destroy", "--all", "--auto-approve"], 0);
    assert!(arm.inventory().is_empty(), "{:?}", arm.inventory());
}

#[test]
fn invalid_names_are_refused_before_any_call() {
    let arm = Arm::start();
    let ws = workspace(&arm);
    let before = ws.export();
    ws.write(
        "tenants/northwind-traders-intl.yaml",
        "id: northwind-traders-intl\nplan: azure-professional\nregion: westeurope\ndomain: { kind: subdomain, name: northwind }\n",
    );
    let r = ws.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.stderr
            .contains("resource `azure_storage_account.tenant`")
            && r.stderr.contains(
                "invalid storage account name `azdemonorthwindtradersintl`: 3-24 lowercase letters and digits"
            ),
        "{}",
        r.all()
    );
    assert_eq!(ws.export(), before, "state unchanged");
    assert!(arm.inventory().is_empty());

    std::fs::remove_file(ws.join("tenants/northwind-traders-intl.yaml")).unwrap();
    ws.write("modules/test/bad/module.yaml", "description: test\n");
    ws.write("modules/test/bad/b.yaml.tera", "- type: azure_resource_group\n  name: bad\n  properties: { name: \"bad/name\", location: westeurope }\n");
    ws.write(
        "plans/broken.yaml",
        "modules:\n  - use: azure/tenant-group\n  - use: test/bad\n",
    );
    ws.edit("tenants/contoso.yaml", "azure-professional", "broken");
    let r = ws.ok(&["plan"], 1);
    assert!(
        r.stderr.contains("invalid resource group name `bad/name`"),
        "{}",
        r.all()
    );
    assert_eq!(ws.export(), before);
}

#[test]
fn taken_names_fail_with_the_arm_error_and_leave_state_unchanged() {
    let (arm, azurite) = servers(ACCOUNTS);
    // Another customer's vault holds the name fabrikam's vault would get.
    let theirs = "/subscriptions/other/resourceGroups/theirs/providers";
    arm.insert(
        &format!("{theirs}/Microsoft.KeyVault/vaults/azdemo-fabrikam-kv"),
        json!({ "id": format!("{theirs}/Microsoft.KeyVault/vaults/azdemo-fabrikam-kv"), "name": "azdemo-fabrikam-kv" }),
    );
    let ws = workspace(&arm);
    let growth = "modules:\n  - use: azure/tenant-group\n  - use: azure/subdomain-record\n";
    ws.write("plans/growth.yaml", growth);
    ws.edit("tenants/contoso.yaml", "azure-professional", "growth");
    let r = ws.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.all().contains("fabrikam/azure_key_vault.tenant")
            && r.all().contains(
                "VaultAlreadyExists: The vault name 'azdemo-fabrikam-kv' is already in use."
            ),
        "{}",
        r.all()
    );
    let recorded = ws.ok(&["state", "list"], 0).stdout;
    assert!(
        !recorded.contains("fabrikam/azure_key_vault.tenant"),
        "{recorded}"
    );
    assert!(recorded.contains("fabrikam/azure_storage_container.data"));
    assert_eq!(
        azurite.containers(),
        vec!["azdemofabrikam/data".to_string()]
    );

    // Contoso's tier gains storage while someone else takes the account name: the change
    // fails and records nothing.
    arm.remove(&format!(
        "{theirs}/Microsoft.KeyVault/vaults/azdemo-fabrikam-kv"
    ));
    ws.ok(&["apply", "--auto-approve"], 0);
    arm.insert(
        &format!("{theirs}/Microsoft.Storage/storageAccounts/azdemocontoso"),
        json!({ "id": format!("{theirs}/Microsoft.Storage/storageAccounts/azdemocontoso"), "name": "azdemocontoso" }),
    );
    ws.write(
        "plans/growth.yaml",
        &format!("{growth}  - use: azure/tenant-storage\n"),
    );
    let (before, inventory) = (ws.recorded(), arm.inventory());
    let r = ws.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.all().contains("contoso/azure_storage_account.tenant")
            && r.all().contains(
                "StorageAccountAlreadyTaken: The storage account named azdemocontoso is already taken."
            )
            && r.all().contains("contoso/azure_storage_container.data: skipped"),
        "{}",
        r.all()
    );
    // Resources and serial stay as they were; only the run's history entry is added.
    assert_eq!(ws.recorded(), before, "state unchanged");
    assert_eq!(arm.inventory(), inventory);
    let plan = ws.ok(&["plan", "--detailed-exitcode"], 2).stdout;
    assert!(
        plan.contains("+ contoso/azure_storage_account.tenant will be created"),
        "{plan}"
    );
}

#[test]
fn credential_chain_gets_a_token_from_the_environment() {
    let arm = Arm::start();
    arm.require_token("entra-landlord-ci");
    let env = |secret: &str| {
        vec![
            (
                "AZURE_TENANT_ID".to_string(),
                "00000000-0000-0000-0000-0000000000aa".to_string(),
            ),
            ("AZURE_CLIENT_ID".to_string(), "landlord-ci".to_string()),
            ("AZURE_CLIENT_SECRET".to_string(), secret.to_string()),
            ("AZURE_AUTHORITY_HOST".to_string(), arm.endpoint.clone()),
        ]
    };
    let ws = Ws::example("azure").with_env(env("wrong"));
    ws.edit("landlord.toml", "http://127.0.0.1:7070", &arm.endpoint);
    ws.edit("landlord.toml", "token_env = \"LANDLORD_AZURE_TOKEN\"", "");
    for t in ["contoso", "fabrikam"] {
        ws.edit(
            &format!("tenants/{t}.yaml"),
            if t == "contoso" {
                "azure-professional"
            } else {
                "azure-enterprise"
            },
            "azure-basic",
        );
    }
    ws.edit(
        "tenants/fabrikam.yaml",
        "settings:\n  storage: { replication: RAGRS }\n",
        "",
    );
    let r = ws.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.all().contains("authentication failed")
            && r.all().contains("error getting environment credential"),
        "{}",
        r.all()
    );
    assert!(arm.inventory().is_empty());

    let ws = ws.with_env(env("s3cret"));
    ws.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(arm.inventory().len(), 6, "{:?}", arm.inventory());
}

#[test]
fn killed_applies_leave_the_inventory_equal_to_state() {
    let names: Vec<String> = (0..10).map(|i| format!("azdemot{i:02}")).collect();
    let accounts: Vec<&str> = names.iter().map(String::as_str).collect();
    let (arm, azurite) = servers(&accounts);
    let ws = workspace(&arm);
    for t in ["contoso", "fabrikam"] {
        std::fs::remove_file(ws.join(&format!("tenants/{t}.yaml"))).unwrap();
    }
    for i in 0..10 {
        ws.write(&format!("tenants/t{i:02}.yaml"), &format!("id: t{i:02}\nplan: paced\nregion: westeurope\ndomain: {{ kind: subdomain, name: t{i:02} }}\n"));
    }
    // Pace the run so kills land in the middle of it: each tenant also waits 150 ms.
    ws.write("modules/test/pace/module.yaml", "description: pacing\n");
    ws.write(
        "modules/test/pace/p.yaml.tera",
        "- type: time_sleep\n  name: pace\n  properties: { create_duration: 150ms }\n",
    );
    ws.write(
        "plans/paced.yaml",
        "modules:\n  - use: test/pace\n  - use: azure/tenant-group\n  - use: azure/subdomain-record\n  - use: azure/tenant-storage\n",
    );
    let args = ["apply", "--auto-approve", "--parallelism", "4"];
    let kills = crate::support::kill_applies(&ws, &args, 12, &[0, 1, 1, 2, 3], (30, 15));
    assert!(kills >= 10, "only {kills} runs were killed mid-way");
    ws.ok(&["apply", "--auto-approve"], 0);
    let plan = crate::support::plan_json(&ws, &["--detailed-exitcode"]);
    let calls = |op: &str| crate::support::api_calls(&plan, op);
    assert_eq!(
        (calls("recordSets.list"), calls("recordSets.get")),
        (1, 0),
        "the zone's 10 record sets are refreshed with one listing"
    );
    let out: serde_json::Value =
        serde_json::from_str(&ws.ok(&["output", "--json"], 0).stdout).unwrap();
    let (mut recorded, mut containers) = (Vec::new(), Vec::new());
    for (a, v) in out.as_object().unwrap() {
        if a.contains("time_sleep") {
        } else if a.contains("azure_storage_container") {
            containers.push(format!(
                "{}/{}",
                v["storage_account_name"].as_str().unwrap(),
                v["name"].as_str().unwrap()
            ));
        } else if a.contains("azure_dns_record_set") {
            recorded.push(format!("{}/CNAME/{}", zone(), v["name"].as_str().unwrap()));
        } else {
            recorded.push(v["id"].as_str().unwrap().to_string());
        }
    }
    let lower = |v: Vec<String>| sorted(v.iter().map(|s| s.to_ascii_lowercase()).collect());
    assert_eq!(
        lower(arm.inventory()),
        lower(recorded),
        "no orphan, no duplicate"
    );
    assert_eq!(arm.inventory().len(), 1 + 1 + 3 * 10);
    containers.sort();
    assert_eq!(azurite.containers(), containers);
    assert_eq!(containers.len(), 10);
    ws.ok(&["audit", "verify"], 0);
}

#[test]
fn acme_dns01_challenges_are_solved_through_azure_dns() {
    let arm = Arm::start();
    let pebble = crate::support::pebble::Pebble::start(&arm.dns_addr());
    let ws = workspace(&arm);
    let toml = ws.read("landlord.toml");
    ws.write(
        "landlord.toml",
        &format!(
            "{toml}\n[providers.acme]\ndirectory = \"{}\"\nca_bundle = \"{}\"\n\n[providers.dns_verification]\nnameservers = [\"{}\"]\n",
            pebble.directory,
            pebble.ca_pem().display(),
            arm.dns_addr()
        ),
    );
    ws.write(
        "shared.yaml",
        "modules:\n  - use: azure/platform-dns\n  - use: dns/acme-account\n",
    );
    // A second certificate, for the wildcard, answers its challenge at the same name at the
    // same time: the TXT record set is shared and written with etags.
    ws.write("modules/test/wild/module.yaml", "description: wildcard\n");
    ws.write(
        "modules/test/wild/w.yaml.tera",
        "- type: acme_certificate\n  name: wild\n  properties:\n    account_credentials: \"${shared.acme_registration.main.credentials}\"\n    common_name: \"*.{{ tenant.domain.name }}.{{ workspace.vars.base_domain }}\"\n    dns_challenge_provider: azure\n    dns_challenge_config: { resource_group_name: \"${shared.azure_resource_group.platform.name}\", zone_name: \"${shared.azure_dns_zone.base.name}\" }\n",
    );
    ws.write(
        "plans/certified.yaml",
        "modules:\n  - use: azure/tenant-group\n  - use: azure/subdomain-record\n  - use: azure/certificate\n  - use: test/wild\n",
    );
    ws.edit("tenants/contoso.yaml", "azure-professional", "certified");
    ws.write(
        "tenants/fabrikam.yaml",
        "id: fabrikam\nplan: certified\nregion: eastus\ndomain: { kind: subdomain, name: fabrikam }\n",
    );
    ws.ok(&["apply", "--auto-approve"], 0);
    for addr in [
        "contoso/acme_certificate.site",
        "contoso/acme_certificate.wild",
        "fabrikam/acme_certificate.site",
        "fabrikam/acme_certificate.wild",
    ] {
        let pem = ws.ok(&["output", addr, "certificate_pem"], 0).stdout;
        assert!(pem.contains("BEGIN CERTIFICATE"), "{pem}");
        let issuer = ws.ok(&["output", addr, "issuer_pem"], 0).stdout;
        assert!(issuer.contains("BEGIN CERTIFICATE"), "{issuer}");
    }
    assert!(
        !arm.inventory().iter().any(|id| id.contains("/TXT/")),
        "challenge record sets are removed: {:?}",
        arm.inventory()
    );
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn refresh_lists_a_zones_record_sets_page_by_page() {
    let arm = Arm::start();
    let ws = workspace(&arm);
    for t in ["contoso", "fabrikam"] {
        std::fs::remove_file(ws.join(&format!("tenants/{t}.yaml"))).unwrap();
    }
    ws.write(
        "plans/records.yaml",
        "modules:\n  - use: azure/subdomain-record\n",
    );
    for i in 0..120 {
        ws.write(
            &format!("tenants/r{i:03}.yaml"),
            &format!("id: r{i:03}\nplan: records\nregion: westeurope\ndomain: {{ kind: subdomain, name: r{i:03} }}\n"),
        );
    }
    ws.ok(&["apply", "--auto-approve"], 0);
    let plan = crate::support::plan_json(&ws, &["--detailed-exitcode"]);
    let calls = |op: &str| crate::support::api_calls(&plan, op);
    assert_eq!(
        (calls("recordSets.list"), calls("recordSets.get")),
        (2, 0),
        "120 record sets in two pages of a listing"
    );
    // A record changed out of band is still seen through the listing.
    arm.modify(&format!("{}/CNAME/r117", zone()), |v| {
        v["properties"]["TTL"] = serde_json::json!(7)
    });
    let r = ws.ok(&["drift"], 2);
    assert!(
        r.stdout
            .contains("~ r117/azure_dns_record_set.site: changed out of band"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_resource_group_made_by_hand_is_adopted() {
    let (arm, _azurite) = servers(ACCOUNTS);
    let id = format!("{SUB}/resourcegroups/azdemo-contoso");
    arm.insert(
        &id,
        json!({ "id": id, "name": "azdemo-contoso", "type": "Microsoft.Resources/resourceGroups", "location": "westeurope", "tags": { "owner": "ops" }, "properties": { "provisioningState": "Succeeded" } }),
    );
    let ws = workspace(&arm);
    ws.ok(&["adopt", "contoso/azure_resource_group.tenant"], 0);
    let plan = ws.ok(&["plan"], 0).stdout;
    assert!(
        plan.contains("~ contoso/azure_resource_group.tenant will be updated in place")
            && !plan.contains("+ contoso/azure_resource_group.tenant"),
        "{plan}"
    );
    ws.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(
        arm.get(&id).unwrap()["tags"]["landlord-address"],
        "contoso/azure_resource_group.tenant",
        "from now on it carries our address"
    );
    assert_eq!(sorted(arm.inventory()), expected());
}
