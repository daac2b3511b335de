//! Version ordering exactly as each package manager orders versions: dpkg (Debian, Ubuntu),
//! apk (Alpine) and rpm (RHEL, Fedora, Amazon Linux). A scanner that orders them otherwise
//! reports fixed packages as vulnerable or misses vulnerable ones. Each comparator is checked
//! against the package manager's own answers (`tests/data/versions/`). Part of `scan`.

mod apk;
mod dpkg;
mod rpm;

use std::cmp::Ordering;

/// Whose rules order a distribution's package versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Dpkg,
    Apk,
    Rpm,
}

impl Scheme {
    /// How version `a` orders against version `b`. Every input orders: versions the package
    /// manager would refuse are compared as it compares what it can read of them.
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Scheme::Dpkg => dpkg::compare(a, b),
            Scheme::Apk => apk::compare(a, b),
            Scheme::Rpm => rpm::compare(a, b),
        }
    }
}
