//! What operators ask of the database: whether it answers, this node's connections to it, and
//! how much background work is queued across the cluster.

use async_trait::async_trait;

use super::MetaResult;

/// This node's database connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Connections {
    pub idle: u32,
    pub in_use: u32,
    pub max: u32,
}

/// Queued or failed background work of one kind: `uploads`, `replication` or `scan`, and the
/// row's status as stored (`IN_PROGRESS`, `FAILED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueCount {
    pub kind: String,
    pub status: String,
    pub count: i64,
}

#[async_trait]
pub trait HealthStore: Send + Sync + 'static {
    /// Answers a trivial query, or says why it cannot.
    async fn ping(&self) -> MetaResult<()>;

    fn connections(&self) -> Connections;

    /// Uploads in progress, and replications and scans queued or failed.
    async fn queue_counts(&self) -> MetaResult<Vec<QueueCount>>;
}
