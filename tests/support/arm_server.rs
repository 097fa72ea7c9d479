//! The ARM contract server of the test suite as a program, so the Azure example runs
//! without an Azure subscription (`scripts/run-azure-example`). It prints its endpoint
//! and its DNS address, one per line, then serves until it is stopped.
//!
//! Usage: `arm-contract-server [BLOB_ENDPOINT_TEMPLATE]`, where the template names the
//! storage accounts' blob endpoint with `{name}` for the account (Azurite's:
//! `http://127.0.0.1:10000/{name}/`).

use std::io::Write;

#[allow(dead_code)]
#[path = "arm.rs"]
mod arm;
#[allow(dead_code)]
#[path = "http.rs"]
mod http;

fn main() {
    let server = arm::Arm::start();
    if let Some(template) = std::env::args().nth(1) {
        server.blob_endpoint(&template);
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", server.endpoint);
    let _ = writeln!(out, "{}", server.dns_addr());
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::park();
    }
}
