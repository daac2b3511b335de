//! Image scanning: the OS packages an image installs, checked against an offline
//! vulnerability database. The pieces so far, each pure or reading only what it is given:
//! - `layers`: the final contents of the package databases as an image's layers compose them
//!   (whiteouts applied, symlinks resolved), read streaming;
//! - `packages` (dpkg, apk, os-release) and `rpmdb` (RPM's SQLite database): what is
//!   installed, with source packages;
//! - `versions`: each package manager's version order;
//! - `image`: an image's distribution and installed packages, from those files;
//! - `ecosystems`, `affected`, `advisories`, `severity`: which OSV advisories apply to a
//!   distribution's release, whether their ranges cover a version, the findings, and how
//!   severe they are (ECR's scale, from CVSS);
//! - `sources`: OSV records read from zip files and directories, for imports.
//!
//! Depends on `storage` only for the byte-stream type `layers` reads. The registry runs scans
//! and keeps the advisories (`registry::scanning`).

pub mod advisories;
pub mod affected;
pub mod ecosystems;
pub mod image;
pub mod layers;
pub mod packages;
pub mod rpmdb;
pub mod severity;
pub mod sources;
pub mod versions;
