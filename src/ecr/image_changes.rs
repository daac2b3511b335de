//! Image operations that change images: `PutImage` (a push or a retag of a manifest given
//! as text) and `BatchDeleteImage` (ECR's delete semantics: a tag goes, and its image with its
//! last tag). Each parses ECR's input, calls `registry` and answers in ECR's shapes; the shapes
//! and per-image failures they share with the reading operations are in `images`.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::images::{MAX_IMAGE_IDS, Problem, check_count, image, image_ref};
use super::wire::{self, ImageIdentifier};
use super::{Call, EcrError};
use crate::metadata::{ImageRecord, Untagging};
use crate::oci::{Digest, Reference, RepoName, Tag, media_types};
use crate::registry::{self, ImageMiss, ImageRef};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchDeleteImage {
    repository_name: String,
    image_ids: Vec<ImageIdentifier>,
}

/// An image a `BatchDeleteImage` call names, found.
struct ToDelete {
    id: ImageIdentifier,
    image_ref: ImageRef,
    image: ImageRecord,
}

pub async fn batch_delete(call: &Call<'_>, input: BatchDeleteImage) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    check_count("imageIds", input.image_ids.len(), 1..=MAX_IMAGE_IDS)?;
    let mut failures = Vec::new();
    let mut to_delete = Vec::new();
    for id in input.image_ids {
        let image_ref = match image_ref(&id) {
            Ok(image_ref) => image_ref,
            Err(problem) => {
                failures.push(problem.failure(id));
                continue;
            }
        };
        match call.registry().image(&name, &image_ref).await? {
            Ok(image) => to_delete.push(ToDelete {
                id,
                image_ref,
                image,
            }),
            Err(miss) => failures.push(Problem::of_miss(miss).failure(id)),
        }
    }
    // Indexes first: an index keeps the images it lists, so deleting it with them in one
    // batch only works in this order.
    to_delete.sort_by_key(|d| !is_index(&d.image.media_type));
    let mut deleted = Vec::new();
    for ToDelete {
        id,
        image_ref,
        image,
    } in to_delete
    {
        let outcome = match image_ref {
            ImageRef::Digest(digest) => delete_image(call, &name, digest, &image).await?,
            ImageRef::Tag(tag) => untag(call, &name, tag, None).await?,
            ImageRef::TagOn { tag, digest } => untag(call, &name, tag, Some(digest)).await?,
        };
        match outcome {
            Ok(ids) => deleted.extend(ids),
            Err(problem) => failures.push(problem.failure(id)),
        }
    }
    Ok(json!({ "imageIds": deleted, "failures": failures }))
}

/// Deletes `image` with all its tags, which are what the answer reports it by.
async fn delete_image(
    call: &Call<'_>,
    name: &RepoName,
    digest: Digest,
    image: &ImageRecord,
) -> Result<Result<Vec<ImageIdentifier>, Problem>, EcrError> {
    match call
        .registry()
        .delete_manifest(name, &Reference::Digest(digest))
        .await
    {
        Ok(()) if image.tags.is_empty() => Ok(Ok(vec![ImageIdentifier {
            image_digest: Some(image.digest.clone()),
            image_tag: None,
        }])),
        Ok(()) => Ok(Ok(image
            .tags
            .iter()
            .map(|tag| ImageIdentifier {
                image_digest: Some(image.digest.clone()),
                image_tag: Some(tag.clone()),
            })
            .collect())),
        Err(registry::Error::ManifestUnknown) => Ok(Err(Problem::of_miss(ImageMiss::NotFound))),
        Err(registry::Error::ManifestReferenced { indexes }) => Ok(Err(Problem::new(
            "ImageReferencedByManifestList",
            format!(
                "Requested image referenced by manifest list: [{}]",
                indexes.join(", ")
            ),
        ))),
        Err(other) => Err(EcrError::on_repository(other, call, name)),
    }
}

/// Removes `tag` (from the image `on`, if given), and its image with it if it was the last.
async fn untag(
    call: &Call<'_>,
    name: &RepoName,
    tag: Tag,
    on: Option<Digest>,
) -> Result<Result<Vec<ImageIdentifier>, Problem>, EcrError> {
    Ok(
        match call.registry().untag_image(name, &tag, on.as_ref()).await? {
            Untagging::Untagged { digest } => Ok(vec![ImageIdentifier {
                image_digest: Some(digest),
                image_tag: Some(tag.to_string()),
            }]),
            Untagging::NotFound => Err(Problem::of_miss(ImageMiss::NotFound)),
            Untagging::OnOtherImage { digest } => {
                Err(Problem::of_miss(ImageMiss::TagOnOtherImage { digest }))
            }
        },
    )
}

fn is_index(media_type: &str) -> bool {
    media_type == media_types::OCI_INDEX || media_type == media_types::DOCKER_MANIFEST_LIST
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImage {
    repository_name: String,
    image_manifest: String,
    image_manifest_media_type: Option<String>,
    image_tag: Option<String>,
    image_digest: Option<String>,
}

pub async fn put(call: &Call<'_>, input: PutImage) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let tag: Option<Tag> = input
        .image_tag
        .as_deref()
        .map(|tag| {
            tag.parse().map_err(|_| {
                EcrError::invalid(format!(
                    "Invalid parameter at 'imageTag': {tag:?} is not a tag: up to 128 letters, \
                     digits, '.', '_' and '-', not starting with '.' or '-'"
                ))
            })
        })
        .transpose()?;
    let content = Bytes::from(input.image_manifest.into_bytes());
    let digest = Digest::sha256(&content);
    if let Some(given) = &input.image_digest {
        let given: Digest = given.parse().map_err(|e| {
            EcrError::invalid(format!(
                "Invalid parameter at 'imageDigest': {given:?}: {e}"
            ))
        })?;
        if given != digest {
            return Err(EcrError::new(
                "ImageDigestDoesNotMatchException",
                format!(
                    "Invalid parameter at 'imageDigest': {given} does not match the digest of \
                     the manifest, {digest}"
                ),
            ));
        }
    }
    let body = Box::pin(futures::stream::once(std::future::ready(Ok(
        content.clone()
    ))));
    let pushed = call
        .registry()
        .put_manifest(
            &name,
            &Reference::Digest(digest),
            tag.as_slice(),
            input.image_manifest_media_type.as_deref(),
            body,
        )
        .await
        .map_err(|e| EcrError::on_repository(e, call, &name))?;
    let moves: Vec<Value> = pushed
        .moved
        .iter()
        .map(|(tag, previous)| json!({ "imageTag": tag, "previousImageDigest": previous }))
        .collect();
    call.audit_elements(json!({ "imageDigest": pushed.digest.to_string(), "tagMoves": moves }));
    if !pushed.changed {
        let tagged = tag
            .as_ref()
            .map(|tag| format!(" and tag '{tag}'"))
            .unwrap_or_default();
        return Err(EcrError::new(
            "ImageAlreadyExistsException",
            format!(
                "Image with digest '{}'{tagged} already exists in the repository with name \
                 '{name}' in registry with id '{}'",
                pushed.digest,
                call.registry_id()
            ),
        ));
    }
    let id = ImageIdentifier {
        image_digest: Some(pushed.digest.to_string()),
        image_tag: tag.map(|tag| tag.to_string()),
    };
    Ok(json!({ "image": image(call, &name, id, &content, &pushed.media_type) }))
}
