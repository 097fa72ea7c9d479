//! `landlord state ...`: list, show, rm, mv, unlock, export, import, history.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::args::StateCommand;
use super::EXIT_OK;
use crate::addr::ResourceAddr;
use crate::ops;
use crate::state::Export;
use crate::value::SENSITIVE_TEXT;

fn addr(s: &str) -> Result<ResourceAddr> {
    Ok(s.parse::<ResourceAddr>()?)
}

/// Runs one state command.
pub async fn run(dir: &Path, cmd: StateCommand) -> Result<u8> {
    let name = match &cmd {
        StateCommand::List { .. } => "landlord state list",
        StateCommand::Show { .. } => "landlord state show",
        StateCommand::Rm { .. } => "landlord state rm",
        StateCommand::Mv { .. } => "landlord state mv",
        StateCommand::Unlock { .. } => "landlord state unlock",
        StateCommand::Export { .. } => "landlord state export",
        StateCommand::Import { .. } => "landlord state import",
        StateCommand::History => "landlord state history",
    };
    if let StateCommand::Unlock { tenant: None } = &cmd {
        // A shared backend's state lock may be held by a run on another machine that is gone.
        if let Some(held) = ops::break_state_lock(dir)? {
            println!("Removed the state lock held by {held}.");
        }
    }
    let st = ops::open_state_only(dir, name, Duration::from_secs(10))?;
    let store = st.store.as_ref();
    match cmd {
        StateCommand::List { tenants } => {
            for r in store.resources()? {
                if tenants.is_empty() || tenants.iter().any(|t| t == r.address.scope.as_str()) {
                    println!("{}", r.address);
                }
            }
            let pending = store.intents()?;
            if !pending.is_empty() {
                eprintln!("{} operations of an interrupted run are pending; the next plan or apply reconciles them.", pending.len());
            }
        }
        StateCommand::Show { address } => {
            let a = addr(&address)?;
            let Some(mut r) = store.resource(&a)? else {
                bail!("`{a}` is not in state")
            };
            for k in &r.sensitive {
                if let Some(v) = r.attributes.get_mut(k) {
                    *v = Value::String(SENSITIVE_TEXT.into());
                }
            }
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        StateCommand::Rm { addresses } => {
            for a in addresses {
                let a = addr(&a)?;
                if store.resource(&a)?.is_none() {
                    bail!("`{a}` is not in state");
                }
                store.forget(&a)?;
                println!("Removed {a} from state; the real object was not touched.");
            }
        }
        StateCommand::Mv { from, to } => {
            let (from, to) = (addr(&from)?, addr(&to)?);
            if from.rtype != to.rtype {
                bail!("cannot move `{from}` to `{to}`: the resource type must stay the same");
            }
            if store.resource(&to)?.is_some() {
                bail!("`{to}` is already in state");
            }
            let Some(mut r) = store.resource(&from)? else {
                bail!("`{from}` is not in state")
            };
            r.address = to.clone();
            store.put(r)?;
            store.forget(&from)?;
            println!("Moved {from} to {to}.");
        }
        StateCommand::Unlock { tenant } => {
            let removed = store.force_unlock(tenant.as_deref())?;
            for l in &removed {
                println!("Removed the lock on `{}` held by {l}.", l.scope);
            }
            if removed.is_empty() {
                println!("No locks were held.");
            }
        }
        StateCommand::Export { out } => {
            let text = serde_json::to_string_pretty(&store.export()?)? + "\n";
            match out {
                Some(p) => std::fs::write(&p, text)
                    .with_context(|| format!("cannot write `{}`", p.display()))?,
                None => print!("{text}"),
            }
        }
        StateCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read `{}`", file.display()))?;
            let ex: Export = serde_json::from_str(&text)
                .with_context(|| format!("`{}` is not a landlord state export", file.display()))?;
            store.import(&ex)?;
            println!(
                "Imported {} resources at serial {}.",
                ex.resources.len(),
                ex.serial
            );
        }
        StateCommand::History => {
            for h in store.history()? {
                println!(
                    "{}  {}@{}  {}  serial {} -> {}  {}",
                    h.started,
                    h.user,
                    h.host,
                    h.command,
                    h.serial_before,
                    h.serial_after,
                    h.summary
                );
            }
        }
    }
    Ok(EXIT_OK)
}
