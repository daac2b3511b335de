//! Blob and upload endpoints.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::request::{Query, byte_range, chunk_range, content_length};
use super::set_header;
use crate::error::{OciError, upload_range};
use crate::oci::{Digest, RepoName};
use crate::registry::{BlobContent, MountOutcome, Registry, UploadStatus};
use crate::storage::ByteStream;

/// 202/204 for an upload in progress: where to send the next chunk and what has arrived.
fn upload_response(status: StatusCode, name: &RepoName, upload: &UploadStatus) -> Response {
    let mut response = status.into_response();
    set_header(
        &mut response,
        "location",
        format!("/v2/{name}/blobs/uploads/{}", upload.id),
    );
    set_header(&mut response, "range", upload_range(upload.size));
    set_header(&mut response, "docker-upload-uuid", &upload.id);
    set_header(&mut response, "content-length", 0);
    response
}

/// 201 for a blob now present in the repository.
fn blob_created(name: &RepoName, digest: &Digest) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    set_header(
        &mut response,
        "location",
        format!("/v2/{name}/blobs/{digest}"),
    );
    set_header(&mut response, "docker-content-digest", digest);
    set_header(&mut response, "content-length", 0);
    response
}

fn parse_digest(digest: &str) -> Result<Digest, OciError> {
    Ok(digest.parse()?)
}

/// `GET /v2/<name>/blobs/<digest>`, with an optional single `Range`.
pub async fn get(
    registry: &Registry,
    name: &RepoName,
    digest: &str,
    headers: &HeaderMap,
) -> Result<Response, OciError> {
    let digest = parse_digest(digest)?;
    let blob = registry
        .get_blob(name, &digest, byte_range(headers))
        .await?;
    let (size, range, body) = match blob {
        BlobContent::Bytes { size, range, body } => (size, range, body),
        BlobContent::Redirect(url) => {
            let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
            set_header(&mut response, "location", url);
            set_header(&mut response, "docker-content-digest", &digest);
            return Ok(response);
        }
    };
    let (status, length) = match range {
        Some((first, last)) => (StatusCode::PARTIAL_CONTENT, last - first + 1),
        None => (StatusCode::OK, size),
    };
    let mut response = (status, Body::from_stream(body)).into_response();
    set_header(&mut response, "content-length", length);
    set_header(&mut response, "content-type", "application/octet-stream");
    set_header(&mut response, "docker-content-digest", &digest);
    set_header(&mut response, "accept-ranges", "bytes");
    if let Some((first, last)) = range {
        set_header(
            &mut response,
            "content-range",
            format!("bytes {first}-{last}/{size}"),
        );
    }
    Ok(response)
}

/// `HEAD /v2/<name>/blobs/<digest>`
pub async fn head(
    registry: &Registry,
    name: &RepoName,
    digest: &str,
) -> Result<Response, OciError> {
    let digest = parse_digest(digest)?;
    let size = registry.stat_blob(name, &digest).await?;
    let mut response = StatusCode::OK.into_response();
    set_header(&mut response, "content-length", size);
    set_header(&mut response, "content-type", "application/octet-stream");
    set_header(&mut response, "docker-content-digest", &digest);
    set_header(&mut response, "accept-ranges", "bytes");
    Ok(response)
}

/// `DELETE /v2/<name>/blobs/<digest>`
pub async fn delete(
    registry: &Registry,
    name: &RepoName,
    digest: &str,
) -> Result<Response, OciError> {
    let digest = parse_digest(digest)?;
    registry.delete_blob(name, &digest).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST /v2/<name>/blobs/uploads/` with `?digest=` (monolithic), `?mount=&from=` (mount;
/// only from a source the caller may read), or nothing (start a session).
pub async fn start_upload(
    registry: &Registry,
    name: &RepoName,
    query: &Query,
    may_read_source: bool,
    headers: &HeaderMap,
    body: ByteStream,
) -> Result<Response, OciError> {
    if let Some(digest) = query.get("mount") {
        let digest = parse_digest(digest)?;
        let from: Option<RepoName> = query.get("from").map(str::parse).transpose()?;
        let from = from.filter(|_| may_read_source);
        return Ok(
            match registry.mount_blob(name, &digest, from.as_ref()).await? {
                MountOutcome::Mounted => blob_created(name, &digest),
                MountOutcome::UploadStarted(upload) => {
                    upload_response(StatusCode::ACCEPTED, name, &upload)
                }
            },
        );
    }
    if let Some(digest) = query.get("digest") {
        let digest = parse_digest(digest)?;
        registry
            .push_blob(name, &digest, content_length(headers), body)
            .await?;
        return Ok(blob_created(name, &digest));
    }
    let upload = registry.start_upload(name).await?;
    Ok(upload_response(StatusCode::ACCEPTED, name, &upload))
}

/// `GET /v2/<name>/blobs/uploads/<id>`
pub async fn upload_status(
    registry: &Registry,
    name: &RepoName,
    id: &str,
) -> Result<Response, OciError> {
    let upload = registry.upload_status(name, id).await?;
    Ok(upload_response(StatusCode::NO_CONTENT, name, &upload))
}

/// `PATCH /v2/<name>/blobs/uploads/<id>`, chunked (with `Content-Range`) or streamed.
pub async fn patch_upload(
    registry: &Registry,
    name: &RepoName,
    id: &str,
    headers: &HeaderMap,
    body: ByteStream,
) -> Result<Response, OciError> {
    let range = chunk_range(headers)?;
    let upload = registry.append_chunk(name, id, range, body).await?;
    Ok(upload_response(StatusCode::ACCEPTED, name, &upload))
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=`, with or without a final chunk.
pub async fn put_upload(
    registry: &Registry,
    name: &RepoName,
    id: &str,
    query: &Query,
    headers: &HeaderMap,
    body: ByteStream,
) -> Result<Response, OciError> {
    let digest = query
        .get("digest")
        .ok_or_else(|| OciError::from(crate::oci::DigestError::Malformed))?;
    let digest = parse_digest(digest)?;
    let range = chunk_range(headers)?;
    let final_chunk = (range.length != Some(0)).then_some((range, body));
    registry
        .complete_upload(name, id, &digest, final_chunk)
        .await?;
    Ok(blob_created(name, &digest))
}

/// `DELETE /v2/<name>/blobs/uploads/<id>`
pub async fn cancel_upload(
    registry: &Registry,
    name: &RepoName,
    id: &str,
) -> Result<Response, OciError> {
    registry.cancel_upload(name, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
