//! Route 53 under its API budget: applies N single-record tenants (the AWS example's
//! `aws/subdomain-record`) against moto with the default budget (5 requests per second
//! per account), reports the Route 53 calls landlord made and the time they waited, and
//! projects the wall time of creating 10,000 records: calls × 1/rate. Terraform's AWS
//! provider makes one ChangeResourceRecordSets per record, then polls GetChange until
//! the change is INSYNC and reads the record back: three calls per record at the least.
//!
//! Run: `cargo bench --bench route53_budget -- 2000` (default: 1000).

#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use support::moto;

use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let moto = moto::Moto::start();
    let ws = support::records_workspace(moto.env(), n);
    let started = Instant::now();
    let out = ws
        .cmd(&["apply", "--auto-approve", "--json"])
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
