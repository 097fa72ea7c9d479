//! Fleet operations: the bulk-change guard, rollouts in waves, changed-only plans and
//! API budgets.

use crate::support::{fleet, tenant_yaml, Ws};

fn retire(ws: &Ws, ids: impl IntoIterator<Item = String>) {
    for id in ids {
        ws.edit(
            &format!("tenants/{id}.yaml"),
            "status: active",
            "status: deleted",
        );
    }
}

#[test]
fn retiring_a_fifth_of_the_fleet_needs_allow_bulk() {
    let ws = fleet(100);
    ws.ok(&["apply", "--auto-approve"], 0);
    let before = ws.export();
    retire(&ws, (0..20).map(|i| format!("t{i:03}")));

    // Refused: exit 1, counts and contributors named, nothing changed.
    let r = ws.ok(&["apply", "--auto-approve"], 1);
    assert!(r.stderr.contains("--allow-bulk"), "{}", r.all());
    let plan = crate::support::plan_json(&ws, &[]);
    let guard = &plan["guard"];
    assert_eq!(guard["refuses"], true, "{guard}");
    let losses = guard["losses"].as_array().unwrap();
    assert!(!losses.is_empty());
    for l in losses {
        let (managed, destroyed) = (
            l["managed"].as_u64().unwrap(),
            l["destroyed"].as_u64().unwrap(),
        );
        // 20 of 103 tenants retired: about a fifth of what each provider manages.
        assert!(
            destroyed * 100 > managed * 15 && destroyed * 100 < managed * 25,
            "{l}"
        );
        assert!(
            r.all()
                .contains(&format!("{destroyed} of {managed} managed resources")),
            "{}",
            r.all()
        );
    }
    assert!(r.all().contains("largest contributors: t0"), "{}", r.all());
    assert_eq!(ws.export(), before, "a refused apply must not touch state");

    // A plan saved without --allow-bulk is refused too; one saved with it applies.
    let (plain, bulk) = (ws.join("plain.bin"), ws.join("bulk.bin"));
    let (plain, bulk) = (plain.to_str().unwrap(), bulk.to_str().unwrap());
    ws.ok(&["plan", "--out", plain], 0);
    ws.ok(&["apply", plain], 1);
    let saved = ws.ok(&["plan", "--allow-bulk", "--out", bulk], 0);
    assert!(
        saved.stdout.contains("allowed by --allow-bulk"),
        "{}",
        saved.all()
    );
    ws.ok(&["apply", bulk], 0);
    let after = crate::support::plan_json(&ws, &[]);
    assert_eq!(after["summary"]["destroy"], 0, "{after}");
    assert!(!ws.join("out/t000").exists() || ws.out_files().iter().all(|f| !f.contains("t000")));
}

#[test]
fn a_small_retirement_passes_and_allow_bulk_on_apply_overrides() {
    let ws = fleet(100);
    ws.ok(&["apply", "--auto-approve"], 0);
    // Five tenants: under 10 % of every provider.
    retire(&ws, (0..5).map(|i| format!("t{i:03}")));
    let r = ws.ok(&["apply", "--auto-approve"], 0);
    assert!(
        r.stdout.contains("Bulk-change guard: within limits."),
        "{}",
        r.all()
    );
    // Twenty more: refused, then accepted with the flag on apply itself.
    retire(&ws, (5..25).map(|i| format!("t{i:03}")));
    ws.ok(&["apply", "--auto-approve"], 1);
    ws.ok(&["apply", "--auto-approve", "--allow-bulk"], 0);
}

#[test]
fn guard_thresholds_are_configurable_per_provider() {
    let ws = fleet(100);
    ws.ok(&["apply", "--auto-approve"], 0);
    let toml = ws.read("landlord.toml");
    ws.write(
        "landlord.toml",
        &format!("{toml}\n[guard]\nmax_destroy_percent = 50\n"),
    );
    retire(&ws, (0..20).map(|i| format!("t{i:03}")));
    let plan = crate::support::plan_json(&ws, &[]);
    assert_eq!(plan["guard"]["refuses"], false, "{}", plan["guard"]);
    // A provider of its own stays strict.
    let provider = plan["guard"]["losses"][0]["provider"]
        .as_str()
        .unwrap()
        .to_string();
    ws.write(
        "landlord.toml",
        &format!("{toml}\n[guard]\nmax_destroy_percent = 50\n\n[guard.providers.{provider}]\nmax_destroy_percent = 5\n"),
    );
    let plan = crate::support::plan_json(&ws, &[]);
    assert_eq!(plan["guard"]["refuses"], true, "{}", plan["guard"]);
    let r = ws.ok(&["apply", "--auto-approve"], 1);
    assert!(
        r.all()
            .contains(&format!("{provider}: deletes or replaces")),
        "{}",
        r.all()
    );
    // A misspelt threshold is a located error.
    ws.write(
        "landlord.toml",
        &format!("{toml}\n[guard]\nmax_destroy_pct = 50\n"),
    );
    let r = ws.ok(&["plan"], 1);
    assert!(
        r.stderr.contains("landlord.toml") && r.stderr.contains("max_destroy_pct"),
        "{}",
        r.all()
    );
}

/// 60 basic tenants `t000`..`t059` beside the quick start's three; `labels(i)` gives
/// tenant `i` its labels (YAML flow map body, may be empty); `waves` is the `[rollout]`
/// part of landlord.toml. Applied once, so later edits are what a rollout rolls out.
fn rollout_fleet(labels: impl Fn(usize) -> String, waves: &str) -> Ws {
    let ws = Ws::example("quickstart");
    for i in 0..60 {
        let id = format!("t{i:03}");
        let l = labels(i);
        let mut y = tenant_yaml(&id, "basic");
        if !l.is_empty() {
            y.push_str(&format!("labels: {{ {l} }}\n"));
        }
        ws.write(&format!("tenants/{id}.yaml"), &y);
    }
    let toml = ws.read("landlord.toml");
    ws.write("landlord.toml", &format!("{toml}\n{waves}"));
    ws.ok(&["apply", "--auto-approve"], 0);
    ws
}

const THREE_WAVES: &str = r#"
[[rollout.waves]]
name = "canary"
select = { labels = { ring = "canary" } }

[[rollout.waves]]
name = "early"
percent = 30
failure_budget = "10%"

[[rollout.waves]]
name = "rest"
select = "rest"
"#;

fn canary(i: usize) -> String {
    if i < 3 {
        "ring: canary".into()
    } else {
        String::new()
    }
}

fn status(ws: &Ws) -> serde_json::Value {
    serde_json::from_str(&ws.ok(&["rollout", "status", "--json"], 0).stdout).unwrap()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The serial of each tenant's newest audit event.
fn last_serials(ws: &Ws) -> std::collections::BTreeMap<String, u64> {
    let ex: serde_json::Value = serde_json::from_str(&ws.export()).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for e in ex["audit"].as_array().unwrap() {
        let s = out
            .entry(e["tenant"].as_str().unwrap().to_string())
            .or_insert(0);
        *s = e["serial"].as_u64().unwrap().max(*s);
    }
    out
}

/// How many audit events each tenant has.
fn event_counts(ws: &Ws) -> std::collections::BTreeMap<String, usize> {
    let ex: serde_json::Value = serde_json::from_str(&ws.export()).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for e in ex["audit"].as_array().unwrap() {
        *out.entry(e["tenant"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    out
}

#[test]
fn a_tier_change_rolls_out_canary_first_then_thirty_percent_then_the_rest() {
    let ws = rollout_fleet(canary, THREE_WAVES);
    ws.edit(
        "plans/basic.yaml",
        "client_max_body_size: 10m",
        "client_max_body_size: 25m",
    );

    // The plan shows the waves: canaries by label, a stable 30 % of the rest, the rest.
    let plan = crate::support::plan_json(&ws, &["--rollout"]);
    let waves = plan["waves"].as_array().unwrap();
    let names: Vec<&str> = waves.iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["canary", "early", "rest"]);
    let mut canaries = strings(&waves[0]["changed"]);
    canaries.sort();
    assert_eq!(canaries, ["t000", "t001", "t002"]);
    assert_eq!(
        waves[1]["tenants"].as_array().unwrap().len(),
        18,
        "30 % of 60, rounded up"
    );
    assert_eq!(waves[2]["tenants"].as_array().unwrap().len(), 42);
    // Only basic tenants change; the others are in their waves but skipped.
    let changed: usize = waves
        .iter()
        .map(|w| w["changed"].as_array().unwrap().len())
        .sum();
    assert_eq!(changed, 61, "t000..t059 and initech");
    assert_eq!(
        crate::support::plan_json(&ws, &["--rollout"])["waves"],
        plan["waves"],
        "stable"
    );
    let text = ws.ok(&["plan", "--rollout"], 0).stdout;
    assert!(
        text.contains("Rollout in 3 waves:")
            && text.contains("1. canary: 3 tenants, 3 with changes"),
        "{text}"
    );
    let md = ws.ok(&["plan", "--rollout", "--markdown"], 0).stdout;
    assert!(
        md.contains("| Wave | Tenants |") && md.contains("| canary | 3 | 3 |"),
        "{md}"
    );

    let r = ws.ok(&["apply", "--rollout", "--auto-approve"], 0);
    assert!(r.stdout.contains("tenant t001: applied"), "{}", r.all());
    assert!(
        r.stdout
            .contains("Rollout complete: 3 waves, 61 tenants applied."),
        "{}",
        r.all()
    );
    let st = status(&ws);
    assert_eq!(st["status"], "finished");
    let serials = last_serials(&ws);
    let mut previous_max = 0;
    for (i, w) in st["waves"].as_array().unwrap().iter().enumerate() {
        let done = strings(&w["done"]);
        assert_eq!(
            done.len(),
            waves[i]["changed"].as_array().unwrap().len(),
            "{w}"
        );
        // Every change of this wave was recorded after every change of the one before.
        let s: Vec<u64> = done.iter().map(|t| serials[t]).collect();
        assert!(
            *s.iter().min().unwrap() > previous_max,
            "wave {i} overlaps the one before"
        );
        previous_max = *s.iter().max().unwrap();
        if i > 0 {
            let before = st["waves"][i - 1]["finished"].as_str().unwrap();
            assert!(w["started"].as_str().unwrap() >= before, "{st}");
        }
    }
    // One history row per wave, in order.
    let history = ws.ok(&["state", "history"], 0).stdout;
    let rows: Vec<&str> = history
        .lines()
        .filter(|l| l.contains("--rollout (wave"))
        .collect();
    assert_eq!(rows.len(), 3, "{history}");
    assert!(rows[0].contains("canary") && rows[1].contains("early") && rows[2].contains("rest"));
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

/// Adds module `test/flag` (one file per tenant, `out/<id>/flags/rollout.conf`) to `tier`.
fn add_flag_module(ws: &Ws, tier: &str) {
    ws.write(
        "modules/test/flag/module.yaml",
        "description: a feature flag file\n",
    );
    ws.write("modules/test/flag/flag.yaml.tera", FLAG_MODULE);
    ws.edit(
        &format!("plans/{tier}.yaml"),
        "modules:\n",
        "modules:\n  - use: test/flag\n",
    );
}

const FLAG_MODULE: &str = "- type: local_file\n  name: flag\n  properties:\n    filename: \"out/{{ tenant.id }}/flags/rollout.conf\"\n    content: \"on\\n\"\n";

#[test]
fn failures_over_budget_halt_the_rollout_and_resume_finishes_without_reapplying() {
    let labels = |i: usize| match i {
        0..=2 => "ring: canary".to_string(),
        10..=13 => "batch: two, fragile: \"yes\"".to_string(),
        14..=29 => "batch: two".to_string(),
        _ => String::new(),
    };
    let waves = r#"
[[rollout.waves]]
name = "canary"
select = { labels = { ring = "canary" } }

[[rollout.waves]]
name = "two"
select = { labels = { batch = "two" } }
failure_budget = "10%"

[[rollout.waves]]
name = "rest"
"#;
    let ws = rollout_fleet(labels, waves);
    // A template change that fails for the fragile tenants: their flag directory is
    // taken by a file, so the provider cannot write.
    add_flag_module(&ws, "basic");
    for i in 10..=13 {
        ws.write(&format!("out/t{i:03}/flags"), "in the way\n");
    }
    // The on-call channel hears of the halt.
    let rx = crate::support::webhook::Receiver::start("rollout-secret");
    let toml = ws.read("landlord.toml");
    ws.write(
        "landlord.toml",
        &format!(
            "{toml}\n[[notify.webhook]]\nurl_env = \"ONCALL_URL\"\nevents = [\"rollout.halted\"]\n"
        ),
    );
    let ws = ws.with_env(vec![("ONCALL_URL".into(), rx.url("/oncall"))]);
    let flag = |i: usize| ws.join(&format!("out/t{i:03}/flags/rollout.conf")).exists();

    let r = ws.ok(&["apply", "--rollout", "--auto-approve"], 1);
    assert!(
        r.stderr
            .contains("Rollout halted in wave `two`: 4 tenants failed, the budget allows 2"),
        "{}",
        r.all()
    );
    let told = rx.deliveries();
    assert_eq!(told.len(), 1, "only the event asked for: {told:?}");
    assert_eq!(told[0].body["event"], "rollout.halted");
    assert_eq!(told[0].body["succeeded"], false);
    let failed: Vec<&str> = told[0].body["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["address"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), 4, "{failed:?}");
    assert!(failed.iter().all(|a| a.starts_with("t01")), "{failed:?}");
    for i in 10..=13 {
        assert!(
            r.stderr
                .contains(&format!("t{i:03}: t{i:03}/local_file.flag")),
            "{}",
            r.all()
        );
    }
    assert!(
        (0..3).chain(14..30).all(flag),
        "canary and the rest of wave two applied"
    );
    assert!(!(30..60).any(flag), "the last wave is untouched");
    let st = status(&ws);
    assert_eq!(st["status"], "halted");
    assert_eq!(st["wave"], 1);
    let failed: Vec<&String> = st["waves"][1]["failed"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(failed, ["t010", "t011", "t012", "t013"]);
    let text = ws.ok(&["rollout", "status"], 0).stdout;
    assert!(
        text.contains("halted at wave 2 of 3 (`two`)") && text.contains("failed t012:"),
        "{text}"
    );
    // The same inputs cannot start another rollout over this one.
    let again = ws.ok(&["apply", "--rollout", "--auto-approve"], 1);
    assert!(again.stderr.contains("rollout resume"), "{}", again.all());

    // Fix the cause, resume: the failed tenants and the last wave, nothing else.
    let before = event_counts(&ws);
    for i in 10..=13 {
        std::fs::remove_file(ws.join(&format!("out/t{i:03}/flags"))).unwrap();
    }
    let r = ws.ok(&["rollout", "resume", "--auto-approve"], 0);
    assert!(r.stdout.contains("Rollout complete"), "{}", r.all());
    assert!((0..60).all(flag));
    let after = event_counts(&ws);
    for i in (0..3).chain(14..30) {
        let t = format!("t{i:03}");
        assert_eq!(before[&t], after[&t], "{t} was applied again by resume");
    }
    assert!(after["t010"] > before["t010"] && after["t045"] > before["t045"]);
    assert_eq!(status(&ws)["status"], "finished");
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn pause_after_stops_with_exit_zero_and_resume_or_new_inputs_go_on() {
    let waves = r#"
[[rollout.waves]]
name = "canary"
select = { labels = { ring = "canary" } }
pause_after = true

[[rollout.waves]]
name = "rest"
select = "rest"
"#;
    let ws = rollout_fleet(canary, waves);
    let nginx = |i: usize| ws.read(&format!("out/t{i:03}/nginx.conf"));
    ws.edit(
        "plans/basic.yaml",
        "client_max_body_size: 10m",
        "client_max_body_size: 25m",
    );
    let r = ws.ok(&["apply", "--rollout", "--auto-approve"], 0);
    assert!(
        r.stdout.contains("Rollout paused after wave `canary`"),
        "{}",
        r.all()
    );
    assert!(nginx(0).contains("25m") && nginx(30).contains("10m"));
    let first = status(&ws);
    assert_eq!(
        (first["status"].as_str(), first["wave"].as_u64()),
        (Some("paused"), Some(1))
    );

    // New inputs start a new rollout from the first wave.
    ws.edit(
        "plans/basic.yaml",
        "client_max_body_size: 25m",
        "client_max_body_size: 30m",
    );
    ws.ok(&["apply", "--rollout", "--auto-approve"], 0);
    let second = status(&ws);
    assert_ne!(second["id"], first["id"]);
    assert_eq!(
        (second["status"].as_str(), second["wave"].as_u64()),
        (Some("paused"), Some(1))
    );
    assert!(nginx(1).contains("30m") && nginx(30).contains("10m"));

    let r = ws.ok(&["rollout", "resume", "--auto-approve", "--json"], 0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        (doc["kind"].as_str(), doc["status"].as_str()),
        (Some("rollout"), Some("finished"))
    );
    assert!(nginx(30).contains("30m"));
    let r = ws.ok(&["rollout", "resume", "--auto-approve"], 1);
    assert!(
        r.stderr
            .contains("no paused, halted or interrupted rollout"),
        "{}",
        r.all()
    );

    // Abort ends a paused rollout for good.
    ws.edit(
        "plans/basic.yaml",
        "client_max_body_size: 30m",
        "client_max_body_size: 40m",
    );
    ws.ok(&["apply", "--rollout", "--auto-approve"], 0);
    ws.ok(&["rollout", "abort"], 0);
    assert_eq!(status(&ws)["status"], "aborted");
    ws.ok(&["rollout", "resume", "--auto-approve"], 1);
    assert!(
        nginx(30).contains("30m"),
        "an aborted rollout applies nothing more"
    );
}

#[test]
fn rollout_settings_are_checked() {
    let ws = Ws::example("quickstart");
    let toml = ws.read("landlord.toml");
    let r = ws.ok(&["plan", "--rollout"], 1);
    assert!(r.stderr.contains("--rollout needs waves"), "{}", r.all());
    for (bad, says) in [
        (
            "[[rollout.waves]]\nname = \"a\"\nselect = \"canary\"\n",
            "expected \"rest\" or a table",
        ),
        (
            "[[rollout.waves]]\nname = \"a\"\nfailure_budget = \"ten\"\n",
            "neither a count nor a percentage",
        ),
        (
            "[[rollout.waves]]\nname = \"a\"\npercent = 150\n",
            "percent 150 is not within",
        ),
        (
            "[[rollout.waves]]\nname = \"a\"\n[[rollout.waves]]\nname = \"a\"\n",
            "two rollout waves are named `a`",
        ),
        (
            "[[rollout.waves]]\nname = \"a\"\nselect = { label = { x = \"y\" } }\n",
            "label",
        ),
    ] {
        ws.write("landlord.toml", &format!("{toml}\n{bad}"));
        let r = ws.ok(&["plan", "--rollout"], 1);
        assert!(
            r.stderr.contains("landlord.toml") && r.stderr.contains(says),
            "{bad}\n{}",
            r.all()
        );
    }
    // A rollout file replaces landlord.toml's waves for one run.
    ws.write("landlord.toml", &toml);
    ws.write(
        "waves.toml",
        "[[rollout.waves]]\nname = \"only\"\nselect = { tier = \"enterprise\" }\n",
    );
    let plan = crate::support::plan_json(
        &ws,
        &["--rollout-config", ws.join("waves.toml").to_str().unwrap()],
    );
    let names: Vec<&str> = plan["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["only", "remaining"]);
    assert_eq!(strings(&plan["waves"][0]["tenants"]), ["acme"]);
}

/// `plan --changed --json`: the tenants it plans and how many it skipped.
fn changed(ws: &Ws) -> (Vec<String>, u64) {
    let p = crate::support::plan_json(ws, &["--changed", "--refresh=false"]);
    (
        strings(&p["tenants"]),
        p["unchanged_tenants"].as_u64().unwrap(),
    )
}

#[test]
fn plan_changed_selects_exactly_the_tenants_whose_inputs_changed() {
    let ws = fleet(497);
    // Without shared templates that list every tenant, one tenant's edit is that tenant's.
    std::fs::remove_file(ws.join("shared.yaml")).unwrap();
    ws.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(changed(&ws), (vec![], 500));
    let r = ws.ok(&["plan", "--changed"], 0);
    assert!(
        r.stdout
            .contains("500 tenants skipped: their inputs are unchanged"),
        "{}",
        r.all()
    );

    // One tenant file.
    ws.edit("tenants/t123.yaml", "status: active", "status: suspended");
    assert_eq!(changed(&ws), (vec!["t123".to_string()], 499));
    let md = ws.ok(&["plan", "--changed", "--markdown"], 0).stdout;
    assert!(md.contains("499 tenants skipped"), "{md}");
    ws.ok(&["apply", "--changed", "--auto-approve"], 0);
    assert_eq!(changed(&ws), (vec![], 500));

    // A tier: exactly its tenants (497 generated ones and initech are basic).
    ws.edit(
        "plans/basic.yaml",
        "client_max_body_size: 10m",
        "client_max_body_size: 12m",
    );
    let (tenants, skipped) = changed(&ws);
    assert_eq!((tenants.len(), skipped), (498, 2));
    assert!(!tenants.contains(&"acme".to_string()) && tenants.contains(&"initech".to_string()));
    ws.ok(&["apply", "--changed", "--auto-approve"], 0);
    assert_eq!(changed(&ws).0.len(), 0);

    // A module: exactly the tenants whose tier uses it.
    add_flag_module(&ws, "professional");
    assert_eq!(changed(&ws).0, ["globex"]);
    ws.ok(&["apply", "--changed", "--auto-approve"], 0);
    ws.edit(
        "modules/test/flag/flag.yaml.tera",
        "content: \"on",
        "content: \"off",
    );
    assert_eq!(changed(&ws).0, ["globex"]);
    ws.ok(&["apply", "--changed", "--auto-approve"], 0);
    assert_eq!(ws.read("out/globex/flags/rollout.conf"), "off\n");

    // A removed tenant is planned (its resources are deleted).
    std::fs::remove_file(ws.join("tenants/t200.yaml")).unwrap();
    assert_eq!(changed(&ws).0, ["t200"]);
    ws.ok(&["apply", "--changed", "--auto-approve"], 0);
    assert_eq!(changed(&ws), (vec![], 499));

    // Inputs recorded by another landlord version (a library upgrade): every tenant.
    let mut ex: serde_json::Value = serde_json::from_str(&ws.export()).unwrap();
    for (k, v) in ex["notes"].as_object_mut().unwrap() {
        if k.starts_with("inputs/") {
            v["library"] = "recorded-by-an-older-landlord".into();
        }
    }
    ws.write("older.json", &ex.to_string());
    ws.ok(
        &["state", "import", ws.join("older.json").to_str().unwrap()],
        0,
    );
    let (tenants, skipped) = changed(&ws);
    assert_eq!((tenants.len(), skipped), (499, 0));
}

#[test]
fn changed_runs_include_shared_templates_that_list_tenants_and_failed_tenants() {
    let ws = Ws::example("quickstart");
    ws.ok(&["apply", "--auto-approve"], 0);
    assert_eq!(changed(&ws), (vec![], 3));
    // The zone file lists every tenant: a tenant's edit re-plans the shared scope too.
    ws.edit("tenants/globex.yaml", "name: globex", "name: globex-eu");
    assert_eq!(changed(&ws).0, ["_shared", "globex"]);
    // A tenant whose apply failed stays changed until an apply succeeds for it.
    ws.write("out/globex/flags", "in the way\n");
    add_flag_module(&ws, "professional");
    ws.ok(&["apply", "--changed", "--auto-approve", "--allow-bulk"], 1);
    assert_eq!(
        changed(&ws).0,
        ["globex"],
        "the shared scope converged, globex did not"
    );
    std::fs::remove_file(ws.join("out/globex/flags")).unwrap();
    ws.ok(&["apply", "--changed", "--auto-approve"], 0);
    assert_eq!(changed(&ws), (vec![], 3));
    // A saved plan of no change applies as nothing, whatever happens meanwhile.
    let f = ws.join("nothing.bin");
    ws.ok(&["plan", "--changed", "--out", f.to_str().unwrap()], 0);
    ws.edit("tenants/acme.yaml", "name: Acme Corp", "name: Acme Inc");
    let r = ws.ok(&["apply", f.to_str().unwrap()], 0);
    assert!(r.stdout.contains("nothing to apply"), "{}", r.all());
}

/// The AWS example with `n` tenants of one Route 53 record each instead of its own,
/// and `budget` added to `[providers.aws]`.
fn records_fleet(env: Vec<(String, String)>, n: usize, budget: &str) -> Ws {
    let ws = crate::support::records_workspace(env, n);
    ws.edit(
        "landlord.toml",
        "region = \"us-east-1\"",
        &format!("region = \"us-east-1\"\n{budget}"),
    );
    ws
}

/// The `api_budgets` entry of `service` in a JSON report.
fn budget_of(report: &serde_json::Value, service: &str) -> serde_json::Value {
    report["api_budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["service"] == service)
        .unwrap_or_else(|| panic!("no {service} budget in {}", report["api_budgets"]))
        .clone()
}

#[test]
fn route53_calls_wait_for_their_budget_instead_of_being_throttled() {
    let moto = crate::support::moto::Moto::start();
    let ws = records_fleet(moto.env(), 600, "requests_per_second = { route53 = 2 }");
    let started = std::time::Instant::now();
    let r = ws.ok(&["apply", "--auto-approve", "--json", "--stats"], 0);
    let wall = started.elapsed().as_secs_f64();
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        report["created"], 603,
        "600 records and the shared zone, record and bucket"
    );
    assert_eq!(report["failed"].as_array().unwrap().len(), 0);
    let b = budget_of(&report, "route53");
    let (calls, waited) = (
        b["calls"].as_u64().unwrap(),
        b["waited_seconds"].as_f64().unwrap(),
    );
    assert_eq!(b["requests_per_second"], 2.0);
    assert_eq!(b["throttled"], 0);
    assert!(calls >= 4, "{b}");
    // Two calls may go at once; every further one waits half a second for its token.
    let floor = (calls - 2) as f64 / 2.0;
    assert!(
        wall >= floor,
        "{calls} calls in {wall:.2}s: faster than 2/s"
    );
    assert!(waited > 0.0, "{b}");
    assert!(
        r.stderr.contains("API budgets:") && r.stderr.contains("default/route53"),
        "{}",
        r.all()
    );
    // Other services keep their published defaults.
    assert_eq!(
        budget_of(&report, "s3-control")["requests_per_second"],
        20.0
    );
}

#[test]
fn throttling_answers_shrink_the_budget_and_the_run_still_converges() {
    let moto = crate::support::moto::Moto::start();
    // Every second request is answered with a throttling error.
    let proxy = crate::support::faulty::FaultyProxy::start_with(
        moto.endpoint.trim_start_matches("http://"),
        2,
        crate::support::faulty::Fault::ThrottleOnly,
    );
    let ws = records_fleet(crate::support::moto::env_for(&proxy.endpoint), 60, "");
    let r = ws.ok(&["apply", "--auto-approve", "--json"], 0);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["created"], 63, "{}", r.all());
    let b = budget_of(&report, "route53");
    assert!(b["throttled"].as_u64().unwrap() > 0, "{b}");
    assert!(
        b["lowest_rate"].as_f64().unwrap() < 5.0,
        "the rate shrank: {b}"
    );
    assert_eq!(b["requests_per_second"], 5.0, "Route 53's published quota");
    ws.ok(&["plan", "--detailed-exitcode"], 0);
}

#[test]
fn four_shards_cover_the_fleet_once() {
    let ws = fleet(97);
    let mut seen: Vec<String> = vec![];
    for k in 1..=4 {
        let shard = format!("{k}/4");
        let plan = crate::support::plan_json(&ws, &["--shard", &shard]);
        let tenants = strings(&plan["tenants"]);
        assert_eq!(
            tenants.contains(&"_shared".to_string()),
            k == 1,
            "{shard}: {tenants:?}"
        );
        assert!(
            !tenants.is_empty() && tenants.len() < 60,
            "{shard}: {}",
            tenants.len()
        );
        // The listing shows the same split.
        let listed: serde_json::Value = serde_json::from_str(
            &ws.ok(&["tenants", "list", "--shard", &shard, "--json"], 0)
                .stdout,
        )
        .unwrap();
        let ids: Vec<String> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect();
        let no_shared: Vec<String> = tenants
            .iter()
            .filter(|t| *t != "_shared")
            .cloned()
            .collect();
        assert_eq!(ids, no_shared);
        ws.ok(&["apply", "--shard", &shard, "--auto-approve"], 0);
        seen.extend(tenants);
    }
    seen.sort();
    let before = seen.len();
    seen.dedup();
    assert_eq!(
        (before, seen.len()),
        (101, 101),
        "100 tenants and _shared, each once"
    );
    ws.ok(&["plan", "--detailed-exitcode"], 0);
    let history = ws.ok(&["state", "history"], 0).stdout;
    assert_eq!(
        history
            .lines()
            .filter(|l| l.contains("landlord apply"))
            .count(),
        4
    );

    // `auto/N` takes the index a Kubernetes Indexed Job gives each pod (from 0).
    let auto = ws
        .cmd(&["plan", "--json", "--shard", "auto/4"])
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
    let auto: serde_json::Value = serde_json::from_slice(&auto.stdout).unwrap();
    assert_eq!(
        auto["tenants"],
        crate::support::plan_json(&ws, &["--shard", "2/4"])["tenants"]
    );
    let r = ws.ok(&["plan", "--shard", "auto/4"], 1);
    assert!(r.stderr.contains("JOB_COMPLETION_INDEX"), "{}", r.all());
    let r = ws.ok(&["plan", "--shard", "5/4"], 1);
    assert!(
        r.stderr.contains("shard 5 of 4 does not exist"),
        "{}",
        r.all()
    );
    // A rollout goes over the whole fleet, one record of progress: not per shard.
    let r = ws.ok(&["apply", "--shard", "1/4", "--rollout"], 1);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.all());

    // Drift and destroy take shards too.
    ws.ok(&["drift", "--shard", "3/4"], 0);
    let doomed = crate::support::plan_json(&ws, &["--shard", "3/4"])["tenants"].clone();
    ws.ok(&["destroy", "--shard", "3/4", "--auto-approve"], 0);
    let listed = ws.ok(&["state", "list"], 0).stdout;
    for t in strings(&doomed) {
        assert!(!listed.contains(&format!("{t}/")), "{t} still has records");
    }
}

/// `check-jsonschema` as scripts/install-test-deps installs it.
fn check_jsonschema() -> std::path::PathBuf {
    let bin = crate::support::tools_dir().join("check-jsonschema-0.39.0/bin/check-jsonschema");
    assert!(
        bin.exists(),
        "check-jsonschema not found at {}: run scripts/install-test-deps",
        bin.display()
    );
    bin
}

#[test]
fn the_fleet_runner_examples_are_valid_and_cover_every_shard() {
    let ws = Ws::example("fleet-runners");
    ws.ok(&["validate"], 0);
    let yaml = |p: &str| -> serde_json::Value { serde_yaml_ng::from_str(&ws.read(p)).unwrap() };

    // GitHub Actions: the workflow schema accepts it, and the matrix runs one job per shard.
    let workflow = "github/landlord-apply.yml";
    let check = |path: &std::path::Path| {
        std::process::Command::new(check_jsonschema())
            .args(["--builtin-schema", "vendor.github-workflows"])
            .arg(path)
            .output()
            .unwrap()
    };
    let out = check(&ws.join(workflow));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let w = yaml(workflow);
    let shards = w["jobs"]["apply"]["strategy"]["matrix"]["shard"]
        .as_array()
        .unwrap()
        .len();
    let steps = w["jobs"]["apply"]["steps"].to_string();
    assert!(steps.contains(&format!("--shard auto/{shards}")), "{steps}");
    assert_eq!(
        w["jobs"]["apply"]["env"]["LANDLORD_SHARD_INDEX"],
        "${{ matrix.shard }}"
    );
    // The schema check can fail: a job without `runs-on` is refused.
    let broken = ws
        .read(workflow)
        .replace("    runs-on: ubuntu-latest\n", "");
    ws.write("broken.yml", &broken);
    assert!(!check(&ws.join("broken.yml")).status.success());

    // Kubernetes: an Indexed Job whose pods apply shard index+1 of `completions`.
    let job = yaml("kubernetes/indexed-job.yaml");
    assert_eq!(
        (job["apiVersion"].as_str(), job["kind"].as_str()),
        (Some("batch/v1"), Some("Job"))
    );
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().unwrap();
    assert!(spec["parallelism"].as_u64().unwrap() <= n);
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    let container = &spec["template"]["spec"]["containers"][0];
    let args = container["args"][0].as_str().unwrap();
    let expr = format!("$((JOB_COMPLETION_INDEX+1))/{n}");
    assert!(args.contains(&format!("--shard {expr}")), "{args}");
    // The shell turns each pod's index into its shard, 1/N to N/N.
    for i in 0..n {
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("echo {expr}")])
            .env("JOB_COMPLETION_INDEX", i.to_string())
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("{}/{n}", i + 1)
        );
    }
    // And `auto/N` reads the same index itself (on local state: the S3 bucket of the
    // example is not there).
    let toml = ws.read("landlord.toml");
    let (head, rest) = toml.split_once("[state]").unwrap();
    let (_, tail) = rest.split_once("[providers.aws]").unwrap();
    ws.write("landlord.toml", &format!("{head}[providers.aws]{tail}"));
    let auto = ws
        .cmd(&["tenants", "list", "--json", "--shard", &format!("auto/{n}")])
        .env("JOB_COMPLETION_INDEX", "0")
        .output()
        .unwrap();
    assert!(
        auto.status.success(),
        "{}",
        String::from_utf8_lossy(&auto.stderr)
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&auto.stdout).unwrap(),
        serde_json::from_str::<serde_json::Value>(
            &ws.ok(
                &["tenants", "list", "--json", "--shard", &format!("1/{n}")],
                0
            )
            .stdout
        )
        .unwrap()
    );
}

#[test]
fn a_saved_plan_is_refused_only_when_a_tenant_it_touches_changed() {
    let ws = fleet(3);
    ws.ok(&["apply", "--auto-approve"], 0);
    let plan = ws.join("a.bin");
    let plan = plan.to_str().unwrap();
    // A plan for t000 alone.
    ws.edit("tenants/t000.yaml", "status: active", "status: suspended");
    ws.ok(&["plan", "--tenant", "t000", "--out", plan], 0);
    // Another run changes t001 (its file deleted out of band and repaired): not t000's.
    std::fs::remove_file(ws.join("out/t001/nginx.conf")).unwrap();
    ws.ok(&["apply", "--tenant", "t001", "--auto-approve"], 0);
    ws.ok(&["apply", plan], 0);
    // Now one for t000 again, and a run that changes t000 first: refused.
    ws.edit("tenants/t000.yaml", "status: suspended", "status: active");
    ws.ok(&["plan", "--tenant", "t000", "--out", plan], 0);
    std::fs::remove_file(ws.join("out/t000/db.env")).unwrap();
    ws.ok(&["apply", "--tenant", "t000", "--auto-approve"], 0);
    let r = ws.ok(&["apply", plan], 1);
    assert!(
        r.stderr
            .contains("tenant `t000` changed since the plan was made"),
        "{}",
        r.all()
    );
    // The saved plan records the versions of the tenants it touches.
    ws.ok(&["plan", "--tenant", "t002", "--out", plan], 0);
    let shown: serde_json::Value =
        serde_json::from_str(&ws.ok(&["show", plan, "--json"], 0).stdout).unwrap();
    assert_eq!(shown["tenants"], serde_json::json!(["t002"]));
}

#[test]
fn a_plan_made_in_tenant_batches_prints_exactly_the_whole_plan() {
    let ws = fleet(40);
    ws.ok(&["apply", "--auto-approve"], 0);
    // Retirements past the guard, tenants whose files are gone (their records stay),
    // and an in-place change.
    retire(&ws, (0..12).map(|i| format!("t{i:03}")));
    for id in ["t020", "t033"] {
        std::fs::remove_file(ws.join(&format!("tenants/{id}.yaml"))).unwrap();
    }
    ws.edit(
        "tenants/globex.yaml",
        "rate_limit_burst: 100",
        "rate_limit_burst: 50",
    );
    let batched = |args: &[&str]| {
        let mut c = ws.cmd(args);
        c.env("LANDLORD_PLAN_BATCH", "4");
        crate::support::Run::from(c.output().unwrap())
    };
    for args in [
        &["plan", "--refresh=false", "--detailed-exitcode"][..],
        &["plan", "--detailed-exitcode"],
        &[
            "plan",
            "--destroy",
            "--refresh=false",
            "--detailed-exitcode",
        ],
        &[
            "plan", "--tenant", "t035", "--tenant", "globex", "--tenant", "t020",
        ],
    ] {
        let whole = ws.run(args);
        let parts = batched(args);
        assert_eq!(parts.code, whole.code, "{args:?}\n{}", parts.all());
        assert_eq!(parts.stdout, whole.stdout, "{args:?}");
    }
    // `--json` too, against the whole plan that `--out` makes (the saved plan needs every
    // change at once): the same document, byte for byte.
    let saved = ws.join("whole.bin");
    for extra in [&[][..], &["--destroy"]] {
        let json = [&["plan", "--json", "--refresh=false"][..], extra].concat();
        let whole = ws.ok(
            &[&json[..], &["--out", saved.to_str().unwrap()]].concat(),
            0,
        );
        let parts = batched(&json);
        assert_eq!(parts.code, 0, "{}", parts.all());
        assert_eq!(parts.stdout, whole.stdout, "{json:?}");
        assert_eq!(parts.stdout, ws.ok(&json, 0).stdout, "{json:?}");
    }
    // 44 scopes (the shared one, 41 tenant files and two tenants with records only) in
    // batches of 4; one batch without the variable.
    let stats = batched(&["plan", "--refresh=false", "--stats"]);
    assert!(
        stats.stderr.contains("Tenant batches planned: 11\n"),
        "{}",
        stats.all()
    );
    let stats = ws.ok(&["plan", "--refresh=false", "--stats"], 0);
    assert!(stats.stderr.contains("Tenant batches planned: 1\n"));
    let text = ws.ok(&["plan", "--refresh=false"], 0).stdout;
    for expected in [
        "t020/local_file.nginx will be destroyed  (tenant removed)",
        "t011/local_file.nginx will be destroyed  (tenant deleted)",
        "globex/local_file.nginx will be updated in place",
        "apply will refuse this plan without --allow-bulk",
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }

    // A template that fails for a tenant of the last batch: the error alone, no part
    // of the plan, the same as in one batch.
    crate::support::broken_module(
        &ws,
        "{% if tenant.id == 't039' %}{{ missing.value }}{% endif %}\n",
    );
    let whole = ws.run(&["plan", "--refresh=false"]);
    let parts = batched(&["plan", "--refresh=false"]);
    assert_eq!((parts.code, whole.code), (1, 1), "{}", parts.all());
    assert_eq!(parts.stdout, "", "no partial plan");
    assert!(parts.stderr.contains("t039"), "{}", parts.all());
    assert_eq!(parts.stderr, whole.stderr);
}

#[test]
fn a_5000_tenant_markdown_plan_is_split_into_comment_sized_parts_in_order() {
    let ws = fleet(5000);
    let md = ws.join("plan.md");
    let r = ws.ok(
        &[
            "plan",
            "--refresh=false",
            "--markdown-out",
            md.to_str().unwrap(),
        ],
        0,
    );
    assert!(r.stderr.contains("Wrote the markdown in "), "{}", r.stderr);
    let parts = landlord::plan::show::comment::read_parts(&md).unwrap();
    assert!(parts.len() > 2, "{} parts", parts.len());
    for (i, p) in parts.iter().enumerate() {
        assert!(
            p.chars().count() <= 65_536,
            "part {} has {}",
            i + 1,
            p.len()
        );
        assert!(
            p.starts_with(&format!(
                "### landlord plan (part {} of {})",
                i + 1,
                parts.len()
            )),
            "{}",
            &p[..80]
        );
    }
    assert!(parts[0].contains("to add, 0 to change, 0 to replace, 0 to destroy.**"));
    let all = parts.concat();
    let mut ids: Vec<String> = (0..5000).map(|i| format!("t{i:03}")).collect();
    ids.sort();
    let mut at = 0;
    for id in &ids {
        at += all[at..]
            .find(&format!("<b>{id}</b>: "))
            .unwrap_or_else(|| panic!("{id} missing or out of order"));
    }
    assert!(!all.contains("omitted"), "nothing is left out of the parts");
    // stdout still prints the terminal plan.
    assert!(
        r.stdout.contains("Plan: "),
        "{}",
        &r.stdout[r.stdout.len() - 200..]
    );
}
