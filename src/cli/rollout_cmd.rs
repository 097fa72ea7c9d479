//! `apply --rollout` and `landlord rollout status|resume|abort`: waves with a progress
//! bar and ETA each on a terminal, one line per resource otherwise.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Result;

use super::args::{ExecArgs, RolloutCommand};
use super::{exec_options, on_interrupt, print_stats, progress};
use super::{EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK};
use crate::apply::{self, Hook};
use crate::ops::rollout::{self, Ending, Rollout, RolloutHook, WaveRecord};
use crate::ops::{self, OpenState, Session};
use crate::plan::{self, show, Mode, Plan};

/// Prints wave headers and results; each wave gets its own progress.
struct Waves {
    tty: bool,
    json: bool,
}

impl Waves {
    fn say(&self, line: String) {
        if self.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

impl RolloutHook for Waves {
    fn wave_started(
        &self,
        index: usize,
        total: usize,
        wave: &WaveRecord,
        tenants: usize,
        changes: usize,
    ) -> Box<dyn Hook> {
        self.say(format!(
            "\nWave {}/{total} `{}`: {tenants} tenants with changes, {changes} changes, failure budget {}",
            index + 1,
            wave.name,
            wave.allowed_failures()
        ));
        Box::new(progress::Progress::new(changes, self.tty, self.json))
    }

    fn wave_finished(&self, wave: &WaveRecord, report: &apply::Report, applied: &[String]) {
        let touched = applied.iter().chain(wave.failed.keys()).cloned().collect();
        super::outcome::applied(report, touched);
        // Off a terminal, one line per tenant result.
        if !self.tty {
            for t in applied {
                self.say(format!("tenant {t}: applied"));
            }
            for (t, e) in &wave.failed {
                self.say(format!("tenant {t}: failed: {e}"));
            }
        }
        self.say(format!(
            "Wave `{}`: {} tenants done, {} failed ({}).",
            wave.name,
            wave.done.len(),
            wave.failed.len(),
            report.summary()
        ));
    }
}

/// Applies `p` (which has waves) as a rollout: `resumed` continues a recorded one.
pub async fn execute(
    s: &Session,
    st: &OpenState,
    p: &Plan,
    resumed: Option<Rollout>,
    exec: &ExecArgs,
    json: bool,
    stats: bool,
) -> Result<u8> {
    let mut r = match resumed {
        Some(r) => r,
        None => rollout::begin(st, p)?,
    };
    let hook = Waves {
        tty: std::io::stdout().is_terminal(),
        json,
    };
    let mut opts = exec_options(exec);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    opts.stop = Some(stop.clone());
    let signals = on_interrupt(stop, exec.timeout);
    let ending = rollout::run(s, st, p, &mut r, &opts, &hook).await;
    signals.abort();
    let ending = ending?;
    super::outcome::session(s);
    let code = match &ending {
        Ending::Finished => {
            hook.say(format!(
                "\nRollout complete: {} waves, {} tenants applied.",
                r.waves.len(),
                r.waves.iter().map(|w| w.done.len()).sum::<usize>()
            ));
            EXIT_OK
        }
        Ending::Paused(wave) => {
            hook.say(format!(
                "\nRollout paused after wave `{wave}`. Check it, then run `landlord rollout resume` (or `landlord rollout abort`)."
            ));
            EXIT_OK
        }
        Ending::Halted {
            wave,
            failed,
            allowed,
        } => {
            super::outcome::halted();
            eprintln!(
                "\nRollout halted in wave `{wave}`: {} tenants failed, the budget allows {allowed}. Later waves were not touched.",
                failed.len()
            );
            for (t, e) in failed {
                eprintln!("  {t}: {e}");
            }
            eprintln!("Fix the cause, then run `landlord rollout resume`: tenants already applied are not applied again.");
            EXIT_ERROR
        }
        Ending::Interrupted => {
            eprintln!("Rollout interrupted: `landlord rollout resume` continues it.");
            EXIT_INTERRUPTED
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&status_json(&r))?);
    }
    if stats {
        print_stats(s, st);
    }
    Ok(code)
}

fn status_json(r: &Rollout) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["kind"] = "rollout".into();
    v["format_version"] = plan::PLAN_FORMAT_VERSION.into();
    v
}

/// `landlord rollout ...`.
pub async fn run(dir: &Path, cmd: RolloutCommand, color: bool) -> Result<u8> {
    match cmd {
        RolloutCommand::Status { json } => {
            let st = ops::open_state_only(dir, "landlord rollout status", super::READ_WAIT)?;
            let Some(r) = rollout::load(&st)? else {
                if json {
                    println!("null");
                } else {
                    println!("No rollout has been started here. Start one with `landlord apply --rollout`.");
                }
                return Ok(EXIT_OK);
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&status_json(&r))?);
            } else {
                print!("{}", status_text(&r));
            }
            Ok(EXIT_OK)
        }
        RolloutCommand::Abort { lock_timeout } => {
            let st = ops::open_state_only(dir, "landlord rollout abort", lock_timeout)?;
            let r = rollout::abort(&st)?;
            println!(
                "Aborted the rollout started {} by {}; its remaining waves will not be applied by it.",
                r.started, r.actor
            );
            Ok(EXIT_OK)
        }
        RolloutCommand::Resume {
            exec,
            refresh,
            allow_bulk,
            lock_timeout,
            json,
            metrics_file: _,
        } => resume(dir, &exec, refresh, allow_bulk, lock_timeout, json, color).await,
    }
}

async fn resume(
    dir: &Path,
    exec: &ExecArgs,
    refresh: bool,
    allow_bulk: bool,
    lock_timeout: std::time::Duration,
    json: bool,
    color: bool,
) -> Result<u8> {
    let command = "landlord rollout resume";
    let mut st = ops::open_state_only(dir, command, lock_timeout)?;
    let Some(r) = rollout::load(&st)?.filter(Rollout::resumable) else {
        anyhow::bail!("there is no paused, halted or interrupted rollout to resume; start one with `landlord apply --rollout`");
    };
    let pending = r.pending_tenants();
    let (s, mut desired) = ops::session_for(dir, &pending)?;
    st.lock_scopes(&["workspace".to_string()], command)?;
    let tenants = ops::known_tenants(&s, &st, &pending)?;
    let opts = plan::Options {
        mode: Mode::Normal,
        refresh,
        tenants,
        allow_bulk,
    };
    let hook = progress::Progress::new(0, false, json);
    let p = ops::make_plan(&s, &st, &mut desired, &opts, &hook).await?;
    if !json {
        show::print_text(&p, color)?;
    }
    ops::check_guard(&p, allow_bulk)?;
    if p.has_changes() && !exec.auto_approve {
        super::confirm("resume the rollout")?;
    }
    execute(&s, &st, &p, Some(r), exec, json, false).await
}

/// The rollout as a few lines of text.
fn status_text(r: &Rollout) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let at = r
        .waves
        .get(r.wave)
        .map(|w| {
            format!(
                " at wave {} of {} (`{}`)",
                r.wave + 1,
                r.waves.len(),
                w.name
            )
        })
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Rollout {}: {}{at}; started {} by {}, last change {}.",
        r.id,
        r.status.as_str(),
        r.started,
        r.actor,
        r.updated
    );
    for (i, w) in r.waves.iter().enumerate() {
        let state = if w.finished.is_some() {
            "done"
        } else if i == r.wave && w.started.is_some() {
            r.status.as_str()
        } else {
            "pending"
        };
        let _ = writeln!(
            out,
            "  {}. {:<12} {:<8} {} tenants, {} done, {} failed (budget {}){}",
            i + 1,
            w.name,
            state,
            w.tenants.len(),
            w.done.len(),
            w.failed.len(),
            w.allowed_failures(),
            if w.pause_after { ", pauses after" } else { "" }
        );
        for (t, e) in &w.failed {
            let _ = writeln!(out, "       failed {t}: {e}");
        }
    }
    out
}
