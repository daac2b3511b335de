//! [`ContentStore`] over SQL: blob links, manifests and their references, tags, listings.
//! Part of `metadata::sql`; knows nothing of HTTP or of the bytes themselves.
//!
//! A manifest push and a delete of something it references must not interleave: the push
//! holds the referenced rows `FOR SHARE` while it checks and inserts, a delete takes the row
//! `FOR UPDATE` before it looks for references, so one of them waits for the other's commit
//! and then sees it. (SQLite runs one transaction at a time, so it needs no locks.)

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{Any, Row, Transaction};

use super::replication::{Requeue, queue_replications};
use super::scans::queue_scan;
use super::webhooks::queue_notification;
use super::{
    BATCH, Backend, Event, SqlStore, get_u64, link_blob, log_event, log_events, names,
    placeholders, to_i64,
};
use crate::metadata::{
    ContentRef, ContentStore, LinkedBlob, ManifestKey, MetaResult, Millis, NewManifest,
    Notification, Page, Pulls, RefKind, Referrer, RefusedManifest, Removal, ScanOnPush,
    StoredManifest,
};

/// How many referencing manifests a refused delete reports.
const REFERRERS_REPORTED: i64 = 10;

impl SqlStore {
    /// Checks that the repository holds every reference with its declared size, locking the
    /// rows against deletion until the transaction ends, a few queries for all of them. The
    /// refusal is the first in `references`' order.
    async fn check_references(
        &self,
        tx: &mut Transaction<'static, Any>,
        repository: &str,
        references: &[(RefKind, &ContentRef)],
    ) -> MetaResult<Result<(), RefusedManifest>> {
        let mut stored = HashMap::new();
        for kind in [RefKind::Blob, RefKind::Manifest] {
            let digests: Vec<&str> = references
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, reference)| reference.digest.as_str())
                .collect();
            for batch in digests.chunks(BATCH) {
                let query = match kind {
                    RefKind::Blob => format!(
                        "SELECT l.digest AS digest, b.size AS size FROM repository_blobs l \
                         JOIN blobs b ON b.digest = l.digest \
                         WHERE l.repository = $1 AND l.digest IN ({})",
                        placeholders(2, batch.len())
                    ),
                    RefKind::Manifest => format!(
                        "SELECT digest, size FROM manifests \
                         WHERE repository = $1 AND digest IN ({})",
                        placeholders(2, batch.len())
                    ),
                };
                // Locked in digest order, as deletes lock them (see `touch_references`).
                let (order, lock) = match kind {
                    RefKind::Blob => ("l.digest", "FOR SHARE OF l"),
                    RefKind::Manifest => ("digest", "FOR SHARE"),
                };
                let query = match self.backend {
                    Backend::Sqlite => query,
                    Backend::Postgres => format!("{query} ORDER BY {order} COLLATE \"C\" {lock}"),
                };
                let rows = batch
                    .iter()
                    .fold(
                        sqlx::query(sqlx::AssertSqlSafe(query)).bind(repository),
                        |query, digest| query.bind(*digest),
                    )
                    .fetch_all(&mut **tx)
                    .await?;
                for row in rows {
                    let digest: String = row.try_get("digest")?;
                    stored.insert((kind, digest), get_u64(&row, "size")?);
                }
            }
        }
        for &(kind, reference) in references {
            let digest = reference.digest.clone();
            match stored.get(&(kind, digest)) {
                None => {
                    return Ok(Err(RefusedManifest::Unknown {
                        kind,
                        digest: reference.digest.clone(),
                    }));
                }
                Some(&stored) if stored != reference.size => {
                    return Ok(Err(RefusedManifest::SizeMismatch {
                        kind,
                        digest: reference.digest.clone(),
                        declared: reference.size,
                        stored,
                    }));
                }
                Some(_) => {}
            }
        }
        Ok(Ok(()))
    }

    /// Records what the new manifest references, a few rows per statement.
    async fn insert_references(
        &self,
        tx: &mut Transaction<'static, Any>,
        repository: &str,
        digest: &str,
        references: &[(RefKind, &ContentRef)],
    ) -> MetaResult<()> {
        for batch in references.chunks(BATCH) {
            let rows: Vec<String> = (0..batch.len())
                .map(|i| format!("($1, $2, {})", placeholders(3 + 2 * i, 2)))
                .collect();
            let query = format!(
                "INSERT INTO manifest_references (repository, manifest, target, kind) \
                 VALUES {} ON CONFLICT DO NOTHING",
                rows.join(", ")
            );
            batch
                .iter()
                .fold(
                    sqlx::query(sqlx::AssertSqlSafe(query))
                        .bind(repository)
                        .bind(digest),
                    |query, (kind, reference)| query.bind(&reference.digest).bind(kind_name(*kind)),
                )
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Locks the repository (see the lock order in `sql`), then the blob link or manifest
    /// `kind` names against concurrent pushes, and says why it cannot be removed, if it
    /// cannot: it is gone, or manifests of the repository reference it (a few of them are
    /// reported).
    async fn removable(
        &self,
        tx: &mut Transaction<'static, Any>,
        repository: &str,
        digest: &str,
        kind: RefKind,
    ) -> MetaResult<Option<Removal>> {
        if self.lock_repository(tx, repository).await?.is_none() {
            return Ok(Some(Removal::NotFound));
        }
        let row = match kind {
            RefKind::Blob => {
                "SELECT 1 AS found FROM repository_blobs \
                              WHERE repository = $1 AND digest = $2"
            }
            RefKind::Manifest => {
                "SELECT 1 AS found FROM manifests \
                                  WHERE repository = $1 AND digest = $2"
            }
        };
        let found = sqlx::query(self.locking(row, "FOR UPDATE"))
            .bind(repository)
            .bind(digest)
            .fetch_optional(&mut **tx)
            .await?;
        if found.is_none() {
            return Ok(Some(Removal::NotFound));
        }
        let rows = sqlx::query(
            "SELECT manifest FROM manifest_references \
             WHERE repository = $1 AND target = $2 AND kind = $3 ORDER BY manifest LIMIT $4",
        )
        .bind(repository)
        .bind(digest)
        .bind(kind_name(kind))
        .bind(REFERRERS_REPORTED)
        .fetch_all(&mut **tx)
        .await?;
        let users = names(&rows, "manifest")?;
        Ok((!users.is_empty()).then_some(Removal::ReferencedBy(users)))
    }
}

/// Deletes the manifest (which the caller has locked and found removable, after
/// [`SqlStore::touch_references`]) with every tag that points at it, logging each, the delete last with
/// `detail`.
pub(super) async fn delete_manifest_rows(
    tx: &mut Transaction<'static, Any>,
    repository: &str,
    digest: &str,
    detail: Option<&str>,
    now: Millis,
) -> MetaResult<()> {
    let untagged =
        sqlx::query("DELETE FROM tags WHERE repository = $1 AND manifest = $2 RETURNING name")
            .bind(repository)
            .bind(digest)
            .fetch_all(&mut **tx)
            .await?;
    sqlx::query("DELETE FROM manifests WHERE repository = $1 AND digest = $2")
        .bind(repository)
        .bind(digest)
        .execute(&mut **tx)
        .await?;
    for row in &untagged {
        let tag: String = row.try_get("name")?;
        log_event(tx, now, Event::tag("UNTAG", repository, digest, &tag)).await?;
    }
    let event = Event {
        detail,
        ..Event::of("DELETE", repository, digest)
    };
    log_event(tx, now, event).await?;
    // A delete with a reason is a lifecycle policy's expiry.
    let deleted = Notification {
        kind: if detail.is_some() {
            "lifecycle"
        } else {
            "delete"
        },
        repository,
        digest: Some(digest),
        tag: None,
        detail: detail.map(|reason| serde_json::json!({ "reason": reason }).to_string()),
    };
    queue_notification(tx, &deleted, None, now).await?;
    Ok(())
}

impl SqlStore {
    /// Deletes the manifest with its tags unless an index of the repository lists it, logging
    /// the delete with `detail`.
    pub(super) async fn remove_manifest(
        &self,
        repository: &str,
        digest: &str,
        detail: Option<&str>,
        now: Millis,
    ) -> MetaResult<Removal> {
        let mut tx = self.begin().await?;
        if self.lock_repository(&mut tx, repository).await?.is_none() {
            return Ok(Removal::NotFound);
        }
        self.touch_references(&mut tx, repository, digest, now)
            .await?;
        if let Some(kept) = self
            .removable(&mut tx, repository, digest, RefKind::Manifest)
            .await?
        {
            return Ok(kept);
        }
        delete_manifest_rows(&mut tx, repository, digest, detail, now).await?;
        tx.commit().await?;
        Ok(Removal::Removed)
    }
}

impl SqlStore {
    /// Marks the links of the blobs the manifest references as relied on now, so that once it
    /// is deleted a collection leaves them their grace period. Called with the repository
    /// locked and before the manifest is, locking the links in digest order: the order a push
    /// checks them in, so that a push and a delete never each wait for the other.
    pub(super) async fn touch_references(
        &self,
        tx: &mut Transaction<'static, Any>,
        repository: &str,
        digest: &str,
        now: Millis,
    ) -> MetaResult<()> {
        const REFERENCED: &str = "repository = $1 AND digest IN (\
             SELECT target FROM manifest_references \
             WHERE repository = $1 AND manifest = $2 AND kind = 'blob')";
        if self.backend == Backend::Postgres {
            let lock = format!(
                "SELECT 1 AS found FROM repository_blobs WHERE {REFERENCED} \
                 ORDER BY digest COLLATE \"C\" FOR UPDATE"
            );
            sqlx::query(sqlx::AssertSqlSafe(lock))
                .bind(repository)
                .bind(digest)
                .fetch_all(&mut **tx)
                .await?;
        }
        let touch = format!("UPDATE repository_blobs SET linked_at = $3 WHERE {REFERENCED}");
        sqlx::query(sqlx::AssertSqlSafe(touch))
            .bind(repository)
            .bind(digest)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

fn kind_name(kind: RefKind) -> &'static str {
    match kind {
        RefKind::Blob => "blob",
        RefKind::Manifest => "manifest",
    }
}

#[async_trait]
impl ContentStore for SqlStore {
    async fn mount_blob(
        &self,
        repository: &str,
        from: &str,
        digest: &str,
        create_repository: bool,
        now: Millis,
    ) -> MetaResult<bool> {
        let mut tx = self.begin().await?;
        // Both repositories before the link, in the store's lock order.
        let target = if create_repository {
            self.ensure_repository(&mut tx, repository, now).await?
        } else {
            self.lock_repository(&mut tx, repository).await?
        };
        if target.is_none() || self.lock_repository(&mut tx, from).await?.is_none() {
            return Ok(false);
        }
        let linked = sqlx::query(self.locking(
            "SELECT 1 AS linked FROM repository_blobs WHERE repository = $1 AND digest = $2",
            "FOR SHARE",
        ))
        .bind(from)
        .bind(digest)
        .fetch_optional(&mut *tx)
        .await?;
        if linked.is_none() {
            return Ok(false);
        }
        link_blob(&mut tx, repository, digest, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn linked_blob(&self, repository: &str, digest: &str) -> MetaResult<Option<LinkedBlob>> {
        let row = sqlx::query(
            "SELECT b.size, b.storage_key, l.linked_at FROM repository_blobs l \
             JOIN blobs b ON b.digest = l.digest WHERE l.repository = $1 AND l.digest = $2",
        )
        .bind(repository)
        .bind(digest)
        .fetch_optional(&self.reads)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(LinkedBlob {
            size: get_u64(&row, "size")?,
            storage_key: row.try_get("storage_key")?,
            linked_at: row.try_get("linked_at")?,
        }))
    }

    async fn refresh_link(&self, repository: &str, digest: &str, now: Millis) -> MetaResult<()> {
        sqlx::query(
            "UPDATE repository_blobs SET linked_at = $1 \
             WHERE repository = $2 AND digest = $3 AND linked_at < $1",
        )
        .bind(now)
        .bind(repository)
        .bind(digest)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn unlink_blob(
        &self,
        repository: &str,
        digest: &str,
        now: Millis,
    ) -> MetaResult<Removal> {
        let mut tx = self.begin().await?;
        if let Some(kept) = self
            .removable(&mut tx, repository, digest, RefKind::Blob)
            .await?
        {
            return Ok(kept);
        }
        sqlx::query("DELETE FROM repository_blobs WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .execute(&mut *tx)
            .await?;
        log_event(&mut tx, now, Event::of("DELETE_BLOB", repository, digest)).await?;
        tx.commit().await?;
        Ok(Removal::Removed)
    }

    async fn put_manifest(
        &self,
        manifest: &NewManifest,
        tags: &[String],
        create_repository: bool,
        now: Millis,
    ) -> MetaResult<Result<bool, RefusedManifest>> {
        let repository = manifest.repository.as_str();
        let digest = manifest.digest.as_str();
        // In digest order, blobs before manifests: the order in which deletes lock them too
        // (see `touch_references`), so that neither waits for what the other holds.
        let mut references: Vec<(RefKind, &ContentRef)> = manifest
            .blob_references
            .iter()
            .map(|r| (RefKind::Blob, r))
            .chain(
                manifest
                    .manifest_references
                    .iter()
                    .map(|r| (RefKind::Manifest, r)),
            )
            .collect();
        references.sort_by_key(|&(kind, reference)| (kind == RefKind::Manifest, &reference.digest));
        let mut tx = self.begin().await?;
        let locked = if create_repository {
            self.ensure_repository(&mut tx, repository, now).await?
        } else {
            self.lock_repository(&mut tx, repository).await?
        };
        let Some(locked) = locked else {
            return Ok(Err(RefusedManifest::RepositoryUnknown));
        };
        let cached = manifest.upstream_checked_at.is_some();
        if !cached
            && let Err(refused) = self
                .check_references(&mut tx, repository, &references)
                .await?
        {
            return Ok(Err(refused));
        }
        // A delete of this very manifest in progress finishes first, and the insert below then
        // stores it again, rather than the tags below finding it gone.
        if self.backend == Backend::Postgres {
            sqlx::query(
                "SELECT 1 AS found FROM manifests WHERE repository = $1 AND digest = $2 \
                 FOR SHARE",
            )
            .bind(repository)
            .bind(digest)
            .fetch_optional(&mut *tx)
            .await?;
        }
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
            self.insert_references(&mut tx, repository, digest, &references)
                .await?;
            let scan = match manifest.scan_on_push {
                ScanOnPush::Never => false,
                ScanOnPush::Always => true,
                ScanOnPush::IfRepositoryAsks => locked.settings.scan_on_push,
            };
            if scan {
                queue_scan(&mut tx, repository, digest, now).await?;
            }
        }
        let mut changed = inserted.rows_affected() > 0;
        let mut moved_tags = Vec::new();
        for tag in tags {
            let previous: Option<String> =
                sqlx::query("SELECT manifest FROM tags WHERE repository = $1 AND name = $2")
                    .bind(repository)
                    .bind(tag)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|row| row.try_get("manifest"))
                    .transpose()?;
            if previous.as_deref() == Some(digest) {
                continue;
            }
            // The condition is checked against the row as committed, so that of two pushes
            // racing to create a protected tag, the second waits and is refused.
            let moved = sqlx::query(
                "INSERT INTO tags (repository, name, manifest, updated_at, upstream_checked_at) \
                 VALUES ($1, $2, $3, $4, $6) \
                 ON CONFLICT (repository, name) DO UPDATE \
                 SET manifest = excluded.manifest, updated_at = excluded.updated_at, \
                 upstream_checked_at = excluded.upstream_checked_at \
                 WHERE $5 OR tags.manifest = excluded.manifest",
            )
            .bind(repository)
            .bind(tag)
            .bind(digest)
            .bind(now)
            .bind(!locked.settings.protects(tag))
            .bind(manifest.upstream_checked_at)
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() == 0 {
                return Ok(Err(RefusedManifest::TagProtected { tag: tag.clone() }));
            }
            changed = true;
            moved_tags.push((tag, previous));
        }
        let pushed = (now, Event::of("PUSH", repository, digest));
        let tagged = moved_tags.iter().map(|(tag, previous)| {
            let event = Event {
                previous_digest: previous.as_deref(),
                ..Event::tag("TAG", repository, digest, tag)
            };
            (now, event)
        });
        let events: Vec<_> = std::iter::once(pushed).chain(tagged).collect();
        log_events(&mut tx, &events).await?;
        if changed {
            let tags: Vec<&str> = moved_tags.iter().map(|(tag, _)| tag.as_str()).collect();
            // One notification per tag moved, or one for a new manifest pushed by digest.
            let notified: Vec<Option<&str>> = if tags.is_empty() {
                vec![None]
            } else {
                tags.iter().copied().map(Some).collect()
            };
            for tag in notified {
                let pushed = Notification {
                    kind: "push",
                    repository,
                    digest: Some(digest),
                    tag,
                    detail: None,
                };
                queue_notification(&mut tx, &pushed, None, now).await?;
            }
            let destinations = &manifest.replicate_to;
            let requeue = Requeue::Always;
            queue_replications(
                &mut tx,
                repository,
                digest,
                &tags,
                destinations,
                requeue,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(changed))
    }

    async fn tag_moves(
        &self,
        repository: &str,
        digest: &str,
        tags: &[String],
    ) -> MetaResult<Vec<Option<String>>> {
        let mut previous = Vec::with_capacity(tags.len());
        for tag in tags {
            let row = sqlx::query(
                "SELECT previous_digest FROM events WHERE repository = $1 AND action = 'TAG' \
                 AND tag = $2 AND digest = $3 ORDER BY id DESC LIMIT 1",
            )
            .bind(repository)
            .bind(tag)
            .bind(digest)
            .fetch_optional(&self.reads)
            .await?;
            previous.push(match row {
                Some(row) => row.try_get("previous_digest")?,
                None => None,
            });
        }
        Ok(previous)
    }

    async fn get_manifest(
        &self,
        repository: &str,
        key: ManifestKey<'_>,
    ) -> MetaResult<Option<StoredManifest>> {
        let query = match key {
            ManifestKey::Tag(tag) => sqlx::query(
                "SELECT m.digest, m.media_type, m.content, t.upstream_checked_at FROM tags t \
                 JOIN manifests m ON m.repository = t.repository AND m.digest = t.manifest \
                 WHERE t.repository = $1 AND t.name = $2",
            )
            .bind(repository)
            .bind(tag),
            ManifestKey::Digest(digest) => sqlx::query(
                "SELECT digest, media_type, content, CAST(NULL AS BIGINT) AS upstream_checked_at FROM manifests \
                 WHERE repository = $1 AND digest = $2",
            )
            .bind(repository)
            .bind(digest),
        };
        let Some(row) = query.fetch_optional(&self.reads).await? else {
            return Ok(None);
        };
        Ok(Some(StoredManifest {
            digest: row.try_get("digest")?,
            media_type: row.try_get("media_type")?,
            content: row.try_get("content")?,
            upstream_checked_at: row.try_get("upstream_checked_at")?,
        }))
    }

    async fn record_pulls(&self, pulls: &[Pulls<'_>]) -> MetaResult<()> {
        let mut tx = self.begin().await?;
        for pulled in pulls {
            sqlx::query(
                "UPDATE manifests SET last_pulled_at = $1 WHERE repository = $2 AND digest = $3 \
                 AND (last_pulled_at IS NULL OR last_pulled_at < $1)",
            )
            .bind(pulled.last)
            .bind(pulled.repository)
            .bind(pulled.digest)
            .execute(&mut *tx)
            .await?;
        }
        let counts: Vec<String> = pulls
            .iter()
            .map(|pulled| format!("{} pulls", pulled.count))
            .collect();
        let events: Vec<_> = pulls
            .iter()
            .zip(&counts)
            .map(|(pulled, count)| {
                let event = Event {
                    detail: Some(count.as_str()),
                    ..Event::of("PULL", pulled.repository, pulled.digest)
                };
                (pulled.last, event)
            })
            .collect();
        log_events(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_manifest(
        &self,
        repository: &str,
        digest: &str,
        now: Millis,
    ) -> MetaResult<Removal> {
        self.remove_manifest(repository, digest, None, now).await
    }

    async fn delete_tag(&self, repository: &str, tag: &str, now: Millis) -> MetaResult<bool> {
        let mut tx = self.begin().await?;
        if self.lock_repository(&mut tx, repository).await?.is_none() {
            return Ok(false);
        }
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
        log_event(&mut tx, now, Event::tag("UNTAG", repository, &digest, tag)).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn list_tags(&self, repository: &str, page: Page<'_>) -> MetaResult<Option<Vec<String>>> {
        let exists = sqlx::query("SELECT 1 AS found FROM repositories WHERE name = $1")
            .bind(repository)
            .fetch_optional(&self.reads)
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
        .fetch_all(&self.reads)
        .await?;
        Ok(Some(names(&rows, "name")?))
    }

    async fn list_repositories(&self, page: Page<'_>) -> MetaResult<Vec<String>> {
        let rows =
            sqlx::query("SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2")
                .bind(page.after.unwrap_or(""))
                .bind(i64::from(page.limit))
                .fetch_all(&self.reads)
                .await?;
        names(&rows, "name")
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
        .fetch_all(&self.reads)
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
