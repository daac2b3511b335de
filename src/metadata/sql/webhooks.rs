//! Webhooks and their delivery queue in SQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, get_u64};
use crate::metadata::{
    Delivery, DeliveryAttempt, DeliveryCounts, MetaResult, Millis, Notification, Webhook,
    WebhookStore,
};

/// Queues `notification` for every webhook that asks for its kind and repository (for the
/// webhook `only`, whatever it asks for). Each delivery's id is the webhook's and the
/// event's.
pub(super) async fn queue_notification(
    connection: &mut sqlx::AnyConnection,
    notification: &Notification<'_>,
    only: Option<&str>,
    now: Millis,
) -> MetaResult<u64> {
    let event = uuid::Uuid::new_v4().to_string();
    let which = match only {
        Some(_) => "id = $8",
        None => {
            "(',' || events || ',') LIKE ('%,' || $2 || ',%') \
             AND substr($3, 1, length(repository_prefix)) = repository_prefix"
        }
    };
    let statement = format!(
        "INSERT INTO webhook_deliveries (id, webhook_id, kind, repository, digest, tag, detail, \
         event_time, status, attempts, next_attempt, last_error, updated_at) \
         SELECT id || ':' || $1, id, $2, $3, $4, $5, $6, $7, 'PENDING', 0, $7, NULL, $7 \
         FROM webhooks WHERE {which}"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(event)
        .bind(notification.kind)
        .bind(notification.repository)
        .bind(notification.digest)
        .bind(notification.tag)
        .bind(&notification.detail)
        .bind(now);
    if let Some(id) = only {
        query = query.bind(id);
    }
    let queued = query.execute(connection).await?;
    Ok(queued.rows_affected())
}

fn webhook(row: &AnyRow) -> MetaResult<Webhook> {
    let events: String = row.try_get("events")?;
    Ok(Webhook {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        events: events.split(',').map(str::to_string).collect(),
        repository_prefix: row.try_get("repository_prefix")?,
        secret: row.try_get("secret")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl WebhookStore for SqlStore {
    async fn add_webhook(&self, webhook: &Webhook) -> MetaResult<()> {
        sqlx::query(
            "INSERT INTO webhooks (id, url, events, repository_prefix, secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&webhook.id)
        .bind(&webhook.url)
        .bind(webhook.events.join(","))
        .bind(&webhook.repository_prefix)
        .bind(&webhook.secret)
        .bind(webhook.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_webhooks(&self) -> MetaResult<Vec<(Webhook, DeliveryCounts)>> {
        let rows = sqlx::query(
            "SELECT id, url, events, repository_prefix, secret, created_at FROM webhooks \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.reads)
        .await?;
        let mut listed = Vec::new();
        for row in &rows {
            let webhook = webhook(row)?;
            let counts = sqlx::query(
                "SELECT status, COUNT(*) AS n FROM webhook_deliveries WHERE webhook_id = $1 \
                 GROUP BY status",
            )
            .bind(&webhook.id)
            .fetch_all(&self.reads)
            .await?;
            let mut delivery_counts = DeliveryCounts::default();
            for count in &counts {
                let status: String = count.try_get("status")?;
                let n = get_u64(count, "n")?;
                match status.as_str() {
                    "PENDING" => delivery_counts.pending = n,
                    "DELIVERED" => delivery_counts.delivered = n,
                    _ => delivery_counts.failed = n,
                }
            }
            delivery_counts.last_error = sqlx::query(
                "SELECT last_error FROM webhook_deliveries \
                 WHERE webhook_id = $1 AND last_error IS NOT NULL \
                 ORDER BY updated_at DESC LIMIT 1",
            )
            .bind(&webhook.id)
            .fetch_optional(&self.reads)
            .await?
            .map(|row| row.try_get("last_error"))
            .transpose()?;
            listed.push((webhook, delivery_counts));
        }
        Ok(listed)
    }

    async fn delete_webhook(&self, id: &str) -> MetaResult<bool> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn queue_test_notification(
        &self,
        id: &str,
        notification: &Notification<'_>,
        now: Millis,
    ) -> MetaResult<bool> {
        let mut connection = self.pool.acquire().await?;
        Ok(queue_notification(&mut connection, notification, Some(id), now).await? > 0)
    }

    async fn due_deliveries(&self, now: Millis, limit: u32) -> MetaResult<Vec<Delivery>> {
        let rows = sqlx::query(
            "SELECT d.id, d.webhook_id, w.url, w.secret, d.kind, d.repository, d.digest, d.tag, \
             d.detail, d.event_time, d.attempts FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.status = 'PENDING' AND d.next_attempt <= $1 \
             ORDER BY d.next_attempt, d.id LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Delivery {
                    id: row.try_get("id")?,
                    webhook_id: row.try_get("webhook_id")?,
                    url: row.try_get("url")?,
                    secret: row.try_get("secret")?,
                    kind: row.try_get("kind")?,
                    repository: row.try_get("repository")?,
                    digest: row.try_get("digest")?,
                    tag: row.try_get("tag")?,
                    detail: row.try_get("detail")?,
                    event_time: row.try_get("event_time")?,
                    attempts: u32::try_from(get_u64(row, "attempts")?).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    async fn finish_delivery(
        &self,
        delivery: &Delivery,
        attempt: &DeliveryAttempt,
        now: Millis,
    ) -> MetaResult<()> {
        let (status, next_attempt, error) = match attempt {
            DeliveryAttempt::Delivered => ("DELIVERED", now, None),
            DeliveryAttempt::Failed { error, retry_at } => (
                if retry_at.is_some() {
                    "PENDING"
                } else {
                    "FAILED"
                },
                retry_at.unwrap_or(now),
                Some(error.as_str()),
            ),
        };
        // Only the attempt that was due: two workers never both record one.
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, \
             next_attempt = $2, last_error = COALESCE($3, last_error), updated_at = $4 \
             WHERE id = $5 AND attempts = $6 AND status = 'PENDING'",
        )
        .bind(status)
        .bind(next_attempt)
        .bind(error)
        .bind(now)
        .bind(&delivery.id)
        .bind(i64::from(delivery.attempts))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
