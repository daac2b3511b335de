//! Image scanning in SQL: the registry's configuration, the vulnerability database and the
//! scans (see the `scanning` migration for how generations and claims work).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::webhooks::queue_notification;
use super::{SqlStore, get_u64, to_i64};
use crate::metadata::{
    AdvisorySource, ImageScan, MetaResult, Millis, NewAdvisory, Notification, ScanRequest,
    ScanResult, ScanStore,
};

/// Most values one statement binds in an `IN` list.
const IN_LIST: usize = 500;

/// Queues a scan of the image if it exists, as a new request. Returns whether it was queued.
pub(super) async fn queue_scan(
    connection: &mut sqlx::AnyConnection,
    repository: &str,
    digest: &str,
    now: Millis,
) -> MetaResult<bool> {
    let queued = sqlx::query(
        "INSERT INTO image_scans (repository, digest, status, requested_at, claimed_until, \
         attempts) \
         SELECT repository, digest, 'IN_PROGRESS', $3, 0, 0 FROM manifests \
         WHERE repository = $1 AND digest = $2 \
         ON CONFLICT (repository, digest) DO UPDATE SET status = 'IN_PROGRESS', \
         requested_at = excluded.requested_at, claimed_until = 0, attempts = 0, \
         description = NULL",
    )
    .bind(repository)
    .bind(digest)
    .bind(now)
    .execute(connection)
    .await?;
    Ok(queued.rows_affected() > 0)
}

fn image_scan(row: &AnyRow, with_findings: bool) -> MetaResult<ImageScan> {
    let findings = if with_findings {
        row.try_get("findings")?
    } else {
        None
    };
    Ok(ImageScan {
        status: row.try_get("status")?,
        description: row.try_get("description")?,
        completed_at: row.try_get("completed_at")?,
        distribution: row.try_get("distribution")?,
        source_updated_at: row.try_get("source_updated_at")?,
        findings,
        severity_counts: row.try_get("severity_counts")?,
    })
}

fn scan_request(row: &AnyRow) -> MetaResult<ScanRequest> {
    Ok(ScanRequest {
        repository: row.try_get("repository")?,
        digest: row.try_get("digest")?,
        requested_at: row.try_get("requested_at")?,
        attempts: u32::try_from(get_u64(row, "attempts")?).unwrap_or(u32::MAX),
    })
}

impl SqlStore {
    /// Claims a scan read as queued and free. Another worker may have claimed it since the
    /// read: only one update wins.
    async fn take_scan(
        &self,
        request: &ScanRequest,
        now: Millis,
        until: Millis,
    ) -> MetaResult<bool> {
        let taken = sqlx::query(
            "UPDATE image_scans SET claimed_until = $1 \
             WHERE repository = $2 AND digest = $3 AND requested_at = $4 \
             AND status = 'IN_PROGRESS' AND claimed_until <= $5",
        )
        .bind(until)
        .bind(&request.repository)
        .bind(&request.digest)
        .bind(request.requested_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(taken.rows_affected() > 0)
    }
}

#[async_trait]
impl ScanStore for SqlStore {
    async fn scanning_configuration(&self) -> MetaResult<Option<String>> {
        self.registry_setting("scanning").await
    }

    async fn put_scanning_configuration(&self, configuration: &str) -> MetaResult<()> {
        self.put_registry_setting("scanning", configuration).await
    }

    async fn store_advisories(
        &self,
        generation: i64,
        advisories: &[NewAdvisory],
    ) -> MetaResult<()> {
        let mut tx = self.begin().await?;
        for advisory in advisories {
            // An id twice in one import: the later record stands, as in a directory listing.
            sqlx::query(
                "INSERT INTO advisories (source, generation, id, record) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (source, generation, id) DO UPDATE SET record = excluded.record",
            )
            .bind(&advisory.source)
            .bind(generation)
            .bind(&advisory.id)
            .bind(&advisory.record)
            .execute(&mut *tx)
            .await?;
            for package in &advisory.packages {
                sqlx::query(
                    "INSERT INTO advisory_packages (source, generation, package, id) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(&advisory.source)
                .bind(generation)
                .bind(package)
                .bind(&advisory.id)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn publish_advisories(
        &self,
        generation: i64,
        sources: &[(String, u64)],
        now: Millis,
    ) -> MetaResult<()> {
        let mut tx = self.begin().await?;
        for (source, advisories) in sources {
            sqlx::query(
                "INSERT INTO advisory_sources (source, generation, imported_at, advisories) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (source) DO UPDATE SET \
                 generation = excluded.generation, imported_at = excluded.imported_at, \
                 advisories = excluded.advisories",
            )
            .bind(source)
            .bind(generation)
            .bind(now)
            .bind(to_i64(*advisories))
            .execute(&mut *tx)
            .await?;
            for table in ["advisories", "advisory_packages"] {
                let statement =
                    format!("DELETE FROM {table} WHERE source = $1 AND generation <> $2");
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .bind(source)
                    .bind(generation)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn advisory_sources(&self) -> MetaResult<Vec<AdvisorySource>> {
        let rows = sqlx::query(
            "SELECT source, imported_at, advisories FROM advisory_sources ORDER BY source",
        )
        .fetch_all(&self.reads)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AdvisorySource {
                    source: row.try_get("source")?,
                    imported_at: row.try_get("imported_at")?,
                    advisories: get_u64(row, "advisories")?,
                })
            })
            .collect()
    }

    async fn advisories_naming(
        &self,
        source: &str,
        packages: &[String],
    ) -> MetaResult<Vec<String>> {
        let mut records = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for chunk in packages.chunks(IN_LIST) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let statement = format!(
                "SELECT a.id, a.record FROM advisory_sources s \
                 JOIN advisory_packages p ON p.source = s.source AND p.generation = s.generation \
                 JOIN advisories a ON a.source = p.source AND a.generation = p.generation \
                 AND a.id = p.id \
                 WHERE s.source = $1 AND p.package IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(statement)).bind(source);
            for package in chunk {
                query = query.bind(package);
            }
            for row in query.fetch_all(&self.reads).await? {
                let id: String = row.try_get("id")?;
                if seen.insert(id) {
                    records.push(row.try_get("record")?);
                }
            }
        }
        Ok(records)
    }

    async fn request_scans(
        &self,
        repository: &str,
        digests: &[String],
        now: Millis,
    ) -> MetaResult<u64> {
        let mut tx = self.begin().await?;
        let mut queued = 0;
        for digest in digests {
            queued += u64::from(queue_scan(&mut tx, repository, digest, now).await?);
        }
        tx.commit().await?;
        Ok(queued)
    }

    async fn request_rescans(&self, now: Millis) -> MetaResult<u64> {
        let queued = sqlx::query(
            "UPDATE image_scans SET status = 'IN_PROGRESS', requested_at = $1, \
             claimed_until = 0, attempts = 0, description = NULL \
             WHERE status <> 'IN_PROGRESS'",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(queued.rows_affected())
    }

    async fn claim_scans(
        &self,
        now: Millis,
        until: Millis,
        limit: u32,
    ) -> MetaResult<Vec<ScanRequest>> {
        let rows = sqlx::query(
            "SELECT repository, digest, requested_at, attempts FROM image_scans \
             WHERE status = 'IN_PROGRESS' AND claimed_until <= $1 \
             ORDER BY requested_at, repository, digest LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::new();
        for row in &rows {
            let request = scan_request(row)?;
            if self.take_scan(&request, now, until).await? {
                claimed.push(request);
            }
        }
        Ok(claimed)
    }

    async fn claim_scan(
        &self,
        repository: &str,
        digest: &str,
        now: Millis,
        until: Millis,
    ) -> MetaResult<Option<ScanRequest>> {
        let row = sqlx::query(
            "SELECT repository, digest, requested_at, attempts FROM image_scans \
             WHERE repository = $1 AND digest = $2 AND status = 'IN_PROGRESS' \
             AND claimed_until <= $3",
        )
        .bind(repository)
        .bind(digest)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let request = scan_request(&row)?;
        Ok(self
            .take_scan(&request, now, until)
            .await?
            .then_some(request))
    }

    async fn finish_scan(
        &self,
        request: &ScanRequest,
        result: &ScanResult,
        now: Millis,
    ) -> MetaResult<()> {
        // Only the request that was claimed: one made meanwhile stays queued.
        let mut tx = self.begin().await?;
        let finished = sqlx::query(
            "UPDATE image_scans SET status = $1, description = $2, completed_at = $3, \
             source_updated_at = $4, findings = $5, severity_counts = $6, claimed_until = 0, \
             distribution = $10 \
             WHERE repository = $7 AND digest = $8 AND requested_at = $9 \
             AND status = 'IN_PROGRESS'",
        )
        .bind(&result.status)
        .bind(&result.description)
        .bind(now)
        .bind(result.source_updated_at)
        .bind(&result.findings)
        .bind(&result.severity_counts)
        .bind(&request.repository)
        .bind(&request.digest)
        .bind(request.requested_at)
        .bind(&result.distribution)
        .execute(&mut *tx)
        .await?;
        if finished.rows_affected() > 0 {
            let detail = serde_json::json!({
                "scanStatus": result.status,
                "findingSeverityCounts": result
                    .severity_counts
                    .as_deref()
                    .and_then(|counts| serde_json::from_str::<serde_json::Value>(counts).ok()),
            });
            let scanned = Notification {
                kind: "scan",
                repository: &request.repository,
                digest: Some(&request.digest),
                tag: None,
                detail: Some(detail.to_string()),
            };
            queue_notification(&mut tx, &scanned, None, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn retry_scan(&self, request: &ScanRequest, retry_at: Millis) -> MetaResult<()> {
        sqlx::query(
            "UPDATE image_scans SET attempts = $1, claimed_until = $2 \
             WHERE repository = $3 AND digest = $4 AND requested_at = $5 \
             AND status = 'IN_PROGRESS'",
        )
        .bind(i64::from(request.attempts.saturating_add(1)))
        .bind(retry_at)
        .bind(&request.repository)
        .bind(&request.digest)
        .bind(request.requested_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn image_scan(
        &self,
        repository: &str,
        digest: &str,
        with_findings: bool,
    ) -> MetaResult<Option<ImageScan>> {
        let columns = if with_findings { ", findings" } else { "" };
        let statement = format!(
            "SELECT status, description, completed_at, distribution, source_updated_at, \
             severity_counts \
             {columns} FROM image_scans WHERE repository = $1 AND digest = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(repository)
            .bind(digest)
            .fetch_optional(&self.reads)
            .await?;
        row.map(|row| image_scan(&row, with_findings)).transpose()
    }
}
