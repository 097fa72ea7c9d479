use crate::support::moto::{Moto, Sdk};
use crate::support::{kill_applies, tenant_yaml, Ws};

const BUCKET: &str = "team-state";
const STATE: &str = "landlord/state.json";

/// The quick start with its state in moto's S3.
fn workspace(moto: &Moto) -> Ws {
    let sdk = Sdk::new(&moto.endpoint);
    sdk.run(sdk.s3().create_bucket().bucket(BUCKET).send())
        .expect("bucket");
    let ws = Ws::example("quickstart").with_env(moto.env());
    ws.edit(
        "landlord.toml",
        "[state]\n",
        &format!("[state]\nbackend = \"s3\"\nbucket = \"{BUCKET}\"\nregion = \"us-east-1\"\n"),
    );
    ws
}

fn objects(moto: &Moto) -> Vec<String> {
    let sdk = Sdk::new(&moto.endpoint);
    let listed = sdk
        .run(sdk.s3().list_objects_v2().bucket(BUCKET).send())
        .expect("list");
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect()
}

/// Lock and intent objects left in the bucket (none once every run is done).
fn leftovers(moto: &Moto) -> Vec<String> {
    objects(moto)
        .into_iter()
        .filter(|k| k.contains("/locks/") || k.contains("/intents/"))
        .collect()
}

/// The state's own objects: the index and one object per tenant.
fn state_objects(moto: &Moto) -> Vec<String> {
    objects(moto)
        .into_iter()
        .filter(|k| !k.contains("/locks/") && !k.contains("/intents/"))
        .collect()
}

fn put_lock(moto: &Moto, host: &str, pid: u32, expiry: &str) {
    let sdk = Sdk::new(&moto.endpoint);
    let body = format!(
        r#"{{"scope":"workspace","owner":"dana","host":"{host}","pid":{pid},"command":"landlord apply","since":"2026-11-26T05:00:00Z","expiry":"{expiry}"}}"#
    );
    sdk.run(
        sdk.s3()
            .put_object()
            .bucket(BUCKET)
            .key(format!("{STATE}/locks/workspace.lock"))
            .body(body.into_bytes().into())
            .send(),
    )
    .expect("lock object");
}

#[test]
fn state_in_s3_is_shared_between_checkouts_and_locked_per_run() {
    let moto = Moto::start();
    let ws = workspace(&moto);
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    assert_eq!(
        leftovers(&moto),
        Vec::<String>::new(),
        "the locks go with the run"
    );
    let tenants: Vec<String> = state_objects(&moto)
        .into_iter()
        .filter(|k| k.contains("/tenants/") || k.ends_with("/index.json"))
        .collect();
    assert_eq!(
        tenants,
        [
            format!("{STATE}/index.json"),
            format!("{STATE}/tenants/_shared.json"),
            format!("{STATE}/tenants/acme.json"),
            format!("{STATE}/tenants/globex.json"),
            format!("{STATE}/tenants/initech.json"),
        ],
        "one object per tenant and an index"
    );
    assert!(!ws.join("state").exists(), "nothing is kept locally");

    // Another checkout of the same workspace (same master key) reads the same state.
    let other = Ws::example("quickstart").with_env(moto.env());
    other.write("landlord.toml", &ws.read("landlord.toml"));
    assert_eq!(
        other.ok(&["state", "list"], 0).stdout,
        ws.ok(&["state", "list"], 0).stdout
    );
    other.ok(&["audit", "verify"], 0);
    let stranger = other.with_env(
        moto.env()
            .into_iter()
            .chain([("LANDLORD_MASTER_KEY".to_string(), "ff".repeat(32))])
            .collect(),
    );
    let r = stranger.ok(&["state", "list"], 1);
    assert!(
        r.stderr.contains("cannot be read with this master key"),
        "{}",
        r.all()
    );
    assert_eq!(
        leftovers(&moto),
        Vec::<String>::new(),
        "a refused open leaves no lock"
    );

    // A fleet-wide run on another machine holds the lock: wait, then name it.
    put_lock(&moto, "ci-runner-7", 4242, "2099-01-01T00:00:00Z");
    let r = ws.ok(
        &[
            "apply",
            "--auto-approve",
            "--tenant",
            "acme",
            "--lock-timeout",
            "1s",
        ],
        1,
    );
    assert!(
        r.stderr
            .contains("state is locked by dana@ci-runner-7 (pid 4242"),
        "{}",
        r.all()
    );
    let r = ws.ok(&["state", "unlock"], 0);
    assert!(
        r.stdout
            .contains("Removed the lock on `workspace` held by dana@ci-runner-7"),
        "{}",
        r.all()
    );
    ws.ok(&["plan", "--detailed-exitcode"], 0);

    // A lock past its expiry is taken over.
    put_lock(&moto, "ci-runner-7", 4242, "2020-01-01T00:00:00Z");
    ws.ok(&["apply", "--auto-approve", "--lock-timeout", "1s"], 0);
    assert_eq!(leftovers(&moto), Vec::<String>::new());
}

#[test]
fn killed_applies_with_s3_state_leave_no_orphan() {
    let moto = Moto::start();
    let ws = workspace(&moto);
    for f in ["acme", "globex", "initech"] {
        std::fs::remove_file(ws.join(&format!("tenants/{f}.yaml"))).unwrap();
    }
    // Enough work that a run is still busy when it is killed, even on a loaded machine.
    for i in 0..40 {
        ws.write(
            &format!("tenants/t{i:02}.yaml"),
            &tenant_yaml(&format!("t{i:02}"), "basic"),
        );
    }
    let args = ["apply", "--auto-approve", "--parallelism", "4"];
    // A killed run leaves its lock object: the next run on this host takes it over.
    let kills = kill_applies(&ws, &args, 12, &[0, 1, 1, 2, 3], (100, 40));
    assert!(kills >= 8, "only {kills} runs were killed mid-way");
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    ws.ok(&["audit", "verify"], 0);
    crate::support::files_match_records(&ws);
    assert_eq!(leftovers(&moto), Vec::<String>::new());
}

#[test]
fn the_master_key_can_live_under_a_kms_key() {
    let moto = Moto::start();
    let sdk = Sdk::new(&moto.endpoint);
    let kms = sdk.kms("us-east-1");
    let key = sdk
        .run(kms.create_key().description("landlord state").send())
        .expect("kms key");
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let ws = workspace(&moto);
    ws.edit(
        "landlord.toml",
        "[state]\n",
        &format!("[state]\nkms_key_id = \"{key_id}\"\n"),
    );
    // Without LANDLORD_MASTER_KEY: KMS generates the key, the file holds it encrypted.
    let env: Vec<(String, String)> = moto
        .env()
        .into_iter()
        .chain([("LANDLORD_MASTER_KEY".to_string(), String::new())])
        .collect();
    let ws = ws.with_env(env);
    let r = ws.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stderr
            .contains(&format!("Generated a master key under KMS key `{key_id}`")),
        "{}",
        r.all()
    );
    let file = ws.read(".landlord/master.key");
    assert!(file.starts_with("kms:") && file.len() > 100, "{file}");
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    let pw = ws.ok(
        &[
            "output",
            "acme/random_password.db",
            "result",
            "--show-sensitive",
        ],
        0,
    );
    assert_eq!(
        pw.stdout.trim().len(),
        40,
        "secrets decrypt with the KMS-held key"
    );

    // A damaged key file cannot be decrypted, and nothing can be read.
    ws.write(
        ".landlord/master.key",
        "kms:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
    );
    let r = ws.ok(&["state", "list"], 1);
    assert!(
        r.stderr.contains(&format!(
            "KMS key `{key_id}`: cannot decrypt the master key"
        )),
        "{}",
        r.all()
    );
    // A plain key file where a KMS-encrypted one is expected is named as such.
    ws.write(".landlord/master.key", &format!("{}\n", "ab".repeat(32)));
    let r = ws.ok(&["state", "list"], 1);
    assert!(
        r.stderr.contains("does not hold a KMS-encrypted key"),
        "{}",
        r.all()
    );
}

#[test]
fn an_embedded_state_moves_to_s3_with_export_and_import() {
    let moto = Moto::start();
    let local = Ws::example("quickstart");
    local.ok(&["apply", "--auto-approve"], 0);
    let backup = local.join("backup.json");
    local.ok(&["state", "export", "--out", backup.to_str().unwrap()], 0);

    let shared = workspace(&moto);
    shared.ok(&["state", "import", backup.to_str().unwrap()], 0);
    assert_eq!(
        shared.ok(&["state", "list"], 0).stdout,
        local.ok(&["state", "list"], 0).stdout
    );
    shared.ok(&["audit", "verify"], 0);
    assert_eq!(leftovers(&moto), Vec::<String>::new());
}

#[test]
fn intents_of_a_killed_run_wait_in_s3_until_the_next_run_reconciles_them() {
    let moto = Moto::start();
    let ws = workspace(&moto);
    ws.ok(&["apply", "--auto-approve"], 0);
    // A resource whose create takes a while: the run is killed during that call.
    crate::support::add_slow_module(&ws, "3s");
    let kills = kill_applies(&ws, &["apply", "--auto-approve"], 1, &[0], (1500, 0));
    assert_eq!(kills, 1);
    let left: Vec<String> = objects(&moto);
    assert!(
        left.iter()
            .any(|k| k.starts_with(&format!("{STATE}/intents/"))),
        "the intent of the interrupted call is durable in S3: {left:?}"
    );
    let r = ws.ok(&["apply", "--auto-approve"], 0);
    assert!(r.all().contains("initech/time_sleep.pause"), "{}", r.all());
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    assert_eq!(
        leftovers(&moto),
        Vec::<String>::new(),
        "reconciled intents leave no object behind"
    );
    assert!(!ws.ok(&["state", "list"], 0).stderr.contains("pending"));
}

#[test]
fn saved_plans_and_lock_holders_hold_with_s3_state() {
    let moto = Moto::start();
    let ws = workspace(&moto);
    crate::support::add_slow_module(&ws, "1500ms");
    ws.ok(&["apply", "--auto-approve"], 0);
    let plan = ws.join("change.plan");
    let plan_arg = plan.to_str().unwrap();
    ws.edit(
        "tenants/globex.yaml",
        "rate_limit_burst: 100",
        "rate_limit_burst: 50",
    );
    ws.ok(&["plan", "--out", plan_arg], 0);
    let original = std::fs::read(&plan).unwrap();

    // Edited on its way: refused before the state is opened.
    let text = String::from_utf8(original.clone()).unwrap();
    std::fs::write(&plan, text.replacen("50", "51", 1)).unwrap();
    let r = ws.ok(&["apply", plan_arg], 1);
    assert!(
        r.stderr.contains("was modified after it was saved"),
        "{}",
        r.all()
    );
    assert_eq!(leftovers(&moto), Vec::<String>::new(), "no lock was taken");

    // Made for another S3 state of the same key: refused.
    let other = Ws::example("quickstart").with_env(moto.env());
    other.write(
        "landlord.toml",
        &ws.read("landlord.toml").replace(
            "bucket = \"team-state\"",
            "bucket = \"team-state\"\nkey = \"other/state.json\"",
        ),
    );
    other.ok(&["apply", "--auto-approve"], 0);
    other.edit(
        "tenants/globex.yaml",
        "rate_limit_burst: 100",
        "rate_limit_burst: 50",
    );
    std::fs::write(&plan, &original).unwrap();
    let r = other.ok(&["apply", plan_arg], 1);
    assert!(
        r.stderr.contains("was made for another state"),
        "{}",
        r.all()
    );
    ws.ok(&["apply", plan_arg], 0);

    // Two applies at once: the loser names the live holder and does not advise unlock.
    ws.write(
        "modules/test/slow/slow.yaml.tera",
        "- type: time_sleep\n  name: again\n  properties: { create_duration: 1500ms }\n",
    );
    let (winner, err) = crate::support::race_two_applies(&ws, "S3 state");
    assert!(
        err.contains(&format!("pid {winner},")) && err.contains("`landlord apply`"),
        "{err}"
    );
    assert!(!err.contains("state unlock"), "a live holder here: {err}");
}

#[test]
fn state_migrates_from_sled_to_s3_and_back_with_every_chain_and_secret() {
    let moto = Moto::start();
    let sdk = Sdk::new(&moto.endpoint);
    sdk.run(sdk.s3().create_bucket().bucket("migrated").send())
        .expect("bucket");
    let ws = Ws::example("quickstart").with_env(moto.env());
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.ok(&["destroy", "--tenant", "globex", "--auto-approve"], 0);
    let before = ws.export();
    let secret = crate::support::acme_password;
    let password = secret(&ws);
    let to_s3 = [
        "state",
        "migrate",
        "--to",
        "s3",
        "--bucket",
        "migrated",
        "--key",
        "q/state.json",
        "--region",
        "us-east-1",
    ];
    let r = ws.ok(&to_s3, 0);
    assert!(
        r.stdout.contains("Copied") && r.stdout.contains("s3://migrated/q/state.json"),
        "{}",
        r.all()
    );
    assert_eq!(ws.export(), before, "the source is left as it was");
    let again = ws.ok(&to_s3, 1);
    assert!(
        again.stderr.contains("already holds a state"),
        "{}",
        again.all()
    );

    // The workspace switched to S3 sees the same state, byte for byte, secrets included.
    let toml = ws.read("landlord.toml");
    let s3 = toml.replace(
        "[state]\n",
        "[state]\nbackend = \"s3\"\nbucket = \"migrated\"\nkey = \"q/state.json\"\nregion = \"us-east-1\"\n",
    );
    ws.write("landlord.toml", &s3);
    assert_eq!(ws.export(), before);
    ws.ok(&["audit", "verify"], 0);
    assert_eq!(secret(&ws), password);

    // And back into a new local directory.
    ws.ok(
        &["state", "migrate", "--to", "sled", "--path", "state-back"],
        0,
    );
    ws.write(
        "landlord.toml",
        &toml.replace("path = \"state\"", "path = \"state-back\""),
    );
    assert_eq!(ws.export(), before);
    assert_eq!(secret(&ws), password);
    // Bad targets are refused before anything is written.
    let r = ws.ok(&["state", "migrate", "--to", "consul"], 1);
    assert!(r.stderr.contains("unknown backend `consul`"), "{}", r.all());
    let r = ws.ok(
        &["state", "migrate", "--to", "sled", "--path", "state-back"],
        1,
    );
    assert!(r.stderr.contains("already at"), "{}", r.all());
}

#[test]
fn four_sharded_runners_share_one_s3_state_and_upload_only_their_tenants() {
    let moto = Moto::start();
    let ws = workspace(&moto);
    for i in 0..197 {
        let id = format!("t{i:03}");
        ws.write(&format!("tenants/{id}.yaml"), &tenant_yaml(&id, "basic"));
    }
    crate::support::four_sharded_runners(&ws);
    assert_eq!(leftovers(&moto), Vec::<String>::new());
    let objects = state_objects(&moto);
    let count = |part: &str| objects.iter().filter(|k| k.contains(part)).count();
    assert_eq!(count("/tenants/"), 201, "one object per tenant");
    assert_eq!(count("/history/"), 4, "one object per run");
    assert!(count("/shards/") <= 32, "{objects:?}");

    // A run that changes one tenant writes that tenant's object and the index only.
    std::fs::remove_file(ws.join("out/t005/db.env")).unwrap();
    let r = ws.ok(
        &["apply", "--auto-approve", "--tenant", "t005", "--stats"],
        0,
    );
    let written: u64 = r
        .stderr
        .lines()
        .find_map(|l| l.split("bytes of state written: ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no state figures in --stats: {}", r.all()));
    let whole: usize = ws.export().len();
    assert!(
        written > 0 && (written as usize) < whole / 20,
        "{written} bytes written; the whole state is {whole}"
    );
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn a_state_kept_in_one_object_is_split_per_tenant_on_first_use() {
    let moto = Moto::start();
    // A state as landlord kept it in one object: the export document at the key.
    let local = Ws::example("quickstart");
    local.ok(&["apply", "--auto-approve"], 0);
    let export = local.export();
    let sdk = Sdk::new(&moto.endpoint);
    let ws = workspace(&moto);
    sdk.run(
        sdk.s3()
            .put_object()
            .bucket(BUCKET)
            .key(STATE)
            .body(export.clone().into_bytes().into())
            .send(),
    )
    .expect("state object");
    let r = ws.ok(&["state", "list"], 0);
    assert!(
        r.stderr
            .contains("Splitting the state in s3://team-state/landlord/state.json")
            && r.stderr
                .contains("Split committed (4 tenants); removed the old object"),
        "{}",
        r.all()
    );
    assert_eq!(r.stdout, local.ok(&["state", "list"], 0).stdout);
    assert!(
        !objects(&moto).contains(&STATE.to_string()),
        "the old object is gone"
    );
    assert_eq!(ws.export(), export, "nothing lost or changed in the split");
    ws.ok(&["audit", "verify"], 0);
    // The next run finds the split state and says nothing about it.
    let r = ws.ok(&["state", "list"], 0);
    assert!(!r.stderr.contains("Splitting"), "{}", r.all());
}

#[test]
fn overlapping_runners_on_s3_state_wait_per_tenant_and_name_the_holder() {
    let moto = Moto::start();
    let ws = workspace(&moto);
    crate::support::overlapping_runners(&ws);
    assert_eq!(leftovers(&moto), Vec::<String>::new());
}
