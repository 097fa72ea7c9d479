//! `zone_serial`: a DNS zone serial that only grows. It is stable while its `triggers`
//! stay the same and moves on, as `YYYYMMDDnn`, when they change: the date of today with
//! `nn = 00`, or one above the previous serial when that is not greater. Secondaries
//! transfer a zone only when its serial grew, so a serial derived from anything that can
//! shrink (a tenant count) would strand them after a deletion.

use serde_json::{json, Value};

use super::Generated;
use crate::providers::{ApplyResponse, AttrSchema, PlanResponse, ProviderError, ResourceSchema};
use crate::value::Attrs;

/// `zone_serial`.
pub(super) struct ZoneSerial;

/// Today's first serial, `YYYYMMDD00`.
fn today() -> u64 {
    let d = time::OffsetDateTime::now_utc().date();
    (d.year() as u64 * 10_000 + u64::from(u8::from(d.month())) * 100 + u64::from(d.day())) * 100
}

/// The serial after `prior`: today's first, or one more when that is not greater.
fn next(prior: u64, today: u64) -> u64 {
    today.max(prior + 1)
}

impl Generated for ZoneSerial {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "zone_serial",
            attributes: vec![
                AttrSchema::optional("triggers"),
                AttrSchema::computed("serial"),
            ],
        }
    }
    fn operation(&self) -> &'static str {
        "serial.next"
    }
    fn plan(&self, config: &Attrs, prior: &Attrs) -> PlanResponse {
        PlanResponse {
            changes_on_update: if config.get("triggers") != prior.get("triggers") {
                vec!["serial".into()]
            } else {
                vec![]
            },
            ..Default::default()
        }
    }
    fn generate(&self, c: &Attrs, prior: Option<&Attrs>) -> Result<ApplyResponse, ProviderError> {
        let prior_serial = prior.and_then(|p| p.get("serial")).and_then(Value::as_u64);
        let serial = match (prior, prior_serial) {
            (Some(p), Some(s)) if p.get("triggers") == c.get("triggers") => s,
            (_, Some(s)) => next(s, today()),
            _ => today(),
        };
        let mut attributes = c.clone();
        attributes.insert("serial".into(), json!(serial));
        Ok(ApplyResponse {
            id: serial.to_string(),
            attributes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serial_only_grows_and_holds_while_the_triggers_do() {
        assert_eq!(next(2026120600, 2026120600), 2026120601);
        assert_eq!(next(2026120599, 2026120700), 2026120700);
        assert_eq!(
            next(2030010100, 2026120600),
            2030010101,
            "never back in time"
        );
        let mut c = Attrs::new();
        c.insert("triggers".into(), json!({"records": "a b"}));
        let first = ZoneSerial.generate(&c, None).unwrap().attributes;
        let same = ZoneSerial.generate(&c, Some(&first)).unwrap().attributes;
        assert_eq!(first["serial"], same["serial"]);
        c.insert("triggers".into(), json!({"records": "a"}));
        let after = ZoneSerial.generate(&c, Some(&same)).unwrap().attributes;
        assert!(after["serial"].as_u64() > same["serial"].as_u64());
    }
}
