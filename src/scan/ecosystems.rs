//! Which OSV ecosystems hold the advisories for an image's distribution and release, and whose
//! version order their ranges use: `Debian:<major>`, `Ubuntu:<version>[:LTS]` (not `Ubuntu:Pro`,
//! whose fixes need a subscription), `Alpine:v<major.minor>`, and for RPM distributions
//! `AlmaLinux:<major>`, `Rocky Linux:<major>`, `Red Hat:enterprise_linux:<major>…` and
//! `Amazon Linux:<release>`. An advisory for another release never matches. Part of `scan`.

use super::packages::OsRelease;
use super::versions::Scheme;

/// The distributions advisories are kept for, each as OSV names it (the part of an ecosystem
/// before its first `:`) and as os-release's `ID` does.
const DISTRIBUTIONS: &[(&str, &str)] = &[
    ("Debian", "debian"),
    ("Ubuntu", "ubuntu"),
    ("Alpine", "alpine"),
    ("AlmaLinux", "almalinux"),
    ("Rocky Linux", "rocky"),
    ("Red Hat", "rhel"),
    ("Amazon Linux", "amzn"),
];

/// The distribution an ecosystem's advisories are about, if it is one that is scanned: the
/// source an imported advisory is kept under.
pub fn distribution_of_ecosystem(ecosystem: &str) -> Option<&'static str> {
    let name = ecosystem.split(':').next()?;
    DISTRIBUTIONS
        .iter()
        .find(|(osv, _)| *osv == name)
        .map(|(osv, _)| *osv)
}

/// The distribution (as OSV names it) of an image's os-release, if it is one that is scanned.
pub fn distribution_of(os: &OsRelease) -> Option<&'static str> {
    DISTRIBUTIONS
        .iter()
        .find(|(_, id)| *id == os.id)
        .map(|(osv, _)| *osv)
}

/// The version order of `ecosystem`'s ranges, if its advisories are about the distribution and
/// release `os` names.
pub fn scheme_for(ecosystem: &str, os: &OsRelease) -> Option<Scheme> {
    let mut parts = ecosystem.split(':');
    let name = parts.next()?;
    let rest: Vec<&str> = parts.collect();
    let mut release = os.version_id.split('.');
    let major = release.next().unwrap_or_default();
    let minor = release.next();
    let first = rest.first().copied();
    let (matches, scheme) = match (name, os.id.as_str()) {
        ("Debian", "debian") => (first == Some(major), Scheme::Dpkg),
        ("Ubuntu", "ubuntu") => {
            let qualifiers_known = rest.iter().skip(1).all(|q| *q == "LTS");
            let release = os.version_id.as_str();
            (first == Some(release) && qualifiers_known, Scheme::Dpkg)
        }
        ("Alpine", "alpine") => {
            let branch = minor.map(|minor| format!("v{major}.{minor}"));
            (first.is_some() && first == branch.as_deref(), Scheme::Apk)
        }
        ("AlmaLinux", "almalinux") | ("Rocky Linux", "rocky") => {
            (first == Some(major), Scheme::Rpm)
        }
        ("Red Hat", "rhel") => {
            let product_major = rest.get(1).and_then(|product| product.split('.').next());
            (
                first == Some("enterprise_linux") && product_major == Some(major),
                Scheme::Rpm,
            )
        }
        ("Amazon Linux", "amzn") => (first == Some(major), Scheme::Rpm),
        _ => (false, Scheme::Dpkg),
    };
    matches.then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, version_id: &str) -> OsRelease {
        OsRelease {
            id: id.into(),
            version_id: version_id.into(),
        }
    }

    #[test]
    fn an_advisory_matches_only_its_own_distribution_and_release() {
        let cases = [
            ("Debian:12", os("debian", "12"), Some(Scheme::Dpkg)),
            ("Debian:11", os("debian", "12"), None),
            ("Debian:12", os("ubuntu", "12"), None),
            (
                "Ubuntu:22.04:LTS",
                os("ubuntu", "22.04"),
                Some(Scheme::Dpkg),
            ),
            ("Ubuntu:23.10", os("ubuntu", "23.10"), Some(Scheme::Dpkg)),
            ("Ubuntu:Pro:22.04:LTS", os("ubuntu", "22.04"), None),
            ("Ubuntu:20.04:LTS", os("ubuntu", "22.04"), None),
            ("Alpine:v3.19", os("alpine", "3.19.1"), Some(Scheme::Apk)),
            ("Alpine:v3.1", os("alpine", "3.19.1"), None),
            ("Alpine:v3.19", os("alpine", "3"), None),
            ("AlmaLinux:9", os("almalinux", "9.3"), Some(Scheme::Rpm)),
            ("Rocky Linux:8", os("rocky", "9.3"), None),
            (
                "Red Hat:enterprise_linux:9::baseos",
                os("rhel", "9.2"),
                Some(Scheme::Rpm),
            ),
            ("Red Hat:rhel_eus:9.2::baseos", os("rhel", "9.2"), None),
            ("Amazon Linux:2023", os("amzn", "2023"), Some(Scheme::Rpm)),
            ("PyPI", os("debian", "12"), None),
        ];
        for (ecosystem, os, expected) in cases {
            assert_eq!(
                scheme_for(ecosystem, &os),
                expected,
                "{ecosystem} on {os:?}"
            );
        }
    }
}
