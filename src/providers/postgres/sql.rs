//! Building SQL safely: every identifier quoted (`"…"` with inner quotes doubled), every
//! literal escaped where SQL takes no bind parameter (utility statements such as
//! `CREATE ROLE … PASSWORD` or `COMMENT ON`), and the marker comment landlord puts on
//! the objects it creates.

use serde_json::Value;

use super::super::ProviderError;
use crate::addr::ResourceAddr;
use crate::value::{Attrs, UNKNOWN};

/// An identifier, always quoted: `a"b` → `"a""b"`.
pub fn ident(name: &str) -> String {
    postgres_protocol::escape::escape_identifier(name)
}

/// A string literal, escaped: `it's` → `'it''s'` (or `E'…'` when it holds backslashes).
pub fn literal(text: &str) -> String {
    postgres_protocol::escape::escape_literal(text)
}

/// `schema.name`, both quoted.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// A role as a grantee: `PUBLIC` for the pseudo-role, the quoted name otherwise.
pub fn grantee(role: &str) -> String {
    if role.eq_ignore_ascii_case("public") {
        "PUBLIC".into()
    } else {
        ident(role)
    }
}

/// The marker comment of an object landlord created.
pub fn marker(address: &ResourceAddr) -> String {
    format!("landlord:{address}")
}

/// The address a marker comment names.
pub fn marked_by(comment: Option<&str>) -> Option<String> {
    comment
        .and_then(|c| c.strip_prefix("landlord:"))
        .map(str::to_string)
}

/// PostgreSQL's identifier limit (NAMEDATALEN - 1): longer names are silently truncated
/// by the server, so they are refused here.
const MAX_IDENT: usize = 63;

/// Checks that the identifiers in `keys` (when known) are names PostgreSQL keeps as given.
pub fn check_idents(c: &Attrs, keys: &[&str]) -> Result<(), ProviderError> {
    for k in keys {
        let names: Vec<&str> = match c.get(*k) {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        for n in names.into_iter().filter(|n| *n != UNKNOWN) {
            if n.is_empty() || n.len() > MAX_IDENT || n.contains('\0') {
                return Err(ProviderError::invalid(format!(
                    "`{k}` `{n}` is not a PostgreSQL name: 1 to {MAX_IDENT} bytes, no NUL"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_cannot_close_their_quotes() {
        assert_eq!(
            ident(r#"a"; DROP TABLE t; --"#),
            r#""a""; DROP TABLE t; --""#
        );
        assert_eq!(literal("it's $$ ; --"), "'it''s $$ ; --'");
        assert_eq!(literal(r"back\slash'"), r" E'back\\slash'''");
        assert_eq!(grantee("public"), "PUBLIC");
        assert_eq!(grantee("Public Role"), "\"Public Role\"");
    }

    #[test]
    fn names_longer_than_postgresql_keeps_are_refused() {
        let mut c = Attrs::new();
        c.insert("name".into(), Value::String("x".repeat(64)));
        assert!(check_idents(&c, &["name"]).is_err());
        c.insert("name".into(), Value::String("x".repeat(63)));
        assert!(check_idents(&c, &["name"]).is_ok());
    }

    #[test]
    fn markers_round_trip() {
        let a: ResourceAddr = "acme/postgresql_role.app".parse().unwrap();
        assert_eq!(
            marked_by(Some(&marker(&a))).as_deref(),
            Some("acme/postgresql_role.app")
        );
        assert_eq!(marked_by(Some("someone else's")), None);
    }
}
