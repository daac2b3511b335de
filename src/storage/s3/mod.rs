//! Blobs on S3 or any S3-compatible store (Garage, MinIO, Ceph), one object per staged chunk:
//! - `<prefix>objects/<upload id>/<random>`: an upload's first chunk. If it turns out to be
//!   the whole blob (a push in one request or one PATCH, as most clients do), committing
//!   keeps this object as the blob, and the metadata records its key: no byte moves.
//! - `<prefix>uploads/<upload id>/<offset>-<random>`: the upload's later chunks.
//! - `<prefix>blobs/<algorithm>/<hex>`: blobs assembled from several chunks.
//!
//! A chunk of unknown length streams into a multipart upload in `PART_SIZE` pieces, so memory
//! stays bounded. Committing several chunks assembles them into the blob with server-side
//! `UploadPartCopy`, a few parts at a time: the bytes never pass through Wharf again. S3
//! wants every part but the last to be at least 5 MiB, so staged objects smaller than that
//! are read (a few MiB at most) and re-sent together.

mod multipart;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{MultipartUpload, Object, ServerSideEncryption};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use self::multipart::{MAX_PART, MIN_PART, Multipart, assemble};
use super::{
    BlobLocation, BlobStore, ByteStream, KeptObject, StagedUpload, StorageError, StoredBlob,
    UploadPart,
};
use crate::oci::Digest;

/// Size of the pieces a streamed chunk is cut into.
const PART_SIZE: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// Endpoint URL of an S3-compatible server; `None` for AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// Key prefix for everything Wharf writes, e.g. `registry/`.
    pub prefix: String,
    pub path_style: bool,
    /// `AES256` or `aws:kms`, applied to every object written.
    pub encryption: Option<String>,
    pub kms_key_id: Option<String>,
    /// Blob GETs answer 307 to a presigned URL valid this long, instead of streaming.
    pub redirect: Option<Duration>,
}

pub struct S3BlobStore {
    client: Client,
    settings: S3Settings,
}

/// An SDK error (after the SDK's own retries) as a storage error: `Unavailable` when the
/// store could not be reached, timed out, throttled or failed on its side (5xx), since a
/// later retry may succeed; `Backend` for everything else.
fn backend<E>(e: SdkError<E, HttpResponse>) -> StorageError
where
    E: std::error::Error + Send + Sync + 'static,
{
    let transient = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ResponseError(failure) => failure.raw().status().is_server_error(),
        SdkError::ServiceError(failure) => {
            failure.raw().status().is_server_error() || failure.raw().status().as_u16() == 429
        }
        _ => false,
    };
    let message = DisplayErrorContext(e).to_string();
    if transient {
        StorageError::Unavailable(message)
    } else {
        StorageError::Backend(message)
    }
}

impl S3BlobStore {
    /// Builds a client with credentials from the standard AWS chain (environment, config
    /// files, instance roles).
    pub async fn connect(settings: S3Settings) -> Result<S3BlobStore, StorageError> {
        if let Some(encryption) = &settings.encryption
            && !matches!(encryption.as_str(), "AES256" | "aws:kms")
        {
            return Err(StorageError::Backend(format!(
                "unsupported S3 encryption {encryption:?}: use AES256 or aws:kms"
            )));
        }
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .load()
            .await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(settings.path_style)
            // Checksums only where S3 requires them: not every S3-compatible server knows the
            // newer ones, and every digest is verified by Wharf itself.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        let store = S3BlobStore {
            client: Client::from_conf(config.build()),
            settings,
        };
        store
            .client
            .head_bucket()
            .bucket(&store.settings.bucket)
            .send()
            .await
            .map_err(backend)?;
        Ok(store)
    }

    fn blob_key(&self, digest: &Digest) -> String {
        format!(
            "{}blobs/{}/{}",
            self.settings.prefix,
            digest.algorithm().as_str(),
            digest.hex()
        )
    }

    /// Where the blob's bytes are.
    fn key(&self, blob: BlobLocation<'_>) -> String {
        blob.key
            .map_or_else(|| self.blob_key(blob.digest), str::to_string)
    }

    fn upload_prefix(&self, upload: &str) -> String {
        format!("{}uploads/{upload}/", self.settings.prefix)
    }

    /// Where objects that a commit may keep as blobs are staged.
    fn kept_root(&self) -> String {
        format!("{}objects/", self.settings.prefix)
    }

    /// Every prefix `upload` stages under.
    fn staging_prefixes(&self, upload: &str) -> [String; 2] {
        [
            format!("{}{upload}/", self.kept_root()),
            self.upload_prefix(upload),
        ]
    }

    fn encryption(&self) -> (Option<ServerSideEncryption>, Option<String>) {
        let sse = self
            .settings
            .encryption
            .as_deref()
            .map(ServerSideEncryption::from);
        (sse, self.settings.kms_key_id.clone())
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        let (sse, kms_key) = self.encryption();
        self.client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .body(S3Body::from(bytes))
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms_key)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Copies the object `source` to `key` inside S3, with this store's encryption.
    async fn copy_whole(&self, source: &str, key: &str) -> Result<(), StorageError> {
        let (sse, kms_key) = self.encryption();
        self.client
            .copy_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .copy_source(format!("{}/{source}", self.settings.bucket))
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms_key)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn read_range(&self, key: &str, first: u64, last: u64) -> Result<Bytes, StorageError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .range(format!("bytes={first}-{last}"))
            .send()
            .await
            .map_err(backend)?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| StorageError::Backend(format!("reading {key}: {e}")))?;
        Ok(bytes.into_bytes())
    }

    /// Every unfinished multipart upload under `prefix`, page after page.
    async fn pending_multiparts(&self, prefix: &str) -> Result<Vec<MultipartUpload>, StorageError> {
        let mut pending = Vec::new();
        let (mut key_marker, mut id_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.settings.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker)
                .set_upload_id_marker(id_marker)
                .send()
                .await
                .map_err(backend)?;
            pending.extend(page.uploads().iter().cloned());
            if !page.is_truncated().unwrap_or(false) {
                return Ok(pending);
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() {
                return Ok(pending);
            }
        }
    }

    /// Streams `body` to `key`: one PutObject if it fits in a part, else a multipart upload.
    async fn write_stream(&self, key: &str, mut body: ByteStream) -> Result<u64, StorageError> {
        let mut buffer = BytesMut::with_capacity(PART_SIZE);
        let mut multipart: Option<Multipart<'_>> = None;
        let mut written = 0u64;
        let result = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(StorageError::Body)?;
                written += chunk.len() as u64;
                buffer.extend_from_slice(&chunk);
                while buffer.len() >= PART_SIZE {
                    let part = buffer.split_to(PART_SIZE).freeze();
                    if multipart.is_none() {
                        multipart = Some(self.start_multipart(key).await?);
                    }
                    multipart.as_mut().expect("started").upload(part).await?;
                }
            }
            match multipart.as_mut() {
                None => self.put(key, buffer.split().freeze()).await,
                Some(multipart) => {
                    if !buffer.is_empty() {
                        multipart.upload(buffer.split().freeze()).await?;
                    }
                    multipart.complete().await
                }
            }
        }
        .await;
        if let (Err(_), Some(multipart)) = (&result, multipart) {
            multipart.abort().await;
        }
        result.map(|()| written)
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn stat(&self, blob: BlobLocation<'_>) -> Result<Option<u64>, StorageError> {
        let head = self
            .client
            .head_object()
            .bucket(&self.settings.bucket)
            .key(self.key(blob))
            .send()
            .await;
        match head {
            Ok(object) => Ok(Some(object.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn get(
        &self,
        blob: BlobLocation<'_>,
        range: Option<(u64, u64)>,
    ) -> Result<ByteStream, StorageError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(self.key(blob))
            .set_range(range.map(|(first, last)| format!("bytes={first}-{last}")))
            .send()
            .await;
        match object {
            Ok(object) => Ok(Box::pin(chunks(object.body))),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                Err(StorageError::NotFound)
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn redirect_url(&self, blob: BlobLocation<'_>) -> Result<Option<String>, StorageError> {
        let Some(valid_for) = self.settings.redirect else {
            return Ok(None);
        };
        let presigning = PresigningConfig::expires_in(valid_for)
            .map_err(|e| StorageError::Backend(e.to_string()))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(self.key(blob))
            .presigned(presigning)
            .await
            .map_err(backend)?;
        Ok(Some(request.uri().to_string()))
    }

    async fn delete(&self, blob: BlobLocation<'_>) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(&self.settings.bucket)
            .key(self.key(blob))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn write_part(
        &self,
        upload: &str,
        staged: &[UploadPart],
        body: ByteStream,
    ) -> Result<UploadPart, StorageError> {
        // Each part is an object of its own; assembly happens at commit.
        let offset = super::staged_end(staged);
        let random = uuid::Uuid::new_v4();
        let key = if offset == 0 {
            format!("{}{upload}/{random}", self.kept_root())
        } else {
            format!("{}{offset:020}-{random}", self.upload_prefix(upload))
        };
        let size = self.write_stream(&key, body).await?;
        Ok(UploadPart { offset, size, key })
    }

    async fn read_parts(
        &self,
        _upload: &str,
        parts: &[UploadPart],
    ) -> Result<ByteStream, StorageError> {
        let keys: Vec<String> = parts.iter().map(|part| part.key.clone()).collect();
        let client = self.client.clone();
        let bucket = self.settings.bucket.clone();
        let stream = futures::stream::iter(keys)
            .then(move |key| {
                let request = client.get_object().bucket(&bucket).key(key);
                async move { request.send().await }
            })
            .map(|object| match object {
                Ok(object) => chunks(object.body).boxed(),
                Err(e) => {
                    let e = std::io::Error::other(DisplayErrorContext(e).to_string());
                    futures::stream::once(async { Err(e) }).boxed()
                }
            })
            .flatten();
        Ok(Box::pin(stream))
    }

    async fn commit(
        &self,
        _upload: &str,
        parts: &[UploadPart],
        digest: &Digest,
    ) -> Result<Option<String>, StorageError> {
        let staged: Vec<&UploadPart> = parts.iter().filter(|part| part.size > 0).collect();
        if let [only] = staged[..]
            && only.key.starts_with(&self.kept_root())
        {
            // The common case (a monolithic or streamed upload): its one object is the blob.
            return Ok(Some(only.key.clone()));
        }
        if self.stat(BlobLocation::of(digest)).await?.is_some() {
            return Ok(None);
        }
        let key = self.blob_key(digest);
        let total: u64 = staged.iter().map(|part| part.size).sum();
        if total < MIN_PART {
            // Small blobs (configs, tiny layers) are simply re-sent in one request.
            let mut bytes = BytesMut::with_capacity(total as usize);
            for part in &staged {
                bytes.extend_from_slice(&self.read_range(&part.key, 0, part.size - 1).await?);
            }
            self.put(&key, bytes.freeze()).await?;
            return Ok(None);
        }
        if let [only] = staged[..]
            && only.size <= MAX_PART
        {
            // One chunk staged by an earlier release, which kept no objects as blobs.
            self.copy_whole(&only.key, &key).await?;
            return Ok(None);
        }
        let mut multipart = self.start_multipart(&key).await?;
        match assemble(&mut multipart, parts).await {
            Ok(()) => multipart.complete().await?,
            Err(e) => {
                multipart.abort().await;
                return Err(e);
            }
        }
        Ok(None)
    }

    async fn delete_upload(&self, upload: &str, keep: Option<&str>) -> Result<(), StorageError> {
        for prefix in self.staging_prefixes(upload) {
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(&self.settings.bucket)
                .prefix(&prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.try_next().await.map_err(backend)? {
                for key in page.contents().iter().filter_map(Object::key) {
                    if Some(key) != keep {
                        self.client
                            .delete_object()
                            .bucket(&self.settings.bucket)
                            .key(key)
                            .send()
                            .await
                            .map_err(backend)?;
                    }
                }
            }
            // Multipart uploads of chunks whose node died mid-stream.
            for pending in self.pending_multiparts(&prefix).await? {
                if let (Some(key), Some(id)) = (pending.key(), pending.upload_id()) {
                    Multipart::existing(self, key, id).abort().await;
                }
            }
        }
        Ok(())
    }

    async fn kept_objects(&self, upload: &str) -> Result<Vec<String>, StorageError> {
        let [kept_prefix, _] = self.staging_prefixes(upload);
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.settings.bucket)
            .prefix(&kept_prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.try_next().await.map_err(backend)? {
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(Object::key)
                    .map(str::to_string),
            );
        }
        Ok(keys)
    }

    /// Objects of first chunks are left out: they may be blobs now, and reconciliation
    /// matches them with the metadata (`list_kept`). Their multipart uploads are not.
    async fn staged_uploads(&self) -> Result<Vec<StagedUpload>, StorageError> {
        let root = format!("{}uploads/", self.settings.prefix);
        let kept_root = self.kept_root();
        let mut newest: HashMap<String, SystemTime> = HashMap::new();
        let mut note = |key: Option<&str>, at: Option<&aws_sdk_s3::primitives::DateTime>| {
            let upload = key
                .and_then(|key| key.strip_prefix(&root).or(key.strip_prefix(&kept_root)))
                .and_then(|rest| rest.split('/').next());
            let at = at.and_then(|at| SystemTime::try_from(*at).ok());
            if let (Some(upload), Some(at)) = (upload, at) {
                let last = newest.entry(upload.to_string()).or_insert(at);
                *last = (*last).max(at);
            }
        };
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.settings.bucket)
            .prefix(&root)
            .into_paginator()
            .send();
        while let Some(page) = pages.try_next().await.map_err(backend)? {
            for object in page.contents() {
                note(object.key(), object.last_modified());
            }
        }
        // Chunks still streaming into a multipart upload have no object yet.
        for prefix in [&root, &kept_root] {
            for pending in self.pending_multiparts(prefix).await? {
                note(pending.key(), pending.initiated());
            }
        }
        Ok(newest
            .into_iter()
            .map(|(upload, last_write)| StagedUpload { upload, last_write })
            .collect())
    }

    /// S3 lists keys in UTF-8 byte order, and under one prefix `blobs/sha256/…` sorts before
    /// `blobs/sha512/…` exactly as `sha256:…` sorts before `sha512:…`, so key order is digest
    /// order and `after`'s key is where the page starts.
    async fn list_blobs(
        &self,
        after: Option<&Digest>,
        limit: u32,
    ) -> Result<Vec<StoredBlob>, StorageError> {
        let mut listed = Vec::new();
        if limit == 0 {
            return Ok(listed);
        }
        let root = format!("{}blobs/", self.settings.prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.settings.bucket)
            .prefix(&root)
            .set_start_after(after.map(|digest| self.blob_key(digest)))
            .max_keys(i32::try_from(limit).unwrap_or(i32::MAX))
            .into_paginator()
            .send();
        while let Some(page) = pages.try_next().await.map_err(backend)? {
            for object in page.contents() {
                if let Some(blob) = stored_blob(&root, object)? {
                    listed.push(blob);
                    if listed.len() == limit as usize {
                        return Ok(listed);
                    }
                }
            }
        }
        Ok(listed)
    }

    async fn list_kept(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<KeptObject>, StorageError> {
        let mut listed = Vec::new();
        if limit == 0 {
            return Ok(listed);
        }
        let root = self.kept_root();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.settings.bucket)
            .prefix(&root)
            .set_start_after(after.map(str::to_string))
            .max_keys(i32::try_from(limit).unwrap_or(i32::MAX))
            .into_paginator()
            .send();
        while let Some(page) = pages.try_next().await.map_err(backend)? {
            for object in page.contents() {
                let key = object.key().unwrap_or_default();
                let Some((upload, _)) = key.strip_prefix(&root).and_then(|k| k.split_once('/'))
                else {
                    tracing::warn!(key, "not an object this store writes; skipped");
                    continue;
                };
                let modified = object
                    .last_modified()
                    .and_then(|at| SystemTime::try_from(*at).ok());
                let (Some(size), Some(modified)) = (object.size(), modified) else {
                    return Err(StorageError::Backend(format!(
                        "S3 listed {key} without its size or modification time"
                    )));
                };
                listed.push(KeptObject {
                    key: key.to_string(),
                    upload: upload.to_string(),
                    size: size.max(0) as u64,
                    modified,
                });
                if listed.len() == limit as usize {
                    return Ok(listed);
                }
            }
        }
        Ok(listed)
    }
}

/// An object's body as the SDK receives it, chunk by chunk: no copy into a buffer of our own.
fn chunks(body: S3Body) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    futures::stream::unfold(body, |mut body| async move {
        let chunk = body.next().await?;
        Some((chunk.map_err(std::io::Error::other), body))
    })
}

/// The blob `object` of a listing of `root` (`<prefix>blobs/`) holds, or `None` (logged) if
/// its key is not `<algorithm>/<hex>` of a digest.
fn stored_blob(root: &str, object: &Object) -> Result<Option<StoredBlob>, StorageError> {
    let key = object.key().unwrap_or_default();
    let Some(digest) = key
        .strip_prefix(root)
        .and_then(|name| name.replacen('/', ":", 1).parse::<Digest>().ok())
    else {
        tracing::warn!(key, "not a blob this store writes; skipped");
        return Ok(None);
    };
    let modified = object
        .last_modified()
        .and_then(|at| SystemTime::try_from(*at).ok());
    let (Some(size), Some(modified)) = (object.size(), modified) else {
        return Err(StorageError::Backend(format!(
            "S3 listed {key} without its size or modification time"
        )));
    };
    Ok(Some(StoredBlob {
        digest,
        size: size.max(0) as u64,
        modified,
    }))
}
