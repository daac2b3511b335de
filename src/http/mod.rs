//! The HTTP surface: `/v2/…` routing, the layers every request passes through, and one thin
//! handler per endpoint that parses the request, makes one registry call and shapes the
//! response. Dependency direction: `http → registry`; errors go through `error::OciError`.

mod blobs;
pub(crate) mod downloads;
mod endpoint;
pub(crate) mod forwarded;
mod listing;
mod manifests;
mod request;
pub mod server;
mod token;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use futures::TryStreamExt;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use endpoint::Endpoint;

use crate::App;
use crate::auth::Need;
use crate::error::{ErrorCode, OciError};
use crate::storage::ByteStream;

pub type AppState = Arc<App>;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole registry API. Every path under `/v2` goes to [`dispatch`], because repository
/// names have any number of slashes and a router cannot match them from the end.
pub fn router(state: AppState) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request| {
        let id = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::info_span!("request", id, method = %request.method(), path = %request.uri().path())
    });
    Router::new()
        .route("/token", any(token_endpoint))
        .route("/", axum::routing::post(crate::ecr::endpoint))
        .route(downloads::PATH, axum::routing::get(downloads::endpoint))
        .route("/v2", any(dispatch))
        .route("/v2/", any(dispatch))
        .route("/v2/{*rest}", any(dispatch))
        .fallback(any(dispatch))
        .with_state(state)
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("docker-distribution-api-version"),
            HeaderValue::from_static("registry/2.0"),
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(trace)
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn dispatch(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    match route(&app, peer.ip(), request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// `GET`/`POST /token`, when auth is on. Errors are OAuth2's, not the registry's.
async fn token_endpoint(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let Some(auth) = &app.auth else {
        return token::disabled();
    };
    let (parts, body) = request.into_parts();
    let client = forwarded::client(peer.ip(), &parts.headers, &app.trusted_proxies);
    let query = request::Query::parse(parts.uri.query());
    let response = token::token(
        auth,
        &parts.method,
        query,
        &parts.headers,
        byte_stream(body),
        client.origin,
    )
    .await;
    response.unwrap_or_else(IntoResponse::into_response)
}

/// Where clients reach the registry: the configured public URL, else the host this request
/// (or a trusted proxy in front) addressed; `None` when that is missing or malformed.
pub(crate) fn base_url(app: &App, client: &forwarded::Client) -> Option<String> {
    if let Some(url) = &app.public_url {
        return Some(url.trim_end_matches('/').to_string());
    }
    let scheme = if client.origin.secure {
        "https"
    } else {
        "http"
    };
    let host = client.host.as_ref()?;
    Some(format!("{scheme}://{host}"))
}

/// Where clients fetch tokens.
fn realm(app: &App, client: &forwarded::Client) -> Option<String> {
    base_url(app, client).map(|url| format!("{url}/token"))
}

/// The permissions an operation needs, in ECR's action names. An upload request that also
/// carries bytes or finishes the blob needs each of the steps it performs.
fn needs(
    endpoint: &Endpoint,
    method: &Method,
    query: &request::Query,
    has_body: bool,
) -> Vec<Need> {
    let on = |repo: &crate::oci::RepoName, action| Need {
        repository: Some(repo.clone()),
        action,
    };
    match (endpoint, method) {
        (Endpoint::Base, _) => Vec::new(),
        (Endpoint::Catalog, _) => vec![Need {
            repository: None,
            action: "ecr:DescribeRepositories",
        }],
        (Endpoint::Tags(name), _) => vec![on(name, "ecr:ListImages")],
        (Endpoint::Referrers(name, _), _) => vec![on(name, "ecr:BatchGetImage")],
        (Endpoint::Manifest(name, _), &Method::PUT) => vec![on(name, "ecr:PutImage")],
        (Endpoint::Manifest(name, _) | Endpoint::Blob(name, _), &Method::DELETE) => {
            vec![on(name, "ecr:BatchDeleteImage")]
        }
        (Endpoint::Manifest(name, _), _) => vec![on(name, "ecr:BatchGetImage")],
        (Endpoint::Blob(name, _), &Method::HEAD) => {
            vec![on(name, "ecr:BatchCheckLayerAvailability")]
        }
        (Endpoint::Blob(name, _), _) => vec![on(name, "ecr:GetDownloadUrlForLayer")],
        (Endpoint::Uploads(name), _) if query.get("digest").is_some() => vec![
            on(name, "ecr:InitiateLayerUpload"),
            on(name, "ecr:UploadLayerPart"),
            on(name, "ecr:CompleteLayerUpload"),
        ],
        (Endpoint::Uploads(name), _) => vec![on(name, "ecr:InitiateLayerUpload")],
        (Endpoint::Upload(name, _), &Method::PUT) if has_body => vec![
            on(name, "ecr:UploadLayerPart"),
            on(name, "ecr:CompleteLayerUpload"),
        ],
        (Endpoint::Upload(name, _), &Method::PUT) => vec![on(name, "ecr:CompleteLayerUpload")],
        (Endpoint::Upload(name, _), _) => vec![on(name, "ecr:UploadLayerPart")],
    }
}

async fn route(app: &App, peer: IpAddr, request: Request) -> Result<Response, OciError> {
    let (parts, body) = request.into_parts();
    let query = request::Query::parse(parts.uri.query());
    let headers = &parts.headers;
    let body = byte_stream(body);
    let method = parts.method.clone();
    let r = &app.registry;
    let endpoint = Endpoint::parse(parts.uri.path())?;
    let mut readable_mount_source = true;
    if let Some(auth) = &app.auth {
        let authorization = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let client = forwarded::client(peer, headers, &app.trusted_proxies);
        let realm = realm(app, &client);
        // A mount needs read access to its source; without it, it falls back to an upload.
        let mount_source = match (&endpoint, query.get("from")) {
            (Endpoint::Uploads(_), Some(from)) => from.parse().ok().map(|source| Need {
                repository: Some(source),
                action: "ecr:GetDownloadUrlForLayer",
            }),
            _ => None,
        };
        let has_body = request::content_length(headers).is_some_and(|n| n > 0)
            || headers.contains_key(axum::http::header::TRANSFER_ENCODING);
        let needs = needs(&endpoint, &method, &query, has_body);
        let wanted: Vec<Need> = mount_source.iter().cloned().collect();
        let caller = auth
            .check(
                authorization,
                client.origin,
                realm.as_deref(),
                &needs,
                &wanted,
            )
            .await?;
        if let Some(source) = &mount_source {
            readable_mount_source = auth.permits(&caller, source, client.origin).await?;
        }
    }
    match (endpoint, method) {
        (Endpoint::Base, Method::GET | Method::HEAD) => {
            Ok((StatusCode::OK, axum::Json(serde_json::json!({}))).into_response())
        }
        (Endpoint::Catalog, Method::GET) => listing::catalog(r, &query).await,
        (Endpoint::Tags(name), Method::GET) => listing::tags(r, &name, &query).await,
        (Endpoint::Referrers(name, digest), Method::GET) => {
            listing::referrers(r, &name, &digest, &query).await
        }
        (Endpoint::Manifest(name, reference), Method::GET) => {
            manifests::get(r, &name, &reference, headers, true).await
        }
        (Endpoint::Manifest(name, reference), Method::HEAD) => {
            manifests::get(r, &name, &reference, headers, false).await
        }
        (Endpoint::Manifest(name, reference), Method::PUT) => {
            manifests::put(r, &name, &reference, &query, headers, body).await
        }
        (Endpoint::Manifest(name, reference), Method::DELETE) => {
            manifests::delete(r, &name, &reference).await
        }
        (Endpoint::Blob(name, digest), Method::GET) => blobs::get(r, &name, &digest, headers).await,
        (Endpoint::Blob(name, digest), Method::HEAD) => blobs::head(r, &name, &digest).await,
        (Endpoint::Blob(name, digest), Method::DELETE) => blobs::delete(r, &name, &digest).await,
        (Endpoint::Uploads(name), Method::POST) => {
            blobs::start_upload(r, &name, &query, readable_mount_source, headers, body).await
        }
        (Endpoint::Upload(name, id), Method::GET) => blobs::upload_status(r, &name, &id).await,
        (Endpoint::Upload(name, id), Method::PATCH) => {
            blobs::patch_upload(r, &name, &id, headers, body).await
        }
        (Endpoint::Upload(name, id), Method::PUT) => {
            blobs::put_upload(r, &name, &id, &query, headers, body).await
        }
        (Endpoint::Upload(name, id), Method::DELETE) => blobs::cancel_upload(r, &name, &id).await,
        (_, method) => Err(OciError::new(
            ErrorCode::Unsupported,
            format!("{method} is not supported on this endpoint"),
        )),
    }
}

fn byte_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// Sets a header whose value Wharf built itself (digests, paths, numbers).
fn set_header(response: &mut Response, name: &'static str, value: impl ToString) {
    if let Ok(value) = HeaderValue::try_from(value.to_string()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
}
