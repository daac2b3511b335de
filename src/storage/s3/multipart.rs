//! S3 multipart uploads: streaming one chunk in pieces, and assembling a blob from several
//! staged objects inside S3. Depends only on the store's client and settings.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};

use super::{S3BlobStore, backend};
use crate::storage::{StorageError, UploadPart};

/// S3's minimum size for every part but the last.
pub(super) const MIN_PART: u64 = 5 * 1024 * 1024;
/// S3's maximum size for one part (and one CopyObject).
pub(super) const MAX_PART: u64 = 5 * 1024 * 1024 * 1024;

impl S3BlobStore {
    pub(super) async fn start_multipart(&self, key: &str) -> Result<Multipart<'_>, StorageError> {
        let (sse, kms_key) = self.encryption();
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.settings.bucket)
            .key(key)
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms_key)
            .send()
            .await
            .map_err(backend)?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StorageError::Backend("S3 returned no multipart upload id".into()))?;
        Ok(Multipart {
            store: self,
            key: key.to_string(),
            upload_id: upload_id.to_string(),
            parts: Vec::new(),
        })
    }
}

/// A multipart upload in progress, with the parts sent so far.
pub(super) struct Multipart<'a> {
    store: &'a S3BlobStore,
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
}

impl<'a> Multipart<'a> {
    /// A multipart upload someone started earlier, to be aborted.
    pub(super) fn existing(store: &'a S3BlobStore, key: &str, upload_id: &str) -> Self {
        Multipart {
            store,
            key: key.to_string(),
            upload_id: upload_id.to_string(),
            parts: Vec::new(),
        }
    }

    fn next_part_number(&self) -> i32 {
        i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX)
    }

    pub(super) async fn upload(&mut self, bytes: Bytes) -> Result<(), StorageError> {
        let sent = self.upload_part(self.next_part_number(), bytes).await?;
        self.parts.push(sent);
        Ok(())
    }

    /// Sends `bytes` as part `number`.
    async fn upload_part(&self, number: i32, bytes: Bytes) -> Result<CompletedPart, StorageError> {
        let sent = self
            .store
            .client
            .upload_part()
            .bucket(&self.store.settings.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(S3Body::from(bytes))
            .send()
            .await
            .map_err(backend)?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(sent.e_tag().map(str::to_string))
            .build())
    }

    /// Copies bytes `first..=last` of `source` into part `number`, inside S3.
    async fn copy_part(
        &self,
        number: i32,
        source: &str,
        first: u64,
        last: u64,
    ) -> Result<CompletedPart, StorageError> {
        let copied = self
            .store
            .client
            .upload_part_copy()
            .bucket(&self.store.settings.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .copy_source(format!("{}/{source}", self.store.settings.bucket))
            .copy_source_range(format!("bytes={first}-{last}"))
            .send()
            .await
            .map_err(backend)?;
        let e_tag = copied
            .copy_part_result()
            .and_then(|r| r.e_tag())
            .map(str::to_string);
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(e_tag)
            .build())
    }

    pub(super) async fn complete(&mut self) -> Result<(), StorageError> {
        let parts = CompletedMultipartUpload::builder()
            .set_parts(Some(std::mem::take(&mut self.parts)))
            .build();
        self.store
            .client
            .complete_multipart_upload()
            .bucket(&self.store.settings.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(parts)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Best effort: a failed abort is also swept up by the stale-upload purge.
    pub(super) async fn abort(self) {
        let aborted = self
            .store
            .client
            .abort_multipart_upload()
            .bucket(&self.store.settings.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        if let Err(e) = aborted {
            tracing::warn!(key = self.key, error = %DisplayErrorContext(e), "abort multipart upload");
        }
    }
}

/// Fills `multipart` with the staged parts in order: large runs are copied inside S3, and
/// small pieces are gathered into a buffer until they make a part of at least `MIN_PART`.
pub(super) async fn assemble(
    multipart: &mut Multipart<'_>,
    parts: &[UploadPart],
) -> Result<(), StorageError> {
    let pieces = plan_assembly(parts);
    let store = multipart.store;
    let shared = &*multipart;
    let assembled: Vec<CompletedPart> = futures::stream::iter(pieces.into_iter().zip(1..))
        .map(|(piece, number)| async move {
            match piece {
                Piece::Copy(range) => {
                    shared
                        .copy_part(number, &range.key, range.first, range.last)
                        .await
                }
                Piece::Send(ranges) => {
                    let mut bytes = BytesMut::new();
                    for range in ranges {
                        let read = store
                            .read_range(&range.key, range.first, range.last)
                            .await?;
                        bytes.extend_from_slice(&read);
                    }
                    shared.upload_part(number, bytes.freeze()).await
                }
            }
        })
        .buffered(ASSEMBLY_CONCURRENCY)
        .try_collect()
        .await?;
    multipart.parts = assembled;
    Ok(())
}

/// How many parts of an assembly are copied or sent at once: S3 copies take a round trip
/// each, and only the parts sent hold memory (under `MIN_PART` each).
const ASSEMBLY_CONCURRENCY: usize = 4;

/// Bytes `first..=last` of the staged object `key`. (Owned: a borrowed key would make the
/// assembly's future too general for `async_trait` to prove `Send`.)
struct StagedRange {
    key: String,
    first: u64,
    last: u64,
}

/// One part of an assembled blob: copied inside S3, or read and sent when it is under S3's
/// part minimum.
enum Piece {
    Copy(StagedRange),
    Send(Vec<StagedRange>),
}

/// The parts that make the blob from the staged `parts`, in order. Ranges of at least
/// `MIN_PART` are copied (up to `MAX_PART` each, never leaving a remainder under the minimum);
/// smaller ones are gathered until they reach it.
fn plan_assembly(parts: &[UploadPart]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut gathered = Vec::new();
    let mut gathered_size = 0;
    for part in parts {
        let mut position = 0;
        while position < part.size {
            let remaining = part.size - position;
            let key = part.key.clone();
            if gathered.is_empty() && remaining >= MIN_PART {
                let mut length = remaining.min(MAX_PART);
                if remaining > length && remaining - length < MIN_PART {
                    length = remaining - MIN_PART;
                }
                let last = position + length - 1;
                pieces.push(Piece::Copy(StagedRange {
                    key,
                    first: position,
                    last,
                }));
                position += length;
            } else {
                let take = (MIN_PART - gathered_size).min(remaining);
                let last = position + take - 1;
                gathered.push(StagedRange {
                    key,
                    first: position,
                    last,
                });
                gathered_size += take;
                position += take;
                if gathered_size >= MIN_PART {
                    pieces.push(Piece::Send(std::mem::take(&mut gathered)));
                    gathered_size = 0;
                }
            }
        }
    }
    if !gathered.is_empty() {
        pieces.push(Piece::Send(gathered));
    }
    pieces
}
