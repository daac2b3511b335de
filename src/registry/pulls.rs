//! Pulls, counted in memory and written in batches. A manifest GET is the registry's hottest
//! path; writing its pull time and event at once would put a commit (an fsync on SQLite) on
//! every one. Instead each node gathers pulls per manifest and writes them together, every
//! [`FLUSH_INTERVAL`] from the background jobs, at shutdown, and before this node reads pull
//! times itself. A node that crashes loses at most its last interval of pull times and pull
//! events; ECR itself promises `lastRecordedPullTime` only to within a day. Depends on
//! `metadata` only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::metadata::{MetaResult, MetadataStore, Millis, Pulls};

/// How often a node writes the pulls it gathered.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The pulls this node has served and not yet written, by repository, then manifest digest
/// (nested so that a lookup borrows the names rather than allocating a key).
#[derive(Default)]
pub struct PullLog {
    pending: Mutex<HashMap<String, HashMap<String, Gathered>>>,
    /// Held while a batch is written, so that a flush returns only once every pull recorded
    /// before it is in the database, even those another flush had already taken.
    flushing: tokio::sync::Mutex<()>,
}

#[derive(Clone, Copy)]
struct Gathered {
    last: Millis,
    count: u64,
}

impl Gathered {
    fn merge(self, other: Gathered) -> Gathered {
        Gathered {
            last: self.last.max(other.last),
            count: self.count + other.count,
        }
    }
}

impl PullLog {
    pub fn record(&self, repository: &str, digest: &str, at: Millis) {
        self.add(repository, digest, Gathered { last: at, count: 1 });
    }

    fn add(&self, repository: &str, digest: &str, pulled: Gathered) {
        let mut pending = self.pending.lock().expect("pull log lock");
        if !pending.contains_key(repository) {
            pending.insert(repository.to_string(), HashMap::new());
        }
        let manifests = pending.get_mut(repository).expect("inserted above");
        match manifests.get_mut(digest) {
            Some(gathered) => *gathered = gathered.merge(pulled),
            None => {
                manifests.insert(digest.to_string(), pulled);
            }
        }
    }

    /// Writes every gathered pull in one transaction. If that fails they are kept for the
    /// next attempt.
    pub async fn flush(&self, meta: &dyn MetadataStore) -> MetaResult<()> {
        let _flushing = self.flushing.lock().await;
        let taken = std::mem::take(&mut *self.pending.lock().expect("pull log lock"));
        if taken.is_empty() {
            return Ok(());
        }
        let batch: Vec<Pulls> = taken
            .iter()
            .flat_map(|(repository, manifests)| {
                manifests.iter().map(move |(digest, gathered)| Pulls {
                    repository,
                    digest,
                    last: gathered.last,
                    count: gathered.count,
                })
            })
            .collect();
        let result = meta.record_pulls(&batch).await;
        if result.is_err() {
            for pulls in batch {
                self.add(
                    pulls.repository,
                    pulls.digest,
                    Gathered {
                        last: pulls.last,
                        count: pulls.count,
                    },
                );
            }
        }
        result
    }
}
