//! Repositories as resources: creation with settings, description, deletion, tag mutability,
//! scanning settings, resource policies and resource tags.

use super::{Error, MAX_PAGE, Registry, Result, now, split_page};
use crate::metadata::{
    Page, Repository, RepositoryRemoval, RepositorySettings, ResourceTag, TagMutability, Tagging,
};
use crate::oci::RepoName;

/// Most resource tags a repository may carry, as in ECR.
pub const MAX_RESOURCE_TAGS: usize = 50;

impl Registry {
    /// Creates an empty repository.
    pub async fn create_repository(
        &self,
        name: &RepoName,
        settings: RepositorySettings,
        tags: &[ResourceTag],
    ) -> Result<Repository> {
        if tags.len() > MAX_RESOURCE_TAGS {
            return Err(Error::TooManyTags);
        }
        let repository = Repository {
            name: name.to_string(),
            created_at: now(),
            settings,
            policy: None,
        };
        if !self.meta.create_repository(&repository, tags).await? {
            return Err(Error::RepositoryAlreadyExists);
        }
        Ok(repository)
    }

    /// The repository, or [`Error::NameUnknown`].
    pub async fn repository(&self, name: &RepoName) -> Result<Repository> {
        self.meta
            .get_repository(name.as_str())
            .await?
            .ok_or(Error::NameUnknown)
    }

    /// Repositories in name order after `after`, at most `limit`, and whether more follow.
    pub async fn describe_repositories(
        &self,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<Repository>, bool)> {
        let limit = limit.min(MAX_PAGE);
        let page = Page {
            limit: limit + 1,
            after,
        };
        let repositories = self.meta.list_repository_details(page).await?;
        Ok(split_page(repositories, limit))
    }

    /// Deletes the repository; one that holds images only when `force`d.
    pub async fn delete_repository(&self, name: &RepoName, force: bool) -> Result<Repository> {
        match self.meta.delete_repository(name.as_str(), force).await? {
            RepositoryRemoval::Removed(repository) => Ok(repository),
            RepositoryRemoval::NotFound => Err(Error::NameUnknown),
            RepositoryRemoval::NotEmpty => Err(Error::RepositoryNotEmpty),
        }
    }

    pub async fn set_tag_mutability(
        &self,
        name: &RepoName,
        mutability: TagMutability,
        exclusions: &[String],
    ) -> Result<()> {
        let found = self
            .meta
            .set_tag_mutability(name.as_str(), mutability, exclusions)
            .await?;
        found.then_some(()).ok_or(Error::NameUnknown)
    }

    pub async fn set_scan_on_push(&self, name: &RepoName, scan_on_push: bool) -> Result<()> {
        let found = self
            .meta
            .set_scan_on_push(name.as_str(), scan_on_push)
            .await?;
        found.then_some(()).ok_or(Error::NameUnknown)
    }

    /// Sets or (with `None`) removes the resource policy, already validated by the caller.
    pub async fn set_repository_policy(&self, name: &RepoName, policy: Option<&str>) -> Result<()> {
        let found = self
            .meta
            .replace_repository_policy(name.as_str(), policy)
            .await?;
        found.then_some(()).ok_or(Error::NameUnknown)
    }

    pub async fn resource_tags(&self, name: &RepoName) -> Result<Vec<ResourceTag>> {
        self.meta
            .resource_tags(name.as_str())
            .await?
            .ok_or(Error::NameUnknown)
    }

    pub async fn tag_repository(&self, name: &RepoName, tags: &[ResourceTag]) -> Result<()> {
        match self
            .meta
            .tag_repository(name.as_str(), tags, MAX_RESOURCE_TAGS)
            .await?
        {
            Tagging::Tagged => Ok(()),
            Tagging::NotFound => Err(Error::NameUnknown),
            Tagging::TooMany => Err(Error::TooManyTags),
        }
    }

    pub async fn untag_repository(&self, name: &RepoName, keys: &[String]) -> Result<()> {
        let found = self.meta.untag_repository(name.as_str(), keys).await?;
        found.then_some(()).ok_or(Error::NameUnknown)
    }

    /// Refuses to go on in a repository that does not exist when pushes may not create one.
    pub(super) async fn check_may_push(&self, name: &RepoName) -> Result<()> {
        if self.settings.create_on_push {
            return Ok(());
        }
        self.repository(name).await.map(|_| ())
    }
}
