//! Uploads in progress: what any node needs to continue one another node started.

use async_trait::async_trait;

use super::{HeldBlob, MetaResult, Millis};
use crate::storage::UploadPart;

#[derive(Debug, Clone)]
pub struct Upload {
    pub id: String,
    pub repository: String,
    /// Bytes received so far: the offset the next chunk must start at.
    pub size: u64,
    /// Saved SHA-256 midstate after `size` bytes.
    pub hash_state: Vec<u8>,
    /// Staged parts in offset order; their sizes add up to `size`.
    pub parts: Vec<UploadPart>,
}

/// The verified blob a finished upload becomes, and where its bytes are.
#[derive(Debug, Clone, Copy)]
pub struct FinishedBlob<'a> {
    pub digest: &'a str,
    pub size: u64,
    /// The object the bytes are kept in, when not under the digest.
    pub storage_key: Option<&'a str>,
    /// Whether a row that records the blob already takes `storage_key` too, because the
    /// bytes it names were found missing. Otherwise that row keeps its own.
    pub relocate: bool,
}

/// Uploads in progress. Names and ids arrive validated.
#[async_trait]
pub trait UploadStore: Send + Sync + 'static {
    /// Records a new, empty upload session for `repository`.
    async fn create_upload(
        &self,
        id: &str,
        repository: &str,
        hash_state: &[u8],
        now: Millis,
    ) -> MetaResult<()>;

    /// The upload row and its parts, read in one statement so that they always agree.
    async fn get_upload(&self, id: &str) -> MetaResult<Option<Upload>>;

    /// Appends `part` to the upload if its size is still `part.offset`, saving the new hash
    /// state. Returns false (and changes nothing) if another chunk got there first or the
    /// upload is gone: the caller then discards the part.
    async fn append_upload_part(
        &self,
        id: &str,
        part: &UploadPart,
        hash_state: &[u8],
        now: Millis,
    ) -> MetaResult<bool>;

    /// Forgets the upload. Returns false if it was already gone.
    async fn delete_upload(&self, id: &str) -> MetaResult<bool>;

    /// Ids of uploads not touched since `idle_since`, oldest first, at most `limit`.
    async fn stale_uploads(&self, idle_since: Millis, limit: u32) -> MetaResult<Vec<String>>;

    /// Turns a finished upload whose row records `recorded` bytes into `blob` (which may be
    /// larger when a final chunk was staged but not recorded) linked to its repository, in
    /// one transaction that is left open: the upload row goes, the blob and link rows appear,
    /// and the blob's row is held, so that no collection can remove the bytes until the
    /// caller, having checked they are where the held row says, commits. `None` (changing
    /// nothing) if the upload is gone or no longer records `recorded` bytes; also `None`, with
    /// the upload gone, if its repository no longer exists and `create_repository` is false.
    async fn complete_upload(
        &self,
        id: &str,
        recorded: u64,
        blob: FinishedBlob<'_>,
        create_repository: bool,
        now: Millis,
    ) -> MetaResult<Option<Box<dyn HeldBlob>>>;
}
