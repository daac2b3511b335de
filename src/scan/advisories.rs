//! OSV records (the open schema osv.dev publishes per ecosystem) as a scan uses them, and the
//! findings they make for an image's packages: an advisory names source packages of one
//! ecosystem, and a package is affected when its source's version falls in the advisory's
//! ranges, ordered as its distribution orders versions. Part of `scan`.

use serde::Deserialize;

use super::affected::Affected;
use super::ecosystems::scheme_for;
use super::packages::{OsRelease, Package};
use super::severity::{Assessment, Rating, assess};

/// One OSV record, with what a finding reports.
#[derive(Debug, Clone, Deserialize)]
pub struct Advisory {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// What the advisory was derived from: where Debian's records name their CVE.
    #[serde(default)]
    pub upstream: Vec<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
    /// When it was withdrawn, if it was: it then matches nothing.
    #[serde(default)]
    pub withdrawn: Option<String>,
    #[serde(default)]
    pub severity: Vec<Rating>,
    #[serde(default)]
    pub references: Vec<Reference>,
    #[serde(default)]
    pub affected: Vec<AffectedPackage>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AffectedPackage {
    pub package: PackageName,
    #[serde(flatten)]
    pub versions: Affected,
    #[serde(default)]
    pub severity: Vec<Rating>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PackageName {
    pub ecosystem: String,
    pub name: String,
}

/// One advisory affecting one installed package.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The advisory's CVE alias if it has one (as ECR names findings), else its own id.
    pub name: String,
    pub advisory: String,
    pub description: String,
    pub uri: Option<String>,
    pub package_name: String,
    pub package_version: String,
    pub assessment: Assessment,
}

impl Advisory {
    /// The findings this advisory makes for `packages` of an image of `os`.
    pub fn findings(&self, os: &OsRelease, packages: &[Package]) -> Vec<Finding> {
        if self.withdrawn.is_some() {
            return Vec::new();
        }
        let mut findings = Vec::new();
        for affected in &self.affected {
            let Some(scheme) = scheme_for(&affected.package.ecosystem, os) else {
                continue;
            };
            for package in packages {
                let named = package
                    .names(scheme)
                    .contains(&affected.package.name.as_str());
                if named && affected.versions.affects(scheme, &package.source_version) {
                    findings.push(self.finding(affected, package));
                }
            }
        }
        findings
    }

    fn finding(&self, affected: &AffectedPackage, package: &Package) -> Finding {
        let ratings = if self.severity.is_empty() {
            &affected.severity
        } else {
            &self.severity
        };
        // The CVE, when the advisory is about exactly one (an advisory fixing several, as
        // AlmaLinux's and Debian's DSAs often do, is named by its own id).
        let mut cves: Vec<&String> = (self.aliases.iter().chain(&self.upstream))
            .filter(|alias| alias.starts_with("CVE-"))
            .collect();
        cves.sort();
        cves.dedup();
        let name = match cves[..] {
            _ if self.id.starts_with("CVE-") => &self.id,
            [cve] => cve,
            _ => &self.id,
        };
        let uri = ["ADVISORY", "WEB"].iter().find_map(|kind| {
            self.references
                .iter()
                .find(|reference| reference.kind == *kind)
                .map(|reference| reference.url.clone())
        });
        Finding {
            name: name.clone(),
            advisory: self.id.clone(),
            description: self
                .summary
                .clone()
                .or_else(|| self.details.clone())
                .unwrap_or_default(),
            uri,
            package_name: package.name.clone(),
            package_version: package.version.clone(),
            assessment: assess(ratings),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::packages::package;
    use crate::scan::severity::Severity;

    const DSA: &str = r#"{
        "id": "DSA-5532-1", "aliases": ["CVE-2023-5363"], "summary": "openssl security update",
        "references": [{"type": "WEB", "url": "https://example.org/web"},
                       {"type": "ADVISORY", "url": "https://security-tracker.debian.org/DSA-5532-1"}],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
        "affected": [
            {"package": {"ecosystem": "Debian:12", "name": "openssl"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]}]},
            {"package": {"ecosystem": "Debian:11", "name": "openssl"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.1w-0+deb11u1"}]}]}
        ]}"#;

    #[test]
    fn an_advisory_finds_binary_packages_of_an_affected_source_in_its_own_release() {
        let advisory: Advisory = serde_json::from_str(DSA).unwrap();
        let bookworm = OsRelease {
            id: "debian".into(),
            version_id: "12".into(),
        };
        let packages = [
            package("libssl3", "3.0.11-1~deb12u1", "openssl", "3.0.11-1~deb12u1"),
            package("openssl", "3.0.11-1~deb12u1", "openssl", "3.0.11-1~deb12u1"),
            // Fixed: the binary's own version is newer than the source's.
            package(
                "libssl-dev",
                "3.0.11-1~deb12u2+b1",
                "openssl",
                "3.0.11-1~deb12u2",
            ),
            // Named like the advisory's package, but built from another source.
            package("openssl", "1.0", "openssl-compat", "1.0"),
        ];
        let findings = advisory.findings(&bookworm, &packages);
        let found: Vec<&str> = findings.iter().map(|f| f.package_name.as_str()).collect();
        assert_eq!(found, ["libssl3", "openssl"]);
        let first = &findings[0];
        assert_eq!(
            (first.name.as_str(), first.advisory.as_str()),
            ("CVE-2023-5363", "DSA-5532-1")
        );
        assert_eq!(
            first.uri.as_deref(),
            Some("https://security-tracker.debian.org/DSA-5532-1")
        );
        assert_eq!(first.assessment.severity, Severity::High);

        // Both ranges cover this version, but only Debian 12's applies on Debian 12: one
        // finding, not two. On another distribution, none.
        let bullseye_version = [package(
            "libssl1.1",
            "1.1.1n-0+deb11u5",
            "openssl",
            "1.1.1n-0+deb11u5",
        )];
        assert_eq!(advisory.findings(&bookworm, &bullseye_version).len(), 1);
        let ubuntu = OsRelease {
            id: "ubuntu".into(),
            version_id: "22.04".into(),
        };
        assert!(advisory.findings(&ubuntu, &packages).is_empty());
    }

    #[test]
    fn a_finding_is_named_by_the_cve_of_its_aliases_or_upstream() {
        let named = |json: &str| {
            let advisory: Advisory = serde_json::from_str(json).unwrap();
            let affected = &advisory.affected[0];
            let package = package("openssl", "1", "openssl", "1");
            advisory.finding(affected, &package).name
        };
        let affected =
            r#""affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"}}]"#;
        let cases = [
            (
                format!(r#"{{"id": "CVE-2024-1", {affected}}}"#),
                "CVE-2024-1",
            ),
            (
                format!(r#"{{"id": "DSA-1", "aliases": ["CVE-2024-2"], {affected}}}"#),
                "CVE-2024-2",
            ),
            // Debian's records name their CVE as `upstream`, with their own ids beside it.
            (
                format!(
                    r#"{{"id": "DSA-2", "upstream": ["DEBIAN-CVE-2024-3", "CVE-2024-3"], {affected}}}"#
                ),
                "CVE-2024-3",
            ),
            (format!(r#"{{"id": "ALPINE-X", {affected}}}"#), "ALPINE-X"),
            (
                format!(
                    r#"{{"id": "ALSA-1", "upstream": ["CVE-2024-4", "CVE-2024-5"], {affected}}}"#
                ),
                "ALSA-1",
            ),
        ];
        for (json, name) in cases {
            assert_eq!(named(&json), name, "{json}");
        }
    }

    #[test]
    fn a_withdrawn_advisory_finds_nothing() {
        let mut advisory: Advisory = serde_json::from_str(DSA).unwrap();
        advisory.withdrawn = Some("2024-01-01T00:00:00Z".into());
        let bookworm = OsRelease {
            id: "debian".into(),
            version_id: "12".into(),
        };
        let packages = [package("libssl3", "3.0.0-1", "openssl", "3.0.0-1")];
        assert!(advisory.findings(&bookworm, &packages).is_empty());
    }
}
