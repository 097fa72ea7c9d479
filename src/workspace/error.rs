//! The load-time error: which file, line, tenant and field, and what was expected.

use std::fmt;
use std::path::PathBuf;

/// A workspace input that cannot be used.
#[derive(Debug, thiserror::Error)]
pub struct WorkspaceError {
    /// File the problem is in, relative to the workspace where possible.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Tenant concerned, when any.
    pub tenant: Option<String>,
    /// Field concerned (a dotted path), when any.
    pub field: Option<String>,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// The class of a workspace error.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    Io(std::io::Error),
    /// The file is not well-formed YAML/TOML or does not match the expected shape.
    Syntax(String),
    /// The content is well-formed but breaks a rule (tier policy, naming, residency).
    Policy(String),
}

impl WorkspaceError {
    pub(crate) fn new(path: impl Into<PathBuf>, kind: ErrorKind) -> Self {
        WorkspaceError {
            path: path.into(),
            line: None,
            tenant: None,
            field: None,
            kind,
        }
    }

    pub(crate) fn policy(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Self::new(path, ErrorKind::Policy(msg.into()))
    }

    pub(crate) fn syntax(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Self::new(path, ErrorKind::Syntax(msg.into()))
    }

    pub(crate) fn io(path: impl Into<PathBuf>, e: std::io::Error) -> Self {
        Self::new(path, ErrorKind::Io(e))
    }

    pub(crate) fn yaml(path: impl Into<PathBuf>, e: &serde_yaml_ng::Error) -> Self {
        let mut err = Self::syntax(path, {
            let text = crate::suggest::with_hint(&strip_location(&e.to_string()));
            // A misspelt key is not malformed YAML: say only what it is.
            if text.starts_with("unknown field") {
                text
            } else {
                format!("malformed YAML: {text}")
            }
        });
        err.line = e.location().map(|l| l.line());
        err
    }

    pub(crate) fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = self.line.or(line);
        self
    }

    pub(crate) fn tenant(mut self, tenant: &str) -> Self {
        self.tenant = Some(tenant.to_string());
        self
    }

    pub(crate) fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }
}

fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

impl fmt::Display for WorkspaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(t) = &self.tenant {
            write!(f, ": tenant `{t}`")?;
        }
        if let Some(fld) = &self.field {
            write!(f, ": field `{fld}`")?;
        }
        match &self.kind {
            ErrorKind::Io(e) => write!(f, ": cannot read: {e}"),
            ErrorKind::Syntax(m) | ErrorKind::Policy(m) => write!(f, ": {m}"),
        }
    }
}

/// The 1-based line where a dotted key path appears in a YAML text, found by scanning keys.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    let mut found = None;
    for seg in path.split('.') {
        let needle = format!("{seg}:");
        let hit = (from..lines.len()).find(|&i| {
            let l = lines[i];
            l.match_indices(&needle).any(|(p, _)| {
                p == 0
                    || !l.as_bytes()[p - 1].is_ascii_alphanumeric() && l.as_bytes()[p - 1] != b'_'
            })
        })?;
        found = Some(hit + 1);
        from = hit;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys() {
        let t = "id: acme\nplan: pro\ndomain: { kind: custom, name: x }\nsettings:\n  nginx:\n    port: 8\n";
        assert_eq!(line_of(t, "plan"), Some(2));
        assert_eq!(line_of(t, "domain.name"), Some(3));
        assert_eq!(line_of(t, "settings.nginx.port"), Some(6));
        assert_eq!(line_of(t, "labels"), None);
    }

    #[test]
    fn display_names_everything() {
        let e = WorkspaceError::policy("tenants/acme.yaml", "unknown tier `gold`")
            .tenant("acme")
            .field("plan")
            .at_line(Some(2));
        assert_eq!(
            e.to_string(),
            "tenants/acme.yaml:2: tenant `acme`: field `plan`: unknown tier `gold`"
        );
    }
}
