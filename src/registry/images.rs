//! Images as ECR names them: a manifest of a repository with its tags, named by digest, by
//! tag, or by a tag that must be on a given digest. Listings by tag status, descriptions,
//! pulls, tag removal that takes the last tag's image along, and pages of referrers. Builds
//! on the manifest operations (`manifests`) and the metadata store's [`ImageStore`] part.
//!
//! [`ImageStore`]: crate::metadata::ImageStore

use super::manifests::Accepted;
use super::{Error, MAX_PAGE, Registry, Result, now, split_page};
use crate::metadata::{
    ImageIdRecord, ImageRecord, ManifestKey, Page, StoredManifest, TagStatus, Untagging,
};
use crate::oci::{Descriptor, Digest, Reference, RepoName, Tag};

/// How a request names an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Digest(Digest),
    Tag(Tag),
    /// A tag, which must be on the image with this digest.
    TagOn {
        tag: Tag,
        digest: Digest,
    },
}

/// Why an [`ImageRef`] yields no image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageMiss {
    NotFound,
    /// The tag is on the image `digest`, not on the one named with it.
    TagOnOtherImage {
        digest: String,
    },
    /// The image's manifest is of a media type the caller does not accept.
    NotAcceptable {
        media_type: String,
    },
}

impl Registry {
    /// Image ids in (digest, tag) order after `after`, at most `limit`, and whether more
    /// follow: one per tag, and one without a tag per untagged image.
    pub async fn list_images(
        &self,
        repo: &RepoName,
        status: TagStatus,
        limit: u32,
        after: Option<&ImageIdRecord>,
    ) -> Result<(Vec<ImageIdRecord>, bool)> {
        let limit = limit.min(MAX_PAGE);
        let ids = self
            .meta
            .list_image_ids(repo.as_str(), status, after, limit + 1)
            .await?;
        Ok(split_page(ids, limit))
    }

    /// Images in digest order after the digest `after`, at most `limit`, and whether more
    /// follow.
    pub async fn describe_images(
        &self,
        repo: &RepoName,
        status: TagStatus,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<ImageRecord>, bool)> {
        let limit = limit.min(MAX_PAGE);
        let page = Page {
            limit: limit + 1,
            after,
        };
        self.flush_pulls().await?;
        let images = self.meta.list_images(repo.as_str(), status, page).await?;
        Ok(split_page(images, limit))
    }

    /// The image `image` names.
    pub async fn image(
        &self,
        repo: &RepoName,
        image: &ImageRef,
    ) -> Result<std::result::Result<ImageRecord, ImageMiss>> {
        let digest;
        let key = match image {
            ImageRef::Digest(d) => {
                digest = d.to_string();
                ManifestKey::Digest(&digest)
            }
            ImageRef::Tag(tag) | ImageRef::TagOn { tag, .. } => ManifestKey::Tag(tag.as_str()),
        };
        self.flush_pulls().await?;
        let Some(found) = self.meta.get_image(repo.as_str(), key).await? else {
            return Ok(Err(ImageMiss::NotFound));
        };
        if let ImageRef::TagOn { digest, .. } = image
            && found.digest != digest.to_string()
        {
            return Ok(Err(ImageMiss::TagOnOtherImage {
                digest: found.digest,
            }));
        }
        Ok(Ok(found))
    }

    /// The manifest of the image `image` names, if of a media type in `accepted` (when not
    /// empty). Counts as a pull.
    pub async fn pull_image(
        &self,
        repo: &RepoName,
        image: &ImageRef,
        accepted: Accepted<'_>,
    ) -> Result<std::result::Result<StoredManifest, ImageMiss>> {
        let reference = match image {
            ImageRef::Digest(digest) => Reference::Digest(digest.clone()),
            ImageRef::Tag(tag) => Reference::Tag(tag.clone()),
            ImageRef::TagOn { digest, .. } => {
                if let Err(miss) = self.image(repo, image).await? {
                    return Ok(Err(miss));
                }
                Reference::Digest(digest.clone())
            }
        };
        match self.get_manifest(repo, &reference, accepted, true).await {
            Ok(manifest) => Ok(Ok(manifest)),
            Err(Error::ManifestUnknown) => Ok(Err(ImageMiss::NotFound)),
            Err(Error::ManifestNotAcceptable { media_type }) => {
                Ok(Err(ImageMiss::NotAcceptable { media_type }))
            }
            Err(other) => Err(other),
        }
    }

    /// Removes `tag` (if it is on `on`, when given), and the image with it when that was its
    /// last tag and no index of the repository lists it.
    pub async fn untag_image(
        &self,
        repo: &RepoName,
        tag: &Tag,
        on: Option<&Digest>,
    ) -> Result<Untagging> {
        let expected = on.map(Digest::to_string);
        let untagging = self
            .meta
            .untag_image(repo.as_str(), tag.as_str(), expected.as_deref(), now())
            .await?;
        Ok(untagging)
    }

    /// Referrers of `subject` in digest order after the digest `after`, of one of
    /// `artifact_types` (any, if empty), at most `limit`, and whether more follow.
    pub async fn image_referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_types: &[String],
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<Descriptor>, bool)> {
        let referrers = self.referrers(repo, subject, None).await?;
        let page: Vec<Descriptor> = referrers
            .manifests
            .into_iter()
            .filter(|referrer| after.is_none_or(|after| referrer.digest.as_str() > after))
            .filter(|referrer| {
                artifact_types.is_empty()
                    || referrer
                        .artifact_type
                        .as_ref()
                        .is_some_and(|t| artifact_types.contains(t))
            })
            .take(limit as usize + 1)
            .collect();
        Ok(split_page(page, limit))
    }
}
