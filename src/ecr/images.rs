//! Image operations that read: `ListImages`, `DescribeImages`, `BatchGetImage`,
//! `ListImageReferrers`, and what the image operations share (image ids, per-image
//! `failures`). An image is a manifest of the repository with its tags; each operation parses
//! ECR's input, calls `registry` and answers in ECR's shapes. The operations that change
//! images are in `image_changes`.

use std::ops::RangeInclusive;

use serde::Deserialize;
use serde_json::{Value, json};

use super::scanning;
use super::wire::{self, ImageIdentifier};
use super::{Call, EcrError};
use crate::metadata::{ImageIdRecord, ImageRecord, TagStatus};
use crate::oci::{Descriptor, Digest, RepoName, Tag};
use crate::registry::{self, ImageMiss, ImageRef};

/// Most images a batch or a `DescribeImages` call names, as in ECR.
pub(super) const MAX_IMAGE_IDS: usize = 100;
/// Most media types `acceptedMediaTypes` lists, as in ECR.
const MAX_ACCEPTED_MEDIA_TYPES: usize = 100;
/// Most artifact types a referrers filter lists, as in ECR.
const MAX_ARTIFACT_TYPES: usize = 5;
/// Largest page of referrers, as in ECR.
const MAX_REFERRERS_PAGE: u32 = 50;

/// `filter` of `ListImages` and `DescribeImages`. (`imageStatus` is accepted and ignored:
/// Wharf does not archive images, so every image is `ACTIVE`.)
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagesFilter {
    tag_status: Option<String>,
}

impl ImagesFilter {
    pub(super) fn tag_status(filter: Option<ImagesFilter>) -> Result<TagStatus, EcrError> {
        match filter.and_then(|f| f.tag_status).as_deref() {
            None | Some("ANY") => Ok(TagStatus::Any),
            Some("TAGGED") => Ok(TagStatus::Tagged),
            Some("UNTAGGED") => Ok(TagStatus::Untagged),
            Some(other) => Err(EcrError::invalid(format!(
                "Invalid parameter at 'tagStatus': {other:?} is not one of TAGGED, UNTAGGED, ANY"
            ))),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImages {
    repository_name: String,
    filter: Option<ImagesFilter>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub async fn list(call: &Call<'_>, input: ListImages) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let status = ImagesFilter::tag_status(input.filter)?;
    let limit = wire::page_size(input.max_results, registry::MAX_PAGE)?;
    let after = input
        .next_token
        .as_deref()
        .map(image_id_of_token)
        .transpose()?;
    let (ids, more) = call
        .registry()
        .list_images(&name, status, limit, after.as_ref())
        .await?;
    let mut output = json!({
        "imageIds": ids
            .iter()
            .map(|id| ImageIdentifier {
                image_digest: Some(id.digest.clone()),
                image_tag: id.tag.clone(),
            })
            .collect::<Vec<_>>(),
    });
    if more && let Some(last) = ids.last() {
        output["nextToken"] = json!(token_of_image_id(last));
    }
    Ok(output)
}

/// A `ListImages` page ends at a digest and a tag (empty for an untagged image); neither
/// contains a space.
fn token_of_image_id(id: &ImageIdRecord) -> String {
    wire::next_token(&format!(
        "{} {}",
        id.digest,
        id.tag.as_deref().unwrap_or("")
    ))
}

fn image_id_of_token(token: &str) -> Result<ImageIdRecord, EcrError> {
    let key = wire::token_key(token, |key| {
        key.split_once(' ')
            .is_some_and(|(digest, _)| wire::is_digest(digest))
    })?;
    let (digest, tag) = key.split_once(' ').unwrap_or_default();
    Ok(ImageIdRecord {
        digest: digest.to_string(),
        tag: (!tag.is_empty()).then(|| tag.to_string()),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeImages {
    repository_name: String,
    image_ids: Option<Vec<ImageIdentifier>>,
    filter: Option<ImagesFilter>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub async fn describe(call: &Call<'_>, input: DescribeImages) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    if let Some(ids) = input.image_ids {
        if input.next_token.is_some() || input.max_results.is_some() {
            return Err(EcrError::invalid(
                "Invalid parameter: maxResults and nextToken cannot be used with imageIds",
            ));
        }
        check_count("imageIds", ids.len(), 1..=MAX_IMAGE_IDS)?;
        let mut images: Vec<ImageRecord> = Vec::with_capacity(ids.len());
        for id in &ids {
            let image_ref = image_ref(id).map_err(|problem| EcrError::invalid(problem.reason))?;
            match call.registry().image(&name, &image_ref).await? {
                // One detail per image, however many ids name it.
                Ok(image) if images.iter().any(|seen| seen.digest == image.digest) => {}
                Ok(image) => images.push(image),
                Err(_) => {
                    return Err(EcrError::new(
                        "ImageNotFoundException",
                        format!(
                            "The image with imageId {} does not exist within the repository \
                             with name '{name}' in the registry with id '{}'",
                            describe_id(id),
                            call.registry_id()
                        ),
                    ));
                }
            }
        }
        let details = image_details(call, &name, &images).await?;
        return Ok(json!({ "imageDetails": details }));
    }
    let status = ImagesFilter::tag_status(input.filter)?;
    let limit = wire::page_size(input.max_results, registry::MAX_PAGE)?;
    let after = input
        .next_token
        .as_deref()
        .map(|token| wire::token_key(token, wire::is_digest))
        .transpose()?;
    let (images, more) = call
        .registry()
        .describe_images(&name, status, limit, after.as_deref())
        .await?;
    let mut output = json!({ "imageDetails": image_details(call, &name, &images).await? });
    if more && let Some(last) = images.last() {
        output["nextToken"] = json!(wire::next_token(&last.digest));
    }
    Ok(output)
}

/// The `ImageDetail` shapes of `images`, with their scans' summaries.
async fn image_details(
    call: &Call<'_>,
    name: &RepoName,
    images: &[ImageRecord],
) -> Result<Vec<Value>, EcrError> {
    let mut details = Vec::with_capacity(images.len());
    for image in images {
        let mut detail = image_detail(call, name, image);
        if let Some(scan) = call
            .registry()
            .image_scan(name, &image.digest, false)
            .await?
        {
            scanning::add_summary(&mut detail, &scan);
        }
        details.push(detail);
    }
    Ok(details)
}

/// The `ImageDetail` shape.
fn image_detail(call: &Call<'_>, name: &RepoName, image: &ImageRecord) -> Value {
    let mut detail = json!({
        "registryId": call.registry_id(),
        "repositoryName": name.as_str(),
        "imageDigest": image.digest,
        "imageSizeInBytes": image.size,
        "imagePushedAt": wire::timestamp(image.pushed_at),
        "imageManifestMediaType": image.media_type,
    });
    if !image.tags.is_empty() {
        detail["imageTags"] = json!(image.tags);
    }
    if let Some(artifact_type) = &image.artifact_type {
        detail["artifactMediaType"] = json!(artifact_type);
    }
    if let Some(pulled_at) = image.last_pulled_at {
        detail["lastRecordedPullTime"] = wire::timestamp(pulled_at);
    }
    if let Some(subject) = &image.subject {
        detail["subjectManifestDigest"] = json!(subject);
    }
    detail
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetImage {
    repository_name: String,
    image_ids: Vec<ImageIdentifier>,
    accepted_media_types: Option<Vec<String>>,
}

pub async fn batch_get(call: &Call<'_>, input: BatchGetImage) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    check_count("imageIds", input.image_ids.len(), 1..=MAX_IMAGE_IDS)?;
    if let Some(types) = &input.accepted_media_types {
        check_count(
            "acceptedMediaTypes",
            types.len(),
            1..=MAX_ACCEPTED_MEDIA_TYPES,
        )?;
    }
    let accepted = input.accepted_media_types.unwrap_or_default();
    let mut images = Vec::new();
    let mut failures = Vec::new();
    for id in input.image_ids {
        let image_ref = match image_ref(&id) {
            Ok(image_ref) => image_ref,
            Err(problem) => {
                failures.push(problem.failure(id));
                continue;
            }
        };
        match call
            .registry()
            .pull_image(&name, &image_ref, &accepted)
            .await?
        {
            Ok(manifest) => {
                let id = ImageIdentifier {
                    image_digest: Some(manifest.digest),
                    image_tag: id.image_tag,
                };
                images.push(image(
                    call,
                    &name,
                    id,
                    &manifest.content,
                    &manifest.media_type,
                ));
            }
            Err(miss) => failures.push(Problem::of_miss(miss).failure(id)),
        }
    }
    Ok(json!({ "images": images, "failures": failures }))
}

/// The `Image` shape: the manifest's exact bytes, as a string.
pub(super) fn image(
    call: &Call<'_>,
    name: &RepoName,
    id: ImageIdentifier,
    manifest: &[u8],
    media_type: &str,
) -> Value {
    json!({
        "registryId": call.registry_id(),
        "repositoryName": name.as_str(),
        "imageId": id,
        "imageManifest": String::from_utf8_lossy(manifest),
        "imageManifestMediaType": media_type,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectIdentifier {
    image_digest: String,
}

/// `filter` of `ListImageReferrers`. (`artifactStatus` is accepted and ignored, as
/// `imageStatus` is.)
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrersFilter {
    #[serde(default)]
    artifact_types: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImageReferrers {
    repository_name: String,
    subject_id: SubjectIdentifier,
    filter: Option<ReferrersFilter>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub async fn list_referrers(call: &Call<'_>, input: ListImageReferrers) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let subject: Digest = input.subject_id.image_digest.parse().map_err(|e| {
        EcrError::invalid(format!(
            "Invalid parameter at 'subjectId.imageDigest': {:?}: {e}",
            input.subject_id.image_digest
        ))
    })?;
    let artifact_types = input.filter.map(|f| f.artifact_types).unwrap_or_default();
    check_count(
        "artifactTypes",
        artifact_types.len(),
        0..=MAX_ARTIFACT_TYPES,
    )?;
    let limit = wire::page_size(input.max_results, MAX_REFERRERS_PAGE)?;
    let after = input
        .next_token
        .as_deref()
        .map(|token| wire::token_key(token, wire::is_digest))
        .transpose()?;
    let (referrers, more) = call
        .registry()
        .image_referrers(&name, &subject, &artifact_types, limit, after.as_deref())
        .await?;
    let mut output = json!({ "referrers": referrers.iter().map(referrer).collect::<Vec<_>>() });
    if more && let Some(last) = referrers.last() {
        output["nextToken"] = json!(wire::next_token(&last.digest));
    }
    Ok(output)
}

/// The `ImageReferrer` shape.
fn referrer(descriptor: &Descriptor) -> Value {
    let mut shape = json!({
        "digest": descriptor.digest,
        "mediaType": descriptor.media_type,
        "size": descriptor.size,
        "artifactStatus": "ACTIVE",
    });
    if let Some(artifact_type) = &descriptor.artifact_type {
        shape["artifactType"] = json!(artifact_type);
    }
    if let Some(annotations) = &descriptor.annotations {
        shape["annotations"] = json!(annotations);
    }
    shape
}

/// Refuses a list of `field` with a number of entries outside `allowed`.
pub(super) fn check_count(
    field: &str,
    count: usize,
    allowed: RangeInclusive<usize>,
) -> Result<(), EcrError> {
    if allowed.contains(&count) {
        return Ok(());
    }
    Err(EcrError::invalid(format!(
        "Invalid parameter at '{field}' failed to satisfy constraint: 'Member must have length \
         between {} and {}': {count} entries",
        allowed.start(),
        allowed.end()
    )))
}

/// Why a batch operation could not act on one image: ECR's `failureCode` and a reason.
pub(super) struct Problem {
    code: &'static str,
    pub(super) reason: String,
}

impl Problem {
    pub(super) fn new(code: &'static str, reason: impl Into<String>) -> Problem {
        Problem {
            code,
            reason: reason.into(),
        }
    }

    pub(super) fn of_miss(miss: ImageMiss) -> Problem {
        match miss {
            ImageMiss::NotFound => Problem::new("ImageNotFound", "Requested image not found"),
            ImageMiss::TagOnOtherImage { digest } => Problem::new(
                "ImageTagDoesNotMatchDigest",
                format!("Invalid request parameters: the tag is on the image {digest}"),
            ),
            // ECR's failure codes have none for this.
            ImageMiss::NotAcceptable { media_type } => Problem::new(
                "ImageNotFound",
                format!(
                    "Requested image's manifest is {media_type}, which acceptedMediaTypes does \
                     not include"
                ),
            ),
        }
    }

    /// The `ImageFailure` shape, echoing the id as the request gave it.
    pub(super) fn failure(self, id: ImageIdentifier) -> Value {
        json!({ "imageId": id, "failureCode": self.code, "failureReason": self.reason })
    }
}

/// What an image id names, or why it names nothing.
pub(super) fn image_ref(id: &ImageIdentifier) -> Result<ImageRef, Problem> {
    let digest = id
        .image_digest
        .as_deref()
        .map(|digest| {
            digest.parse::<Digest>().map_err(|e| {
                Problem::new(
                    "InvalidImageDigest",
                    format!("Invalid parameter at 'imageDigest': {digest:?}: {e}"),
                )
            })
        })
        .transpose()?;
    let tag = id
        .image_tag
        .as_deref()
        .map(|tag| {
            tag.parse::<Tag>().map_err(|_| {
                Problem::new(
                    "InvalidImageTag",
                    format!("Invalid parameter at 'imageTag': {tag:?} is not a tag"),
                )
            })
        })
        .transpose()?;
    match (digest, tag) {
        (Some(digest), Some(tag)) => Ok(ImageRef::TagOn { tag, digest }),
        (Some(digest), None) => Ok(ImageRef::Digest(digest)),
        (None, Some(tag)) => Ok(ImageRef::Tag(tag)),
        (None, None) => Err(Problem::new(
            "MissingDigestAndTag",
            "Invalid request parameters: both tag and digest cannot be null",
        )),
    }
}

/// An image id as ECR's messages write it: `{imageDigest:'…', imageTag:'…'}`.
pub(super) fn describe_id(id: &ImageIdentifier) -> String {
    format!(
        "{{imageDigest:'{}', imageTag:'{}'}}",
        id.image_digest.as_deref().unwrap_or("null"),
        id.image_tag.as_deref().unwrap_or("null")
    )
}
