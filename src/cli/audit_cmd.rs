//! `landlord audit ...`: print the audit chains, verify them against state.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::args::AuditCommand;
use super::{EXIT_ERROR, EXIT_OK};
use crate::ops;
use crate::state::audit;

/// Runs one audit command.
pub fn run(dir: &Path, cmd: AuditCommand) -> Result<u8> {
    let name = match &cmd {
        AuditCommand::Log { .. } => "landlord audit log",
        AuditCommand::Verify => "landlord audit verify",
    };
    let st = ops::open_state_only(dir, name, Duration::from_secs(10))?;
    match cmd {
        AuditCommand::Log { tenants, json } => {
            let mut events = st.store.audit()?;
            events.retain(|e| tenants.is_empty() || tenants.contains(&e.tenant));
            events.sort_by(|a, b| (a.serial, &a.tenant, a.seq).cmp(&(b.serial, &b.tenant, b.seq)));
            for e in events {
                if json {
                    println!("{}", serde_json::to_string(&e)?);
                } else {
                    let action = serde_json::to_value(e.action)?;
                    println!(
                        "{}  serial {:<5} {:<13} {}  by {}",
                        e.time,
                        e.serial,
                        action.as_str().unwrap_or_default(),
                        e.address,
                        e.actor
                    );
                }
            }
            Ok(EXIT_OK)
        }
        AuditCommand::Verify => {
            // One read of the chains and of the records serves the check and the summary.
            let (events, records) = (st.store.audit()?, st.store.resources()?);
            let problems = audit::verify(&events, &records, |r| st.store.digest(r));
            if problems.is_empty() {
                let mut tenants: Vec<&str> = events.iter().map(|e| e.tenant.as_str()).collect();
                tenants.dedup();
                println!(
                    "Audit chains intact: {} events of {} tenants; all {} recorded resources match their last event.",
                    events.len(),
                    tenants.len(),
                    records.len()
                );
                return Ok(EXIT_OK);
            }
            for p in &problems {
                eprintln!("audit: {p}");
            }
            eprintln!(
                "error: the audit check failed ({} problems): state or its audit chain was changed outside landlord",
                problems.len()
            );
            Ok(EXIT_ERROR)
        }
    }
}
