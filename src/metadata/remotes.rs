//! Remote registries: where replication copies images to.

use async_trait::async_trait;

use super::{MetaResult, Millis};

/// A remote registry as stored, credentials included.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteRecord {
    /// Twelve digits, as ECR names a replication destination's account.
    pub registry_id: String,
    pub region: String,
    /// `http(s)://host[:port]`.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub created_at: Millis,
}

impl std::fmt::Debug for RemoteRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteRecord")
            .field("registry_id", &self.registry_id)
            .field("region", &self.region)
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

#[async_trait]
pub trait RemoteStore: Send + Sync + 'static {
    /// Records `remote`, or replaces the one of the same registry id and region. Returns
    /// whether one was replaced.
    async fn put_remote(&self, remote: &RemoteRecord) -> MetaResult<bool>;

    /// Every remote, by registry id and region.
    async fn list_remotes(&self) -> MetaResult<Vec<RemoteRecord>>;

    async fn get_remote(&self, registry_id: &str, region: &str)
    -> MetaResult<Option<RemoteRecord>>;

    /// Forgets the remote. Returns false if there was none.
    async fn delete_remote(&self, registry_id: &str, region: &str) -> MetaResult<bool>;
}
