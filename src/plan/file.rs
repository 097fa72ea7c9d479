//! Saved plans (`plan --out FILE`, `apply FILE`): written atomically and signed with an
//! HMAC keyed from the master key, verified before anything else is read; refused when
//! made for another state or when stale.

use std::path::Path;

use super::{Plan, PLAN_FORMAT_VERSION};
use crate::state::crypto::Key;

/// A saved plan that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanFileError {
    /// The file cannot be read or written.
    #[error("plan file `{path}`: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a landlord plan of this version.
    #[error("plan file `{path}` is not a landlord plan (format version {PLAN_FORMAT_VERSION}): {message}")]
    Format {
        /// File.
        path: String,
        /// Cause.
        message: String,
    },
    /// The file was changed after it was saved, or signed with another master key.
    #[error("plan file `{0}` was modified after it was saved (or saved with another master key): its signature does not match; make a new plan with `landlord plan --out`")]
    Tampered(String),
    /// The plan was made for another state (another workspace or a copy of it).
    #[error("saved plan was made for another state (lineage {plan}; this workspace's state is {state}): make a new plan here")]
    OtherState {
        /// The plan's lineage.
        plan: String,
        /// This state's lineage.
        state: String,
    },
    /// State or inputs changed since the plan was made.
    #[error("saved plan is stale: {0}; run `landlord plan` again")]
    Stale(String),
}

/// The first line of a saved plan: the format, then the HMAC of everything after it.
const HEADER: &str = "landlord-plan/1 hmac-sha256=";

/// What the HMAC of a saved plan is for (keys derived for other purposes differ).
const PURPOSE: &str = "landlord saved plan";

/// Writes a plan atomically, signed with the master key: `HEADER<hmac>\n<json>`.
pub fn save(plan: &Plan, path: &Path, key: &Key) -> Result<(), PlanFileError> {
    let io = |source| PlanFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let json = serde_json::to_vec(plan).map_err(|e| io(e.into()))?;
    let mut bytes = format!("{HEADER}{}\n", key.mac(PURPOSE, &json)).into_bytes();
    bytes.extend_from_slice(&json);
    let tmp = path.with_extension("landlord-tmp");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Whether two equal-length texts are equal, in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads a saved plan, refusing it unless its HMAC proves it was written, unchanged, by a
/// holder of `key`.
pub fn load(path: &Path, key: &Key) -> Result<Plan, PlanFileError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| PlanFileError::Io {
        path: shown.clone(),
        source,
    })?;
    let format = |message: String| PlanFileError::Format {
        path: shown.clone(),
        message,
    };
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let (header, json) = (&bytes[..newline], bytes.get(newline + 1..).unwrap_or(&[]));
    let mac = std::str::from_utf8(header)
        .ok()
        .and_then(|h| h.strip_prefix(HEADER))
        .ok_or_else(|| format("it does not start with a landlord plan signature line".into()))?;
    if !same(mac.as_bytes(), key.mac(PURPOSE, json).as_bytes()) {
        return Err(PlanFileError::Tampered(shown));
    }
    let plan: Plan = serde_json::from_slice(json).map_err(|e| format(e.to_string()))?;
    if plan.format_version != PLAN_FORMAT_VERSION {
        return Err(format(format!("found version {}", plan.format_version)));
    }
    Ok(plan)
}

/// Refuses a plan made for another state, against another state serial, or from other
/// workspace inputs.
pub fn check_fresh(
    plan: &Plan,
    lineage: &str,
    serial: u64,
    versions: &std::collections::BTreeMap<String, u64>,
    input_hash: &str,
) -> Result<(), PlanFileError> {
    if plan.lineage != lineage {
        return Err(PlanFileError::OtherState {
            plan: plan.lineage.clone(),
            state: lineage.to_string(),
        });
    }
    // A plan that records its tenants' versions is stale only when one of them changed.
    if !plan.versions.is_empty() {
        for (scope, was) in &plan.versions {
            let now = versions.get(scope).copied().unwrap_or(0);
            if now != *was {
                return Err(PlanFileError::Stale(format!(
                    "tenant `{scope}` changed since the plan was made (version {now}, the plan was made at {was})"
                )));
            }
        }
    } else if plan.state_serial != serial {
        return Err(PlanFileError::Stale(format!(
            "state serial is {serial}, the plan was made at serial {}",
            plan.state_serial
        )));
    }
    if plan.input_hash != input_hash {
        return Err(PlanFileError::Stale(
            "workspace files changed since the plan was made".into(),
        ));
    }
    Ok(())
}
