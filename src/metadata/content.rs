//! Blob links, manifests, tags and referrers: the content of repositories.

use async_trait::async_trait;

use super::{MetaResult, Millis, Page};

/// A blob or child manifest a manifest references, with the size its descriptor declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentRef {
    pub digest: String,
    pub size: u64,
}

/// A manifest about to be stored, with everything later features query on.
#[derive(Debug, Clone)]
pub struct NewManifest {
    pub repository: String,
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub subject: Option<String>,
    /// The manifest's annotations as a JSON object, reported by the referrers API.
    pub annotations: Option<String>,
    pub content: Vec<u8>,
    /// The manifest's own size plus every blob and child manifest it references.
    pub total_size: u64,
    /// The blobs (config, layers) it references, which the repository must hold.
    pub blob_references: Vec<ContentRef>,
    /// The child manifests (of an index), which the repository must hold.
    pub manifest_references: Vec<ContentRef>,
    /// Where to copy the image if the push changes anything (a new manifest, a moved tag):
    /// queued in the push's own transaction.
    pub replicate_to: Vec<super::Destination>,
    /// Whether a scan is queued when it is new, in the push's own transaction.
    pub scan_on_push: ScanOnPush,
    /// Set for a manifest cached from a pull-through upstream, at the time it was fetched:
    /// its references are fetched when pulled rather than checked, and its tags are compared
    /// with the upstream again once they are older than the cache's time to live.
    pub upstream_checked_at: Option<Millis>,
}

/// Whether a new manifest is queued for a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOnPush {
    /// Not an image that is scanned.
    Never,
    /// The registry's scanning rules ask for it.
    Always,
    /// If the repository's own setting asks for it.
    IfRepositoryAsks,
}

/// A blob as a repository links it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedBlob {
    pub size: u64,
    /// The object it is kept in, when not under its digest.
    pub storage_key: Option<String>,
    /// When the link was made or last relied on: a collection's grace period counts from here.
    pub linked_at: Millis,
}

/// What a manifest reference points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefKind {
    Blob,
    Manifest,
}

/// Why a manifest was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusedManifest {
    /// The repository does not hold this blob or child manifest.
    Unknown { kind: RefKind, digest: String },
    /// The descriptor's size is not the stored size.
    SizeMismatch {
        kind: RefKind,
        digest: String,
        declared: u64,
        stored: u64,
    },
    /// The tag exists, points elsewhere, and is protected from moving.
    TagProtected { tag: String },
    /// The repository does not exist (or was deleted meanwhile), and the push may not create
    /// it.
    RepositoryUnknown,
}

/// The outcome of removing a blob link or a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Removed,
    NotFound,
    /// Kept, because these manifests of the repository still reference it (at most a few).
    ReferencedBy(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: String,
    pub media_type: String,
    pub content: Vec<u8>,
    /// For a tag cached from a pull-through upstream, when it was last compared with it.
    pub upstream_checked_at: Option<Millis>,
}

/// Pulls of one manifest: how many since the last batch, and when the latest was.
#[derive(Debug, Clone, Copy)]
pub struct Pulls<'a> {
    pub repository: &'a str,
    pub digest: &'a str,
    pub last: Millis,
    pub count: u64,
}

/// A manifest whose `subject` is a given digest, as the referrers API lists it.
#[derive(Debug, Clone)]
pub struct Referrer {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

/// Which manifest a tag or digest lookup should find.
#[derive(Debug, Clone, Copy)]
pub enum ManifestKey<'a> {
    Tag(&'a str),
    Digest(&'a str),
}

/// Blob links, manifests, tags and listings. Names and digests arrive validated.
#[async_trait]
pub trait ContentStore: Send + Sync + 'static {
    /// Links an already stored blob to `repository` (cross-repository mount), creating the
    /// repository if it does not exist and `create_repository`. Returns false if the blob is
    /// not linked to `from`, or `repository` does not exist and may not be created.
    async fn mount_blob(
        &self,
        repository: &str,
        from: &str,
        digest: &str,
        create_repository: bool,
        now: Millis,
    ) -> MetaResult<bool>;

    /// The blob `digest` if it is linked to `repository`.
    async fn linked_blob(&self, repository: &str, digest: &str) -> MetaResult<Option<LinkedBlob>>;

    /// Marks the link as relied on at `now` (a client skips an upload on the strength of it),
    /// so that a collection leaves it alone for its grace period from then.
    async fn refresh_link(&self, repository: &str, digest: &str, now: Millis) -> MetaResult<()>;

    /// Removes the link unless a manifest of the repository references the blob; the bytes
    /// stay in storage until a garbage collection finds no repository links them.
    async fn unlink_blob(&self, repository: &str, digest: &str, now: Millis)
    -> MetaResult<Removal>;

    /// Stores the manifest (idempotent for the same digest) and points each of `tags` at it,
    /// logging the push and every tag move, in one transaction that also checks that the
    /// repository holds every reference with its declared size, so that a concurrent delete
    /// either happens before (and the manifest is refused) or waits until after (and is
    /// refused in turn). Tags the repository's mutability setting protects may be created but
    /// not moved. A repository that does not exist is created if `create_repository`, else the
    /// manifest is refused. Returns whether anything changed: the manifest is new or a tag
    /// moved.
    async fn put_manifest(
        &self,
        manifest: &NewManifest,
        tags: &[String],
        create_repository: bool,
        now: Millis,
    ) -> MetaResult<Result<bool, RefusedManifest>>;

    async fn get_manifest(
        &self,
        repository: &str,
        key: ManifestKey<'_>,
    ) -> MetaResult<Option<StoredManifest>>;

    /// The digests `tags` pointed at before their latest move to `digest` (`None` for a tag
    /// that was new then), from the event log, in the order of `tags`.
    async fn tag_moves(
        &self,
        repository: &str,
        digest: &str,
        tags: &[String],
    ) -> MetaResult<Vec<Option<String>>>;

    /// Records pulls of manifests in one transaction: each manifest's last-pulled time moves
    /// forward (never back), and each entry becomes one event.
    async fn record_pulls(&self, pulls: &[Pulls<'_>]) -> MetaResult<()>;

    /// Deletes the manifest and every tag that points at it, unless an index of the repository
    /// lists it. The blobs it referenced count as relied on now.
    async fn delete_manifest(
        &self,
        repository: &str,
        digest: &str,
        now: Millis,
    ) -> MetaResult<Removal>;

    /// Deletes one tag, leaving its manifest. Returns false if the tag did not exist.
    async fn delete_tag(&self, repository: &str, tag: &str, now: Millis) -> MetaResult<bool>;

    /// A page of the repository's tags, or `None` if the repository does not exist.
    async fn list_tags(&self, repository: &str, page: Page<'_>) -> MetaResult<Option<Vec<String>>>;

    async fn list_repositories(&self, page: Page<'_>) -> MetaResult<Vec<String>>;

    /// Manifests of `repository` whose subject is `subject`, optionally of one artifact type.
    async fn referrers(
        &self,
        repository: &str,
        subject: &str,
        artifact_type: Option<&str>,
    ) -> MetaResult<Vec<Referrer>>;
}
