//! landlord against Terraform core on the same number of resources: Terraform's fastest
//! form, one `terraform_data` resource with `count` (no provider, nothing to refresh),
//! against landlord's 5-resource tenants of `plan_scale` (plus a few shared resources to match the
//! count), both planning creates on empty state. Runs alternate, landlord then
//! Terraform, so a drift in the machine's speed hits both; the ratio is taken pair by
//! pair and the median reported.
//!
//! Run: `cargo bench --bench terraform_count -- 2003 7001` (needs `terraform` on PATH,
//! or TERRAFORM=/path/to/terraform; default sizes 2003 and 7001, 7 pairs each).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "support/five.rs"]
mod five;

fn write(dir: &Path, p: &str, text: &str) {
    let path = dir.join(p);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A landlord workspace of exactly `n` resources: `n / 5` tenants of five, and the rest
/// as shared `random_id`s.
fn landlord_workspace(dir: &Path, n: usize) {
    five::generate(dir, n / 5);
    let rest = n % 5;
    if rest > 0 {
        write(
            dir,
            "modules/bench/shared/module.yaml",
            "description: shared ids\n",
        );
        let ids: String = (0..rest)
            .map(|i| {
                format!(
                    "- type: random_id\n  name: shared{i}\n  properties: {{ byte_length: 4 }}\n"
                )
            })
            .collect();
        write(dir, "modules/bench/shared/shared.yaml.tera", &ids);
        write(dir, "shared.yaml", "modules:\n  - use: bench/shared\n");
    }
}

/// A Terraform configuration of exactly `n` `terraform_data` instances.
fn terraform_config(dir: &Path, n: usize) {
    write(
        dir,
        "main.tf",
        &format!(
            "resource \"terraform_data\" \"r\" {{\n  count = {n}\n  input = \"tenant-${{count.index}}\"\n}}\n"
        ),
    );
}

fn time(mut c: Command) -> f64 {
    let start = Instant::now();
    let status = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the command runs");
    assert!(status.success(), "{c:?} failed");
    start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![2003, 7001]
    } else {
        sizes
    };
    let terraform = std::env::var("TERRAFORM").unwrap_or_else(|_| "terraform".into());
    println!(
        "{:>9}  {:>14}  {:>15}  {:>16}",
        "resources", "landlord plan", "terraform plan", "ratio (median)"
    );
    for n in sizes {
        let ll = tempfile::tempdir().unwrap();
        let tf = tempfile::tempdir().unwrap();
        landlord_workspace(ll.path(), n);
        terraform_config(tf.path(), n);
        let mut init = Command::new(&terraform);
        init.current_dir(tf.path()).args(["init", "-input=false"]);
        time(init);
        let landlord = || {
            let mut c = Command::new(env!("CARGO_BIN_EXE_landlord"));
            c.arg("-C")
                .arg(ll.path())
                .args(["plan", "--refresh=false"])
                .env(
                    "LANDLORD_MASTER_KEY",
                    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
                );
            c
        };
        let terraform_plan = || {
            let mut c = Command::new(&terraform);
            c.current_dir(tf.path()).args([
                "plan",
                "-input=false",
                "-refresh=false",
                "-lock=false",
            ]);
            c
        };
        // A warm-up of each, then pairs.
        time(landlord());
        time(terraform_plan());
        let (mut a, mut b, mut r) = (vec![], vec![], vec![]);
        for _ in 0..7 {
            let x = time(landlord());
            let y = time(terraform_plan());
            a.push(x);
            b.push(y);
            r.push(y / x);
        }
        println!(
            "{n:>9}  {:>12.3} s  {:>13.3} s  {:>15.1}×",
            median(a),
            median(b),
            median(r)
        );
    }
}
