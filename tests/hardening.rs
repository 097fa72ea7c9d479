//! Inputs and races that must not get through: saved plans that were edited, signed
//! with another key or made for another state; lock holders named wrongly; lost, wrong
//! or exposed master keys; misspelt configuration; hostile nesting; template syntax
//! errors; self-references; duplicate tenant files; and a seeded mutation run of
//! `validate` over valid workspace files. Every refusal exits 1, names what is wrong and
//! leaves the state files byte-identical.

use std::time::{Duration, Instant};

use crate::support::{add_slow_module, state_files, Ws};

/// An applied quick start, its state files, and a saved plan of one more change.
fn applied_with_saved_plan() -> (Ws, std::collections::BTreeMap<String, String>) {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    ws.edit(
        "tenants/globex.yaml",
        "rate_limit_burst: 100",
        "rate_limit_burst: 50",
    );
    ws.ok(
        &["plan", "--out", ws.join("change.plan").to_str().unwrap()],
        0,
    );
    let files = state_files(&ws);
    (ws, files)
}

/// `apply PLANFILE` exits 1 naming `expect`, and the state files are unchanged.
fn refused(ws: &Ws, files: &std::collections::BTreeMap<String, String>, expect: &str) {
    let r = ws.run(&["apply", ws.join("change.plan").to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains(expect),
        "expected {expect:?}:\n{}",
        r.all()
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.all());
    assert_eq!(&state_files(ws), files, "state changed");
}

#[test]
fn an_edited_truncated_or_unsigned_saved_plan_is_refused_before_state_is_opened() {
    let (ws, files) = applied_with_saved_plan();
    let original = std::fs::read(ws.join("change.plan")).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    // One changed value inside the plan, as a corrupted CI artifact would carry.
    assert!(
        text.contains("burst=50") || text.contains("50"),
        "the plan holds the change"
    );
    ws.write("change.plan", &text.replacen("50", "51", 1));
    refused(&ws, &files, "was modified after it was saved");
    // Truncated.
    std::fs::write(ws.join("change.plan"), &original[..original.len() / 2]).unwrap();
    refused(&ws, &files, "was modified after it was saved");
    // The plan without its signature line: plain JSON as older versions wrote.
    let json = text.split_once('\n').unwrap().1;
    ws.write("change.plan", json);
    refused(
        &ws,
        &files,
        "does not start with a landlord plan signature line",
    );
    // A different signature over the same plan.
    let forged = format!("landlord-plan/1 hmac-sha256={}\n{json}", "0".repeat(64));
    ws.write("change.plan", &forged);
    refused(&ws, &files, "was modified after it was saved");
    // The intact plan still applies.
    std::fs::write(ws.join("change.plan"), &original).unwrap();
    ws.ok(&["apply", ws.join("change.plan").to_str().unwrap()], 0);
}

#[test]
fn a_saved_plan_signed_with_another_key_or_made_for_another_state_is_refused() {
    let (ws, files) = applied_with_saved_plan();
    let r = ws
        .cmd(&["apply", ws.join("change.plan").to_str().unwrap()])
        .env("LANDLORD_MASTER_KEY", "ff".repeat(32))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("another master key"), "{err}");
    assert_eq!(state_files(&ws), files);

    // An independent copy with the same inputs and serial: same key, other lineage.
    let copy = Ws::example("quickstart");
    copy.ok(&["apply", "--auto-approve"], 0);
    copy.edit(
        "tenants/globex.yaml",
        "rate_limit_burst: 100",
        "rate_limit_burst: 50",
    );
    let copy_files = state_files(&copy);
    std::fs::copy(ws.join("change.plan"), copy.join("change.plan")).unwrap();
    refused(&copy, &copy_files, "was made for another state");

    // A plan for a workspace that has no state at all opens none.
    let fresh = Ws::example("quickstart");
    std::fs::copy(ws.join("change.plan"), fresh.join("change.plan")).unwrap();
    let r = fresh.run(&["apply", fresh.join("change.plan").to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        !fresh.join("state").exists(),
        "state was created for a plan it cannot take"
    );
}

/// A command without `LANDLORD_MASTER_KEY`, so the key file is what counts.
fn without_env_key(ws: &Ws, args: &[&str]) -> (i32, String) {
    let out = ws
        .cmd(args)
        .env_remove("LANDLORD_MASTER_KEY")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_lost_wrong_or_exposed_master_key_is_an_error_that_changes_nothing() {
    let ws = Ws::example("quickstart");
    let (code, out) = without_env_key(&ws, &["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Generated the master key file"), "{out}");
    let key_file = ws.join(".landlord/master.key");
    let key = std::fs::read(&key_file).unwrap();
    let files = state_files(&ws);

    // Lost: the state holds sealed secrets, so no new key is made.
    std::fs::remove_file(&key_file).unwrap();
    for args in [
        &["plan"][..],
        &["apply", "--auto-approve"],
        &["state", "list"],
    ] {
        let (code, out) = without_env_key(&ws, args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(
            out.contains("holds sealed secrets") && out.contains(".landlord/master.key"),
            "{args:?}: {out}"
        );
        assert!(!key_file.exists(), "{args:?} made a new key");
        assert_eq!(state_files(&ws), files, "{args:?} changed state");
    }

    // Wrong: another key in the environment, or in the key file.
    std::fs::write(&key_file, &key).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let r = ws
        .cmd(&["plan"])
        .env("LANDLORD_MASTER_KEY", "ab".repeat(32))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains("LANDLORD_MASTER_KEY does not open"), "{err}");
    std::fs::write(&key_file, format!("{}\n", "cd".repeat(32))).unwrap();
    let (code, out) = without_env_key(&ws, &["apply", "--auto-approve"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("key file") && out.contains("does not open"),
        "{out}"
    );
    assert_eq!(state_files(&ws), files);

    // Exposed: readable by others.
    std::fs::write(&key_file, &key).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let (code, out) = without_env_key(&ws, &["plan"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("chmod 600"), "{out}");
    // Malformed.
    std::fs::write(&key_file, "not a key\n").unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let (code, out) = without_env_key(&ws, &["plan"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not hold a 32-byte key"), "{out}");
    assert_eq!(state_files(&ws), files);
    std::fs::write(&key_file, &key).unwrap();
    let (code, out) = without_env_key(&ws, &["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "the restored key works: {out}");
}

#[test]
fn two_applies_started_together_the_loser_names_the_live_holder() {
    let ws = Ws::example("quickstart");
    add_slow_module(&ws, "1500ms");
    ws.ok(&["apply", "--auto-approve"], 0);
    for round in 0..10 {
        // A change for both to plan, so neither finishes before the other starts.
        ws.write("modules/test/slow/slow.yaml.tera", &format!(
            "- type: time_sleep\n  name: pause{round}\n  properties: {{ create_duration: 1500ms }}\n"
        ));
        let (winner, err) = crate::support::race_two_applies(&ws, &format!("round {round}"));
        assert!(
            err.contains(&format!("pid {winner},")) && err.contains("`landlord apply`"),
            "round {round}: the loser must name the winner (pid {winner}):\n{err}"
        );
        assert!(!err.contains("state unlock"), "round {round}: {err}");
    }
}

#[test]
fn a_leftover_holder_record_never_blocks_or_misnames() {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    // Records of a dead process, of a live pid with another start time, and garbage.
    for record in [
        r#"{"scope":"workspace","owner":"dana","host":"h","pid":999999,"command":"landlord output","since":"2026-01-01T00:00:00Z","expiry":"2099-01-01T00:00:00Z","process_start":1}"#.to_string(),
        format!(r#"{{"scope":"workspace","owner":"dana","host":"h","pid":{},"command":"landlord output","since":"2026-01-01T00:00:00Z","expiry":"2099-01-01T00:00:00Z","process_start":1}}"#, std::process::id()),
        "garbage".to_string(),
    ] {
        std::fs::write(ws.join("state/lock"), &record).unwrap();
        let t = Instant::now();
        ws.ok(&["plan", "--lock-timeout", "0s", "--detailed-exitcode"], 0);
        assert!(t.elapsed() < Duration::from_secs(10));
        assert_eq!(ws.read("state/lock"), "", "the record is emptied at exit");
    }
}

/// `validate`, `plan` and `apply` exit 1 naming every `expect`; no state is created.
fn refused_config(toml_from: &str, toml_to: &str, expect: &[&str]) {
    let ws = Ws::example("quickstart");
    ws.edit("landlord.toml", toml_from, toml_to);
    for args in [&["validate"][..], &["plan"], &["apply", "--auto-approve"]] {
        let r = ws.run(args);
        assert_eq!(r.code, 1, "{args:?}\n{}", r.all());
        for e in expect {
            assert!(
                r.stderr.contains(e),
                "{args:?}: expected {e:?}\n{}",
                r.all()
            );
        }
    }
    assert!(!ws.join("state").exists(), "state was created");
}

#[test]
fn misspelt_configuration_names_the_nearest_valid_name() {
    refused_config(
        "[providers.local]",
        "[providers.asw]\nregion = \"us-east-1\"\n\n[providers.local]",
        &["unknown provider table `asw` (did you mean `aws`?)"],
    );
    refused_config(
        "[providers.local]",
        "[providers.postgres.main]\nhost = \"db\"\n\n[providers.local]",
        &["(did you mean `postgresql`?)"],
    );
    refused_config(
        "[providers.local]",
        "[providers.aws]\nregoin = \"us-east-1\"\n\n[providers.local]",
        &["unknown setting `regoin` (did you mean `region`?)"],
    );
    refused_config(
        "[state]",
        "[staet]",
        &[
            "landlord.toml",
            "unknown field `staet` (did you mean `state`?)",
        ],
    );
    refused_config(
        "path = \"state\"",
        "pth = \"state\"",
        &["unknown field `pth` (did you mean `path`?)"],
    );
    refused_config(
        "[providers.local]",
        "[providers.postgresql.main]\nhots = \"db\"\n\n[providers.local]",
        &["unknown setting `hots` (did you mean `host`?)"],
    );
}

/// A quick start whose `path` holds `text`; `validate` is refused within a second.
fn refused_fast(path: &str, text: &str, expect: &[&str]) {
    let ws = Ws::example("quickstart");
    ws.write(path, text);
    let t = Instant::now();
    let r = ws.run(&["validate"]);
    let took = t.elapsed();
    assert_eq!(r.code, 1, "{}", r.all());
    for e in expect {
        assert!(r.stderr.contains(e), "expected {e:?}:\n{}", r.all());
    }
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn deeply_nested_yaml_is_refused_fast_with_its_line() {
    let maps: String = (0..50_000)
        .map(|i| format!("{}k{i}:\n", " ".repeat(2 + i.min(100))))
        .collect();
    refused_fast(
        "tenants/globex.yaml",
        &format!("id: globex\nplan: professional\nsettings:\n{maps}"),
        &["tenants/globex.yaml:", "nested deeper than 64"],
    );
    let seqs = format!("{}1{}", "[".repeat(200_000), "]".repeat(200_000));
    refused_fast(
        "tenants/globex.yaml",
        &format!("id: globex\nplan: professional\nsettings: {seqs}\n"),
        &["tenants/globex.yaml:3", "nested deeper than 64"],
    );
    refused_fast(
        "plans/basic.yaml",
        &format!(
            "modules: []\ndefaults: {}{{}}{}\n",
            "{a: ".repeat(100),
            "}".repeat(100)
        ),
        &["plans/basic.yaml:2", "nested deeper than 64"],
    );
    refused_fast(
        "tenants/globex.yaml",
        &format!(
            "id: globex\nplan: professional\nsettings:\n  x:\n    {}y\n",
            "- ".repeat(100)
        ),
        &["tenants/globex.yaml:5", "nested deeper than 64"],
    );
}

#[test]
fn a_template_syntax_error_names_module_file_and_line_once() {
    for template in [
        "- type: local_file\n  name: a\n  properties:\n    content: \"{% if tenant.id %}\"\n",
        "- type: local_file\n  name: a\n  properties: { filename: \"{{ tenant.id \" }\n",
        "# one\n{% endif %}\n",
        "- type: local_file\n  name: a\n  properties:\n    content: \"{{ tenant.id | }}\"\n",
    ] {
        let ws = Ws::example("quickstart");
        crate::support::broken_module(&ws, template);
        let r = ws.run(&["validate"]);
        assert_eq!(r.code, 1, "{}", r.all());
        let located =
            regex::Regex::new(r"modules/test/broken/broken\.yaml\.tera:\d+: template syntax error")
                .unwrap();
        assert!(
            located.is_match(&r.stderr),
            "expected the template, its line and the cause:\n{}",
            r.all()
        );
        let lines = r
            .stderr
            .lines()
            .filter(|l| l.contains("template syntax error"))
            .count();
        assert!(
            lines <= 2,
            "reported once (plus the summary line):\n{}",
            r.all()
        );
        assert!(!r.stderr.contains(": shared"), "{}", r.all());
    }
}

#[test]
fn a_resource_that_depends_on_itself_is_a_cycle_at_validate() {
    for template in [
        "- type: local_file\n  name: a\n  properties: { filename: \"out/x\", content: \"${local_file.a.content}\" }\n",
        "- type: local_file\n  name: a\n  depends_on: [local_file.a]\n  properties: { filename: \"out/x\", content: \"x\" }\n",
        "- type: random_id\n  name: a\n  properties: { byte_length: 4, prefix: \"${random_id.a.hex}\" }\n",
    ] {
        let ws = Ws::example("quickstart");
        crate::support::broken_module(&ws, template);
        let r = ws.run(&["validate"]);
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(
            r.stderr.contains("depends on itself") && r.stderr.contains("tenant `initech`"),
            "{}",
            r.all()
        );
    }
    // A shared resource naming itself.
    let ws = Ws::example("quickstart");
    ws.write(
        "modules/test/selfref/module.yaml",
        "description: under test\n",
    );
    ws.write(
        "modules/test/selfref/selfref.yaml.tera",
        "- type: random_id\n  name: s\n  properties: { byte_length: 4, prefix: \"${shared.random_id.s.hex}\" }\n",
    );
    ws.edit(
        "shared.yaml",
        "modules:\n",
        "modules:\n  - use: test/selfref\n",
    );
    let r = ws.ok(&["validate"], 1);
    assert!(
        r.stderr.contains("depends on itself") && r.stderr.contains("shared"),
        "{}",
        r.all()
    );
}

#[test]
fn a_tenant_defined_twice_names_both_files() {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    let files = state_files(&ws);
    ws.write("tenants/initech.yml", &ws.read("tenants/initech.yaml"));
    for args in [&["validate"][..], &["plan"], &["apply", "--auto-approve"]] {
        let r = ws.run(args);
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(
            r.stderr.contains("tenants/initech.yaml") && r.stderr.contains("tenants/initech.yml"),
            "{}",
            r.all()
        );
    }
    assert_eq!(state_files(&ws), files);
    // A file whose id is not its name, and an empty tenant file.
    std::fs::remove_file(ws.join("tenants/initech.yml")).unwrap();
    ws.write("tenants/hooli.yaml", &ws.read("tenants/initech.yaml"));
    let r = ws.ok(&["validate"], 1);
    assert!(
        r.stderr.contains("must equal the file name `hooli`"),
        "{}",
        r.all()
    );
    ws.write("tenants/hooli.yaml", "");
    let r = ws.ok(&["validate"], 1);
    assert!(r.stderr.contains("tenants/hooli.yaml"), "{}", r.all());
    // Not text at all.
    std::fs::write(ws.join("tenants/hooli.yaml"), [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let r = ws.ok(&["validate"], 1);
    assert!(r.stderr.contains("tenants/hooli.yaml"), "{}", r.all());
    assert!(!r.stderr.contains("panicked"), "{}", r.all());
}

/// A small deterministic generator (xorshift), so a failing case can be replayed by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of a valid file: truncation, byte flips, a renamed key, a swapped type,
/// or deep nesting.
fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut bytes = text.as_bytes().to_vec();
    match rng.below(6) {
        0 => bytes.truncate(rng.below(bytes.len())),
        1 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
        }
        2 => {
            let keys = [
                "id",
                "plan",
                "modules",
                "use",
                "inputs",
                "type",
                "name",
                "properties",
                "status",
                "region",
                "root",
                "workspace",
                "providers",
            ];
            let k = keys[rng.below(keys.len())];
            return text
                .replacen(&format!("{k}:"), &format!("{k}x:"), 1)
                .replacen(&format!("{k} ="), &format!("{k}x ="), 1);
        }
        3 => {
            let swaps = [
                (": ", ": [1, 2]\n#"),
                (": ", ": {a: b}\n#"),
                ("true", "\"yes\""),
                ("- ", "- - "),
            ];
            let (from, to) = swaps[rng.below(swaps.len())];
            return text.replacen(from, to, 1 + rng.below(3));
        }
        4 => {
            let depth = 50 + rng.below(200);
            let at = rng.below(bytes.len());
            let nest = format!("{}x{}", "[".repeat(depth), "]".repeat(depth));
            bytes.splice(at..at, nest.into_bytes());
        }
        _ => {
            let i = rng.below(bytes.len());
            let j = (i + rng.below(64)).min(bytes.len());
            bytes.drain(i..j);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Mutated tenant, tier, module and `landlord.toml` files through `validate`: never a
/// panic, exit 0 or 1, under a second each. `LANDLORD_MUTATION_CASES` runs more (the
/// default keeps CI under a minute); a failure prints its seed and case.
#[test]
fn mutated_workspace_files_never_panic_or_hang_validate() {
    let cases: usize = std::env::var("LANDLORD_MUTATION_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let seed: u64 = std::env::var("LANDLORD_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_1a4d);
    let ws = Ws::example("quickstart");
    crate::support::broken_module(&ws, "- type: local_file\n  name: note\n  properties: { filename: \"out/{{ tenant.id }}/note\", content: \"{{ tenant.name }}\" }\n");
    let files = [
        "tenants/acme.yaml",
        "tenants/globex.yaml",
        "plans/basic.yaml",
        "plans/enterprise.yaml",
        "modules/test/broken/module.yaml",
        "modules/test/broken/broken.yaml.tera",
        "landlord.toml",
        "shared.yaml",
    ];
    let originals: Vec<String> = files.iter().map(|f| ws.read(f)).collect();
    let mut rng = Rng(seed);
    let mut slowest = Duration::ZERO;
    for case in 0..cases {
        let which = rng.below(files.len());
        let text = mutate(&originals[which], &mut rng);
        ws.write(files[which], &text);
        let t = Instant::now();
        let r = ws.run(&["validate"]);
        let took = t.elapsed();
        slowest = slowest.max(took);
        assert!(
            (r.code == 0 || r.code == 1) && !r.stderr.contains("panicked"),
            "seed {seed:#x} case {case}: {} exited {}\n--- input\n{text}\n{}",
            files[which],
            r.code,
            r.all()
        );
        assert!(
            took < Duration::from_secs(1),
            "seed {seed:#x} case {case}: {} took {took:?}",
            files[which]
        );
        ws.write(files[which], &originals[which]);
    }
    eprintln!("{cases} mutated inputs, slowest validate {slowest:?}");
}
