//! [`CollectionStore`] over SQL: sweeping unneeded links, finding and claiming blobs to
//! collect, orphans, usage, and leases. Part of `metadata::sql`.
//!
//! Blob rows are the meeting point of collection and uploads: a claim holds the row
//! `FOR UPDATE` (a provisional row, for an orphan) until the caller has removed the bytes and
//! commits, and finishing an upload holds the same row `FOR SHARE` while it checks the bytes
//! (see `uploads`). Whichever comes second sees what the first did.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{SqlStore, get_u64};
use crate::metadata::{BlobRecord, CollectionStore, HeldBlob, MetaResult, Millis, RepositoryUsage};

/// The links of repository `$1` that no manifest of it references and that were last relied
/// on before `$2`.
const UNNEEDED_LINKS: &str = "repository = $1 AND linked_at < $2 AND NOT EXISTS (\
     SELECT 1 FROM manifest_references r WHERE r.repository = $1 \
     AND r.target = repository_blobs.digest AND r.kind = 'blob')";

/// A blob row held in an open transaction; `delete` is removed just before the commit.
pub(super) struct HeldRow {
    pub(super) tx: Transaction<'static, Any>,
    pub(super) delete: Option<String>,
    pub(super) storage_key: Option<String>,
}

#[async_trait]
impl HeldBlob for HeldRow {
    fn storage_key(&self) -> Option<&str> {
        self.storage_key.as_deref()
    }

    async fn commit(mut self: Box<Self>) -> MetaResult<()> {
        if let Some(digest) = &self.delete {
            sqlx::query("DELETE FROM blobs WHERE digest = $1")
                .bind(digest)
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

fn blob_record(row: &AnyRow) -> MetaResult<BlobRecord> {
    Ok(BlobRecord {
        digest: row.try_get("digest")?,
        size: get_u64(row, "size")?,
        storage_key: row.try_get("storage_key")?,
        links: get_u64(row, "links")?,
    })
}

#[async_trait]
impl CollectionStore for SqlStore {
    async fn sweep_links(
        &self,
        repository: &str,
        cutoff: Millis,
        dry_run: bool,
    ) -> MetaResult<u64> {
        let mut tx = self.begin().await?;
        // Exclusive, as a repository delete takes it: pushes, mounts and uploads into the
        // repository wait, and the statement below sees everything they committed before.
        let locked = sqlx::query(self.locking(
            "SELECT 1 AS found FROM repositories WHERE name = $1",
            "FOR UPDATE",
        ))
        .bind(repository)
        .fetch_optional(&mut *tx)
        .await?;
        if locked.is_none() {
            return Ok(0);
        }
        let swept = if dry_run {
            let count =
                format!("SELECT COUNT(*) AS n FROM repository_blobs WHERE {UNNEEDED_LINKS}");
            let row = sqlx::query(sqlx::AssertSqlSafe(count))
                .bind(repository)
                .bind(cutoff)
                .fetch_one(&mut *tx)
                .await?;
            get_u64(&row, "n")?
        } else {
            let delete =
                format!("DELETE FROM repository_blobs WHERE {UNNEEDED_LINKS} RETURNING digest");
            let rows = sqlx::query(sqlx::AssertSqlSafe(delete))
                .bind(repository)
                .bind(cutoff)
                .fetch_all(&mut *tx)
                .await?;
            rows.len() as u64
        };
        tx.commit().await?;
        Ok(swept)
    }

    async fn collectable_blobs(
        &self,
        cutoff: Millis,
        after: Option<&str>,
        limit: u32,
    ) -> MetaResult<Vec<BlobRecord>> {
        let rows = sqlx::query(
            "SELECT b.digest, b.size, b.storage_key, CAST(0 AS BIGINT) AS links FROM blobs b \
             WHERE b.created_at < $1 AND b.digest > $2 AND NOT EXISTS (\
               SELECT 1 FROM repository_blobs l WHERE l.digest = b.digest \
               AND (l.linked_at >= $1 OR EXISTS (\
                 SELECT 1 FROM manifest_references r WHERE r.repository = l.repository \
                 AND r.target = l.digest AND r.kind = 'blob'))) \
             ORDER BY b.digest LIMIT $3",
        )
        .bind(cutoff)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
        .await?;
        rows.iter().map(blob_record).collect()
    }

    async fn claim_unlinked_blob(
        &self,
        digest: &str,
        cutoff: Millis,
    ) -> MetaResult<Option<Box<dyn HeldBlob>>> {
        let mut tx = self.begin().await?;
        let held = sqlx::query(self.locking(
            "SELECT storage_key FROM blobs WHERE digest = $1 AND created_at < $2",
            "FOR UPDATE",
        ))
        .bind(digest)
        .bind(cutoff)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(held) = held else {
            return Ok(None);
        };
        let storage_key = held.try_get("storage_key")?;
        // A new statement, so on Postgres it sees every link committed while this one waited
        // for the row; links made from now on wait for the commit (their foreign key).
        let linked =
            sqlx::query("SELECT 1 AS found FROM repository_blobs WHERE digest = $1 LIMIT 1")
                .bind(digest)
                .fetch_optional(&mut *tx)
                .await?;
        if linked.is_some() {
            return Ok(None);
        }
        Ok(Some(Box::new(HeldRow {
            tx,
            delete: Some(digest.to_string()),
            storage_key,
        })))
    }

    async fn claim_orphan(
        &self,
        digest: &str,
        now: Millis,
    ) -> MetaResult<Option<Box<dyn HeldBlob>>> {
        let mut tx = self.begin().await?;
        // Until this commits, an upload recording the same digest waits on this row.
        let inserted = sqlx::query(
            "INSERT INTO blobs (digest, size, created_at) VALUES ($1, 0, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(digest)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(Some(Box::new(HeldRow {
            tx,
            delete: Some(digest.to_string()),
            storage_key: None,
        })))
    }

    async fn recorded_blobs(&self, after: Option<&str>, limit: u32) -> MetaResult<Vec<BlobRecord>> {
        let rows = sqlx::query(
            "SELECT b.digest, b.size, b.storage_key, \
             (SELECT COUNT(*) FROM repository_blobs l WHERE l.digest = b.digest) AS links \
             FROM blobs b WHERE b.storage_key IS NULL AND b.digest > $1 \
             ORDER BY b.digest LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
        .await?;
        rows.iter().map(blob_record).collect()
    }

    async fn recorded_kept_blobs(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> MetaResult<Vec<BlobRecord>> {
        // Keys compare bytewise, as object stores list them (the column is `COLLATE "C"`).
        let rows = sqlx::query(
            "SELECT b.digest, b.size, b.storage_key, \
             (SELECT COUNT(*) FROM repository_blobs l WHERE l.digest = b.digest) AS links \
             FROM blobs b WHERE b.storage_key > $1 ORDER BY b.storage_key LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
        .await?;
        rows.iter().map(blob_record).collect()
    }

    async fn records_key(&self, key: &str) -> MetaResult<bool> {
        let found = sqlx::query("SELECT 1 AS found FROM blobs WHERE storage_key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    async fn repository_usage(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> MetaResult<Vec<RepositoryUsage>> {
        let rows = sqlx::query(
            "SELECT r.name, COUNT(b.digest) AS blobs, CAST(COALESCE(SUM(b.size), 0) AS BIGINT) AS bytes \
             FROM repositories r \
             LEFT JOIN repository_blobs l ON l.repository = r.name \
             LEFT JOIN blobs b ON b.digest = l.digest \
             WHERE r.name > $1 GROUP BY r.name ORDER BY r.name LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RepositoryUsage {
                    repository: row.try_get("name")?,
                    blobs: get_u64(row, "blobs")?,
                    bytes: get_u64(row, "bytes")?,
                })
            })
            .collect()
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Millis,
        until: Millis,
    ) -> MetaResult<bool> {
        let taken = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(taken.rows_affected() == 1)
    }
}
