//! Images for the scanning tests, built layer by layer: tar layers (gzip or plain) with
//! os-release and package databases (dpkg, apk, an rpmdb with header blobs written here),
//! whiteouts and symlinks, pushed over `/v2`.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;
use sqlx::{ConnectOptions, Connection};

use crate::common::TestApp;

pub(super) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(super) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// One entry of a layer.
pub(super) enum Entry {
    File(&'static str, Vec<u8>),
    Symlink(&'static str, &'static str),
    /// `.wh.<name>` beside the path it removes.
    Whiteout(&'static str),
}

/// A layer as a tar archive, gzipped if `gzip`.
pub(super) fn layer(entries: &[Entry], gzip: bool) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        match entry {
            Entry::File(path, bytes) => {
                header.set_size(bytes.len() as u64);
                tar.append_data(&mut header, path, &bytes[..]).unwrap();
            }
            Entry::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                tar.append_link(&mut header, path, target).unwrap();
            }
            Entry::Whiteout(path) => {
                let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
                let whiteout = if dir.is_empty() {
                    format!(".wh.{name}")
                } else {
                    format!("{dir}/.wh.{name}")
                };
                header.set_size(0);
                tar.append_data(&mut header, whiteout, &[][..]).unwrap();
            }
        }
    }
    let archive = tar.into_inner().unwrap();
    if !gzip {
        return archive;
    }
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(&archive).unwrap();
    encoder.finish().unwrap()
}

/// A layer as a zstd-compressed tar archive.
pub(super) fn zstd_layer(entries: &[Entry]) -> Vec<u8> {
    let archive = layer(entries, false);
    ruzstd::encoding::compress_to_vec(&archive[..], ruzstd::encoding::CompressionLevel::Fastest)
}

pub(super) fn file(path: &'static str, text: &str) -> Entry {
    Entry::File(path, text.as_bytes().to_vec())
}

pub(super) fn os_release(id: &str, version_id: &str) -> Entry {
    file(
        "etc/os-release",
        &format!("NAME=\"Test\"\nID={id}\nVERSION_ID=\"{version_id}\"\n"),
    )
}

/// Pushes an image of `layers` (in order) as `repo:tag`; returns its digest.
pub(super) async fn push(app: &TestApp, repo: &str, tag: &str, layers: &[Vec<u8>]) -> String {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}"#;
    let config_digest = app.push_blob(repo, config).await;
    let mut descriptors = Vec::new();
    for layer in layers {
        let media_type = match layer[..4] {
            [0x1f, 0x8b, ..] => "application/vnd.oci.image.layer.v1.tar+gzip",
            [0x28, 0xb5, 0x2f, 0xfd] => "application/vnd.oci.image.layer.v1.tar+zstd",
            _ => "application/vnd.oci.image.layer.v1.tar",
        };
        let digest = app.push_blob(repo, layer).await;
        descriptors.push(json!({"mediaType": media_type, "digest": digest, "size": layer.len()}));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": descriptors,
    });
    let response = app.put_manifest(repo, tag, &manifest).await;
    assert_eq!(response.status(), 201, "push {repo}:{tag}");
    crate::common::header(&response, "docker-content-digest")
}

pub(super) const DEBIAN_STATUS: &str = "\
Package: libssl3
Status: install ok installed
Version: 3.0.11-1~deb12u1
Source: openssl

Package: openssl
Status: install ok installed
Version: 3.0.11-1

Package: zlib1g
Status: install ok installed
Version: 1:1.2.13.dfsg-1
Source: zlib

Package: tzdata
Status: install ok installed
Version: 2024a-0+deb12u1

Package: libtasn1-6
Status: install ok installed
Version: 4.19.0-2

Package: curl
Status: install ok installed
Version: 7.88.1-10+deb12u5

Package: bash
Status: deinstall ok config-files
Version: 5.2.15-2

Package: helper
Status: install ok installed
Version: 1.0-1
Source: helper-src

Package: libexample1
Status: install ok installed
Version: 1.5-2+b1
Source: example (1.5-2)
";

/// The first layer's status also lists vim, which the second layer's status no longer does.
pub(super) const VIM: &str = "
Package: vim
Status: install ok installed
Version: 2:9.0.1378-2
";

pub(super) const APK_INSTALLED: &str = "\
P:libcrypto3
V:3.1.4-r1
o:openssl

P:busybox
V:1.36.1-r15
o:busybox

P:foo
V:2.0_rc1-r0
o:foo

P:bar
V:2.0_p1-r0
o:bar
";

/// A header blob as rpm writes one, without the immutable region (which the reader does not
/// need): entries of strings, and the epoch as an INT32.
pub(super) fn rpm_header(
    name: &str,
    epoch: Option<u32>,
    version: &str,
    release: &str,
    source: &str,
) -> Vec<u8> {
    let mut entries: Vec<(u32, u32, Vec<u8>)> = vec![
        (1000, 6, [name.as_bytes(), b"\0"].concat()),
        (1001, 6, [version.as_bytes(), b"\0"].concat()),
        (1002, 6, [release.as_bytes(), b"\0"].concat()),
        (1044, 6, [source.as_bytes(), b"\0"].concat()),
    ];
    if let Some(epoch) = epoch {
        entries.push((1003, 4, epoch.to_be_bytes().to_vec()));
    }
    entries.sort_by_key(|(tag, _, _)| *tag);
    let mut index = Vec::new();
    let mut data = Vec::new();
    for (tag, kind, bytes) in &entries {
        if *kind == 4 {
            data.resize(data.len().next_multiple_of(4), 0);
        }
        for word in [*tag, *kind, data.len() as u32, 1] {
            index.extend(word.to_be_bytes());
        }
        data.extend(bytes);
    }
    let mut blob = Vec::new();
    blob.extend((entries.len() as u32).to_be_bytes());
    blob.extend((data.len() as u32).to_be_bytes());
    blob.extend(index);
    blob.extend(data);
    blob
}

/// An rpmdb.sqlite holding `headers`, as bytes.
pub(super) async fn rpmdb(headers: &[Vec<u8>]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rpmdb.sqlite");
    let mut connection = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    for header in headers {
        sqlx::query("INSERT INTO Packages (blob) VALUES (?)")
            .bind(header)
            .execute(&mut connection)
            .await
            .unwrap();
    }
    connection.close().await.unwrap();
    std::fs::read(&path).unwrap()
}
