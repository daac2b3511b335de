//! [`LifecycleStore`] over SQL: policies, previews, and expiring images. Part of
//! `metadata::sql`.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqlStore, names};
use crate::metadata::{LifecycleStore, MetaResult, Millis, Page, Removal, StoredPreview};

#[async_trait]
impl LifecycleStore for SqlStore {
    async fn lifecycle_policy(&self, repository: &str) -> MetaResult<Option<Option<String>>> {
        let row = sqlx::query("SELECT lifecycle_policy FROM repositories WHERE name = $1")
            .bind(repository)
            .fetch_optional(&self.reads)
            .await?;
        row.map(|row| Ok(row.try_get("lifecycle_policy")?))
            .transpose()
    }

    async fn set_lifecycle_policy(
        &self,
        repository: &str,
        policy: Option<&str>,
    ) -> MetaResult<bool> {
        let mut tx = self.begin().await?;
        let updated = sqlx::query("UPDATE repositories SET lifecycle_policy = $1 WHERE name = $2")
            .bind(policy)
            .bind(repository)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM lifecycle_previews WHERE repository = $1")
            .bind(repository)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(updated.rows_affected() > 0)
    }

    async fn lifecycle_policies(&self, page: Page<'_>) -> MetaResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT name, lifecycle_policy FROM repositories \
             WHERE lifecycle_policy IS NOT NULL AND name > $1 ORDER BY name LIMIT $2",
        )
        .bind(page.after.unwrap_or(""))
        .bind(i64::from(page.limit))
        .fetch_all(&self.reads)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("name")?, row.try_get("lifecycle_policy")?)))
            .collect()
    }

    async fn save_preview(&self, repository: &str, preview: &StoredPreview) -> MetaResult<bool> {
        let saved = sqlx::query(
            "INSERT INTO lifecycle_previews (repository, policy, results, created_at) \
             SELECT name, $2, $3, $4 FROM repositories WHERE name = $1 \
             ON CONFLICT (repository) DO UPDATE SET policy = excluded.policy, \
             results = excluded.results, created_at = excluded.created_at",
        )
        .bind(repository)
        .bind(&preview.policy)
        .bind(&preview.results)
        .bind(preview.created_at)
        .execute(&self.pool)
        .await?;
        Ok(saved.rows_affected() > 0)
    }

    async fn preview(&self, repository: &str) -> MetaResult<Option<StoredPreview>> {
        let row = sqlx::query(
            "SELECT policy, results, created_at FROM lifecycle_previews WHERE repository = $1",
        )
        .bind(repository)
        .fetch_optional(&self.reads)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(StoredPreview {
            policy: row.try_get("policy")?,
            results: row.try_get("results")?,
            created_at: row.try_get("created_at")?,
        }))
    }

    async fn indexed_manifests(&self, repository: &str) -> MetaResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT target FROM manifest_references \
             WHERE repository = $1 AND kind = 'manifest' ORDER BY target",
        )
        .bind(repository)
        .fetch_all(&self.reads)
        .await?;
        names(&rows, "target")
    }

    async fn expire_image(
        &self,
        repository: &str,
        digest: &str,
        reason: &str,
        now: Millis,
    ) -> MetaResult<Removal> {
        self.remove_manifest(repository, digest, Some(reason), now)
            .await
    }
}
