//! Replication's configuration and queue in SQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use super::webhooks::queue_notification;
use crate::metadata::{
    Attempt, Destination, MetaResult, Millis, Notification, Replication, ReplicationStatus,
    ReplicationStore,
};

fn replication(row: &AnyRow) -> MetaResult<Replication> {
    let tag: String = row.try_get("tag")?;
    let attempts: i64 = row.try_get("attempts")?;
    Ok(Replication {
        repository: row.try_get("repository")?,
        digest: row.try_get("digest")?,
        destination: Destination {
            registry_id: row.try_get("registry_id")?,
            region: row.try_get("region")?,
        },
        tag: (!tag.is_empty()).then_some(tag),
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
    })
}

/// A push's copies are queued anew even if done before; a backfill's only if never queued.
#[derive(Clone, Copy)]
pub(super) enum Requeue {
    Always,
    Never,
}

/// Queues copies of the image to every destination under each of `tags` (by digest alone,
/// `''`, if none). Returns how many rows were queued.
pub(super) async fn queue_replications(
    connection: &mut sqlx::AnyConnection,
    repository: &str,
    digest: &str,
    tags: &[&str],
    destinations: &[Destination],
    requeue: Requeue,
    now: Millis,
) -> MetaResult<u64> {
    let tags: &[&str] = if tags.is_empty() { &[""] } else { tags };
    let on_conflict = match requeue {
        Requeue::Always => {
            "DO UPDATE SET status = 'IN_PROGRESS', attempts = 0, \
             next_attempt = excluded.next_attempt, failure = NULL, \
             updated_at = excluded.updated_at"
        }
        Requeue::Never => "DO NOTHING",
    };
    let statement = format!(
        "INSERT INTO replications (repository, digest, registry_id, region, tag, status, \
         attempts, next_attempt, failure, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'IN_PROGRESS', 0, $6, NULL, $6) \
         ON CONFLICT (repository, digest, registry_id, region, tag) {on_conflict}"
    );
    let mut queued = 0;
    for destination in destinations {
        for tag in tags {
            queued += sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
                .bind(repository)
                .bind(digest)
                .bind(&destination.registry_id)
                .bind(&destination.region)
                .bind(*tag)
                .bind(now)
                .execute(&mut *connection)
                .await?
                .rows_affected();
        }
    }
    Ok(queued)
}

#[async_trait]
impl ReplicationStore for SqlStore {
    async fn replication_configuration(&self) -> MetaResult<Option<String>> {
        self.registry_setting("replication").await
    }

    async fn put_replication_configuration(&self, configuration: &str) -> MetaResult<()> {
        self.put_registry_setting("replication", configuration)
            .await
    }

    async fn backfill_replications(
        &self,
        repository: &str,
        digest: &str,
        tags: &[String],
        destinations: &[Destination],
        now: Millis,
    ) -> MetaResult<u64> {
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        let mut tx = self.begin().await?;
        let requeue = Requeue::Never;
        let queued = queue_replications(
            &mut tx,
            repository,
            digest,
            &tags,
            destinations,
            requeue,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn due_replications(&self, now: Millis, limit: u32) -> MetaResult<Vec<Replication>> {
        let rows = sqlx::query(
            "SELECT repository, digest, registry_id, region, tag, attempts FROM replications \
             WHERE status = 'IN_PROGRESS' AND next_attempt <= $1 \
             ORDER BY next_attempt, repository, digest LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(replication).collect()
    }

    async fn finish_replication(
        &self,
        replication: &Replication,
        attempt: &Attempt,
        now: Millis,
    ) -> MetaResult<()> {
        let (status, attempts, next_attempt, failure) = match attempt {
            Attempt::Copied => ("COMPLETE", replication.attempts, now, None),
            Attempt::Failed { reason, retry_at } => (
                if retry_at.is_some() {
                    "IN_PROGRESS"
                } else {
                    "FAILED"
                },
                replication.attempts.saturating_add(1),
                retry_at.unwrap_or(now),
                Some(reason.as_str()),
            ),
        };
        // Only the attempt that was due: a push meanwhile queued it anew, and that stands.
        let mut tx = self.begin().await?;
        let finished = sqlx::query(
            "UPDATE replications SET status = $1, attempts = $2, next_attempt = $3, \
             failure = $4, updated_at = $5 \
             WHERE repository = $6 AND digest = $7 AND registry_id = $8 AND region = $9 \
             AND tag = $10 AND attempts = $11 AND status = 'IN_PROGRESS'",
        )
        .bind(status)
        .bind(i64::from(attempts))
        .bind(next_attempt)
        .bind(failure)
        .bind(now)
        .bind(&replication.repository)
        .bind(&replication.digest)
        .bind(&replication.destination.registry_id)
        .bind(&replication.destination.region)
        .bind(replication.tag.as_deref().unwrap_or(""))
        .bind(i64::from(replication.attempts))
        .execute(&mut *tx)
        .await?;
        // The copy's end, done or given up on; not each retry.
        if finished.rows_affected() > 0 && status != "IN_PROGRESS" {
            let detail = serde_json::json!({
                "result": if status == "COMPLETE" { "SUCCESS" } else { "FAILURE" },
                "destinationRegistryId": replication.destination.registry_id,
                "destinationRegion": replication.destination.region,
                "failure": failure,
            });
            let replicated = Notification {
                kind: "replication",
                repository: &replication.repository,
                digest: Some(&replication.digest),
                tag: replication.tag.as_deref(),
                detail: Some(detail.to_string()),
            };
            queue_notification(&mut tx, &replicated, None, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn copied_with_blob(
        &self,
        digest: &str,
        destination: &Destination,
        except: &str,
    ) -> MetaResult<Option<String>> {
        let row = sqlx::query(
            "SELECT r.repository FROM manifest_references mr \
             JOIN replications r ON r.repository = mr.repository AND r.digest = mr.manifest \
             WHERE mr.target = $1 AND mr.kind = 'blob' AND r.registry_id = $2 \
             AND r.region = $3 AND r.status = 'COMPLETE' AND r.repository <> $4 LIMIT 1",
        )
        .bind(digest)
        .bind(&destination.registry_id)
        .bind(&destination.region)
        .bind(except)
        .fetch_optional(&self.reads)
        .await?;
        Ok(row.map(|row| row.try_get("repository")).transpose()?)
    }

    async fn replication_statuses(
        &self,
        repository: &str,
        digest: &str,
    ) -> MetaResult<Vec<ReplicationStatus>> {
        let rows = sqlx::query(
            "SELECT registry_id, region, status, failure FROM replications \
             WHERE repository = $1 AND digest = $2 ORDER BY registry_id, region, updated_at",
        )
        .bind(repository)
        .bind(digest)
        .fetch_all(&self.reads)
        .await?;
        let mut statuses: Vec<ReplicationStatus> = Vec::new();
        for row in &rows {
            let destination = Destination {
                registry_id: row.try_get("registry_id")?,
                region: row.try_get("region")?,
            };
            let status: String = row.try_get("status")?;
            let failure: Option<String> = row.try_get("failure")?;
            let rank = |status: &str| match status {
                "FAILED" => 2,
                "IN_PROGRESS" => 1,
                _ => 0,
            };
            match statuses.last_mut() {
                Some(last) if last.destination == destination => {
                    if rank(&status) > rank(&last.status) {
                        last.status = status;
                    }
                    if failure.is_some() {
                        last.failure = failure;
                    }
                }
                _ => statuses.push(ReplicationStatus {
                    destination,
                    status,
                    failure,
                }),
            }
        }
        Ok(statuses)
    }
}
