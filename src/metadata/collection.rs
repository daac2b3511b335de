//! What garbage collection and storage reconciliation ask of the metadata: links no manifest
//! needs, blobs no repository links, claims on a blob's row while its bytes are removed, and
//! leases that let one node at a time run background work.
//!
//! The invariant every method here keeps: a blob that any repository links has its bytes.
//! Bytes are only removed while their blob row is held by a [`HeldBlob`] that found no link,
//! and an upload only links a blob after checking, with the same row held, that its bytes
//! are there (see `UploadStore::begin_completion`).

use async_trait::async_trait;

use super::{MetaResult, Millis};

/// A blob as the metadata records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    pub digest: String,
    pub size: u64,
    /// The object it is kept in, when not under its digest.
    pub storage_key: Option<String>,
    /// How many repositories link it.
    pub links: u64,
}

/// Bytes a repository links: every blob it holds, each counted once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryUsage {
    pub repository: String,
    pub blobs: u64,
    pub bytes: u64,
}

/// A blob row locked in an open transaction, with the change the caller asked for made but
/// not committed. The caller does its storage work meanwhile, then commits; dropping it
/// instead rolls the change back. No upload can link the blob while it is held.
#[async_trait]
pub trait HeldBlob: Send {
    /// Where the held row says the bytes are: `None` under the digest, else this object.
    fn storage_key(&self) -> Option<&str>;

    async fn commit(self: Box<Self>) -> MetaResult<()>;
}

#[async_trait]
pub trait CollectionStore: Send + Sync + 'static {
    /// Removes (or, with `dry_run`, counts) the links of `repository` that no manifest of it
    /// references and that were last relied on before `cutoff`. Holds the repository against
    /// pushes meanwhile, so a manifest either lands first (and keeps its blobs linked) or is
    /// checked after (and is refused for what is gone). Returns how many.
    async fn sweep_links(&self, repository: &str, cutoff: Millis, dry_run: bool)
    -> MetaResult<u64>;

    /// Up to `limit` blobs, in digest order after `after`, that a collection at `cutoff` would
    /// remove: recorded before `cutoff`, and linked only by links it would sweep.
    async fn collectable_blobs(
        &self,
        cutoff: Millis,
        after: Option<&str>,
        limit: u32,
    ) -> MetaResult<Vec<BlobRecord>>;

    /// Holds `digest`'s row, deleted, if no repository links it and it was recorded before
    /// `cutoff`; the caller removes the bytes, then commits. `None` if it is linked, recent or
    /// gone.
    async fn claim_unlinked_blob(
        &self,
        digest: &str,
        cutoff: Millis,
    ) -> MetaResult<Option<Box<dyn HeldBlob>>>;

    /// For bytes storage holds under `digest` that no row records: holds a provisional row
    /// (so that an upload of the same digest waits), to be dropped again with the commit
    /// once the caller has removed the bytes. `None` if a row records the blob after all.
    async fn claim_orphan(
        &self,
        digest: &str,
        now: Millis,
    ) -> MetaResult<Option<Box<dyn HeldBlob>>>;

    /// Up to `limit` blobs recorded as stored under their digest, in digest order after
    /// `after`, with their link counts.
    async fn recorded_blobs(&self, after: Option<&str>, limit: u32) -> MetaResult<Vec<BlobRecord>>;

    /// Up to `limit` blobs recorded as kept in objects of their own, in storage key order
    /// (bytewise) after `after`, with their link counts.
    async fn recorded_kept_blobs(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> MetaResult<Vec<BlobRecord>>;

    /// Whether a blob's row names the object `key`.
    async fn records_key(&self, key: &str) -> MetaResult<bool>;

    /// Linked bytes per repository, for repositories in name order after `after`.
    async fn repository_usage(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> MetaResult<Vec<RepositoryUsage>>;

    /// Takes the lease `name` for `holder` until `until`, if nobody holds it past `now` (or
    /// `holder` already does). Returns whether `holder` now holds it.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Millis,
        until: Millis,
    ) -> MetaResult<bool>;
}
