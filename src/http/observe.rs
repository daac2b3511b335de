//! What every request leaves behind for operators: its route (the endpoint kind, never a
//! repository name) in its log span and in the request metrics, with its status and how long
//! it took; and the operator endpoints `/healthz`, `/readyz`, `/metrics` and `/audit`. Part
//! of `http`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;

use super::{AppState, downloads};
use crate::auth::policy;

/// How long `/readyz` waits for each dependency.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
pub const AUDIT: &str = "/audit";

/// Records the request's route in its span and its outcome in the metrics.
pub async fn observe(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let route = route_of(&request);
    let method = method_label(request.method());
    tracing::Span::current().record("route", tracing::field::display(route));
    let started = Instant::now();
    let request = match route {
        "upload" | "uploads" => {
            let metrics = app.metrics.clone();
            request.map(|body| counted(body, move |n| metrics.blob_bytes_received(n)))
        }
        _ => request,
    };
    let response = next.run(request).await;
    let status = response.status().as_u16();
    app.metrics
        .request(method, route, status, started.elapsed());
    match route {
        "blob" | "download" if response.status().is_success() => {
            let metrics = app.metrics.clone();
            response.map(|body| counted(body, move |n| metrics.blob_bytes_sent(n)))
        }
        _ => response,
    }
}

/// `body`, counting its bytes as they pass.
fn counted(body: Body, count: impl Fn(u64) + Send + Sync + 'static) -> Body {
    Body::from_stream(
        body.into_data_stream()
            .inspect_ok(move |chunk| count(chunk.len() as u64)),
    )
}

/// The endpoint kind a request is for: a `/v2` endpoint, the ECR operation, or one of the
/// few other paths. Bounded: nothing a client writes becomes a label of its own.
fn route_of(request: &Request) -> &'static str {
    let path = request.uri().path();
    match path {
        "/token" => return "token",
        HEALTHZ => return "healthz",
        READYZ => return "readyz",
        METRICS => return "metrics",
        AUDIT => return "audit",
        downloads::PATH => return "download",
        "/" => {
            let operation = request
                .headers()
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .and_then(|target| target.rsplit_once('.'))
                .map(|(_, operation)| operation);
            return policy::ACTIONS
                .iter()
                .find(|action| action.strip_prefix("ecr:") == operation)
                .copied()
                .unwrap_or("ecr");
        }
        _ => {}
    }
    v2_route(path)
}

/// The `/v2` endpoint kind of `path`, read from its last segments as [`super::Endpoint`] reads
/// them, without checking the name: this runs on every request.
fn v2_route(path: &str) -> &'static str {
    let Some(rest) = path.strip_prefix("/v2/") else {
        return if path == "/v2" { "base" } else { "other" };
    };
    match rest {
        "" => return "base",
        "_catalog" => return "catalog",
        _ => {}
    }
    let mut segments = rest.rsplit('/');
    let last = segments.next();
    let second = segments.next();
    let third = segments.next();
    match (third, second, last) {
        (Some("blobs"), Some("uploads"), Some("")) => "uploads",
        (Some("blobs"), Some("uploads"), Some(_)) => "upload",
        (_, Some("blobs"), Some("uploads")) => "uploads",
        (_, Some("tags"), Some("list")) => "tags",
        (_, Some("manifests"), Some(_)) => "manifest",
        (_, Some("blobs"), Some(_)) => "blob",
        (_, Some("referrers"), Some(_)) => "referrers",
        _ => "other",
    }
}

/// The method as a label: the ones HTTP defines, else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `GET /healthz`: the process serves. Touches nothing else.
pub async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// `GET /readyz`: the database and the blob store answer in time; else 503 naming which do
/// not, so that a load balancer drains this node until they do.
pub async fn readyz(State(app): State<AppState>) -> Response {
    let registry = &app.registry;
    let (database, storage) = tokio::join!(
        tokio::time::timeout(READY_TIMEOUT, registry.database_answers()),
        tokio::time::timeout(READY_TIMEOUT, registry.storage_answers()),
    );
    let mut failing = Vec::new();
    for (name, outcome) in [("database", database), ("storage", storage)] {
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failing.push(format!("{name}: {e}")),
            Err(_) => failing.push(format!("{name}: no answer within {READY_TIMEOUT:?}")),
        }
    }
    if failing.is_empty() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    tracing::warn!(failing = ?failing, "not ready");
    let body = format!("not ready: {}\n", failing.join("; "));
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

/// `GET /metrics`: every metric, with what is read at scrape time refreshed first. Open to
/// anyone with `--metrics-public` or when auth is off; else to `admin` only.
pub async fn metrics(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let open = app.metrics_public;
    if let Some(refusal) = super::refuse_non_admin(&app, peer.ip(), &headers, open).await {
        return refusal;
    }
    match app.registry.state_sample().await {
        Ok(sample) => app.metrics.set_state(&sample),
        Err(e) => tracing::warn!(error = %e, "cannot read the state metrics; serving the rest"),
    }
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        app.metrics.render(),
    )
        .into_response()
}

/// `GET /audit?since=&until=&user=&repository=&event=&failed=true&limit=&next=`: the audit
/// trail, newest first, as `{"records": [CloudTrail records], "nextToken": "…"}`. Open to
/// `admin` only when auth is on.
pub async fn audit(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Some(refusal) = super::refuse_non_admin(&app, peer.ip(), &headers, false).await {
        return refusal;
    }
    let query = super::request::Query::parse(uri.query());
    let bad = |message: String| (StatusCode::BAD_REQUEST, message + "\n").into_response();
    let time = |name: &str| query.get(name).map(crate::registry::parse_time).transpose();
    let (since, until) = match (time("since"), time("until")) {
        (Ok(since), Ok(until)) => (since, until),
        (Err(e), _) | (_, Err(e)) => return bad(e),
    };
    let after = match query.get("next").map(crate::registry::parse_cursor_token) {
        None => None,
        Some(Ok(cursor)) => Some(cursor),
        Some(Err(e)) => return bad(e),
    };
    let limit = match query.get("limit").map(str::parse::<u32>) {
        None => 100,
        Some(Ok(limit)) if limit >= 1 => limit,
        Some(_) => return bad("limit must be a positive number".into()),
    };
    let text = |name: &str| query.get(name).map(str::to_string);
    let filter = crate::metadata::AuditFilter {
        since,
        until,
        user: text("user"),
        repository: text("repository"),
        event_name: text("event"),
        failed: query.get("failed") == Some("true"),
    };
    match app
        .registry
        .audit_events(&filter, after.as_ref(), limit)
        .await
    {
        Ok((records, next)) => {
            let region = &app.ecr.region;
            let records: Vec<_> = records
                .iter()
                .map(|record| crate::registry::cloudtrail(record, region))
                .collect();
            let mut body = serde_json::json!({ "records": records });
            if let Some(next) = next {
                body["nextToken"] = serde_json::json!(crate::registry::cursor_token(&next));
            }
            axum::Json(body).into_response()
        }
        Err(e) => crate::error::OciError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_routes_are_endpoint_kinds_whatever_the_name() {
        let cases = [
            ("/v2", "base"),
            ("/v2/", "base"),
            ("/v2/_catalog", "catalog"),
            ("/v2/a/b/c/tags/list", "tags"),
            ("/v2/app/manifests/latest", "manifest"),
            ("/v2/app/blobs/sha256:00", "blob"),
            ("/v2/app/blobs/uploads/", "uploads"),
            ("/v2/app/blobs/uploads", "uploads"),
            ("/v2/team/app/blobs/uploads/0f3e", "upload"),
            ("/v2/app/referrers/sha256:00", "referrers"),
            ("/v2/app/whatever", "other"),
            ("/elsewhere", "other"),
        ];
        for (path, route) in cases {
            assert_eq!(v2_route(path), route, "{path}");
        }
    }
}
