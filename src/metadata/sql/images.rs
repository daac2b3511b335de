//! [`ImageStore`] over SQL: images (manifests with their tags) as ECR lists and describes
//! them, and the removal of a tag that takes its image along when it was the last. Part of
//! `metadata::sql`.
//!
//! Listings are keyset pages over the manifests' primary key (repository, digest), joined to
//! their tags, so a page costs the same wherever it starts.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::content::delete_manifest_rows;
use super::{Event, SqlStore, get_u64, log_event};
use crate::metadata::{
    ImageIdRecord, ImageRecord, ImageStore, ManifestKey, MetaError, MetaResult, Millis, Page,
    TagStatus, Untagging,
};

/// How often a tag removal starts over after a concurrent push moved the tag between reading
/// it and removing it.
const UNTAG_ATTEMPTS: usize = 3;

/// What an image's detail is made of, for a manifest `m`. An index's size is its largest
/// child's, as ECR reports it; other manifests have no child manifests.
const IMAGE_COLUMNS: &str = "m.repository, m.digest, m.media_type, m.artifact_type, m.subject, \
     m.pushed_at, m.last_pulled_at, COALESCE(\
       (SELECT MAX(c.total_size) FROM manifest_references r \
        JOIN manifests c ON c.repository = r.repository AND c.digest = r.target \
        WHERE r.repository = m.repository AND r.manifest = m.digest AND r.kind = 'manifest'), \
       m.total_size) AS image_size";

/// Up to `$3` images of repository `$1` meeting `condition` (on manifest `m`), in digest
/// order, one row per tag (or one with a NULL tag).
fn images_query(condition: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(format!(
        "SELECT i.*, t.name AS tag FROM \
         (SELECT {IMAGE_COLUMNS} FROM manifests m WHERE m.repository = $1 AND {condition} \
          ORDER BY m.digest LIMIT $3) i \
         LEFT JOIN tags t ON t.repository = i.repository AND t.manifest = i.digest \
         ORDER BY i.digest, t.name"
    ))
}

/// The condition on manifest `m` that selects images of `status`, for listings of digests
/// from `$2` on. (The bound on the tags, implied by the join, lets Postgres start its scan of
/// them there too rather than at the repository's first tag.)
fn tag_status_condition(status: TagStatus) -> &'static str {
    match status {
        TagStatus::Tagged => {
            "EXISTS (SELECT 1 FROM tags any_tag WHERE any_tag.repository = m.repository \
             AND any_tag.manifest = m.digest AND any_tag.manifest >= $2)"
        }
        TagStatus::Untagged => {
            "NOT EXISTS (SELECT 1 FROM tags any_tag WHERE any_tag.repository = m.repository \
             AND any_tag.manifest = m.digest AND any_tag.manifest >= $2)"
        }
        TagStatus::Any => "1 = 1",
    }
}

/// Folds rows of [`images_query`] (ordered by digest) into images with their tags.
fn images_of(rows: &[AnyRow]) -> MetaResult<Vec<ImageRecord>> {
    let mut images: Vec<ImageRecord> = Vec::new();
    for row in rows {
        let digest: String = row.try_get("digest")?;
        let tag: Option<String> = row.try_get("tag")?;
        if let Some(image) = images.last_mut().filter(|image| image.digest == digest) {
            image.tags.extend(tag);
            continue;
        }
        images.push(ImageRecord {
            digest,
            tags: tag.into_iter().collect(),
            media_type: row.try_get("media_type")?,
            artifact_type: row.try_get("artifact_type")?,
            subject: row.try_get("subject")?,
            size: get_u64(row, "image_size")?,
            pushed_at: row.try_get("pushed_at")?,
            last_pulled_at: row.try_get("last_pulled_at")?,
        });
    }
    Ok(images)
}

#[async_trait]
impl ImageStore for SqlStore {
    async fn list_image_ids(
        &self,
        repository: &str,
        status: TagStatus,
        after: Option<&ImageIdRecord>,
        limit: u32,
    ) -> MetaResult<Vec<ImageIdRecord>> {
        // `m.digest >= $2` bounds the scan of the primary key; an untagged image's entry
        // sorts as if its tag were empty.
        let query = format!(
            "SELECT m.digest, t.name AS tag FROM manifests m \
             LEFT JOIN tags t ON t.repository = m.repository AND t.manifest = m.digest \
             AND t.manifest >= $2 \
             WHERE m.repository = $1 AND m.digest >= $2 \
             AND (m.digest > $2 OR COALESCE(t.name, '') > $3) AND {} \
             ORDER BY m.digest, COALESCE(t.name, '') LIMIT $4",
            tag_status_condition(status)
        );
        let rows = sqlx::query(AssertSqlSafe(query))
            .bind(repository)
            .bind(after.map_or("", |id| id.digest.as_str()))
            .bind(after.and_then(|id| id.tag.as_deref()).unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.reads)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ImageIdRecord {
                    digest: row.try_get("digest")?,
                    tag: row.try_get("tag")?,
                })
            })
            .collect()
    }

    async fn list_images(
        &self,
        repository: &str,
        status: TagStatus,
        page: Page<'_>,
    ) -> MetaResult<Vec<ImageRecord>> {
        let condition = format!("m.digest > $2 AND {}", tag_status_condition(status));
        let rows = sqlx::query(images_query(&condition))
            .bind(repository)
            .bind(page.after.unwrap_or(""))
            .bind(i64::from(page.limit))
            .fetch_all(&self.reads)
            .await?;
        images_of(&rows)
    }

    async fn get_image(
        &self,
        repository: &str,
        key: ManifestKey<'_>,
    ) -> MetaResult<Option<ImageRecord>> {
        let (condition, value) = match key {
            ManifestKey::Digest(digest) => ("m.digest = $2", digest),
            ManifestKey::Tag(tag) => (
                "m.digest = (SELECT manifest FROM tags WHERE repository = $1 AND name = $2)",
                tag,
            ),
        };
        let rows = sqlx::query(images_query(condition))
            .bind(repository)
            .bind(value)
            .bind(1_i64)
            .fetch_all(&self.reads)
            .await?;
        Ok(images_of(&rows)?.pop())
    }

    async fn untag_image(
        &self,
        repository: &str,
        tag: &str,
        expected: Option<&str>,
        now: Millis,
    ) -> MetaResult<Untagging> {
        let mut tx = self.begin().await?;
        if self.lock_repository(&mut tx, repository).await?.is_none() {
            return Ok(Untagging::NotFound);
        }
        for _ in 0..UNTAG_ATTEMPTS {
            let Some(row) =
                sqlx::query("SELECT manifest FROM tags WHERE repository = $1 AND name = $2")
                    .bind(repository)
                    .bind(tag)
                    .fetch_optional(&mut *tx)
                    .await?
            else {
                return Ok(Untagging::NotFound);
            };
            let digest: String = row.try_get("manifest")?;
            if expected.is_some_and(|expected| expected != digest) {
                return Ok(Untagging::OnOtherImage { digest });
            }
            // Should the image go with its last tag, its blobs' links stay its grace period.
            self.touch_references(&mut tx, repository, &digest, now)
                .await?;
            // The image first, then its tag, in the order a push takes them, so that a push
            // tagging or listing the image waits for this removal or this removal for it.
            sqlx::query(self.locking(
                "SELECT 1 AS found FROM manifests WHERE repository = $1 AND digest = $2",
                "FOR UPDATE",
            ))
            .bind(repository)
            .bind(&digest)
            .fetch_optional(&mut *tx)
            .await?;
            let removed = sqlx::query(
                "DELETE FROM tags WHERE repository = $1 AND name = $2 AND manifest = $3",
            )
            .bind(repository)
            .bind(tag)
            .bind(&digest)
            .execute(&mut *tx)
            .await?;
            if removed.rows_affected() == 0 {
                continue; // a push moved or a delete removed the tag meanwhile: look again
            }
            log_event(&mut tx, now, Event::tag("UNTAG", repository, &digest, tag)).await?;
            let still_needed = sqlx::query(
                "SELECT 1 AS found FROM tags WHERE repository = $1 AND manifest = $2 \
                 UNION ALL \
                 SELECT 1 AS found FROM manifest_references \
                 WHERE repository = $1 AND target = $2 AND kind = 'manifest' LIMIT 1",
            )
            .bind(repository)
            .bind(&digest)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
            if !still_needed {
                delete_manifest_rows(&mut tx, repository, &digest, None, now).await?;
            }
            tx.commit().await?;
            return Ok(Untagging::Untagged { digest });
        }
        Err(MetaError::Database(format!(
            "tag {tag} of {repository} kept moving while it was being removed"
        )))
    }
}
