//! Blob uploads: start, append chunks, finish with digest verification, cancel, mount.
//!
//! Each chunk is hashed as it streams in and the SHA-256 midstate is saved with the upload
//! row, so any node can continue an upload and finishing never reads the bytes back.

use std::sync::{Arc, Mutex};

use futures::TryStreamExt;

use super::{Error, Registry, Result, now};
use crate::metadata::{FinishedBlob, MetaError, Upload};
use crate::oci::{Algorithm, Digest, RepoName, Sha256Hasher, StreamHasher};
use crate::storage::{BlobLocation, ByteStream, StorageError, UploadPart};

/// How often finishing an upload writes its bytes again when a garbage collection removed
/// them just before the upload recorded its blob (each time, the blob was garbage until then).
const COLLECTED_RETRIES: usize = 3;

/// Where an upload stands: the client's next chunk starts at `size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    pub id: String,
    pub size: u64,
}

#[derive(Debug)]
pub enum MountOutcome {
    /// The blob is now linked to the target repository.
    Mounted,
    /// It could not be mounted; the client uploads it through this new session instead.
    UploadStarted(UploadStatus),
}

/// A chunk as the client announced it: where it starts and how long it is, when it said so.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkRange {
    pub start: Option<u64>,
    pub length: Option<u64>,
}

impl Registry {
    /// `POST /v2/<name>/blobs/uploads/`: opens an empty upload session.
    pub async fn start_upload(&self, repo: &RepoName) -> Result<UploadStatus> {
        self.check_may_push(repo).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let empty = Sha256Hasher::default().save();
        self.meta
            .create_upload(&id, repo.as_str(), &empty, now())
            .await?;
        Ok(UploadStatus { id, size: 0 })
    }

    /// `POST ?mount=<digest>&from=<repo>`: links the blob if `from` has it, else starts an
    /// upload. Without `from` nothing is mounted, so no repository's content leaks.
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> Result<MountOutcome> {
        self.check_may_push(repo).await?;
        if let Some(from) = from {
            let digest = digest.to_string();
            if self
                .meta
                .mount_blob(
                    repo.as_str(),
                    from.as_str(),
                    &digest,
                    self.settings.create_on_push,
                    now(),
                )
                .await?
            {
                return Ok(MountOutcome::Mounted);
            }
        }
        Ok(MountOutcome::UploadStarted(self.start_upload(repo).await?))
    }

    /// `GET /v2/<name>/blobs/uploads/<id>`.
    pub async fn upload_status(&self, repo: &RepoName, id: &str) -> Result<UploadStatus> {
        let upload = self.load_upload(repo, id).await?;
        Ok(UploadStatus {
            id: upload.id,
            size: upload.size,
        })
    }

    /// `PATCH /v2/<name>/blobs/uploads/<id>`: appends one chunk, streamed or with a range.
    pub async fn append_chunk(
        &self,
        repo: &RepoName,
        id: &str,
        range: ChunkRange,
        body: ByteStream,
    ) -> Result<UploadStatus> {
        let upload = self.load_upload(repo, id).await?;
        let upload = self.append(upload, range, body).await?;
        Ok(UploadStatus {
            id: upload.id,
            size: upload.size,
        })
    }

    /// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: appends the optional final chunk, verifies
    /// the digest and commits the blob. Returns the blob's size. On a digest mismatch the
    /// upload is discarded and nothing is stored.
    pub async fn complete_upload(
        &self,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        final_chunk: Option<(ChunkRange, ByteStream)>,
    ) -> Result<u64> {
        let mut upload = self.load_upload(repo, id).await?;
        // The size the upload row must still have when the blob is recorded. A final chunk
        // is staged but not recorded on its own: the row goes in the same transaction.
        let recorded = upload.size;
        if let Some((range, body)) = final_chunk {
            upload = self.stage(upload, range, body).await?;
        }
        // The hash state covers exactly `upload.size` bytes: only those may become the blob.
        check_parts_cover(&upload)?;
        let actual = match digest.algorithm() {
            Algorithm::Sha256 => restore_hasher(&upload)?.finish(),
            other => self.rehash(&upload, other).await?,
        };
        if actual != *digest {
            match self.discard_upload(id).await {
                Ok(()) | Err(Error::UploadUnknown) => {}
                Err(e) => return Err(e),
            }
            return Err(Error::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        // Bytes first, rows second: a crash in between leaves bytes no row names (a later
        // push of the same digest adopts them; otherwise storage reconciliation reclaims
        // them), never a row pointing at nothing.
        // Empty parts (a final PUT without a body) add nothing; leaving them out keeps a
        // single-chunk upload on the path that moves no bytes.
        let parts: Vec<_> = upload.parts.into_iter().filter(|p| p.size > 0).collect();
        let kept = self.commit_bytes(id, &parts, digest).await?;
        let stored_at = self
            .record_blob(id, &parts, digest, recorded, upload.size, kept)
            .await?;
        let cleared = self.blobs.delete_upload(id, stored_at.as_deref()).await;
        left_for_sweep(id, cleared.map_err(Error::from));
        Ok(upload.size)
    }

    /// Turns the finished upload, whose row still records `recorded` bytes and whose `size`
    /// bytes are committed (in the object `kept`, or under the digest), into the blob linked
    /// to its repository, writing the bytes again if a collection removed them meanwhile.
    /// Returns the storage key the blob's row names: an earlier upload of the same content
    /// may have recorded it elsewhere.
    async fn record_blob(
        &self,
        id: &str,
        parts: &[UploadPart],
        digest: &Digest,
        recorded: u64,
        size: u64,
        mut kept: Option<String>,
    ) -> Result<Option<String>> {
        let create = self.settings.create_on_push;
        let blob = digest.to_string();
        for attempt in 1..=COLLECTED_RETRIES {
            let finished = FinishedBlob {
                digest: &blob,
                size,
                storage_key: kept.as_deref(),
                // Bytes found missing on an earlier attempt were written again just now.
                relocate: attempt > 1,
            };
            let Some(held) = self
                .meta
                .complete_upload(id, recorded, finished, create, now())
                .await?
            else {
                // Cancelled, finished by someone else, or a chunk landed after this request
                // read the upload: what was verified is no longer the whole upload.
                let changed = Error::UploadInvalid(
                    "a chunk arrived while the upload was being finished".into(),
                );
                if kept.is_none() {
                    self.forget_unrecorded(digest).await;
                }
                return Err(self.unless_gone(id, changed).await);
            };
            // The blob's row is held: no collection can remove the bytes now. One that
            // removed them before (their blob was garbage until this upload) must not leave
            // the link without them, so the link only lands if they are there.
            let stored_at = held.storage_key().map(str::to_string);
            let location = BlobLocation {
                digest,
                key: stored_at.as_deref(),
            };
            if self.blobs.stat(location).await?.is_some() {
                held.commit().await?;
                return Ok(stored_at);
            }
            drop(held);
            if attempt < COLLECTED_RETRIES {
                kept = self.commit_bytes(id, parts, digest).await?;
            }
        }
        Err(Error::Storage(StorageError::Backend(format!(
            "blob {digest} was collected {COLLECTED_RETRIES} times while being stored"
        ))))
    }

    /// Removes the bytes this upload committed but could not record, unless a row records
    /// them (another upload of the same content), so that a lost race leaves no orphan. On
    /// failure the bytes stay for storage reconciliation.
    async fn forget_unrecorded(&self, digest: &Digest) {
        if let Err(e) = self.remove_orphan(digest).await {
            tracing::warn!(%digest, error = %e, "unrecorded bytes left for reconciliation");
        }
    }

    /// Makes the verified staged `parts` the blob `digest` in storage. Returns the staged
    /// object kept as the blob, if the store kept one rather than storing it under `digest`.
    async fn commit_bytes(
        &self,
        id: &str,
        parts: &[UploadPart],
        digest: &Digest,
    ) -> Result<Option<String>> {
        match self.blobs.commit(id, parts, digest).await {
            Ok(kept) => Ok(kept),
            // A concurrent commit of the same content won; the bytes are the same.
            Err(e) => match self.blobs.stat(BlobLocation::of(digest)).await? {
                Some(_) => Ok(None),
                None => Err(self.unless_gone(id, e.into()).await),
            },
        }
    }

    /// `POST /v2/<name>/blobs/uploads/?digest=`: a whole blob in one request.
    pub async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        length: Option<u64>,
        body: ByteStream,
    ) -> Result<u64> {
        let upload = self.start_upload(repo).await?;
        let range = ChunkRange {
            start: Some(0),
            length,
        };
        self.complete_upload(repo, &upload.id, digest, Some((range, body)))
            .await
    }

    /// `DELETE /v2/<name>/blobs/uploads/<id>`.
    pub async fn cancel_upload(&self, repo: &RepoName, id: &str) -> Result<()> {
        self.load_upload(repo, id).await?;
        self.discard_upload(id).await
    }

    async fn load_upload(&self, repo: &RepoName, id: &str) -> Result<Upload> {
        // Ids become storage keys: only accept the UUIDs this registry hands out.
        if uuid::Uuid::try_parse(id).is_err() {
            return Err(Error::UploadUnknown);
        }
        match self.meta.get_upload(id).await? {
            Some(upload) if upload.repository == repo.as_str() => Ok(upload),
            _ => Err(Error::UploadUnknown),
        }
    }

    /// Forgets the upload and frees its staged bytes. Returns `UploadUnknown` if it was
    /// already gone (finished or cancelled by a concurrent request).
    async fn discard_upload(&self, id: &str) -> Result<()> {
        if !self.meta.delete_upload(id).await? {
            return Err(Error::UploadUnknown);
        }
        self.clear_staging(id).await;
        Ok(())
    }

    /// Frees the staged bytes of an upload whose row is gone. The row is what counts: if this
    /// fails (or the node dies first), the stale-upload sweep removes the bytes later.
    async fn clear_staging(&self, id: &str) {
        left_for_sweep(id, self.free_staging(id).await);
    }

    /// Removes what the upload `id`, whose row is gone, staged, but an object that became a
    /// blob when the upload finished. With the row gone, no blob can take one any more.
    pub(super) async fn free_staging(&self, id: &str) -> Result<()> {
        let mut keep = None;
        for key in self.blobs.kept_objects(id).await? {
            if self.meta.records_key(&key).await? {
                keep = Some(key);
            }
        }
        Ok(self.blobs.delete_upload(id, keep.as_deref()).await?)
    }

    /// `error`, unless the upload is gone meanwhile (a concurrent cancel or finish): then the
    /// client is told the upload is unknown, as it would be a moment later, and what this
    /// request staged after the upload's staging was cleared is cleared too.
    async fn unless_gone(&self, id: &str, error: Error) -> Error {
        match self.meta.get_upload(id).await {
            Ok(None) => {
                self.clear_staging(id).await;
                Error::UploadUnknown
            }
            Ok(Some(_)) => error,
            Err(e) => e.into(),
        }
    }

    /// Stages one chunk as a part and records it if the upload is still where it was.
    async fn append(&self, upload: Upload, range: ChunkRange, body: ByteStream) -> Result<Upload> {
        let upload = self.stage(upload, range, body).await?;
        let part = upload.parts.last().expect("a part was just staged");
        if !self
            .meta
            .append_upload_part(&upload.id, part, &upload.hash_state, now())
            .await?
        {
            // Another request moved the upload on (or ended it) while this chunk streamed.
            return match self.meta.get_upload(&upload.id).await? {
                Some(current) => Err(Error::OffsetMismatch { size: current.size }),
                None => {
                    self.clear_staging(&upload.id).await;
                    Err(Error::UploadUnknown)
                }
            };
        }
        Ok(upload)
    }

    /// Stages one chunk as a part after the upload's, and returns the upload as it would be
    /// with it: the caller records it.
    async fn stage(
        &self,
        mut upload: Upload,
        range: ChunkRange,
        body: ByteStream,
    ) -> Result<Upload> {
        if range.start.is_some_and(|start| start != upload.size) {
            return Err(Error::OffsetMismatch { size: upload.size });
        }
        check_parts_cover(&upload)?;
        let hasher = Arc::new(Mutex::new(restore_hasher(&upload)?));
        let body = {
            let hasher = hasher.clone();
            body.inspect_ok(move |chunk| hasher.lock().expect("hasher lock").update(chunk))
        };
        let part = match self
            .blobs
            .write_part(&upload.id, &upload.parts, Box::pin(body))
            .await
        {
            Ok(part) => part,
            // A concurrent cancel may have removed the staging area under this write, or
            // cleared it before this write made it anew.
            Err(e) => return Err(self.unless_gone(&upload.id, e.into()).await),
        };
        if range.length.is_some_and(|length| length != part.size) {
            return Err(Error::UploadInvalid(format!(
                "chunk announced {} bytes but carried {}",
                range.length.unwrap_or_default(),
                part.size
            )));
        }
        upload.size += part.size;
        upload.hash_state = hasher.lock().expect("hasher lock").save();
        upload.parts.push(part);
        Ok(upload)
    }

    /// Reads the staged bytes back to compute a digest other than the streamed sha256.
    async fn rehash(&self, upload: &Upload, algorithm: Algorithm) -> Result<Digest> {
        let mut hasher = StreamHasher::new(algorithm);
        let mut bytes = self.blobs.read_parts(&upload.id, &upload.parts).await?;
        while let Some(chunk) = bytes.try_next().await.map_err(StorageError::Io)? {
            hasher.update(&chunk);
        }
        Ok(hasher.finish())
    }
}

/// Logs a failure to clear an upload's staging: the stale-upload sweep removes it later.
fn left_for_sweep(id: &str, cleared: Result<()>) {
    if let Err(e) = cleared {
        tracing::warn!(upload = id, error = %e, "staged parts left for the stale-upload sweep");
    }
}

/// Checks that the parts run contiguously from offset 0 to exactly the upload's size, the
/// bytes its hash state covers.
fn check_parts_cover(upload: &Upload) -> Result<()> {
    let end = upload.parts.iter().try_fold(0, |end, part| {
        (part.offset == end).then_some(end + part.size)
    });
    if end == Some(upload.size) {
        return Ok(());
    }
    Err(Error::Meta(MetaError::Corrupt(format!(
        "upload {} records {} bytes but its parts do not cover exactly those",
        upload.id, upload.size
    ))))
}

fn restore_hasher(upload: &Upload) -> Result<Sha256Hasher> {
    Sha256Hasher::restore(&upload.hash_state).ok_or_else(|| {
        Error::Meta(MetaError::Corrupt(format!(
            "upload {} has an unreadable hash state",
            upload.id
        )))
    })
}
