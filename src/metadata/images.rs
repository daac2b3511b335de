//! Images as ECR lists and describes them: a manifest of a repository with its tags.

use async_trait::async_trait;

use super::{ManifestKey, MetaResult, Millis, Page};

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
    /// The tag is gone from `digest` (and the image too, when that was its last tag).
    Untagged {
        digest: String,
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
