//! A [`BlobStore`] that times every operation of the one it wraps, for the
//! `wharf_storage_operation_duration_seconds` metric. `get` and `read_parts` are timed until
//! their streams start; `write_part` includes reading the body it stores.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{
    BlobLocation, BlobStore, ByteStream, KeptObject, StagedUpload, StorageError, StoredBlob,
    UploadPart,
};
use crate::metrics::Metrics;
use crate::oci::Digest;

pub struct MeteredBlobStore {
    inner: Arc<dyn BlobStore>,
    metrics: Arc<Metrics>,
    /// `fs` or `s3`: the backend label.
    backend: &'static str,
}

impl MeteredBlobStore {
    pub fn new(inner: Arc<dyn BlobStore>, metrics: Arc<Metrics>, backend: &'static str) -> Self {
        MeteredBlobStore {
            inner,
            metrics,
            backend,
        }
    }

    async fn timed<T>(&self, operation: &'static str, work: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let outcome = work.await;
        self.metrics
            .storage_operation(self.backend, operation, started.elapsed());
        outcome
    }
}

type Result<T> = std::result::Result<T, StorageError>;

#[async_trait]
impl BlobStore for MeteredBlobStore {
    async fn stat(&self, blob: BlobLocation<'_>) -> Result<Option<u64>> {
        self.timed("stat", self.inner.stat(blob)).await
    }

    async fn get(&self, blob: BlobLocation<'_>, range: Option<(u64, u64)>) -> Result<ByteStream> {
        self.timed("get", self.inner.get(blob, range)).await
    }

    async fn redirect_url(&self, blob: BlobLocation<'_>) -> Result<Option<String>> {
        self.timed("redirect_url", self.inner.redirect_url(blob))
            .await
    }

    async fn delete(&self, blob: BlobLocation<'_>) -> Result<()> {
        self.timed("delete", self.inner.delete(blob)).await
    }

    async fn write_part(
        &self,
        upload: &str,
        staged: &[UploadPart],
        body: ByteStream,
    ) -> Result<UploadPart> {
        let write = self.inner.write_part(upload, staged, body);
        self.timed("write_part", write).await
    }

    async fn read_parts(&self, upload: &str, parts: &[UploadPart]) -> Result<ByteStream> {
        self.timed("read_parts", self.inner.read_parts(upload, parts))
            .await
    }

    async fn commit(
        &self,
        upload: &str,
        parts: &[UploadPart],
        digest: &Digest,
    ) -> Result<Option<String>> {
        self.timed("commit", self.inner.commit(upload, parts, digest))
            .await
    }

    async fn delete_upload(&self, upload: &str, keep: Option<&str>) -> Result<()> {
        self.timed("delete_upload", self.inner.delete_upload(upload, keep))
            .await
    }

    async fn kept_objects(&self, upload: &str) -> Result<Vec<String>> {
        self.timed("kept_objects", self.inner.kept_objects(upload))
            .await
    }

    async fn staged_uploads(&self) -> Result<Vec<StagedUpload>> {
        self.timed("staged_uploads", self.inner.staged_uploads())
            .await
    }

    async fn list_blobs(&self, after: Option<&Digest>, limit: u32) -> Result<Vec<StoredBlob>> {
        self.timed("list_blobs", self.inner.list_blobs(after, limit))
            .await
    }

    async fn list_kept(&self, after: Option<&str>, limit: u32) -> Result<Vec<KeptObject>> {
        self.timed("list_kept", self.inner.list_kept(after, limit))
            .await
    }
}
