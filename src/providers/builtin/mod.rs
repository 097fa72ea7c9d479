//! Built-in offline providers: `random_password`, `random_id`, `tls_private_key`,
//! `tls_self_signed_cert`, `local_file`, `time_sleep` and `zone_serial`. Attribute names follow the
//! Terraform providers of the same names.

mod local_file;
mod random;
mod serial;
mod time_sleep;
mod tls;

use std::sync::Arc;

use async_trait::async_trait;

use super::resource::{read_recorded, recover_recorded};

use super::{
    ApiStats, ApplyRequest, ApplyResponse, DeleteRequest, Family, PlanRequest, PlanResponse,
    ProviderError, ReadRequest, RecoverRequest, ResourceSchema, ResourceType, Settings,
    SettingsError,
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
            Box::new(serial::ZoneSerial),
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

/// A value generated locally and kept only in state (random values, keys, certificates):
/// the shape of those types, given [`ResourceType`] by one blanket implementation.
trait Generated: Send + Sync {
    /// The type's schema.
    fn schema(&self) -> ResourceSchema;
    /// The call counter this type reports (`random.generate`).
    fn operation(&self) -> &'static str;
    /// Checks a known configuration.
    fn validate(&self, _c: &Attrs) -> Result<(), ProviderError> {
        Ok(())
    }
    /// Extra replace triggers (renewals).
    fn plan(&self, _config: &Attrs, _prior: &Attrs) -> PlanResponse {
        PlanResponse::default()
    }
    /// Generates the value, keeping the prior one where the configuration allows.
    fn generate(&self, c: &Attrs, prior: Option<&Attrs>) -> Result<ApplyResponse, ProviderError>;
}

#[async_trait]
impl<T: Generated> ResourceType<Builtin> for T {
    fn schema(&self) -> ResourceSchema {
        Generated::schema(self)
    }
    fn validate(&self, _: &Builtin, c: &Attrs) -> Result<(), ProviderError> {
        Generated::validate(self, c)
    }
    fn max_batch(&self) -> usize {
        BATCH
    }
    async fn plan(&self, _: &Builtin, req: &PlanRequest) -> Result<PlanResponse, ProviderError> {
        Ok(match &req.prior {
            Some(prior) => Generated::plan(self, &req.config, prior),
            None => PlanResponse::default(),
        })
    }
    async fn read(&self, _: &Builtin, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        read_recorded(req)
    }
    async fn apply(&self, b: &Builtin, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        b.count(self.operation());
        self.generate(&req.config, req.prior.as_ref())
    }
    async fn delete(&self, _: &Builtin, _: &DeleteRequest) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn recover(
        &self,
        _: &Builtin,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        recover_recorded(req)
    }
}
