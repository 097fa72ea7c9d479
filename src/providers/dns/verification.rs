//! `domain_verification`: proof that a tenant controls a custom domain. The tenant
//! publishes a TXT token at `_landlord-verification.<domain>` in their own DNS; apply
//! waits (bounded) until a resolver sees it, so dependent records and certificates only
//! proceed for verified domains. The token is derived from the address and domain, so it
//! is the same on every run and can be handed to the tenant before the first apply.

use async_trait::async_trait;

use super::Dns;
use crate::providers::resource::read_recorded;
use crate::providers::{ApplyRequest, DeleteRequest, ReadRequest, RecoverRequest, ResourceType};
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;

use crate::addr::ResourceAddr;
use crate::providers::attrs::{opt_u64, req_str};
use crate::providers::{ApiStats, ApplyResponse, AttrSchema, ProviderError, ResourceSchema};
use crate::value::Attrs;

pub(super) fn schema() -> ResourceSchema {
    ResourceSchema {
        type_name: "domain_verification",
        attributes: vec![
            AttrSchema::required("domain").force_new(),
            AttrSchema::optional("timeout_seconds"),
            AttrSchema::computed("token"),
            AttrSchema::computed("record_name"),
        ],
    }
}

/// The token a tenant must publish for `domain`.
pub fn token(address: &ResourceAddr, domain: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{address}\0{domain}").as_bytes());
    format!("landlord-verification={}", &hex::encode(h)[..32])
}

/// Where the token goes.
pub fn record_name(domain: &str) -> String {
    format!(
        "_landlord-verification.{}",
        domain.trim_end_matches('.').to_ascii_lowercase()
    )
}

/// Resolves TXT values of `name` through `nameservers` (system resolver when empty).
async fn txt(nameservers: &[SocketAddr], name: &str) -> Result<Vec<String>, ProviderError> {
    use hickory_resolver::config::{NameServerConfig, ResolverConfig};
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    let mut builder = if nameservers.is_empty() {
        hickory_resolver::TokioResolver::builder_tokio()
            .map_err(|e| ProviderError::failed(format!("system resolver: {e}")))?
    } else {
        let servers = nameservers
            .iter()
            .map(|a| {
                let mut ns = NameServerConfig::udp_and_tcp(a.ip());
                for c in ns.connections.iter_mut() {
                    c.port = a.port();
                }
                ns
            })
            .collect();
        hickory_resolver::Resolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
    };
    builder.options_mut().cache_size = 0;
    let resolver = builder
        .build()
        .map_err(|e| ProviderError::failed(format!("resolver: {e}")))?;
    match resolver.txt_lookup(format!("{name}.")).await {
        Ok(l) => Ok(l
            .answers()
            .iter()
            .map(|r| super::server::value_text(&r.data))
            .collect()),
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(vec![]),
        Err(e) => Err(ProviderError::transient(format!("resolving `{name}`: {e}"))),
    }
}

/// Waits until the token is published, or fails with what to publish.
pub(super) async fn verify(
    address: &ResourceAddr,
    c: &Attrs,
    nameservers: &[SocketAddr],
    stats: &ApiStats,
) -> Result<ApplyResponse, ProviderError> {
    let domain = req_str(c, "domain")?;
    let (tok, name) = (token(address, domain), record_name(domain));
    let timeout = Duration::from_secs(opt_u64(c, "timeout_seconds")?.unwrap_or(60));
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        stats.record("dns", "VerifyLookup");
        if txt(nameservers, &name).await?.contains(&tok) {
            let mut a = c.clone();
            a.insert("token".into(), json!(tok));
            a.insert("record_name".into(), json!(name));
            return Ok(ApplyResponse {
                id: name,
                attributes: a,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            // Waiting longer inside one run does not help the tenant: fail this resource
            // (only its dependents stop) with what to publish, and let the next run retry.
            return Err(ProviderError::failed(format!(
                "domain `{domain}` is not verified yet: publish TXT `{name}` = \"{tok}\" in the domain's DNS, then run apply again"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `domain_verification`: a one-time gate; once passed it stays passed.
pub(super) struct DomainVerification;

#[async_trait]
impl ResourceType<Dns> for DomainVerification {
    fn schema(&self) -> ResourceSchema {
        schema()
    }
    async fn read(&self, _: &Dns, req: &ReadRequest) -> Result<Option<Attrs>, ProviderError> {
        read_recorded(req)
    }
    async fn apply(&self, dns: &Dns, r: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        verify(
            &r.address,
            &r.config,
            &dns.servers.verification_nameservers,
            &dns.stats,
        )
        .await
    }
    async fn delete(&self, _: &Dns, _: &DeleteRequest) -> Result<(), ProviderError> {
        Ok(())
    }
    /// An unrecorded check is simply made again.
    async fn recover(
        &self,
        _: &Dns,
        _: &RecoverRequest,
    ) -> Result<Option<ApplyResponse>, ProviderError> {
        Ok(None)
    }
}
