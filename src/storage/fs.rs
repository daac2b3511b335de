//! Blobs on the local filesystem:
//! `<root>/blobs/<algorithm>/<first two hex>/<hex>` for committed blobs,
//! `<root>/uploads/<upload id>/<random>.upload` for staging, `<root>/tmp/` for assembly.
//!
//! A staging file holds an upload's bytes from offset 0: each chunk is appended to the file of
//! the part before it, so finishing a chunked upload is a hard link, not a copy. A writer
//! appends only while it holds the file's lock, only at the end the recorded parts reach, and
//! never to a file that is already a blob, so the bytes a recorded part covers never change.
//! One that cannot (a racing request, a crashed writer's leftovers) starts a new file with a
//! copy of what the parts cover. Uploads staged by earlier releases keep one file per part
//! (`<offset>-<random>`), and are read that way.
//!
//! Every file reaches its final name by an atomic rename or hard link after fsync, so a crash
//! never leaves a partial blob under a digest.

use std::fs::OpenOptions;
use std::io::{self, Read, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::fs::{self, File};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::{
    BlobLocation, BlobStore, ByteStream, KeptObject, StagedUpload, StorageError, StoredBlob,
    UploadPart, staged_end,
};
use crate::oci::Digest;

const READ_BUFFER: usize = 256 * 1024;

/// Staging files end in this; a file without it holds a single part (the earlier layout).
const STAGING_SUFFIX: &str = ".upload";

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

/// The files in `dir` that hold the bytes of `parts`, in order, each with how many of its
/// bytes count: the last part's staging file alone, as it holds everything from offset 0, or
/// one file per part for an upload staged in the earlier layout.
fn sources(dir: &Path, parts: &[UploadPart]) -> Vec<(PathBuf, u64)> {
    match parts.last() {
        Some(last) if last.key.ends_with(STAGING_SUFFIX) => {
            vec![(dir.join(&last.key), last.end())]
        }
        _ => parts.iter().map(|p| (dir.join(&p.key), p.size)).collect(),
    }
}

/// Copies the counted bytes of `sources` to `out`. `std::io::copy` lets the kernel copy file
/// to file (`copy_file_range`), so the bytes never pass through this process.
fn copy_sources(sources: &[(PathBuf, u64)], out: &mut std::fs::File) -> io::Result<()> {
    for (path, len) in sources {
        let copied = std::io::copy(&mut std::fs::File::open(path)?.take(*len), out)?;
        if copied != *len {
            let short = format!("{} holds fewer bytes than its parts", path.display());
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, short));
        }
    }
    Ok(())
}

/// Opens for appending the file in `dir` that the part after `staged` goes into: the last
/// part's staging file, locked, if a chunk may be appended to it, else a new one holding a
/// copy of the staged bytes. Returns the file, its key, and whether it is new.
fn open_staging(dir: &Path, staged: &[UploadPart]) -> io::Result<(std::fs::File, String, bool)> {
    let end = staged_end(staged);
    if let Some(last) = staged.last().filter(|p| p.key.ends_with(STAGING_SUFFIX)) {
        let file = OpenOptions::new().append(true).open(dir.join(&last.key))?;
        if appendable(&file, end)? {
            return Ok((file, last.key.clone(), false));
        }
    }
    let key = format!("{}{STAGING_SUFFIX}", uuid::Uuid::new_v4());
    let path = dir.join(&key);
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)?;
    // No lock needed: no one else learns of this file before its part is recorded, after
    // this writer is done with it.
    if let Err(e) = copy_sources(&sources(dir, staged), &mut file) {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok((file, key, true))
}

/// Whether a chunk may be appended to `file`, the staging file of parts that end at `end`: only
/// once this writer holds its lock (no one else is appending), only if it ends where the parts
/// do (it holds nothing unrecorded), and only if it is not also a blob (hard-linked). On a
/// filesystem without locks, never.
fn appendable(file: &std::fs::File, end: u64) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(false),
        Err(std::fs::TryLockError::Error(e)) => {
            tracing::debug!(error = %e, "cannot lock a staging file; starting a new one");
            return Ok(false);
        }
    }
    let meta = file.metadata()?;
    Ok(meta.len() == end && meta.nlink() == 1)
}

/// Puts the bytes of `sources` in place as the blob at `blob`: a hard link to the staging file
/// when it holds exactly them and no one is appending to it, else a copy into `temp`, renamed.
/// A blob already there (a concurrent commit of the same content) counts as done.
fn place(sources: &[(PathBuf, u64)], temp: &Path, blob: &Path) -> io::Result<()> {
    if let [(path, len)] = sources {
        let file = std::fs::File::open(path)?;
        // The lock is held until the link is made; a writer that takes it later sees the
        // second link and leaves the file alone.
        if file.try_lock().is_ok() && file.metadata()?.len() == *len {
            match std::fs::hard_link(path, blob) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
                Err(e) => tracing::debug!(error = %e, "cannot hard-link a staged file; copying it"),
            }
        }
    }
    let copied = std::fs::File::create(temp).and_then(|mut out| {
        copy_sources(sources, &mut out)?;
        out.sync_all()?;
        std::fs::rename(temp, blob)
    });
    if copied.is_err() {
        let _ = std::fs::remove_file(temp);
    }
    copied
}

/// Appends `body` to `file`, which ends at `start`, and makes it durable. A blocking thread
/// writes each chunk straight from the body's buffer while the next ones arrive, and every
/// [`WRITEBACK_EVERY`] bytes it has another thread sync what is written so far, so that the
/// disk works alongside the network and the final sync waits only for the tail. If the body
/// fails or is abandoned, the file is cut back to `start`.
async fn write_stream(
    file: std::fs::File,
    start: u64,
    mut body: ByteStream,
) -> Result<u64, StorageError> {
    // `None` marks the end of a whole body; without it the writer undoes what it wrote.
    let (chunks, queued) = tokio::sync::mpsc::channel::<Option<Bytes>>(WRITE_QUEUE);
    let writer = tokio::task::spawn_blocking(move || write_chunks(file, start, queued));
    let mut received = Ok(0u64);
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => {
                received = received.map(|n| n + chunk.len() as u64);
                // The writer stops on an error, which it reports when joined.
                if chunks.send(Some(chunk)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                received = Err(StorageError::Body(e));
                break;
            }
        }
    }
    if received.is_ok() {
        let _ = chunks.send(None).await;
    }
    drop(chunks);
    let written = writer.await.map_err(io::Error::other)?;
    // A body error explains why the writer stopped early.
    let received = received?;
    let written = written?;
    debug_assert_eq!(written, received);
    Ok(written)
}

/// How many chunks may wait for the writer thread. hyper hands over at most ~400 KB at a time,
/// so this bounds an upload's buffered bytes to a few MiB, whatever its size.
const WRITE_QUEUE: usize = 16;

/// How many written bytes start a background sync: small enough that the final sync of an
/// 8 MiB chunk waits for only its last few MiB (chunked pushes in 8 MiB PATCHes went from
/// about 650 to 840 MB/s when this was cut from 32 MiB; 1 GiB bodies were unchanged).
const WRITEBACK_EVERY: u64 = 4 * 1024 * 1024;

fn write_chunks(
    mut file: std::fs::File,
    start: u64,
    mut queued: tokio::sync::mpsc::Receiver<Option<Bytes>>,
) -> io::Result<u64> {
    let written = append_chunks(&mut file, &mut queued);
    if written.is_err() {
        // As this writer found it, so that the next one may append.
        let _ = file.set_len(start);
    }
    written
}

fn append_chunks(
    file: &mut std::fs::File,
    queued: &mut tokio::sync::mpsc::Receiver<Option<Bytes>>,
) -> io::Result<u64> {
    use std::io::Write;
    let mut written = 0u64;
    let mut unsynced = 0u64;
    let mut syncing: Option<std::thread::JoinHandle<io::Result<()>>> = None;
    loop {
        let chunk = match queued.blocking_recv() {
            Some(Some(chunk)) => chunk,
            Some(None) => break,
            None => return Err(io::Error::other("the body ended early")),
        };
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
    // Blobs here are always stored under their digest (`commit` links the staging file
    // there), so a location's key is never set.
    async fn stat(&self, blob: BlobLocation<'_>) -> Result<Option<u64>, StorageError> {
        match fs::metadata(self.blob_path(blob.digest)).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn get(
        &self,
        blob: BlobLocation<'_>,
        range: Option<(u64, u64)>,
    ) -> Result<ByteStream, StorageError> {
        let mut file = match File::open(self.blob_path(blob.digest)).await {
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

    async fn redirect_url(&self, _blob: BlobLocation<'_>) -> Result<Option<String>, StorageError> {
        Ok(None)
    }

    async fn delete(&self, blob: BlobLocation<'_>) -> Result<(), StorageError> {
        match fs::remove_file(self.blob_path(blob.digest)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn write_part(
        &self,
        upload: &str,
        staged: &[UploadPart],
        body: ByteStream,
    ) -> Result<UploadPart, StorageError> {
        let dir = self.upload_dir(upload);
        fs::create_dir_all(&dir).await?;
        let (file, key, new) = {
            let (dir, staged) = (dir.clone(), staged.to_vec());
            tokio::task::spawn_blocking(move || open_staging(&dir, &staged))
                .await
                .map_err(io::Error::other)??
        };
        let offset = staged_end(staged);
        match write_stream(file, offset, body).await {
            Ok(size) => Ok(UploadPart { offset, size, key }),
            Err(e) => {
                if new {
                    let _ = fs::remove_file(dir.join(&key)).await;
                }
                Err(e)
            }
        }
    }

    async fn read_parts(
        &self,
        upload: &str,
        parts: &[UploadPart],
    ) -> Result<ByteStream, StorageError> {
        let sources = sources(&self.upload_dir(upload), parts);
        let stream = futures::stream::iter(sources)
            .then(
                |(path, len)| async move { Ok::<_, io::Error>(File::open(path).await?.take(len)) },
            )
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
    ) -> Result<Option<String>, StorageError> {
        if self.stat(BlobLocation::of(digest)).await?.is_some() {
            return Ok(None);
        }
        let blob = self.blob_path(digest);
        fs::create_dir_all(blob.parent().expect("blob paths have a parent")).await?;
        let sources = sources(&self.upload_dir(upload), parts);
        let temp = self.temp_path();
        tokio::task::spawn_blocking(move || place(&sources, &temp, &blob))
            .await
            .map_err(io::Error::other)??;
        self.sync_blob_dir(digest).await?;
        Ok(None)
    }

    async fn delete_upload(&self, upload: &str, _keep: Option<&str>) -> Result<(), StorageError> {
        match fs::remove_dir_all(self.upload_dir(upload)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn kept_objects(&self, _upload: &str) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
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

    async fn list_kept(
        &self,
        _after: Option<&str>,
        _limit: u32,
    ) -> Result<Vec<KeptObject>, StorageError> {
        Ok(Vec::new())
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
        let part = store.write_part("upload", &[], body).await.unwrap();
        let digest = Digest::sha256(data);
        store.commit("upload", &[part], &digest).await.unwrap();
        digest
    }

    fn bytes(data: &'static [u8]) -> ByteStream {
        Box::pin(futures::stream::iter([Ok(Bytes::from_static(data))]))
    }

    async fn read(store: &FsBlobStore, digest: &Digest) -> Vec<u8> {
        fs::read(store.blob_path(digest)).await.unwrap()
    }

    /// Finishing a chunked upload moves no bytes: the chunks land in one staging file, which
    /// becomes the blob by a hard link.
    #[tokio::test]
    async fn chunks_go_into_one_file_that_becomes_the_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let mut parts = Vec::new();
        for chunk in [&b"one "[..], b"two ", b"three"] {
            // A chunk whose body fails first leaves the file as it found it.
            let failing = futures::stream::iter([
                Ok(Bytes::from_static(b"lost")),
                Err(io::Error::other("client went away")),
            ]);
            let failed = store.write_part("upload", &parts, Box::pin(failing)).await;
            assert!(matches!(failed, Err(StorageError::Body(_))), "{failed:?}");
            parts.push(
                store
                    .write_part("upload", &parts, bytes(chunk))
                    .await
                    .unwrap(),
            );
        }
        assert!(
            parts.iter().all(|part| part.key == parts[0].key),
            "{parts:?}"
        );
        let digest = Digest::sha256(b"one two three");
        store.commit("upload", &parts, &digest).await.unwrap();
        let staged = std::fs::metadata(store.upload_dir("upload").join(&parts[0].key)).unwrap();
        let blob = std::fs::metadata(store.blob_path(&digest)).unwrap();
        assert_eq!((blob.ino(), blob.nlink()), (staged.ino(), 2));
    }

    /// An upload staged by an earlier release, one file per part, continues and commits.
    #[tokio::test]
    async fn uploads_staged_one_file_per_part_still_finish() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let staging = store.upload_dir("earlier");
        fs::create_dir_all(&staging).await.unwrap();
        let mut parts = Vec::new();
        for (offset, data) in [(0, "ab"), (2, "cd")] {
            let key = format!("{offset:020}-{}", uuid::Uuid::new_v4());
            fs::write(staging.join(&key), data).await.unwrap();
            parts.push(UploadPart {
                offset,
                size: 2,
                key,
            });
        }
        let earlier = Digest::sha256(b"abcd");
        store.commit("earlier", &parts, &earlier).await.unwrap();
        assert_eq!(read(&store, &earlier).await, b"abcd");

        parts.push(
            store
                .write_part("earlier", &parts, bytes(b"ef"))
                .await
                .unwrap(),
        );
        let continued = Digest::sha256(b"abcdef");
        store.commit("earlier", &parts, &continued).await.unwrap();
        assert_eq!(read(&store, &continued).await, b"abcdef");
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
        store.write_part("staged", &[], staged).await.unwrap();

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
