//! Built-in offline providers: `random_password`, `random_id`, `tls_private_key`,
//! `tls_self_signed_cert`, `local_file` and `time_sleep`. Attribute names follow the
//! Terraform providers of the same names.

mod local_file;
mod random;
mod time_sleep;
mod tls;

use std::sync::Arc;

use super::{
    ApiStats, ApplyResponse, Family, Interrupted, ProviderError, ReadRequest, RecoverRequest,
    ResourceType, Settings, SettingsError,
};
use crate::value::Attrs;

pub(crate) const NAME: &str = "builtin";

/// What the built-in types share: the file root and the call counters.
pub struct Builtin {
    files: local_file::Files,
    stats: Arc<ApiStats>,
}

impl Builtin {
    /// Builds the provider; `[providers.local] root` bounds where `local_file` may write.
    pub fn provider(
        settings: &Settings,
        stats: Arc<ApiStats>,
    ) -> Result<Family<Builtin>, SettingsError> {
        let mut root = settings.root.clone();
        if let Some(t) = settings.tables.get("local") {
            for (k, v) in t {
                match (k.as_str(), v.as_str()) {
                    ("root", Some(r)) => root = settings.root.join(r),
                    _ => {
                        return Err(SettingsError {
                            provider: "local".into(),
                            message: format!(
                                "unknown or mistyped setting `{k}`: expected `root = \"DIR\"`"
                            ),
                        })
                    }
                }
            }
        }
        let types: Vec<Box<dyn ResourceType<Builtin>>> = vec![
            Box::new(random::Password),
            Box::new(random::Id),
            Box::new(tls::PrivateKey),
            Box::new(tls::SelfSignedCert),
            Box::new(local_file::LocalFile),
            Box::new(time_sleep::TimeSleep),
        ];
        let builtin = Builtin {
            files: local_file::Files::new(settings.root.clone(), root),
            stats,
        };
        Ok(Family::new(NAME, builtin, types))
    }

    fn count(&self, op: &str) {
        self.stats.record(NAME, op);
    }
}

/// How many generated values or files one call carries.
const BATCH: usize = 16;

/// Generated values and timers live only in state: they cannot drift.
fn read_recorded(req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
    Ok(Some(req.prior.clone()))
}

/// Recovery of a generated value: an update that was not recorded keeps the old value;
/// an unrecorded create left nothing behind.
fn recover_generated(req: &RecoverRequest) -> Result<Option<ApplyResponse>, ProviderError> {
    Ok(match (req.op, &req.prior, &req.id) {
        (Interrupted::Update, Some(prior), Some(id)) => Some(ApplyResponse {
            id: id.clone(),
            attributes: prior.clone(),
        }),
        _ => None,
    })
}
