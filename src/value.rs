//! Attribute values, references (`${type.name.attr}`) and the "known after apply" marker.
//!
//! Values are plain JSON. A property string may embed references; they are resolved at
//! apply time against the attributes of other resources. A value that cannot be known
//! until apply is the `UNKNOWN` marker string. A resolved value is sensitive when any
//! reference it used points at a sensitive attribute. Must not import other crate modules
//! except `addr`.

use serde_json::Value;

use crate::addr::{Scope, SHARED};

/// Attributes of one resource: a JSON object.
pub type Attrs = serde_json::Map<String, Value>;

/// Placeholder for a value that is only known once apply has run.
pub const UNKNOWN: &str = "\u{1}(known after apply)";

/// Text shown in place of sensitive values everywhere output is produced.
pub const SENSITIVE_TEXT: &str = "(sensitive)";

/// A value as shown to people: `(sensitive)` in place of a sensitive known value.
pub fn redact(v: Option<&Value>, sensitive: bool) -> Option<Value> {
    v.map(|v| {
        if sensitive && v.as_str() != Some(UNKNOWN) {
            Value::String(SENSITIVE_TEXT.into())
        } else {
            v.clone()
        }
    })
}

/// Replaces the `sensitive` attributes of `attrs` with `(sensitive)`.
pub fn redact_attrs(attrs: &mut Attrs, sensitive: &[String]) {
    for k in sensitive {
        if let Some(v) = attrs.get_mut(k) {
            *v = Value::String(SENSITIVE_TEXT.into());
        }
    }
}

/// Text shown in place of unknown values.
pub const UNKNOWN_TEXT: &str = "(known after apply)";

/// A parsed `${...}` reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// The scope named in the reference (`None` = the referring resource's own scope).
    pub scope: Option<Scope>,
    /// Resource type.
    pub rtype: String,
    /// Resource name.
    pub name: String,
    /// Attribute name (the first path element).
    pub attr: String,
    /// Keys and list indexes inside the attribute (`[0].name`), possibly empty.
    pub path: Vec<PathSeg>,
}

/// One step into a structured attribute value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathSeg {
    /// A mapping key.
    Key(String),
    /// A list index.
    Index(usize),
}

impl Reference {
    /// Walks `path` into an attribute value; `None` when a step is missing.
    pub fn walk<'a>(&self, mut v: &'a Value) -> Option<&'a Value> {
        for seg in &self.path {
            v = match seg {
                PathSeg::Key(k) => v.get(k)?,
                PathSeg::Index(i) => v.get(*i)?,
            };
        }
        Some(v)
    }

    fn path_text(&self) -> String {
        self.path
            .iter()
            .map(|s| match s {
                PathSeg::Key(k) => format!(".{k}"),
                PathSeg::Index(i) => format!("[{i}]"),
            })
            .collect()
    }
}

impl Reference {
    /// The `<type>.<name>` part.
    pub fn local(&self) -> String {
        format!("{}.{}", self.rtype, self.name)
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.scope {
            Some(Scope::Shared) => write!(f, "shared.")?,
            Some(s) => write!(f, "{s}/")?,
            None => {}
        }
        write!(
            f,
            "{}.{}.{}{}",
            self.rtype,
            self.name,
            self.attr,
            self.path_text()
        )
    }
}

/// A reference that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed reference `${{{0}}}`: expected `${{type.name.attr}}` or `${{shared.type.name.attr}}`")]
pub struct RefSyntaxError(pub String);

enum Piece<'a> {
    Text(&'a str),
    Ref(Reference),
}

fn parse_ref(inner: &str) -> Result<Reference, RefSyntaxError> {
    let bad = || RefSyntaxError(inner.to_string());
    let (scope, rest) = match inner.split_once('/') {
        Some((s, rest)) => {
            let scope = if s == SHARED {
                Scope::Shared
            } else {
                Scope::tenant(s).map_err(|_| bad())?
            };
            (Some(scope), rest)
        }
        None => match inner.strip_prefix("shared.") {
            Some(rest) => (Some(Scope::Shared), rest),
            None => (None, inner),
        },
    };
    let ident = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    };
    let (rtype, rest) = rest.split_once('.').ok_or_else(bad)?;
    let (name, rest) = rest.split_once('.').ok_or_else(bad)?;
    let attr_end = rest.find(['.', '[']).unwrap_or(rest.len());
    let (attr, mut tail) = rest.split_at(attr_end);
    if !ident(rtype) || !ident(name) || !ident(attr) {
        return Err(bad());
    }
    let mut path = Vec::new();
    while !tail.is_empty() {
        if let Some(t) = tail.strip_prefix('.') {
            let end = t.find(['.', '[']).unwrap_or(t.len());
            if !ident(&t[..end]) {
                return Err(bad());
            }
            path.push(PathSeg::Key(t[..end].to_string()));
            tail = &t[end..];
        } else if let Some(t) = tail.strip_prefix('[') {
            let end = t.find(']').ok_or_else(bad)?;
            path.push(PathSeg::Index(t[..end].parse().map_err(|_| bad())?));
            tail = &t[end + 1..];
        } else {
            return Err(bad());
        }
    }
    Ok(Reference {
        scope,
        rtype: rtype.into(),
        name: name.into(),
        attr: attr.into(),
        path,
    })
}

fn pieces(s: &str) -> Result<Vec<Piece<'_>>, RefSyntaxError> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if i > 0 && rest.as_bytes()[i - 1] == b'$' {
            out.push(Piece::Text(&rest[..i - 1]));
            out.push(Piece::Text("${"));
            rest = &rest[i + 2..];
            continue;
        }
        let end = rest[i..]
            .find('}')
            .ok_or_else(|| RefSyntaxError(rest[i + 2..].to_string()))?;
        if i > 0 {
            out.push(Piece::Text(&rest[..i]));
        }
        out.push(Piece::Ref(parse_ref(rest[i + 2..i + end].trim())?));
        rest = &rest[i + end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// Every reference inside a value, in order of appearance.
pub fn references(v: &Value) -> Result<Vec<Reference>, RefSyntaxError> {
    let mut out = Vec::new();
    walk_strings(v, &mut |s| {
        for p in pieces(s)? {
            if let Piece::Ref(r) = p {
                out.push(r);
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// The references in the values of `attrs`.
pub fn references_in(attrs: &Attrs) -> Result<Vec<Reference>, RefSyntaxError> {
    let mut out = Vec::new();
    for v in attrs.values() {
        out.extend(references(v)?);
    }
    Ok(out)
}

fn walk_strings(
    v: &Value,
    f: &mut dyn FnMut(&str) -> Result<(), RefSyntaxError>,
) -> Result<(), RefSyntaxError> {
    match v {
        Value::String(s) if s.contains("${") => f(s),
        Value::Array(a) => a.iter().try_for_each(|x| walk_strings(x, f)),
        Value::Object(o) => o.values().try_for_each(|x| walk_strings(x, f)),
        _ => Ok(()),
    }
}

/// What a reference resolves to.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A known value, and whether it is sensitive.
    Known(Value, bool),
    /// Not known until apply.
    Unknown,
}

/// A value after reference resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The value; unknown parts are the `UNKNOWN` marker.
    pub value: Value,
    /// Whether a sensitive attribute flowed into it.
    pub sensitive: bool,
}

/// Resolves every reference in `v`; `lookup` answers single references.
pub fn resolve<E>(
    v: &Value,
    lookup: &mut dyn FnMut(&Reference) -> Result<Lookup, E>,
) -> Result<Resolved, E>
where
    E: From<RefSyntaxError>,
{
    let mut sensitive = false;
    let value = resolve_inner(v, lookup, &mut sensitive)?;
    Ok(Resolved { value, sensitive })
}

fn resolve_inner<E: From<RefSyntaxError>>(
    v: &Value,
    lookup: &mut dyn FnMut(&Reference) -> Result<Lookup, E>,
    sensitive: &mut bool,
) -> Result<Value, E> {
    Ok(match v {
        Value::String(s) if s.contains("${") => {
            let ps = pieces(s)?;
            if let [Piece::Ref(r)] = ps.as_slice() {
                return Ok(match lookup(r)? {
                    Lookup::Known(v, sens) => {
                        *sensitive |= sens;
                        v
                    }
                    Lookup::Unknown => Value::String(UNKNOWN.into()),
                });
            }
            let mut out = String::new();
            for p in ps {
                match p {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Ref(r) => match lookup(&r)? {
                        Lookup::Known(v, sens) => {
                            *sensitive |= sens;
                            match v {
                                Value::String(s) => out.push_str(&s),
                                other => out.push_str(&other.to_string()),
                            }
                        }
                        Lookup::Unknown => return Ok(Value::String(UNKNOWN.into())),
                    },
                }
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| resolve_inner(x, lookup, sensitive))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), resolve_inner(x, lookup, sensitive)?)))
                .collect::<Result<_, E>>()?,
        ),
        other => other.clone(),
    })
}

/// Whether a value contains the unknown marker anywhere.
pub fn is_unknown(v: &Value) -> bool {
    match v {
        Value::String(s) => s == UNKNOWN,
        Value::Array(a) => a.iter().any(is_unknown),
        Value::Object(o) => o.values().any(is_unknown),
        _ => false,
    }
}

/// Text form of a value for diffs and reports (strings unquoted when multi-line).
pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) if s == UNKNOWN => UNKNOWN_TEXT.to_string(),
        Value::String(s) => format!("{s:?}"),
        other if is_unknown(other) => UNKNOWN_TEXT.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lk(r: &Reference) -> Result<Lookup, RefSyntaxError> {
        Ok(match r.attr.as_str() {
            "result" => Lookup::Known(json!("s3cr3t"), true),
            "port" => Lookup::Known(json!(8080), false),
            _ => Lookup::Unknown,
        })
    }

    #[test]
    fn whole_reference_keeps_type_and_interpolation_makes_text() {
        let r = resolve(&json!("${x.y.port}"), &mut lk).unwrap();
        assert_eq!(r.value, json!(8080));
        assert!(!r.sensitive);
        let r = resolve(
            &json!({"a": ["pw=${random_password.db.result}:${x.y.port}"]}),
            &mut lk,
        )
        .unwrap();
        assert_eq!(r.value, json!({"a": ["pw=s3cr3t:8080"]}));
        assert!(r.sensitive, "sensitivity propagates through interpolation");
    }

    #[test]
    fn unknown_and_escape() {
        let r = resolve(&json!("id-${x.y.id}"), &mut lk).unwrap();
        assert!(is_unknown(&r.value));
        assert_eq!(display(&r.value), UNKNOWN_TEXT);
        let r = resolve(&json!("$${HOME} ${x.y.port}"), &mut lk).unwrap();
        assert_eq!(r.value, json!("${HOME} 8080"));
    }

    #[test]
    fn parses_scopes() {
        let refs = references(&json!(
            "${shared.local_file.zone.filename} ${beta/a.b.c} ${_shared/a.b.c}"
        ))
        .unwrap();
        assert_eq!(refs[0].scope, Some(Scope::Shared));
        assert_eq!(refs[1].scope, Some(Scope::Tenant("beta".into())));
        assert_eq!(refs[2].scope, Some(Scope::Shared));
        assert!(references(&json!("${a.b}")).is_err());
        let r = &references(&json!(
            "${aws_acm_certificate.site.domain_validation_options[0].resource_record_name}"
        ))
        .unwrap()[0];
        assert_eq!(r.attr, "domain_validation_options");
        assert_eq!(
            r.path,
            vec![
                PathSeg::Index(0),
                PathSeg::Key("resource_record_name".into())
            ]
        );
        assert_eq!(
            r.walk(&json!([{"resource_record_name": "_x.acme"}])),
            Some(&json!("_x.acme"))
        );
        assert!(references(&json!("${a.b.c[x]}")).is_err());
        assert!(references(&json!("${a.b.c")).is_err());
    }
}
