//! What an RPM distribution (Amazon Linux 2023, Fedora, RHEL 9 and kin) says is installed:
//! the `Packages` table of its SQLite rpmdb (`/var/lib/rpm/rpmdb.sqlite`), one rpm header
//! blob a row, read for name, epoch, version, release and source RPM. Part of `scan`; uses
//! sqlx to open the file it is given and `scan::packages` for the `Package` it returns.
//!
//! A blob is a header as rpm's `headerExport` writes it, without the 8-byte magic of a
//! package file's header: the entry count and the data length (big-endian `u32`s), the index
//! of 16-byte entries (tag, type, offset into the data, count), then the data. Installed
//! headers open with a region entry (`HEADER_IMMUTABLE`) covering what the package file
//! carried; rpm appends what it adds at install time after it.

use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::packages::Package;

const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const EPOCH: u32 = 1003;
const SOURCERPM: u32 = 1044;

/// Region tags (`HEADER_IMAGE`, `HEADER_SIGNATURES`, `HEADER_IMMUTABLE`): only the first
/// entry may be one. Every other tag is at least `HEADER_I18NTABLE` (100).
const REGIONS: [u32; 3] = [61, 62, 63];
const FIRST_DATA_TAG: u32 = 100;

const INT16: u32 = 3;
const INT32: u32 = 4;
const INT64: u32 = 5;
const STRING: u32 = 6;
const BIN: u32 = 7;
const STRING_ARRAY: u32 = 8;
const I18NSTRING: u32 = 9;

const ENTRY_LEN: u32 = 16;

/// Why the rpmdb could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RpmdbError {
    #[error("cannot open the rpmdb {}: {source}", path.display())]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("cannot read the Packages table of {}: {source}", path.display())]
    Query { path: PathBuf, source: sqlx::Error },
    #[error("malformed rpm header: {0}")]
    Header(#[from] HeaderError),
    #[error("malformed rpm header in row {hnum} of {}: {error}", path.display())]
    Row {
        path: PathBuf,
        hnum: i64,
        error: HeaderError,
    },
}

/// What is wrong with a header blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("{len} bytes cannot hold the entry count and data length")]
    Truncated { len: usize },
    #[error("{entries} entries and {data} data bytes need {needed} bytes, the blob has {len}")]
    Length {
        entries: u32,
        data: u32,
        needed: u64,
        len: usize,
    },
    #[error("the region entry is malformed: {0}")]
    Region(&'static str),
    #[error("entry {index} (tag {tag}, type {kind}, offset {offset}, count {count}): {reason}")]
    Entry {
        index: usize,
        tag: u32,
        kind: u32,
        offset: u32,
        count: u32,
        reason: &'static str,
    },
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{tag} has type {kind} and count {count}, not a single {wanted}")]
    Type {
        tag: &'static str,
        kind: u32,
        count: u32,
        wanted: &'static str,
    },
    #[error("{0} runs to the end of the data without its NUL")]
    Unterminated(&'static str),
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("source RPM {0:?} is not name-version-release.src.rpm")]
    SourceRpm(String),
}

/// The installed packages of the rpmdb at `path`, in the order rpm installed them. The file
/// comes from an image, so it is opened read-only and immutable: nothing else writes it, and
/// SQLite then needs no lock or `-shm` file beside it (rpm leaves its database in WAL mode,
/// after folding the log into the file when it closes). `gpg-pubkey` entries are left out.
/// One malformed header fails the whole read.
pub async fn installed(path: &Path) -> Result<Vec<Package>, RpmdbError> {
    let mut connection = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true)
        .connect()
        .await
        .map_err(|source| RpmdbError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    let query_error = |source| RpmdbError::Query {
        path: path.to_path_buf(),
        source,
    };
    let mut packages = Vec::new();
    {
        // Streamed, so that only one header is in memory at a time.
        let mut rows =
            sqlx::query_as::<_, (i64, Vec<u8>)>("SELECT hnum, blob FROM Packages ORDER BY hnum")
                .fetch(&mut connection);
        while let Some((hnum, blob)) = rows.try_next().await.map_err(query_error)? {
            match read_header(&blob) {
                Ok(Some(package)) => packages.push(package),
                Ok(None) => {}
                Err(error) => {
                    return Err(RpmdbError::Row {
                        path: path.to_path_buf(),
                        hnum,
                        error,
                    });
                }
            }
        }
    }
    connection.close().await.map_err(query_error)?;
    Ok(packages)
}

/// The package one header blob of the `Packages` table describes, or `None` for the
/// `gpg-pubkey` entries that stand for imported signing keys. Its version is
/// `[epoch:]version-release`, leaving out an epoch of 0 (rpm reads a missing epoch as 0).
/// The source and its version come from the source RPM's file name, with the binary's epoch
/// (the file name has none, and a source package and its binaries share one); a header
/// without a source RPM is its own source.
pub fn package_of_header(blob: &[u8]) -> Result<Option<Package>, RpmdbError> {
    Ok(read_header(blob)?)
}

fn read_header(blob: &[u8]) -> Result<Option<Package>, HeaderError> {
    let header = Header::parse(blob)?;
    let name = header.required_string(NAME)?;
    if name == "gpg-pubkey" {
        return Ok(None);
    }
    let version = header.required_string(VERSION)?;
    let release = header.required_string(RELEASE)?;
    let epoch = header.int32(EPOCH)?.filter(|&epoch| epoch != 0);
    let evr = |version: &str, release: &str| match epoch {
        Some(epoch) => format!("{epoch}:{version}-{release}"),
        None => format!("{version}-{release}"),
    };
    let package_version = evr(version, release);
    let (source, source_version) = match header.string(SOURCERPM)? {
        Some(source_rpm) => {
            let (source, version, release) = split_source_rpm(source_rpm)?;
            (source.to_string(), evr(version, release))
        }
        None => (name.to_string(), package_version.clone()),
    };
    Ok(Some(Package {
        name: name.to_string(),
        version: package_version,
        source,
        source_version,
    }))
}

/// `name-version-release.src.rpm` (or `.nosrc.rpm`, a source package without its sources)
/// split into its three parts. Names hold hyphens and versions and releases cannot, so the
/// split is at the last two.
fn split_source_rpm(file: &str) -> Result<(&str, &str, &str), HeaderError> {
    let bad = || HeaderError::SourceRpm(file.to_string());
    let nvr = file
        .strip_suffix(".src.rpm")
        .or_else(|| file.strip_suffix(".nosrc.rpm"))
        .ok_or_else(bad)?;
    let (name_version, release) = nvr.rsplit_once('-').ok_or_else(bad)?;
    let (name, version) = name_version.rsplit_once('-').ok_or_else(bad)?;
    if [name, version, release].iter().any(|part| part.is_empty()) {
        return Err(bad());
    }
    Ok((name, version, release))
}

fn tag_name(tag: u32) -> &'static str {
    match tag {
        NAME => "NAME",
        VERSION => "VERSION",
        RELEASE => "RELEASE",
        EPOCH => "EPOCH",
        SOURCERPM => "SOURCERPM",
        _ => "a tag",
    }
}

/// One index entry, decoded.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u32,
    kind: u32,
    offset: u32,
    count: u32,
}

/// A header whose index has been checked: every entry's offset lies in the data, and the
/// data of every fixed-size entry fits. Strings are checked when read, so that a header of
/// many entries pointing at one long run of bytes costs no more than its length.
struct Header<'a> {
    index: &'a [u8],
    data: &'a [u8],
}

impl<'a> Header<'a> {
    fn parse(blob: &'a [u8]) -> Result<Self, HeaderError> {
        let (entries, data_len) = match blob {
            [a, b, c, d, e, f, g, h, ..] => (
                u32::from_be_bytes([*a, *b, *c, *d]),
                u32::from_be_bytes([*e, *f, *g, *h]),
            ),
            _ => return Err(HeaderError::Truncated { len: blob.len() }),
        };
        // Both counts are checked against the blob's length before anything is sliced, so a
        // huge count is an error and never an allocation.
        let index_len = u64::from(entries) * u64::from(ENTRY_LEN);
        let needed = 8 + index_len + u64::from(data_len);
        if needed != blob.len() as u64 {
            return Err(HeaderError::Length {
                entries,
                data: data_len,
                needed,
                len: blob.len(),
            });
        }
        let (index, data) = blob[8..].split_at(index_len as usize);
        let header = Header { index, data };
        header.check()?;
        Ok(header)
    }

    fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.index.chunks_exact(ENTRY_LEN as usize).map(|raw| {
            let word =
                |at: usize| u32::from_be_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
            Entry {
                tag: word(0),
                kind: word(4),
                offset: word(8),
                count: word(12),
            }
        })
    }

    /// rpm's own checks on each entry (`hdrblobVerifyInfo`), those that cost nothing.
    fn check(&self) -> Result<(), HeaderError> {
        let data_len = self.data.len() as u64;
        for (index, entry) in self.entries().enumerate() {
            if index == 0 && REGIONS.contains(&entry.tag) {
                self.check_region(entry)?;
                continue;
            }
            let bad = |reason| HeaderError::Entry {
                index,
                tag: entry.tag,
                kind: entry.kind,
                offset: entry.offset,
                count: entry.count,
                reason,
            };
            if entry.tag < FIRST_DATA_TAG {
                return Err(bad("a reserved tag outside the opening region"));
            }
            let size = match entry.kind {
                1 | 2 | BIN => 1,
                INT16 => 2,
                INT32 => 4,
                INT64 => 8,
                STRING | STRING_ARRAY | I18NSTRING => 0,
                _ => return Err(bad("an unknown type")),
            };
            if entry.count == 0 || u64::from(entry.count) > data_len {
                return Err(bad("a count of no items or more items than data bytes"));
            }
            if u64::from(entry.offset) >= data_len {
                return Err(bad("an offset past the data"));
            }
            if size > 1 && entry.offset % size != 0 {
                return Err(bad("a misaligned offset"));
            }
            let end = u64::from(entry.offset) + u64::from(size) * u64::from(entry.count);
            if end > data_len {
                return Err(bad("data running past the end"));
            }
        }
        Ok(())
    }

    /// A region entry points at a trailer in the data, itself an entry of the same tag whose
    /// negated offset is the size of the region's part of the index.
    fn check_region(&self, region: Entry) -> Result<(), HeaderError> {
        if region.kind != BIN || region.count != ENTRY_LEN {
            return Err(HeaderError::Region("not 16 bytes of binary data"));
        }
        let start = region.offset as usize;
        let trailer = self
            .data
            .get(start..)
            .and_then(|rest| rest.get(..ENTRY_LEN as usize))
            .ok_or(HeaderError::Region("its trailer is past the data"))?;
        let word = |at: usize| {
            u32::from_be_bytes([
                trailer[at],
                trailer[at + 1],
                trailer[at + 2],
                trailer[at + 3],
            ])
        };
        if word(0) != region.tag || word(4) != BIN || word(12) != ENTRY_LEN {
            return Err(HeaderError::Region("its trailer does not repeat it"));
        }
        let region_index_len = 0u32.wrapping_sub(word(8));
        let region_entries = region_index_len / ENTRY_LEN;
        if region_index_len % ENTRY_LEN != 0
            || region_entries == 0
            || region_entries as usize > self.index.len() / ENTRY_LEN as usize
        {
            return Err(HeaderError::Region(
                "its trailer's size is not of whole entries in the index",
            ));
        }
        Ok(())
    }

    fn find(&self, tag: u32) -> Option<Entry> {
        self.entries().find(|entry| entry.tag == tag)
    }

    fn string(&self, tag: u32) -> Result<Option<&'a str>, HeaderError> {
        let Some(entry) = self.find(tag) else {
            return Ok(None);
        };
        if entry.kind != STRING || entry.count != 1 {
            return Err(HeaderError::Type {
                tag: tag_name(tag),
                kind: entry.kind,
                count: entry.count,
                wanted: "string",
            });
        }
        // `check` has put the offset inside the data.
        let rest = &self.data[entry.offset as usize..];
        let len = rest
            .iter()
            .position(|&byte| byte == 0)
            .ok_or(HeaderError::Unterminated(tag_name(tag)))?;
        let text =
            std::str::from_utf8(&rest[..len]).map_err(|_| HeaderError::NotUtf8(tag_name(tag)))?;
        Ok(Some(text))
    }

    fn required_string(&self, tag: u32) -> Result<&'a str, HeaderError> {
        match self.string(tag)? {
            None => Err(HeaderError::Missing(tag_name(tag))),
            Some("") => Err(HeaderError::Empty(tag_name(tag))),
            Some(text) => Ok(text),
        }
    }

    /// The first value of an `INT32` entry, which `check` has put inside the data.
    fn int32(&self, tag: u32) -> Result<Option<u32>, HeaderError> {
        let Some(entry) = self.find(tag) else {
            return Ok(None);
        };
        if entry.kind != INT32 || entry.count != 1 {
            return Err(HeaderError::Type {
                tag: tag_name(tag),
                kind: entry.kind,
                count: entry.count,
                wanted: "32-bit integer",
            });
        }
        let at = entry.offset as usize;
        let bytes = &self.data[at..at + 4];
        Ok(Some(u32::from_be_bytes([
            bytes[0], bytes[1], bytes[2], bytes[3],
        ])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::packages::package;

    const INSTALLTIME: u32 = 1008;

    /// What an entry holds, for the encoder.
    enum Data<'a> {
        Str(&'a str),
        Int32(u32),
        /// Bytes laid down as they are, under any type and count.
        Raw {
            kind: u32,
            count: u32,
            bytes: &'a [u8],
        },
    }

    /// A header as rpm stores an installed one: a `HEADER_IMMUTABLE` region entry, the
    /// package's own entries with the region's trailer after their data, then the entries
    /// rpm adds at install time. An empty `region` leaves the region out.
    fn encode(region: &[(u32, Data)], added: &[(u32, Data)]) -> Vec<u8> {
        fn push(index: &mut Vec<u8>, data: &mut Vec<u8>, tag: u32, value: &Data) {
            let (kind, count, bytes) = match value {
                Data::Str(text) => (STRING, 1, [text.as_bytes(), b"\0"].concat()),
                Data::Int32(number) => (INT32, 1, number.to_be_bytes().to_vec()),
                Data::Raw { kind, count, bytes } => (*kind, *count, bytes.to_vec()),
            };
            if kind == INT32 {
                data.resize(data.len().next_multiple_of(4), 0);
            }
            for word in [tag, kind, data.len() as u32, count] {
                index.extend(word.to_be_bytes());
            }
            data.extend(bytes);
        }
        let mut index = Vec::new();
        let mut data = Vec::new();
        let mut entries = Vec::new();
        for (tag, value) in region {
            push(&mut entries, &mut data, *tag, value);
        }
        if !region.is_empty() {
            let region_index_len = ENTRY_LEN * (region.len() as u32 + 1);
            let trailer_at = data.len() as u32;
            for word in [63, BIN, 0u32.wrapping_sub(region_index_len), ENTRY_LEN] {
                data.extend(word.to_be_bytes());
            }
            for word in [63, BIN, trailer_at, ENTRY_LEN] {
                index.extend(word.to_be_bytes());
            }
        }
        index.extend(entries);
        let mut added_entries = Vec::new();
        for (tag, value) in added {
            push(&mut added_entries, &mut data, *tag, value);
        }
        index.extend(added_entries);
        let mut blob = Vec::new();
        blob.extend((index.len() as u32 / ENTRY_LEN).to_be_bytes());
        blob.extend((data.len() as u32).to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    /// An installed package's header, as rpm would store it.
    fn installed_header(
        name: &str,
        epoch: Option<u32>,
        version: &str,
        release: &str,
        source_rpm: Option<&str>,
    ) -> Vec<u8> {
        let mut region = vec![
            (NAME, Data::Str(name)),
            (VERSION, Data::Str(version)),
            (RELEASE, Data::Str(release)),
        ];
        if let Some(epoch) = epoch {
            region.push((EPOCH, Data::Int32(epoch)));
        }
        if let Some(source_rpm) = source_rpm {
            region.push((SOURCERPM, Data::Str(source_rpm)));
        }
        encode(&region, &[(INSTALLTIME, Data::Int32(1_700_000_000))])
    }

    fn header_error(blob: &[u8]) -> HeaderError {
        match package_of_header(blob) {
            Err(RpmdbError::Header(error)) => error,
            other => panic!("expected a header error, got {other:?}"),
        }
    }

    /// Overwrites one word (0 tag, 1 type, 2 offset, 3 count) of index entry `entry`.
    fn set_word(blob: &mut [u8], entry: usize, word: usize, value: u32) {
        let at = 8 + 16 * entry + 4 * word;
        blob[at..at + 4].copy_from_slice(&value.to_be_bytes());
    }

    #[test]
    fn reads_name_epoch_version_release_and_source() {
        let blob = installed_header(
            "openssl-libs",
            Some(1),
            "3.0.8",
            "1.amzn2023.0.4",
            Some("openssl-3.0.8-1.amzn2023.0.4.src.rpm"),
        );
        assert_eq!(
            package_of_header(&blob).unwrap(),
            Some(package(
                "openssl-libs",
                "1:3.0.8-1.amzn2023.0.4",
                "openssl",
                "1:3.0.8-1.amzn2023.0.4"
            ))
        );
    }

    #[test]
    fn splits_source_rpms_at_their_last_two_hyphens() {
        let blob = installed_header(
            "python3-libs",
            None,
            "3.9.16",
            "1.amzn2023.0.3",
            Some("python3.9-3.9.16-1.amzn2023.0.3.src.rpm"),
        );
        assert_eq!(
            package_of_header(&blob).unwrap(),
            Some(package(
                "python3-libs",
                "3.9.16-1.amzn2023.0.3",
                "python3.9",
                "3.9.16-1.amzn2023.0.3"
            ))
        );
        let blob = installed_header(
            "perl-IO-Socket-SSL",
            None,
            "2.073",
            "2.el9",
            Some("perl-IO-Socket-SSL-2.073-2.el9.src.rpm"),
        );
        let found = package_of_header(&blob).unwrap().unwrap();
        assert_eq!(
            (found.source.as_str(), found.source_version.as_str()),
            ("perl-IO-Socket-SSL", "2.073-2.el9")
        );
        assert_eq!(
            split_source_rpm("kernel-6.1-1.nosrc.rpm"),
            Ok(("kernel", "6.1", "1"))
        );
        for bad in [
            "openssl.src.rpm",
            "openssl-3.0.8.src.rpm",
            "openssl-3.0.8-1.x86_64.rpm",
            "-3.0.8-1.src.rpm",
            "openssl--1.src.rpm",
            "openssl-3.0.8-.src.rpm",
        ] {
            assert_eq!(
                split_source_rpm(bad),
                Err(HeaderError::SourceRpm(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_epoch_of_zero_is_left_out() {
        let blob = installed_header(
            "bash",
            Some(0),
            "5.2.15",
            "1.fc38",
            Some("bash-5.2.15-1.fc38.src.rpm"),
        );
        assert_eq!(
            package_of_header(&blob).unwrap(),
            Some(package("bash", "5.2.15-1.fc38", "bash", "5.2.15-1.fc38"))
        );
    }

    #[test]
    fn a_package_without_a_source_rpm_is_its_own_source() {
        let blob = installed_header("filesystem", Some(2), "3.18", "3.el9", None);
        assert_eq!(
            package_of_header(&blob).unwrap(),
            Some(package(
                "filesystem",
                "2:3.18-3.el9",
                "filesystem",
                "2:3.18-3.el9"
            ))
        );
    }

    #[test]
    fn gpg_pubkey_entries_are_not_packages() {
        let blob = installed_header("gpg-pubkey", None, "d832c631", "6515c85e", None);
        assert_eq!(package_of_header(&blob).unwrap(), None);
    }

    #[test]
    fn a_header_without_a_region_is_read_too() {
        let blob = encode(
            &[],
            &[
                (NAME, Data::Str("zlib")),
                (VERSION, Data::Str("1.2.11")),
                (RELEASE, Data::Str("40.el9")),
            ],
        );
        assert_eq!(
            package_of_header(&blob).unwrap(),
            Some(package("zlib", "1.2.11-40.el9", "zlib", "1.2.11-40.el9"))
        );
    }

    #[test]
    fn malformed_blobs_are_errors() {
        let good = installed_header(
            "zlib",
            Some(1),
            "1.2.11",
            "40.el9",
            Some("zlib-1.2.11-40.el9.src.rpm"),
        );
        // Entries: 0 region, 1 NAME, 2 VERSION, 3 RELEASE, 4 EPOCH, 5 SOURCERPM, 6 INSTALLTIME.
        let data_len = u32::from_be_bytes(good[4..8].try_into().unwrap());
        let with = |entry, word, value| {
            let mut blob = good.clone();
            set_word(&mut blob, entry, word, value);
            blob
        };
        let entry_error = |blob: &[u8], reason: &str| match header_error(blob) {
            HeaderError::Entry { reason: found, .. } => assert_eq!(found, reason),
            other => panic!("expected {reason:?}, got {other:?}"),
        };

        assert_eq!(header_error(&[]), HeaderError::Truncated { len: 0 });
        assert_eq!(header_error(&good[..7]), HeaderError::Truncated { len: 7 });
        // The index cut short, a byte too many, and counts far beyond the blob.
        assert!(matches!(
            header_error(&good[..8 + 16 * 3]),
            HeaderError::Length { .. }
        ));
        assert!(matches!(
            header_error(&[&good[..], &[0]].concat()),
            HeaderError::Length { .. }
        ));
        let mut huge = good.clone();
        huge[..8].copy_from_slice(&[0xff; 8]);
        assert!(
            matches!(header_error(&huge), HeaderError::Length { needed, .. } if needed > 1 << 36)
        );

        entry_error(&with(1, 2, data_len), "an offset past the data");
        entry_error(&with(1, 2, u32::MAX), "an offset past the data");
        entry_error(
            &with(4, 3, 0x1000_0000),
            "a count of no items or more items than data bytes",
        );
        entry_error(
            &with(4, 3, 0),
            "a count of no items or more items than data bytes",
        );
        entry_error(&with(6, 3, data_len / 4), "data running past the end");
        entry_error(&with(4, 2, 1), "a misaligned offset");
        entry_error(&with(1, 1, 10), "an unknown type");
        entry_error(&with(1, 0, 63), "a reserved tag outside the opening region");

        assert!(matches!(
            header_error(&with(0, 2, data_len - 8)),
            HeaderError::Region(_)
        ));
        assert!(matches!(
            header_error(&with(0, 3, 8)),
            HeaderError::Region(_)
        ));
        assert!(matches!(
            header_error(&with(0, 2, 0)),
            HeaderError::Region(_)
        ));

        // Right-sized entries of the wrong type or count.
        assert!(matches!(
            header_error(&with(1, 1, BIN)),
            HeaderError::Type { tag: "NAME", .. }
        ));
        assert!(matches!(
            header_error(&with(2, 3, 2)),
            HeaderError::Type { tag: "VERSION", .. }
        ));
        assert!(matches!(
            header_error(&with(4, 1, STRING)),
            HeaderError::Type { tag: "EPOCH", .. }
        ));

        let unterminated = encode(
            &[(VERSION, Data::Str("1")), (RELEASE, Data::Str("1"))],
            &[(
                NAME,
                Data::Raw {
                    kind: STRING,
                    count: 1,
                    bytes: b"zlib",
                },
            )],
        );
        assert_eq!(
            header_error(&unterminated),
            HeaderError::Unterminated("NAME")
        );
        let not_utf8 = encode(
            &[(
                NAME,
                Data::Raw {
                    kind: STRING,
                    count: 1,
                    bytes: b"z\xfflib\0",
                },
            )],
            &[],
        );
        assert_eq!(header_error(&not_utf8), HeaderError::NotUtf8("NAME"));
        let no_version = encode(&[(NAME, Data::Str("zlib")), (RELEASE, Data::Str("1"))], &[]);
        assert_eq!(header_error(&no_version), HeaderError::Missing("VERSION"));
        let empty_release = encode(
            &[
                (NAME, Data::Str("zlib")),
                (VERSION, Data::Str("1")),
                (RELEASE, Data::Str("")),
            ],
            &[],
        );
        assert_eq!(header_error(&empty_release), HeaderError::Empty("RELEASE"));
        let bad_source = installed_header("zlib", None, "1", "1", Some("zlib.src.rpm"));
        assert_eq!(
            header_error(&bad_source),
            HeaderError::SourceRpm("zlib.src.rpm".into())
        );
    }

    #[test]
    fn no_truncation_or_corrupted_byte_panics() {
        let good = installed_header(
            "openssl-libs",
            Some(1),
            "3.0.8",
            "1.amzn2023.0.4",
            Some("openssl-3.0.8-1.amzn2023.0.4.src.rpm"),
        );
        for len in 0..good.len() {
            assert!(package_of_header(&good[..len]).is_err(), "cut to {len}");
        }
        for at in 0..good.len() {
            for value in [0x00, 0x01, 0x0f, 0x10, 0x7f, 0x80, 0xff] {
                let mut blob = good.clone();
                blob[at] = value;
                let _ = package_of_header(&blob);
            }
        }
    }

    /// Writes an rpmdb.sqlite as rpm's sqlite backend lays it out: WAL mode, the `Packages`
    /// table, and an index table beside it.
    async fn write_rpmdb(path: &Path, blobs: &[Vec<u8>]) {
        let mut connection = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .connect()
            .await
            .unwrap();
        for statement in [
            "CREATE TABLE IF NOT EXISTS 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)",
            "CREATE TABLE IF NOT EXISTS 'Name' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum))",
            "CREATE INDEX IF NOT EXISTS 'Name_key_idx' ON 'Name'(key ASC)",
        ] {
            sqlx::query(statement)
                .execute(&mut connection)
                .await
                .unwrap();
        }
        for blob in blobs {
            sqlx::query("INSERT INTO Packages (blob) VALUES (?)")
                .bind(blob)
                .execute(&mut connection)
                .await
                .unwrap();
        }
        connection.close().await.unwrap();
    }

    #[tokio::test]
    async fn installed_reads_every_package_of_an_rpmdb() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rpmdb.sqlite");
        write_rpmdb(
            &path,
            &[
                installed_header("gpg-pubkey", None, "d832c631", "6515c85e", None),
                installed_header(
                    "bash",
                    None,
                    "5.2.15",
                    "1.amzn2023.0.2",
                    Some("bash-5.2.15-1.amzn2023.0.2.src.rpm"),
                ),
                installed_header(
                    "openssl-libs",
                    Some(1),
                    "3.0.8",
                    "1.amzn2023.0.4",
                    Some("openssl-3.0.8-1.amzn2023.0.4.src.rpm"),
                ),
            ],
        )
        .await;
        assert_eq!(
            installed(&path).await.unwrap(),
            vec![
                package(
                    "bash",
                    "5.2.15-1.amzn2023.0.2",
                    "bash",
                    "5.2.15-1.amzn2023.0.2"
                ),
                package(
                    "openssl-libs",
                    "1:3.0.8-1.amzn2023.0.4",
                    "openssl",
                    "1:3.0.8-1.amzn2023.0.4"
                ),
            ]
        );
    }

    #[tokio::test]
    async fn installed_names_the_row_of_a_malformed_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rpmdb.sqlite");
        let good = installed_header("bash", None, "5.2.15", "1.fc38", None);
        write_rpmdb(&path, &[good.clone(), good[..20].to_vec()]).await;
        match installed(&path).await {
            Err(RpmdbError::Row {
                hnum: 2,
                error: HeaderError::Length { .. },
                ..
            }) => {}
            other => panic!("expected a malformed row 2, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn installed_fails_on_a_missing_file_or_table() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("rpmdb.sqlite");
        assert!(matches!(
            installed(&missing).await,
            Err(RpmdbError::Open { .. })
        ));
        assert!(!missing.exists(), "a read must not create the file");

        let other = dir.path().join("other.sqlite");
        let mut connection = SqliteConnectOptions::new()
            .filename(&other)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
        assert!(matches!(
            installed(&other).await,
            Err(RpmdbError::Query { .. })
        ));
    }
}
