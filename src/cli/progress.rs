//! Apply progress: a bar on a terminal, one plain line per resource otherwise.

use std::io::Write;

use indicatif::{ProgressBar, ProgressStyle};

use crate::addr::ResourceAddr;
use crate::apply::{Hook, Outcomes};
use crate::plan::{Action, ResourceChange};

/// Progress printer for apply and destroy.
pub struct Progress {
    bar: Option<ProgressBar>,
    to_stderr: bool,
}

impl Progress {
    /// A bar over `total` changes when `tty`, else plain lines (on stderr when `to_stderr`).
    pub fn new(total: usize, tty: bool, to_stderr: bool) -> Self {
        let bar = (tty && !to_stderr).then(|| {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} {elapsed}, ETA {eta} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        });
        // Retries show as the bar's message on a terminal, as a line each otherwise.
        match &bar {
            Some(b) => {
                let b = b.clone();
                crate::plan::retry::observe_retries(move |l| b.set_message(l.to_string()));
            }
            None => crate::plan::retry::observe_retries(|l| eprintln!("{l}")),
        }
        Progress { bar, to_stderr }
    }

    fn line(&self, s: &str) {
        match &self.bar {
            Some(b) => b.println(s),
            None if self.to_stderr => eprintln!("{s}"),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{s}");
                let _ = out.flush();
            }
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn done_verb(a: Action) -> &'static str {
    match a {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Replace => "replaced",
        Action::Delete => "destroyed",
        Action::NoOp => "unchanged",
    }
}

impl Hook for Progress {
    fn started(&self, change: &ResourceChange) {
        if let Some(b) = &self.bar {
            b.set_message(format!("{} {}", change.action.verb(), change.address));
        }
    }

    fn finished(&self, change: &ResourceChange, outcome: &Outcomes) {
        let l = match outcome {
            Outcomes::Done(d) => format!(
                "{}: {} [{:.2}s]",
                change.address,
                done_verb(change.action),
                d.as_secs_f64()
            ),
            Outcomes::Failed(m) => format!(
                "{}: FAILED to {}: {m}",
                change.address,
                change.action.verb()
            ),
            Outcomes::Skipped => format!("{}: skipped (a dependency failed)", change.address),
        };
        self.line(&l);
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    fn recovered(&self, address: &ResourceAddr, what: &str) {
        self.line(&format!("{address}: {what}"));
    }

    fn rolled_back(&self, address: &ResourceAddr, error: Option<&str>) {
        match error {
            None => self.line(&format!("{address}: rolled back (destroyed)")),
            Some(e) => self.line(&format!("{address}: rollback FAILED: {e}")),
        }
    }
}
