//! The final contents of the few files a scan reads (os-release and the dpkg, apk and rpm
//! databases), taken from an image's layers as they compose: a later layer replaces what an
//! earlier one put at a path, OCI/Docker whiteouts remove it, symlinks and hard links are
//! followed. Layers are gzip, zstd or plain tar, each read as a stream from start to end; only
//! the wanted files are ever held in memory. Depends on `storage` for its byte-stream type only.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use flate2::bufread::MultiGzDecoder;
use futures::StreamExt;
use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::storage::ByteStream;

/// The paths (from the image root) a scan reads, besides every file directly in [`STATUS_D`].
pub const WANTED: &[&str] = &[
    "etc/os-release",
    "usr/lib/os-release",
    "var/lib/dpkg/status",
    "lib/apk/db/installed",
    "var/lib/rpm/rpmdb.sqlite",
    // Fedora 36 and later keep the rpmdb here, `var/lib/rpm` being a symlink to its directory.
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
];

/// Distroless images' dpkg database: one file per package.
pub const STATUS_D: &str = "var/lib/dpkg/status.d";

/// No file kept may be larger: an rpmdb, the largest, is tens of MiB.
pub const MAX_FILE_SIZE: u64 = 256 << 20;

/// Symlinks followed while resolving one path; more means a loop.
const MAX_SYMLINKS: usize = 16;

/// What is read from the blob store at a time, and what a layer's decoding buffers.
const READ_BUFFER: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The blob store failed while the layer was read; `layer` counts the manifest's
    /// `layers` from 0.
    #[error("layer {layer}: reading its blob failed: {source}")]
    Blob { layer: usize, source: io::Error },
    #[error("layer {layer} is not a valid {format} tar archive (corrupt or truncated): {source}")]
    Corrupt {
        layer: usize,
        format: Format,
        source: io::Error,
    },
    #[error(
        "layer {layer}: {path} is over {MAX_FILE_SIZE} bytes, larger than any package database; \
         the image cannot be scanned"
    )]
    TooLarge { layer: usize, path: String },
}

/// How a layer's tar is stored, told by its first bytes rather than by the media type, which
/// pushers do not always get right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Gzip,
    Zstd,
    Tar,
}

impl Format {
    fn sniff(head: &[u8]) -> Format {
        match head {
            [0x1f, 0x8b, ..] => Format::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Format::Zstd,
            // A skippable frame, as pzstd writes first.
            [0x50..=0x5f, 0x2a, 0x4d, 0x18, ..] => Format::Zstd,
            _ => Format::Tar,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Gzip => "gzip-compressed",
            Format::Zstd => "zstd-compressed",
            Format::Tar => "uncompressed",
        })
    }
}

/// The wanted files of an image's final filesystem, by path from the root without a leading
/// `/` (`etc/os-release`), symlinks resolved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Files {
    files: BTreeMap<String, Bytes>,
}

impl Files {
    /// The contents of `path`, one of [`WANTED`] or a file directly in [`STATUS_D`].
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(|bytes| &bytes[..])
    }

    /// `etc/os-release`, else `usr/lib/os-release`, as os-release(5) says to look.
    pub fn os_release(&self) -> Option<&[u8]> {
        self.get("etc/os-release")
            .or_else(|| self.get("usr/lib/os-release"))
    }

    /// The files directly in [`STATUS_D`], by name in name order. Distroless images keep a
    /// `<package>.md5sums` beside some; they are listed too, the parser finds no package in them.
    pub fn status_d(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().filter_map(|(path, bytes)| {
            let name = path.strip_prefix(STATUS_D)?.strip_prefix('/')?;
            Some((name, &bytes[..]))
        })
    }
}

/// Reads `layers`, in manifest order, one after another, and returns the wanted files as the
/// last layer leaves them.
pub async fn read_files(layers: Vec<ByteStream>) -> Result<Files, LayerError> {
    let mut tree = Tree::new();
    for (layer, stream) in layers.into_iter().enumerate() {
        // Decoders wrap or replace the errors of what they read: keep the blob store's own,
        // to tell "storage failed" from "corrupt layer".
        let blob_error = Arc::new(OnceLock::new());
        let seen = blob_error.clone();
        let stream = stream.map(move |item| {
            item.map_err(|error| {
                let copy = io::Error::new(error.kind(), error.to_string());
                let _ = seen.set(error);
                copy
            })
        });
        let source = SyncIoBridge::new(StreamReader::new(stream));
        // tar and the decoders read synchronously: off the async workers, one buffer at a time.
        let (returned, result) = tokio::task::spawn_blocking(move || {
            let result = apply_layer(&mut tree, source, layer);
            (tree, result)
        })
        .await
        .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));
        tree = returned;
        result.map_err(|error| {
            match Arc::into_inner(blob_error).and_then(OnceLock::into_inner) {
                Some(source) => LayerError::Blob { layer, source },
                None => error,
            }
        })?;
    }
    Ok(Files::of(&tree))
}

/// What is kept of the filesystem: the wanted files and the symlinks that may lead to them.
/// Directories are implied by the paths under them.
#[derive(Debug, Clone)]
enum Node {
    File(Bytes),
    Symlink(String),
}

type Tree = BTreeMap<String, Node>;

/// Reads one layer and applies it to `tree`, the layers below it.
fn apply_layer(tree: &mut Tree, mut source: impl Read, layer: usize) -> Result<(), LayerError> {
    // Enough bytes for the magic numbers, however the stream splits them.
    let mut head = Vec::with_capacity(4);
    (&mut source)
        .take(4)
        .read_to_end(&mut head)
        .map_err(|source| LayerError::Corrupt {
            layer,
            format: Format::Tar,
            source,
        })?;
    let format = Format::sniff(&head);
    let source = BufReader::with_capacity(READ_BUFFER, io::Cursor::new(head).chain(source));
    let decoded: Box<dyn Read> = match format {
        // Several gzip members one after another are one stream (pigz and others write them).
        Format::Gzip => Box::new(MultiGzDecoder::new(source)),
        Format::Zstd => Box::new(ZstdFrames::new(source)),
        Format::Tar => Box::new(source),
    };
    read_tar(tree, decoded, layer, format)
}

fn read_tar(
    tree: &mut Tree,
    source: impl Read,
    layer: usize,
    format: Format,
) -> Result<(), LayerError> {
    let corrupt = |source| LayerError::Corrupt {
        layer,
        format,
        source,
    };
    let mut archive = tar::Archive::new(source);
    // This layer's own entries: its whiteouts hide only what the layers below put there.
    let mut upper = Tree::new();
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            continue;
        }
        let Some(path) = normalize(&entry.path_bytes()) else {
            continue;
        };
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", &path));
        if name == ".wh..wh..opq" {
            remove_under(tree, parent);
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            // Other `.wh..wh.` names are aufs bookkeeping, not whiteouts.
            if !hidden.starts_with(".wh.") {
                remove_path(tree, &join(parent, hidden));
            }
            continue;
        }
        if kind.is_dir() {
            // A directory merges with the one below, but replaces a file or symlink.
            tree.remove(&path);
            upper.remove(&path);
            continue;
        }
        remove_path(tree, &path);
        remove_path(&mut upper, &path);
        let node = if kind.is_file() || kind.is_contiguous() {
            if is_wanted(&path) {
                let too_large = || LayerError::TooLarge {
                    layer,
                    path: path.clone(),
                };
                if entry.size() > MAX_FILE_SIZE {
                    return Err(too_large());
                }
                let mut data = Vec::new();
                (&mut entry)
                    .take(MAX_FILE_SIZE + 1)
                    .read_to_end(&mut data)
                    .map_err(corrupt)?;
                if data.len() as u64 > MAX_FILE_SIZE {
                    return Err(too_large());
                }
                Some(Node::File(data.into()))
            } else {
                None
            }
        } else if kind.is_symlink() && leads_to_wanted(&path) {
            entry
                .link_name_bytes()
                .map(|target| Node::Symlink(String::from_utf8_lossy(&target).into_owned()))
        } else if kind.is_hard_link() && is_wanted(&path) {
            // The target is an earlier entry of this layer or a file of a layer below; if it is
            // not a wanted path it was not kept, and neither is the link (package databases are
            // not hard links to other files).
            entry
                .link_name_bytes()
                .and_then(|target| normalize(&target))
                .and_then(|target| upper.get(&target).or_else(|| tree.get(&target)))
                .filter(|node| matches!(node, Node::File(_)))
                .cloned()
        } else {
            None
        };
        if let Some(node) = node {
            upper.insert(path, node);
        }
    }
    // Read to the very end, so that a compressed stream's checksum and length are checked and
    // a layer cut short after its tar's end is an error too.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(corrupt)?;
    tree.extend(upper);
    Ok(())
}

/// A tar path as a key: relative to the root, no `.` or empty components, no trailing `/`;
/// `None` for the root itself.
fn normalize(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

fn is_wanted(path: &str) -> bool {
    WANTED.contains(&path)
        || path
            .strip_prefix(STATUS_D)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|name| !name.contains('/'))
}

/// Whether a symlink at `path` is worth keeping: it is a wanted path or a directory on the way
/// to one.
fn leads_to_wanted(path: &str) -> bool {
    is_wanted(path)
        || WANTED.iter().chain([&STATUS_D]).any(|wanted| {
            wanted == &path
                || wanted
                    .strip_prefix(path)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
}

/// Removes `path` and everything under it.
fn remove_path(tree: &mut Tree, path: &str) {
    tree.remove(path);
    remove_under(tree, path);
}

/// Removes everything under the directory `dir` ("" being the root).
fn remove_under(tree: &mut Tree, dir: &str) {
    if dir.is_empty() {
        tree.clear();
    } else {
        let prefix = format!("{dir}/");
        tree.retain(|path, _| !path.starts_with(&prefix));
    }
}

/// The file `path` leads to, following symlinks (relative to their directory, or from the
/// root when absolute) at every component.
fn resolve<'t>(tree: &'t Tree, path: &str) -> Option<&'t Bytes> {
    // Components still to walk, the next one last.
    let mut todo: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
    let mut at: Vec<String> = Vec::new();
    let mut followed = 0;
    while let Some(part) = todo.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                at.pop();
                continue;
            }
            _ => at.push(part),
        }
        match tree.get(&at.join("/")) {
            None => {}
            Some(Node::File(bytes)) => return todo.is_empty().then_some(bytes),
            Some(Node::Symlink(target)) => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return None;
                }
                at.pop();
                if target.starts_with('/') {
                    at.clear();
                }
                todo.extend(target.split('/').rev().map(str::to_owned));
            }
        }
    }
    None
}

impl Files {
    fn of(tree: &Tree) -> Files {
        let status_d = tree
            .keys()
            .filter(|path| is_wanted(path) && path.starts_with(STATUS_D))
            .map(String::as_str);
        let files = WANTED
            .iter()
            .copied()
            .chain(status_d)
            .filter_map(|path| Some((path.to_owned(), resolve(tree, path)?.clone())))
            .collect();
        Files { files }
    }
}

/// Decodes every frame of a zstd stream in turn (ruzstd's `StreamingDecoder` stops after the
/// first), skips skippable frames, and checks each frame's checksum when it has one.
struct ZstdFrames<R> {
    source: R,
    decoder: FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(source: R) -> Self {
        ZstdFrames {
            source,
            decoder: FrameDecoder::new(),
            in_frame: false,
        }
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let invalid = |error| io::Error::new(io::ErrorKind::InvalidData, error);
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.in_frame {
                while self.decoder.can_collect() == 0 && !self.decoder.is_finished() {
                    self.decoder
                        .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                        .map_err(invalid)?;
                }
                let read = self.decoder.read(buf)?;
                if read > 0 {
                    return Ok(read);
                }
                self.in_frame = false;
                if let Some(expected) = self.decoder.get_checksum_from_data()
                    && self.decoder.get_calculated_checksum() != Some(expected)
                {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "zstd frame checksum mismatch",
                    ));
                }
            }
            if self.source.fill_buf()?.is_empty() {
                return Ok(0);
            }
            match self.decoder.reset(&mut self.source) {
                Ok(()) => self.in_frame = true,
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let length = u64::from(length);
                    let skipped = io::copy(&mut (&mut self.source).take(length), &mut io::sink())?;
                    if skipped < length {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                Err(error) => return Err(invalid(error)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use futures::stream;

    use super::*;

    /// One tar entry, its path written into the header byte for byte (the tar crate's own
    /// setters would drop a leading `./` or refuse a `/`).
    enum E {
        File(&'static str, &'static str),
        Dir(&'static str),
        Symlink(&'static str, &'static str),
        HardLink(&'static str, &'static str),
    }

    fn header(path: &str, kind: tar::EntryType, size: u64, link: &str) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        header
    }

    fn tar(entries: &[E]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for entry in entries {
            let (header, data) = match *entry {
                E::File(path, data) => (
                    header(path, tar::EntryType::Regular, data.len() as u64, ""),
                    data,
                ),
                E::Dir(path) => (header(path, tar::EntryType::Directory, 0, ""), ""),
                E::Symlink(path, target) => (header(path, tar::EntryType::Symlink, 0, target), ""),
                E::HardLink(path, target) => (header(path, tar::EntryType::Link, 0, target), ""),
            };
            builder.append(&header, data.as_bytes()).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn zstd(bytes: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
    }

    /// The bytes as a blob stream, in uneven chunks (the first a single byte) to show that no
    /// boundary matters.
    fn blob(bytes: Vec<u8>) -> ByteStream {
        let bytes = Bytes::from(bytes);
        let mut chunks = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let end = (at + if at == 0 { 1 } else { 777 }).min(bytes.len());
            chunks.push(Ok(bytes.slice(at..end)));
            at = end;
        }
        Box::pin(stream::iter(chunks))
    }

    async fn read(layers: Vec<Vec<u8>>) -> Result<Files, LayerError> {
        read_files(layers.into_iter().map(blob).collect()).await
    }

    /// Everything `read_files` returned, as text, to compare whole.
    fn contents(files: &Files) -> Vec<(&str, &str)> {
        files
            .files
            .iter()
            .map(|(path, bytes)| (path.as_str(), std::str::from_utf8(bytes).unwrap()))
            .collect()
    }

    #[tokio::test]
    async fn later_layers_replace_files() {
        let files = read(vec![
            gzip(&tar(&[
                E::File("var/lib/dpkg/status", "old"),
                E::File("usr/lib/os-release", "ID=debian"),
            ])),
            gzip(&tar(&[E::File("var/lib/dpkg/status", "new")])),
        ])
        .await
        .unwrap();
        assert_eq!(
            contents(&files),
            [
                ("usr/lib/os-release", "ID=debian"),
                ("var/lib/dpkg/status", "new")
            ]
        );
        assert_eq!(files.os_release(), Some(&b"ID=debian"[..]));
    }

    #[tokio::test]
    async fn whiteouts_remove_a_file_and_a_directory() {
        let files = read(vec![
            tar(&[
                E::File("var/lib/dpkg/status", "dpkg"),
                E::File("var/lib/dpkg/status.d/libc6", "libc6"),
                E::File("lib/apk/db/installed", "apk"),
                E::File("usr/lib/os-release", "ID=x"),
            ]),
            tar(&[
                E::File("var/lib/dpkg/.wh.status", ""),
                E::File("var/lib/dpkg/.wh.status.d", ""),
                E::File("lib/.wh.apk", ""),
            ]),
        ])
        .await
        .unwrap();
        assert_eq!(contents(&files), [("usr/lib/os-release", "ID=x")]);
    }

    #[tokio::test]
    async fn opaque_whiteout_hides_what_is_below_not_what_its_layer_adds() {
        let files = read(vec![
            tar(&[
                E::File("var/lib/dpkg/status", "dpkg"),
                E::File("var/lib/dpkg/status.d/a", "a"),
                E::File("etc/os-release", "ID=x"),
            ]),
            tar(&[
                E::File("var/lib/dpkg/status.d/b", "b"),
                E::Dir("var/lib/dpkg/"),
                E::File("var/lib/dpkg/.wh..wh..opq", ""),
            ]),
        ])
        .await
        .unwrap();
        assert_eq!(
            contents(&files),
            [("etc/os-release", "ID=x"), ("var/lib/dpkg/status.d/b", "b")]
        );
        assert_eq!(files.status_d().collect::<Vec<_>>(), [("b", &b"b"[..])]);
    }

    #[tokio::test]
    async fn a_later_layer_adds_back_what_a_whiteout_removed() {
        let files = read(vec![
            tar(&[E::File("var/lib/dpkg/status", "first")]),
            tar(&[E::File("var/lib/dpkg/.wh.status", "")]),
            tar(&[E::File("var/lib/dpkg/status", "again")]),
            // Whiteout and file in one layer: the whiteout hides only the layers below.
            tar(&[
                E::File("lib/apk/db/installed", "kept"),
                E::File("lib/apk/db/.wh.installed", ""),
            ]),
        ])
        .await
        .unwrap();
        assert_eq!(
            contents(&files),
            [
                ("lib/apk/db/installed", "kept"),
                ("var/lib/dpkg/status", "again")
            ]
        );
    }

    #[tokio::test]
    async fn a_directory_or_another_file_replacing_a_wanted_path_removes_it() {
        let files = read(vec![
            tar(&[
                E::File("var/lib/dpkg/status", "dpkg"),
                E::File("var/lib/dpkg/status.d/a", "a"),
                E::File("lib/apk/db/installed", "apk"),
            ]),
            tar(&[
                E::Dir("var/lib/dpkg/status/"),
                E::File("var/lib/dpkg/status.d", "not a directory now"),
                E::Symlink("lib/apk", "/nowhere"),
            ]),
        ])
        .await
        .unwrap();
        assert_eq!(contents(&files), []);
    }

    #[tokio::test]
    async fn os_release_symlinks_resolve_against_the_final_filesystem() {
        let relative = read(vec![
            tar(&[
                E::File("usr/lib/os-release", "ID=old"),
                E::Symlink("etc/os-release", "../usr/lib/os-release"),
            ]),
            tar(&[E::File("usr/lib/os-release", "ID=new")]),
        ])
        .await
        .unwrap();
        assert_eq!(
            contents(&relative),
            [
                ("etc/os-release", "ID=new"),
                ("usr/lib/os-release", "ID=new")
            ]
        );

        let absolute = read(vec![tar(&[
            E::Symlink("etc/os-release", "/usr/lib/os-release"),
            E::File("usr/lib/os-release", "ID=abs"),
        ])])
        .await
        .unwrap();
        assert_eq!(absolute.get("etc/os-release"), Some(&b"ID=abs"[..]));
        assert_eq!(absolute.os_release(), Some(&b"ID=abs"[..]));
    }

    #[tokio::test]
    async fn symlinked_directories_are_followed_and_loops_end() {
        let files = read(vec![tar(&[
            // Fedora's layout.
            E::File("usr/lib/sysimage/rpm/rpmdb.sqlite", "sqlite"),
            E::Symlink("var/lib/rpm", "../../usr/lib/sysimage/rpm"),
            // A loop, and a link to a file that is not there.
            E::Symlink("etc/os-release", "../usr/lib/os-release"),
            E::Symlink("usr/lib/os-release", "/etc/os-release"),
            E::Symlink("var/lib/dpkg/status", "status-old"),
        ])])
        .await
        .unwrap();
        assert_eq!(
            contents(&files),
            [
                ("usr/lib/sysimage/rpm/rpmdb.sqlite", "sqlite"),
                ("var/lib/rpm/rpmdb.sqlite", "sqlite")
            ]
        );
    }

    #[tokio::test]
    async fn hard_links_take_their_targets_contents() {
        let files = read(vec![
            tar(&[E::File("./etc/os-release", "ID=linked")]),
            tar(&[
                E::File("var/lib/dpkg/status.d/a", "a"),
                E::HardLink("var/lib/dpkg/status.d/b", "./var/lib/dpkg/status.d/a"),
                // The target from a layer below.
                E::HardLink("usr/lib/os-release", "etc/os-release"),
            ]),
        ])
        .await
        .unwrap();
        assert_eq!(
            contents(&files),
            [
                ("etc/os-release", "ID=linked"),
                ("usr/lib/os-release", "ID=linked"),
                ("var/lib/dpkg/status.d/a", "a"),
                ("var/lib/dpkg/status.d/b", "a")
            ]
        );
    }

    #[tokio::test]
    async fn dot_slash_and_absolute_paths_are_the_same_paths() {
        let files = read(vec![
            tar(&[
                E::Dir("./"),
                E::Dir("./var/lib/dpkg/"),
                E::File("./var/lib/dpkg/status", "dot"),
                E::File("/lib/apk/db/installed", "slash"),
                E::File("./etc/os-release", "ID=x"),
            ]),
            tar(&[E::File("./etc/.wh.os-release", "")]),
        ])
        .await
        .unwrap();
        assert_eq!(
            contents(&files),
            [
                ("lib/apk/db/installed", "slash"),
                ("var/lib/dpkg/status", "dot")
            ]
        );
    }

    #[tokio::test]
    async fn status_d_keeps_the_files_directly_in_it() {
        let files = read(vec![tar(&[
            E::Dir("var/lib/dpkg/status.d/"),
            E::File("var/lib/dpkg/status.d/base-files", "Package: base-files"),
            E::File("var/lib/dpkg/status.d/libc6", "Package: libc6"),
            E::File("var/lib/dpkg/status.d/libc6.md5sums", "0123  lib/libc.so.6"),
            E::File("var/lib/dpkg/status.d/deeper/x", "no"),
        ])])
        .await
        .unwrap();
        assert_eq!(
            files.status_d().collect::<Vec<_>>(),
            [
                ("base-files", &b"Package: base-files"[..]),
                ("libc6", &b"Package: libc6"[..]),
                ("libc6.md5sums", &b"0123  lib/libc.so.6"[..])
            ]
        );
        assert_eq!(files.files.len(), 3);
    }

    #[tokio::test]
    async fn other_paths_are_not_kept() {
        let files = read(vec![tar(&[
            E::File("usr/bin/ls", "ELF"),
            E::File("etc/passwd", "root:x:0:0"),
            E::File("var/lib/dpkg/status-old", "old"),
            E::File("var/lib/dpkg/info/libc6.list", "/lib"),
            E::File("etc/os-release.bak", "ID=no"),
            E::File("lib/apk/db/installed", "apk"),
        ])])
        .await
        .unwrap();
        assert_eq!(contents(&files), [("lib/apk/db/installed", "apk")]);
    }

    #[tokio::test]
    async fn gzip_zstd_and_plain_layers_are_read() {
        let layer = |text| tar(&[E::File("var/lib/dpkg/status", text)]);
        for (compressed, expect) in [
            (layer("plain"), "plain"),
            (gzip(&layer("gzip")), "gzip"),
            (zstd(&layer("zstd")), "zstd"),
            // Two gzip members, as pigz writes.
            (
                {
                    let whole = layer("members");
                    let mut two = gzip(&whole[..1000]);
                    two.extend(gzip(&whole[1000..]));
                    two
                },
                "members",
            ),
        ] {
            let files = read(vec![compressed]).await.unwrap();
            assert_eq!(contents(&files), [("var/lib/dpkg/status", expect)]);
        }
    }

    /// `zstd -19` (v1.5.4) of the two halves of a tar of `./etc/os-release` (a symlink to
    /// `../usr/lib/os-release`), `./usr/lib/os-release` and `./var/lib/dpkg/status`, the two
    /// frames concatenated; each frame carries its checksum.
    const ZSTD_CLI_TWO_FRAMES: &[u8] = &[
        0x28, 0xb5, 0x2f, 0xfd, 0x64, 0x00, 0x05, 0x55, 0x04, 0x00, 0x82, 0x86, 0x16, 0x18, 0x50,
        0xaf, 0x0e, 0x4b, 0x52, 0x9b, 0x10, 0x0e, 0x0a, 0x43, 0x19, 0x54, 0xb9, 0xc0, 0xb1, 0x96,
        0x96, 0x25, 0xe1, 0xae, 0x1a, 0x1b, 0x7a, 0x0a, 0x07, 0x82, 0x76, 0x41, 0x83, 0x24, 0xc7,
        0xa2, 0x18, 0x0c, 0x30, 0xcd, 0xc8, 0xa1, 0x10, 0x51, 0x1c, 0xbc, 0x1e, 0x5f, 0xbf, 0x7e,
        0x10, 0xc6, 0x53, 0xb5, 0xda, 0xaf, 0x65, 0x27, 0x75, 0x2b, 0x27, 0x92, 0x9a, 0xbd, 0x55,
        0x63, 0xac, 0xd7, 0xd9, 0x75, 0x74, 0x7c, 0xe6, 0x66, 0x86, 0x10, 0x0e, 0xd0, 0x9d, 0x2f,
        0xa5, 0xe4, 0xd3, 0x3b, 0xa9, 0x44, 0xad, 0x70, 0x6b, 0x7b, 0x28, 0xda, 0x58, 0x11, 0x00,
        0xe2, 0x38, 0xb5, 0xa8, 0x09, 0xc4, 0x12, 0x50, 0xad, 0xfb, 0x19, 0xd0, 0x61, 0x60, 0x67,
        0x80, 0x60, 0xf0, 0x65, 0x6b, 0x82, 0x27, 0xa0, 0x30, 0xd4, 0x00, 0x38, 0xfb, 0xe3, 0x4a,
        0x6f, 0x3e, 0x18, 0xc0, 0x95, 0x00, 0x60, 0x0a, 0x00, 0x16, 0x26, 0x00, 0x06, 0x47, 0x6b,
        0x71, 0xd1, 0x28, 0xb5, 0x2f, 0xfd, 0x64, 0x00, 0x21, 0x5d, 0x04, 0x00, 0xf2, 0x47, 0x1a,
        0x19, 0x80, 0xcd, 0x03, 0xd0, 0xc0, 0x7a, 0xc1, 0xc6, 0xab, 0x05, 0x1a, 0x60, 0x48, 0xb4,
        0x87, 0x86, 0x20, 0x94, 0xec, 0x84, 0x0e, 0x7a, 0xc1, 0x4d, 0x01, 0xab, 0x94, 0x03, 0x8f,
        0x36, 0xcb, 0x12, 0x7c, 0x05, 0xcb, 0x9b, 0x73, 0x7b, 0x24, 0xa4, 0x93, 0x41, 0xd4, 0xc2,
        0x38, 0x92, 0x63, 0x74, 0x95, 0x3e, 0x90, 0xdb, 0xa1, 0x9e, 0x27, 0x30, 0x4e, 0xdc, 0x98,
        0xe7, 0x1c, 0xc5, 0x19, 0x5b, 0xa5, 0x9c, 0xcb, 0x3c, 0x5d, 0xa5, 0xd1, 0x36, 0xaf, 0x0b,
        0x2f, 0x78, 0x6f, 0x77, 0xd0, 0xfd, 0xff, 0xc3, 0xfb, 0x16, 0xed, 0xdd, 0xfb, 0x4f, 0xf4,
        0xd2, 0xa8, 0xba, 0x4a, 0xd9, 0x73, 0xa0, 0x85, 0x25, 0x30, 0xb2, 0xe9, 0x24, 0xb6, 0x02,
        0x0b, 0x00, 0xd6, 0xfe, 0xdb, 0x9d, 0xcb, 0x4b, 0x09, 0x08, 0x61, 0x9f, 0x80, 0xc2, 0x50,
        0x03, 0x00, 0xec, 0x3f, 0x70, 0xd3, 0x71, 0x91, 0x05, 0x83, 0x02, 0x80, 0x59, 0x14, 0x88,
        0x01, 0x76, 0x3b, 0x76, 0x84,
    ];

    #[tokio::test]
    async fn zstd_cli_output_with_several_frames_is_read() {
        let expected = [
            ("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"),
            ("usr/lib/os-release", "ID=debian\nVERSION_ID=\"12\"\n"),
            (
                "var/lib/dpkg/status",
                "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\n\n",
            ),
        ];
        let files = read(vec![ZSTD_CLI_TWO_FRAMES.to_vec()]).await.unwrap();
        assert_eq!(contents(&files), expected);

        // A skippable frame first, as pzstd writes.
        let mut skippable = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
        skippable.extend_from_slice(ZSTD_CLI_TWO_FRAMES);
        let files = read(vec![skippable]).await.unwrap();
        assert_eq!(contents(&files), expected);

        // A flipped bit inside the second frame's checksum.
        let mut damaged = ZSTD_CLI_TWO_FRAMES.to_vec();
        *damaged.last_mut().unwrap() ^= 1;
        let error = read(vec![damaged]).await.unwrap_err();
        assert!(matches!(
            error,
            LayerError::Corrupt {
                layer: 0,
                format: Format::Zstd,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn truncated_layers_are_errors() {
        let whole = tar(&[
            E::File("var/lib/dpkg/status", "Package: a\n"),
            E::File("usr/bin/big", "x"),
        ]);
        for (format, compressed) in [(Format::Gzip, gzip(&whole)), (Format::Zstd, zstd(&whole))] {
            for cut in [compressed.len() / 2, compressed.len() - 3] {
                let good = tar(&[E::File("etc/os-release", "ID=x")]);
                let error = read(vec![good, compressed[..cut].to_vec()])
                    .await
                    .unwrap_err();
                assert!(
                    matches!(error, LayerError::Corrupt { layer: 1, format: f, .. } if f == format),
                    "{format} cut at {cut}: {error}"
                );
            }
        }
        // Cut in the middle of a file's data.
        let error = read(vec![whole[..600].to_vec()]).await.unwrap_err();
        assert!(matches!(
            error,
            LayerError::Corrupt {
                format: Format::Tar,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_failing_blob_store_is_told_apart() {
        let start = Bytes::from(gzip(&tar(&[]))).slice(..10);
        let chunks = vec![Ok(start), Err(io::Error::other("disk on fire"))];
        let error = read_files(vec![Box::pin(stream::iter(chunks))])
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "layer 0: reading its blob failed: disk on fire"
        );
    }

    #[tokio::test]
    async fn an_oversized_wanted_file_is_refused() {
        // Only the header: the size alone is refused, before any data is read.
        let header = header(
            "var/lib/rpm/rpmdb.sqlite",
            tar::EntryType::Regular,
            MAX_FILE_SIZE + 1,
            "",
        );
        let error = read(vec![header.as_bytes().to_vec()]).await.unwrap_err();
        assert!(
            matches!(error, LayerError::TooLarge { layer: 0, ref path } if path == "var/lib/rpm/rpmdb.sqlite")
        );
    }

    /// 200 MiB in one file no scan wants, then a wanted one, generated chunk by chunk as the
    /// reader asks: nothing here or in `read_files` holds more than a chunk of it (the big
    /// file's data is read and dropped), so this passes the same with a layer of any size.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_layer_streams_through() {
        const CHUNK: usize = 1 << 20;
        const CHUNKS: usize = 200;
        static ZEROS: [u8; CHUNK] = [0; CHUNK];
        let big = header(
            "usr/share/big.bin",
            tar::EntryType::Regular,
            (CHUNK * CHUNKS) as u64,
            "",
        );
        let tail = tar(&[E::File("var/lib/dpkg/status", "after the big one")]);
        let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = pulled.clone();
        let parts = stream::iter(0..CHUNKS + 2).map(move |i| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(match i {
                0 => Bytes::copy_from_slice(big.as_bytes()),
                i if i <= CHUNKS => Bytes::from_static(&ZEROS),
                _ => Bytes::from(tail.clone()),
            })
        });
        let files = read_files(vec![Box::pin(parts)]).await.unwrap();
        assert_eq!(
            contents(&files),
            [("var/lib/dpkg/status", "after the big one")]
        );
        assert_eq!(
            pulled.load(std::sync::atomic::Ordering::Relaxed),
            CHUNKS + 2
        );
    }
}
