//! Blob bytes, content-addressed by digest, plus the staging area for uploads in progress.
//!
//! `storage` knows nothing of repositories, manifests, HTTP or SQL: the registry layer decides
//! which blobs exist for whom (through the metadata store) and verifies every digest before it
//! asks for a commit. Implementations: [`fs::FsBlobStore`], [`s3::S3BlobStore`].

pub mod fs;
pub mod metered;
pub mod s3;

use std::io;
use std::pin::Pin;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use crate::oci::Digest;

/// Bytes flowing through Wharf: request bodies in, blob contents out. Never collected whole.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no such blob or upload part")]
    NotFound,
    /// Reading the client's body failed (disconnect, or too many or too few bytes).
    #[error("request body: {0}")]
    Body(io::Error),
    #[error("storage I/O: {0}")]
    Io(#[from] io::Error),
    #[error("object store: {0}")]
    Backend(String),
    /// The object store cannot serve now (unreachable, timing out, throttling, or failing on
    /// its side): the same request may well succeed a moment later.
    #[error("object store unavailable: {0}")]
    Unavailable(String),
}

/// One staged piece of an upload: `size` bytes at `offset`, stored under `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPart {
    pub offset: u64,
    pub size: u64,
    pub key: String,
}

impl UploadPart {
    /// The offset right after this part.
    pub fn end(&self) -> u64 {
        self.offset + self.size
    }
}

/// Where the next part of an upload whose parts so far are `staged` starts.
pub fn staged_end(staged: &[UploadPart]) -> u64 {
    staged.last().map_or(0, UploadPart::end)
}

/// Where a committed blob's bytes are. Most blobs live under their digest; a store may instead
/// keep the object an upload staged its bytes in as the blob (see [`BlobStore::commit`]),
/// and the metadata records that object's `key` with the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation<'a> {
    pub digest: &'a Digest,
    pub key: Option<&'a str>,
}

impl<'a> BlobLocation<'a> {
    /// The blob stored under its digest.
    pub fn of(digest: &'a Digest) -> Self {
        BlobLocation { digest, key: None }
    }
}

/// An object a store kept as a blob under a key of its own, for reconciling those with the
/// metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptObject {
    pub key: String,
    /// The upload that staged it: only that upload can still make it a blob.
    pub upload: String,
    pub size: u64,
    pub modified: SystemTime,
}

/// An upload's staging area as storage sees it, for sweeping areas whose upload is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedUpload {
    pub upload: String,
    /// When anything was last written there.
    pub last_write: SystemTime,
}

/// A committed blob as storage holds it, for reconciling storage with the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub digest: Digest,
    pub size: u64,
    /// When its bytes were written (the object's modification time).
    pub modified: SystemTime,
}

/// Where blob bytes live. Uploads are staged as parts, each written by one request; the
/// metadata store decides which part counts. Two requests racing on one upload never write
/// into bytes the other may keep: a store that appends to what it staged before does so only
/// while no one else is writing there.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// The size of the committed blob at `blob`, or `None` if it is not stored.
    async fn stat(&self, blob: BlobLocation<'_>) -> Result<Option<u64>, StorageError>;

    /// The blob's bytes, or the inclusive byte `range` of them. The caller has checked the range
    /// against the size. `NotFound` if the blob is not stored.
    async fn get(
        &self,
        blob: BlobLocation<'_>,
        range: Option<(u64, u64)>,
    ) -> Result<ByteStream, StorageError>;

    /// A URL the client may fetch the blob from directly (a presigned S3 URL), or `None` when
    /// this store serves blobs through Wharf.
    async fn redirect_url(&self, blob: BlobLocation<'_>) -> Result<Option<String>, StorageError>;

    /// Removes the blob's bytes. Deleting a missing blob succeeds.
    async fn delete(&self, blob: BlobLocation<'_>) -> Result<(), StorageError>;

    /// Stages `body` as a new part of `upload` that follows `staged`, the parts recorded so far
    /// in offset order, and returns it once its bytes are durable. On a body error nothing is
    /// left behind and `Body` is returned.
    async fn write_part(
        &self,
        upload: &str,
        staged: &[UploadPart],
        body: ByteStream,
    ) -> Result<UploadPart, StorageError>;

    /// The staged parts' bytes in order, for verifying a digest other than sha256.
    async fn read_parts(
        &self,
        upload: &str,
        parts: &[UploadPart],
    ) -> Result<ByteStream, StorageError>;

    /// Makes the concatenation of `parts` the blob `digest`, which the caller has verified,
    /// and returns where it is: `None` under its digest, or `Some(key)` when the store keeps
    /// the one staged object `key` as the blob, which moves no bytes. The parts stay staged
    /// until `delete_upload`; if the blob is already stored under its digest, nothing is
    /// written, as content addressing makes them identical. Safe to call twice. Two commits of
    /// one digest may race; the loser may fail (Garage cancels its multipart upload), and the
    /// caller then finds the blob stored.
    async fn commit(
        &self,
        upload: &str,
        parts: &[UploadPart],
        digest: &Digest,
    ) -> Result<Option<String>, StorageError>;

    /// Removes everything staged for `upload` but the object `keep`, which a commit made a
    /// blob. Removing an unknown upload succeeds.
    async fn delete_upload(&self, upload: &str, keep: Option<&str>) -> Result<(), StorageError>;

    /// The objects `upload` staged that a commit may have kept as its blob.
    async fn kept_objects(&self, upload: &str) -> Result<Vec<String>, StorageError>;

    /// Every upload that has something staged, whatever the metadata says about it.
    async fn staged_uploads(&self) -> Result<Vec<StagedUpload>, StorageError>;

    /// Up to `limit` committed blobs in digest order (the digest's string form, bytewise),
    /// all after `after`. Objects under the blob area whose names are not digests this store
    /// would write are skipped (and logged with tracing::warn), never an error. A page shorter
    /// than `limit` is the last one.
    async fn list_blobs(
        &self,
        after: Option<&Digest>,
        limit: u32,
    ) -> Result<Vec<StoredBlob>, StorageError>;

    /// Up to `limit` objects a commit may have kept as blobs under keys of their own, in key
    /// order (bytewise) after `after`, whatever the metadata says about them. A page shorter
    /// than `limit` is the last one. Stores that never keep one list nothing.
    async fn list_kept(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<KeptObject>, StorageError>;
}
