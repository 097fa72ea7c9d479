//! Built-in offline providers: `random_password`, `random_id`, `tls_private_key`,
//! `tls_self_signed_cert`, `local_file` and `time_sleep`. Attribute names follow the
//! Terraform providers of the same names.

mod local_file;
mod random;
mod time_sleep;
mod tls;

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    ApiStats, ApplyRequest, ApplyResponse, DeleteRequest, Provider, ProviderError, ReadRequest,
    ReadResponse, RecoverRequest, Recovery, ResourceSchema, Settings, SettingsError,
};
use crate::addr::ResourceAddr;
use crate::value::Attrs;

pub(crate) const NAME: &str = "builtin";

/// The built-in provider serving every offline resource type.
pub struct Builtin {
    schemas: Vec<ResourceSchema>,
    files: local_file::Files,
    stats: Arc<ApiStats>,
}

impl Builtin {
    /// Builds the provider; `[providers.local] root` bounds where `local_file` may write.
    pub fn new(settings: &Settings, stats: Arc<ApiStats>) -> Result<Builtin, SettingsError> {
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
        let schemas = vec![
            random::password_schema(),
            random::id_schema(),
            tls::private_key_schema(),
            tls::self_signed_cert_schema(),
            local_file::schema(),
            time_sleep::schema(),
        ];
        Ok(Builtin {
            schemas,
            files: local_file::Files::new(settings.root.clone(), root),
            stats,
        })
    }

    fn count(&self, op: &str) {
        self.stats.record(NAME, op);
    }

    async fn apply_one(&self, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let c = &req.config;
        match req.address.rtype.as_str() {
            "random_password" => {
                self.count("random.generate");
                random::password(c, req.prior.as_ref())
            }
            "random_id" => {
                self.count("random.generate");
                random::id(c, req.prior.as_ref())
            }
            "tls_private_key" => {
                self.count("tls.generate_key");
                tls::private_key(c, req.prior.as_ref())
            }
            "tls_self_signed_cert" => {
                self.count("tls.sign_certificate");
                tls::self_signed_cert(c, req.prior.as_ref())
            }
            "local_file" => {
                self.count("file.write");
                self.files.write(c)
            }
            "time_sleep" => {
                self.count("time.sleep");
                time_sleep::create(c, req.prior.as_ref()).await
            }
            other => Err(ProviderError::invalid(format!(
                "unknown resource type `{other}`"
            ))),
        }
    }
}

#[async_trait]
impl Provider for Builtin {
    fn name(&self) -> &str {
        NAME
    }

    fn schemas(&self) -> &[ResourceSchema] {
        &self.schemas
    }

    fn validate(&self, address: &ResourceAddr, config: &Attrs) -> Result<(), ProviderError> {
        match address.rtype.as_str() {
            "local_file" => self.files.validate(config),
            "tls_private_key" => tls::validate_key(config),
            "random_password" => random::validate_password(config),
            "time_sleep" => time_sleep::validate(config),
            _ => Ok(()),
        }
    }

    fn max_batch(&self, type_name: &str) -> usize {
        match type_name {
            "time_sleep" => 1,
            _ => 16,
        }
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        match req.address.rtype.as_str() {
            "local_file" => {
                self.count("file.read");
                Ok(ReadResponse {
                    current: self.files.read(&req.prior)?,
                })
            }
            // Generated values and timers exist only in state: they cannot drift.
            _ => Ok(ReadResponse {
                current: Some(req.prior),
            }),
        }
    }

    async fn plan(&self, req: super::PlanRequest) -> Result<super::PlanResponse, ProviderError> {
        match (req.address.rtype.as_str(), &req.prior) {
            ("tls_self_signed_cert", Some(prior)) => Ok(tls::plan_renewal(&req.config, prior)),
            ("local_file", Some(_)) => Ok(super::PlanResponse {
                changes_on_update: vec!["content_sha256".into()],
                ..Default::default()
            }),
            _ => Ok(super::PlanResponse::default()),
        }
    }

    async fn apply(&self, reqs: Vec<ApplyRequest>) -> Vec<Result<ApplyResponse, ProviderError>> {
        super::in_order(reqs.iter().map(|r| self.apply_one(r)).collect()).await
    }

    async fn delete(&self, req: DeleteRequest) -> Result<(), ProviderError> {
        match req.address.rtype.as_str() {
            "local_file" => {
                self.count("file.delete");
                self.files.delete(&req.prior)
            }
            "time_sleep" => time_sleep::destroy(&req.prior).await,
            _ => Ok(()),
        }
    }

    async fn recover(&self, req: RecoverRequest) -> Result<Recovery, ProviderError> {
        match (req.address.rtype.as_str(), req.op) {
            // A file may or may not have been written: adopt what is on disk, the next
            // plan compares it with the desired content.
            ("local_file", super::IntentOp::Create | super::IntentOp::Update) => {
                self.count("file.read");
                self.files.clean_partial(&req.config)?;
                match self.files.read(&req.config)? {
                    Some(attrs) => Ok(Recovery::Adopt(ApplyResponse {
                        id: local_file::id(&attrs),
                        attributes: attrs,
                    })),
                    None => Ok(Recovery::Gone),
                }
            }
            ("local_file", super::IntentOp::Delete) => {
                let prior = req.prior.as_ref().unwrap_or(&req.config);
                self.files.delete(prior)?;
                Ok(Recovery::Gone)
            }
            // An update of a generated value that was not recorded keeps the old value.
            (_, super::IntentOp::Update) => match (req.prior, req.id) {
                (Some(prior), Some(id)) => Ok(Recovery::Adopt(ApplyResponse {
                    id,
                    attributes: prior,
                })),
                _ => Ok(Recovery::Gone),
            },
            // Generated values live only in state: an unrecorded create left nothing behind.
            _ => Ok(Recovery::Gone),
        }
    }
}
