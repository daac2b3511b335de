//! Whether this node can serve (its database and blob store answer), and the state the
//! metrics report at each scrape.

use super::{Registry, Result};
use crate::metrics::StateSample;
use crate::oci::Digest;
use crate::storage::BlobLocation;

impl Registry {
    /// Whether the metadata database answers a trivial query.
    pub async fn database_answers(&self) -> Result<()> {
        Ok(self.meta.ping().await?)
    }

    /// Whether the blob store answers: a look for the empty blob, there or not.
    pub async fn storage_answers(&self) -> Result<()> {
        let empty = Digest::sha256(b"");
        self.blobs.stat(BlobLocation::of(&empty)).await?;
        Ok(())
    }

    /// Uploads in progress, this node's database connections and the queued background work.
    pub async fn state_sample(&self) -> Result<StateSample> {
        let connections = self.meta.connections();
        let mut sample = StateSample {
            db_connections: vec![
                ("idle", i64::from(connections.idle)),
                ("in_use", i64::from(connections.in_use)),
                ("max", i64::from(connections.max)),
            ],
            ..StateSample::default()
        };
        // Every state is reported, at zero when nothing is in it, so that a series ends at 0
        // rather than at its last value.
        let mut jobs = vec![
            ("replication", "queued", 0),
            ("replication", "failed", 0),
            ("scan", "queued", 0),
            ("scan", "failed", 0),
        ];
        for queued in self.meta.queue_counts().await? {
            let state = match queued.status.as_str() {
                "FAILED" => "failed",
                _ => "queued",
            };
            match queued.kind.as_str() {
                "uploads" => sample.uploads_in_progress = queued.count,
                kind => {
                    if let Some(slot) = jobs.iter_mut().find(|(k, s, _)| *k == kind && *s == state)
                    {
                        slot.2 = queued.count;
                    }
                }
            }
        }
        sample.jobs = jobs;
        Ok(sample)
    }
}
