//! Sharded runs: `--shard K/N` takes the tenants whose stable hash falls in shard K of N
//! (plus `_shared` on shard 1), so a CI matrix or a Kubernetes Indexed Job of N runners
//! covers the fleet once. `auto/N` takes K from the runner's environment.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{OpenState, OpsError};
use crate::addr::SHARED;

/// Shard `k` (from 1) of `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 1.
    pub k: u64,
    /// How many.
    pub n: u64,
}

/// Variables a runner's index is read from for `auto/N`: `(name, first index)`.
pub const INDEX_VARIABLES: &[(&str, u64)] = &[
    ("LANDLORD_SHARD_INDEX", 1),
    ("JOB_COMPLETION_INDEX", 0),
    ("CI_NODE_INDEX", 1),
];

impl Shard {
    /// Parses `K/N` or `auto/N` (K from `LANDLORD_SHARD_INDEX`, `JOB_COMPLETION_INDEX` of a
    /// Kubernetes Indexed Job, counted from 0, or GitLab's `CI_NODE_INDEX`).
    pub fn parse(s: &str) -> Result<Shard, String> {
        Self::parse_with(s, |v| std::env::var(v).ok())
    }

    /// [`Shard::parse`] reading the environment through `env`.
    pub fn parse_with(s: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let bad = || format!("`{s}` is not a shard like 2/8 or auto/8");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        let k = if k.trim() == "auto" {
            let (var, value, first) = INDEX_VARIABLES
                .iter()
                .find_map(|(v, first)| env(v).map(|x| (*v, x, *first)))
                .ok_or_else(|| {
                    format!(
                        "--shard auto/{n}: none of {} is set; give the shard as K/{n}",
                        INDEX_VARIABLES
                            .iter()
                            .map(|(v, _)| *v)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            let i: u64 = value
                .trim()
                .parse()
                .map_err(|_| format!("{var}=`{value}` is not a number"))?;
            i + 1 - first.min(i + 1)
        } else {
            k.trim().parse().map_err(|_| bad())?
        };
        if k == 0 || k > n {
            return Err(format!(
                "shard {k} of {n} does not exist: K goes from 1 to {n}"
            ));
        }
        Ok(Shard { k, n })
    }

    /// Whether tenant `id` falls in this shard (`_shared` in shard 1).
    pub fn holds(&self, id: &str) -> bool {
        if id == SHARED {
            return self.k == 1;
        }
        let d = Sha256::digest(id.as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        u64::from_be_bytes(b) % self.n == self.k - 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// The tenants of `shard`: those with a file under `root/tenants` and those recorded in
/// state (retired tenants whose resources remain), plus `_shared` on shard 1.
pub fn tenants(root: &Path, st: &OpenState, shard: Shard) -> Result<Vec<String>, OpsError> {
    let mut ids: std::collections::BTreeSet<String> =
        crate::workspace::tenant_ids(root).into_iter().collect();
    ids.extend(st.store.scopes()?);
    ids.insert(SHARED.into());
    Ok(ids.into_iter().filter(|t| shard.holds(t)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_fleet_once_and_evenly() {
        let ids: Vec<String> = (0..1000).map(|i| format!("t{i:04}")).collect();
        let shards: Vec<Shard> = (1..=4).map(|k| Shard { k, n: 4 }).collect();
        for id in &ids {
            assert_eq!(shards.iter().filter(|s| s.holds(id)).count(), 1, "{id}");
        }
        for s in &shards {
            let n = ids.iter().filter(|id| s.holds(id)).count();
            assert!((200..300).contains(&n), "shard {s} holds {n} of 1000");
        }
        assert!(shards[0].holds(SHARED) && !shards[1].holds(SHARED));
    }

    #[test]
    fn auto_reads_the_runner_index() {
        let k8s = |v: &str| (v == "JOB_COMPLETION_INDEX").then(|| "2".to_string());
        assert_eq!(Shard::parse_with("auto/4", k8s), Ok(Shard { k: 3, n: 4 }));
        let gitlab = |v: &str| (v == "CI_NODE_INDEX").then(|| "4".to_string());
        assert_eq!(
            Shard::parse_with("auto/4", gitlab),
            Ok(Shard { k: 4, n: 4 })
        );
        assert!(Shard::parse_with("auto/4", |_| None)
            .unwrap_err()
            .contains("JOB_COMPLETION_INDEX"));
        assert!(Shard::parse_with("5/4", |_| None)
            .unwrap_err()
            .contains("does not exist"));
        assert!(Shard::parse_with("0/4", |_| None).is_err());
        assert!(Shard::parse_with("two/4", |_| None).is_err());
    }
}
