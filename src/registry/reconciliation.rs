//! Storage reconciliation (`wharf storage check`): walks what the metadata records and what
//! the blob store holds side by side, in digest order for blobs stored under their digest and
//! in key order for those kept in the object their upload staged, and reports blobs recorded
//! but missing (never dropped: that is for an operator to look into), bytes no row records
//! (orphans, say from a crash between writing bytes and recording them), staging areas of
//! uploads that no longer exist, and the bytes each repository links. With `repair`, orphans
//! and staging areas older than the collection's grace period are removed; an orphan is
//! claimed as garbage collection claims a blob (see `collection`), so an upload of the same
//! digest in the meantime is never left without its bytes.

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::time::SystemTime;

use serde::Serialize;

use super::{MAX_PAGE, Registry, Result, now};
use crate::metadata::BlobRecord;
use crate::oci::Digest;
use crate::storage::{BlobLocation, KeptObject, StoredBlob};

/// How many blobs are read from each side at a time.
const PAGE: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingBlob {
    pub digest: String,
    pub size: u64,
    /// Repositories linking it: zero means a collection was interrupted and will finish.
    pub links: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrphanBlob {
    pub digest: String,
    pub size: u64,
    pub removed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleStaging {
    pub upload: String,
    pub removed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepositoryBytes {
    pub repository: String,
    pub blobs: u64,
    pub bytes: u64,
}

/// What `wharf storage check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StorageReport {
    pub recorded_blobs: u64,
    pub stored_blobs: u64,
    pub stored_bytes: u64,
    pub missing: Vec<MissingBlob>,
    pub orphans: Vec<OrphanBlob>,
    /// Recorded and stored, but with a different size.
    pub size_mismatches: Vec<String>,
    pub stale_staging: Vec<StaleStaging>,
    pub repositories: Vec<RepositoryBytes>,
}

impl StorageReport {
    /// A blob recorded whose bytes are not stored.
    fn note_missing(&mut self, record: BlobRecord) {
        self.recorded_blobs += 1;
        self.missing.push(MissingBlob {
            digest: record.digest,
            size: record.size,
            links: record.links,
        });
    }

    /// A blob recorded and stored, with `size` bytes in storage.
    fn note_stored(&mut self, record: BlobRecord, size: u64) {
        self.recorded_blobs += 1;
        self.stored_blobs += 1;
        self.stored_bytes += size;
        if record.size != size {
            self.size_mismatches.push(record.digest);
        }
    }
}

/// Where a check is, for showing progress.
#[derive(Debug, Clone, Copy)]
pub enum StorageStep {
    Blobs { compared: u64 },
    Repositories { done: u64 },
}

/// One side of the walk: a page at a time, in digest order, the next after `after`.
struct Cursor<T, K> {
    page: VecDeque<T>,
    after: Option<K>,
    done: bool,
}

impl<T, K> Cursor<T, K> {
    fn new() -> Self {
        Cursor {
            page: VecDeque::new(),
            after: None,
            done: false,
        }
    }
}

impl Registry {
    /// Compares metadata and storage; with `repair`, removes orphans and stale staging areas
    /// older than the grace period.
    pub async fn check_storage(
        &self,
        repair: bool,
        progress: &(dyn Fn(StorageStep) + Sync),
    ) -> Result<StorageReport> {
        let old_before = SystemTime::now()
            .checked_sub(self.settings.gc_grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut report = StorageReport::default();
        self.compare_blobs(&mut report, repair, old_before, progress)
            .await?;
        report.stale_staging = self.check_staging(repair, old_before).await?;
        self.compare_kept(&mut report, repair, old_before).await?;
        report.repositories = self.repository_bytes(progress).await?;
        Ok(report)
    }

    /// Walks recorded and stored blobs side by side, noting what only one side has.
    async fn compare_blobs(
        &self,
        report: &mut StorageReport,
        repair: bool,
        old_before: SystemTime,
        progress: &(dyn Fn(StorageStep) + Sync),
    ) -> Result<()> {
        let mut recorded = Cursor::<BlobRecord, String>::new();
        let mut stored = Cursor::<StoredBlob, Digest>::new();
        let mut compared = 0;
        loop {
            self.fill_recorded(&mut recorded).await?;
            self.fill_stored(&mut stored).await?;
            let next = next_pair(&mut recorded, &mut stored, |r, s| {
                r.digest.cmp(&s.digest.to_string())
            });
            match next {
                (Some(record), None) => {
                    report.note_missing(record);
                }
                (None, Some(blob)) => {
                    report.stored_blobs += 1;
                    report.stored_bytes += blob.size;
                    let removable = repair && blob.modified <= old_before;
                    let removed = removable && self.remove_orphan(&blob.digest).await?;
                    report.orphans.push(OrphanBlob {
                        digest: blob.digest.to_string(),
                        size: blob.size,
                        removed,
                    });
                }
                (Some(record), Some(blob)) => report.note_stored(record, blob.size),
                (None, None) => break,
            }
            compared += 1;
            if compared % u64::from(PAGE) == 0 {
                progress(StorageStep::Blobs { compared });
            }
        }
        progress(StorageStep::Blobs { compared });
        Ok(())
    }

    /// The bytes each repository links.
    async fn repository_bytes(
        &self,
        progress: &(dyn Fn(StorageStep) + Sync),
    ) -> Result<Vec<RepositoryBytes>> {
        let mut repositories = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let usage = self
                .meta
                .repository_usage(after.as_deref(), MAX_PAGE)
                .await?;
            repositories.extend(usage.iter().map(|usage| RepositoryBytes {
                repository: usage.repository.clone(),
                blobs: usage.blobs,
                bytes: usage.bytes,
            }));
            progress(StorageStep::Repositories {
                done: repositories.len() as u64,
            });
            match usage.last() {
                Some(last) if usage.len() == MAX_PAGE as usize => {
                    after = Some(last.repository.clone())
                }
                _ => return Ok(repositories),
            }
        }
    }

    async fn fill_recorded(&self, cursor: &mut Cursor<BlobRecord, String>) -> Result<()> {
        if cursor.page.is_empty() && !cursor.done {
            let page = self
                .meta
                .recorded_blobs(cursor.after.as_deref(), PAGE)
                .await?;
            cursor.done = page.len() < PAGE as usize;
            cursor.after = page.last().map(|blob| blob.digest.clone());
            cursor.page.extend(page);
        }
        Ok(())
    }

    async fn fill_stored(&self, cursor: &mut Cursor<StoredBlob, Digest>) -> Result<()> {
        if cursor.page.is_empty() && !cursor.done {
            let page = self.blobs.list_blobs(cursor.after.as_ref(), PAGE).await?;
            cursor.done = page.len() < PAGE as usize;
            cursor.after = page.last().map(|blob| blob.digest.clone());
            cursor.page.extend(page);
        }
        Ok(())
    }

    /// Removes bytes no row records, unless an upload records them meanwhile.
    pub(super) async fn remove_orphan(&self, digest: &Digest) -> Result<bool> {
        let Some(held) = self.meta.claim_orphan(&digest.to_string(), now()).await? else {
            return Ok(false);
        };
        self.blobs.delete(BlobLocation::of(digest)).await?;
        held.commit().await?;
        Ok(true)
    }

    /// Walks the blobs recorded in objects of their own and the objects the store kept, side
    /// by side in key order. A kept object no row names is the staging of an upload: one in
    /// progress is left alone, and one whose upload is gone is reported (and, with `repair`,
    /// removed once older than `old_before`) as a stale staging area.
    async fn compare_kept(
        &self,
        report: &mut StorageReport,
        repair: bool,
        old_before: SystemTime,
    ) -> Result<()> {
        let mut recorded = Cursor::<BlobRecord, String>::new();
        let mut stored = Cursor::<KeptObject, String>::new();
        loop {
            if recorded.page.is_empty() && !recorded.done {
                let after = recorded.after.as_deref();
                let page = self.meta.recorded_kept_blobs(after, PAGE).await?;
                recorded.done = page.len() < PAGE as usize;
                recorded.after = page.last().and_then(|blob| blob.storage_key.clone());
                recorded.page.extend(page);
            }
            if stored.page.is_empty() && !stored.done {
                let page = self.blobs.list_kept(stored.after.as_deref(), PAGE).await?;
                stored.done = page.len() < PAGE as usize;
                stored.after = page.last().map(|object| object.key.clone());
                stored.page.extend(page);
            }
            let next = next_pair(&mut recorded, &mut stored, |r, s| {
                r.storage_key.as_deref().unwrap_or_default().cmp(&s.key)
            });
            match next {
                (None, None) => return Ok(()),
                (Some(record), None) => {
                    report.note_missing(record);
                }
                (None, Some(object)) => {
                    if self.meta.get_upload(&object.upload).await?.is_some() {
                        continue;
                    }
                    // The upload is gone, so no blob can take the object any more; one that
                    // finished after this page was read has.
                    let removed = repair
                        && object.modified <= old_before
                        && !self.meta.records_key(&object.key).await?;
                    if removed {
                        self.free_staging(&object.upload).await?;
                    }
                    report.stale_staging.push(StaleStaging {
                        upload: object.upload,
                        removed,
                    });
                }
                (Some(record), Some(object)) => report.note_stored(record, object.size),
            }
        }
    }

    /// Staging areas whose upload no longer exists; with `repair`, those older than
    /// `old_before` are removed.
    async fn check_staging(
        &self,
        repair: bool,
        old_before: SystemTime,
    ) -> Result<Vec<StaleStaging>> {
        let mut stale = Vec::new();
        for staged in self.blobs.staged_uploads().await? {
            if self.meta.get_upload(&staged.upload).await?.is_some() {
                continue;
            }
            let removed = repair && staged.last_write <= old_before;
            if removed {
                self.free_staging(&staged.upload).await?;
            }
            stale.push(StaleStaging {
                upload: staged.upload,
                removed,
            });
        }
        Ok(stale)
    }
}

/// Takes the next item off the fronts of both pages, ordered by `order`: the two together when
/// they match, else the lesser alone.
fn next_pair<R, S, RK, SK>(
    recorded: &mut Cursor<R, RK>,
    stored: &mut Cursor<S, SK>,
    order: impl Fn(&R, &S) -> Ordering,
) -> (Option<R>, Option<S>) {
    let order = match (recorded.page.front(), stored.page.front()) {
        (None, None) => return (None, None),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(r), Some(s)) => order(r, s),
    };
    match order {
        Ordering::Less => (recorded.page.pop_front(), None),
        Ordering::Greater => (None, stored.page.pop_front()),
        Ordering::Equal => (recorded.page.pop_front(), stored.page.pop_front()),
    }
}
