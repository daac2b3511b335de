//! Listing endpoints: tags, catalog and referrers.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::request::Query;
use super::set_header;
use crate::error::OciError;
use crate::oci::{Digest, RepoName, Tag, media_types};
use crate::registry::Registry;

/// The `Link` header pointing at the page after `last`.
fn next_link(path: &str, n: Option<u32>, last: &str) -> String {
    let n = n.map(|n| format!("n={n}&")).unwrap_or_default();
    let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
    format!("<{path}?{n}last={last}>; rel=\"next\"")
}

/// `GET /v2/<name>/tags/list?n=&last=`
pub async fn tags(
    registry: &Registry,
    name: &RepoName,
    query: &Query,
) -> Result<Response, OciError> {
    let n = query.page_size()?;
    // `last` is a tag from an earlier page; anything else could never be one.
    let last: Option<Tag> = query.get("last").map(str::parse).transpose()?;
    let last = last.as_ref().map(Tag::as_str);
    let (tags, more) = registry.list_tags(name, n, last).await?;
    let link = more.then(|| next_link(&format!("/v2/{name}/tags/list"), n, &tags[tags.len() - 1]));
    let mut response = Json(json!({ "name": name.as_str(), "tags": tags })).into_response();
    if let Some(link) = link {
        set_header(&mut response, "link", link);
    }
    Ok(response)
}

/// `GET /v2/_catalog?n=&last=`
pub async fn catalog(registry: &Registry, query: &Query) -> Result<Response, OciError> {
    let n = query.page_size()?;
    let last: Option<RepoName> = query.get("last").map(str::parse).transpose()?;
    let last = last.as_ref().map(RepoName::as_str);
    let (names, more) = registry.catalog(n, last).await?;
    let link = more.then(|| next_link("/v2/_catalog", n, &names[names.len() - 1]));
    let mut response = Json(json!({ "repositories": names })).into_response();
    if let Some(link) = link {
        set_header(&mut response, "link", link);
    }
    Ok(response)
}

/// `GET /v2/<name>/referrers/<digest>[?artifactType=]`: an image index of the manifests
/// whose subject is `digest`.
pub async fn referrers(
    registry: &Registry,
    name: &RepoName,
    digest: &str,
    query: &Query,
) -> Result<Response, OciError> {
    let subject: Digest = digest.parse()?;
    let found = registry
        .referrers(name, &subject, query.get("artifactType"))
        .await?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": found.manifests,
    });
    let mut response = (StatusCode::OK, Json(index)).into_response();
    set_header(&mut response, "content-type", media_types::OCI_INDEX);
    if found.filtered {
        set_header(&mut response, "oci-filters-applied", "artifactType");
    }
    Ok(response)
}
