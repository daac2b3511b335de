//! Image scanning: the OS packages an image installs, checked against an offline
//! vulnerability database. So far: what the package databases say is installed (`packages`),
//! how each package manager orders versions (`versions`), which decides whether an installed
//! package is before or after a fix, and whether an OSV advisory's ranges cover a version
//! (`affected`). Depends on nothing else in the crate.

pub mod affected;
pub mod packages;
pub mod versions;
