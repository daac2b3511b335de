//! Pull-through cache rules and upstream credentials in SQL.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::SqlStore;
use crate::metadata::{MetaResult, Millis, PullThroughRule, PullThroughStore, UpstreamCredential};

const RULE_COLUMNS: &str = "prefix, upstream_url, credential_arn, created_at, updated_at";

fn rule(row: &AnyRow) -> MetaResult<PullThroughRule> {
    Ok(PullThroughRule {
        prefix: row.try_get("prefix")?,
        upstream_url: row.try_get("upstream_url")?,
        credential_arn: row.try_get("credential_arn")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Forgets the credential `arn` unless a rule still names it.
async fn forget_unused_credential(
    tx: &mut Transaction<'static, Any>,
    arn: Option<&str>,
) -> MetaResult<()> {
    let Some(arn) = arn else {
        return Ok(());
    };
    sqlx::query(
        "DELETE FROM upstream_credentials WHERE arn = $1 \
         AND NOT EXISTS (SELECT 1 FROM pull_through_rules WHERE credential_arn = $1)",
    )
    .bind(arn)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl PullThroughStore for SqlStore {
    async fn create_pull_through_rule(
        &self,
        rule: &PullThroughRule,
        credential: Option<&UpstreamCredential>,
    ) -> MetaResult<bool> {
        let mut tx = self.begin().await?;
        let created = sqlx::query(
            "INSERT INTO pull_through_rules \
             (prefix, upstream_url, credential_arn, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&rule.prefix)
        .bind(&rule.upstream_url)
        .bind(&rule.credential_arn)
        .bind(rule.created_at)
        .bind(rule.updated_at)
        .execute(&mut *tx)
        .await?;
        if created.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(credential) = credential {
            sqlx::query(
                "INSERT INTO upstream_credentials (arn, username, password, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (arn) DO UPDATE \
                 SET username = excluded.username, password = excluded.password",
            )
            .bind(&credential.arn)
            .bind(&credential.username)
            .bind(&credential.password)
            .bind(credential.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn list_pull_through_rules(&self) -> MetaResult<Vec<PullThroughRule>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} FROM pull_through_rules ORDER BY prefix"
        )))
        .fetch_all(&self.reads)
        .await?;
        rows.iter().map(rule).collect()
    }

    async fn set_pull_through_credential(
        &self,
        prefix: &str,
        credential_arn: Option<&str>,
        now: Millis,
    ) -> MetaResult<Option<PullThroughRule>> {
        let mut tx = self.begin().await?;
        let select = format!("SELECT {RULE_COLUMNS} FROM pull_through_rules WHERE prefix = $1");
        let Some(before) = sqlx::query(sqlx::AssertSqlSafe(select))
            .bind(prefix)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let before = rule(&before)?;
        sqlx::query(
            "UPDATE pull_through_rules SET credential_arn = $2, updated_at = $3 WHERE prefix = $1",
        )
        .bind(prefix)
        .bind(credential_arn)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        forget_unused_credential(&mut tx, before.credential_arn.as_deref()).await?;
        tx.commit().await?;
        Ok(Some(PullThroughRule {
            credential_arn: credential_arn.map(str::to_string),
            updated_at: now,
            ..before
        }))
    }

    async fn delete_pull_through_rule(&self, prefix: &str) -> MetaResult<Option<PullThroughRule>> {
        let mut tx = self.begin().await?;
        let delete =
            format!("DELETE FROM pull_through_rules WHERE prefix = $1 RETURNING {RULE_COLUMNS}");
        let Some(deleted) = sqlx::query(sqlx::AssertSqlSafe(delete))
            .bind(prefix)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let deleted = rule(&deleted)?;
        forget_unused_credential(&mut tx, deleted.credential_arn.as_deref()).await?;
        tx.commit().await?;
        Ok(Some(deleted))
    }

    async fn upstream_credential(&self, arn: &str) -> MetaResult<Option<UpstreamCredential>> {
        let row = sqlx::query(
            "SELECT arn, username, password, created_at FROM upstream_credentials WHERE arn = $1",
        )
        .bind(arn)
        .fetch_optional(&self.reads)
        .await?;
        row.map(|row| {
            Ok(UpstreamCredential {
                arn: row.try_get("arn")?,
                username: row.try_get("username")?,
                password: row.try_get("password")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn mark_tag_checked(
        &self,
        repository: &str,
        tag: &str,
        digest: &str,
        now: Millis,
    ) -> MetaResult<()> {
        sqlx::query(
            "UPDATE tags SET upstream_checked_at = $4 \
             WHERE repository = $1 AND name = $2 AND manifest = $3 \
             AND upstream_checked_at IS NOT NULL",
        )
        .bind(repository)
        .bind(tag)
        .bind(digest)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
