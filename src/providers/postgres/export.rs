//! `export_on_destroy`: a `pg_dump --format=custom` of a schema or database before it is
//! dropped, so a deprovisioned tenant's data can be handed over or restored with
//! `pg_restore`. A failed export refuses the drop.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::super::ProviderError;
use super::conn::{Server, SslMode};
use crate::value::{Attrs, UNKNOWN};

/// The export file an `export_on_destroy` setting names, relative to the workspace.
pub(super) fn target(c: &Attrs) -> Result<Option<PathBuf>, ProviderError> {
    let spec = match c.get("export_on_destroy") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(v) => {
            return Err(ProviderError::invalid(format!(
            "`export_on_destroy` must be a mapping such as {{ path: exports/acme.dump }}, got {v}"
        )))
        }
    };
    if let Some(k) = spec.keys().find(|k| k.as_str() != "path") {
        return Err(ProviderError::invalid(format!(
            "`export_on_destroy.{k}` is not supported: give `path`, a file under the workspace"
        )));
    }
    let path = match spec.get("path") {
        Some(Value::String(p)) => p,
        _ => {
            return Err(ProviderError::invalid(
                "`export_on_destroy.path` is required (a file under the workspace)",
            ))
        }
    };
    if path == UNKNOWN {
        return Ok(None);
    }
    let p = PathBuf::from(path);
    if p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
        return Err(ProviderError::invalid(format!(
            "`export_on_destroy.path` `{path}` must be relative and stay inside the workspace"
        )));
    }
    Ok(Some(p))
}

fn pg_dump() -> PathBuf {
    std::env::var_os("LANDLORD_PG_DUMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("pg_dump"))
}

/// Dumps `db` (only `schema` when given) to `root/file`, written whole or not at all.
pub(super) async fn dump(
    server: &Server,
    root: &Path,
    file: &Path,
    db: &str,
    schema: Option<&str>,
) -> Result<(), ProviderError> {
    let out = root.join(file);
    let fail = |m: String| {
        ProviderError::failed(format!(
            "export of {} to {} failed, so it is not dropped: {m}",
            match schema {
                Some(s) => format!("schema `{s}` of database `{db}`"),
                None => format!("database `{db}`"),
            },
            file.display()
        ))
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    }
    let partial = out.with_extension("dump.partial");
    let mut cmd = std::process::Command::new(pg_dump());
    cmd.arg("--format=custom")
        .arg("--no-password")
        .arg("--file")
        .arg(&partial)
        .args(["--host", &server.cfg.host])
        .args(["--port", &server.cfg.port.to_string()])
        .args(["--username", &server.cfg.user]);
    if let Some(s) = schema {
        // `-n` takes a pattern: quote the name so it matches exactly.
        cmd.arg("--schema").arg(super::sql::ident(s));
    }
    cmd.arg("--dbname").arg(db);
    if let Some(p) = server.cfg.password(&server.name)? {
        cmd.env("PGPASSWORD", p);
    }
    cmd.env(
        "PGSSLMODE",
        match server.cfg.sslmode {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        },
    );
    if let Some(ca) = &server.cfg.sslrootcert {
        cmd.env("PGSSLROOTCERT", ca);
    }
    server.count("pg_dump");
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(|e| {
            fail(format!(
                "cannot run {}: {e} (install Debian postgresql-client, or set LANDLORD_PG_DUMP)",
                pg_dump().display()
            ))
        })?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(fail(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    // Tenant data: readable by the owner only, like every secret landlord writes.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| fail(format!("{}: {e}", partial.display())))?;
    std::fs::rename(&partial, &out).map_err(|e| fail(format!("{}: {e}", out.display())))
}
