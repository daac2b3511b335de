//! [`MetadataStore`] over SQL, one implementation for SQLite (embedded default) and Postgres
//! (production). Queries are written once in the dialect both accept (`$n` placeholders,
//! `ON CONFLICT`, `RETURNING`); only the schema differs, in `migrations/<backend>/`.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use super::{
    AccessKey, IdentityStore, ManifestKey, MetaError, MetaResult, MetadataStore, Millis,
    NewManifest, Page, Referrer, RepositoryAccess, StoredManifest, Upload, User,
};
use crate::storage::UploadPart;

/// Which SQL backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Result<Backend, String> {
        match url.split_once(':').map(|(scheme, _)| scheme) {
            Some("sqlite") => Ok(Backend::Sqlite),
            Some("postgres" | "postgresql") => Ok(Backend::Postgres),
            _ => Err(format!(
                "unsupported database URL {url:?}: use sqlite://… or postgres://…"
            )),
        }
    }
}

pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
}

impl From<sqlx::Error> for MetaError {
    fn from(e: sqlx::Error) -> Self {
        MetaError::Database(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for MetaError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        MetaError::Database(format!("migration failed: {e}"))
    }
}

impl SqlStore {
    /// Connects to `url` and applies pending migrations. A SQLite file is created if missing.
    pub async fn connect(url: &str) -> MetaResult<SqlStore> {
        let store = SqlStore::connect_without_migrating(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub async fn connect_without_migrating(url: &str) -> MetaResult<SqlStore> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url).map_err(MetaError::Database)?;
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let pool = match backend {
            Backend::Sqlite => {
                let url = if url.contains('?') {
                    url.to_string()
                } else {
                    format!("{url}?mode=rwc")
                };
                // One connection: SQLite has one writer anyway, and a single connection can
                // never deadlock upgrading a read transaction to a write.
                options
                    .max_connections(1)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            )
                            .await
                            .map(|_| ())
                        })
                    })
                    .connect_with(AnyConnectOptions::from_str(&url)?)
                    .await?
            }
            Backend::Postgres => options.max_connections(16).connect(url).await?,
        };
        Ok(SqlStore { pool, backend })
    }

    /// Applies pending migrations. On Postgres sqlx holds an advisory lock meanwhile, so
    /// nodes starting together do not race.
    pub async fn migrate(&self) -> MetaResult<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn get_u64(row: &AnyRow, column: &str) -> MetaResult<u64> {
    let value: i64 = row.try_get(column)?;
    u64::try_from(value).map_err(|_| MetaError::Corrupt(format!("{column} = {value}")))
}

fn upload_from_row(row: &AnyRow) -> MetaResult<Upload> {
    Ok(Upload {
        id: row.try_get("id")?,
        repository: row.try_get("repository")?,
        size: get_u64(row, "size")?,
        hash_state: row.try_get("hash_state")?,
        parts: Vec::new(),
        updated_at: row.try_get("updated_at")?,
    })
}

const ENSURE_REPOSITORY: &str =
    "INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING";

const LOG_EVENT: &str = "INSERT INTO events (at, action, repository, digest, tag, previous_digest) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// One row of the append-only event log.
struct Event<'a> {
    action: &'a str,
    repository: &'a str,
    digest: Option<&'a str>,
    tag: Option<&'a str>,
    previous_digest: Option<&'a str>,
}

async fn log_event<'c, E>(executor: E, now: Millis, event: Event<'_>) -> MetaResult<()>
where
    E: Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(LOG_EVENT)
        .bind(now)
        .bind(event.action)
        .bind(event.repository)
        .bind(event.digest)
        .bind(event.tag)
        .bind(event.previous_digest)
        .execute(executor)
        .await?;
    Ok(())
}

#[async_trait]
impl MetadataStore for SqlStore {
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
        let row = sqlx::query(
            "SELECT id, repository, size, hash_state, updated_at FROM uploads WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut upload = upload_from_row(&row)?;
        let parts = sqlx::query(
            "SELECT start, size, storage_key FROM upload_parts WHERE upload_id = $1 ORDER BY start",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        for part in parts {
            upload.parts.push(UploadPart {
                offset: get_u64(&part, "start")?,
                size: get_u64(&part, "size")?,
                key: part.try_get("storage_key")?,
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
        let mut tx = self.pool.begin().await?;
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
            "INSERT INTO upload_parts (upload_id, start, size, storage_key) VALUES ($1, $2, $3, $4)",
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
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok(row.try_get("id")?)).collect()
    }

    async fn complete_upload(
        &self,
        id: &str,
        digest: &str,
        size: u64,
        now: Millis,
    ) -> MetaResult<bool> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query("DELETE FROM uploads WHERE id = $1 RETURNING repository")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let repository: String = row.try_get("repository")?;
        sqlx::query(ENSURE_REPOSITORY)
            .bind(&repository)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(digest)
        .bind(to_i64(size))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO repository_blobs (repository, digest, linked_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&repository)
        .bind(digest)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn mount_blob(
        &self,
        repository: &str,
        from: &str,
        digest: &str,
        now: Millis,
    ) -> MetaResult<bool> {
        let mut tx = self.pool.begin().await?;
        let linked = sqlx::query(
            "SELECT 1 AS linked FROM repository_blobs WHERE repository = $1 AND digest = $2",
        )
        .bind(from)
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await?;
        if linked.is_none() {
            return Ok(false);
        }
        sqlx::query(ENSURE_REPOSITORY)
            .bind(repository)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO repository_blobs (repository, digest, linked_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(repository)
        .bind(digest)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn linked_blob(&self, repository: &str, digest: &str) -> MetaResult<Option<u64>> {
        let row = sqlx::query(
            "SELECT b.size FROM repository_blobs l JOIN blobs b ON b.digest = l.digest \
             WHERE l.repository = $1 AND l.digest = $2",
        )
        .bind(repository)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| get_u64(&row, "size")).transpose()
    }

    async fn unlink_blob(&self, repository: &str, digest: &str, now: Millis) -> MetaResult<bool> {
        let mut tx = self.pool.begin().await?;
        let deleted =
            sqlx::query("DELETE FROM repository_blobs WHERE repository = $1 AND digest = $2")
                .bind(repository)
                .bind(digest)
                .execute(&mut *tx)
                .await?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        let event = Event {
            action: "DELETE_BLOB",
            repository,
            digest: Some(digest),
            tag: None,
            previous_digest: None,
        };
        log_event(&mut *tx, now, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn put_manifest(
        &self,
        manifest: &NewManifest,
        tags: &[String],
        now: Millis,
    ) -> MetaResult<()> {
        let repository = manifest.repository.as_str();
        let digest = manifest.digest.as_str();
        let mut tx = self.pool.begin().await?;
        sqlx::query(ENSURE_REPOSITORY)
            .bind(repository)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO manifests (repository, digest, media_type, artifact_type, subject, \
             annotations, content, size, total_size, pushed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
        )
        .bind(repository)
        .bind(digest)
        .bind(&manifest.media_type)
        .bind(&manifest.artifact_type)
        .bind(&manifest.subject)
        .bind(&manifest.annotations)
        .bind(manifest.content.clone())
        .bind(to_i64(manifest.content.len() as u64))
        .bind(to_i64(manifest.total_size))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() > 0 {
            let references = manifest
                .blob_references
                .iter()
                .map(|target| (target, "blob"))
                .chain(manifest.manifest_references.iter().map(|t| (t, "manifest")));
            for (target, kind) in references {
                sqlx::query(
                    "INSERT INTO manifest_references (repository, manifest, target, kind) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(repository)
                .bind(digest)
                .bind(target)
                .bind(kind)
                .execute(&mut *tx)
                .await?;
            }
        }
        let event = Event {
            action: "PUSH",
            repository,
            digest: Some(digest),
            tag: None,
            previous_digest: None,
        };
        log_event(&mut *tx, now, event).await?;
        for tag in tags {
            let previous: Option<String> =
                sqlx::query("SELECT manifest FROM tags WHERE repository = $1 AND name = $2")
                    .bind(repository)
                    .bind(tag)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|row| row.try_get("manifest"))
                    .transpose()?;
            if previous.as_deref() != Some(digest) {
                sqlx::query(
                    "INSERT INTO tags (repository, name, manifest, updated_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (repository, name) DO UPDATE \
                     SET manifest = excluded.manifest, updated_at = excluded.updated_at",
                )
                .bind(repository)
                .bind(tag)
                .bind(digest)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let event = Event {
                    action: "TAG",
                    repository,
                    digest: Some(digest),
                    tag: Some(tag),
                    previous_digest: previous.as_deref(),
                };
                log_event(&mut *tx, now, event).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_manifest(
        &self,
        repository: &str,
        key: ManifestKey<'_>,
    ) -> MetaResult<Option<StoredManifest>> {
        let query = match key {
            ManifestKey::Tag(tag) => sqlx::query(
                "SELECT m.digest, m.media_type, m.content FROM tags t \
                 JOIN manifests m ON m.repository = t.repository AND m.digest = t.manifest \
                 WHERE t.repository = $1 AND t.name = $2",
            )
            .bind(repository)
            .bind(tag),
            ManifestKey::Digest(digest) => sqlx::query(
                "SELECT digest, media_type, content FROM manifests \
                 WHERE repository = $1 AND digest = $2",
            )
            .bind(repository)
            .bind(digest),
        };
        let Some(row) = query.fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        Ok(Some(StoredManifest {
            digest: row.try_get("digest")?,
            media_type: row.try_get("media_type")?,
            content: row.try_get("content")?,
        }))
    }

    async fn missing_manifests(
        &self,
        repository: &str,
        digests: &[String],
    ) -> MetaResult<Vec<String>> {
        let mut missing = Vec::new();
        for digest in digests {
            let found = sqlx::query(
                "SELECT 1 AS found FROM manifests WHERE repository = $1 AND digest = $2",
            )
            .bind(repository)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
            if found.is_none() {
                missing.push(digest.clone());
            }
        }
        Ok(missing)
    }

    async fn record_pull(&self, repository: &str, digest: &str, now: Millis) -> MetaResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE manifests SET last_pulled_at = $1 WHERE repository = $2 AND digest = $3",
        )
        .bind(now)
        .bind(repository)
        .bind(digest)
        .execute(&mut *tx)
        .await?;
        let event = Event {
            action: "PULL",
            repository,
            digest: Some(digest),
            tag: None,
            previous_digest: None,
        };
        log_event(&mut *tx, now, event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_manifest(
        &self,
        repository: &str,
        digest: &str,
        now: Millis,
    ) -> MetaResult<bool> {
        let mut tx = self.pool.begin().await?;
        let untagged =
            sqlx::query("DELETE FROM tags WHERE repository = $1 AND manifest = $2 RETURNING name")
                .bind(repository)
                .bind(digest)
                .fetch_all(&mut *tx)
                .await?;
        let deleted = sqlx::query("DELETE FROM manifests WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        for row in &untagged {
            let tag: String = row.try_get("name")?;
            let event = Event {
                action: "UNTAG",
                repository,
                digest: Some(digest),
                tag: Some(&tag),
                previous_digest: None,
            };
            log_event(&mut *tx, now, event).await?;
        }
        let event = Event {
            action: "DELETE",
            repository,
            digest: Some(digest),
            tag: None,
            previous_digest: None,
        };
        log_event(&mut *tx, now, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_tag(&self, repository: &str, tag: &str, now: Millis) -> MetaResult<bool> {
        let mut tx = self.pool.begin().await?;
        let Some(row) =
            sqlx::query("DELETE FROM tags WHERE repository = $1 AND name = $2 RETURNING manifest")
                .bind(repository)
                .bind(tag)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(false);
        };
        let digest: String = row.try_get("manifest")?;
        let event = Event {
            action: "UNTAG",
            repository,
            digest: Some(&digest),
            tag: Some(tag),
            previous_digest: None,
        };
        log_event(&mut *tx, now, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn list_tags(&self, repository: &str, page: Page<'_>) -> MetaResult<Option<Vec<String>>> {
        let exists = sqlx::query("SELECT 1 AS found FROM repositories WHERE name = $1")
            .bind(repository)
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT name FROM tags WHERE repository = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(repository)
        .bind(page.after.unwrap_or(""))
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await?;
        let names = rows.iter().map(|row| row.try_get("name"));
        Ok(Some(names.collect::<Result<_, _>>()?))
    }

    async fn list_repositories(&self, page: Page<'_>) -> MetaResult<Vec<String>> {
        let rows =
            sqlx::query("SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2")
                .bind(page.after.unwrap_or(""))
                .bind(i64::from(page.limit))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|row| Ok(row.try_get("name")?)).collect()
    }

    async fn referrers(
        &self,
        repository: &str,
        subject: &str,
        artifact_type: Option<&str>,
    ) -> MetaResult<Vec<Referrer>> {
        let rows = sqlx::query(
            "SELECT digest, media_type, size, artifact_type, annotations FROM manifests \
             WHERE repository = $1 AND subject = $2 ORDER BY digest",
        )
        .bind(repository)
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        let mut referrers = Vec::with_capacity(rows.len());
        for row in rows {
            let referrer = Referrer {
                digest: row.try_get("digest")?,
                media_type: row.try_get("media_type")?,
                size: get_u64(&row, "size")?,
                artifact_type: row.try_get("artifact_type")?,
                annotations: row.try_get("annotations")?,
            };
            if artifact_type.is_none() || referrer.artifact_type.as_deref() == artifact_type {
                referrers.push(referrer);
            }
        }
        Ok(referrers)
    }
}

fn names(rows: &[AnyRow], column: &str) -> MetaResult<Vec<String>> {
    rows.iter().map(|row| Ok(row.try_get(column)?)).collect()
}

#[async_trait]
impl IdentityStore for SqlStore {
    async fn create_user(&self, user: &User, now: Millis) -> MetaResult<bool> {
        let created = sqlx::query(
            "INSERT INTO users (name, password_hash, policy, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(&user.policy)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(created.rows_affected() == 1)
    }

    async fn get_user(&self, name: &str) -> MetaResult<Option<User>> {
        let row = sqlx::query("SELECT name, password_hash, policy FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(User {
                name: row.try_get("name")?,
                password_hash: row.try_get("password_hash")?,
                policy: row.try_get("policy")?,
            })
        })
        .transpose()
    }

    async fn list_users(&self) -> MetaResult<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        names(&rows, "name")
    }

    async fn delete_user(&self, name: &str) -> MetaResult<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM access_keys WHERE user_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn set_user_policy(&self, name: &str, policy: Option<&str>) -> MetaResult<bool> {
        let updated = sqlx::query("UPDATE users SET policy = $1 WHERE name = $2")
            .bind(policy)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn create_access_key(&self, key: &AccessKey, now: Millis) -> MetaResult<()> {
        sqlx::query(
            "INSERT INTO access_keys (id, user_name, secret_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&key.id)
        .bind(&key.user)
        .bind(&key.secret_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_access_key(&self, id: &str) -> MetaResult<Option<AccessKey>> {
        let row = sqlx::query("SELECT id, user_name, secret_hash FROM access_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(AccessKey {
                id: row.try_get("id")?,
                user: row.try_get("user_name")?,
                secret_hash: row.try_get("secret_hash")?,
            })
        })
        .transpose()
    }

    async fn list_access_keys(&self, user: &str) -> MetaResult<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM access_keys WHERE user_name = $1 ORDER BY id")
            .bind(user)
            .fetch_all(&self.pool)
            .await?;
        names(&rows, "id")
    }

    async fn delete_access_key(&self, id: &str) -> MetaResult<bool> {
        let deleted = sqlx::query("DELETE FROM access_keys WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn repository_access(&self, repository: &str) -> MetaResult<RepositoryAccess> {
        let row = sqlx::query(
            "SELECT CAST(CASE WHEN public THEN 1 ELSE 0 END AS BIGINT) AS public, policy \
             FROM repositories WHERE name = $1",
        )
        .bind(repository)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(RepositoryAccess::default());
        };
        Ok(RepositoryAccess {
            public: row.try_get::<i64, _>("public")? != 0,
            policy: row.try_get("policy")?,
        })
    }

    async fn set_repository_policy(
        &self,
        repository: &str,
        policy: Option<&str>,
        now: Millis,
    ) -> MetaResult<()> {
        sqlx::query(
            "INSERT INTO repositories (name, created_at, policy) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET policy = excluded.policy",
        )
        .bind(repository)
        .bind(now)
        .bind(policy)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_repository_public(
        &self,
        repository: &str,
        public: bool,
        now: Millis,
    ) -> MetaResult<()> {
        sqlx::query(
            "INSERT INTO repositories (name, created_at, public) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET public = excluded.public",
        )
        .bind(repository)
        .bind(now)
        .bind(public)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn signing_key(&self, candidate: &[u8], now: Millis) -> MetaResult<Vec<u8>> {
        sqlx::query(
            "INSERT INTO signing_keys (id, pkcs8, created_at) VALUES (1, $1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(candidate.to_vec())
        .bind(now)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT pkcs8 FROM signing_keys WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("pkcs8")?)
    }
}
