//! The registry's rules, independent of HTTP and of any particular backend: digest
//! verification, repository links, manifest validation, tags and pagination.
//!
//! Dependency direction: `http → registry → {storage, metadata}`. This module speaks in
//! `oci` types and [`ByteStream`]s; it never sees axum or sqlx.

mod audit;
mod blobs;
mod clients;
mod collection;
mod health;
mod images;
mod lifecycle;
mod manifests;
mod pull_through;
mod pulls;
mod reconciliation;
mod replication;
mod repositories;
mod scanning;
mod uploads;
mod webhooks;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use audit::{
    AuditLog, FLUSH_INTERVAL as AUDIT_FLUSH_INTERVAL, MAX_AUDIT_PAGE, audit_record, cloudtrail,
    cursor_token, parse_cursor_token, parse_time,
};
pub use blobs::{BlobContent, ByteRange};
pub use collection::{Collection, CollectionStep};
pub use images::{ImageMiss, ImageRef};
pub use lifecycle::{LifecycleRun, PreviewResult};
pub use manifests::{ManifestPushed, Referrers};
pub use pull_through::{
    credential_arn as pull_through_credential_arn, normalize_upstream as normalize_upstream_url,
};
pub use pulls::FLUSH_INTERVAL as PULL_FLUSH_INTERVAL;
use pulls::PullLog;
pub use reconciliation::{StorageReport, StorageStep};
pub use replication::{
    Backfill, ReplicationConfiguration, ReplicationDestination, ReplicationRule, RepositoryFilter,
    remote_secret_purpose,
};
pub use repositories::MAX_RESOURCE_TAGS;
pub use scanning::{
    FindingRecord, ImportSummary, RepositoryScanning, ScanReport, ScanRun, ScanningConfiguration,
    ScanningFilter, ScanningRule,
};
pub use uploads::{ChunkRange, MountOutcome, UploadStatus};
pub use webhooks::{EVENT_KINDS, NewWebhook, signature as webhook_signature};

use crate::metadata::{MetaError, MetadataStore, Millis, now_millis as now};
use crate::oci::Digest;
use crate::secrets::SecretsKey;
use crate::storage::{BlobStore, ByteStream, StorageError};

/// Largest manifest accepted; the spec asks registries to take at least 4 MiB.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Largest page a tag or catalog listing returns, whatever `n` asks for.
pub const MAX_PAGE: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("blob unknown to registry")]
    BlobUnknown,
    #[error("blob is referenced by manifests of this repository: {}", .manifests.join(", "))]
    BlobReferenced { manifests: Vec<String> },
    #[error("blob upload unknown to registry")]
    UploadUnknown,
    /// A chunk that does not start where the upload ends. `size` is what the server has.
    #[error("chunk out of order: upload is at offset {size}")]
    OffsetMismatch { size: u64 },
    #[error("invalid upload request: {0}")]
    UploadInvalid(String),
    #[error("provided digest did not match uploaded content: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("range not satisfiable for a blob of {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest exceeds {MAX_MANIFEST_BYTES} bytes")]
    ManifestTooLarge,
    #[error("manifest references unknown {kind} {digest}")]
    ManifestBlobUnknown { kind: &'static str, digest: String },
    #[error("manifest unknown to registry")]
    ManifestUnknown,
    /// ECR calls this failure `ImageReferencedByManifestList`.
    #[error("manifest is listed by indexes of this repository: {}", .indexes.join(", "))]
    ManifestReferenced { indexes: Vec<String> },
    #[error("manifest is {media_type}, which the Accept header does not allow")]
    ManifestNotAcceptable { media_type: String },
    #[error("repository name not known to registry")]
    NameUnknown,
    #[error("the repository already exists")]
    RepositoryAlreadyExists,
    #[error("the repository contains images; delete them first or force the delete")]
    RepositoryNotEmpty,
    #[error("a repository may carry at most {MAX_RESOURCE_TAGS} resource tags")]
    TooManyTags,
    #[error("invalid lifecycle policy: {0}")]
    LifecyclePolicyInvalid(String),
    #[error("the repository has no lifecycle policy")]
    LifecyclePolicyNotFound,
    #[error("no lifecycle policy preview was started for the repository")]
    LifecyclePreviewNotFound,
    /// The tag exists and the repository's mutability setting keeps it where it is.
    #[error(
        "The image tag '{tag}' already exists in the '{repository}' repository and cannot be \
         overwritten because the repository is immutable."
    )]
    TagImmutable { tag: String, repository: String },
    #[error("invalid replication configuration: {0}")]
    InvalidReplication(String),
    #[error("invalid pull-through cache rule: {0}")]
    InvalidPullThroughRule(String),
    #[error("a pull-through cache rule with the prefix '{0}' already exists")]
    PullThroughRuleExists(String),
    #[error("no pull-through cache rule has the prefix '{0}'")]
    PullThroughRuleNotFound(String),
    #[error("a registry has at most {0} pull-through cache rules")]
    TooManyPullThroughRules(usize),
    #[error("invalid webhook: {0}")]
    InvalidWebhook(String),
    #[error("invalid scanning configuration: {0}")]
    InvalidScanning(String),
    /// A scan was asked of a manifest that is not a container image (an artifact).
    #[error("images of media type {0} cannot be scanned: only container images and indexes can")]
    UnsupportedImageType(String),
    /// The vulnerability database could not be imported from what it was given.
    #[error("cannot import advisories: {0}")]
    AdvisoryImport(String),
    #[error("no upstream credential is stored as {0}")]
    CredentialNotFound(String),
    /// The upstream of a pull-through cache failed to provide what was pulled.
    #[error("upstream registry {0}")]
    Upstream(#[from] crate::remote::RemoteError),
    /// Reading the request body failed: the client went away or sent a malformed body.
    #[error("request body: {0}")]
    Body(std::io::Error),
    #[error(transparent)]
    Storage(StorageError),
    #[error(transparent)]
    Meta(#[from] MetaError),
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Body(e) => Error::Body(e),
            other => Error::Storage(other),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Registry-wide settings the domain rules need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Uploads idle longer than this are aborted and their staged bytes freed.
    pub upload_idle_timeout: Duration,
    /// Whether a push into a repository that does not exist creates it.
    pub create_on_push: bool,
    /// How often lifecycle policies are applied on their own; zero for never.
    pub lifecycle_interval: Duration,
    /// How often garbage is collected on its own; zero for never.
    pub gc_interval: Duration,
    /// How often the replication queue is worked; zero for never.
    pub replication_interval: Duration,
    /// How often the scan queue is worked; zero for never.
    pub scan_interval: Duration,
    /// How often webhook deliveries are sent; zero for never.
    pub webhook_interval: Duration,
    /// How long a blob stays safe from collection after it was uploaded or last relied on.
    pub gc_grace: Duration,
    /// How long audit records are kept.
    pub audit_retention: Duration,
    /// How long a tag cached from a pull-through upstream is served before it is compared with
    /// the upstream again.
    pub pull_through_ttl: Duration,
    /// Seals the passwords kept for other registries (see [`crate::secrets`]).
    pub secrets_key: Option<Arc<SecretsKey>>,
}

#[derive(Clone)]
pub struct Registry {
    blobs: Arc<dyn BlobStore>,
    meta: Arc<dyn MetadataStore>,
    settings: Settings,
    pulls: Arc<PullLog>,
    upstreams: Arc<pull_through::Upstreams>,
    clients: Arc<clients::RemoteClients>,
    audit: Arc<AuditLog>,
}

impl Registry {
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        meta: Arc<dyn MetadataStore>,
        settings: Settings,
    ) -> Self {
        Registry {
            blobs,
            meta,
            settings,
            pulls: Arc::default(),
            upstreams: Arc::default(),
            clients: Arc::default(),
            audit: Arc::default(),
        }
    }

    /// This registry, but refusing pushes into repositories that do not exist whatever
    /// `create_on_push` says: for front doors where only an explicit create makes one.
    pub fn never_creating_repositories(&self) -> Registry {
        Registry {
            settings: Settings {
                create_on_push: false,
                ..self.settings.clone()
            },
            ..self.clone()
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Writes the pulls this node has gathered (see [`pulls`]).
    pub async fn flush_pulls(&self) -> Result<()> {
        Ok(self.pulls.flush(&*self.meta).await?)
    }

    /// Takes the background job lease `name` for `holder` until `until`, if it is free at
    /// `now` (or already `holder`'s). Returns whether `holder` holds it.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Millis,
        until: Millis,
    ) -> Result<bool> {
        Ok(self.meta.acquire_lease(name, holder, now, until).await?)
    }

    /// Aborts uploads idle past the timeout and frees their storage, then frees staged bytes
    /// left without an upload (a node died between finishing or cancelling an upload and
    /// clearing its staging area, or a chunk landed after its upload ended). Returns how many
    /// uploads and orphaned staging areas it freed. Any node may run it: rows are deleted
    /// first, so only one node frees each upload, and an orphan never gets its row back.
    pub async fn purge_stale_uploads(&self) -> Result<usize> {
        let idle = Millis::try_from(self.settings.upload_idle_timeout.as_millis()).unwrap_or(0);
        let stale = self.meta.stale_uploads(now() - idle, 1000).await?;
        let mut purged = 0;
        for id in stale {
            if self.meta.delete_upload(&id).await? {
                self.free_staging(&id).await?;
                purged += 1;
            }
        }
        let idle_since = SystemTime::now()
            .checked_sub(self.settings.upload_idle_timeout)
            .unwrap_or(UNIX_EPOCH);
        for staged in self.blobs.staged_uploads().await? {
            if staged.last_write <= idle_since
                && self.meta.get_upload(&staged.upload).await?.is_none()
            {
                self.free_staging(&staged.upload).await?;
                purged += 1;
            }
        }
        Ok(purged)
    }
}

/// Trims a page fetched with one extra row, reporting whether that row existed.
fn split_page<T>(mut items: Vec<T>, limit: u32) -> (Vec<T>, bool) {
    let more = limit > 0 && items.len() > limit as usize;
    items.truncate(limit as usize);
    (items, more)
}

/// Collects a small body (a manifest) into memory, refusing more than `limit` bytes.
async fn collect_limited(mut body: ByteStream, limit: usize) -> Result<Vec<u8>> {
    use futures::StreamExt;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(Error::Body)?;
        if bytes.len() + chunk.len() > limit {
            return Err(Error::ManifestTooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
