//! Lifecycle policies as the metadata keeps them: each repository's policy text, its last
//! preview, and what evaluating a policy needs to know about images.

use async_trait::async_trait;

use super::{MetaResult, Millis, Page, Removal};

/// A repository's last lifecycle policy preview: the policy it evaluated and what it found,
/// as the JSON the lifecycle module writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPreview {
    pub policy: String,
    pub results: String,
    pub created_at: Millis,
}

#[async_trait]
pub trait LifecycleStore: Send + Sync + 'static {
    /// The repository's policy text: `None` if the repository does not exist, `Some(None)`
    /// if it has no policy.
    async fn lifecycle_policy(&self, repository: &str) -> MetaResult<Option<Option<String>>>;

    /// Sets (or, with `None`, removes) the repository's policy, and forgets its preview.
    /// Returns false if the repository does not exist.
    async fn set_lifecycle_policy(
        &self,
        repository: &str,
        policy: Option<&str>,
    ) -> MetaResult<bool>;

    /// A page of the repositories that have a policy, with it.
    async fn lifecycle_policies(&self, page: Page<'_>) -> MetaResult<Vec<(String, String)>>;

    /// Keeps `preview` as the repository's last one. Returns false if it does not exist.
    async fn save_preview(&self, repository: &str, preview: &StoredPreview) -> MetaResult<bool>;

    async fn preview(&self, repository: &str) -> MetaResult<Option<StoredPreview>>;

    /// Manifests of the repository that an index of it lists: parts of another image,
    /// which a policy never expires on their own.
    async fn indexed_manifests(&self, repository: &str) -> MetaResult<Vec<String>>;

    /// Deletes the image with its tags as `delete_manifest` does, logging why (`reason`, say
    /// the rule that expired it) with the delete.
    async fn expire_image(
        &self,
        repository: &str,
        digest: &str,
        reason: &str,
        now: Millis,
    ) -> MetaResult<Removal>;
}
