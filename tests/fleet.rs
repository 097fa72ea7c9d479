//! Fleet operations: the bulk-change guard, rollouts in waves, changed-only plans and
//! API budgets.

use crate::support::{tenant_yaml, Ws};

/// The quick start with `n` more tenants on the basic tier (`t000`, `t001`, ...).
fn fleet(n: usize) -> Ws {
    let ws = Ws::example("quickstart");
    for i in 0..n {
        let id = format!("t{i:03}");
        ws.write(&format!("tenants/{id}.yaml"), &tenant_yaml(&id, "basic"));
    }
    ws
}

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
