//! Plan at scale: generates a workspace of N tenants with 5 resources each and times the
//! release `landlord` binary on it, printing wall time and peak memory per phase:
//! `plan --refresh=false` on empty state, the initial apply, and a no-change plan with
//! refresh (every local file is read back).
//!
//! Then `plan --changed --refresh=false` with no tenant changed and with one tenant file
//! edited, and the retirement of every tenant.
//!
//! Run: `cargo bench --bench plan_scale -- 1000 10000` (default: 1000).
//!
//! `cargo bench --bench plan_scale -- quickstart 1000 10000 100000` plans the quick
//! start's own tiers and modules instead (7 resources per tenant on average, the
//! templates users start from): `plan --refresh=false` of the whole fleet and of one
//! tenant, on empty state.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "support/five.rs"]
mod five;
use five::generate;

/// Runs one phase, insists on its exit code and prints its row.
fn phase(dir: &Path, n: usize, resources: usize, name: &str, args: &[&str], want: i32) {
    let (secs, mib, code) = measure(dir, args);
    assert_eq!(code, want, "{name} exited {code}");
    println!("{n:>8} {resources:>10}  {name:<40} {secs:>9.2} {mib:>10.1}");
}

/// Runs landlord, returns (seconds, peak RSS in MiB, exit code).
fn measure(dir: &Path, args: &[&str]) -> (f64, f64, i32) {
    let start = Instant::now();
    // Reaped by wait4 below, which also reports the child's peak memory.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_landlord"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env(
            "LANDLORD_MASTER_KEY",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("landlord runs");
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; status and usage are valid out-pointers.
    unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let secs = start.elapsed().as_secs_f64();
    (
        secs,
        usage.ru_maxrss as f64 / 1024.0,
        libc::WEXITSTATUS(status),
    )
}

/// The quick start (its `landlord.toml`, tiers and shared zone) with `n` tenants spread
/// over its three tiers.
fn generate_quickstart(dir: &Path, n: usize) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    for f in ["landlord.toml", "shared.yaml"] {
        std::fs::copy(example.join(f), dir.join(f)).unwrap();
    }
    std::fs::create_dir_all(dir.join("plans")).unwrap();
    for t in ["basic", "professional", "enterprise"] {
        let f = format!("plans/{t}.yaml");
        std::fs::copy(example.join(&f), dir.join(&f)).unwrap();
    }
    std::fs::create_dir_all(dir.join("tenants")).unwrap();
    let tiers = ["basic", "professional", "enterprise"];
    for i in 0..n {
        let id = format!("tenant-{i:06}");
        std::fs::write(
            dir.join(format!("tenants/{id}.yaml")),
            format!("id: {id}\nname: Tenant {i}\nplan: {}\nstatus: active\nregion: eu-west-1\nresidency: [eu]\ndomain: {{ kind: subdomain, name: {id} }}\n", tiers[i % 3]),
        )
        .unwrap();
    }
}

/// Plans of the quick-start fleet: whole and one tenant, on empty state.
fn quickstart(sizes: &[usize]) {
    for &n in sizes {
        let dir = tempfile::tempdir().unwrap();
        generate_quickstart(dir.path(), n);
        let one = format!("tenant-{:06}", n / 2);
        for (name, args) in [
            (
                "quick start: plan --refresh=false",
                vec!["plan", "--refresh=false"],
            ),
            (
                "quick start: plan --tenant ONE",
                vec!["plan", "--refresh=false", "--tenant", &one],
            ),
        ] {
            let (secs, mib, code) = measure(dir.path(), &args);
            assert_eq!(code, 0, "{name} exited {code}");
            println!(
                "{n:>8} {:>10}  {name:<40} {secs:>9.2} {mib:>10.1}",
                "~7/tenant"
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1000] } else { sizes };
    if args.iter().any(|a| a == "quickstart") {
        println!(
            "{:>8} {:>10}  {:<40} {:>9} {:>10}",
            "tenants", "resources", "phase", "seconds", "peak MiB"
        );
        quickstart(&sizes);
        return;
    }
    println!(
        "{:>8} {:>10}  {:<40} {:>9} {:>10}",
        "tenants", "resources", "phase", "seconds", "peak MiB"
    );
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), n);
        let phases: [(&str, &[&str], i32); 4] = [
            (
                "plan --refresh=false (empty state)",
                &["plan", "--refresh=false", "--detailed-exitcode"],
                2,
            ),
            (
                "plan --refresh=false --json (empty state)",
                &["plan", "--refresh=false", "--json", "--detailed-exitcode"],
                2,
            ),
            (
                "apply --auto-approve (initial)",
                &["apply", "--auto-approve", "--parallelism", "32"],
                0,
            ),
            (
                "plan (no changes, refresh)",
                &["plan", "--detailed-exitcode"],
                0,
            ),
        ];
        for (name, args, want) in phases {
            phase(dir.path(), n, n * 5, name, args, want);
        }
        let changed = [
            "plan",
            "--changed",
            "--refresh=false",
            "--detailed-exitcode",
        ];
        let one = format!("tenant-{:05}", n / 2);
        let rows: [(&str, Vec<&str>, i32); 3] = [
            (
                "plan --refresh=false (no changes)",
                vec!["plan", "--refresh=false", "--detailed-exitcode"],
                0,
            ),
            (
                "plan --tenant ONE --refresh=false",
                vec![
                    "plan",
                    "--refresh=false",
                    "--detailed-exitcode",
                    "--tenant",
                    &one,
                ],
                0,
            ),
            // Changed-only plans: nothing changed, then one tenant file edited.
            ("plan --changed (none changed)", changed.to_vec(), 0),
        ];
        for (name, args, want) in rows {
            phase(dir.path(), n, n * 5, name, &args, want);
        }
        let file = dir.path().join(format!("tenants/{one}.yaml"));
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace("name: Tenant", "name: Renamed tenant")).unwrap();
        // The renamed tenant's README changes.
        phase(
            dir.path(),
            n,
            n * 5,
            "plan --changed (one tenant edited)",
            &changed,
            2,
        );
        // Retire every tenant: the deletes of the whole workspace, then an audit check.
        std::fs::remove_dir_all(dir.path().join("tenants")).unwrap();
        std::fs::create_dir(dir.path().join("tenants")).unwrap();
        for (name, args) in [
            (
                "apply (all tenants retired)",
                &[
                    "apply",
                    "--auto-approve",
                    "--allow-bulk",
                    "--parallelism",
                    "32",
                ][..],
            ),
            ("audit verify", &["audit", "verify"][..]),
        ] {
            phase(dir.path(), n, n * 5, name, args, 0);
        }
    }
}
