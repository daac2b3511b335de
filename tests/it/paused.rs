//! A blob store that stops at chosen points until the test lets it go, for forcing the
//! interleavings of racing requests instead of hoping for them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore};
use wharf::config::Config;
use wharf::oci::Digest;

use crate::common::TestApp;
use wharf::storage::{
    BlobLocation, BlobStore, ByteStream, KeptObject, StagedUpload, StorageError, StoredBlob,
    UploadPart,
};

/// One stopping point. Armed, the next call that passes it stops there: the test learns it
/// arrived with [`Gate::reached`] and lets it continue with [`Gate::release`].
pub struct Gate {
    armed: AtomicBool,
    arrived: Notify,
    released: Semaphore,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            armed: AtomicBool::new(false),
            arrived: Notify::new(),
            released: Semaphore::new(0),
        }
    }
}

impl Gate {
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    pub async fn reached(&self) {
        self.arrived.notified().await;
    }

    pub fn release(&self) {
        self.released.add_permits(1);
    }

    async fn pass(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.arrived.notify_one();
            self.released.acquire().await.expect("gate open").forget();
        }
    }
}

/// Delegates to a real store, stopping before `write_part`, before and after `commit`, and
/// after `delete`, when armed.
pub struct PausedBlobStore {
    pub inner: Arc<dyn BlobStore>,
    pub write: Gate,
    pub commit: Gate,
    pub committed: Gate,
    pub deleted: Gate,
}

impl PausedBlobStore {
    pub fn new(inner: Arc<dyn BlobStore>) -> Arc<PausedBlobStore> {
        Arc::new(PausedBlobStore {
            inner,
            write: Gate::default(),
            commit: Gate::default(),
            committed: Gate::default(),
            deleted: Gate::default(),
        })
    }
}

#[async_trait]
impl BlobStore for PausedBlobStore {
    async fn stat(&self, blob: BlobLocation<'_>) -> Result<Option<u64>, StorageError> {
        self.inner.stat(blob).await
    }

    async fn get(
        &self,
        blob: BlobLocation<'_>,
        range: Option<(u64, u64)>,
    ) -> Result<ByteStream, StorageError> {
        self.inner.get(blob, range).await
    }

    async fn redirect_url(&self, blob: BlobLocation<'_>) -> Result<Option<String>, StorageError> {
        self.inner.redirect_url(blob).await
    }

    async fn delete(&self, blob: BlobLocation<'_>) -> Result<(), StorageError> {
        self.inner.delete(blob).await?;
        self.deleted.pass().await;
        Ok(())
    }

    async fn write_part(
        &self,
        upload: &str,
        staged: &[UploadPart],
        body: ByteStream,
    ) -> Result<UploadPart, StorageError> {
        self.write.pass().await;
        self.inner.write_part(upload, staged, body).await
    }

    async fn read_parts(
        &self,
        upload: &str,
        parts: &[UploadPart],
    ) -> Result<ByteStream, StorageError> {
        self.inner.read_parts(upload, parts).await
    }

    async fn commit(
        &self,
        upload: &str,
        parts: &[UploadPart],
        digest: &Digest,
    ) -> Result<Option<String>, StorageError> {
        self.commit.pass().await;
        let kept = self.inner.commit(upload, parts, digest).await?;
        self.committed.pass().await;
        Ok(kept)
    }

    async fn delete_upload(&self, upload: &str, keep: Option<&str>) -> Result<(), StorageError> {
        self.inner.delete_upload(upload, keep).await
    }

    async fn kept_objects(&self, upload: &str) -> Result<Vec<String>, StorageError> {
        self.inner.kept_objects(upload).await
    }

    async fn staged_uploads(&self) -> Result<Vec<StagedUpload>, StorageError> {
        self.inner.staged_uploads().await
    }

    async fn list_blobs(
        &self,
        after: Option<&Digest>,
        limit: u32,
    ) -> Result<Vec<StoredBlob>, StorageError> {
        self.inner.list_blobs(after, limit).await
    }

    async fn list_kept(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<KeptObject>, StorageError> {
        self.inner.list_kept(after, limit).await
    }
}

/// A registry configured by `configure`, whose blob store stops where the test says.
pub async fn paused_app(configure: impl FnOnce(&mut Config)) -> (TestApp, Arc<PausedBlobStore>) {
    let mut paused = None;
    let app = TestApp::spawn_wrapping(configure, |inner| {
        let store = PausedBlobStore::new(inner);
        paused = Some(store.clone());
        store
    })
    .await;
    (app, paused.expect("wrapped"))
}
