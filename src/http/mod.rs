//! The HTTP surface: `/v2/…` routing, the layers every request passes through, and one thin
//! handler per endpoint that parses the request, makes one registry call and shapes the
//! response. Dependency direction: `http → registry`; errors go through `error::OciError`.

pub(crate) mod audit;
mod blobs;
pub(crate) mod downloads;
mod endpoint;
pub(crate) mod forwarded;
mod listing;
mod manifests;
mod observe;
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
        tracing::info_span!(
            "request",
            id,
            method = %request.method(),
            path = %request.uri().path(),
            route = tracing::field::Empty,
            user = tracing::field::Empty,
        )
    });
    Router::new()
        .route(observe::HEALTHZ, axum::routing::get(observe::healthz))
        .route(observe::READYZ, axum::routing::get(observe::readyz))
        .route(observe::METRICS, axum::routing::get(observe::metrics))
        .route(observe::AUDIT, axum::routing::get(observe::audit))
        .route("/token", any(token_endpoint))
        .route("/", axum::routing::post(crate::ecr::endpoint))
        .route(downloads::PATH, axum::routing::get(downloads::endpoint))
        .route("/v2", any(dispatch))
        .route("/v2/", any(dispatch))
        .route("/v2/{*rest}", any(dispatch))
        .fallback(any(dispatch))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
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
    let client = forwarded::client(peer.ip(), request.headers(), &app.trusted_proxies);
    let audited = audit::Request::of(
        request.method(),
        request.uri().path(),
        request.headers(),
        &client,
    );
    let mut user = None;
    let outcome = route(&app, peer.ip(), request, &mut user).await;
    audited.record(&app, user.as_deref(), &outcome);
    match outcome {
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
    let scopes: Vec<String> = query.all("scope").map(str::to_string).collect();
    let response = token::token(
        auth,
        &parts.method,
        query,
        &parts.headers,
        byte_stream(body),
        client.origin,
    )
    .await
    .unwrap_or_else(IntoResponse::into_response);
    let scopes = scopes.iter().map(String::as_str).collect();
    audit::record_token(&app, &client, &parts.headers, scopes, response.status());
    response
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

/// Serves a `/v2` request; `user` is set to who it proved to be, once it has.
async fn route(
    app: &App,
    peer: IpAddr,
    request: Request,
    user: &mut Option<String>,
) -> Result<Response, OciError> {
    let (parts, body) = request.into_parts();
    let query = request::Query::parse(parts.uri.query());
    let headers = &parts.headers;
    let body = byte_stream(body);
    let method = parts.method.clone();
    let r = &app.registry;
    let endpoint = Endpoint::parse(parts.uri.path())?;
    let mut readable_mount_source = true;
    if app.auth.is_none() {
        tracing::Span::current().record("user", tracing::field::display("anonymous"));
    }
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
        tracing::Span::current().record("user", tracing::field::display(caller.name()));
        *user = Some(caller.name().to_string());
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

/// A 401 (with a Basic challenge) or 403 for a caller who is not `admin`, when auth is on and
/// `open` is false; `None` when the request may go on.
pub(crate) async fn refuse_non_admin(
    app: &App,
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
    open: bool,
) -> Option<Response> {
    let auth = app.auth.as_ref().filter(|_| !open)?;
    let client = forwarded::client(peer, headers, &app.trusted_proxies);
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match authorization {
        Some(value) => auth.basic_caller(value, client.origin).await,
        None => Ok(None),
    };
    match caller {
        Ok(Some(caller)) if caller.name() == crate::auth::ADMIN => None,
        Ok(Some(_)) => Some(StatusCode::FORBIDDEN.into_response()),
        Ok(None) => Some(
            (
                StatusCode::UNAUTHORIZED,
                [(
                    axum::http::header::WWW_AUTHENTICATE,
                    "Basic realm=\"wharf\"",
                )],
            )
                .into_response(),
        ),
        Err(e) => Some(OciError::from(e).into_response()),
    }
}
