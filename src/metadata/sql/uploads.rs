//! [`UploadStore`] over SQL: upload rows, their staged parts, and completion into a blob.
//! Part of `metadata::sql`; knows nothing of HTTP or of the bytes themselves.

use async_trait::async_trait;
use sqlx::{Any, Row, Transaction};

use super::collection::HeldRow;
use super::{SqlStore, get_u64, link_blob, to_i64};
use crate::metadata::{FinishedBlob, HeldBlob, MetaError, MetaResult, Millis, Upload, UploadStore};

/// How often finishing an upload records its blob anew when collections keep removing it.
const HOLD_ATTEMPTS: usize = 3;
use crate::storage::UploadPart;

#[async_trait]
impl UploadStore for SqlStore {
    async fn create_upload(
        &self,
        id: &str,
        repository: &str,
        hash_state: &[u8],
        now: Millis,
    ) -> MetaResult<()> {
        sqlx::query(
            "INSERT INTO uploads (id, repository, size, hash_state, created_at, updated_at) \
             VALUES ($1, $2, 0, $3, $4, $4)",
        )
        .bind(id)
        .bind(repository)
        .bind(hash_state.to_vec())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_upload(&self, id: &str) -> MetaResult<Option<Upload>> {
        // One statement sees one snapshot: the size and hash state always match the parts.
        // Empty parts (a finish without a body) sort before a part at the same offset.
        let rows = sqlx::query(
            "SELECT u.id, u.repository, u.size, u.hash_state, \
             p.start AS part_start, p.size AS part_size, p.storage_key AS part_key \
             FROM uploads u LEFT JOIN upload_parts p ON p.upload_id = u.id \
             WHERE u.id = $1 ORDER BY p.start, p.size",
        )
        .bind(id)
        .fetch_all(&self.reads)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut upload = Upload {
            id: first.try_get("id")?,
            repository: first.try_get("repository")?,
            size: get_u64(first, "size")?,
            hash_state: first.try_get("hash_state")?,
            parts: Vec::new(),
        };
        for row in &rows {
            // A LEFT JOIN row without a part: the upload has none yet.
            let Some(key) = row.try_get::<Option<String>, _>("part_key")? else {
                continue;
            };
            upload.parts.push(UploadPart {
                offset: get_u64(row, "part_start")?,
                size: get_u64(row, "part_size")?,
                key,
            });
        }
        Ok(Some(upload))
    }

    async fn append_upload_part(
        &self,
        id: &str,
        part: &UploadPart,
        hash_state: &[u8],
        now: Millis,
    ) -> MetaResult<bool> {
        let mut tx = self.begin().await?;
        let moved = sqlx::query(
            "UPDATE uploads SET size = size + $1, hash_state = $2, updated_at = $3 \
             WHERE id = $4 AND size = $5",
        )
        .bind(to_i64(part.size))
        .bind(hash_state.to_vec())
        .bind(now)
        .bind(id)
        .bind(to_i64(part.offset))
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO upload_parts (upload_id, start, size, storage_key) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(to_i64(part.offset))
        .bind(to_i64(part.size))
        .bind(&part.key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_upload(&self, id: &str) -> MetaResult<bool> {
        let deleted = sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn stale_uploads(&self, idle_since: Millis, limit: u32) -> MetaResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM uploads WHERE updated_at < $1 ORDER BY updated_at LIMIT $2",
        )
        .bind(idle_since)
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
        .await?;
        super::names(&rows, "id")
    }

    async fn complete_upload(
        &self,
        id: &str,
        recorded: u64,
        blob: FinishedBlob<'_>,
        create_repository: bool,
        now: Millis,
    ) -> MetaResult<Option<Box<dyn HeldBlob>>> {
        let mut tx = self.begin().await?;
        let Some(row) =
            sqlx::query("DELETE FROM uploads WHERE id = $1 AND size = $2 RETURNING repository")
                .bind(id)
                .bind(to_i64(recorded))
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(None);
        };
        let repository: String = row.try_get("repository")?;
        let locked = if create_repository {
            self.ensure_repository(&mut tx, &repository, now).await?
        } else {
            self.lock_repository(&mut tx, &repository).await?
        };
        if locked.is_none() {
            // Deleted meanwhile (it may not be made again): the upload goes with it.
            tx.commit().await?;
            return Ok(None);
        }
        let storage_key = self.hold_blob_row(&mut tx, blob, now).await?;
        link_blob(&mut tx, &repository, blob.digest, now).await?;
        Ok(Some(Box::new(HeldRow {
            tx,
            delete: None,
            storage_key,
        })))
    }
}

impl SqlStore {
    /// Records the blob if no row does (or moves the row to the blob's key, if asked), and
    /// holds its row `FOR SHARE` (on Postgres) until the transaction ends. Returns the row's
    /// storage key. A collection claiming the row is waited for: if it removes the row, the
    /// blob is recorded anew (and the caller, checking the bytes, finds them gone).
    async fn hold_blob_row(
        &self,
        tx: &mut Transaction<'static, Any>,
        blob: FinishedBlob<'_>,
        now: Millis,
    ) -> MetaResult<Option<String>> {
        for _ in 0..HOLD_ATTEMPTS {
            sqlx::query(
                "INSERT INTO blobs (digest, size, created_at, storage_key) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(blob.digest)
            .bind(to_i64(blob.size))
            .bind(now)
            .bind(blob.storage_key)
            .execute(&mut **tx)
            .await?;
            if blob.relocate {
                sqlx::query("UPDATE blobs SET storage_key = $1 WHERE digest = $2")
                    .bind(blob.storage_key)
                    .bind(blob.digest)
                    .execute(&mut **tx)
                    .await?;
            }
            let held = sqlx::query(self.locking(
                "SELECT storage_key FROM blobs WHERE digest = $1",
                "FOR SHARE",
            ))
            .bind(blob.digest)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(held) = held {
                return Ok(held.try_get("storage_key")?);
            }
        }
        Err(MetaError::Database(format!(
            "the row of blob {} kept being removed while an upload recorded it",
            blob.digest
        )))
    }
}
