//! One authoritative DNS server reached by RFC 2136 updates signed with TSIG, zone
//! transfers and plain queries (hickory). Shared by the `dns` provider and by ACME
//! DNS-01 challenges.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_net::DnsMultiplexer;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType, TSigner};

use crate::providers::{ApiStats, ProviderError};

/// A record set as landlord sees it: values in presentation form (TXT unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrSet {
    /// Owner name without the trailing dot, lowercase.
    pub name: String,
    /// Record type (`A`, `TXT`, ...).
    pub rtype: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// Values, sorted.
    pub values: Vec<String>,
}

/// Settings of one `[providers.dns.<name>]` server.
#[derive(Clone)]
pub struct DnsServer {
    /// The configured name.
    pub name: String,
    /// Server address.
    pub addr: SocketAddr,
    /// Zone apex without the trailing dot.
    pub zone: String,
    signer: Option<TSigner>,
    unavailable: Option<String>,
    /// The zone's authoritative nameservers, checked for what they serve (default: `addr`).
    pub nameservers: Vec<SocketAddr>,
    stats: Arc<ApiStats>,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DnsServer({} {} {})", self.name, self.addr, self.zone)
    }
}

const STATS: &str = "dns";

fn fqdn(name: &str) -> Result<Name, ProviderError> {
    Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
        .map_err(|e| ProviderError::invalid(format!("invalid DNS name `{name}`: {e}")))
}

/// Presentation text of an rdata as landlord records it (TXT strings unquoted and joined).
pub fn value_text(r: &RData) -> String {
    match r {
        RData::TXT(t) => t
            .txt_data
            .iter()
            .map(|b| String::from_utf8_lossy(b).to_string())
            .collect::<Vec<_>>()
            .join(""),
        other => other.to_string(),
    }
}

/// Parses a value given in a template into rdata of `rtype`.
pub fn parse_value(rtype: RecordType, v: &str) -> Result<RData, ProviderError> {
    if rtype == RecordType::TXT {
        return Ok(RData::TXT(hickory_proto::rr::rdata::TXT::new(vec![
            v.to_string()
        ])));
    }
    RData::try_from_str(rtype, v)
        .map_err(|e| ProviderError::invalid(format!("invalid {rtype} value `{v}`: {e}")))
}

impl DnsServer {
    /// A server; `secret` is the base64 TSIG secret.
    pub fn new(
        name: &str,
        addr: SocketAddr,
        zone: &str,
        tsig: Option<(&str, &str, &str)>,
        stats: Arc<ApiStats>,
    ) -> Result<DnsServer, String> {
        let signer = match tsig {
            Some((key_name, algorithm, secret)) => {
                let key = base64::engine::general_purpose::STANDARD
                    .decode(secret.trim())
                    .map_err(|e| format!("TSIG secret is not base64: {e}"))?;
                let alg = match algorithm {
                    "hmac-sha256" => TsigAlgorithm::HmacSha256,
                    "hmac-sha384" => TsigAlgorithm::HmacSha384,
                    "hmac-sha512" => TsigAlgorithm::HmacSha512,
                    other => return Err(format!("unsupported tsig_algorithm `{other}` (hmac-sha256, hmac-sha384, hmac-sha512)")),
                };
                let key_name = Name::from_ascii(key_name)
                    .map_err(|e| format!("invalid tsig_key_name: {e}"))?;
                Some(
                    TSigner::new(key, alg, key_name, 300)
                        .map_err(|e| format!("invalid TSIG key: {e}"))?,
                )
            }
            None => None,
        };
        Ok(DnsServer {
            name: name.into(),
            addr,
            zone: zone.trim_end_matches('.').to_ascii_lowercase(),
            signer,
            unavailable: None,
            nameservers: vec![addr],
            stats,
        })
    }

    /// Whether `name` lies in this server's zone.
    pub fn serves(&self, name: &str) -> bool {
        let n = name.trim_end_matches('.').to_ascii_lowercase();
        n == self.zone || n.ends_with(&format!(".{}", self.zone))
    }

    /// Marks the server unusable (a missing secret), with the reason.
    pub fn unavailable(mut self, why: Option<String>) -> Self {
        self.unavailable = why;
        self
    }

    fn usable(&self) -> Result<(), ProviderError> {
        match &self.unavailable {
            Some(why) => Err(ProviderError::auth(why.clone())),
            None => Ok(()),
        }
    }

    fn udp(&self) -> Result<Client<TokioRuntimeProvider>, ProviderError> {
        self.usable()?;
        let stream = UdpClientStream::builder(self.addr, TokioRuntimeProvider::default())
            .with_timeout(Some(Duration::from_secs(5)))
            .with_signer(self.signer.clone())
            .build();
        let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
        tokio::spawn(bg);
        Ok(client)
    }

    async fn tcp(&self) -> Result<Client<TokioRuntimeProvider>, ProviderError> {
        self.usable()?;
        let (fut, handle) = TcpClientStream::new(
            self.addr,
            None,
            Some(Duration::from_secs(5)),
            TokioRuntimeProvider::default(),
        );
        let stream = fut
            .await
            .map_err(|e| self.net_error("connect", &e.to_string()))?;
        let mut mux = DnsMultiplexer::new(stream, handle).with_timeout(Duration::from_secs(10));
        if let Some(s) = &self.signer {
            mux = mux.with_signer(s.clone());
        }
        let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(mux);
        tokio::spawn(bg);
        Ok(client)
    }

    fn net_error(&self, op: &str, msg: &str) -> ProviderError {
        // hickory reports a refused TSIG signature as a HMAC/truncation protocol error.
        if msg.contains("HMAC")
            || msg.contains("hmac")
            || msg.contains("TSIG")
            || msg.contains("tsig")
        {
            ProviderError::auth(format!(
                "dns server `{}` ({}) rejected the TSIG signature of {op}: check the key name and secret",
                self.name, self.addr
            ))
        } else {
            ProviderError::transient(format!(
                "dns server `{}` ({}): {op}: {msg}",
                self.name, self.addr
            ))
        }
    }

    fn check(&self, op: &str, rc: ResponseCode) -> Result<(), ProviderError> {
        match rc {
            ResponseCode::NoError => Ok(()),
            ResponseCode::NotAuth | ResponseCode::BADSIG | ResponseCode::BADKEY | ResponseCode::BADTIME => Err(ProviderError::auth(format!(
                "dns server `{}` refused {op} ({rc}): check the TSIG key name, algorithm and secret",
                self.name
            ))),
            ResponseCode::YXRRSet | ResponseCode::NXRRSet | ResponseCode::YXDomain | ResponseCode::NXDomain => Err(ProviderError::conflict(format!(
                "dns server `{}`: {op} was refused because the record set changed concurrently ({rc}); run plan again",
                self.name
            ))),
            ResponseCode::Refused => Err(ProviderError::auth(format!("dns server `{}` refused {op}: the zone does not allow this update", self.name))),
            ResponseCode::ServFail => Err(ProviderError::transient(format!("dns server `{}`: {op}: SERVFAIL", self.name))),
            other => Err(ProviderError::failed(format!("dns server `{}`: {op}: {other}", self.name))),
        }
    }

    fn rrset(&self, s: &RrSet) -> Result<RecordSet, ProviderError> {
        let rtype = RecordType::from_str_ok(&s.rtype)?;
        let mut rs = RecordSet::with_ttl(fqdn(&s.name)?, rtype, s.ttl);
        for v in &s.values {
            rs.add_rdata(parse_value(rtype, v)?);
        }
        Ok(rs)
    }

    /// Creates an rrset; refused (conflict) when one already exists.
    pub async fn create(&self, s: &RrSet) -> Result<(), ProviderError> {
        self.stats.record(STATS, "Update");
        let mut c = self.udp()?;
        let resp = c
            .create(self.rrset(s)?, fqdn(&self.zone)?)
            .await
            .map_err(|e| self.net_error("update", &e.to_string()))?;
        self.check("create", resp.metadata.response_code)
    }

    /// Replaces `current` with `new`; refused (conflict) when the live set is not `current`.
    pub async fn swap(&self, current: &RrSet, new: &RrSet) -> Result<(), ProviderError> {
        self.stats.record(STATS, "Update");
        let mut c = self.udp()?;
        let resp = c
            .compare_and_swap(self.rrset(current)?, self.rrset(new)?, fqdn(&self.zone)?)
            .await
            .map_err(|e| self.net_error("update", &e.to_string()))?;
        self.check("compare-and-swap", resp.metadata.response_code)
    }

    /// Adds one value to an rrset (creating it).
    pub async fn append(&self, s: &RrSet) -> Result<(), ProviderError> {
        self.stats.record(STATS, "Update");
        let mut c = self.udp()?;
        let resp = c
            .append(self.rrset(s)?, fqdn(&self.zone)?, false)
            .await
            .map_err(|e| self.net_error("update", &e.to_string()))?;
        self.check("append", resp.metadata.response_code)
    }

    /// Deletes exactly these values.
    pub async fn delete_values(&self, s: &RrSet) -> Result<(), ProviderError> {
        self.stats.record(STATS, "Update");
        let mut c = self.udp()?;
        let resp = c
            .delete_by_rdata(self.rrset(s)?, fqdn(&self.zone)?)
            .await
            .map_err(|e| self.net_error("update", &e.to_string()))?;
        self.check("delete", resp.metadata.response_code)
    }

    /// Deletes a whole rrset (name and type).
    pub async fn delete_rrset(&self, name: &str, rtype: &str) -> Result<(), ProviderError> {
        self.stats.record(STATS, "Update");
        let rtype = RecordType::from_str_ok(rtype)?;
        let placeholder = match rtype {
            RecordType::TXT => parse_value(rtype, "")?,
            RecordType::A => parse_value(rtype, "0.0.0.0")?,
            RecordType::AAAA => parse_value(rtype, "::")?,
            _ => RData::Update0(rtype),
        };
        let rec = Record::from_rdata(fqdn(name)?, 0, placeholder);
        let mut c = self.udp()?;
        let resp = c
            .delete_rrset(rec, fqdn(&self.zone)?)
            .await
            .map_err(|e| self.net_error("update", &e.to_string()))?;
        self.check("delete", resp.metadata.response_code)
    }

    /// The live rrset at `name`/`rtype` (an authoritative query).
    pub async fn query(&self, name: &str, rtype: &str) -> Result<Option<RrSet>, ProviderError> {
        self.stats.record(STATS, "Query");
        let rt = RecordType::from_str_ok(rtype)?;
        let mut c = self.udp()?;
        let resp = c
            .query(fqdn(name)?, DNSClass::IN, rt)
            .await
            .map_err(|e| self.net_error("query", &e.to_string()))?;
        match resp.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            rc => self.check("query", rc)?,
        }
        Ok(
            collect(resp.answers.iter().filter(|r| r.record_type() == rt))
                .into_iter()
                .next(),
        )
    }

    /// Every rrset of the zone, by one (signed) zone transfer.
    pub async fn transfer(&self) -> Result<Vec<RrSet>, ProviderError> {
        self.stats.record(STATS, "AXFR");
        let mut c = self.tcp().await?;
        let mut stream = c.zone_transfer(fqdn(&self.zone)?, None);
        let mut records = Vec::new();
        while let Some(resp) = stream.next().await {
            let resp = resp.map_err(|e| self.net_error("zone transfer", &e.to_string()))?;
            self.check("zone transfer", resp.metadata.response_code)?;
            records.extend(
                resp.answers
                    .iter()
                    .filter(|r| r.record_type() != RecordType::SOA)
                    .cloned(),
            );
        }
        Ok(collect(records.iter()))
    }
}

/// Groups records into rrsets.
fn collect<'a>(records: impl Iterator<Item = &'a Record>) -> Vec<RrSet> {
    let mut sets: Vec<RrSet> = Vec::new();
    for r in records {
        let name = r.name.to_ascii().trim_end_matches('.').to_ascii_lowercase();
        let rtype = r.record_type().to_string();
        let v = value_text(&r.data);
        match sets.iter_mut().find(|s| s.name == name && s.rtype == rtype) {
            Some(s) => s.values.push(v),
            None => sets.push(RrSet {
                name,
                rtype,
                ttl: r.ttl,
                values: vec![v],
            }),
        }
    }
    for s in &mut sets {
        s.values.sort();
    }
    sets
}

trait FromStrOk {
    fn from_str_ok(s: &str) -> Result<RecordType, ProviderError>;
}

impl FromStrOk for RecordType {
    fn from_str_ok(s: &str) -> Result<RecordType, ProviderError> {
        s.parse::<RecordType>()
            .map_err(|_| ProviderError::invalid(format!("unknown record type `{s}`")))
    }
}

impl DnsServer {
    /// What a resolver asking this server gets for `name`/`rtype` (values, sorted): the
    /// served answer, as opposed to what the update API accepted.
    pub async fn resolve(&self, name: &str, rtype: &str) -> Result<Vec<String>, ProviderError> {
        self.resolve_at(self.addr, name, rtype).await
    }

    /// What the nameserver at `at` answers for `name`/`rtype` (values, sorted).
    pub async fn resolve_at(
        &self,
        at: SocketAddr,
        name: &str,
        rtype: &str,
    ) -> Result<Vec<String>, ProviderError> {
        self.stats.record(STATS, "Resolve");
        lookup(at, name, rtype).await
    }

    /// Waits until the served answer equals `want` (sorted), or `timeout` passes.
    pub async fn wait_served(
        &self,
        name: &str,
        rtype: &str,
        want: &[String],
        timeout: Duration,
    ) -> Result<(), ProviderError> {
        let mut want = want.to_vec();
        want.sort();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.resolve(name, rtype).await?;
            if got == want {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProviderError::transient(format!(
                    "`{name}` {rtype} is served as {got:?}, not {want:?}, after {timeout:?} (propagation_timeout)"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// What the nameserver at `at` answers for `name`/`rtype` (values, sorted), uncached.
pub async fn lookup(at: SocketAddr, name: &str, rtype: &str) -> Result<Vec<String>, ProviderError> {
    use hickory_resolver::config::{NameServerConfig, ResolverConfig};
    use hickory_resolver::net::runtime::TokioRuntimeProvider as ResolverRuntime;
    let rt = RecordType::from_str_ok(rtype)?;
    let mut ns = NameServerConfig::udp_and_tcp(at.ip());
    for c in ns.connections.iter_mut() {
        c.port = at.port();
    }
    let mut builder = hickory_resolver::Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![ns]),
        ResolverRuntime::default(),
    );
    builder.options_mut().cache_size = 0;
    let resolver = builder
        .build()
        .map_err(|e| ProviderError::failed(format!("resolver: {e}")))?;
    match resolver.lookup(fqdn(name)?, rt).await {
        Ok(l) => {
            let mut v: Vec<String> = l
                .answers()
                .iter()
                .filter(|r| r.record_type() == rt)
                .map(|r| value_text(&r.data))
                .collect();
            v.sort();
            Ok(v)
        }
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(vec![]),
        Err(e) => Err(ProviderError::transient(format!(
            "resolving `{name}` {rtype} at {at}: {e}"
        ))),
    }
}

#[async_trait::async_trait]
impl crate::providers::challenge::ChallengeZone for DnsServer {
    fn zone(&self) -> &str {
        &self.zone
    }

    fn serves(&self, name: &str) -> bool {
        DnsServer::serves(self, name)
    }

    async fn add_txt(&self, name: &str, value: &str) -> Result<(), ProviderError> {
        self.append(&challenge_rrset(name, value)).await
    }

    async fn remove_txt(&self, name: &str, value: &str) -> Result<(), ProviderError> {
        self.delete_values(&challenge_rrset(name, value)).await
    }

    async fn served_txt(&self, name: &str) -> Result<Vec<String>, ProviderError> {
        self.resolve(name, "TXT").await
    }
}

fn challenge_rrset(name: &str, value: &str) -> RrSet {
    RrSet {
        name: name.to_string(),
        rtype: "TXT".into(),
        ttl: 60,
        values: vec![value.to_string()],
    }
}
