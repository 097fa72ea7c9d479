use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::faulty::FaultyProxy;
use crate::support::moto::{env_for, Inventory, Moto, Sdk};
use crate::support::{api_calls, kill_applies, Ws};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// What examples/aws creates.
fn expected_example(inv: &Inventory) {
    assert_eq!(inv.zones, strings(&["saas.example.test"]));
    let names: Vec<String> = inv
        .records
        .iter()
        .map(|r| r.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    let validation = names
        .iter()
        .filter(|n| n.ends_with(".acme.saas.example.test CNAME"))
        .count();
    assert_eq!(validation, 1, "one ACM validation record: {names:?}");
    for r in [
        "acme.saas.example.test CNAME",
        "edge.saas.example.test A",
        "globex.saas.example.test CNAME",
        "initech.saas.example.test CNAME",
    ] {
        assert!(names.contains(&r.to_string()), "{r} missing: {names:?}");
    }
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(
        inv.buckets,
        strings(&[
            "awsdemo-acme-assets",
            "awsdemo-globex-assets",
            "awsdemo-shared"
        ])
    );
    assert_eq!(
        inv.objects,
        strings(&["awsdemo-shared/tenants/initech/.landlord"])
    );
    assert_eq!(inv.certificates, strings(&["acme.saas.example.test"]));
    assert_eq!(inv.keys.len(), 1);
    assert!(
        inv.keys[0].starts_with("eu-west-1/"),
        "acme's key lives in its region: {:?}",
        inv.keys
    );
    assert_eq!(inv.aliases, strings(&["alias/awsdemo-acme"]));
}

#[test]
fn example_applies_the_expected_inventory_then_plans_clean_and_destroys_everything() {
    let moto = Moto::start();
    let ws = Ws::example("aws").with_env(moto.env());
    let r = ws.ok(&["apply", "--auto-approve", "--json"], 0);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["created"], 14, "{}", r.all());
    let sdk = Sdk::new(&moto.endpoint);
    expected_example(&sdk.inventory());
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    ws.ok(&["destroy", "--all", "--auto-approve"], 0);
    let inv = sdk.inventory();
    assert_eq!(
        inv,
        Inventory::default(),
        "destroy leaves no managed resource"
    );
    assert_eq!(ws.ok(&["state", "list"], 0).stdout, "");
}

#[test]
fn a_thousand_records_take_two_change_calls_to_create_and_to_delete_and_refresh_lists_the_zone() {
    let moto = Moto::start();
    let ws = crate::support::records_workspace(moto.env(), 1000);
    let r = ws.ok(&["apply", "--auto-approve", "--json"], 0);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["created"], 1003);
    let changes = api_calls(&report, "route53.ChangeResourceRecordSets");
    assert!(
        changes <= 2,
        "1,000 tenant records (and the edge record) in {changes} ChangeResourceRecordSets calls"
    );
    let plan = crate::support::plan_json(&ws, &["--detailed-exitcode"]);
    let lists = api_calls(&plan, "route53.ListResourceRecordSets");
    assert!(
        lists <= 5,
        "refresh of 1,001 records took {lists} ListResourceRecordSets calls"
    );
    assert_eq!(Sdk::new(&moto.endpoint).inventory().records.len(), 1001);

    // Retiring the thousand tenants deletes their records in batches as well.
    for i in 0..1000 {
        std::fs::remove_file(ws.join(&format!("tenants/t{i:04}.yaml"))).unwrap();
    }
    let r = ws.ok(&["apply", "--auto-approve", "--allow-bulk", "--json"], 0);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["deleted"], 1000, "{}", r.all());
    let changes = api_calls(&report, "route53.ChangeResourceRecordSets");
    let lists = api_calls(&report, "route53.ListResourceRecordSets");
    assert!(
        changes <= 2 && lists <= 10,
        "1,000 record deletes took {changes} change calls and {lists} list calls"
    );
    assert_eq!(Sdk::new(&moto.endpoint).inventory().records.len(), 1);
    ws.ok(&["audit", "verify"], 0);
}

#[test]
fn a_thousand_tenant_objects_refresh_with_two_listings_and_no_reads() {
    let moto = Moto::start();
    let ws = Ws::example("aws").with_env(moto.env());
    for f in ["acme", "globex", "initech"] {
        std::fs::remove_file(ws.join(&format!("tenants/{f}.yaml"))).unwrap();
    }
    ws.write(
        "plans/objects.yaml",
        "modules:\n  - use: aws/shared-prefix\n",
    );
    for i in 0..1000 {
        ws.write(
            &format!("tenants/t{i:04}.yaml"),
            &format!("id: t{i:04}\nplan: objects\n"),
        );
    }
    ws.ok(&["apply", "--auto-approve", "--parallelism", "32"], 0);
    let plan = crate::support::plan_json(&ws, &["--detailed-exitcode"]);
    let lists = api_calls(&plan, "s3.ListObjectsV2");
    let reads = api_calls(&plan, "s3.GetObject");
    assert!(
        lists <= 2 && reads == 0,
        "refresh of 1,000 objects took {lists} ListObjectsV2 and {reads} GetObject calls"
    );
    // One object changed out of band is read (and only that one), and reported.
    let sdk = Sdk::new(&moto.endpoint);
    let out: Value = serde_json::from_str(&ws.ok(&["output", "--json"], 0).stdout).unwrap();
    let target = &out["t0042/aws_s3_object.prefix"];
    sdk.run(
        sdk.s3()
            .put_object()
            .bucket(target["bucket"].as_str().unwrap())
            .key(target["key"].as_str().unwrap())
            .body(b"changed out of band".to_vec().into())
            .send(),
    )
    .unwrap();
    let r = ws.run(&["drift", "--json"]);
    assert_eq!(r.code, 2, "{}", r.all());
    let drift: Value = serde_json::from_str(&r.stdout).unwrap();
    let items = drift["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{drift}");
    assert_eq!(items[0]["address"], "t0042/aws_s3_object.prefix");
    let plan = crate::support::plan_json(&ws, &[]);
    assert_eq!(
        api_calls(&plan, "s3.GetObject"),
        1,
        "only the changed object is read"
    );
}

#[test]
fn drift_matrix_is_reported_per_attribute_and_repaired() {
    use aws_sdk_route53::types::{
        Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
    };
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    let moto = Moto::start();
    let ws = Ws::example("aws").with_env(moto.env());
    ws.ok(&["apply", "--auto-approve"], 0);
    let sdk = Sdk::new(&moto.endpoint);
    let (s3, r53) = (sdk.s3(), sdk.route53());
    let zone = sdk.zone_id("saas.example.test");
    let rrs = |name: &str, value: &str| {
        ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::Cname)
            .ttl(300)
            .resource_records(ResourceRecord::builder().value(value).build().unwrap())
            .build()
            .unwrap()
    };
    let change = |action: ChangeAction, set: ResourceRecordSet| {
        let batch = ChangeBatch::builder()
            .changes(
                Change::builder()
                    .action(action)
                    .resource_record_set(set)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        sdk.run(
            r53.change_resource_record_sets()
                .hosted_zone_id(&zone)
                .change_batch(batch)
                .send(),
        )
        .unwrap();
    };
    // 1. a tag changed, 2. versioning suspended
    sdk.tag_bucket("awsdemo-globex-assets", "tenant", "someone-else");
    let suspended = VersioningConfiguration::builder()
        .status(BucketVersioningStatus::Suspended)
        .build();
    sdk.run(
        s3.put_bucket_versioning()
            .bucket("awsdemo-globex-assets")
            .versioning_configuration(suspended)
            .send(),
    )
    .unwrap();
    // 3. encryption removed
    sdk.run(
        s3.delete_bucket_encryption()
            .bucket("awsdemo-shared")
            .send(),
    )
    .unwrap();
    // 4. a record value changed, 5. a record deleted
    change(
        ChangeAction::Upsert,
        rrs("initech.saas.example.test", "evil.example.net"),
    );
    change(
        ChangeAction::Delete,
        rrs("globex.saas.example.test", "edge.saas.example.test"),
    );
    // 6. a bucket deleted
    sdk.run(s3.delete_bucket().bucket("awsdemo-acme-assets").send())
        .unwrap();
    // 7. key rotation disabled
    let key = sdk.inventory().keys[0]
        .split('/')
        .nth(1)
        .unwrap()
        .to_string();
    sdk.run(
        sdk.kms("eu-west-1")
            .disable_key_rotation()
            .key_id(&key)
            .send(),
    )
    .unwrap();

    let r = ws.ok(&["drift"], 2);
    for (addr, what) in [
        ("globex/aws_s3_bucket.assets", "tags = "),
        ("globex/aws_s3_bucket.assets", "versioning = true -> false"),
        ("_shared/aws_s3_bucket.shared", "server_side_encryption"),
        (
            "initech/aws_route53_record.site",
            "records = [\"edge.saas.example.test\"] -> [\"evil.example.net\"]",
        ),
        (
            "acme/aws_kms_key.storage",
            "enable_key_rotation = true -> false",
        ),
    ] {
        let block = r
            .stdout
            .split("\n~ ")
            .find(|b| b.starts_with(addr) || b.starts_with(&format!("~ {addr}")))
            .unwrap_or_else(|| panic!("{addr} not reported:\n{}", r.stdout));
        assert!(
            block.contains(what),
            "{addr} should name {what:?}:\n{block}"
        );
    }
    assert!(
        r.stdout
            .contains("- globex/aws_route53_record.site: deleted out of band"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("- acme/aws_s3_bucket.assets: deleted out of band"),
        "{}",
        r.stdout
    );
    let j: Value = serde_json::from_str(&ws.ok(&["drift", "--json"], 2).stdout).unwrap();
    assert_eq!(j["drifted"], 6, "{j}");
    let changes: usize = j["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["attributes"].as_array().unwrap().len().max(1))
        .sum();
    assert_eq!(changes, 7, "seven out-of-band changes: {j}");

    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["drift"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    expected_example(&sdk.inventory());
}

fn tenants_20(ws: &Ws) {
    for f in ["acme", "globex", "initech"] {
        std::fs::remove_file(ws.join(&format!("tenants/{f}.yaml"))).unwrap();
    }
    for i in 0..20 {
        let (plan, region) = match i % 5 {
            0 => ("enterprise", "eu-west-1"),
            1 | 2 => ("professional", "us-east-2"),
            _ => ("basic", "eu-central-1"),
        };
        ws.write(&format!("tenants/t{i:02}.yaml"), &format!("id: t{i:02}\nplan: {plan}\nregion: {region}\ndomain: {{ kind: subdomain, name: t{i:02} }}\n"));
    }
}

/// The inventory must equal what state records.
fn inventory_matches_state(ws: &Ws, sdk: &Sdk) {
    let out: Value = serde_json::from_str(&ws.ok(&["output", "--json"], 0).stdout).unwrap();
    let recorded = |ty: &str, attr: &str| -> BTreeSet<String> {
        out.as_object()
            .unwrap()
            .iter()
            .filter(|(a, _)| a.contains(&format!("/{ty}.")))
            .map(|(_, v)| v[attr].as_str().unwrap().to_string())
            .collect()
    };
    let inv = sdk.inventory();
    let r53 = sdk.route53();
    let refs: Vec<String> = sdk
        .run(r53.list_hosted_zones().send())
        .unwrap()
        .hosted_zones()
        .iter()
        .map(|z| format!("{} {}", z.id(), z.caller_reference()))
        .collect();
    assert_eq!(
        inv.zones,
        strings(&["saas.example.test"]),
        "no duplicate zone: {refs:?}\n{}",
        ws.ok(&["state", "history"], 0).stdout
    );
    assert_eq!(
        inv.buckets.iter().cloned().collect::<BTreeSet<_>>(),
        recorded("aws_s3_bucket", "bucket"),
        "no orphan bucket"
    );
    let keys: BTreeSet<String> = inv
        .keys
        .iter()
        .map(|k| k.split('/').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(keys, recorded("aws_kms_key", "key_id"), "no orphan key");
    let names: BTreeSet<String> = inv
        .records
        .iter()
        .map(|r| r.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), inv.records.len(), "no duplicate record");
    assert_eq!(
        names,
        recorded("aws_route53_record", "name"),
        "no orphan record"
    );
    assert_eq!(
        inv.certificates.len(),
        recorded("aws_acm_certificate", "arn").len(),
        "no orphan certificate"
    );
    assert_eq!(inv.objects.len(), recorded("aws_s3_object", "key").len());
}

#[test]
fn killed_applies_leave_moto_equal_to_state() {
    let moto = Moto::start();
    let ws = Ws::example("aws").with_env(moto.env());
    tenants_20(&ws);
    let args = ["apply", "--auto-approve", "--parallelism", "6"];
    let kills = kill_applies(&ws, &args, 14, &[0, 1, 2, 3, 5, 8], (150, 40));
    assert!(kills >= 10, "only {kills} runs were killed mid-way");
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    inventory_matches_state(&ws, &Sdk::new(&moto.endpoint));
    ws.ok(&["audit", "verify"], 0);
}

#[test]
fn throttling_and_503s_are_retried_until_the_inventory_converges() {
    let moto = Moto::start();
    // A fixed seed: the same requests fail the same number of times on every run.
    let proxy = FaultyProxy::seeded(moto.endpoint.trim_start_matches("http://"), 9);
    let ws = Ws::example("aws").with_env(env_for(&proxy.endpoint));
    ws.ok(&["apply", "--auto-approve"], 0);
    assert!(
        proxy.faults() >= 5,
        "the proxy injected only {} faults",
        proxy.faults()
    );
    expected_example(&Sdk::new(&moto.endpoint).inventory());
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn destroying_a_non_empty_bucket_is_refused_with_the_object_count() {
    let moto = Moto::start();
    let ws = Ws::example("aws").with_env(moto.env());
    ws.ok(&["apply", "--auto-approve"], 0);
    let sdk = Sdk::new(&moto.endpoint);
    let s3 = sdk.s3();
    for k in ["a", "b", "c"] {
        sdk.run(
            s3.put_object()
                .bucket("awsdemo-globex-assets")
                .key(k)
                .body(b"x".to_vec().into())
                .send(),
        )
        .unwrap();
    }
    let r = ws.run(&["destroy", "--tenant", "globex", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout
            .contains("bucket `awsdemo-globex-assets` holds 3 objects")
            && r.stdout.contains("force_destroy"),
        "{}",
        r.all()
    );
    assert!(
        ws.ok(&["state", "list"], 0)
            .stdout
            .contains("globex/aws_s3_bucket.assets"),
        "the bucket stays recorded"
    );
    assert!(sdk
        .inventory()
        .buckets
        .contains(&"awsdemo-globex-assets".to_string()));
}

#[test]
fn a_bucket_managed_under_another_address_is_a_conflict() {
    let moto = Moto::start();
    let sdk = Sdk::new(&moto.endpoint);
    let s3 = sdk.s3();
    sdk.run(s3.create_bucket().bucket("awsdemo-globex-assets").send())
        .unwrap();
    sdk.tag_bucket(
        "awsdemo-globex-assets",
        "landlord:address",
        "other/aws_s3_bucket.x",
    );
    let ws = Ws::example("aws").with_env(moto.env());
    let r = ws.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.stdout.contains("globex/aws_s3_bucket.assets: FAILED")
            && r.stdout.contains("managed as `other/aws_s3_bucket.x`"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout
            .contains("initech/aws_route53_record.site: created"),
        "other tenants go on: {}",
        r.all()
    );
}

fn bad(setup: impl Fn(&Ws), expect: &[&str]) {
    let ws = Ws::example("aws").with_env(env_for("http://127.0.0.1:9"));
    let before = ws.export();
    setup(&ws);
    for args in [&["validate"][..], &["plan"], &["apply", "--auto-approve"]] {
        let r = ws.run(args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.all());
        for e in expect {
            assert!(
                r.stderr.contains(e),
                "{args:?}: expected {e:?}\n{}",
                r.all()
            );
        }
    }
    assert_eq!(ws.export(), before);
}

#[test]
fn unknown_region_is_refused() {
    bad(
        |ws| {
            ws.edit(
                "landlord.toml",
                "region = \"us-east-1\"",
                "region = \"us-east-7\"",
            )
        },
        &["[providers.aws]", "unknown region `us-east-7`"],
    );
    bad(
        |ws| {
            ws.edit(
                "tenants/globex.yaml",
                "region: us-east-2",
                "region: us-middle-1",
            )
        },
        &[
            "tenant `globex`",
            "resource `aws_s3_bucket.assets`",
            "unknown region `us-middle-1`",
        ],
    );
}

#[test]
fn malformed_record_type_is_refused() {
    bad(
        |ws| {
            ws.write("modules/test/rec/module.yaml", "description: test\n");
            ws.write("modules/test/rec/r.yaml.tera", "- type: aws_route53_record\n  name: x\n  properties: { zone_id: Z1, name: x.saas.example.test, type: AAAAA, records: [\"::1\"] }\n");
            ws.write(
                "plans/basic.yaml",
                "modules:
  - use: test/rec
  - use: aws/subdomain-record
",
            );
        },
        &[
            "modules/test/rec/r.yaml.tera",
            "tenant `initech`",
            "resource `aws_route53_record.x`",
            "unsupported record type `AAAAA`",
        ],
    );
}

#[test]
fn invalid_bucket_name_is_refused() {
    bad(
        |ws| ws.edit("landlord.toml", "name = \"awsdemo\"", "name = \"AWS_Demo\""),
        &[
            "resource `aws_s3_bucket.shared`",
            "invalid bucket name `AWS_Demo-shared`",
        ],
    );
}

#[test]
fn access_denied_is_fatal_and_names_resource_and_cause() {
    use crate::support::faulty::Fault;
    let moto = Moto::start();
    let proxy =
        FaultyProxy::start_with(moto.endpoint.trim_start_matches("http://"), 1, Fault::Deny);
    let ws = Ws::example("aws").with_env(env_for(&proxy.endpoint));
    let started = std::time::Instant::now();
    let r = ws.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.stdout.contains("_shared/aws_s3_bucket.shared: FAILED to create: authentication failed: s3 CreateBucket: AccessDenied"),
        "{}",
        r.all()
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "access errors are not retried"
    );
    assert_eq!(
        ws.ok(&["state", "list"], 0).stdout,
        "",
        "nothing is recorded"
    );
}

#[test]
fn certificates_made_elsewhere_are_imported_and_renewed_under_the_same_arn() {
    let moto = Moto::start();
    let ws = Ws::example("aws").with_env(moto.env());
    for f in ["acme", "initech"] {
        std::fs::remove_file(ws.join(&format!("tenants/{f}.yaml"))).unwrap();
    }
    // A key and certificate from the built-in provider stand in for an ACME certificate.
    ws.write(
        "modules/test/imported/module.yaml",
        "inputs: { hours: { type: int, default: 720 } }\n",
    );
    ws.write(
        "modules/test/imported/cert.yaml.tera",
        r#"- type: tls_private_key
  name: site
  properties: { algorithm: ECDSA }
- type: tls_self_signed_cert
  name: site
  properties:
    private_key_pem: "${tls_private_key.site.private_key_pem}"
    subject: { common_name: "{{ tenant.id }}.saas.example.test" }
    validity_period_hours: {{ inputs.hours }}
- type: aws_acm_certificate
  name: imported
  properties:
    certificate_body: "${tls_self_signed_cert.site.cert_pem}"
    private_key: "${tls_private_key.site.private_key_pem}"
    region: us-east-1
"#,
    );
    ws.write("plans/imported.yaml", "modules:\n  - use: test/imported\n");
    ws.write(
        "tenants/globex.yaml",
        "id: globex\nplan: imported\nregion: us-east-1\ndomain: { kind: subdomain, name: globex }\n",
    );
    let r = ws.ok(&["apply", "--auto-approve"], 0);
    assert!(
        !r.all().contains("PRIVATE KEY"),
        "the private key never shows: {}",
        r.all()
    );
    let arn = ws
        .ok(&["output", "globex/aws_acm_certificate.imported", "arn"], 0)
        .stdout;
    let domain = ws
        .ok(
            &[
                "output",
                "globex/aws_acm_certificate.imported",
                "domain_name",
            ],
            0,
        )
        .stdout;
    assert_eq!(domain.trim(), "globex.saas.example.test");
    let sdk = Sdk::new(&moto.endpoint);
    assert!(sdk
        .inventory()
        .certificates
        .iter()
        .any(|c| c.contains("globex.saas.example.test")));
    ws.ok(&["plan", "--detailed-exitcode"], 0);

    // A renewed certificate (new key and body) is re-imported in place.
    ws.edit(
        "modules/test/imported/module.yaml",
        "default: 720",
        "default: 1440",
    );
    let plan = ws.ok(&["plan"], 0).stdout;
    assert!(
        plan.contains("~ globex/aws_acm_certificate.imported will be updated in place"),
        "{plan}"
    );
    assert!(!plan.contains("PRIVATE KEY"), "{plan}");
    ws.ok(&["apply", "--auto-approve"], 0);
    let after = ws
        .ok(&["output", "globex/aws_acm_certificate.imported", "arn"], 0)
        .stdout;
    assert_eq!(after, arn, "same ARN after the renewal");
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    let r = ws.ok(&["apply", "--auto-approve"], 0);
    assert!(r.stdout.contains("No changes"), "{}", r.all());

    // Both ways at once are refused before any call.
    ws.edit(
        "modules/test/imported/cert.yaml.tera",
        "    region: us-east-1\n",
        "    region: us-east-1\n    domain_name: globex.saas.example.test\n",
    );
    let r = ws.ok(&["plan"], 1);
    assert!(r.stderr.contains("set either `domain_name`"), "{}", r.all());
}

#[test]
fn an_existing_object_is_adopted_instead_of_created() {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    let moto = Moto::start();
    let ws = Ws::example("aws").with_env(moto.env());
    // Globex's bucket was made by hand before landlord managed the tenant.
    let sdk = Sdk::new(&moto.endpoint);
    sdk.run(
        sdk.s3()
            .create_bucket()
            .bucket("awsdemo-globex-assets")
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::UsEast2)
                    .build(),
            )
            .send(),
    )
    .expect("bucket");
    // Onboarding the whole tenant: what exists is adopted, the rest listed for apply.
    let r = ws.ok(&["adopt", "--tenant", "globex"], 0);
    assert!(
        r.stdout.contains("adopted  globex/aws_s3_bucket.assets")
            && r.stdout.contains("Adopted 1;"),
        "{}",
        r.all()
    );
    assert!(
        r.all().contains("globex/aws_route53_record.site"),
        "the record is listed (it refers to the shared zone, not in state yet): {}",
        r.all()
    );
    let plan = ws.ok(&["plan"], 0).stdout;
    assert!(
        plan.contains("~ globex/aws_s3_bucket.assets will be updated in place")
            && plan.contains("versioning = false -> true"),
        "the hand-made bucket is brought to the template, not created again:\n{plan}"
    );
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    expected_example(&sdk.inventory());
    ws.ok(&["audit", "verify"], 0);

    let r = ws.ok(&["adopt", "globex/aws_s3_bucket.assets"], 1);
    assert!(r.stderr.contains("is already in state"), "{}", r.all());
    let r = ws.ok(&["adopt", "globex/aws_s3_bucket.nothing"], 1);
    assert!(r.stderr.contains("is not in the templates"), "{}", r.all());
    ws.ok(&["destroy", "--tenant", "globex", "--auto-approve"], 0);
    let r = ws.ok(&["adopt", "globex/aws_s3_bucket.assets"], 1);
    assert!(
        r.stderr
            .contains("no object for `globex/aws_s3_bucket.assets` exists"),
        "{}",
        r.all()
    );
}

#[test]
fn tags_added_and_changed_by_hand_on_every_tagged_type_converge() {
    use aws_sdk_route53::types::{Tag as ZoneTag, TagResourceType};
    let moto = Moto::start();
    let ws = Ws::example("aws").with_env(moto.env());
    ws.ok(&["apply", "--auto-approve"], 0);
    let sdk = Sdk::new(&moto.endpoint);
    // 1. a tag added to the base hosted zone
    let zone = sdk.zone_id("saas.example.test");
    sdk.run(
        sdk.route53()
            .change_tags_for_resource()
            .resource_type(TagResourceType::Hostedzone)
            .resource_id(&zone)
            .add_tags(ZoneTag::builder().key("added-by-hand").value("x").build())
            .send(),
    )
    .unwrap();
    // 2. a bucket's tags replaced
    sdk.tag_bucket("awsdemo-globex-assets", "added-by-hand", "x");
    // 3. a tag added to the KMS key
    let key = sdk.inventory().keys[0]
        .split('/')
        .nth(1)
        .unwrap()
        .to_string();
    let kms = sdk.kms("eu-west-1");
    sdk.run(
        kms.tag_resource()
            .key_id(&key)
            .tags(
                aws_sdk_kms::types::Tag::builder()
                    .tag_key("added-by-hand")
                    .tag_value("x")
                    .build()
                    .unwrap(),
            )
            .send(),
    )
    .unwrap();
    // 4. a tag added to the ACM certificate
    let acm = sdk.acm();
    let arn = sdk
        .run(acm.list_certificates().send())
        .unwrap()
        .certificate_summary_list()[0]
        .certificate_arn()
        .unwrap()
        .to_string();
    sdk.run(
        acm.add_tags_to_certificate()
            .certificate_arn(&arn)
            .tags(
                aws_sdk_acm::types::Tag::builder()
                    .key("added-by-hand")
                    .value("x")
                    .build()
                    .unwrap(),
            )
            .send(),
    )
    .unwrap();

    let j: Value = serde_json::from_str(&ws.ok(&["drift", "--json"], 2).stdout).unwrap();
    let tagged: Vec<String> = j["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| {
            i["attributes"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["name"] == "tags"))
        })
        .map(|i| i["address"].as_str().unwrap().to_string())
        .collect();
    for addr in [
        "_shared/aws_route53_zone.base",
        "globex/aws_s3_bucket.assets",
        "acme/aws_kms_key.storage",
        "acme/aws_acm_certificate.site",
    ] {
        assert!(tagged.iter().any(|t| t == addr), "{addr} not reported: {j}");
    }
    ws.ok(&["apply", "--auto-approve"], 0);
    let r = ws.ok(&["drift"], 0);
    assert!(r.stdout.contains("No drift"), "{}", r.all());
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}
