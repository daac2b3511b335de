//! `GET /layers?token=…`: the layer URLs `GetDownloadUrlForLayer` hands out when auth is on.
//! The token is the only credential (see `auth::downloads`); the blob is then served exactly
//! as `GET /v2/<name>/blobs/<digest>` serves it: streamed, with `Range` support. The token
//! travels in the query rather than the path so that request logs, which record paths, do not
//! keep usable credentials.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::request::Query;
use super::{AppState, blobs};
use crate::App;
use crate::error::{ErrorCode, OciError};

/// Where download URLs point.
pub const PATH: &str = "/layers";

/// The download URL for `token` on a registry reached at `base_url`.
pub fn url(base_url: &str, token: &str) -> String {
    format!("{base_url}{PATH}?token={token}")
}

pub async fn endpoint(State(app): State<AppState>, request: Request) -> Response {
    download(&app, request.uri().query(), request.headers())
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn download(
    app: &App,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, OciError> {
    let Some(auth) = &app.auth else {
        // With auth off, download URLs are plain /v2 blob URLs: no token was ever issued.
        return Err(OciError::new(
            ErrorCode::NotFound,
            "download tokens are only issued when auth is on",
        ));
    };
    let query = Query::parse(query);
    let token = query.get("token").unwrap_or_default();
    let (name, digest) = auth.download_grant(token).await?.ok_or_else(|| {
        OciError::new(
            ErrorCode::Denied,
            "the download URL is invalid or has expired",
        )
    })?;
    blobs::get(&app.registry, &name, &digest.to_string(), headers).await
}
