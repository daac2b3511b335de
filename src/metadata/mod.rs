//! The source of truth for what exists: repositories, blob links, manifests, tags, uploads in
//! progress, principals and the event log. Bytes live in `storage`; this layer never touches
//! them.
//!
//! The interface is split by aggregate: [`UploadStore`] (uploads in progress),
//! [`ContentStore`] (blob links, manifests, tags), [`RepositoryStore`] (repositories as
//! resources: settings, resource tags, the registry's identity), [`ImageStore`] (images as ECR
//! lists and describes them) and [`IdentityStore`] (users, keys, policies, login attempts);
//! [`MetadataStore`] is what the registry needs. One SQL implementation
//! ([`sql::SqlStore`]) serves SQLite and Postgres with the same queries. Every method that
//! writes more than one row runs in its own transaction. `metadata` knows nothing of HTTP or of
//! `storage`.

pub mod sql;

use async_trait::async_trait;

use crate::storage::UploadPart;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The database failed or could not be reached. The message is for logs only.
    #[error("metadata store: {0}")]
    Database(String),
    #[error("metadata store returned a corrupt row: {0}")]
    Corrupt(String),
}

pub type MetaResult<T> = Result<T, MetaError>;

/// Milliseconds since the Unix epoch: portable across both SQL dialects.
pub type Millis = i64;

/// Now, in [`Millis`].
pub fn now_millis() -> Millis {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Millis::try_from(since_epoch.as_millis()).unwrap_or(Millis::MAX)
}

#[derive(Debug, Clone)]
pub struct Upload {
    pub id: String,
    pub repository: String,
    /// Bytes received so far: the offset the next chunk must start at.
    pub size: u64,
    /// Saved SHA-256 midstate after `size` bytes.
    pub hash_state: Vec<u8>,
    /// Staged parts in offset order; their sizes add up to `size`.
    pub parts: Vec<UploadPart>,
}

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
}

/// What a manifest reference points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Keyset pagination: up to `limit` names sorted bytewise, all after `after`.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub limit: u32,
    pub after: Option<&'a str>,
}

/// Which manifest a tag or digest lookup should find.
#[derive(Debug, Clone, Copy)]
pub enum ManifestKey<'a> {
    Tag(&'a str),
    Digest(&'a str),
}

/// Uploads in progress. Names and ids arrive validated.
#[async_trait]
pub trait UploadStore: Send + Sync + 'static {
    /// Records a new, empty upload session for `repository`.
    async fn create_upload(
        &self,
        id: &str,
        repository: &str,
        hash_state: &[u8],
        now: Millis,
    ) -> MetaResult<()>;

    /// The upload row and its parts, read in one statement so that they always agree.
    async fn get_upload(&self, id: &str) -> MetaResult<Option<Upload>>;

    /// Appends `part` to the upload if its size is still `part.offset`, saving the new hash
    /// state. Returns false (and changes nothing) if another chunk got there first or the
    /// upload is gone: the caller then discards the part.
    async fn append_upload_part(
        &self,
        id: &str,
        part: &UploadPart,
        hash_state: &[u8],
        now: Millis,
    ) -> MetaResult<bool>;

    /// Forgets the upload. Returns false if it was already gone.
    async fn delete_upload(&self, id: &str) -> MetaResult<bool>;

    /// Ids of uploads not touched since `idle_since`, oldest first, at most `limit`.
    async fn stale_uploads(&self, idle_since: Millis, limit: u32) -> MetaResult<Vec<String>>;

    /// Turns a finished upload of exactly `size` bytes into a blob linked to its repository,
    /// in one transaction: the upload row goes, the blob and link rows appear. Returns false
    /// (changing nothing) if the upload is gone or no longer `size` bytes long.
    async fn complete_upload(
        &self,
        id: &str,
        digest: &str,
        size: u64,
        now: Millis,
    ) -> MetaResult<bool>;
}

/// Blob links, manifests, tags and listings. Names and digests arrive validated.
#[async_trait]
pub trait ContentStore: Send + Sync + 'static {
    /// Links an already stored blob to `repository` (cross-repository mount). Returns false if
    /// the blob is not linked to `from`.
    async fn mount_blob(
        &self,
        repository: &str,
        from: &str,
        digest: &str,
        now: Millis,
    ) -> MetaResult<bool>;

    /// The size of `digest` if it is linked to `repository`.
    async fn linked_blob(&self, repository: &str, digest: &str) -> MetaResult<Option<u64>>;

    /// Removes the link unless a manifest of the repository references the blob; the bytes
    /// stay in storage (reclaiming them is the storage reconciliation's job).
    async fn unlink_blob(&self, repository: &str, digest: &str, now: Millis)
    -> MetaResult<Removal>;

    /// Stores the manifest (idempotent for the same digest) and points each of `tags` at it,
    /// logging the push and every tag move, in one transaction that also checks that the
    /// repository holds every reference with its declared size, so that a concurrent delete
    /// either happens before (and the manifest is refused) or waits until after (and is
    /// refused in turn). Tags in `protected` may be created but not moved. Returns whether
    /// anything changed: the manifest is new or a tag moved.
    async fn put_manifest(
        &self,
        manifest: &NewManifest,
        tags: &[String],
        protected: &[String],
        now: Millis,
    ) -> MetaResult<Result<bool, RefusedManifest>>;

    async fn get_manifest(
        &self,
        repository: &str,
        key: ManifestKey<'_>,
    ) -> MetaResult<Option<StoredManifest>>;

    /// Records a pull of the manifest: last-pulled time and an event.
    async fn record_pull(&self, repository: &str, digest: &str, now: Millis) -> MetaResult<()>;

    /// Deletes the manifest and every tag that points at it, unless an index of the repository
    /// lists it.
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

/// How the tags of a repository may move (ECR's `imageTagMutability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagMutability {
    #[default]
    Mutable,
    Immutable,
    /// Immutable, except tags matching the exclusion filters.
    ImmutableWithExclusion,
    /// Mutable, except tags matching the exclusion filters.
    MutableWithExclusion,
}

impl TagMutability {
    pub const ALL: [TagMutability; 4] = [
        TagMutability::Mutable,
        TagMutability::Immutable,
        TagMutability::ImmutableWithExclusion,
        TagMutability::MutableWithExclusion,
    ];

    /// ECR's name, which is also what is stored.
    pub fn as_str(self) -> &'static str {
        match self {
            TagMutability::Mutable => "MUTABLE",
            TagMutability::Immutable => "IMMUTABLE",
            TagMutability::ImmutableWithExclusion => "IMMUTABLE_WITH_EXCLUSION",
            TagMutability::MutableWithExclusion => "MUTABLE_WITH_EXCLUSION",
        }
    }

    pub fn parse(name: &str) -> Option<TagMutability> {
        TagMutability::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// A repository's settings, as `CreateRepository` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySettings {
    pub tag_mutability: TagMutability,
    /// Tag patterns (`*` wildcards) the mutability setting makes an exception for.
    pub tag_mutability_exclusions: Vec<String>,
    pub scan_on_push: bool,
    /// `AES256`, `KMS` or `KMS_DSSE`.
    pub encryption_type: String,
    pub kms_key: Option<String>,
}

impl Default for RepositorySettings {
    fn default() -> Self {
        RepositorySettings {
            tag_mutability: TagMutability::Mutable,
            tag_mutability_exclusions: Vec::new(),
            scan_on_push: false,
            encryption_type: "AES256".into(),
            kms_key: None,
        }
    }
}

/// A repository as a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub name: String,
    pub created_at: Millis,
    pub settings: RepositorySettings,
    /// IAM-style resource policy (JSON).
    pub policy: Option<String>,
}

/// A resource tag (ECR's `Tag`): a key and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceTag {
    pub key: String,
    pub value: String,
}

/// The outcome of deleting a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositoryRemoval {
    /// Deleted; this is what it was.
    Removed(Repository),
    NotFound,
    /// It holds images and the delete was not forced.
    NotEmpty,
}

/// The outcome of adding resource tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagging {
    Tagged,
    NotFound,
    /// The repository would have more tags than allowed; nothing changed.
    TooMany,
}

/// Repositories as resources, and the registry's own identity. Names arrive validated.
#[async_trait]
pub trait RepositoryStore: Send + Sync + 'static {
    /// Creates the repository with its resource tags. Returns false (changing nothing) if it
    /// exists.
    async fn create_repository(
        &self,
        repository: &Repository,
        tags: &[ResourceTag],
    ) -> MetaResult<bool>;

    async fn get_repository(&self, name: &str) -> MetaResult<Option<Repository>>;

    /// A page of repositories in bytewise name order.
    async fn list_repository_details(&self, page: Page<'_>) -> MetaResult<Vec<Repository>>;

    /// Deletes the repository with everything in it (images, tags, blob links, uploads in
    /// progress, resource tags), unless it holds images and `force` is false.
    async fn delete_repository(&self, name: &str, force: bool) -> MetaResult<RepositoryRemoval>;

    /// Returns false if there is no such repository.
    async fn set_tag_mutability(
        &self,
        name: &str,
        mutability: TagMutability,
        exclusions: &[String],
    ) -> MetaResult<bool>;

    /// Returns false if there is no such repository.
    async fn set_scan_on_push(&self, name: &str, scan_on_push: bool) -> MetaResult<bool>;

    /// Sets or (with `None`) removes the resource policy of an existing repository. Returns
    /// false if there is no such repository.
    async fn replace_repository_policy(&self, name: &str, policy: Option<&str>)
    -> MetaResult<bool>;

    /// The resource tags in key order, or `None` if there is no such repository.
    async fn resource_tags(&self, name: &str) -> MetaResult<Option<Vec<ResourceTag>>>;

    /// Adds or overwrites resource tags, unless the repository would then have more than
    /// `max`.
    async fn tag_repository(
        &self,
        name: &str,
        tags: &[ResourceTag],
        max: usize,
    ) -> MetaResult<Tagging>;

    /// Removes the resource tags with these keys. Returns false if there is no such
    /// repository.
    async fn untag_repository(&self, name: &str, keys: &[String]) -> MetaResult<bool>;

    /// The registry's 12-digit id. The first caller's `candidate` is stored; everyone gets the
    /// stored one, so every node agrees.
    async fn registry_id(&self, candidate: &str, now: Millis) -> MetaResult<String>;
}

/// Which images a listing takes, by whether tags point at them (ECR's `tagStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagStatus {
    Tagged,
    Untagged,
    #[default]
    Any,
}

/// One entry of an image listing: a tag with its image, or an untagged image alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageIdRecord {
    pub digest: String,
    pub tag: Option<String>,
}

/// An image as ECR describes it: a manifest of the repository with its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub digest: String,
    /// In bytewise order; empty for an untagged image.
    pub tags: Vec<String>,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub subject: Option<String>,
    /// The manifest with everything it references; for an index, the largest of its
    /// children's sizes, as ECR reports it.
    pub size: u64,
    pub pushed_at: Millis,
    pub last_pulled_at: Option<Millis>,
}

/// The outcome of removing a tag from an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untagging {
    /// The tag is gone from `digest`; `image_deleted` when it was the image's last tag, so
    /// that the image went too.
    Untagged {
        digest: String,
        image_deleted: bool,
    },
    NotFound,
    /// The tag is on `digest`, not on the image the caller named; nothing changed.
    OnOtherImage {
        digest: String,
    },
}

/// Images as ECR lists and describes them: a manifest with its tags. Names, digests and tags
/// arrive validated.
#[async_trait]
pub trait ImageStore: Send + Sync + 'static {
    /// Up to `limit` image ids in (digest, tag) order, all after `after`: one per tag, and one
    /// without a tag for each untagged image.
    async fn list_image_ids(
        &self,
        repository: &str,
        status: TagStatus,
        after: Option<&ImageIdRecord>,
        limit: u32,
    ) -> MetaResult<Vec<ImageIdRecord>>;

    /// A page of images in digest order, each with all its tags.
    async fn list_images(
        &self,
        repository: &str,
        status: TagStatus,
        page: Page<'_>,
    ) -> MetaResult<Vec<ImageRecord>>;

    /// The image a tag or digest names.
    async fn get_image(
        &self,
        repository: &str,
        key: ManifestKey<'_>,
    ) -> MetaResult<Option<ImageRecord>>;

    /// Removes `tag`, if it is on `expected` (when given), and deletes its image too when
    /// that was its last tag and no index of the repository lists it, in one transaction
    /// that a concurrent push tagging the image either precedes (and the image stays) or
    /// follows (and stores the image again).
    async fn untag_image(
        &self,
        repository: &str,
        tag: &str,
        expected: Option<&str>,
        now: Millis,
    ) -> MetaResult<Untagging>;
}

/// What the registry may ask of the metadata store.
pub trait MetadataStore: UploadStore + ContentStore + RepositoryStore + ImageStore {}

impl<T: UploadStore + ContentStore + RepositoryStore + ImageStore> MetadataStore for T {}

/// A user as stored: the argon2 hash of the password, never the password.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password_hash: String,
    /// IAM-style identity policy (JSON).
    pub policy: Option<String>,
}

/// An access key of a user, for tools: the id is public, the secret is stored hashed.
#[derive(Debug, Clone)]
pub struct AccessKey {
    pub id: String,
    pub user: String,
    pub secret_hash: String,
    /// The secret itself, which SigV4 needs; `None` for keys made before Wharf spoke SigV4.
    pub secret: Option<String>,
}

/// What access control needs to know about a repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryAccess {
    /// Anyone may pull, without credentials.
    pub public: bool,
    /// IAM-style resource policy (JSON).
    pub policy: Option<String>,
}

/// Login attempts counted against one key in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptWindow {
    pub attempts: u32,
    pub started_at: Millis,
}

/// Principals and access settings, for the `auth` layer and the admin CLI.
#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    /// Creates the user. Returns false (changing nothing) if the name is taken.
    async fn create_user(&self, user: &User, now: Millis) -> MetaResult<bool>;
    /// Creates the user only if there are no users at all (first start). Returns whether it did.
    async fn create_first_user(&self, user: &User, now: Millis) -> MetaResult<bool>;
    async fn get_user(&self, name: &str) -> MetaResult<Option<User>>;
    async fn list_users(&self) -> MetaResult<Vec<String>>;
    /// Deletes the user and its access keys. Returns false if there was no such user.
    async fn delete_user(&self, name: &str) -> MetaResult<bool>;
    /// Returns false if there is no such user.
    async fn set_user_policy(&self, name: &str, policy: Option<&str>) -> MetaResult<bool>;

    async fn create_access_key(&self, key: &AccessKey, now: Millis) -> MetaResult<()>;
    async fn get_access_key(&self, id: &str) -> MetaResult<Option<AccessKey>>;
    async fn list_access_keys(&self, user: &str) -> MetaResult<Vec<String>>;
    async fn delete_access_key(&self, id: &str) -> MetaResult<bool>;

    /// Settings of the repository; the defaults (private, no policy) if it does not exist.
    async fn repository_access(&self, repository: &str) -> MetaResult<RepositoryAccess>;
    /// Sets (or with `None` removes) the resource policy, creating the repository if needed.
    async fn set_repository_policy(
        &self,
        repository: &str,
        policy: Option<&str>,
        now: Millis,
    ) -> MetaResult<()>;
    /// Makes the repository public or private, creating it if needed.
    async fn set_repository_public(
        &self,
        repository: &str,
        public: bool,
        now: Millis,
    ) -> MetaResult<()>;

    /// The registry-wide resource policy, which applies to every repository.
    async fn registry_policy(&self) -> MetaResult<Option<String>>;
    /// Sets or (with `None`) removes the registry policy. The registry's row exists once a
    /// node has started ([`RepositoryStore::registry_id`]).
    async fn set_registry_policy(&self, policy: Option<&str>) -> MetaResult<()>;

    /// The registry's token signing key (PKCS#8). The first caller's `candidate` is stored;
    /// everyone gets the stored one, so every node signs and verifies with the same key.
    async fn signing_key(&self, candidate: &[u8], now: Millis) -> MetaResult<Vec<u8>>;

    /// Counts one login attempt against `key`, atomically, in a window that starts afresh
    /// once it is `window` old, and returns the window as it now stands.
    async fn count_login_attempt(
        &self,
        key: &str,
        now: Millis,
        window: Millis,
    ) -> MetaResult<AttemptWindow>;
    /// Takes back one counted attempt (it succeeded).
    async fn forgive_login_attempt(&self, key: &str) -> MetaResult<()>;
    /// Forgets windows that started before `before`; returns how many.
    async fn purge_login_attempts(&self, before: Millis) -> MetaResult<u64>;
}
