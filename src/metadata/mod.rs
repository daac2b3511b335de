//! The source of truth for what exists: repositories, blob links, manifests, tags, uploads in
//! progress, principals and the event log. Bytes live in `storage`; this layer never touches
//! them.
//!
//! The interface is split by aggregate, one file each: [`UploadStore`] (uploads in progress),
//! [`ContentStore`] (blob links, manifests, tags), [`RepositoryStore`] (repositories as
//! resources: settings, resource tags, the registry's identity), [`ImageStore`] (images as ECR
//! lists and describes them), [`IdentityStore`] (users, keys, policies, login attempts),
//! [`LifecycleStore`] (lifecycle policies and previews) and [`CollectionStore`] (garbage
//! collection, storage reconciliation, leases for background work), and one each for remotes,
//! replication, pull-through caches, scanning ([`ScanStore`]), health ([`HealthStore`]), the audit trail
//! ([`AuditStore`]) and webhooks ([`WebhookStore`]);
//! [`MetadataStore`] is what the registry needs. One SQL implementation, split alike
//! ([`sql::SqlStore`]) serves SQLite and Postgres with the same queries. Every method that
//! writes more than one row runs in its own transaction. `metadata` knows nothing of HTTP or of
//! `storage`.

mod audit;
mod collection;
mod content;
mod health;
mod identity;
mod images;
mod lifecycle;
mod pull_through;
mod remotes;
mod replication;
mod repositories;
mod scans;
pub mod sql;
mod uploads;
mod webhooks;

pub use audit::*;
pub use collection::*;
pub use content::*;
pub use health::*;
pub use identity::*;
pub use images::*;
pub use lifecycle::*;
pub use pull_through::*;
pub use remotes::*;
pub use replication::*;
pub use repositories::*;
pub use scans::*;
pub use uploads::*;
pub use webhooks::*;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The database failed or could not be reached. The message is for logs only.
    #[error("metadata store: {0}")]
    Database(String),
    /// The database cannot serve now (unreachable, restarting, out of connections, or the
    /// transaction lost a conflict): the same request may well succeed a moment later.
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
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

/// Keyset pagination: up to `limit` names sorted bytewise, all after `after`.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub limit: u32,
    pub after: Option<&'a str>,
}

/// What the registry may ask of the metadata store.
pub trait MetadataStore:
    UploadStore
    + ContentStore
    + RepositoryStore
    + ImageStore
    + LifecycleStore
    + CollectionStore
    + RemoteStore
    + ReplicationStore
    + PullThroughStore
    + ScanStore
    + HealthStore
    + AuditStore
    + WebhookStore
{
}

impl<T> MetadataStore for T where
    T: UploadStore
        + ContentStore
        + RepositoryStore
        + ImageStore
        + LifecycleStore
        + CollectionStore
        + RemoteStore
        + ReplicationStore
        + PullThroughStore
        + ScanStore
        + HealthStore
        + AuditStore
        + WebhookStore
{
}
