//! Image scanning: the registry's scanning configuration, the vulnerability database (OSV
//! advisories, imported in generations) and the scans of images, which double as their queue.

use async_trait::async_trait;

use super::{MetaResult, Millis};

/// One advisory to store: its OSV record as JSON, under the source (distribution) it came
/// from, and the packages it names there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAdvisory {
    pub source: String,
    pub id: String,
    pub record: String,
    pub packages: Vec<String>,
}

/// A source of the vulnerability database as last imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisorySource {
    pub source: String,
    pub imported_at: Millis,
    pub advisories: u64,
}

/// A scan due to run, as claimed by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    pub repository: String,
    pub digest: String,
    /// When it was requested: a scan requested again meanwhile is a new one.
    pub requested_at: Millis,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanResult {
    /// `COMPLETE`, `FAILED` or `UNSUPPORTED_IMAGE`.
    pub status: String,
    pub description: String,
    /// The source the findings' advisories came from, and when it was imported.
    pub distribution: Option<String>,
    pub source_updated_at: Option<Millis>,
    /// The findings as a JSON array and their counts by severity as a JSON object, for a
    /// `COMPLETE` scan.
    pub findings: Option<String>,
    pub severity_counts: Option<String>,
}

/// An image's scan as last requested or finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageScan {
    /// `IN_PROGRESS` until it ends, then as [`ScanResult::status`].
    pub status: String,
    pub description: Option<String>,
    pub completed_at: Option<Millis>,
    pub distribution: Option<String>,
    pub source_updated_at: Option<Millis>,
    pub findings: Option<String>,
    pub severity_counts: Option<String>,
}

#[async_trait]
pub trait ScanStore: Send + Sync + 'static {
    /// The registry's scanning configuration in ECR's JSON, if one was set.
    async fn scanning_configuration(&self) -> MetaResult<Option<String>>;

    async fn put_scanning_configuration(&self, configuration: &str) -> MetaResult<()>;

    /// Stores advisories under `generation`, where scans do not see them until
    /// [`ScanStore::publish_advisories`].
    async fn store_advisories(&self, generation: i64, advisories: &[NewAdvisory])
    -> MetaResult<()>;

    /// Makes `generation` the current one of each of `sources` (with its count of advisories)
    /// and deletes their other generations, in one transaction.
    async fn publish_advisories(
        &self,
        generation: i64,
        sources: &[(String, u64)],
        now: Millis,
    ) -> MetaResult<()>;

    async fn advisory_sources(&self) -> MetaResult<Vec<AdvisorySource>>;

    /// The current records of `source` that name any of `packages`, each once.
    async fn advisories_naming(&self, source: &str, packages: &[String])
    -> MetaResult<Vec<String>>;

    /// Queues scans of the images `digests` of `repository` that exist; a finished scan keeps
    /// its findings until the new one ends. Returns how many were queued.
    async fn request_scans(
        &self,
        repository: &str,
        digests: &[String],
        now: Millis,
    ) -> MetaResult<u64>;

    /// Queues a new scan of every image scanned before. Returns how many were queued.
    async fn request_rescans(&self, now: Millis) -> MetaResult<u64>;

    /// Claims up to `limit` queued scans no one is working on at `now`, oldest first, until
    /// `until`.
    async fn claim_scans(
        &self,
        now: Millis,
        until: Millis,
        limit: u32,
    ) -> MetaResult<Vec<ScanRequest>>;

    /// Claims the queued scan of one image, if no one is working on it at `now`, until
    /// `until`.
    async fn claim_scan(
        &self,
        repository: &str,
        digest: &str,
        now: Millis,
        until: Millis,
    ) -> MetaResult<Option<ScanRequest>>;

    /// Records the end of a claimed scan.
    async fn finish_scan(
        &self,
        request: &ScanRequest,
        result: &ScanResult,
        now: Millis,
    ) -> MetaResult<()>;

    /// Leaves a claimed scan queued, to be tried again from `retry_at`.
    async fn retry_scan(&self, request: &ScanRequest, retry_at: Millis) -> MetaResult<()>;

    /// The image's scan; `with_findings` false leaves the findings out.
    async fn image_scan(
        &self,
        repository: &str,
        digest: &str,
        with_findings: bool,
    ) -> MetaResult<Option<ImageScan>>;
}
