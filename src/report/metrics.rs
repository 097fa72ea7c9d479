//! `--metrics-file`: a run's figures in the Prometheus text format, written whole or not
//! at all (a temporary file renamed over the old one), as node_exporter's textfile
//! collector reads it. Labels are fleet-level only: never a tenant id.

use std::fmt::Write;
use std::path::Path;

use super::{Outcome, ReportError};

/// `value` as a label value: backslash, double quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The last-success time of `command` in an earlier file's text, if it holds one.
fn last_success(previous: &str, command: &str) -> Option<f64> {
    let key = format!(
        "landlord_run_last_success_timestamp_seconds{{command=\"{}\"}} ",
        label(command)
    );
    previous
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}

/// The metrics of `o`; a failed run keeps the last-success time found in `previous`.
pub fn render(o: &Outcome, now: f64, previous: &str) -> String {
    let cmd = label(&o.command);
    let mut s = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
        if samples.is_empty() {
            return;
        }
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(s, "{name}{labels} {value}");
        }
    };
    let with_cmd = |v: String| vec![(format!("{{command=\"{cmd}\"}}"), v)];
    family(
        "landlord_run_duration_seconds",
        "gauge",
        "Wall time of the last run.",
        &with_cmd(format!("{:.3}", o.duration_seconds)),
    );
    let success = if o.succeeded {
        Some(now)
    } else {
        last_success(previous, &o.command)
    };
    family(
        "landlord_run_last_success_timestamp_seconds",
        "gauge",
        "When a run last succeeded, in seconds since the Unix epoch.",
        &success
            .map(|t| with_cmd(format!("{t:.3}")))
            .unwrap_or_default(),
    );
    family(
        "landlord_run_success",
        "gauge",
        "Whether the last run succeeded (1) or failed (0).",
        &with_cmd(u8::from(o.succeeded).to_string()),
    );
    let changes: Vec<(String, String)> = ["add", "change", "replace", "destroy"]
        .iter()
        .map(|a| {
            let n = o.changes.get(*a).copied().unwrap_or(0);
            (format!("{{action=\"{a}\"}}"), n.to_string())
        })
        .collect();
    family(
        "landlord_changes",
        "gauge",
        "Changes the last run planned (plan, drift) or made (apply, destroy), by action.",
        &changes,
    );
    family(
        "landlord_failed_resources",
        "gauge",
        "Resources that failed in the last run.",
        &[(String::new(), o.failures.len().to_string())],
    );
    if let Some(d) = o.drifted {
        family(
            "landlord_drifted_resources",
            "gauge",
            "Resources found drifted by the last drift check.",
            &[(String::new(), d.to_string())],
        );
    }
    let calls: Vec<(String, String)> = o
        .api_calls
        .iter()
        .map(|(p, op, n)| {
            (
                format!("{{provider=\"{}\",operation=\"{}\"}}", label(p), label(op)),
                n.to_string(),
            )
        })
        .collect();
    family(
        "landlord_api_calls_total",
        "counter",
        "Provider API calls of the last run, by provider and operation.",
        &calls,
    );
    let tenants: Vec<(String, String)> = ["active", "suspended", "deleted"]
        .iter()
        .map(|st| {
            let n = o.tenant_status.get(*st).copied().unwrap_or(0);
            (format!("{{status=\"{st}\"}}"), n.to_string())
        })
        .collect();
    if !o.tenant_status.is_empty() {
        family(
            "landlord_tenants",
            "gauge",
            "Tenants of the workspace by status.",
            &tenants,
        );
    }
    s
}

/// Writes the metrics of `o` to `path`: a temporary file beside it, synced, then renamed
/// over it, so a collector never reads half a file.
pub fn write(path: &Path, o: &Outcome) -> Result<(), ReportError> {
    let fail = |e: std::io::Error| ReportError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let previous = std::fs::read_to_string(path).unwrap_or_default();
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9;
    let text = render(o, now, &previous);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".landlord-metrics")
        .tempfile_in(dir)
        .map_err(fail)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    // Textfile collectors run as another user: the file is world-readable like any
    // metrics page (it holds no secret).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(fail)?;
    }
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(ok: bool) -> Outcome {
        Outcome {
            command: "apply".into(),
            succeeded: ok,
            duration_seconds: 2.5,
            changes: [("add".to_string(), 3)].into_iter().collect(),
            api_calls: vec![("aws".into(), "s3:PutObject".into(), 4)],
            tenant_status: [("active".to_string(), 2)].into_iter().collect(),
            ..Outcome::default()
        }
    }

    #[test]
    fn a_failed_run_keeps_the_last_success_time_and_says_it_failed() {
        let first = render(&outcome(true), 1_700_000_000.0, "");
        assert!(first.contains(
            "landlord_run_last_success_timestamp_seconds{command=\"apply\"} 1700000000.000\n"
        ));
        assert!(first.contains(
            "landlord_changes{action=\"add\"} 3\nlandlord_changes{action=\"change\"} 0\n"
        ));
        assert!(first
            .contains("landlord_api_calls_total{provider=\"aws\",operation=\"s3:PutObject\"} 4\n"));
        assert!(first.contains("landlord_tenants{status=\"suspended\"} 0\n"));
        let failed = render(&outcome(false), 1_700_000_100.0, &first);
        assert!(failed.contains(
            "landlord_run_last_success_timestamp_seconds{command=\"apply\"} 1700000000.000\n"
        ));
        assert!(failed.contains("landlord_run_success{command=\"apply\"} 0\n"));
        let never = render(&outcome(false), 1.0, "");
        assert!(!never.contains("last_success"), "no success yet, no sample");
    }

    #[test]
    fn the_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("landlord.prom");
        write(&path, &outcome(true)).unwrap();
        write(&path, &outcome(false)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("landlord_run_success{command=\"apply\"} 0"));
        assert!(text.contains("landlord_run_last_success_timestamp_seconds"));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
    }
}
