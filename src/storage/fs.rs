//! Blobs on the local filesystem:
//! `<root>/blobs/<algorithm>/<first two hex>/<hex>` for committed blobs,
//! `<root>/uploads/<upload id>/<offset>-<random>` for staged parts, `<root>/tmp/` for assembly.
//! Every file reaches its final name by an atomic rename or hard link after fsync, so a crash
//! never leaves a partial blob under a digest.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::fs::{self, File};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use super::{BlobStore, ByteStream, StagedUpload, StorageError, UploadPart};
use crate::oci::Digest;

const READ_BUFFER: usize = 256 * 1024;

pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    pub async fn open(root: impl Into<PathBuf>) -> Result<FsBlobStore, StorageError> {
        let root = root.into();
        for dir in ["blobs", "uploads", "tmp"] {
            fs::create_dir_all(root.join(dir)).await?;
        }
        Ok(FsBlobStore { root })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    fn upload_dir(&self, upload: &str) -> PathBuf {
        self.root.join("uploads").join(upload)
    }

    fn temp_path(&self) -> PathBuf {
        self.root.join("tmp").join(uuid::Uuid::new_v4().to_string())
    }

    /// Puts the staged parts into place as the blob: a hard link to the part when there is
    /// one, one concatenation otherwise. Staged parts stay until the upload is cleared, so a
    /// commit whose upload then turns out to have changed leaves the upload whole.
    async fn assemble(
        &self,
        upload: &str,
        parts: &[UploadPart],
        digest: &Digest,
    ) -> io::Result<()> {
        let dir = self.upload_dir(upload);
        if let [only] = parts {
            // The common case (monolithic or streamed upload) moves no bytes.
            match self.link(&dir.join(&only.key), digest).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    tracing::debug!(error = %e, "cannot hard-link a staged part; copying it");
                }
                linked => return linked,
            }
        }
        let temp = self.temp_path();
        let assembled = async {
            let mut out = File::create(&temp).await?;
            for part in parts {
                let mut input = File::open(dir.join(&part.key)).await?;
                tokio::io::copy(&mut input, &mut out).await?;
            }
            out.sync_all().await?;
            fs::rename(&temp, self.blob_path(digest)).await?;
            self.sync_blob_dir(digest).await
        }
        .await;
        if assembled.is_err() {
            let _ = fs::remove_file(&temp).await;
        }
        assembled
    }

    /// Links `from` in as the blob. A blob already there (a concurrent commit of the same
    /// content) counts as done.
    async fn link(&self, from: &Path, digest: &Digest) -> io::Result<()> {
        match fs::hard_link(from, self.blob_path(digest)).await {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
            Ok(()) => self.sync_blob_dir(digest).await,
        }
    }

    /// Makes a new name in the blob's directory durable.
    async fn sync_blob_dir(&self, digest: &Digest) -> io::Result<()> {
        let path = self.blob_path(digest);
        File::open(path.parent().expect("blob paths have a parent"))
            .await?
            .sync_all()
            .await
    }
}

async fn write_stream(path: &Path, mut body: ByteStream) -> Result<u64, StorageError> {
    let mut file = File::create(path).await?;
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(StorageError::Body)?;
        file.write_all(&chunk).await?;
        written += chunk.len() as u64;
    }
    file.sync_all().await?;
    Ok(written)
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StorageError> {
        match fs::metadata(self.blob_path(digest)).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn get(
        &self,
        digest: &Digest,
        range: Option<(u64, u64)>,
    ) -> Result<ByteStream, StorageError> {
        let mut file = match File::open(self.blob_path(digest)).await {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StorageError::NotFound),
            Err(e) => return Err(e.into()),
        };
        Ok(match range {
            None => Box::pin(ReaderStream::with_capacity(file, READ_BUFFER)),
            Some((start, end)) => {
                file.seek(SeekFrom::Start(start)).await?;
                let part = file.take(end - start + 1);
                Box::pin(ReaderStream::with_capacity(part, READ_BUFFER))
            }
        })
    }

    async fn redirect_url(&self, _digest: &Digest) -> Result<Option<String>, StorageError> {
        Ok(None)
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StorageError> {
        match fs::remove_file(self.blob_path(digest)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn write_part(
        &self,
        upload: &str,
        offset: u64,
        body: ByteStream,
    ) -> Result<UploadPart, StorageError> {
        let dir = self.upload_dir(upload);
        fs::create_dir_all(&dir).await?;
        let key = format!("{offset:020}-{}", uuid::Uuid::new_v4());
        let path = dir.join(&key);
        match write_stream(&path, body).await {
            Ok(size) => Ok(UploadPart { offset, size, key }),
            Err(e) => {
                let _ = fs::remove_file(&path).await;
                Err(e)
            }
        }
    }

    async fn read_parts(
        &self,
        upload: &str,
        parts: &[UploadPart],
    ) -> Result<ByteStream, StorageError> {
        let dir = self.upload_dir(upload);
        let paths: Vec<PathBuf> = parts.iter().map(|part| dir.join(&part.key)).collect();
        let stream = futures::stream::iter(paths)
            .then(|path| async move { File::open(path).await })
            .map(|file| match file {
                Ok(file) => ReaderStream::with_capacity(file, READ_BUFFER).boxed(),
                Err(e) => futures::stream::once(async { Err(e) }).boxed(),
            })
            .flatten();
        Ok(Box::pin(stream))
    }

    async fn commit(
        &self,
        upload: &str,
        parts: &[UploadPart],
        digest: &Digest,
    ) -> Result<(), StorageError> {
        if self.stat(digest).await?.is_some() {
            return Ok(());
        }
        let path = self.blob_path(digest);
        fs::create_dir_all(path.parent().expect("blob paths have a parent")).await?;
        Ok(self.assemble(upload, parts, digest).await?)
    }

    async fn delete_upload(&self, upload: &str) -> Result<(), StorageError> {
        match fs::remove_dir_all(self.upload_dir(upload)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn staged_uploads(&self) -> Result<Vec<StagedUpload>, StorageError> {
        let mut staged = Vec::new();
        let mut uploads = fs::read_dir(self.root.join("uploads")).await?;
        while let Some(dir) = uploads.next_entry().await? {
            // An upload that ends meanwhile takes its directory along; stray files are no
            // staging area. Neither stops the listing.
            if let Some(last_write) = last_write(&dir.path()).await? {
                staged.push(StagedUpload {
                    upload: dir.file_name().to_string_lossy().into_owned(),
                    last_write,
                });
            }
        }
        Ok(staged)
    }
}

/// The newest modification time of a staging directory and its parts (a part being written
/// updates its own time, not the directory's); `None` if it is gone or not a directory.
async fn last_write(dir: &Path) -> io::Result<Option<std::time::SystemTime>> {
    let gone = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
        )
    };
    let mut parts = match fs::read_dir(dir).await {
        Ok(parts) => parts,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut newest = match fs::metadata(dir).await.and_then(|m| m.modified()) {
        Ok(modified) => modified,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    while let Some(part) = parts.next_entry().await? {
        if let Ok(modified) = part.metadata().await.and_then(|m| m.modified()) {
            newest = newest.max(modified);
        }
    }
    Ok(Some(newest))
}
