//! Saved plans (`plan --out FILE`, `apply FILE`): written atomically, refused when stale.

use std::path::Path;

use super::{Plan, PLAN_FORMAT_VERSION};

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
    /// State or inputs changed since the plan was made.
    #[error("saved plan is stale: {0}; run `landlord plan` again")]
    Stale(String),
}

/// Writes a plan atomically.
pub fn save(plan: &Plan, path: &Path) -> Result<(), PlanFileError> {
    let io = |source| PlanFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let bytes = serde_json::to_vec(plan).map_err(|e| io(e.into()))?;
    let tmp = path.with_extension("landlord-tmp");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Reads a saved plan.
pub fn load(path: &Path) -> Result<Plan, PlanFileError> {
    let bytes = std::fs::read(path).map_err(|source| PlanFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let plan: Plan = serde_json::from_slice(&bytes).map_err(|e| PlanFileError::Format {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    if plan.format_version != PLAN_FORMAT_VERSION {
        return Err(PlanFileError::Format {
            path: path.display().to_string(),
            message: format!("found version {}", plan.format_version),
        });
    }
    Ok(plan)
}

/// Refuses a plan made against another state serial or other workspace inputs.
pub fn check_fresh(plan: &Plan, serial: u64, input_hash: &str) -> Result<(), PlanFileError> {
    if plan.state_serial != serial {
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
