//! Blobs on the local filesystem:
//! `<root>/blobs/<algorithm>/<first two hex>/<hex>` for committed blobs,
//! `<root>/uploads/<upload id>/<offset>-<random>` for staged parts, `<root>/tmp/` for assembly.
//! Every file reaches its final name by an atomic rename or hard link after fsync, so a crash
//! never leaves a partial blob under a digest.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::fs::{self, File};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::{BlobStore, ByteStream, StagedUpload, StorageError, StoredBlob, UploadPart};
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
            let sources: Vec<PathBuf> = parts.iter().map(|part| dir.join(&part.key)).collect();
            let target = temp.clone();
            tokio::task::spawn_blocking(move || concatenate(&sources, &target))
                .await
                .map_err(io::Error::other)??;
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

    /// The blob at `path`, named `name` (`algorithm:hex`), if it is one this store writes
    /// there; `None` for anything else (logged) and for a blob deleted since it was listed.
    async fn stored_blob(&self, path: &Path, name: &str) -> io::Result<Option<StoredBlob>> {
        let digest = match name.parse::<Digest>() {
            Ok(digest) if self.blob_path(&digest) == path => digest,
            _ => {
                tracing::warn!(path = %path.display(), "not a blob this store writes; skipped");
                return Ok(None);
            }
        };
        let meta = match fs::metadata(path).await {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if !meta.is_file() {
            tracing::warn!(path = %path.display(), "not a blob file; skipped");
            return Ok(None);
        }
        Ok(Some(StoredBlob {
            digest,
            size: meta.len(),
            modified: meta.modified()?,
        }))
    }
}

/// Writes `body` to a new file at `path` and makes it durable. A blocking thread writes each
/// chunk straight from the body's buffer while the next ones arrive, and every
/// [`WRITEBACK_EVERY`] bytes it has another thread sync what is written so far, so that the
/// disk works alongside the network and the final sync waits only for the tail.
/// Writes the files `sources` one after another into a new file `target` and makes it
/// durable. `std::io::copy` lets the kernel copy file to file (`copy_file_range`), so the bytes
/// never pass through this process.
fn concatenate(sources: &[PathBuf], target: &Path) -> io::Result<()> {
    let mut out = std::fs::File::create(target)?;
    for source in sources {
        std::io::copy(&mut std::fs::File::open(source)?, &mut out)?;
    }
    out.sync_all()
}

async fn write_stream(path: &Path, mut body: ByteStream) -> Result<u64, StorageError> {
    let file = File::create(path).await?.into_std().await;
    let (chunks, queued) = tokio::sync::mpsc::channel::<Bytes>(WRITE_QUEUE);
    let writer = tokio::task::spawn_blocking(move || write_chunks(file, queued));
    let mut received = Ok(0u64);
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => {
                received = received.map(|n| n + chunk.len() as u64);
                // The writer stops on an error, which it reports when joined.
                if chunks.send(chunk).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                received = Err(StorageError::Body(e));
                break;
            }
        }
    }
    drop(chunks);
    let written = writer.await.map_err(io::Error::other)??;
    let received = received?;
    debug_assert_eq!(written, received);
    Ok(written)
}

/// How many chunks may wait for the writer thread. hyper hands over at most ~400 KB at a time,
/// so this bounds an upload's buffered bytes to a few MiB, whatever its size.
const WRITE_QUEUE: usize = 16;

/// How many written bytes start a background sync.
const WRITEBACK_EVERY: u64 = 32 * 1024 * 1024;

fn write_chunks(
    mut file: std::fs::File,
    mut queued: tokio::sync::mpsc::Receiver<Bytes>,
) -> io::Result<u64> {
    use std::io::Write;
    let mut written = 0u64;
    let mut unsynced = 0u64;
    let mut syncing: Option<std::thread::JoinHandle<io::Result<()>>> = None;
    while let Some(chunk) = queued.blocking_recv() {
        file.write_all(&chunk)?;
        written += chunk.len() as u64;
        unsynced += chunk.len() as u64;
        if unsynced >= WRITEBACK_EVERY && syncing.as_ref().is_none_or(|s| s.is_finished()) {
            if let Some(done) = syncing.take() {
                done.join()
                    .map_err(|_| io::Error::other("sync thread panicked"))??;
            }
            let handle = file.try_clone()?;
            syncing = Some(std::thread::spawn(move || handle.sync_data()));
            unsynced = 0;
        }
    }
    if let Some(done) = syncing {
        done.join()
            .map_err(|_| io::Error::other("sync thread panicked"))??;
    }
    file.sync_all()?;
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

    /// Walks the tree in sorted order, which is digest order for every name this store writes:
    /// one algorithm's hex digits all have the same length, so sorting by fan-out directory
    /// and then by file sorts by hex. Directories wholly before `after`, and those past the
    /// page's last blob, are not read.
    async fn list_blobs(
        &self,
        after: Option<&Digest>,
        limit: u32,
    ) -> Result<Vec<StoredBlob>, StorageError> {
        let mut listed = Vec::new();
        if limit == 0 {
            return Ok(listed);
        }
        let after = after.map(|d| (d.algorithm().as_str(), &d.hex()[..2], d.hex()));
        let blobs = self.root.join("blobs");
        for algorithm in sorted_names(&blobs).await? {
            if after.is_some_and(|(a, ..)| algorithm.as_str() < a) {
                continue;
            }
            let algorithm_dir = blobs.join(&algorithm);
            for fan_out in sorted_names(&algorithm_dir).await? {
                if after.is_some_and(|(a, f, _)| (algorithm.as_str(), fan_out.as_str()) < (a, f)) {
                    continue;
                }
                let dir = algorithm_dir.join(&fan_out);
                for hex in sorted_names(&dir).await? {
                    let here = (algorithm.as_str(), fan_out.as_str(), hex.as_str());
                    if after.is_some_and(|after| here <= after) {
                        continue;
                    }
                    let name = format!("{algorithm}:{hex}");
                    if let Some(blob) = self.stored_blob(&dir.join(&hex), &name).await? {
                        listed.push(blob);
                        if listed.len() == limit as usize {
                            return Ok(listed);
                        }
                    }
                }
            }
        }
        Ok(listed)
    }
}

/// The names in `dir`, sorted bytewise; none if `dir` is missing. Names that are not UTF-8,
/// and a file where a directory belongs, are no blob's and are skipped with a warning.
async fn sorted_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut entries = match fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            tracing::warn!(path = %dir.display(), "not a blob directory; skipped");
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        match entry.file_name().into_string() {
            Ok(name) => names.push(name),
            Err(name) => {
                tracing::warn!(path = %dir.join(name).display(), "not a blob name; skipped");
            }
        }
    }
    names.sort_unstable();
    Ok(names)
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    async fn commit(store: &FsBlobStore, data: &'static [u8]) -> Digest {
        let body: ByteStream = Box::pin(futures::stream::iter([Ok(Bytes::from_static(data))]));
        let part = store.write_part("upload", 0, body).await.unwrap();
        let digest = Digest::sha256(data);
        store.commit("upload", &[part], &digest).await.unwrap();
        digest
    }

    fn digests(blobs: Vec<StoredBlob>) -> Vec<Digest> {
        blobs.into_iter().map(|blob| blob.digest).collect()
    }

    #[tokio::test]
    async fn listing_skips_what_this_store_would_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let blob = commit(&store, b"blob").await;
        let blobs = dir.path().join("blobs");
        let other = Digest::sha256(b"other").hex().to_string();
        // A digest in another's fan-out directory, an unknown algorithm, upper-case hex, a
        // file where a fan-out directory belongs, a name that is no hex, an assembly file.
        for file in [
            blobs.join("sha256").join(&blob.hex()[..2]).join(&other),
            blobs.join("md5/d4/d41d8cd98f00b204e9800998ecf8427e"),
            blobs.join("sha256/AB").join(other.to_uppercase()),
            blobs.join("sha256/stray"),
            blobs.join("sha256/ab/not-hex"),
            dir.path().join("tmp/assembling"),
        ] {
            fs::create_dir_all(file.parent().unwrap()).await.unwrap();
            fs::write(file, b"x").await.unwrap();
        }
        let not_a_file = Digest::sha256(b"directory");
        fs::create_dir_all(store.blob_path(&not_a_file))
            .await
            .unwrap();
        let staged: ByteStream = Box::pin(futures::stream::iter([Ok(Bytes::from("part"))]));
        store.write_part("staged", 0, staged).await.unwrap();

        let listed = store.list_blobs(None, 100).await.unwrap();
        assert_eq!(digests(listed), [blob]);

        fs::remove_dir_all(&blobs).await.unwrap();
        assert!(store.list_blobs(None, 100).await.unwrap().is_empty());
    }

    /// Directories that cannot be read (symlinks to themselves) before `after` and past the
    /// page's end prove that a page reads neither.
    #[tokio::test]
    async fn a_page_reads_only_the_directories_it_covers() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let mut committed = [
            commit(&store, b"one").await,
            commit(&store, b"two").await,
            commit(&store, b"three").await,
        ];
        committed.sort_by_key(Digest::to_string);
        let blobs = dir.path().join("blobs");
        // Before sha256, before every fan-out directory, after all of them, after sha256.
        for trap in ["sha1", "sha256/-", "sha256/~", "sha999"] {
            let trap = blobs.join(trap);
            symlink(&trap, &trap).unwrap();
        }
        assert!(store.list_blobs(None, 100).await.is_err());

        let page = store.list_blobs(Some(&committed[0]), 1).await.unwrap();
        assert_eq!(digests(page), [committed[1].clone()]);
    }
}
