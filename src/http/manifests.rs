//! Manifest endpoints.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::request::{Query, accepted_types, content_type};
use super::set_header;
use crate::error::OciError;
use crate::oci::{Reference, RepoName, Tag};
use crate::registry::{self, Registry};
use crate::storage::ByteStream;

/// A reference to read or delete: one that is neither a tag nor a digest names no manifest
/// (only a PUT is told its tag is invalid).
fn existing(reference: &str) -> Result<Reference, OciError> {
    reference
        .parse()
        .map_err(|_| registry::Error::ManifestUnknown.into())
}

/// `GET`/`HEAD /v2/<name>/manifests/<reference>`; only a GET counts as a pull.
pub async fn get(
    registry: &Registry,
    name: &RepoName,
    reference: &str,
    headers: &HeaderMap,
    is_pull: bool,
) -> Result<Response, OciError> {
    let reference = existing(reference)?;
    let accepted = accepted_types(headers);
    let manifest = registry
        .get_manifest(name, &reference, &accepted, is_pull)
        .await?;
    let length = manifest.content.len();
    let mut response = (StatusCode::OK, manifest.content).into_response();
    set_header(&mut response, "content-type", &manifest.media_type);
    set_header(&mut response, "content-length", length);
    set_header(&mut response, "docker-content-digest", &manifest.digest);
    Ok(response)
}

/// `PUT /v2/<name>/manifests/<reference>[?tag=<tag>…]`
pub async fn put(
    registry: &Registry,
    name: &RepoName,
    reference: &str,
    query: &Query,
    headers: &HeaderMap,
    body: ByteStream,
) -> Result<Response, OciError> {
    let reference: Reference = reference.parse()?;
    let tags = query
        .all("tag")
        .map(str::parse)
        .collect::<Result<Vec<Tag>, _>>()?;
    let pushed = registry
        .put_manifest(name, &reference, &tags, content_type(headers), body)
        .await?;
    let mut response = StatusCode::CREATED.into_response();
    set_header(
        &mut response,
        "location",
        format!("/v2/{name}/manifests/{}", pushed.digest),
    );
    set_header(&mut response, "docker-content-digest", &pushed.digest);
    set_header(&mut response, "content-length", 0);
    if let Some(subject) = pushed.subject {
        set_header(&mut response, "oci-subject", subject);
    }
    // For the audit record (see `audit`), never sent.
    response
        .extensions_mut()
        .insert(super::audit::TagMoves(pushed.moved));
    Ok(response)
}

/// `DELETE /v2/<name>/manifests/<reference>`
pub async fn delete(
    registry: &Registry,
    name: &RepoName,
    reference: &str,
) -> Result<Response, OciError> {
    let reference = existing(reference)?;
    registry.delete_manifest(name, &reference).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
