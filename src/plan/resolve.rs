//! Reference resolution shared by plan (values may be unknown) and apply (all known).

use crate::addr::{ResourceAddr, Scope};
use crate::providers::ResourceSchema;
use crate::value::{self, Attrs, Lookup, RefSyntaxError, Reference};

use super::PlanError;

/// What is known about a referenced resource.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// Its attributes so far.
    pub attrs: &'a Attrs,
    /// Which of them are sensitive.
    pub sensitive: &'a [String],
    /// Whether every attribute is final (false while its create is still planned).
    pub complete: bool,
}

/// The address a reference points to from `from`.
pub fn target(from: &ResourceAddr, r: &Reference) -> Option<ResourceAddr> {
    let scope = r.scope.clone().unwrap_or_else(|| from.scope.clone());
    if let (Scope::Tenant(_), false) = (&scope, scope == from.scope) {
        return None;
    }
    ResourceAddr::new(scope, &r.rtype, &r.name).ok()
}

struct RefError(String);

impl From<RefSyntaxError> for RefError {
    fn from(e: RefSyntaxError) -> Self {
        RefError(e.to_string())
    }
}

/// Resolves the properties of `addr`; returns the configuration and its sensitive keys
/// (schema-sensitive ones and those fed by a sensitive attribute).
pub fn resolve_config<'a>(
    addr: &ResourceAddr,
    props: &Attrs,
    schema: &ResourceSchema,
    known: &dyn Fn(&ResourceAddr) -> Option<Known<'a>>,
) -> Result<(Attrs, Vec<String>), PlanError> {
    let mut out = Attrs::new();
    let mut sensitive: Vec<String> = schema
        .attributes
        .iter()
        .filter(|a| a.sensitive)
        .map(|a| a.name.to_string())
        .collect();
    for (k, v) in props {
        let mut lookup = |r: &Reference| -> Result<Lookup, RefError> {
            let t = target(addr, r)
                .ok_or_else(|| RefError(format!("reference `${{{r}}}` leaves the tenant")))?;
            let Some(kn) = known(&t) else {
                return Err(RefError(format!("reference `${{{r}}}`: `{t}` is not available (it failed or is not part of this run)")));
            };
            match kn
                .attrs
                .get(&r.attr)
                .filter(|v| !value::is_unknown(v))
                .map(|v| r.walk(v))
            {
                Some(Some(v)) => Ok(Lookup::Known(v.clone(), kn.sensitive.contains(&r.attr))),
                _ if !kn.complete => Ok(Lookup::Unknown),
                Some(None) => Err(RefError(format!(
                    "reference `${{{r}}}`: `{t}` has no such element"
                ))),
                None => Err(RefError(format!(
                    "reference `${{{r}}}`: `{t}` has no attribute `{}`",
                    r.attr
                ))),
            }
        };
        let resolved =
            value::resolve(v, &mut lookup).map_err(|RefError(message)| PlanError::Reference {
                address: addr.clone(),
                message,
            })?;
        if resolved.sensitive && !sensitive.contains(k) {
            sensitive.push(k.clone());
        }
        out.insert(k.clone(), resolved.value);
    }
    sensitive.sort();
    Ok((out, sensitive))
}
