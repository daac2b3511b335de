//! What an image installs, from the files its layers leave (see `layers`): its distribution and
//! release and the installed packages, or why it cannot be scanned. Part of `scan`; writes
//! only a temporary copy of an rpmdb, which SQLite must read from a file.

use std::io::Write;

use super::ecosystems::distribution_of;
use super::layers::Files;
use super::packages::{OsRelease, Package, apk_installed, dpkg_status, os_release};
use super::rpmdb::{self, RpmdbError};

/// The rpmdb's places, the newer first.
const RPMDBS: &[&str] = &[
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
    "var/lib/rpm/rpmdb.sqlite",
];

/// What an image installs on which distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub os: OsRelease,
    /// The distribution as OSV names it: where its advisories are kept.
    pub distribution: &'static str,
    pub packages: Vec<Package>,
}

/// How reading an image's inventory ended.
#[derive(Debug)]
pub enum Reading {
    Read(Inventory),
    /// The image is not one of a distribution that is scanned; why, for the scan's status.
    Unsupported(String),
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Rpmdb(#[from] RpmdbError),
    #[error("cannot write the rpmdb to a temporary file: {0}")]
    TemporaryFile(#[from] std::io::Error),
}

/// The inventory of the image whose final files are `files`.
pub async fn inventory(files: &Files) -> Result<Reading, InventoryError> {
    let release = files
        .os_release()
        .and_then(|text| os_release(&String::from_utf8_lossy(text)));
    let Some(os) = release else {
        return Ok(Reading::Unsupported(
            "The image has no /etc/os-release naming its distribution and release.".into(),
        ));
    };
    let Some(distribution) = distribution_of(&os) else {
        return Ok(Reading::Unsupported(format!(
            "The operating system '{} {}' is not supported.",
            os.id, os.version_id
        )));
    };
    let text = |path: &str| files.get(path).map(String::from_utf8_lossy);
    let packages = match os.id.as_str() {
        "debian" | "ubuntu" => {
            let mut packages = text("var/lib/dpkg/status")
                .map(|status| dpkg_status(&status))
                .unwrap_or_default();
            for (_, file) in files.status_d() {
                packages.extend(dpkg_status(&String::from_utf8_lossy(file)));
            }
            packages
        }
        "alpine" => text("lib/apk/db/installed")
            .map(|installed| apk_installed(&installed))
            .unwrap_or_default(),
        _ => match RPMDBS.iter().find_map(|path| files.get(path)) {
            Some(database) => rpm_packages(database).await?,
            None => Vec::new(),
        },
    };
    Ok(Reading::Read(Inventory {
        os,
        distribution,
        packages,
    }))
}

/// The packages of an rpmdb's bytes, read from a temporary copy that is removed afterwards.
async fn rpm_packages(database: &[u8]) -> Result<Vec<Package>, InventoryError> {
    let mut copy = tempfile::NamedTempFile::new()?;
    copy.write_all(database)?;
    copy.flush()?;
    Ok(rpmdb::installed(copy.path()).await?)
}
