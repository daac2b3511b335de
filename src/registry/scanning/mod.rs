//! Image scanning as ECR offers it: the registry's scanning configuration (rules by repository
//! filter) beside each repository's scan-on-push setting, scans requested on push or on
//! demand, and their findings. Scans run in the background from a queue in the metadata store
//! (`worker`); the advisories they match come from OSV imports (`vulndb`). What is in an
//! image and which advisories apply is `scan`'s work; this module stores and serves it.

mod vulndb;
mod worker;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wildmatch::WildMatch;

pub use vulndb::ImportSummary;
pub use worker::ScanRun;

use super::{Error, ImageRef, Registry, Result, now};
use crate::metadata::{ImageRecord, MetaError, NewManifest, ScanOnPush};
use crate::oci::RepoName;
use crate::oci::media_types;

/// ECR's limits on the registry's configuration.
const MAX_RULES: usize = 2;
const MAX_FILTERS: usize = 100;
const MAX_FILTER_LENGTH: usize = 255;

/// The registry's scanning configuration, in ECR's JSON shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanningConfiguration {
    #[serde(default = "basic")]
    pub scan_type: String,
    #[serde(default)]
    pub rules: Vec<ScanningRule>,
}

fn basic() -> String {
    "BASIC".into()
}

impl Default for ScanningConfiguration {
    fn default() -> Self {
        ScanningConfiguration {
            scan_type: basic(),
            rules: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanningRule {
    pub scan_frequency: String,
    #[serde(default)]
    pub repository_filters: Vec<ScanningFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanningFilter {
    pub filter: String,
    pub filter_type: String,
}

impl ScanningConfiguration {
    /// Checks the configuration as ECR does, for what basic scanning offers.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::InvalidScanning(message));
        if self.scan_type != "BASIC" {
            return invalid(format!(
                "scanType {:?} is not available: Wharf scans images itself, with BASIC scanning",
                self.scan_type
            ));
        }
        if self.rules.len() > MAX_RULES {
            return invalid(format!("at most {MAX_RULES} rules are allowed"));
        }
        for rule in &self.rules {
            if !matches!(rule.scan_frequency.as_str(), "SCAN_ON_PUSH" | "MANUAL") {
                return invalid(format!(
                    "scanFrequency {:?} is not available with BASIC scanning: use SCAN_ON_PUSH \
                     or MANUAL",
                    rule.scan_frequency
                ));
            }
            if rule.repository_filters.is_empty() || rule.repository_filters.len() > MAX_FILTERS {
                return invalid(format!(
                    "each rule needs 1 to {MAX_FILTERS} repository filters ('*' matches every \
                     repository)"
                ));
            }
            for filter in &rule.repository_filters {
                if filter.filter_type != "WILDCARD" {
                    return invalid(format!(
                        "filterType {:?} is not WILDCARD",
                        filter.filter_type
                    ));
                }
                if !valid_filter(&filter.filter) {
                    return invalid(format!(
                        "filter {:?} must be 1 to {MAX_FILTER_LENGTH} of a-z, 0-9, '*', and \
                         '.', '_', '-' or '/' between them",
                        filter.filter
                    ));
                }
            }
        }
        Ok(())
    }

    /// The rule that applies to `repository`: the first whose filters match it.
    fn rule_for(&self, repository: &str) -> Option<&ScanningRule> {
        self.rules.iter().find(|rule| {
            rule.repository_filters
                .iter()
                .any(|f| WildMatch::new(&f.filter).matches(repository))
        })
    }
}

/// ECR's pattern for a filter: `[a-z0-9*]`, then separators only between such characters.
fn valid_filter(filter: &str) -> bool {
    let word = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '*';
    let separator = |c: char| matches!(c, '.' | '_' | '-' | '/');
    let mut previous_was_separator = true;
    for c in filter.chars() {
        if word(c) {
            previous_was_separator = false;
        } else if separator(c) && !previous_was_separator {
            previous_was_separator = true;
        } else {
            return false;
        }
    }
    !filter.is_empty() && filter.len() <= MAX_FILTER_LENGTH && !previous_was_separator
}

/// How a repository's images are scanned, as `BatchGetRepositoryScanningConfiguration` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryScanning {
    pub scan_on_push: bool,
    /// `SCAN_ON_PUSH` or `MANUAL`.
    pub frequency: &'static str,
    /// The filters of the registry rule that applies, if any.
    pub applied_filters: Vec<ScanningFilter>,
}

/// One finding as stored and reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingRecord {
    /// The CVE, or the advisory's own id when it names none.
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    pub severity: String,
    pub package_name: String,
    pub package_version: String,
    /// The CVSS vector the severity comes from, and its base score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss: Option<(String, f64)>,
}

impl FindingRecord {
    /// ECR's attributes: the package, and the CVSS score and vector under their version's
    /// names (`CVSS3_SCORE`, …).
    pub fn attributes(&self) -> Vec<(String, String)> {
        let mut attributes = vec![
            ("package_name".to_string(), self.package_name.clone()),
            ("package_version".to_string(), self.package_version.clone()),
        ];
        if let Some((vector, score)) = &self.cvss {
            let version = match vector.get(..6) {
                Some("CVSS:3") => "CVSS3",
                Some("CVSS:4") => "CVSS4",
                _ => "CVSS2",
            };
            attributes.push((format!("{version}_SCORE"), score.to_string()));
            attributes.push((format!("{version}_VECTOR"), vector.clone()));
        }
        attributes
    }
}

/// An image's scan as reported.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanReport {
    /// `IN_PROGRESS`, `COMPLETE`, `FAILED`, `UNSUPPORTED_IMAGE` or `FINDINGS_UNAVAILABLE`.
    pub status: String,
    pub description: String,
    pub completed_at: Option<i64>,
    /// When the advisories the findings come from were imported.
    pub source_updated_at: Option<i64>,
    pub severity_counts: BTreeMap<String, u64>,
    /// Whether the advisories were imported anew since the scan: its findings may be out of
    /// date.
    pub stale: bool,
    /// Sorted by severity, most severe first; empty unless asked for and `COMPLETE`.
    pub findings: Vec<FindingRecord>,
}

/// Whether Wharf scans images of this manifest media type (image manifests and indexes, not
/// other artifacts).
pub fn scannable(media_type: &str, artifact_type: Option<&str>) -> bool {
    match media_type {
        media_types::OCI_INDEX | media_types::DOCKER_MANIFEST_LIST => true,
        media_types::OCI_MANIFEST | media_types::DOCKER_MANIFEST => matches!(
            artifact_type,
            None | Some(
                "application/vnd.oci.image.config.v1+json"
                    | "application/vnd.docker.container.image.v1+json"
            )
        ),
        _ => false,
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Meta(MetaError::Corrupt(format!("{what}: {e}")))
}

impl Registry {
    /// The registry's scanning configuration (BASIC, no rules, if none was set).
    pub async fn scanning_configuration(&self) -> Result<ScanningConfiguration> {
        match self.meta.scanning_configuration().await? {
            Some(stored) => serde_json::from_str(&stored)
                .map_err(|e| corrupt("stored scanning configuration", e)),
            None => Ok(ScanningConfiguration::default()),
        }
    }

    pub async fn put_scanning_configuration(
        &self,
        configuration: &ScanningConfiguration,
    ) -> Result<()> {
        configuration.validate()?;
        let json = serde_json::to_string(configuration).expect("configuration serializes");
        Ok(self.meta.put_scanning_configuration(&json).await?)
    }

    /// How `repository` is scanned: on push if its own setting or a registry rule says so.
    pub async fn repository_scanning(&self, repository: &RepoName) -> Result<RepositoryScanning> {
        let settings = self
            .meta
            .get_repository(repository.as_str())
            .await?
            .ok_or(Error::NameUnknown)?
            .settings;
        let configuration = self.scanning_configuration().await?;
        let rule = configuration.rule_for(repository.as_str());
        let by_rule = rule.is_some_and(|rule| rule.scan_frequency == "SCAN_ON_PUSH");
        let scan_on_push = settings.scan_on_push || by_rule;
        Ok(RepositoryScanning {
            scan_on_push,
            frequency: if scan_on_push {
                "SCAN_ON_PUSH"
            } else {
                "MANUAL"
            },
            applied_filters: rule
                .map(|rule| rule.repository_filters.clone())
                .unwrap_or_default(),
        })
    }

    /// Whether `manifest`, when new, is queued for a scan: an image, when a registry rule or
    /// its repository's setting asks for it.
    pub(super) async fn scan_on_push(&self, manifest: &NewManifest) -> Result<ScanOnPush> {
        if !scannable(&manifest.media_type, manifest.artifact_type.as_deref()) {
            return Ok(ScanOnPush::Never);
        }
        let configuration = self.scanning_configuration().await?;
        let by_rule = configuration
            .rule_for(&manifest.repository)
            .is_some_and(|rule| rule.scan_frequency == "SCAN_ON_PUSH");
        Ok(if by_rule {
            ScanOnPush::Always
        } else {
            ScanOnPush::IfRepositoryAsks
        })
    }

    /// Queues a scan of the image `image` names; returns the image.
    pub async fn start_image_scan(&self, repo: &RepoName, image: &ImageRef) -> Result<ImageRecord> {
        let record = self.existing_image(repo, image).await?;
        if !scannable(&record.media_type, record.artifact_type.as_deref()) {
            return Err(Error::UnsupportedImageType(record.media_type));
        }
        self.meta
            .request_scans(repo.as_str(), std::slice::from_ref(&record.digest), now())
            .await?;
        Ok(record)
    }

    /// The scan of the image `image` names, with its findings if `with_findings`; `None` if
    /// it was never scanned.
    pub async fn image_scan(
        &self,
        repo: &RepoName,
        digest: &str,
        with_findings: bool,
    ) -> Result<Option<ScanReport>> {
        let Some(scan) = self
            .meta
            .image_scan(repo.as_str(), digest, with_findings)
            .await?
        else {
            return Ok(None);
        };
        let findings = match (&scan.findings, scan.status.as_str()) {
            (Some(json), "COMPLETE") => {
                serde_json::from_str(json).map_err(|e| corrupt("stored findings", e))?
            }
            _ => Vec::new(),
        };
        let severity_counts = match (&scan.severity_counts, scan.status.as_str()) {
            (Some(json), "COMPLETE") => {
                serde_json::from_str(json).map_err(|e| corrupt("stored severity counts", e))?
            }
            _ => BTreeMap::new(),
        };
        let in_progress = scan.status == "IN_PROGRESS";
        let mut description = match scan.description {
            Some(description) => description,
            None if in_progress => "The scan is queued or running.".into(),
            None => String::new(),
        };
        let stale = match (&scan.distribution, scan.source_updated_at) {
            (Some(distribution), Some(scanned_with)) if !in_progress => self
                .meta
                .advisory_sources()
                .await?
                .iter()
                .any(|s| s.source == *distribution && s.imported_at > scanned_with),
            _ => false,
        };
        if stale {
            description.push_str(&format!(
                " Advisories for {} were imported after this scan: its findings are stale until \
                 the image is scanned again.",
                scan.distribution.as_deref().unwrap_or_default()
            ));
        }
        let finished = |at: Option<i64>| if in_progress { None } else { at };
        Ok(Some(ScanReport {
            status: scan.status,
            description,
            completed_at: finished(scan.completed_at),
            source_updated_at: finished(scan.source_updated_at),
            severity_counts,
            stale,
            findings,
        }))
    }

    /// The image `image` names, or why there is none as an error.
    pub async fn existing_image(&self, repo: &RepoName, image: &ImageRef) -> Result<ImageRecord> {
        match self.image(repo, image).await? {
            Ok(record) => Ok(record),
            Err(_) => {
                // Tell a missing repository from a missing image, as ECR does.
                match self.meta.get_repository(repo.as_str()).await? {
                    Some(_) => Err(Error::ManifestUnknown),
                    None => Err(Error::NameUnknown),
                }
            }
        }
    }

    /// Queues a new scan of every image scanned before. Returns how many were queued.
    pub async fn rescan_all(&self) -> Result<u64> {
        Ok(self.meta.request_rescans(now()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_ecr_pattern() {
        for good in ["*", "prod/*", "a", "team-a/app_1.x", "*-dev"] {
            assert!(valid_filter(good), "{good}");
        }
        for bad in [
            "",
            "Prod",
            "a//b",
            "/a",
            "a/",
            "a b",
            "-a",
            &"a".repeat(256),
        ] {
            assert!(!valid_filter(bad), "{bad}");
        }
    }

    #[test]
    fn the_first_matching_rule_applies() {
        let configuration: ScanningConfiguration = serde_json::from_str(
            r#"{"scanType": "BASIC", "rules": [
                {"scanFrequency": "SCAN_ON_PUSH",
                 "repositoryFilters": [{"filter": "prod/*", "filterType": "WILDCARD"}]},
                {"scanFrequency": "MANUAL",
                 "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}]}"#,
        )
        .unwrap();
        configuration.validate().unwrap();
        let frequency = |repository| {
            configuration
                .rule_for(repository)
                .map(|rule| rule.scan_frequency.as_str())
        };
        assert_eq!(frequency("prod/web"), Some("SCAN_ON_PUSH"));
        assert_eq!(frequency("dev/web"), Some("MANUAL"));
    }

    #[test]
    fn only_basic_scanning_on_push_or_manual_is_accepted() {
        let invalid = [
            r#"{"scanType": "ENHANCED", "rules": []}"#,
            r#"{"rules": [{"scanFrequency": "CONTINUOUS_SCAN",
                "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}]}"#,
            r#"{"rules": [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": []}]}"#,
            r#"{"rules": [{"scanFrequency": "SCAN_ON_PUSH",
                "repositoryFilters": [{"filter": "*", "filterType": "PREFIX_MATCH"}]}]}"#,
        ];
        for json in invalid {
            let configuration: ScanningConfiguration = serde_json::from_str(json).unwrap();
            assert!(configuration.validate().is_err(), "{json}");
        }
    }

    #[test]
    fn cvss_attributes_are_named_by_their_version() {
        let finding = FindingRecord {
            name: "CVE-1".into(),
            description: String::new(),
            uri: None,
            severity: "HIGH".into(),
            package_name: "openssl".into(),
            package_version: "3.0.11-1".into(),
            cvss: Some(("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N".into(), 7.5)),
        };
        let attributes = finding.attributes();
        assert_eq!(attributes[2], ("CVSS3_SCORE".into(), "7.5".into()));
        assert_eq!(attributes[3].0, "CVSS3_VECTOR");
    }
}
