//! OSV records as osv.dev publishes them, read from the paths `wharf vulndb import` is given:
//! zip files of JSON records (osv.dev's `<ecosystem>/all.zip`), directories of `.json` files
//! (searched recursively), or single `.json` files; and what each record is about. Part of
//! `scan`; reads the files it is given and nothing else. Blocking: run it off the async
//! runtime.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::advisories::Advisory;
use super::ecosystems::distribution_of_ecosystem;

/// One record as read, with where it came from for error messages.
#[derive(Debug)]
pub struct RawRecord {
    pub origin: String,
    pub json: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a zip file: {source}", path.display())]
    Zip {
        path: PathBuf,
        source: zip::result::ZipError,
    },
    #[error("{}: neither a directory, a .zip nor a .json file", .0.display())]
    Unknown(PathBuf),
    /// The records' reader was told to stop: whoever wanted them has failed.
    #[error("stopped")]
    Stopped,
    #[error("{origin}: not an OSV record: {source}")]
    Record {
        origin: String,
        source: serde_json::Error,
    },
}

/// Largest record read; osv.dev's largest are well under 1 MiB.
const MAX_RECORD: u64 = 16 << 20;

/// Calls `each` with every record under `path`, in name order within a directory and in
/// archive order within a zip. Stops at the first error, `each`'s included.
pub fn read_records(
    path: &Path,
    each: &mut dyn FnMut(RawRecord) -> Result<(), SourceError>,
) -> Result<(), SourceError> {
    let io = io_error(path);
    let metadata = std::fs::metadata(path).map_err(io)?;
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if metadata.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        entries.sort();
        for entry in entries {
            let is_dir = entry.is_dir();
            let extension = entry.extension().and_then(|e| e.to_str());
            if is_dir || matches!(extension, Some("json" | "zip")) {
                read_records(&entry, each)?;
            }
        }
        Ok(())
    } else if extension.eq_ignore_ascii_case("zip") {
        read_zip(path, each)
    } else if extension.eq_ignore_ascii_case("json") {
        let json = read_limited(File::open(path).map_err(io)?).map_err(io)?;
        each(RawRecord {
            origin: path.display().to_string(),
            json,
        })
    } else {
        Err(SourceError::Unknown(path.to_path_buf()))
    }
}

fn read_zip(
    path: &Path,
    each: &mut dyn FnMut(RawRecord) -> Result<(), SourceError>,
) -> Result<(), SourceError> {
    let io = io_error(path);
    let zip_error = |source| SourceError::Zip {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(zip_error)?;
    for index in 0..archive.len() {
        let entry = archive.by_index(index).map_err(zip_error)?;
        let name = entry.name().map_err(zip_error)?.into_owned();
        if !entry.is_file() || !name.ends_with(".json") {
            continue;
        }
        let origin = format!("{}:{name}", path.display());
        let json = read_limited(entry).map_err(io)?;
        each(RawRecord { origin, json })?;
    }
    Ok(())
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> SourceError + Copy + '_ {
    |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_limited(reader: impl Read) -> std::io::Result<String> {
    let mut json = String::new();
    reader.take(MAX_RECORD + 1).read_to_string(&mut json)?;
    if json.len() as u64 > MAX_RECORD {
        return Err(std::io::Error::other(format!(
            "record larger than {MAX_RECORD} bytes"
        )));
    }
    Ok(json)
}

/// What a record says about the distributions that are scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSummary {
    pub id: String,
    pub withdrawn: bool,
    /// Each distribution the record has advisories for, with the package names it gives
    /// there, sorted and each once.
    pub distributions: Vec<(&'static str, Vec<String>)>,
}

/// Parses a record and says what it is about.
pub fn summarize(record: &RawRecord) -> Result<RecordSummary, SourceError> {
    let advisory: Advisory =
        serde_json::from_str(&record.json).map_err(|source| SourceError::Record {
            origin: record.origin.clone(),
            source,
        })?;
    let mut distributions: Vec<(&'static str, Vec<String>)> = Vec::new();
    for affected in &advisory.affected {
        let Some(distribution) = distribution_of_ecosystem(&affected.package.ecosystem) else {
            continue;
        };
        let name = affected.package.name.clone();
        match distributions.iter_mut().find(|(d, _)| *d == distribution) {
            Some((_, names)) => names.push(name),
            None => distributions.push((distribution, vec![name])),
        }
    }
    for (_, names) in &mut distributions {
        names.sort();
        names.dedup();
    }
    Ok(RecordSummary {
        id: advisory.id,
        withdrawn: advisory.withdrawn.is_some(),
        distributions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> RawRecord {
        RawRecord {
            origin: "test.json".into(),
            json: json.into(),
        }
    }

    #[test]
    fn a_record_is_summarized_by_the_scanned_distributions_it_names() {
        let summary = summarize(&raw(r#"{"id": "X-1", "affected": [
                {"package": {"ecosystem": "Debian:12", "name": "openssl"}},
                {"package": {"ecosystem": "Debian:11", "name": "openssl"}},
                {"package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "openssl"}},
                {"package": {"ecosystem": "PyPI", "name": "cryptography"}}]}"#))
        .unwrap();
        assert_eq!(summary.id, "X-1");
        assert!(!summary.withdrawn);
        assert_eq!(
            summary.distributions,
            vec![
                ("Debian", vec!["openssl".to_string()]),
                ("Ubuntu", vec!["openssl".to_string()])
            ]
        );
    }

    #[test]
    fn a_malformed_record_names_where_it_came_from() {
        let error = summarize(&raw(r#"{"affected": []}"#)).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("test.json: not an OSV record")
        );
    }
}
