//! Event notifications: the webhooks, and the queue of deliveries to them.

use async_trait::async_trait;

use super::{MetaResult, Millis};

/// Where and what to notify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// Kinds of event: `push`, `delete`, `scan`, `replication`, `lifecycle`.
    pub events: Vec<String>,
    /// Only events of repositories whose names start with it (`""` for all).
    pub repository_prefix: String,
    /// The signing secret, sealed (see `secrets`).
    pub secret: String,
    pub created_at: Millis,
}

/// How a webhook's deliveries went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
    /// Why the latest failed attempt failed.
    pub last_error: Option<String>,
}

/// An event to notify of, queued for every webhook it matches in the transaction that made
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification<'a> {
    pub kind: &'a str,
    pub repository: &'a str,
    pub digest: Option<&'a str>,
    pub tag: Option<&'a str>,
    /// The kind's own facts, as JSON.
    pub detail: Option<String>,
}

/// A delivery due, with where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub webhook_id: String,
    pub url: String,
    pub secret: String,
    pub kind: String,
    pub repository: String,
    pub digest: Option<String>,
    pub tag: Option<String>,
    pub detail: Option<String>,
    pub event_time: Millis,
    pub attempts: u32,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryAttempt {
    Delivered,
    /// Tried again from `retry_at`, or given up on if `None`.
    Failed {
        error: String,
        retry_at: Option<Millis>,
    },
}

#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    async fn add_webhook(&self, webhook: &Webhook) -> MetaResult<()>;

    /// Every webhook with how its deliveries went, oldest first.
    async fn list_webhooks(&self) -> MetaResult<Vec<(Webhook, DeliveryCounts)>>;

    /// Deletes the webhook and its deliveries; false if there was none.
    async fn delete_webhook(&self, id: &str) -> MetaResult<bool>;

    /// Queues `notification` for the one webhook `id`, whatever it asks for; false if there
    /// is none.
    async fn queue_test_notification(
        &self,
        id: &str,
        notification: &Notification<'_>,
        now: Millis,
    ) -> MetaResult<bool>;

    /// Up to `limit` deliveries due at `now`, oldest first.
    async fn due_deliveries(&self, now: Millis, limit: u32) -> MetaResult<Vec<Delivery>>;

    async fn finish_delivery(
        &self,
        delivery: &Delivery,
        attempt: &DeliveryAttempt,
        now: Millis,
    ) -> MetaResult<()>;
}
