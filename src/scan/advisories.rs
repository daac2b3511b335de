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
        let cve = self.aliases.iter().find(|alias| alias.starts_with("CVE-"));
        let name = if self.id.starts_with("CVE-") {
            &self.id
        } else {
            cve.unwrap_or(&self.id)
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
