//! [`RepositoryStore`] over SQL: repositories as resources (settings, resource policy,
//! resource tags) and the registry's own identity. Part of `metadata::sql`.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Event, SqlStore, log_event, names};
use crate::metadata::{
    MetaError, MetaResult, Millis, Page, Repository, RepositoryRemoval, RepositorySettings,
    RepositoryStore, ResourceTag, TagMutability, Tagging, now_millis,
};

const REPOSITORY_COLUMNS: &str = "name, created_at, tag_mutability, tag_mutability_exclusions, \
     CAST(CASE WHEN scan_on_push THEN 1 ELSE 0 END AS BIGINT) AS scan_on_push, encryption, \
     encryption_key, policy";

fn repository(row: &AnyRow) -> MetaResult<Repository> {
    let mutability: String = row.try_get("tag_mutability")?;
    let exclusions: String = row.try_get("tag_mutability_exclusions")?;
    Ok(Repository {
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        settings: RepositorySettings {
            tag_mutability: TagMutability::parse(&mutability)
                .ok_or_else(|| MetaError::Corrupt(format!("tag_mutability = {mutability}")))?,
            tag_mutability_exclusions: serde_json::from_str(&exclusions).map_err(|_| {
                MetaError::Corrupt(format!("tag_mutability_exclusions = {exclusions}"))
            })?,
            scan_on_push: row.try_get::<i64, _>("scan_on_push")? != 0,
            encryption_type: row.try_get("encryption")?,
            kms_key: row.try_get("encryption_key")?,
        },
        policy: row.try_get("policy")?,
    })
}

fn exclusions_json(exclusions: &[String]) -> String {
    serde_json::to_string(exclusions).expect("strings serialize")
}

impl SqlStore {
    /// Takes the repository's row `FOR SHARE` (on Postgres) for the rest of the transaction:
    /// see the lock order in `sql`. Returns the repository, `None` if there is none.
    pub(super) async fn lock_repository(
        &self,
        tx: &mut Transaction<'static, Any>,
        name: &str,
    ) -> MetaResult<Option<Repository>> {
        let query = format!("SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE name = $1");
        let row = sqlx::query(self.locking(&query, "FOR SHARE"))
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?;
        row.as_ref().map(repository).transpose()
    }
}

#[async_trait]
impl RepositoryStore for SqlStore {
    async fn create_repository(
        &self,
        repository: &Repository,
        tags: &[ResourceTag],
    ) -> MetaResult<bool> {
        let settings = &repository.settings;
        let mut tx = self.begin().await?;
        let created = sqlx::query(
            "INSERT INTO repositories (name, created_at, tag_mutability, \
             tag_mutability_exclusions, scan_on_push, encryption, encryption_key, policy) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&repository.name)
        .bind(repository.created_at)
        .bind(settings.tag_mutability.as_str())
        .bind(exclusions_json(&settings.tag_mutability_exclusions))
        .bind(settings.scan_on_push)
        .bind(&settings.encryption_type)
        .bind(&settings.kms_key)
        .bind(&repository.policy)
        .execute(&mut *tx)
        .await?;
        if created.rows_affected() == 0 {
            return Ok(false);
        }
        for tag in tags {
            sqlx::query(
                "INSERT INTO repository_tags (repository, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (repository, key) DO UPDATE SET value = excluded.value",
            )
            .bind(&repository.name)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn get_repository(&self, name: &str) -> MetaResult<Option<Repository>> {
        let query = format!("SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE name = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(query))
            .bind(name)
            .fetch_optional(&self.reads)
            .await?;
        row.as_ref().map(repository).transpose()
    }

    async fn list_repository_details(&self, page: Page<'_>) -> MetaResult<Vec<Repository>> {
        let query = format!(
            "SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE name > $1 ORDER BY name LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(query))
            .bind(page.after.unwrap_or(""))
            .bind(i64::from(page.limit))
            .fetch_all(&self.reads)
            .await?;
        rows.iter().map(repository).collect()
    }

    async fn delete_repository(&self, name: &str, force: bool) -> MetaResult<RepositoryRemoval> {
        let mut tx = self.begin().await?;
        // Uploads first, in the order finishing an upload takes them (its upload row, then the
        // repository); they are not tied to the row, and their staged bytes are swept as
        // orphans. A refused delete rolls this back.
        sqlx::query("DELETE FROM uploads WHERE repository = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let query = format!("SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE name = $1");
        let row = sqlx::query(self.locking(&query, "FOR UPDATE"))
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(RepositoryRemoval::NotFound);
        };
        let removed = repository(&row)?;
        let holds_images =
            sqlx::query("SELECT 1 AS found FROM manifests WHERE repository = $1 LIMIT 1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
        if holds_images && !force {
            return Ok(RepositoryRemoval::NotEmpty);
        }
        // Tags, references, blob links and resource tags go with the row (ON DELETE CASCADE).
        sqlx::query("DELETE FROM tags WHERE repository = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM manifests WHERE repository = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM repositories WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let event = Event::repository("DELETE_REPOSITORY", name);
        log_event(&mut tx, now_millis(), event).await?;
        tx.commit().await?;
        Ok(RepositoryRemoval::Removed(removed))
    }

    async fn set_tag_mutability(
        &self,
        name: &str,
        mutability: TagMutability,
        exclusions: &[String],
    ) -> MetaResult<bool> {
        let updated = sqlx::query(
            "UPDATE repositories SET tag_mutability = $1, tag_mutability_exclusions = $2 \
             WHERE name = $3",
        )
        .bind(mutability.as_str())
        .bind(exclusions_json(exclusions))
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn set_scan_on_push(&self, name: &str, scan_on_push: bool) -> MetaResult<bool> {
        let updated = sqlx::query("UPDATE repositories SET scan_on_push = $1 WHERE name = $2")
            .bind(scan_on_push)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn replace_repository_policy(
        &self,
        name: &str,
        policy: Option<&str>,
    ) -> MetaResult<bool> {
        let updated = sqlx::query("UPDATE repositories SET policy = $1 WHERE name = $2")
            .bind(policy)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn resource_tags(&self, name: &str) -> MetaResult<Option<Vec<ResourceTag>>> {
        if self.get_repository(name).await?.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT key, value FROM repository_tags WHERE repository = $1 ORDER BY key",
        )
        .bind(name)
        .fetch_all(&self.reads)
        .await?;
        let tags = rows
            .iter()
            .map(|row| {
                Ok(ResourceTag {
                    key: row.try_get("key")?,
                    value: row.try_get("value")?,
                })
            })
            .collect::<MetaResult<_>>()?;
        Ok(Some(tags))
    }

    async fn tag_repository(
        &self,
        name: &str,
        tags: &[ResourceTag],
        max: usize,
    ) -> MetaResult<Tagging> {
        let mut tx = self.begin().await?;
        let found = sqlx::query(self.locking(
            "SELECT 1 AS found FROM repositories WHERE name = $1",
            "FOR UPDATE",
        ))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        if found.is_none() {
            return Ok(Tagging::NotFound);
        }
        for tag in tags {
            sqlx::query(
                "INSERT INTO repository_tags (repository, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (repository, key) DO UPDATE SET value = excluded.value",
            )
            .bind(name)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut *tx)
            .await?;
        }
        let keys = sqlx::query("SELECT key FROM repository_tags WHERE repository = $1")
            .bind(name)
            .fetch_all(&mut *tx)
            .await?;
        if names(&keys, "key")?.len() > max {
            return Ok(Tagging::TooMany);
        }
        tx.commit().await?;
        Ok(Tagging::Tagged)
    }

    async fn untag_repository(&self, name: &str, keys: &[String]) -> MetaResult<bool> {
        let mut tx = self.begin().await?;
        let found = sqlx::query("SELECT 1 AS found FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Ok(false);
        }
        for key in keys {
            sqlx::query("DELETE FROM repository_tags WHERE repository = $1 AND key = $2")
                .bind(name)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn registry_id(&self, candidate: &str, now: Millis) -> MetaResult<String> {
        sqlx::query(
            "INSERT INTO registry (id, registry_id, created_at) VALUES (1, $1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(candidate)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT registry_id FROM registry WHERE id = 1")
            .fetch_one(&self.reads)
            .await?;
        Ok(row.try_get("registry_id")?)
    }
}
