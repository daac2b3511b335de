//! Works the scan queue: claims requested scans, reads each image's layers from the blob
//! store (an index's platform images one by one), matches what they install against the
//! imported advisories, and records the findings. A scan that fails is tried again after a
//! while, and recorded FAILED after `MAX_ATTEMPTS`.

use std::collections::{BTreeMap, HashSet};
use std::io;

use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::super::{Error, Registry, Result, now};
use super::{FindingRecord, scannable};
use crate::metadata::{ManifestKey, MetaError, Millis, ScanRequest, ScanResult};
use crate::oci::media_types;
use crate::oci::{Digest, RepoName};
use crate::scan::advisories::{Advisory, Finding};
use crate::scan::image::{Reading, inventory};
use crate::scan::layers::{LayerError, read_files};
use crate::storage::{BlobLocation, ByteStream, StorageError};

/// Scans claimed at a time.
const BATCH: u32 = 4;
/// How long a claim lasts: longer than any scan should take, so that a node that dies
/// mid-scan leaves it to another after this.
const CLAIM: Millis = 15 * 60 * 1000;
/// Attempts before a scan is recorded FAILED.
const MAX_ATTEMPTS: u32 = 3;
/// The wait after the first failure, doubled after each.
const FIRST_BACKOFF: Millis = 30_000;

/// What a run of the queue did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanRun {
    /// Scans by the status they ended with.
    pub ended: BTreeMap<String, u64>,
    /// Scans left queued to be tried again.
    pub retried: u64,
}

/// How scanning one image (not an index) ended.
enum Outcome {
    Scanned {
        findings: Vec<Finding>,
        distribution: &'static str,
        source_updated_at: Millis,
    },
    /// Not an image of a distribution that is scanned: why.
    Unsupported(String),
    /// Of a distribution whose advisories were never imported.
    NoAdvisories(&'static str),
    /// The image itself is broken (a corrupt layer): why.
    Failed(String),
}

#[derive(Deserialize)]
struct ImageManifest {
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct IndexManifest {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    artifact_type: Option<String>,
}

impl Registry {
    /// Runs queued scans until none is left that another worker does not hold. `progress` sees
    /// the tally after each scan.
    pub async fn run_scans(&self, progress: &(dyn Fn(&ScanRun) + Sync)) -> Result<ScanRun> {
        let mut run = ScanRun::default();
        loop {
            let claimed = self.meta.claim_scans(now(), now() + CLAIM, BATCH).await?;
            if claimed.is_empty() {
                return Ok(run);
            }
            for request in claimed {
                match self.scan(&request).await {
                    Ok(Some(result)) => {
                        self.meta.finish_scan(&request, &result, now()).await?;
                        self.audit_scan(&request, &result);
                        *run.ended.entry(result.status).or_default() += 1;
                    }
                    // The image was deleted meanwhile, and its scan with it.
                    Ok(None) => {}
                    Err(e) if request.attempts + 1 < MAX_ATTEMPTS => {
                        tracing::warn!(repository = %request.repository,
                            digest = %request.digest, error = %e, "scan failed; will retry");
                        let backoff = FIRST_BACKOFF << request.attempts;
                        self.meta.retry_scan(&request, now() + backoff).await?;
                        run.retried += 1;
                    }
                    Err(e) => {
                        tracing::warn!(repository = %request.repository,
                            digest = %request.digest, error = %e, "scan failed");
                        let result = failed(format!("The scan failed: {e}"));
                        self.meta.finish_scan(&request, &result, now()).await?;
                        *run.ended.entry(result.status).or_default() += 1;
                    }
                }
                progress(&run);
            }
        }
    }

    /// Scans the image `image` names here and now, and records the scan as a worker would; a
    /// scan that fails stays queued for the workers. Returns its digest.
    pub async fn scan_now(
        &self,
        repo: &RepoName,
        image: &super::super::ImageRef,
    ) -> Result<String> {
        let record = self.start_image_scan(repo, image).await?;
        // The request just made: a worker that takes it too finds it done, or finishes first.
        let claimed = self
            .meta
            .claim_scan(repo.as_str(), &record.digest, now(), now() + CLAIM)
            .await?;
        let Some(request) = claimed else {
            return Ok(record.digest);
        };
        match self.scan(&request).await {
            Ok(Some(result)) => {
                self.meta.finish_scan(&request, &result, now()).await?;
                self.audit_scan(&request, &result);
            }
            Ok(None) => {}
            Err(e) => {
                // Left to the servers' workers, which try again, rather than held here.
                self.meta.retry_scan(&request, now()).await?;
                return Err(e);
            }
        }
        Ok(record.digest)
    }

    fn audit_scan(&self, request: &ScanRequest, result: &ScanResult) {
        let counts: serde_json::Value = result
            .severity_counts
            .as_deref()
            .and_then(|counts| serde_json::from_str(counts).ok())
            .unwrap_or_default();
        let details = serde_json::json!({
            "imageDigest": request.digest,
            "scanStatus": result.status,
            "findingSeverityCounts": counts,
        });
        self.audit_own("ImageScan", Some(&request.repository), details);
    }

    /// Scans the image a request names: each platform image of an index, findings merged.
    /// `None` if the image is gone.
    async fn scan(&self, request: &ScanRequest) -> Result<Option<ScanResult>> {
        let repo: RepoName = request
            .repository
            .parse()
            .map_err(|e| Error::Meta(MetaError::Corrupt(format!("repository name: {e}"))))?;
        let key = ManifestKey::Digest(&request.digest);
        let Some(stored) = self.meta.get_manifest(repo.as_str(), key).await? else {
            return Ok(None);
        };
        let outcomes = match stored.media_type.as_str() {
            media_types::OCI_INDEX | media_types::DOCKER_MANIFEST_LIST => {
                let index: IndexManifest = serde_json::from_slice(&stored.content)
                    .map_err(|e| Error::ManifestInvalid(e.to_string()))?;
                let mut outcomes = Vec::new();
                for child in &index.manifests {
                    // Attestations and other artifacts in an index are no platform image.
                    if !scannable(&child.media_type, child.artifact_type.as_deref())
                        || is_index(&child.media_type)
                    {
                        continue;
                    }
                    let key = ManifestKey::Digest(&child.digest);
                    if let Some(image) = self.meta.get_manifest(repo.as_str(), key).await? {
                        outcomes.push(self.scan_image(&repo, &image.content).await?);
                    }
                }
                outcomes
            }
            _ => vec![self.scan_image(&repo, &stored.content).await?],
        };
        Ok(Some(result_of(outcomes)))
    }

    /// Scans one image manifest's layers.
    async fn scan_image(&self, repo: &RepoName, manifest: &[u8]) -> Result<Outcome> {
        let manifest: ImageManifest =
            serde_json::from_slice(manifest).map_err(|e| Error::ManifestInvalid(e.to_string()))?;
        let mut layers = Vec::new();
        for layer in manifest.layers.iter().filter(|layer| layer.urls.is_empty()) {
            if !layer.media_type.contains("tar") {
                return Ok(Outcome::Unsupported(format!(
                    "A layer of media type {} is not a filesystem layer.",
                    layer.media_type
                )));
            }
            let digest: Digest = layer
                .digest
                .parse()
                .map_err(|e| Error::ManifestInvalid(format!("layer digest: {e}")))?;
            layers.push(self.lazy_layer(repo.clone(), digest));
        }
        let files = match read_files(layers).await {
            Ok(files) => files,
            Err(LayerError::Blob { source, .. }) => {
                return Err(Error::Storage(StorageError::Io(source)));
            }
            Err(e) => return Ok(Outcome::Failed(e.to_string())),
        };
        let inventory = match inventory(&files).await {
            Ok(Reading::Read(inventory)) => inventory,
            Ok(Reading::Unsupported(why)) => return Ok(Outcome::Unsupported(why)),
            Err(e) => return Ok(Outcome::Failed(e.to_string())),
        };
        let sources = self.meta.advisory_sources().await?;
        let Some(source) = sources
            .iter()
            .find(|source| source.source == inventory.distribution)
        else {
            return Ok(Outcome::NoAdvisories(inventory.distribution));
        };
        let mut names: Vec<String> = inventory
            .packages
            .iter()
            .flat_map(|p| [p.name.clone(), p.source.clone()])
            .collect();
        names.sort();
        names.dedup();
        let records = self
            .meta
            .advisories_naming(inventory.distribution, &names)
            .await?;
        let mut findings = Vec::new();
        for record in records {
            let advisory: Advisory = serde_json::from_str(&record)
                .map_err(|e| Error::Meta(MetaError::Corrupt(format!("stored advisory: {e}"))))?;
            findings.extend(advisory.findings(&inventory.os, &inventory.packages));
        }
        Ok(Outcome::Scanned {
            findings,
            distribution: inventory.distribution,
            source_updated_at: source.imported_at,
        })
    }

    /// The bytes of a layer, opened only when first read: layers are read one after another.
    fn lazy_layer(&self, repo: RepoName, digest: Digest) -> ByteStream {
        let registry = self.clone();
        let open = async move { registry.layer_bytes(&repo, &digest).await };
        Box::pin(futures::stream::once(open).try_flatten())
    }

    async fn layer_bytes(&self, repo: &RepoName, digest: &Digest) -> io::Result<ByteStream> {
        let linked = self
            .meta
            .linked_blob(repo.as_str(), &digest.to_string())
            .await
            .map_err(io::Error::other)?;
        let Some(linked) = linked else {
            // A layer of an image cached from an upstream that no one has pulled yet.
            return match self.blob_through_cache(repo, digest, None).await {
                Ok(Some(super::super::BlobContent::Bytes { body, .. })) => Ok(body),
                Ok(_) => Err(io::Error::other(format!("layer {digest} is not stored"))),
                Err(e) => Err(io::Error::other(e)),
            };
        };
        let location = BlobLocation {
            digest,
            key: linked.storage_key.as_deref(),
        };
        let body = self.blobs.get(location, None).await.map_err(|e| match e {
            StorageError::Io(e) => e,
            other => io::Error::other(other),
        })?;
        Ok(body.boxed())
    }
}

fn is_index(media_type: &str) -> bool {
    matches!(
        media_type,
        media_types::OCI_INDEX | media_types::DOCKER_MANIFEST_LIST
    )
}

fn failed(description: String) -> ScanResult {
    ScanResult {
        status: "FAILED".into(),
        description,
        distribution: None,
        source_updated_at: None,
        findings: None,
        severity_counts: None,
    }
}

/// An image's scan from the outcomes of its platform images (one for a plain image): the
/// findings of all that were scanned, else why none was.
fn result_of(outcomes: Vec<Outcome>) -> ScanResult {
    let mut findings = Vec::new();
    let mut source_updated_at = None;
    let mut distribution = None;
    let mut unscanned = None;
    for outcome in outcomes {
        match outcome {
            Outcome::Scanned {
                findings: found,
                distribution: of,
                source_updated_at: at,
            } => {
                findings.extend(found);
                source_updated_at = source_updated_at.max(Some(at));
                distribution.get_or_insert(of);
            }
            // A broken platform image fails the scan, before one merely unsupported.
            Outcome::Failed(why) => unscanned = Some(failed(format!("The scan failed: {why}"))),
            Outcome::NoAdvisories(distribution) => {
                if unscanned.as_ref().is_none_or(|u| u.status != "FAILED") {
                    unscanned = Some(ScanResult {
                        status: "FINDINGS_UNAVAILABLE".into(),
                        description: format!(
                            "No advisories for {distribution} have been imported: run \
                             `wharf vulndb import`, then scan again."
                        ),
                        ..failed(String::new())
                    });
                }
            }
            Outcome::Unsupported(why) => {
                if unscanned.is_none() {
                    unscanned = Some(ScanResult {
                        status: "UNSUPPORTED_IMAGE".into(),
                        description: why,
                        ..failed(String::new())
                    });
                }
            }
        }
    }
    let Some(source_updated_at) = source_updated_at else {
        return unscanned.unwrap_or_else(|| ScanResult {
            status: "UNSUPPORTED_IMAGE".into(),
            description: "The index lists no platform image.".into(),
            ..failed(String::new())
        });
    };
    if let Some(failure) = unscanned.filter(|u| u.status == "FAILED") {
        return failure;
    }
    // Most severe first; one finding per name and package, the most severe of its advisories.
    findings.sort_by(|a, b| {
        (
            a.assessment.severity,
            &a.name,
            &a.package_name,
            &a.package_version,
        )
            .cmp(&(
                b.assessment.severity,
                &b.name,
                &b.package_name,
                &b.package_version,
            ))
    });
    let mut seen = HashSet::new();
    findings.retain(|f| {
        seen.insert((
            f.name.clone(),
            f.package_name.clone(),
            f.package_version.clone(),
        ))
    });
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let records: Vec<FindingRecord> = findings
        .into_iter()
        .map(|finding| {
            let severity = finding.assessment.severity.as_str();
            *counts.entry(severity).or_default() += 1;
            FindingRecord {
                name: finding.name,
                description: finding.description,
                uri: finding.uri,
                severity: severity.to_string(),
                package_name: finding.package_name,
                package_version: finding.package_version,
                cvss: finding.assessment.cvss,
            }
        })
        .collect();
    ScanResult {
        status: "COMPLETE".into(),
        description: "The scan was completed successfully.".into(),
        distribution: distribution.map(str::to_string),
        source_updated_at: Some(source_updated_at),
        findings: Some(serde_json::to_string(&records).expect("findings serialize")),
        severity_counts: Some(serde_json::to_string(&counts).expect("counts serialize")),
    }
}
