//! The command-line edge: parse arguments, call `ops`, render results, choose the exit
//! code (0 ok, 1 error, 2 changes or drift where asked). `anyhow` is used only here.

mod args;
mod audit_cmd;
mod info;
mod outcome;
mod progress;
mod rollout_cmd;
mod spool;
mod state_cmd;

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Parser;

pub use args::Cli;
use args::{Command, ExecArgs, Format, FormatArgs, PlanArgs, RunArgs};

use crate::apply::{self, NoHook};
use crate::ops::{self, OpenState, Session};
use crate::plan::{self, show, Mode, Plan};
use crate::state::crypto::KeySource;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for errors.
pub const EXIT_ERROR: u8 = 1;
/// Exit code for "changes present" / "drift found".
pub const EXIT_CHANGES: u8 = 2;
/// Exit code of a run stopped by SIGINT or SIGTERM (128 + 2, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// How long read-only commands wait for a run holding the state.
const READ_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// When the process started, for the time a run spent before it executed.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Runs the command line and returns the process exit code.
pub fn main() -> u8 {
    STARTED.get_or_init(std::time::Instant::now);
    // Two TLS stacks link rustls with different crypto back-ends (aws-lc-rs for AWS, ACME
    // and DNS; ring through the Azure HTTP client): choose one for the whole process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // Terraform's spellings (`-out`, `-auto-approve`, `-target`) get a hint, not clap's
    // generic error.
    let argv: Vec<String> = std::env::args().collect();
    if let Some(hint) = argv.iter().skip(1).find_map(|a| terraform_spelling(a)) {
        eprintln!("error: {hint}");
        return EXIT_ERROR;
    }
    // Usage errors exit 1 like every other error: 2 means "changes" to CI scripts.
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_ERROR;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_ERROR
        }
    }
}

/// The hint for a flag spelt the Terraform way, if `arg` is one.
fn terraform_spelling(arg: &str) -> Option<String> {
    if !arg.starts_with('-') {
        return None;
    }
    let (flag, value) = match arg.split_once('=') {
        Some((f, v)) => (f, Some(v)),
        None => (arg, None),
    };
    let ours = match flag.trim_start_matches('-') {
        "target" => "--tenant",
        _ if flag.starts_with("--") => return None,
        "out" => "--out",
        "auto-approve" => "--auto-approve",
        "json" => "--json",
        "detailed-exitcode" => "--detailed-exitcode",
        "refresh" => "--refresh",
        "lock-timeout" => "--lock-timeout",
        "parallelism" => "--parallelism",
        "destroy" => "--destroy",
        "no-color" => "--no-color",
        _ => return None,
    };
    let with_value = value
        .map(|v| format!("{ours}={v}"))
        .unwrap_or_else(|| ours.to_string());
    Some(if flag.trim_start_matches('-') == "target" {
        format!("`{arg}` is Terraform's spelling: landlord selects tenants with `--tenant ID` (repeatable)")
    } else {
        format!("`{arg}` is Terraform's spelling: landlord takes `{with_value}`")
    })
}

fn color(cli_no_color: bool) -> bool {
    !cli_no_color && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Runs the command; the commands that change or check the fleet then write their
/// metrics and send their notifications.
async fn run(cli: Cli) -> Result<u8> {
    let watched = match &cli.command {
        Command::Plan { run, .. } => Some(("plan", &run.metrics_file)),
        Command::Apply { run, .. } => Some(("apply", &run.metrics_file)),
        Command::Destroy { run, .. } => Some(("destroy", &run.metrics_file)),
        Command::Drift { run, .. } => Some(("drift", &run.metrics_file)),
        // A resumed rollout is an apply, for metrics and notifications.
        Command::Rollout(args::RolloutCommand::Resume { metrics_file, .. }) => {
            Some(("apply", metrics_file))
        }
        _ => None,
    }
    .map(|(name, metrics)| outcome::begin(name, metrics.clone()));
    let dir = cli.dir.clone();
    let result = dispatch(cli).await;
    if let Some(w) = watched {
        w.finish(&dir, &result).await;
    }
    result
}

async fn dispatch(cli: Cli) -> Result<u8> {
    let dir = cli.dir.clone();
    match cli.command {
        Command::Validate => validate(&dir),
        Command::Fmt { check } => fmt_cmd(&dir, check),
        Command::Version => {
            println!("landlord {}", env!("CARGO_PKG_VERSION"));
            Ok(EXIT_OK)
        }
        Command::Show { plan_file, json } => show_cmd(&dir, &plan_file, json, color(cli.no_color)),
        Command::Plan {
            run,
            plan,
            format,
            out,
            detailed_exitcode,
            destroy,
        } => {
            let mode = if destroy { Mode::Destroy } else { Mode::Normal };
            plan_cmd(
                &dir,
                &run,
                &plan,
                mode,
                &format,
                out.as_deref(),
                detailed_exitcode,
                color(cli.no_color),
            )
            .await
        }
        Command::Apply {
            plan_file,
            run,
            plan,
            exec,
            json,
        } => {
            apply_cmd(
                &dir,
                plan_file.as_deref(),
                &run,
                &plan,
                &exec,
                json,
                color(cli.no_color),
            )
            .await
        }
        Command::Destroy { run, exec, all } => {
            destroy_cmd(&dir, &run, &exec, all, color(cli.no_color)).await
        }
        Command::Drift { run, format, junit } => {
            drift_cmd(&dir, &run, &format, junit.as_deref()).await
        }
        Command::State(c) => state_cmd::run(&dir, c).await,
        Command::Report(c) => report_cmd(&dir, c).await,
        Command::Output {
            address,
            attribute,
            json,
            show_sensitive,
        } => info::output(&dir, address, attribute, json, show_sensitive),
        Command::Graph { format, tenants } => info::graph(&dir, format, &tenants),
        Command::Tenants(args::TenantsCommand::List { json, shard }) => {
            info::tenants(&dir, json, shard)
        }
        Command::Audit(c) => audit_cmd::run(&dir, c),
        Command::Rollout(c) => rollout_cmd::run(&dir, c, color(cli.no_color)).await,
        Command::Adopt {
            addresses,
            tenants,
            id,
            lock_timeout,
        } => adopt_cmd(&dir, &addresses, tenants, id, lock_timeout).await,
    }
}

fn validate(dir: &Path) -> Result<u8> {
    let s = ops::open(dir)?;
    let d = ops::desired(&s)?;
    let active =
        s.ws.tenants
            .iter()
            .filter(|t| t.spec.status != crate::workspace::Status::Deleted)
            .count();
    println!(
        "The workspace is valid: {} tenants ({} not deleted), {} tiers, {} modules, {} resources.",
        s.ws.tenants.len(),
        active,
        s.ws.tiers.len(),
        s.ws.modules.len(),
        d.resources.len()
    );
    Ok(EXIT_OK)
}

/// Opens the state for a command, recording lock `scopes` (none for a command that only
/// reads), and announces a generated master key.
fn state_for(
    s: &Session,
    command: &str,
    run: &RunArgs,
    scopes: &[String],
) -> Result<OpenState, ops::OpsError> {
    let st = ops::open_state(&s.ws.root, &s.ws.config, command, scopes, run.lock_timeout)?;
    announce_key(&st);
    Ok(st)
}

/// Says where a master key was just generated, if one was.
fn announce_key(st: &OpenState) {
    match &st.key {
        KeySource::Generated(p) => eprintln!("Generated the master key file {} (mode 0600). Back it up: secrets in state cannot be read without it. Set LANDLORD_MASTER_KEY to use your own key.", p.display()),
        KeySource::Kms { file, key_id, generated: true } => eprintln!("Generated a master key under KMS key `{key_id}`, stored encrypted in {}: keep that file with the workspace (only KMS can decrypt it).", file.display()),
        _ => {}
    }
}

fn api_usage(s: &Session) -> show::ApiUsage {
    show::ApiUsage {
        api_calls: api_calls(s),
        api_budgets: s.registry.budgets(),
    }
}

fn api_calls(s: &Session) -> Vec<show::ApiCall> {
    s.registry
        .stats()
        .snapshot()
        .into_iter()
        .map(|((provider, operation), count)| show::ApiCall {
            provider,
            operation,
            count,
        })
        .collect()
}

fn print_stats(s: &Session, st: &OpenState) {
    print_state_stats(st);
    print_calls(s);
}

/// Records read and, for a shared backend, what went over the wire.
fn print_state_stats(st: &OpenState) {
    eprintln!("State records read: {}", st.store.records_read());
    if let Some((requests, bytes)) = st.store.traffic() {
        eprintln!("State requests: {requests}, bytes of state written: {bytes}");
    }
}

fn print_calls(s: &Session) {
    let calls = api_calls(s);
    eprintln!("API calls:");
    if calls.is_empty() {
        eprintln!("  none");
    }
    for c in calls {
        eprintln!("  {:<10} {:<28} {}", c.provider, c.operation, c.count);
    }
    let budgets = s.registry.budgets();
    if !budgets.is_empty() {
        eprintln!("API budgets:");
    }
    for b in budgets {
        eprintln!(
            "  {:<10} {:<28} {} calls at {}/s, {} throttled (lowest rate {:.2}/s), waited {:.1}s",
            b.provider,
            format!("{}/{}", b.account, b.service),
            b.calls,
            b.requests_per_second,
            b.throttled,
            b.lowest_rate,
            b.waited_seconds
        );
    }
}

#[allow(clippy::too_many_arguments)]
async fn plan_cmd(
    dir: &Path,
    run: &RunArgs,
    plan_args: &PlanArgs,
    mode: Mode,
    formats: &FormatArgs,
    out: Option<&Path>,
    detailed: bool,
    color: bool,
) -> Result<u8> {
    let format = formats.format();
    let (st, tenants, unchanged) =
        match open_selected(dir, "landlord plan", run, plan_args.changed)? {
            Some(sel) if sel.tenants.is_empty() => {
                let p = ops::changed::nothing_changed(&sel.st, mode, sel.unchanged)?;
                return finish_plan(
                    dir, None, &sel.st, &p, formats, out, detailed, color, run.stats,
                );
            }
            Some(sel) => (Some(sel.st), sel.tenants, sel.unchanged),
            None => (None, run.tenants.clone(), None),
        };
    let hook = progress::Progress::new(0, false, true);
    let opts = plan::Options {
        mode,
        refresh: plan_args.refresh,
        tenants,
        allow_bulk: plan_args.allow_bulk,
    };
    let mut st = st;
    let streams = matches!(format, Format::Text | Format::Json) && formats.markdown_out.is_none();
    if streams && out.is_none() && !plan_args.rollout() {
        // Written as it is made, batch by batch; when a batch cannot render on its own,
        // the whole workspace renders at once below and reports why.
        let s = ops::open_for(dir, &opts.tenants)?;
        let mut open = || state_for(&s, "landlord plan", run, &[]);
        let mut spool = spool::Spool::default();
        let mut written = 0;
        let mut touched = std::collections::BTreeSet::new();
        let batched =
            ops::batches::plan_in_batches(&s, &mut st, &mut open, &opts, &hook, &mut |changes| {
                touched.extend(changes.iter().map(|c| c.address.scope.as_str().to_string()));
                let done = match format {
                    Format::Json => show::write_json_changes(changes, written, &mut spool),
                    _ => show::write_changes(changes, color, &mut spool),
                };
                written += changes.len();
                done
            })
            .await?;
        if let (Some(mut b), Some(opened)) = (batched, &st) {
            b.plan.unchanged_tenants = unchanged;
            outcome::planned(&b.summary, touched);
            outcome::session(&s);
            let body = &mut *spool.into_reader()?;
            match format {
                Format::Json => show::write_json_batched(
                    &b.plan,
                    &b.summary,
                    &api_usage(&s),
                    body,
                    std::io::stdout().lock(),
                )?,
                _ => show::print_batched(&b.plan, &b.summary, body)?,
            }
            if run.stats {
                eprintln!("Tenant batches planned: {}", b.batches);
                print_state_stats(opened);
                print_calls(&s);
            }
            return Ok(if detailed && b.summary.has_changes() {
                EXIT_CHANGES
            } else {
                EXIT_OK
            });
        }
    }
    let (s, mut desired) = ops::session_for(dir, &opts.tenants)?;
    let st = match st {
        Some(st) => st,
        None => state_for(&s, "landlord plan", run, &[])?,
    };
    let mut p = ops::make_plan(&s, &st, &mut desired, &opts, &hook).await?;
    p.unchanged_tenants = unchanged;
    if plan_args.rollout() {
        p = with_waves(&s, &st, p, plan_args)?;
    }
    let code = finish_plan(
        dir,
        Some(&s),
        &st,
        &p,
        formats,
        out,
        detailed,
        color,
        run.stats,
    );
    // The process ends next: freeing a fleet's plan and desired graph value by value
    // would only cost time (the state is closed as usual when `st` drops).
    std::mem::forget(p);
    std::mem::forget(desired);
    code
}

/// Prints and saves a plan; the exit code of `plan`.
#[allow(clippy::too_many_arguments)]
fn finish_plan(
    dir: &Path,
    s: Option<&Session>,
    st: &OpenState,
    p: &Plan,
    formats: &FormatArgs,
    out: Option<&Path>,
    detailed: bool,
    color: bool,
    stats: bool,
) -> Result<u8> {
    let usage = s.map(api_usage).unwrap_or_default();
    outcome::planned(&p.summary(), outcome::touched(p));
    if let Some(s) = s {
        outcome::session(s);
    }
    match formats.format() {
        Format::Text => show::print_text(p, color)?,
        Format::Json => show::write_json(p, &usage, std::io::stdout().lock())?,
        Format::Markdown => print!("{}", show::markdown(p)),
    }
    if let Some(md) = &formats.markdown_out {
        write_markdown_parts(dir, md, &show::markdown_parts(p, formats.markdown_limit))?;
    }
    if let Some(out) = out {
        plan::file::save(p, &ops::out_path(dir, out), st.master())?;
        eprintln!(
            "Saved the plan to {}. Apply exactly this plan with: landlord apply {}",
            out.display(),
            out.display()
        );
    }
    if stats {
        print_state_stats(st);
        if let Some(s) = s {
            print_calls(s);
        }
    }
    Ok(if detailed && p.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}

/// The state and the tenants of a `--changed` or `--shard` run.
struct Selected {
    st: OpenState,
    tenants: Vec<String>,
    /// Tenants left out as unchanged (`--changed` only).
    unchanged: Option<usize>,
}

/// For `--changed` and `--shard`: the state, opened from `landlord.toml` alone, and the
/// tenants selected; `None` for a run without either.
fn open_selected(
    dir: &Path,
    command: &str,
    run: &RunArgs,
    changed: bool,
) -> Result<Option<Selected>> {
    if !changed && run.shard.is_none() {
        return Ok(None);
    }
    let config = crate::workspace::load_config(dir)?;
    let st = ops::open_state(dir, &config, command, &[], run.lock_timeout)?;
    announce_key(&st);
    let (tenants, unchanged) = match (changed, run.shard) {
        (true, shard) => {
            let mut c = ops::changed::changed_tenants(dir, &config, &st)?;
            if let Some(shard) = shard {
                c.tenants.retain(|t| shard.holds(t));
            }
            (c.tenants, Some(c.unchanged))
        }
        (false, Some(shard)) => (ops::shard::tenants(dir, &st, shard)?, None),
        (false, None) => return Ok(None),
    };
    Ok(Some(Selected {
        st,
        tenants,
        unchanged,
    }))
}

fn confirm(what: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("{what} needs approval: pass --auto-approve, or apply a saved plan file");
    }
    print!("\nDo you want to perform these actions? Only 'yes' will be accepted: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("{what} cancelled");
    }
    Ok(())
}

fn exec_options(exec: &ExecArgs) -> apply::Options {
    apply::Options {
        parallelism: exec.parallelism as usize,
        retry: apply::RetryPolicy {
            timeout: exec.timeout,
            ..apply::RetryPolicy::default()
        },
        rollback_on_failure: exec.rollback_on_failure,
        stop: None,
    }
}

/// Watches for SIGINT and SIGTERM during an apply: the first stops new calls (those in
/// flight finish, each within `timeout`, and their outcomes are recorded); the second
/// exits at once, which the write-ahead intents make safe.
fn on_interrupt(
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    timeout: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        eprintln!(
            "\nInterrupted: no new calls start; waiting for the calls in flight (each at most {}s). Interrupt again to stop at once: the next run reconciles what was under way.",
            timeout.as_secs()
        );
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("Stopped at once: the next run reconciles the calls that were in flight.");
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    })
}

/// Executes `p`, prints the outcome, returns the exit code.
async fn execute(
    s: &Session,
    st: &OpenState,
    p: &Plan,
    command: &str,
    exec: &ExecArgs,
    json: bool,
    stats: bool,
) -> Result<u8> {
    let tty = std::io::stdout().is_terminal();
    let hook = progress::Progress::new(p.changes.len(), tty, json);
    let mut opts = exec_options(exec);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    opts.stop = Some(stop.clone());
    let signals = on_interrupt(stop, exec.timeout);
    let planning = STARTED.get().map_or(0.0, |t| t.elapsed().as_secs_f64());
    let timed = apply::timing::Timed::new(&hook);
    let report = ops::run_plan(s, st, p, command, &opts, &timed).await;
    signals.abort();
    let report = report?;
    hook.finish();
    outcome::applied(&report, outcome::touched(p));
    outcome::session(s);
    if let Some(i) = report.interrupted {
        eprintln!(
            "interrupted: {} done, {} not started, {} in flight reconciled next run",
            i.done, i.not_started, i.unresolved
        );
        return Ok(EXIT_INTERRUPTED);
    }
    if json {
        let failed: Vec<serde_json::Value> = report
            .failed
            .iter()
            .map(|(a, m)| serde_json::json!({"address": a.to_string(), "error": m}))
            .collect();
        let doc = serde_json::json!({
            "format_version": plan::PLAN_FORMAT_VERSION,
            "kind": "apply",
            "created": report.created, "updated": report.updated, "replaced": report.replaced, "deleted": report.deleted,
            "failed": failed,
            "skipped": report.skipped.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "rolled_back": report.rolled_back.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "deferred": p.deferred,
            "api_calls": api_calls(s),
            "api_budgets": s.registry.budgets(),
            "timings": {
                "plan_seconds": (planning * 1000.0).round() / 1000.0,
                "apply_seconds": (timed.elapsed() * 1000.0).round() / 1000.0,
                "tenants": timed.tenants(),
            },
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if report.failed.is_empty() && command == "landlord destroy" {
        println!(
            "\nDestroy complete! Resources: {} destroyed.",
            report.deleted
        );
    } else if report.failed.is_empty() {
        println!(
            "\nApply complete! Resources: {} added, {} changed, {} replaced, {} destroyed.",
            report.created, report.updated, report.replaced, report.deleted
        );
    } else {
        println!("\nApply failed: {}.", report.summary());
        for (a, m) in &report.failed {
            println!("  {a}: {m}");
        }
    }
    if !json {
        for l in show::deferred_lines(p) {
            println!("{l}");
        }
    }
    if stats {
        print_stats(s, st);
    }
    Ok(if report.failed.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

async fn apply_cmd(
    dir: &Path,
    plan_file: Option<&Path>,
    run: &RunArgs,
    plan_args: &PlanArgs,
    exec: &ExecArgs,
    json: bool,
    color: bool,
) -> Result<u8> {
    // A saved plan is verified before anything else; the workspace is then read as the
    // plan read it (only its tenants when it was limited to some).
    let saved = match plan_file {
        Some(f) => {
            let config = crate::workspace::load_config(dir)?;
            Some(ops::read_saved_plan(dir, &config, &ops::out_path(dir, f))?)
        }
        None => None,
    };
    // A `--changed` plan in which nothing changed read no workspace file to check
    // freshness against: it does nothing, whatever changed since.
    if saved
        .as_ref()
        .is_some_and(|p| !p.has_changes() && p.input_hash.is_empty())
    {
        println!("No changes in the saved plan: nothing to apply.");
        return Ok(EXIT_OK);
    }
    let selected = match saved {
        Some(_) => None,
        None => open_selected(dir, "landlord apply", run, plan_args.changed)?,
    };
    let (early, run_tenants, unchanged) = match selected {
        Some(sel) if sel.tenants.is_empty() => {
            match sel.unchanged {
                Some(n) => {
                    println!("No changes. {n} tenants are unchanged since their last apply.")
                }
                None => println!("No changes: this shard holds no tenant."),
            }
            return Ok(EXIT_OK);
        }
        Some(sel) => (Some(sel.st), sel.tenants, sel.unchanged),
        None => (None, run.tenants.clone(), None),
    };
    let tenants = saved
        .as_ref()
        .map_or(run_tenants.clone(), |p| p.tenants.clone());
    let (s, mut desired) = ops::session_for(dir, &tenants)?;
    // On the embedded backend a saved plan is checked against state before this run
    // records its lock scopes, so a refused plan leaves state as it was; a saved plan
    // locks the tenants it was made for.
    let scopes = ops::scopes(&tenants);
    let mut st = match early {
        Some(mut st) => {
            st.lock_scopes(&scopes, "landlord apply")?;
            st
        }
        None if saved.is_some() => state_for(&s, "landlord apply", run, &[])?,
        None => state_for(&s, "landlord apply", run, &scopes)?,
    };
    let hook = progress::Progress::new(0, false, json);
    let p = match saved {
        Some(mut p) => {
            // On a shared backend a run reconciles only the tenants it holds, so it takes
            // them first (their lock records go with the run).
            if !st.store.exclusive() {
                st.lock_scopes(&scopes, "landlord apply")?;
            }
            ops::check_saved_plan(&s, &st, &p, &hook).await?;
            // Orders over a CA limit are judged against the issuance history now (a
            // fresh plan was judged as it was made).
            ops::ca_limits::refresh(&mut p, &s.registry, &st)?;
            if !json {
                show::print_text(&p, color)?;
            }
            ops::check_guard(&p, plan_args.allow_bulk)?;
            st.lock_scopes(&scopes, "landlord apply")?;
            p
        }
        None => {
            let opts = plan::Options {
                mode: Mode::Normal,
                refresh: plan_args.refresh,
                tenants: run_tenants,
                allow_bulk: plan_args.allow_bulk,
            };
            let mut p = ops::make_plan(&s, &st, &mut desired, &opts, &hook).await?;
            p.unchanged_tenants = unchanged;
            if plan_args.rollout() {
                p = with_waves(&s, &st, p, plan_args)?;
            }
            if !json {
                show::print_text(&p, color)?;
            }
            ops::check_guard(&p, plan_args.allow_bulk)?;
            if p.has_changes() && !exec.auto_approve {
                confirm("apply")?;
            }
            p
        }
    };
    if !p.has_changes() {
        // Converged: the inputs of the planned tenants are what they are made of now.
        ops::changed::record_inputs(&s, &st, &p, None)?;
        if json {
            show::write_json(&p, &api_usage(&s), std::io::stdout().lock())?;
        }
        return Ok(EXIT_OK);
    }
    // Tenants whose certificate orders a CA would refuse wait for a later run.
    let p = p.without_deferred();
    if !p.waves.is_empty() {
        return rollout_cmd::execute(&s, &st, &p, None, exec, json, run.stats).await;
    }
    execute(&s, &st, &p, "landlord apply", exec, json, run.stats).await
}

/// Adds the rollout waves to a plan; refuses a rollout without configured waves.
fn with_waves(s: &Session, st: &OpenState, p: Plan, args: &PlanArgs) -> Result<Plan> {
    let config = ops::rollout::config(s, args.rollout_config.as_deref())?;
    if config.waves.is_empty() {
        bail!("--rollout needs waves: add `[[rollout.waves]]` tables to landlord.toml (see README, \"Rollouts\") or pass --rollout-config FILE");
    }
    Ok(ops::rollout::with_waves(s, st, p, &config)?)
}

/// `landlord fmt`: tenant files, tiers and `shared.yaml` in canonical form.
fn fmt_cmd(dir: &Path, check: bool) -> Result<u8> {
    let mut files = vec![];
    for (sub, exts) in [("tenants", &["yaml", "yml"][..]), ("plans", &["yaml"][..])] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| exts.iter().any(|e| x == *e)) {
                    files.push(p);
                }
            }
        }
    }
    if dir.join("shared.yaml").exists() {
        files.push(dir.join("shared.yaml"));
    }
    files.sort();
    let (mut changed, mut refused) = (0, 0);
    for path in &files {
        let shown = path.strip_prefix(dir).unwrap_or(path).display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {shown}"))?;
        match crate::workspace::format::canonical(&text) {
            None => {
                eprintln!("{shown}: not formatted: it is not valid YAML, or its layout cannot be rewritten without changing its meaning");
                refused += 1;
            }
            Some(out) if out != text => {
                changed += 1;
                if check {
                    println!("{shown}: not in canonical form");
                } else {
                    let tmp = path.with_extension("landlord-fmt");
                    std::fs::write(&tmp, &out)
                        .and_then(|_| std::fs::rename(&tmp, path))
                        .with_context(|| format!("cannot write {shown}"))?;
                    println!("{shown}");
                }
            }
            Some(_) => {}
        }
    }
    Ok(if refused > 0 {
        EXIT_ERROR
    } else if check && changed > 0 {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}

/// `landlord show PLANFILE`: a saved plan, verified, as text or JSON; touches no state.
fn show_cmd(dir: &Path, plan_file: &Path, json: bool, color: bool) -> Result<u8> {
    let config = crate::workspace::load_config(dir)?;
    let root = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let p = ops::read_saved_plan(&root, &config, &ops::out_path(dir, plan_file))?;
    if json {
        show::write_json(&p, &show::ApiUsage::default(), std::io::stdout().lock())?;
    } else {
        show::print_text(&p, color)?;
    }
    Ok(EXIT_OK)
}

async fn destroy_cmd(
    dir: &Path,
    run: &RunArgs,
    exec: &ExecArgs,
    all: bool,
    color: bool,
) -> Result<u8> {
    if run.tenants.is_empty() && run.shard.is_none() && !all {
        bail!("say what to destroy: --tenant ID (repeatable), --shard K/N or --all");
    }
    let (early, tenants) = match open_selected(dir, "landlord destroy", run, false)? {
        Some(sel) if sel.tenants.is_empty() => {
            println!("Nothing to destroy: this shard holds no tenant.");
            return Ok(EXIT_OK);
        }
        Some(sel) => (Some(sel.st), sel.tenants),
        None => (None, run.tenants.clone()),
    };
    let (s, mut desired) = ops::session_for(dir, &tenants)?;
    let st = match early {
        Some(mut st) => {
            st.lock_scopes(&ops::scopes(&tenants), "landlord destroy")?;
            st
        }
        None => state_for(&s, "landlord destroy", run, &ops::scopes(&tenants))?,
    };
    let opts = plan::Options {
        mode: Mode::Destroy,
        refresh: false,
        tenants: tenants.clone(),
        allow_bulk: false,
    };
    let p = ops::make_plan(&s, &st, &mut desired, &opts, &NoHook).await?;
    show::print_text(&p, color)?;
    if !p.has_changes() {
        return Ok(EXIT_OK);
    }
    if !exec.auto_approve {
        confirm("destroy")?;
    }
    execute(&s, &st, &p, "landlord destroy", exec, false, run.stats).await
}

async fn adopt_cmd(
    dir: &Path,
    addresses: &[String],
    tenants: Vec<String>,
    id: Option<String>,
    lock_timeout: std::time::Duration,
) -> Result<u8> {
    use crate::ops::Adoption;
    let targets = addresses
        .iter()
        .map(|a| a.parse::<crate::addr::ResourceAddr>())
        .collect::<Result<Vec<_>, _>>()?;
    if targets.is_empty() && tenants.is_empty() {
        bail!("name resource addresses or --tenant");
    }
    if id.is_some() && (targets.len() != 1 || !tenants.is_empty()) {
        bail!("--id goes with exactly one address");
    }
    let s = ops::open(dir)?;
    let mut scopes: Vec<String> = targets
        .iter()
        .map(|a| a.scope.as_str().to_string())
        .chain(tenants.iter().cloned())
        .collect();
    scopes.sort();
    scopes.dedup();
    let run = RunArgs {
        tenants: scopes,
        shard: None,
        lock_timeout,
        stats: false,
        metrics_file: None,
    };
    let st = state_for(&s, "landlord adopt", &run, &ops::scopes(&run.tenants))?;
    let results = ops::adopt(&s, &st, &targets, &tenants, id).await?;
    let (mut adopted, mut missing, mut failed) = (0, 0, false);
    for (addr, outcome) in &results {
        let named = targets.contains(addr);
        match outcome {
            Adoption::Adopted(r) => {
                adopted += 1;
                println!("adopted  {addr} (id `{}`)", r.id);
            }
            Adoption::Missing => {
                missing += 1;
                if named {
                    failed = true;
                    eprintln!(
                        "error: no object for `{addr}` exists (looked up by its configuration)"
                    );
                } else {
                    println!("missing  {addr}: apply will create it");
                }
            }
            Adoption::Recorded if named => {
                failed = true;
                eprintln!("error: `{addr}` is already in state");
            }
            Adoption::Recorded => {}
            Adoption::Unreadable(why) => {
                failed |= named;
                eprintln!("cannot adopt {addr}: {why}");
            }
        }
    }
    println!(
        "Adopted {adopted}; {missing} to be created by apply. Run `landlord plan` to see where adopted objects differ from the templates."
    );
    Ok(if failed { EXIT_ERROR } else { EXIT_OK })
}

/// Writes markdown parts to `first` and its numbered siblings, and says where.
fn write_markdown_parts(dir: &Path, first: &Path, parts: &[String]) -> Result<()> {
    let path = ops::out_path(dir, first);
    let written = show::comment::write_parts(&path, parts)
        .with_context(|| format!("cannot write the markdown to {}", path.display()))?;
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    eprintln!(
        "Wrote the markdown in {} part{}: {}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    );
    Ok(())
}

/// The markdown parts written by `--markdown-out FILE`.
fn read_markdown_parts(dir: &Path, file: &Path) -> Result<Vec<String>> {
    let first = ops::out_path(dir, file);
    show::comment::read_parts(&first)
        .with_context(|| format!("cannot read the markdown in {}", first.display()))
}

async fn report_cmd(dir: &Path, c: args::ReportCommand) -> Result<u8> {
    use crate::report::github;
    let said = match c {
        args::ReportCommand::GithubComment {
            file,
            pr,
            repo,
            marker,
            dry_run,
        } => {
            let parts = read_markdown_parts(dir, &file)?;
            let pr = match pr {
                Some(n) => n,
                None => github::pr_from_event()?,
            };
            let gh = github::GitHub::from_env(repo.as_deref())?;
            let thread = github::PullRequest {
                gh: &gh,
                number: pr,
            };
            crate::report::comments::sync(&thread, &parts, &marker, dry_run).await?
        }
        args::ReportCommand::GitlabNote {
            file,
            mr,
            project,
            marker,
            dry_run,
        } => {
            let parts = read_markdown_parts(dir, &file)?;
            let thread = crate::report::gitlab::MergeRequest::from_env(project.as_deref(), mr)?;
            crate::report::comments::sync(&thread, &parts, &marker, dry_run).await?
        }
        args::ReportCommand::GithubIssues {
            file,
            repo,
            label,
            max_new,
            dry_run,
        } => {
            let report = github::read_drift(&ops::out_path(dir, &file))?;
            let gh = github::GitHub::from_env(repo.as_deref())?;
            github::sync_issues(&gh, &report, &label, max_new, dry_run).await?
        }
    };
    if said.is_empty() {
        println!("Nothing to do.");
    }
    for l in said {
        println!("{l}");
    }
    Ok(EXIT_OK)
}

async fn drift_cmd(
    dir: &Path,
    run: &RunArgs,
    formats: &FormatArgs,
    junit: Option<&Path>,
) -> Result<u8> {
    let format = formats.format();
    let (early, tenants) = match open_selected(dir, "landlord drift", run, false)? {
        Some(sel) => (Some(sel.st), sel.tenants),
        None => (None, run.tenants.clone()),
    };
    if early.is_some() && tenants.is_empty() {
        println!("No drift: this shard holds no tenant.");
        return Ok(EXIT_OK);
    }
    let s = ops::open_for(dir, &tenants)?;
    let st = match early {
        Some(st) => st,
        None => state_for(&s, "landlord drift", run, &[])?,
    };
    let hook = progress::Progress::new(0, false, true);
    let report = ops::drift(&s, &st, &tenants, &hook)
        .await
        .context("drift check failed")?;
    outcome::drifted(&report);
    outcome::session(&s);
    match format {
        Format::Text => print!("{}", crate::plan::drift::text(&report)),
        Format::Json => {
            let mut doc = crate::plan::drift::json(&report);
            doc["api_calls"] = serde_json::to_value(api_calls(&s))?;
            doc["api_budgets"] = serde_json::to_value(s.registry.budgets())?;
            println!("{}", serde_json::to_string_pretty(&doc)?)
        }
        Format::Markdown => print!("{}", crate::plan::drift::markdown(&report)),
    }
    if let Some(md) = &formats.markdown_out {
        let parts = crate::plan::drift::document(&report).parts(formats.markdown_limit);
        write_markdown_parts(dir, md, &parts)?;
    }
    if let Some(path) = junit {
        let path = ops::out_path(dir, path);
        std::fs::write(&path, crate::plan::drift::junit(&report))
            .with_context(|| format!("cannot write the JUnit report to {}", path.display()))?;
    }
    if run.stats {
        print_stats(&s, &st);
    }
    Ok(if report.has_drift() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}
