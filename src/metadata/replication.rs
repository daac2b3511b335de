//! Replication: the registry's configuration, and the queue of images to copy to remotes.

use async_trait::async_trait;

use super::{MetaResult, Millis};

/// A replication destination: a remote, named as ECR names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    pub registry_id: String,
    pub region: String,
}

/// One image to copy to one destination, under one tag (or by digest alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    pub repository: String,
    pub digest: String,
    pub destination: Destination,
    /// The tag to set at the destination; `None` for an image pushed by digest alone.
    pub tag: Option<String>,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Copied,
    /// Failed; tried again from `retry_at`, or given up on if `None`.
    Failed {
        reason: String,
        retry_at: Option<Millis>,
    },
}

/// `IN_PROGRESS`, `COMPLETE` or `FAILED` at one destination, with the last failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationStatus {
    pub destination: Destination,
    pub status: String,
    pub failure: Option<String>,
}

#[async_trait]
pub trait ReplicationStore: Send + Sync + 'static {
    /// The configuration in ECR's JSON, if one was set.
    async fn replication_configuration(&self) -> MetaResult<Option<String>>;

    async fn put_replication_configuration(&self, configuration: &str) -> MetaResult<()>;

    /// Queues copies of the image to every destination under each of `tags` (by digest alone
    /// if none), unless they were queued or done before. Returns how many were queued.
    async fn backfill_replications(
        &self,
        repository: &str,
        digest: &str,
        tags: &[String],
        destinations: &[Destination],
        now: Millis,
    ) -> MetaResult<u64>;

    /// Up to `limit` copies due at `now`, oldest first.
    async fn due_replications(&self, now: Millis, limit: u32) -> MetaResult<Vec<Replication>>;

    /// Records how an attempt at `replication` ended.
    async fn finish_replication(
        &self,
        replication: &Replication,
        attempt: &Attempt,
        now: Millis,
    ) -> MetaResult<()>;

    /// A repository other than `except` whose image referencing the blob `digest` was copied
    /// to `destination`: where the destination already holds the blob, to mount it from.
    async fn copied_with_blob(
        &self,
        digest: &str,
        destination: &Destination,
        except: &str,
    ) -> MetaResult<Option<String>>;

    /// The image's status at each destination it was queued for: `FAILED` if a copy was
    /// given up on, else `IN_PROGRESS` while one is pending, else `COMPLETE`.
    async fn replication_statuses(
        &self,
        repository: &str,
        digest: &str,
    ) -> MetaResult<Vec<ReplicationStatus>>;
}
