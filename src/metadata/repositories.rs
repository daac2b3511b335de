//! Repositories as resources (settings, resource policy, resource tags) and the registry's
//! own identity.

use async_trait::async_trait;

use wildmatch::WildMatch;

use super::{MetaResult, Millis, Page};

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

impl RepositorySettings {
    /// Whether these settings keep `tag` from moving to another image once it exists.
    pub fn protects(&self, tag: &str) -> bool {
        let excluded = || {
            self.tag_mutability_exclusions
                .iter()
                .any(|pattern| WildMatch::new(pattern).matches(tag))
        };
        match self.tag_mutability {
            TagMutability::Mutable => false,
            TagMutability::Immutable => true,
            TagMutability::ImmutableWithExclusion => !excluded(),
            TagMutability::MutableWithExclusion => excluded(),
        }
    }
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

/// How ARNs and ECR's answers name this registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryIdentity {
    /// Twelve digits, as an AWS account id.
    pub registry_id: String,
    pub region: String,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusion_filters_reverse_the_repository_setting_for_matching_tags() {
        let settings = |tag_mutability| RepositorySettings {
            tag_mutability,
            tag_mutability_exclusions: vec!["latest".into(), "dev-*".into()],
            ..RepositorySettings::default()
        };
        let cases = [
            (TagMutability::Mutable, "v1", false),
            (TagMutability::Mutable, "latest", false),
            (TagMutability::Immutable, "latest", true),
            (TagMutability::ImmutableWithExclusion, "v1", true),
            (TagMutability::ImmutableWithExclusion, "latest", false),
            (TagMutability::ImmutableWithExclusion, "dev-42", false),
            (TagMutability::ImmutableWithExclusion, "xdev-42", true),
            (TagMutability::MutableWithExclusion, "v1", false),
            (TagMutability::MutableWithExclusion, "dev-1", true),
        ];
        for (mutability, tag, protected) in cases {
            assert_eq!(
                settings(mutability).protects(tag),
                protected,
                "{mutability:?} {tag}"
            );
        }
    }
}
