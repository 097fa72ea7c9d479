//! `landlord state ...`: list, show, rm, mv, unlock, export, import, history.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::args::{MigrateTarget, StateCommand};
use super::EXIT_OK;
use crate::addr::ResourceAddr;
use crate::ops;

fn addr(s: &str) -> Result<ResourceAddr> {
    Ok(s.parse::<ResourceAddr>()?)
}

/// `state migrate`: the target `[state]` from the flags, then the copy.
fn migrate(dir: &Path, t: MigrateTarget, lock_timeout: Duration) -> Result<u8> {
    let MigrateTarget {
        to,
        path,
        bucket,
        key,
        region,
        url_env,
        server,
        database,
        schema,
    } = t;
    let config = crate::workspace::load_config(dir)?;
    let mut target = config.state.clone();
    target.url_env = None;
    target.server = None;
    target.database = None;
    target.schema = None;
    match to.as_str() {
        "sled" => {
            target.backend = to;
            target.path = path.ok_or_else(|| anyhow::anyhow!("--to sled needs --path DIR"))?;
            target.bucket = None;
            target.key = None;
        }
        "s3" => {
            target.backend = to;
            target.bucket = Some(bucket.ok_or_else(|| anyhow::anyhow!("--to s3 needs --bucket"))?);
            target.key = key;
            target.region = region.or(target.region);
        }
        "postgres" => {
            if url_env.is_some() == server.is_some() {
                anyhow::bail!(
                    "--to postgres needs --url-env VAR or --server NAME (with --database)"
                );
            }
            target.backend = to;
            target.url_env = url_env;
            target.server = server;
            target.database = database;
            target.schema = schema;
        }
        other => anyhow::bail!("unknown backend `{other}`: expected `sled`, `s3` or `postgres`"),
    }
    let m = ops::state::migrate(dir, &config, target, lock_timeout)?;
    println!(
        "Copied {} resources, {} pending intents, {} audit events and {} runs of history to {}; its audit chains verify and it exports exactly as the source. The source is unchanged: point [state] in landlord.toml at the new backend to use it.",
        m.resources, m.intents, m.audit, m.history, m.target
    );
    Ok(EXIT_OK)
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
        StateCommand::Migrate { .. } => "landlord state migrate",
    };
    if let StateCommand::Migrate {
        target,
        lock_timeout,
    } = cmd
    {
        return migrate(dir, target, lock_timeout);
    }
    let mut st = ops::open_state_only(dir, name, Duration::from_secs(10))?;
    // Edits lock the tenants they touch, as an apply does (the shared backends let runs
    // on other tenants go on).
    let edited: Vec<ResourceAddr> = match &cmd {
        StateCommand::Rm { addresses } => {
            addresses.iter().map(|a| addr(a)).collect::<Result<_>>()?
        }
        StateCommand::Mv { from, to } => vec![addr(from)?, addr(to)?],
        _ => vec![],
    };
    let touched: Vec<String> = match &cmd {
        StateCommand::Import { .. } => vec!["workspace".into()],
        _ => edited.iter().map(|a| a.scope.to_string()).collect(),
    };
    st.lock_scopes(&touched, name)?;
    let store = st.store.as_ref();
    match cmd {
        StateCommand::List { tenants } => {
            let (addrs, pending) = ops::state::list(store, &tenants)?;
            for a in addrs {
                println!("{a}");
            }
            if pending > 0 {
                eprintln!("{pending} operations of an interrupted run are pending; the next plan or apply reconciles them.");
            }
        }
        StateCommand::Show { address } => {
            let r = ops::state::show(store, &addr(&address)?)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        StateCommand::Rm { .. } => {
            ops::state::rm(store, &edited)?;
            for a in edited {
                println!("Removed {a} from state; the real object was not touched.");
            }
        }
        StateCommand::Mv { .. } => {
            let [from, to] = &edited[..] else {
                anyhow::bail!("`state mv` takes two addresses");
            };
            ops::state::mv(store, from, to)?;
            println!("Moved {from} to {to}.");
        }
        StateCommand::Unlock { tenant } => {
            let removed = ops::state::unlock(store, tenant.as_deref())?;
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
            let ex = ops::state::import(store, &text, &file.display().to_string())?;
            println!(
                "Imported {} resources at serial {}.",
                ex.resources.len(),
                ex.serial
            );
        }
        // Opens both states itself, before the one above (see the start of `run`).
        StateCommand::Migrate { .. } => {}
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
                if !h.tenants.is_empty() {
                    let shown = h.tenants.iter().take(8).cloned().collect::<Vec<_>>();
                    let more = h.tenants.len() - shown.len();
                    let more = if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    };
                    println!("    tenants: {}{more}", shown.join(", "));
                }
            }
        }
    }
    Ok(EXIT_OK)
}
