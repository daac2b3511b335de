//! Garbage collection: removes the bytes (and rows) of blobs no manifest in any repository
//! references any more, safely while pushes run on any node. Manifests themselves live in
//! the metadata and go with their image's delete or expiry; untagged images are images, not
//! garbage.
//!
//! The protocol, in two steps, each re-checked in the transaction that acts:
//! 1. Per repository, with the repository's row held exclusively (pushes, mounts and uploads
//!    into it wait), links that no manifest of it references and that nobody relied on for
//!    the grace period are removed. A manifest push either committed first, and its
//!    references keep their links, or checks its references after, and is refused for what
//!    is gone: it never lands on a blob without a link.
//! 2. Each blob no repository links any more, recorded before the grace period, is claimed:
//!    its row is locked, found still unlinked, and deleted in a transaction that stays open
//!    while the bytes are removed, then commits. Finishing an upload of the same digest holds
//!    that row too, and links the blob only after checking the bytes are there; so it either
//!    links first (and the claim finds the link and lets go), or waits, finds the bytes gone,
//!    and writes them again. A blob linked to a repository always has its bytes.
//!
//! A crash in step 2 after the bytes went but before the commit leaves an unlinked row
//! without bytes: nothing references it, an upload of the digest rewrites the bytes, and the
//! next collection removes the row. Two collections at once (say `wharf gc` beside a
//! server's) are safe, only wasteful; the background job runs under a lease so that they
//! rarely do.

use super::{MAX_PAGE, Registry, Result};
use crate::metadata::{Millis, Page};
use crate::oci::Digest;
use crate::storage::BlobLocation;

/// How many candidate blobs a collection reads at a time.
const BLOB_PAGE: u32 = 1000;

/// What a collection removed, or with `dry_run`, would remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collection {
    pub dry_run: bool,
    pub repositories: u64,
    /// Links no manifest needed.
    pub links: u64,
    pub blobs: u64,
    pub bytes: u64,
    /// Uploads idle past their timeout, and staging areas left without an upload.
    pub uploads: u64,
}

/// Where a collection is, for showing progress.
#[derive(Debug, Clone, Copy)]
pub enum CollectionStep<'a> {
    Links { repository: &'a str, done: u64 },
    Blobs { done: u64, bytes: u64 },
}

impl Registry {
    /// Collects garbage as of `now`: unneeded links, then the blobs left unlinked, then stale
    /// uploads. Reports each step done to `progress`.
    pub async fn collect_garbage(
        &self,
        now: Millis,
        dry_run: bool,
        progress: &(dyn Fn(CollectionStep<'_>) + Sync),
    ) -> Result<Collection> {
        let grace = Millis::try_from(self.settings.gc_grace.as_millis()).unwrap_or(Millis::MAX);
        let cutoff = now.saturating_sub(grace);
        let mut collection = Collection {
            dry_run,
            ..Collection::default()
        };
        let mut after: Option<String> = None;
        loop {
            let page = Page {
                limit: MAX_PAGE,
                after: after.as_deref(),
            };
            let repositories = self.meta.list_repositories(page).await?;
            for repository in &repositories {
                collection.links += self.meta.sweep_links(repository, cutoff, dry_run).await?;
                collection.repositories += 1;
                progress(CollectionStep::Links {
                    repository,
                    done: collection.repositories,
                });
            }
            match repositories.last() {
                Some(last) if repositories.len() == MAX_PAGE as usize => after = Some(last.clone()),
                _ => break,
            }
        }
        let mut after: Option<String> = None;
        loop {
            let candidates = self
                .meta
                .collectable_blobs(cutoff, after.as_deref(), BLOB_PAGE)
                .await?;
            for blob in &candidates {
                if dry_run || self.remove_blob(&blob.digest, cutoff).await? {
                    collection.blobs += 1;
                    collection.bytes += blob.size;
                }
            }
            progress(CollectionStep::Blobs {
                done: collection.blobs,
                bytes: collection.bytes,
            });
            match candidates.last() {
                Some(last) if candidates.len() == BLOB_PAGE as usize => {
                    after = Some(last.digest.clone())
                }
                _ => break,
            }
        }
        if !dry_run {
            collection.uploads = self.purge_stale_uploads().await? as u64;
        }
        if !dry_run {
            let details = serde_json::json!({
                "links": collection.links,
                "blobs": collection.blobs,
                "bytes": collection.bytes,
                "uploads": collection.uploads,
            });
            self.audit_own("CollectGarbage", None, details);
        }
        Ok(collection)
    }

    /// Removes the blob's bytes and row if it is still unlinked and old enough: step 2 of the
    /// protocol above. Returns whether it did.
    async fn remove_blob(&self, digest: &str, cutoff: Millis) -> Result<bool> {
        let Ok(parsed) = digest.parse::<Digest>() else {
            tracing::warn!(digest, "blob row with an unreadable digest left alone");
            return Ok(false);
        };
        let Some(held) = self.meta.claim_unlinked_blob(digest, cutoff).await? else {
            return Ok(false);
        };
        // On failure the claim is dropped, rolling back: the row stays for the next run.
        let location = BlobLocation {
            digest: &parsed,
            key: held.storage_key(),
        };
        self.blobs.delete(location).await?;
        held.commit().await?;
        Ok(true)
    }
}
