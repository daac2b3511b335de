//! Remote registries in SQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use crate::metadata::{MetaResult, RemoteRecord, RemoteStore};

const COLUMNS: &str = "registry_id, region, url, username, password, created_at";

fn remote(row: &AnyRow) -> MetaResult<RemoteRecord> {
    Ok(RemoteRecord {
        registry_id: row.try_get("registry_id")?,
        region: row.try_get("region")?,
        url: row.try_get("url")?,
        username: row.try_get("username")?,
        password: row.try_get("password")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl RemoteStore for SqlStore {
    async fn put_remote(&self, remote: &RemoteRecord) -> MetaResult<bool> {
        let mut tx = self.begin().await?;
        let replaced = sqlx::query("DELETE FROM remotes WHERE registry_id = $1 AND region = $2")
            .bind(&remote.registry_id)
            .bind(&remote.region)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        sqlx::query(
            "INSERT INTO remotes (registry_id, region, url, username, password, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&remote.registry_id)
        .bind(&remote.region)
        .bind(&remote.url)
        .bind(&remote.username)
        .bind(&remote.password)
        .bind(remote.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(replaced)
    }

    async fn list_remotes(&self) -> MetaResult<Vec<RemoteRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM remotes ORDER BY registry_id, region"
        )))
        .fetch_all(&self.reads)
        .await?;
        rows.iter().map(remote).collect()
    }

    async fn get_remote(
        &self,
        registry_id: &str,
        region: &str,
    ) -> MetaResult<Option<RemoteRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM remotes WHERE registry_id = $1 AND region = $2"
        )))
        .bind(registry_id)
        .bind(region)
        .fetch_optional(&self.reads)
        .await?;
        row.as_ref().map(remote).transpose()
    }

    async fn delete_remote(&self, registry_id: &str, region: &str) -> MetaResult<bool> {
        let deleted = sqlx::query("DELETE FROM remotes WHERE registry_id = $1 AND region = $2")
            .bind(registry_id)
            .bind(region)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }
}
