//! Manifests, tags, listings and referrers.

use super::{
    Error, MAX_MANIFEST_BYTES, MAX_PAGE, Registry, Result, collect_limited, now, split_page,
};
use crate::metadata::{
    ContentRef, ManifestKey, NewManifest, Page, RefKind, RefusedManifest, Removal, ScanOnPush,
    StoredManifest,
};
use crate::oci::{Descriptor, Digest, ParsedManifest, Reference, RepoName, Tag};
use crate::storage::ByteStream;

#[derive(Debug, Clone)]
pub struct ManifestPushed {
    pub digest: Digest,
    /// The manifest's subject, echoed in the `OCI-Subject` header.
    pub subject: Option<Digest>,
    /// Whether the manifest is new to the repository or a tag moved to it.
    pub changed: bool,
    /// The media type it was stored with.
    pub media_type: String,
    /// The tags the push moved (or made), each with the digest it was on before, if any.
    pub moved: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone)]
pub struct Referrers {
    pub manifests: Vec<Descriptor>,
    /// Whether the artifactType filter was applied (for `OCI-Filters-Applied`).
    pub filtered: bool,
}

/// What the client can take, from its `Accept` headers. Empty means anything.
pub type Accepted<'a> = &'a [String];

impl Registry {
    /// `PUT /v2/<name>/manifests/<reference>[?tag=…]`: validates the manifest against what
    /// the repository holds, stores it and moves every named tag to it.
    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        extra_tags: &[Tag],
        content_type: Option<&str>,
        body: ByteStream,
    ) -> Result<ManifestPushed> {
        let content = collect_limited(body, MAX_MANIFEST_BYTES).await?;
        let digest = match reference {
            Reference::Digest(expected) => {
                let actual = Digest::of(expected.algorithm(), &content);
                if actual != *expected {
                    return Err(Error::DigestMismatch {
                        expected: expected.clone(),
                        actual,
                    });
                }
                actual
            }
            Reference::Tag(_) => Digest::sha256(&content),
        };
        // Sorted, so that concurrent pushes move shared tags in the same order.
        let mut tags: Vec<String> = extra_tags.iter().map(|t| t.to_string()).collect();
        if let Reference::Tag(tag) = reference {
            tags.push(tag.to_string());
        }
        tags.sort();
        tags.dedup();
        let (mut manifest, subject) = new_manifest(repo, &digest, content, content_type)?;
        manifest.replicate_to = self.replication_destinations(repo.as_str()).await?;
        manifest.scan_on_push = self.scan_on_push(&manifest).await?;
        let changed = self
            .meta
            .put_manifest(&manifest, &tags, self.settings.create_on_push, now())
            .await?
            .map_err(|refusal| refused(refusal, repo))?;
        // For the audit trail; read only when something moved.
        let moved = if changed && !tags.is_empty() {
            let before = self
                .meta
                .tag_moves(repo.as_str(), &digest.to_string(), &tags)
                .await?;
            tags.into_iter().zip(before).collect()
        } else {
            Vec::new()
        };
        Ok(ManifestPushed {
            digest,
            subject,
            changed,
            media_type: manifest.media_type,
            moved,
        })
    }

    /// `GET`/`HEAD /v2/<name>/manifests/<reference>`. A GET counts as a pull.
    pub async fn get_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        accepted: Accepted<'_>,
        is_pull: bool,
    ) -> Result<StoredManifest> {
        let found = self.stored_manifest(repo, reference).await?;
        let manifest = self
            .through_cache(repo, reference, found)
            .await?
            .ok_or(Error::ManifestUnknown)?;
        if !accepts(accepted, &manifest.media_type) {
            return Err(Error::ManifestNotAcceptable {
                media_type: manifest.media_type,
            });
        }
        if is_pull {
            self.pulls.record(repo.as_str(), &manifest.digest, now());
        }
        Ok(manifest)
    }

    /// The manifest `reference` names in `repo`, as stored.
    pub(super) async fn stored_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Option<StoredManifest>> {
        let digest;
        let key = match reference {
            Reference::Tag(tag) => ManifestKey::Tag(tag.as_str()),
            Reference::Digest(d) => {
                digest = d.to_string();
                ManifestKey::Digest(&digest)
            }
        };
        Ok(self.meta.get_manifest(repo.as_str(), key).await?)
    }

    /// `DELETE /v2/<name>/manifests/<reference>`: by digest removes the manifest and its
    /// tags, unless an index of the repository lists it; by tag removes only the tag.
    pub async fn delete_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<()> {
        let removal = match reference {
            Reference::Tag(tag) => {
                let deleted = self
                    .meta
                    .delete_tag(repo.as_str(), tag.as_str(), now())
                    .await?;
                if deleted {
                    Removal::Removed
                } else {
                    Removal::NotFound
                }
            }
            Reference::Digest(digest) => {
                self.meta
                    .delete_manifest(repo.as_str(), &digest.to_string(), now())
                    .await?
            }
        };
        match removal {
            Removal::Removed => Ok(()),
            Removal::NotFound => Err(Error::ManifestUnknown),
            Removal::ReferencedBy(indexes) => Err(Error::ManifestReferenced { indexes }),
        }
    }

    /// `GET /v2/<name>/tags/list?n=&last=`: tags in lexical order. The boolean says whether
    /// more follow.
    pub async fn list_tags(
        &self,
        repo: &RepoName,
        n: Option<u32>,
        last: Option<&str>,
    ) -> Result<(Vec<String>, bool)> {
        let limit = n.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let page = Page {
            limit: limit + 1,
            after: last,
        };
        let tags = self
            .meta
            .list_tags(repo.as_str(), page)
            .await?
            .ok_or(Error::NameUnknown)?;
        Ok(split_page(tags, limit))
    }

    /// `GET /v2/_catalog?n=&last=`: repository names in lexical order, and whether more follow.
    pub async fn catalog(&self, n: Option<u32>, last: Option<&str>) -> Result<(Vec<String>, bool)> {
        let limit = n.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let page = Page {
            limit: limit + 1,
            after: last,
        };
        let names = self.meta.list_repositories(page).await?;
        Ok(split_page(names, limit))
    }

    /// `GET /v2/<name>/referrers/<digest>[?artifactType=]`.
    pub async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers> {
        let rows = self
            .meta
            .referrers(repo.as_str(), &subject.to_string(), artifact_type)
            .await?;
        let manifests = rows
            .into_iter()
            .map(|row| Descriptor {
                media_type: row.media_type,
                digest: row.digest,
                size: row.size,
                urls: Vec::new(),
                artifact_type: row.artifact_type,
                annotations: row
                    .annotations
                    .and_then(|json| serde_json::from_str(&json).ok()),
                platform: None,
            })
            .collect();
        Ok(Referrers {
            manifests,
            filtered: artifact_type.is_some(),
        })
    }
}

/// The registry's error for a manifest the metadata store refused.
/// The row a manifest is stored as: parsed, with its references and total size; not
/// replicated and not from an upstream until the caller says otherwise. Also returns the
/// manifest's subject.
pub(super) fn new_manifest(
    repo: &RepoName,
    digest: &Digest,
    content: Vec<u8>,
    content_type: Option<&str>,
) -> Result<(NewManifest, Option<Digest>)> {
    let parsed = ParsedManifest::parse(&content, content_type).map_err(Error::ManifestInvalid)?;
    let references = |descriptors: &[(Digest, u64)]| -> Vec<ContentRef> {
        descriptors
            .iter()
            .map(|(digest, size)| ContentRef {
                digest: digest.to_string(),
                size: *size,
            })
            .collect()
    };
    let blob_references = references(&parsed.blobs);
    let manifest_references = references(&parsed.manifests);
    // Declared sizes are the client's: too large to add up, they cannot match stored ones.
    let total_size = blob_references
        .iter()
        .chain(&manifest_references)
        .try_fold(content.len() as u64, |total, r| total.checked_add(r.size))
        .ok_or_else(|| Error::ManifestInvalid("descriptor sizes overflow".into()))?;
    let annotations = parsed
        .annotations
        .as_ref()
        .map(|a| serde_json::to_string(a).expect("string map serializes"));
    let manifest = NewManifest {
        repository: repo.to_string(),
        digest: digest.to_string(),
        media_type: parsed.media_type,
        artifact_type: parsed.artifact_type,
        subject: parsed.subject.as_ref().map(Digest::to_string),
        annotations,
        content,
        total_size,
        blob_references,
        manifest_references,
        replicate_to: Vec::new(),
        scan_on_push: ScanOnPush::Never,
        upstream_checked_at: None,
    };
    Ok((manifest, parsed.subject))
}

pub(super) fn refused(refusal: RefusedManifest, repo: &RepoName) -> Error {
    let noun = |kind| match kind {
        RefKind::Blob => "blob",
        RefKind::Manifest => "manifest",
    };
    match refusal {
        RefusedManifest::Unknown { kind, digest } => Error::ManifestBlobUnknown {
            kind: noun(kind),
            digest,
        },
        RefusedManifest::SizeMismatch {
            kind,
            digest,
            declared,
            stored,
        } => Error::ManifestInvalid(format!(
            "descriptor of {digest} says {declared} bytes, but the {} has {stored}",
            noun(kind)
        )),
        RefusedManifest::TagProtected { tag } => Error::TagImmutable {
            tag,
            repository: repo.to_string(),
        },
        RefusedManifest::RepositoryUnknown => Error::NameUnknown,
    }
}

/// Whether a manifest of `media_type` may be sent to a client accepting `accepted`.
fn accepts(accepted: Accepted<'_>, media_type: &str) -> bool {
    accepted.is_empty()
        || accepted.iter().any(|range| {
            range == "*/*"
                || range == media_type
                || range
                    .strip_suffix("/*")
                    .is_some_and(|kind| media_type.split('/').next() == Some(kind))
        })
}
