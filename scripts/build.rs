//! Rebuilds the binary when the embedded module and tier library changes.

fn main() {
    println!("cargo:rerun-if-changed=modules");
    println!("cargo:rerun-if-changed=plans");
}
