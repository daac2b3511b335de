//! Layer operations: `BatchCheckLayerAvailability`, `GetDownloadUrlForLayer`,
//! `InitiateLayerUpload`, `UploadLayerPart`, `CompleteLayerUpload`: ECR's way of pushing and
//! pulling blobs, onto the same uploads and repository links as `/v2`. A part arrives whole,
//! base64 in the JSON request (at most 20 MiB), and is appended as one chunk. Download URLs
//! are presigned object-store URLs when the store redirects, else URLs on Wharf itself.
//! Depends on `registry`, on `auth` for download tokens and on `http` for where the download
//! endpoint is.

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Call, EcrError, wire};
use crate::http::downloads;
use crate::oci::{Digest, RepoName};
use crate::registry::{self, ChunkRange};
use crate::storage::ByteStream;

/// ECR's part size, which is also its largest part.
const PART_SIZE: u64 = 20 * 1024 * 1024;
/// Most digests one `BatchCheckLayerAvailability` may ask about, as in ECR.
const MAX_DIGESTS: usize = 100;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchCheckLayerAvailability {
    repository_name: String,
    layer_digests: Vec<String>,
}

pub async fn check_availability(
    call: &Call<'_>,
    input: BatchCheckLayerAvailability,
) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    if !(1..=MAX_DIGESTS).contains(&input.layer_digests.len()) {
        return Err(EcrError::invalid(format!(
            "Invalid parameter at 'layerDigests' failed to satisfy constraint: 'Member must \
             have length between 1 and {MAX_DIGESTS}'"
        )));
    }
    let mut layers = Vec::new();
    let mut failures = Vec::new();
    for text in &input.layer_digests {
        let Ok(digest) = text.parse::<Digest>() else {
            failures.push(layer_failure(
                text,
                "InvalidLayerDigest",
                "Invalid layer digest",
            ));
            continue;
        };
        match call.registry().stat_blob(&name, &digest).await {
            Ok(size) => layers.push(json!({
                "layerDigest": digest.to_string(),
                "layerAvailability": "AVAILABLE",
                "layerSize": size,
            })),
            Err(registry::Error::BlobUnknown) => {
                failures.push(layer_failure(
                    text,
                    "MissingLayerDigest",
                    "Could not find layer",
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(json!({ "layers": layers, "failures": failures }))
}

/// The `LayerFailure` shape.
fn layer_failure(digest: &str, code: &str, reason: &str) -> Value {
    json!({ "layerDigest": digest, "failureCode": code, "failureReason": reason })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetDownloadUrlForLayer {
    repository_name: String,
    layer_digest: String,
}

/// The object store's presigned URL when it redirects downloads; otherwise, with auth on, a
/// URL on Wharf that carries its own short-lived token, and with auth off the plain `/v2`
/// blob URL, which needs no credentials then.
pub async fn download_url(
    call: &Call<'_>,
    input: GetDownloadUrlForLayer,
) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let digest = layer_digest("layerDigest", &input.layer_digest)?;
    let redirect = call
        .registry()
        .blob_redirect(&name, &digest)
        .await
        .map_err(|e| match e {
            registry::Error::BlobUnknown => layers_not_found(call, &name, &digest),
            other => EcrError::on_repository(other, call, &name),
        })?;
    let url = match redirect {
        Some(url) => url,
        None => {
            let base = call.base_url.as_deref().ok_or_else(|| {
                EcrError::invalid("cannot build a download URL: the request names no host")
            })?;
            match &call.app.auth {
                Some(auth) => {
                    downloads::url(base, &auth.download_token(&call.user, &name, &digest))
                }
                None => format!("{base}/v2/{name}/blobs/{digest}"),
            }
        }
    };
    Ok(json!({ "downloadUrl": url, "layerDigest": digest.to_string() }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitiateLayerUpload {
    repository_name: String,
}

pub async fn initiate_upload(
    call: &Call<'_>,
    input: InitiateLayerUpload,
) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let upload = call
        .registry()
        .start_upload(&name)
        .await
        .map_err(|e| EcrError::on_repository(e, call, &name))?;
    Ok(json!({ "uploadId": upload.id, "partSize": PART_SIZE }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadLayerPart {
    repository_name: String,
    upload_id: String,
    part_first_byte: u64,
    part_last_byte: u64,
    layer_part_blob: String,
}

pub async fn upload_part(call: &Call<'_>, input: UploadLayerPart) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let (first, last, id) = (input.part_first_byte, input.part_last_byte, input.upload_id);
    let part = decode_part(input.layer_part_blob)?;
    let length = part.len() as u64;
    // The span is inclusive, so it cannot describe an empty part: those are refused too.
    if last.checked_sub(first).and_then(|span| span.checked_add(1)) != Some(length) {
        return Err(EcrError::new(
            "InvalidLayerPartException",
            format!(
                "The layer part from byte {first} to byte {last} of the upload with id '{id}' \
                 carries {length} bytes"
            ),
        ));
    }
    let range = ChunkRange {
        start: Some(first),
        length: Some(length),
    };
    let body: ByteStream = Box::pin(futures::stream::iter([Ok(part)]));
    let upload = call
        .registry()
        .append_chunk(&name, &id, range, body)
        .await
        .map_err(|e| match e {
            registry::Error::OffsetMismatch { size } => EcrError::new(
                "InvalidLayerPartException",
                format!(
                    "The layer part starting at byte {first} does not follow the {size} bytes \
                     the upload with id '{id}' has received; lastValidByteReceived: {}",
                    size as i64 - 1
                ),
            ),
            other => upload_error(other, call, &name, &id),
        })?;
    Ok(json!({
        "registryId": call.registry_id(),
        "repositoryName": name.as_str(),
        "uploadId": id,
        "lastByteReceived": upload.size - 1,
    }))
}

/// A part's bytes from its base64 text, which is dropped as soon as it is decoded.
fn decode_part(encoded: String) -> Result<Bytes, EcrError> {
    let part = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| EcrError::invalid(format!("Invalid parameter at 'layerPartBlob': {e}")))?;
    if part.len() as u64 > PART_SIZE {
        return Err(EcrError::invalid(format!(
            "Invalid parameter at 'layerPartBlob' failed to satisfy constraint: 'Member must \
             have length less than or equal to {PART_SIZE}'"
        )));
    }
    Ok(Bytes::from(part))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteLayerUpload {
    repository_name: String,
    upload_id: String,
    layer_digests: Vec<String>,
}

/// Verifies the digest and links the layer. An upload of a layer the repository already has
/// is refused, as ECR does, and discarded: it has nothing left to add, so its staged bytes are
/// freed now rather than by the stale-upload sweep.
pub async fn complete_upload(
    call: &Call<'_>,
    input: CompleteLayerUpload,
) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let id = input.upload_id;
    let digest = match &input.layer_digests[..] {
        [digest] => layer_digest("layerDigests", digest)?,
        _ => {
            return Err(EcrError::invalid(
                "Invalid parameter at 'layerDigests': Wharf takes exactly one digest, that of \
                 the layer",
            ));
        }
    };
    let registry = call.registry();
    let upload = registry
        .upload_status(&name, &id)
        .await
        .map_err(|e| upload_error(e, call, &name, &id))?;
    if upload.size == 0 {
        return Err(EcrError::new(
            "EmptyUploadException",
            format!(
                "The upload with id '{id}' in the repository with name '{name}' in registry \
                 with id '{}' cannot be completed because it does not have any parts",
                call.registry_id()
            ),
        ));
    }
    match registry.stat_blob(&name, &digest).await {
        Ok(_) => {
            match registry.cancel_upload(&name, &id).await {
                // Gone meanwhile (a concurrent finish or cancel): the layer is there all the same.
                Ok(()) | Err(registry::Error::UploadUnknown) => {}
                Err(e) => return Err(e.into()),
            }
            return Err(EcrError::new(
                "LayerAlreadyExistsException",
                format!(
                    "The layer with digest '{digest}' already exists in the repository with \
                     name '{name}' in registry with id '{}'",
                    call.registry_id()
                ),
            ));
        }
        Err(registry::Error::BlobUnknown) => {}
        Err(e) => return Err(e.into()),
    }
    registry
        .complete_upload(&name, &id, &digest, None)
        .await
        .map_err(|e| upload_error(e, call, &name, &id))?;
    Ok(json!({
        "registryId": call.registry_id(),
        "repositoryName": name.as_str(),
        "uploadId": id,
        "layerDigest": digest.to_string(),
    }))
}

/// A digest parameter, which must be one Wharf computes (sha256, or sha512).
fn layer_digest(field: &str, text: &str) -> Result<Digest, EcrError> {
    text.parse().map_err(|e| {
        EcrError::invalid(format!(
            "Invalid parameter at '{field}': {text:?} is not a layer digest: {e}"
        ))
    })
}

fn layers_not_found(call: &Call<'_>, name: &RepoName, digest: &Digest) -> EcrError {
    EcrError::new(
        "LayersNotFoundException",
        format!(
            "The layer with digest '{digest}' does not exist within the repository with name \
             '{name}' in the registry with id '{}'",
            call.registry_id()
        ),
    )
}

/// A registry error on one upload, with ECR's message for an upload it does not know.
fn upload_error(error: registry::Error, call: &Call<'_>, name: &RepoName, id: &str) -> EcrError {
    match error {
        registry::Error::UploadUnknown => EcrError::new(
            "UploadNotFoundException",
            format!(
                "The upload with id '{id}' does not exist in the repository with name '{name}' \
                 in registry with id '{}'",
                call.registry_id()
            ),
        ),
        other => EcrError::on_repository(other, call, name),
    }
}
