//! [`IdentityStore`] over SQL: users, access keys, repository access settings, the signing
//! key, and login-attempt windows. Part of `metadata::sql`; knows nothing of how passwords are
//! checked or policies evaluated.

use async_trait::async_trait;
use sqlx::Row;

use super::{Backend, SqlStore, get_u64, names};
use crate::metadata::{
    AccessKey, AttemptWindow, Credential, IdentityStore, MetaError, MetaResult, Millis,
    RepositoryAccess, User, UserPolicy,
};

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

    async fn create_first_user(&self, user: &User, now: Millis) -> MetaResult<bool> {
        let mut tx = self.begin().await?;
        if self.backend == Backend::Postgres {
            // Under READ COMMITTED two nodes starting at once would both see no users and
            // insert different names. This lock mode conflicts with itself, so they take turns;
            // SQLite's one connection already runs one transaction at a time.
            sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let created = sqlx::query(
            "INSERT INTO users (name, password_hash, policy, created_at) \
             SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM users) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(&user.policy)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(created.rows_affected() == 1)
    }

    async fn get_user(&self, name: &str) -> MetaResult<Option<User>> {
        let row = sqlx::query("SELECT name, password_hash, policy FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.reads)
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
            .fetch_all(&self.reads)
            .await?;
        names(&rows, "name")
    }

    async fn delete_user(&self, name: &str) -> MetaResult<bool> {
        let mut tx = self.begin().await?;
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
            "INSERT INTO access_keys (id, user_name, secret_hash, secret, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&key.id)
        .bind(&key.user)
        .bind(&key.secret_hash)
        .bind(&key.secret)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_access_key(&self, id: &str) -> MetaResult<Option<AccessKey>> {
        let row =
            sqlx::query("SELECT id, user_name, secret_hash, secret FROM access_keys WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.reads)
                .await?;
        row.map(|row| {
            Ok(AccessKey {
                id: row.try_get("id")?,
                user: row.try_get("user_name")?,
                secret_hash: row.try_get("secret_hash")?,
                secret: row.try_get("secret")?,
            })
        })
        .transpose()
    }

    async fn list_access_keys(&self, user: &str) -> MetaResult<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM access_keys WHERE user_name = $1 ORDER BY id")
            .bind(user)
            .fetch_all(&self.reads)
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

    async fn repository_access(
        &self,
        repository: Option<&str>,
        user: Option<&str>,
        login: Option<&str>,
    ) -> MetaResult<RepositoryAccess> {
        // One row whatever exists: the one-row subquery is left-joined to the repository (none
        // for a NULL name), to the registry (none before any node has started), to the
        // login's credential (a key's before a user's) and to the user. `public` is BOOLEAN
        // on Postgres and INTEGER on SQLite, hence the CAST.
        let row = sqlx::query(
            "SELECT CAST(CASE WHEN r.public THEN 1 ELSE 0 END AS BIGINT) AS public, \
             r.policy AS policy, g.policy AS registry_policy, \
             c.user_name AS login_user, c.secret_hash AS login_hash, \
             u.name AS user_name, u.policy AS user_policy \
             FROM (SELECT 1 AS one) AS always \
             LEFT JOIN repositories r ON r.name = $1 \
             LEFT JOIN registry g ON g.id = 1 \
             LEFT JOIN (SELECT user_name, secret_hash FROM \
               (SELECT user_name, secret_hash, 0 AS rank FROM access_keys WHERE id = $3 \
                UNION ALL SELECT name, password_hash, 1 FROM users WHERE name = $3) AS found \
               ORDER BY rank LIMIT 1) AS c ON 1 = 1 \
             LEFT JOIN users u ON u.name = COALESCE($2, c.user_name)",
        )
        .bind(repository)
        .bind(user)
        .bind(login)
        .fetch_one(&self.reads)
        .await?;
        let login = match row.try_get::<Option<String>, _>("login_user")? {
            Some(user) => Some(Credential {
                user,
                secret_hash: row.try_get("login_hash")?,
            }),
            None => None,
        };
        let user = match row.try_get::<Option<String>, _>("user_name")? {
            Some(name) => Some(UserPolicy {
                name,
                policy: row.try_get("user_policy")?,
            }),
            None => None,
        };
        Ok(RepositoryAccess {
            login,
            user,
            public: row.try_get::<i64, _>("public")? != 0,
            policy: row.try_get("policy")?,
            registry_policy: row.try_get("registry_policy")?,
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

    async fn registry_policy(&self) -> MetaResult<Option<String>> {
        let row = sqlx::query("SELECT policy FROM registry WHERE id = 1")
            .fetch_optional(&self.reads)
            .await?;
        Ok(row.map(|row| row.try_get("policy")).transpose()?.flatten())
    }

    async fn set_registry_policy(&self, policy: Option<&str>) -> MetaResult<()> {
        // The row is made by `registry_id` (every node's start, the CLI before this), which
        // alone may pick the registry's id: the first one stored must stay.
        let updated = sqlx::query("UPDATE registry SET policy = $1 WHERE id = 1")
            .bind(policy)
            .execute(&self.pool)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(MetaError::Database(
                "the registry has no row for its policy yet (no node has started on this \
                 database)"
                    .into(),
            ));
        }
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
            .fetch_one(&self.reads)
            .await?;
        Ok(row.try_get("pkcs8")?)
    }

    async fn count_login_attempt(
        &self,
        key: &str,
        now: Millis,
        window: Millis,
    ) -> MetaResult<AttemptWindow> {
        // One upsert: concurrent attempts on every node serialize on the row.
        let row = sqlx::query(
            "INSERT INTO login_attempts (key, attempts, window_started_at) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
             attempts = CASE WHEN login_attempts.window_started_at <= $3 THEN 1 \
                        ELSE login_attempts.attempts + 1 END, \
             window_started_at = CASE WHEN login_attempts.window_started_at <= $3 THEN $2 \
                        ELSE login_attempts.window_started_at END \
             RETURNING attempts, window_started_at",
        )
        .bind(key)
        .bind(now)
        .bind(now - window)
        .fetch_one(&self.pool)
        .await?;
        let attempts = get_u64(&row, "attempts")?;
        Ok(AttemptWindow {
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            started_at: row.try_get("window_started_at")?,
        })
    }

    async fn forgive_login_attempt(&self, key: &str) -> MetaResult<()> {
        sqlx::query(
            "UPDATE login_attempts SET attempts = attempts - 1 WHERE key = $1 AND attempts > 0",
        )
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn purge_login_attempts(&self, before: Millis) -> MetaResult<u64> {
        let purged = sqlx::query("DELETE FROM login_attempts WHERE window_started_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(purged.rows_affected())
    }
}
