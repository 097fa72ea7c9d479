//! Route 53 under its API budget: applies N single-record tenants (the AWS example's
//! `aws/subdomain-record`) against moto with the default budget (5 requests per second
//! per account), reports the Route 53 calls landlord made and the time they waited, and
//! projects the wall time of creating 10,000 records: calls × 1/rate. Terraform's AWS
//! provider makes one ChangeResourceRecordSets per record, then polls GetChange until
//! the change is INSYNC and reads the record back: three calls per record at the least.
//!
//! Run: `cargo bench --bench route53_budget -- 2000` (default: 1000).

#[allow(dead_code)]
#[path = "../tests/support/moto.rs"]
mod moto;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The AWS example with `n` tenants of one record each instead of its own.
fn workspace(dir: &Path, n: usize) {
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/aws"),
        dir,
    );
    std::fs::remove_dir_all(dir.join("tenants")).unwrap();
    std::fs::create_dir(dir.join("tenants")).unwrap();
    std::fs::create_dir_all(dir.join("plans")).unwrap();
    std::fs::write(
        dir.join("plans/records.yaml"),
        "modules:\n  - use: aws/subdomain-record\n",
    )
    .unwrap();
    for i in 0..n {
        std::fs::write(
            dir.join(format!("tenants/t{i:05}.yaml")),
            format!("id: t{i:05}\nplan: records\ndomain: {{ kind: subdomain, name: t{i:05} }}\n"),
        )
        .unwrap();
    }
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let moto = moto::Moto::start();
    let dir = tempfile::tempdir().unwrap();
    workspace(dir.path(), n);
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_landlord"))
        .arg("-C")
        .arg(dir.path())
        .args(["apply", "--auto-approve", "--json"])
        .envs(moto.env())
        .env(
            "LANDLORD_MASTER_KEY",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        )
        .output()
        .expect("landlord runs");
    let wall = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let budget = report["api_budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["service"] == "route53")
        .expect("a route53 budget")
        .clone();
    let calls = budget["calls"].as_u64().unwrap();
    let rate = budget["requests_per_second"].as_f64().unwrap();
    let waited = budget["waited_seconds"].as_f64().unwrap();
    println!("{n} records against moto, Route 53 budget {rate}/s:");
    println!("  landlord apply: {wall:.1} s wall, {calls} Route 53 requests, {waited:.1} s spent waiting for tokens");
    for c in report["api_calls"].as_array().unwrap() {
        if c["operation"]
            .as_str()
            .unwrap_or("")
            .starts_with("route53.")
        {
            println!(
                "    {:<40} {}",
                c["operation"].as_str().unwrap(),
                c["count"]
            );
        }
    }
    let target = 10_000.0;
    // Calls grow at most linearly with the records (batches of up to 1,000 changes,
    // listings of 300 records per page).
    let projected_calls = (calls as f64 * target / n as f64).ceil();
    println!(
        "  projected for 10,000 records: {projected_calls} requests, {:.0} s at {rate}/s",
        projected_calls / rate
    );
    let terraform = 3.0 * target;
    println!(
        "  Terraform (1 ChangeResourceRecordSets + ≥1 GetChange + 1 read per record): ≥ {terraform} requests, ≥ {:.0} s ({:.0} min) at {rate}/s",
        terraform / rate,
        terraform / rate / 60.0
    );
}
