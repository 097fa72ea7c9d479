//! The `acme` provider (instant-acme): `acme_registration` (the account, created once per
//! directory, credentials kept encrypted in state) and `acme_certificate`, issued with
//! DNS-01 challenges written through a `[providers.dns.<name>]` server or, with
//! `dns_challenge_provider = "azure"` and `dns_challenge_config = { resource_group_name,
//! zone_name }`, through an Azure DNS zone. Challenge records
//! are checked live before the challenge is answered and removed afterwards, also on
//! failure. A certificate inside `renew_before_days` of expiry plans a replace.
//!
//! Settings: `[providers.acme]` with `directory`, `contact` (list), `ca_bundle` (a PEM
//! file, relative to the workspace, to trust a private ACME server such as Pebble) and
//! optional `eab_kid` / `eab_hmac_env` (external account binding).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, ExternalAccountKey,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::attrs::{opt_str, opt_u64, req_str};
use super::azure::Azure;
use super::challenge::ChallengeZone;
use super::dns::Servers;
use super::resource::{read_recorded, recover_recorded};
use super::{
    ApiStats, ApplyRequest, ApplyResponse, AttrSchema, DeleteRequest, ErrorKind, Family,
    IssuanceLimit, LimitKind, PlanRequest, PlanResponse, ProviderError, ReadRequest,
    RecoverRequest, ResourceSchema, ResourceType, Settings, SettingsError,
};
use crate::value::Attrs;

const NAME: &str = "acme";

#[derive(Debug, Clone, Default)]
struct AcmeSettings {
    directory: Option<String>,
    contact: Vec<String>,
    ca_bundle: Option<PathBuf>,
    eab: Option<(String, Vec<u8>)>,
    /// Issuance limits set in `landlord.toml` (`order_limit`, `domain_limit`,
    /// `duplicate_limit`), by kind.
    limits: Vec<(LimitKind, u64, Duration)>,
}

/// What the ACME types share: the CA settings, the DNS zones challenges go through, and
/// the call counters.
pub struct Acme {
    settings: AcmeSettings,
    servers: Arc<Servers>,
    azure: Arc<Azure>,
    stats: Arc<ApiStats>,
    budgets: Arc<crate::providers::budget::Budgets>,
}

/// Maps an ACME client error by its RFC 8555 problem type or transport failure.
fn failed(what: &str, e: instant_acme::Error) -> ProviderError {
    const PROBLEM: &str = "urn:ietf:params:acme:error:";
    let msg = format!("{what}: {e}");
    match &e {
        instant_acme::Error::Api(p) => {
            let problem = p.r#type.as_deref().and_then(|t| t.strip_prefix(PROBLEM));
            match (problem, p.status) {
                (Some("rateLimited"), _) | (_, Some(429)) => ProviderError::throttled(msg, None),
                (Some("serverInternal" | "badNonce"), _) | (_, Some(500..=599)) => {
                    ProviderError::transient(msg)
                }
                (Some("unauthorized" | "accountDoesNotExist"), _) => ProviderError::auth(msg),
                (Some("malformed" | "rejectedIdentifier" | "badCSR" | "caa"), _) => {
                    ProviderError::invalid(msg)
                }
                _ => ProviderError::failed(msg),
            }
        }
        instant_acme::Error::Http(_)
        | instant_acme::Error::Hyper(_)
        | instant_acme::Error::Other(_)
        | instant_acme::Error::Timeout(_) => ProviderError::transient(msg),
        _ => ProviderError::failed(msg),
    }
}

/// The issuance limits of the configured CA: those set in `landlord.toml`, else the
/// published ones of the Let's Encrypt directory in use (none for other CAs).
fn issuance_limits(s: &AcmeSettings) -> Vec<IssuanceLimit> {
    let Some(directory) = s.directory.clone() else {
        return vec![];
    };
    const WEEK: Duration = Duration::from_secs(7 * 86_400);
    const THREE_HOURS: Duration = Duration::from_secs(3 * 3600);
    let (ca, published): (&str, Vec<(LimitKind, u64, Duration)>) =
        if directory.contains("acme-v02.api.letsencrypt.org") {
            (
                "Let's Encrypt",
                vec![
                    (LimitKind::Orders, 300, THREE_HOURS),
                    (LimitKind::PerDomain, 50, WEEK),
                    (LimitKind::Duplicates, 5, WEEK),
                ],
            )
        } else if directory.contains("acme-staging-v02.api.letsencrypt.org") {
            (
                "Let's Encrypt staging",
                vec![
                    (LimitKind::Orders, 1500, THREE_HOURS),
                    (LimitKind::PerDomain, 30_000, WEEK),
                    (LimitKind::Duplicates, 30_000, WEEK),
                ],
            )
        } else {
            ("the CA", vec![])
        };
    let mut limits: Vec<(LimitKind, u64, Duration)> = published
        .into_iter()
        .filter(|(k, _, _)| !s.limits.iter().any(|(c, _, _)| c == k))
        .collect();
    limits.extend(s.limits.iter().copied());
    limits
        .into_iter()
        .map(|(kind, max, window)| IssuanceLimit {
            type_name: "acme_certificate",
            scope: directory.clone(),
            kind,
            max,
            window,
            name: format!(
                "{ca}: {max} {} per {}",
                match kind {
                    LimitKind::Orders => "new orders",
                    LimitKind::PerDomain => "certificates per registered domain",
                    LimitKind::Duplicates => "duplicate certificates",
                },
                human(window)
            ),
        })
        .collect()
}

/// `3h`, `7d`, `90s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s > 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else {
        format!("{s}s")
    }
}

impl Acme {
    /// Builds the provider from `[providers.acme]` and the DNS servers it solves challenges with.
    pub fn provider(
        settings: &Settings,
        servers: Arc<Servers>,
        azure: Arc<Azure>,
        stats: Arc<ApiStats>,
        budgets: Arc<crate::providers::budget::Budgets>,
    ) -> Result<Family<Acme>, SettingsError> {
        let mut s = AcmeSettings::default();
        if let Some(t) = settings.tables.get("acme") {
            let bad = |m: String| SettingsError {
                provider: "acme".into(),
                message: m,
            };
            for (k, v) in t {
                match k.as_str() {
                    "directory" => s.directory = v.as_str().map(str::to_string),
                    "ca_bundle" => s.ca_bundle = v.as_str().map(|p| settings.root.join(p)),
                    "contact" => {
                        s.contact = v
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|x| x.as_str().map(str::to_string))
                                    .collect()
                            })
                            .or_else(|| v.as_str().map(|x| vec![x.to_string()]))
                            .ok_or_else(|| bad("`contact` must be a list of mailto: URIs".into()))?
                    }
                    "eab_kid" | "eab_hmac_env" => {}
                    "order_limit" | "domain_limit" | "duplicate_limit" => {
                        let kind = match k.as_str() {
                            "order_limit" => LimitKind::Orders,
                            "domain_limit" => LimitKind::PerDomain,
                            _ => LimitKind::Duplicates,
                        };
                        let shape = || {
                            bad(format!(
                                "`{k}` must be a table like {{ max = 300, window = \"3h\" }}"
                            ))
                        };
                        let t = v.as_table().ok_or_else(shape)?;
                        let max = t
                            .get("max")
                            .and_then(|m| m.as_integer())
                            .filter(|m| *m >= 0)
                            .ok_or_else(shape)?;
                        let window = t
                            .get("window")
                            .and_then(|w| w.as_str())
                            .ok_or_else(shape)
                            .and_then(|w| {
                                crate::duration::parse_duration(w)
                                    .map_err(|e| bad(format!("`{k}.window`: {e}")))
                            })?;
                        s.limits.push((kind, max as u64, window));
                    }
                    other => {
                        return Err(bad(crate::suggest::unknown(
                            "setting",
                            other,
                            &[
                                "directory",
                                "contact",
                                "ca_bundle",
                                "eab_kid",
                                "eab_hmac_env",
                                "order_limit",
                                "domain_limit",
                                "duplicate_limit",
                            ],
                        )))
                    }
                }
            }
            if let (Some(kid), Some(env)) = (
                t.get("eab_kid").and_then(|v| v.as_str()),
                t.get("eab_hmac_env").and_then(|v| v.as_str()),
            ) {
                let key = std::env::var(env).map_err(|_| {
                    bad(format!(
                        "environment variable `{env}` (eab_hmac_env) is not set"
                    ))
                })?;
                use base64::Engine;
                let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(key.trim().trim_end_matches('='))
                    .map_err(|e| bad(format!("EAB HMAC key is not base64url: {e}")))?;
                s.eab = Some((kid.to_string(), key));
            }
        }
        let limits = issuance_limits(&s);
        let acme = Acme {
            settings: s,
            servers,
            azure,
            stats,
            budgets,
        };
        let types: Vec<Box<dyn ResourceType<Acme>>> =
            vec![Box::new(Registration), Box::new(Certificate)];
        Ok(Family::new(NAME, acme, types).with_limits(limits))
    }

    fn directory(&self) -> Result<String, ProviderError> {
        self.settings.directory.clone().ok_or_else(|| {
            ProviderError::invalid("[providers.acme] `directory` is not set in landlord.toml")
        })
    }

    fn builder(&self) -> Result<instant_acme::AccountBuilder, ProviderError> {
        match &self.settings.ca_bundle {
            Some(p) => Account::builder_with_root(p).map_err(|e| {
                ProviderError::invalid(format!("[providers.acme] ca_bundle `{}`: {e}", p.display()))
            }),
            None => Account::builder().map_err(|e| failed("acme client", e)),
        }
    }

    async fn register(&self, c: &Attrs) -> Result<ApplyResponse, ProviderError> {
        self.stats.record(NAME, "NewAccount");
        let mut contact: Vec<String> = self.settings.contact.clone();
        if let Some(e) = opt_str(c, "email_address")? {
            contact.push(format!("mailto:{e}"));
        }
        let refs: Vec<&str> = contact.iter().map(String::as_str).collect();
        let eab = self
            .settings
            .eab
            .as_ref()
            .map(|(kid, key)| ExternalAccountKey::new(kid.clone(), key));
        let (account, creds) = self
            .builder()?
            .create(
                &NewAccount {
                    contact: &refs,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.directory()?,
                eab.as_ref(),
            )
            .await
            .map_err(|e| failed("acme account registration", e))?;
        let mut a = c.clone();
        a.insert("account_url".into(), json!(account.id()));
        a.insert(
            "credentials".into(),
            json!(serde_json::to_string(&creds).map_err(|e| ProviderError::failed(e.to_string()))?),
        );
        Ok(ApplyResponse {
            id: account.id().to_string(),
            attributes: a,
        })
    }

    /// Where `dns_challenge_provider` publishes: a `[providers.dns.<name>]` server, or an
    /// Azure DNS zone named by `dns_challenge_config`.
    fn challenge_zone(
        &self,
        provider: &str,
        c: &Attrs,
    ) -> Result<Arc<dyn ChallengeZone>, ProviderError> {
        if let Some(server) = self.servers.named(provider) {
            return Ok(Arc::new(server.clone()));
        }
        if provider == "azure" {
            let config = c.get("dns_challenge_config").and_then(Value::as_object);
            let get = |k: &str| {
                config
                    .and_then(|m| m.get(k))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ProviderError::invalid(format!(
                            "`dns_challenge_provider = \"azure\"` needs `dns_challenge_config.{k}`"
                        ))
                    })
            };
            return self.azure.challenge_zone(
                get("resource_group_name")?,
                get("zone_name")?,
                self.servers.verification_nameservers().to_vec(),
            );
        }
        Err(ProviderError::invalid(format!("`dns_challenge_provider` `{provider}` is neither a [providers.dns.<name>] of landlord.toml nor `azure`")))
    }

    async fn issue(&self, c: &Attrs) -> Result<ApplyResponse, ProviderError> {
        let creds: AccountCredentials = serde_json::from_str(req_str(c, "account_credentials")?)
            .map_err(|e| {
                ProviderError::invalid(format!(
                    "`account_credentials` are not ACME account credentials: {e}"
                ))
            })?;
        let provider = req_str(c, "dns_challenge_provider")?;
        let server = self.challenge_zone(provider, c)?;
        let cn = req_str(c, "common_name")?.to_string();
        let mut names = vec![cn.clone()];
        for n in c
            .get("dns_names")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !names.iter().any(|x| x == n) {
                names.push(n.to_string());
            }
        }
        self.stats.record(NAME, "Account");
        let account = self
            .builder()?
            .from_credentials(creds)
            .await
            .map_err(|e| failed("acme account", e))?;
        let ids: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
        // New orders count against the CA account's order limit.
        let directory = self.settings.directory.clone().unwrap_or_default();
        let orders = self.budgets.bucket(NAME, &directory, "orders");
        if let Some(b) = &orders {
            b.acquire().await;
        }
        self.stats.record(NAME, "NewOrder");
        let mut order = account
            .new_order(&NewOrder::new(&ids))
            .await
            .map_err(|e| failed("acme order", e))
            .inspect_err(|e| {
                if let (Some(b), ErrorKind::Throttled { .. }) = (&orders, &e.kind) {
                    b.throttled();
                }
            })?;

        // Challenge records are removed whatever happens next.
        let mut written: Vec<(String, String)> = Vec::new();
        let outcome = async {
            let mut authzs = order.authorizations();
            while let Some(a) = authzs.next().await {
                let mut authz = a.map_err(|e| failed("acme authorization", e))?;
                if authz.status == AuthorizationStatus::Valid {
                    continue;
                }
                let mut ch = authz.challenge(ChallengeType::Dns01).ok_or_else(|| ProviderError::failed("the ACME server offers no dns-01 challenge"))?;
                let Identifier::Dns(domain) = ch.identifier().identifier.clone() else {
                    return Err(ProviderError::failed("unexpected ACME identifier"));
                };
                let name = format!("_acme-challenge.{}", domain.trim_start_matches("*.")).to_ascii_lowercase();
                let value = ch.key_authorization().dns_value();
                if !server.serves(&name) {
                    return Err(ProviderError::invalid(format!("dns provider `{provider}` (zone `{}`) cannot publish `{name}`", server.zone())));
                }
                server.add_txt(&name, &value).await?;
                written.push((name.clone(), value.clone()));
                wait_contains(server.as_ref(), &name, &value).await?;
                self.stats.record(NAME, "ChallengeReady");
                ch.set_ready().await.map_err(|e| failed("acme challenge", e))?;
            }
            let retry = RetryPolicy::new().initial_delay(Duration::from_millis(250)).backoff(1.5).timeout(Duration::from_secs(90));
            self.stats.record(NAME, "PollOrder");
            let status = order.poll_ready(&retry).await.map_err(|e| failed("acme order", e))?;
            if status != OrderStatus::Ready {
                return Err(ProviderError::failed(format!(
                    "the ACME server did not validate the DNS-01 challenges for {} (order {status:?}): check that `{provider}` is authoritative for these names and reachable by the CA",
                    names.join(", ")
                )));
            }
            let key = key_pair(opt_str(c, "key_type")?.unwrap_or("ecdsa-p256"))?;
            let mut params = rcgen::CertificateParams::new(names.clone()).map_err(|e| ProviderError::invalid(format!("invalid names: {e}")))?;
            params.distinguished_name = rcgen::DistinguishedName::new();
            let csr = params.serialize_request(&key).map_err(|e| ProviderError::failed(format!("csr: {e}")))?;
            self.stats.record(NAME, "Finalize");
            order.finalize_csr(csr.der()).await.map_err(|e| failed("acme finalize", e))?;
            let chain = order.poll_certificate(&retry).await.map_err(|e| failed("acme certificate", e))?;
            Ok((chain, key.serialize_pem()))
        }
        .await;
        let mut cleanup_error = None;
        for (name, value) in &written {
            if let Err(e) = server.remove_txt(name, value).await {
                cleanup_error = Some(e);
            }
        }
        let (chain, key_pem) = outcome?;
        if let Some(e) = cleanup_error {
            return Err(ProviderError::transient(format!(
                "certificate issued but a challenge record could not be removed: {e}"
            )));
        }
        let (leaf, issuer) = split_chain(&chain);
        let (not_after, serial) = leaf_facts(&leaf)?;
        let mut a = c.clone();
        a.insert("certificate_pem".into(), json!(leaf));
        a.insert("issuer_pem".into(), json!(issuer));
        a.insert("private_key_pem".into(), json!(key_pem));
        a.insert("not_after".into(), json!(not_after));
        a.insert("serial".into(), json!(serial.clone()));
        Ok(ApplyResponse {
            id: serial,
            attributes: a,
        })
    }
}

/// Waits until the served TXT set contains the challenge value.
async fn wait_contains(
    server: &dyn ChallengeZone,
    name: &str,
    value: &str,
) -> Result<(), ProviderError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if server.served_txt(name).await?.iter().any(|v| v == value) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ProviderError::transient(format!(
                "challenge record `{name}` is not served after 30s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn key_pair(kind: &str) -> Result<rcgen::KeyPair, ProviderError> {
    let alg = match kind {
        "ecdsa-p256" => &rcgen::PKCS_ECDSA_P256_SHA256,
        "ecdsa-p384" => &rcgen::PKCS_ECDSA_P384_SHA384,
        "rsa-2048" => &rcgen::PKCS_RSA_SHA256,
        other => {
            return Err(ProviderError::invalid(format!(
                "unsupported `key_type` `{other}`: ecdsa-p256, ecdsa-p384 or rsa-2048"
            )))
        }
    };
    rcgen::KeyPair::generate_for(alg)
        .map_err(|e| ProviderError::failed(format!("key generation: {e}")))
}

/// The leaf certificate and the rest of the chain.
fn split_chain(chain: &str) -> (String, String) {
    let end = "-----END CERTIFICATE-----";
    match chain.find(end) {
        Some(i) => {
            let cut = i + end.len();
            (
                format!("{}\n", chain[..cut].trim()),
                chain[cut..].trim_start().to_string(),
            )
        }
        None => (chain.to_string(), String::new()),
    }
}

/// `not_after` (RFC 3339) and serial (hex) of a PEM certificate.
fn leaf_facts(pem: &str) -> Result<(String, String), ProviderError> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| ProviderError::failed(format!("issued certificate is not PEM: {e}")))?;
    let cert = p
        .parse_x509()
        .map_err(|e| ProviderError::failed(format!("issued certificate cannot be parsed: {e}")))?;
    let not_after = OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp())
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    Ok((not_after, cert.raw_serial_as_string().replace(':', "")))
}

/// In-place updates touch only local settings (renewal window, challenge provider).
fn update_settings(prior: &Attrs, config: &Attrs) -> ApplyResponse {
    let mut a = prior.clone();
    a.extend(config.clone());
    ApplyResponse {
        id: String::new(),
        attributes: a,
    }
}

/// `acme_registration`: an ACME account.
struct Registration;

#[async_trait]
impl ResourceType<Acme> for Registration {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "acme_registration",
            attributes: vec![
                AttrSchema::optional("email_address").force_new(),
                AttrSchema::computed("account_url"),
                AttrSchema::computed("credentials").sensitive(),
            ],
        }
    }
    async fn read(&self, _: &Acme, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        read_recorded(req)
    }
    async fn apply(&self, acme: &Acme, r: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        match &r.prior {
            Some(prior) => Ok(update_settings(prior, &r.config)),
            None => acme.register(&r.config).await,
        }
    }
    async fn delete(&self, _: &Acme, _: &DeleteRequest) -> Result<(), ProviderError> {
        Ok(())
    }
    /// Nothing external is left half-done that state needs: an unrecorded order is
    /// simply issued again (its challenge records were removed or expire).
    async fn recover(
        &self,
        _: &Acme,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        recover_recorded(req)
    }
}

/// `acme_certificate`: issued over DNS-01, replaced when its renewal is due.
struct Certificate;

#[async_trait]
impl ResourceType<Acme> for Certificate {
    fn schema(&self) -> ResourceSchema {
        ResourceSchema {
            type_name: "acme_certificate",
            attributes: vec![
                AttrSchema::required("account_credentials").force_new(),
                AttrSchema::required("common_name").force_new(),
                AttrSchema::optional("dns_names").force_new(),
                AttrSchema::optional("key_type").force_new(),
                AttrSchema::required("dns_challenge_provider"),
                AttrSchema::optional("dns_challenge_config"),
                AttrSchema::optional("renew_before_days"),
                AttrSchema::computed("certificate_pem"),
                AttrSchema::computed("issuer_pem"),
                AttrSchema::computed("private_key_pem").sensitive(),
                AttrSchema::computed("not_after"),
                AttrSchema::computed("serial"),
            ],
        }
    }
    async fn plan(&self, _: &Acme, req: &PlanRequest) -> Result<PlanResponse, ProviderError> {
        let Some(prior) = req.prior.as_ref() else {
            return Ok(PlanResponse::default());
        };
        let days = opt_u64(&req.config, "renew_before_days")?.unwrap_or(30);
        let not_after = prior
            .get("not_after")
            .and_then(Value::as_str)
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
        Ok(match not_after {
            Some(t) if t - time::Duration::days(days as i64) <= OffsetDateTime::now_utc() => {
                PlanResponse {
                    requires_replace: vec!["not_after".into()],
                    replace_reason: Some(format!(
                        "renewal due: certificate expires {}",
                        t.format(&Rfc3339).unwrap_or_default()
                    )),
                    ..Default::default()
                }
            }
            _ => PlanResponse::default(),
        })
    }
    async fn read(&self, _: &Acme, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        read_recorded(req)
    }
    async fn apply(&self, acme: &Acme, r: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        match &r.prior {
            Some(prior) => Ok(update_settings(prior, &r.config)),
            None => acme.issue(&r.config).await,
        }
    }
    async fn delete(&self, _: &Acme, _: &DeleteRequest) -> Result<(), ProviderError> {
        Ok(())
    }
    /// Nothing external is left half-done that state needs: an unrecorded order is
    /// simply issued again (its challenge records were removed or expire).
    async fn recover(
        &self,
        _: &Acme,
        req: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        recover_recorded(req)
    }
}
