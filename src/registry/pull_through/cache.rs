//! Filling cached repositories from their upstream. A manifest missing here is fetched from
//! the upstream, stored with its tag and served; its blobs and child manifests follow when
//! they are pulled, each fetched once per node however many clients ask (`flights`). A blob's
//! bytes reach the client that asked first as they arrive, while they are stored and
//! verified; the last chunk is held back until the blob is stored, so a client never gets a
//! whole body that does not match its digest. A cached tag older than the time to live is
//! compared with the upstream (a `HEAD`) before it is served; if the upstream cannot answer,
//! the cached image is served as it is.

use std::time::Duration;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};

use super::flights::{Landing, Seat, wait};
use super::{Registry, Upstream};
use crate::metadata::{ManifestKey, Millis, StoredManifest};
use crate::oci::{Digest, Reference, RepoName, Tag};
use crate::registry::manifests::{new_manifest, refused};
use crate::registry::{BlobContent, ByteRange, Error, Result, now};
use crate::remote::{RemoteError, RemoteManifest};
use crate::storage::ByteStream;

/// How often a request boards a flight before it gives up: a follower whose leader failed
/// leads the next attempt itself.
const FLIGHT_ATTEMPTS: usize = 3;
/// How long a re-check of a cached tag may keep its pull waiting before the cached image is
/// served instead.
const RECHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the client that started a blob's fetch may take to read each chunk before the
/// fetch goes on without it (and its response is cut short).
const CLIENT_STALL: Duration = Duration::from_secs(30);
/// Chunks buffered towards the store and towards the client.
const CHANNEL_CHUNKS: usize = 8;

impl Registry {
    /// What a manifest lookup that found `found` serves: `found` itself, unless it is a cached
    /// tag due for a re-check, or nothing was found and the repository caches an upstream.
    pub(in crate::registry) async fn through_cache(
        &self,
        repo: &RepoName,
        reference: &Reference,
        found: Option<StoredManifest>,
    ) -> Result<Option<StoredManifest>> {
        match (found, reference) {
            (Some(cached), Reference::Tag(tag)) if self.due_for_recheck(&cached) => {
                Ok(Some(self.recheck(repo, tag, cached).await?))
            }
            (Some(found), _) => Ok(Some(found)),
            (None, _) => self.manifest_from_upstream(repo, reference).await,
        }
    }

    fn due_for_recheck(&self, manifest: &StoredManifest) -> bool {
        let ttl = Millis::try_from(self.settings.pull_through_ttl.as_millis()).unwrap_or(0);
        manifest
            .upstream_checked_at
            .is_some_and(|checked| now().saturating_sub(checked) >= ttl)
    }

    async fn manifest_from_upstream(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Option<StoredManifest>> {
        let Some(upstream) = self.upstream_of(repo).await? else {
            return Ok(None);
        };
        for _ in 0..FLIGHT_ATTEMPTS {
            let seat = self
                .upstreams
                .flights
                .board(format!("manifest {repo}:{reference}"));
            // Held by the leader until it returns.
            let landing = match seat {
                Seat::Follower(landed) => {
                    wait(landed).await;
                    None
                }
                Seat::Leader(landing) => Some(landing),
            };
            // A flight that landed just before this request boarded has stored it.
            if let Some(stored) = self.stored_manifest(repo, reference).await? {
                return Ok(Some(stored));
            }
            if landing.is_some() {
                return self.fetch_manifest(&upstream, repo, reference).await;
            }
        }
        Err(gave_up(&upstream))
    }

    /// Fetches the manifest from the upstream and stores it (under its tag, if fetched by
    /// one). `None` if the upstream has no such manifest.
    async fn fetch_manifest(
        &self,
        upstream: &Upstream,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Option<StoredManifest>> {
        let fetched = upstream
            .remote
            .get_manifest(&upstream.path, &reference.to_string())
            .await?;
        let Some(fetched) = fetched else {
            return Ok(None);
        };
        if let Reference::Digest(asked) = reference
            && fetched.digest != *asked
        {
            return Err(Error::Upstream(RemoteError::Refused {
                url: upstream.remote.url().to_string(),
                message: format!("asked for {asked}, it served {}", fetched.digest),
            }));
        }
        let tag = match reference {
            Reference::Tag(tag) => Some(tag),
            Reference::Digest(_) => None,
        };
        self.store_fetched(upstream, repo, tag, fetched)
            .await
            .map(Some)
    }

    async fn store_fetched(
        &self,
        upstream: &Upstream,
        repo: &RepoName,
        tag: Option<&Tag>,
        fetched: RemoteManifest,
    ) -> Result<StoredManifest> {
        let content_type = Some(fetched.media_type.as_str()).filter(|t| !t.is_empty());
        let content = fetched.content.to_vec();
        let (mut manifest, _) = new_manifest(repo, &fetched.digest, content, content_type)
            .map_err(|e| match e {
                // The upstream's fault, not the client's.
                Error::ManifestInvalid(why) => Error::Upstream(RemoteError::Refused {
                    url: upstream.remote.url().to_string(),
                    message: format!("served a manifest this registry cannot store: {why}"),
                }),
                other => other,
            })?;
        let checked_at = now();
        manifest.upstream_checked_at = Some(checked_at);
        let tags: Vec<String> = tag.iter().map(|tag| tag.to_string()).collect();
        self.meta
            .put_manifest(&manifest, &tags, true, checked_at)
            .await?
            .map_err(|refusal| refused(refusal, repo))?;
        let details = serde_json::json!({
            "imageDigest": manifest.digest,
            "imageTag": tags.first(),
            "upstreamRepository": upstream.path,
        });
        self.audit_own("PullThroughCacheFetch", Some(repo.as_str()), details);
        Ok(StoredManifest {
            digest: manifest.digest,
            media_type: manifest.media_type,
            content: manifest.content,
            upstream_checked_at: tag.map(|_| checked_at),
        })
    }

    /// Compares a cached tag with the upstream, following it if it moved. Whatever goes wrong
    /// upstream, the pull is served what is cached.
    async fn recheck(
        &self,
        repo: &RepoName,
        tag: &Tag,
        cached: StoredManifest,
    ) -> Result<StoredManifest> {
        let Some(upstream) = self.upstream_of(repo).await? else {
            return Ok(cached);
        };
        let seat = self
            .upstreams
            .flights
            .board(format!("recheck {repo}:{tag}"));
        // Held by the leader until it returns; a follower reads what the leader left.
        let _landing = match seat {
            Seat::Leader(landing) => landing,
            Seat::Follower(landed) => {
                wait(landed).await;
                let key = ManifestKey::Tag(tag.as_str());
                let found = self.meta.get_manifest(repo.as_str(), key).await?;
                return Ok(found.unwrap_or(cached));
            }
        };
        let checked = tokio::time::timeout(RECHECK_TIMEOUT, async {
            match upstream
                .remote
                .manifest_digest(&upstream.path, tag.as_str())
                .await?
            {
                Some(digest) if digest.to_string() != cached.digest => {
                    let reference = Reference::Tag(tag.clone());
                    self.fetch_manifest(&upstream, repo, &reference).await
                }
                // Unchanged, or gone upstream: what is cached stays.
                _ => {
                    self.meta
                        .mark_tag_checked(repo.as_str(), tag.as_str(), &cached.digest, now())
                        .await?;
                    Ok(None)
                }
            }
        })
        .await;
        match checked {
            Ok(Ok(moved)) => Ok(moved.unwrap_or(cached)),
            Ok(Err(e)) => {
                tracing::warn!(%repo, %tag, error = %e, "serving a cached tag unchecked");
                Ok(cached)
            }
            Err(_) => {
                tracing::warn!(%repo, %tag, "upstream too slow; serving a cached tag unchecked");
                Ok(cached)
            }
        }
    }

    /// `HEAD` of a blob the repository does not hold: its size upstream, if it caches one.
    pub(in crate::registry) async fn upstream_blob_size(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<u64>> {
        match self.upstream_of(repo).await? {
            Some(upstream) => Ok(upstream.remote.blob_size(&upstream.path, digest).await?),
            None => Ok(None),
        }
    }

    /// `GET` of a blob the repository does not hold: fetched from its upstream, if it caches
    /// one, and stored. A whole-blob request that starts the fetch is served as the bytes
    /// arrive; others wait for the blob to be stored and read it then.
    pub(in crate::registry) async fn blob_through_cache(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<Option<BlobContent>> {
        let Some(upstream) = self.upstream_of(repo).await? else {
            return Ok(None);
        };
        for _ in 0..FLIGHT_ATTEMPTS {
            let landing = match self
                .upstreams
                .flights
                .board(format!("blob {repo}@{digest}"))
            {
                Seat::Follower(landed) => {
                    wait(landed).await;
                    None
                }
                Seat::Leader(landing) => Some(landing),
            };
            let linked = self
                .meta
                .linked_blob(repo.as_str(), &digest.to_string())
                .await?;
            if let Some(linked) = linked {
                return self.read_blob(digest, linked, range).await.map(Some);
            }
            let Some(landing) = landing else {
                continue;
            };
            let Some((size, body)) = upstream.remote.get_blob(&upstream.path, digest).await? else {
                return Ok(None);
            };
            let served = self.fill_blob(landing, repo, digest, size, body);
            if range.is_none() {
                return Ok(Some(BlobContent::Bytes {
                    size,
                    range: None,
                    body: served,
                }));
            }
            // A range is read from storage once the fill has landed: the next boarding waits.
        }
        Err(gave_up(&upstream))
    }

    /// Stores `size` bytes of `upstream` as the blob `digest` of `repo`, in a task of its own
    /// that goes on if the client leaves; returns the client's copy of the bytes. The flight
    /// lands when the blob is stored or the fill failed.
    fn fill_blob(
        &self,
        landing: Landing,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        mut upstream: ByteStream,
    ) -> ByteStream {
        let (mut to_store, stored_body) = mpsc::channel::<std::io::Result<Bytes>>(CHANNEL_CHUNKS);
        let (mut to_client, client_body) = mpsc::channel::<std::io::Result<Bytes>>(CHANNEL_CHUNKS);
        let registry = self.creating_repositories();
        let (repo, digest) = (repo.clone(), digest.clone());
        tokio::spawn(async move {
            let _landing = landing;
            let store = tokio::spawn({
                let (registry, repo, digest) = (registry.clone(), repo.clone(), digest.clone());
                async move {
                    let body: ByteStream = Box::pin(stored_body);
                    registry.push_blob(&repo, &digest, Some(size), body).await
                }
            });
            let mut client = Some(&mut to_client);
            let mut held: Option<Bytes> = None;
            while let Some(chunk) = upstream.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        let failed = std::io::Error::other(format!("upstream: {e}"));
                        let _ = to_store.send(Err(failed)).await;
                        break;
                    }
                };
                if to_store.send(Ok(chunk.clone())).await.is_err() {
                    break;
                }
                let Some(previous) = held.replace(chunk) else {
                    continue;
                };
                if let Some(sink) = client.as_mut() {
                    let sent = tokio::time::timeout(CLIENT_STALL, sink.send(Ok(previous))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        client = None;
                    }
                }
            }
            drop(to_store);
            let stored = match store.await {
                Ok(stored) => stored.map(drop),
                Err(e) => Err(Error::Body(std::io::Error::other(e.to_string()))),
            };
            let last = match stored {
                Ok(()) => held.map(Ok),
                Err(e) => {
                    tracing::warn!(%repo, %digest, error = %e, "a blob from upstream was not stored");
                    Some(Err(std::io::Error::other(e.to_string())))
                }
            };
            if let (Some(sink), Some(last)) = (client, last) {
                let _ = tokio::time::timeout(CLIENT_STALL, sink.send(last)).await;
            }
        });
        Box::pin(client_body)
    }

    /// This registry, creating repositories on first use whatever `create_on_push` says.
    fn creating_repositories(&self) -> Registry {
        let mut registry = self.clone();
        registry.settings.create_on_push = true;
        registry
    }
}

fn gave_up(upstream: &Upstream) -> Error {
    Error::Upstream(RemoteError::Unavailable {
        url: upstream.remote.url().to_string(),
        message: "fetches of it by other requests kept failing".into(),
    })
}
