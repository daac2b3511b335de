//! Reading and unlinking blobs. A repository sees a blob only through its link.

use super::{Error, Registry, Result, now};
use crate::metadata::{LinkedBlob, Millis, Removal};
use crate::oci::{Digest, RepoName};
use crate::storage::{BlobLocation, ByteStream, StorageError};

/// A `Range: bytes=…` request as the client wrote it; resolved against the blob's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last`, both inclusive.
    Span { first: u64, last: u64 },
    /// `bytes=first-`
    From { first: u64 },
    /// `bytes=-length`: the last `length` bytes.
    Suffix { length: u64 },
}

impl ByteRange {
    /// The inclusive byte span this range selects in a blob of `size` bytes.
    fn resolve(self, size: u64) -> Result<(u64, u64)> {
        let span = match self {
            ByteRange::Span { first, last } => (first, last.min(size.saturating_sub(1))),
            ByteRange::From { first } => (first, size.saturating_sub(1)),
            ByteRange::Suffix { length } => (size.saturating_sub(length), size.saturating_sub(1)),
        };
        let empty_suffix = matches!(self, ByteRange::Suffix { length: 0 });
        if size == 0 || span.0 >= size || span.0 > span.1 || empty_suffix {
            return Err(Error::RangeNotSatisfiable { size });
        }
        Ok(span)
    }
}

pub enum BlobContent {
    /// The client fetches the bytes from this URL itself (a presigned object-store URL).
    Redirect(String),
    Bytes {
        /// The whole blob's size.
        size: u64,
        /// The inclusive span being sent, if the client asked for a range.
        range: Option<(u64, u64)>,
        body: ByteStream,
    },
}

impl Registry {
    /// `HEAD /v2/<name>/blobs/<digest>`: the blob's size. A client that finds the blob this
    /// way skips uploading it and pushes a manifest referencing it next, so the link counts
    /// as relied on: a collection leaves it alone for at least half its grace period.
    pub async fn stat_blob(&self, repo: &RepoName, digest: &Digest) -> Result<u64> {
        let Some(linked) = self
            .meta
            .linked_blob(repo.as_str(), &digest.to_string())
            .await?
        else {
            return self
                .upstream_blob_size(repo, digest)
                .await?
                .ok_or(Error::BlobUnknown);
        };
        let digest = digest.to_string();
        let now = now();
        let half_grace = Millis::try_from(self.settings.gc_grace.as_millis() / 2).unwrap_or(0);
        if linked.linked_at < now.saturating_sub(half_grace) {
            self.meta.refresh_link(repo.as_str(), &digest, now).await?;
        }
        Ok(linked.size)
    }

    async fn linked_size(&self, repo: &RepoName, digest: &str) -> Result<LinkedBlob> {
        self.meta
            .linked_blob(repo.as_str(), digest)
            .await?
            .ok_or(Error::BlobUnknown)
    }

    /// `GET /v2/<name>/blobs/<digest>`, whole or one range.
    pub async fn get_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobContent> {
        match self
            .meta
            .linked_blob(repo.as_str(), &digest.to_string())
            .await?
        {
            Some(linked) => self.read_blob(digest, linked, range).await,
            None => self
                .blob_through_cache(repo, digest, range)
                .await?
                .ok_or(Error::BlobUnknown),
        }
    }

    /// The bytes of a blob the repository links, whole or one range.
    pub(super) async fn read_blob(
        &self,
        digest: &Digest,
        linked: LinkedBlob,
        range: Option<ByteRange>,
    ) -> Result<BlobContent> {
        let location = BlobLocation {
            digest,
            key: linked.storage_key.as_deref(),
        };
        if let Some(url) = self.blobs.redirect_url(location).await? {
            return Ok(BlobContent::Redirect(url));
        }
        let size = linked.size;
        let range = range.map(|range| range.resolve(size)).transpose()?;
        let body = match self.blobs.get(location, range).await {
            Ok(body) => body,
            Err(StorageError::NotFound) => {
                // The metadata says the blob exists: missing bytes are a server fault.
                return Err(Error::Storage(StorageError::Io(std::io::Error::other(
                    format!("blob {digest} is linked but its bytes are missing"),
                ))));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(BlobContent::Bytes { size, range, body })
    }

    /// A URL the client may fetch the linked blob from itself (a presigned object-store URL),
    /// or `None` when the bytes are served through Wharf.
    pub async fn blob_redirect(&self, repo: &RepoName, digest: &Digest) -> Result<Option<String>> {
        let linked = self.linked_size(repo, &digest.to_string()).await?;
        let location = BlobLocation {
            digest,
            key: linked.storage_key.as_deref(),
        };
        Ok(self.blobs.redirect_url(location).await?)
    }

    /// `DELETE /v2/<name>/blobs/<digest>`: unlinks the blob from this repository only, unless
    /// one of its manifests references it. The bytes stay in storage until a garbage
    /// collection finds that no repository links them.
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let removal = self
            .meta
            .unlink_blob(repo.as_str(), &digest.to_string(), now())
            .await?;
        match removal {
            Removal::Removed => Ok(()),
            Removal::NotFound => Err(Error::BlobUnknown),
            Removal::ReferencedBy(manifests) => Err(Error::BlobReferenced { manifests }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_against_the_size() {
        let span = |first, last| ByteRange::Span { first, last };
        assert_eq!(span(0, 9).resolve(10).unwrap(), (0, 9));
        assert_eq!(span(5, 100).resolve(10).unwrap(), (5, 9));
        assert_eq!(ByteRange::From { first: 3 }.resolve(10).unwrap(), (3, 9));
        assert_eq!(ByteRange::Suffix { length: 4 }.resolve(10).unwrap(), (6, 9));
        assert_eq!(
            ByteRange::Suffix { length: 40 }.resolve(10).unwrap(),
            (0, 9)
        );
        for bad in [span(10, 12), span(4, 2), ByteRange::Suffix { length: 0 }] {
            assert!(matches!(
                bad.resolve(10),
                Err(Error::RangeNotSatisfiable { size: 10 })
            ));
        }
        assert!(ByteRange::From { first: 0 }.resolve(0).is_err());
    }
}
