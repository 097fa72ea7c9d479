//! Terminal rendering (colour when writing to a terminal).

use std::fmt::Write;

use super::{attr_lines, summary_line};
use crate::plan::{Action, Plan, ResourceChange, Summary};

fn paint(s: &str, action: Action, color: bool) -> String {
    if !color {
        return s.to_string();
    }
    let code = match action {
        Action::Create => "32",
        Action::Update => "33",
        Action::Replace => "35",
        Action::Delete => "31",
        Action::NoOp => "0",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// The plan as terminal text.
pub fn text(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    write_text(plan, color, &mut out);
    out
}

/// Writes the plan as terminal text to standard output as it goes: the text of a fleet's
/// plan runs to tens of megabytes, which need not be held at once.
pub fn print_text(plan: &Plan, color: bool) -> std::io::Result<()> {
    write_io(std::io::BufWriter::new(std::io::stdout().lock()), |out| {
        write_text(plan, color, out);
        Ok(())
    })
}

/// `fmt::Write` over an `io::Write`, keeping the first I/O error.
struct IoText<W: std::io::Write> {
    w: W,
    error: Option<std::io::Error>,
}

impl<W: std::io::Write> Write for IoText<W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.error.is_some() {
            return Err(std::fmt::Error);
        }
        self.w.write_all(s.as_bytes()).map_err(|e| {
            self.error = Some(e);
            std::fmt::Error
        })
    }
}

/// Runs `f` writing text to `w`, then flushes `w`; the first I/O error, if any.
fn write_io<W: std::io::Write>(
    w: W,
    f: impl FnOnce(&mut IoText<W>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut out = IoText { w, error: None };
    let done = f(&mut out);
    if let Some(e) = out.error {
        return Err(e);
    }
    done?;
    out.w.flush()
}

/// Writes the plan as terminal text to `out`.
fn write_text(plan: &Plan, color: bool, out: &mut impl Write) {
    let summary = plan.summary();
    if write_head(plan, &summary, out) {
        for c in &plan.changes {
            write_change(c, color, out);
        }
        write_foot(plan, &summary, out);
    }
}

/// Prints a plan made in batches: `plan` holds its header, guard and deferrals,
/// `summary` counts every change, and `body` is the text of its changes
/// ([`write_changes`] for each batch).
pub fn print_batched(
    plan: &Plan,
    summary: &Summary,
    body: &mut dyn std::io::Read,
) -> std::io::Result<()> {
    write_io(std::io::BufWriter::new(std::io::stdout().lock()), |out| {
        if write_head(plan, summary, out) {
            if let Some(e) = out.error.take() {
                return Err(e);
            }
            std::io::copy(body, &mut out.w)?;
            write_foot(plan, summary, out);
        }
        Ok(())
    })
}

/// Writes the text of `changes` (one batch of a plan) to `w`.
pub fn write_changes(
    changes: &[ResourceChange],
    color: bool,
    w: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    write_io(w, |out| {
        for c in changes {
            write_change(c, color, out);
        }
        Ok(())
    })
}

/// The lines before the changes; `false` when there are none (and nothing follows).
fn write_head(plan: &Plan, summary: &Summary, out: &mut impl Write) -> bool {
    if let Some(l) = super::skipped_line(plan) {
        let _ = writeln!(out, "{l}");
    }
    if !summary.has_changes() {
        if plan.unchanged > 0 || plan.unchanged_tenants.is_none() {
            let _ = writeln!(
                out,
                "No changes. {} resources are up to date.",
                plan.unchanged
            );
        } else {
            let _ = writeln!(out, "No changes.");
        }
        return false;
    }
    let _ = writeln!(out, "landlord will perform the following actions:\n");
    true
}

/// One change: its heading, its reasons and its attribute lines.
fn write_change(c: &ResourceChange, color: bool, out: &mut impl Write) {
    let head = format!(
        "{} {} will be {}",
        c.action.symbol(),
        c.address,
        match c.action {
            Action::Create => "created",
            Action::Update => "updated in place",
            Action::Replace => "replaced",
            Action::Delete => "destroyed",
            Action::NoOp => "left alone",
        }
    );
    let _ = writeln!(
        out,
        "{}  ({})",
        paint(&head, c.action, color),
        c.reasons.join("; ")
    );
    for a in &c.attributes {
        for l in attr_lines(a) {
            let _ = writeln!(out, "      {l}");
        }
    }
    let _ = out.write_char('\n');
}

/// The lines after the changes: summary, waves, deferrals and the guard's verdict.
fn write_foot(plan: &Plan, summary: &Summary, out: &mut impl Write) {
    let _ = writeln!(out, "{}", summary_line(summary));
    if !plan.waves.is_empty() {
        let _ = writeln!(out, "\nRollout in {} waves:", plan.waves.len());
        for l in super::wave_lines(&plan.waves) {
            let _ = writeln!(out, "  {l}");
        }
    }
    let deferred = super::deferred_lines(plan);
    if !deferred.is_empty() {
        let _ = writeln!(out, "\n{}", deferred.join("\n"));
    }
    if !plan.guard.losses.is_empty() {
        let _ = writeln!(out, "\n{}", plan.guard.describe());
    }
}
