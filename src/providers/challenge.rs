//! Where ACME DNS-01 challenge records are published: any zone that can add and remove a
//! TXT value and tell what its name servers answer (an RFC 2136 server, an Azure DNS zone).

use async_trait::async_trait;

use super::ProviderError;

/// A DNS zone that can publish challenge TXT records.
#[async_trait]
pub trait ChallengeZone: Send + Sync {
    /// The zone apex, for messages.
    fn zone(&self) -> &str;

    /// Whether `name` lies in the zone.
    fn serves(&self, name: &str) -> bool {
        let zone = self.zone().trim_end_matches('.');
        name == zone || name.ends_with(&format!(".{zone}"))
    }

    /// Adds one TXT value at `name`, keeping the others.
    async fn add_txt(&self, name: &str, value: &str) -> Result<(), ProviderError>;

    /// Removes one TXT value at `name`, keeping the others.
    async fn remove_txt(&self, name: &str, value: &str) -> Result<(), ProviderError>;

    /// The TXT values the zone's name servers answer for `name` now.
    async fn served_txt(&self, name: &str) -> Result<Vec<String>, ProviderError>;
}
