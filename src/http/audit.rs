//! The audit records of `/v2` requests, named by the ECR action each one is: a manifest GET is
//! `BatchGetImage` (a pull: the blob reads that follow it are folded into it and not recorded
//! apart), a manifest PUT `PutImage`, an upload's start and end `InitiateLayerUpload` and
//! `CompleteLayerUpload`, deletes `BatchDeleteImage` and `DeleteLayer`, listings
//! `DescribeRepositories`, `ListImages` and `ListImageReferrers`. Blob and manifest HEADs,
//! blob GETs and upload chunks are not recorded, unless refused: every request refused for
//! want of credentials or rights is, those as `AccessDenied`. Part of `http`.

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::endpoint::Endpoint;
use super::forwarded::Client;
use crate::App;
use crate::error::OciError;
use crate::metadata::AuditRecord;
use crate::registry::audit_record;

/// The tags a push moved, each with the digest it left: set on the response for its record.
#[derive(Clone)]
pub struct TagMoves(pub Vec<(String, Option<String>)>);

/// What is known of a request before it is served.
pub struct Request {
    event: Option<&'static str>,
    method: String,
    parameters: Map<String, Value>,
    source_ip: String,
    user_agent: Option<String>,
    request_id: Option<String>,
    claimed: Claimed,
}

/// A header's value as text, if it is text.
pub fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Who a request says it is, by its `Authorization` header, before that is checked.
#[derive(Default)]
pub struct Claimed {
    pub user: Option<String>,
    pub access_key_id: Option<String>,
}

/// The name a Basic `Authorization` header gives (a user, `AWS`, or an access key id).
pub fn claimed(headers: &HeaderMap) -> Claimed {
    use base64::Engine as _;
    let name = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, credentials)| {
            base64::engine::general_purpose::STANDARD
                .decode(credentials.trim())
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .and_then(|decoded| decoded.split_once(':').map(|(name, _)| name.to_string()));
    match name {
        Some(key) if crate::auth::is_access_key_id(&key) => Claimed {
            user: None,
            access_key_id: Some(key),
        },
        user => Claimed {
            user,
            access_key_id: None,
        },
    }
}

/// The ECR action a `/v2` request is recorded as, if it is recorded when served.
fn event_of(endpoint: &Endpoint, method: &Method) -> Option<&'static str> {
    Some(match (endpoint, method) {
        (Endpoint::Manifest(..), &Method::GET) => "BatchGetImage",
        (Endpoint::Manifest(..), &Method::PUT) => "PutImage",
        (Endpoint::Manifest(..), &Method::DELETE) => "BatchDeleteImage",
        (Endpoint::Blob(..), &Method::DELETE) => "DeleteLayer",
        (Endpoint::Uploads(_), &Method::POST) => "InitiateLayerUpload",
        (Endpoint::Upload(..), &Method::PUT) => "CompleteLayerUpload",
        (Endpoint::Catalog, &Method::GET) => "DescribeRepositories",
        (Endpoint::Tags(_), &Method::GET) => "ListImages",
        (Endpoint::Referrers(..), &Method::GET) => "ListImageReferrers",
        _ => return None,
    })
}

/// The request's repository and what it names in it, as CloudTrail's `requestParameters`.
fn parameters_of(endpoint: &Endpoint) -> Map<String, Value> {
    let mut parameters = Map::new();
    let (name, key, value) = match endpoint {
        Endpoint::Manifest(name, reference) => {
            let key = if reference.contains(':') {
                "imageDigest"
            } else {
                "imageTag"
            };
            (name, Some(key), Some(reference))
        }
        Endpoint::Blob(name, digest) => (name, Some("layerDigest"), Some(digest)),
        Endpoint::Upload(name, id) => (name, Some("uploadId"), Some(id)),
        Endpoint::Referrers(name, digest) => (name, Some("imageDigest"), Some(digest)),
        Endpoint::Tags(name) | Endpoint::Uploads(name) => (name, None, None),
        Endpoint::Base | Endpoint::Catalog => return parameters,
    };
    parameters.insert("repositoryName".into(), json!(name.as_str()));
    if let (Some(key), Some(value)) = (key, value) {
        parameters.insert(key.into(), json!(value));
    }
    parameters
}

impl Request {
    pub fn of(method: &Method, path: &str, headers: &HeaderMap, client: &Client) -> Request {
        let endpoint = Endpoint::parse(path).ok();
        let text = |name: &str| header_text(headers, name);
        Request {
            event: endpoint.as_ref().and_then(|e| event_of(e, method)),
            method: method.to_string(),
            parameters: endpoint.as_ref().map(parameters_of).unwrap_or_default(),
            source_ip: client.origin.address.to_string(),
            user_agent: text("user-agent"),
            request_id: text("x-request-id"),
            claimed: claimed(headers),
        }
    }

    /// Records the request as it ended, if it is recorded: `user` is who it proved to be
    /// (`None` if it proved nothing), `outcome` its response or error.
    pub fn record(self, app: &App, user: Option<&str>, outcome: &Result<Response, OciError>) {
        let (status, error) = match outcome {
            Ok(response) => (response.status(), None),
            Err(error) => (error.status(), Some(error)),
        };
        let refused = matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
        let Some(event) = self.event.or(refused.then_some("AccessDenied")) else {
            return;
        };
        let mut parameters = self.parameters;
        let mut response_elements = None;
        if let Ok(response) = outcome
            && let Some(digest) = response
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
        {
            let key = match event {
                "InitiateLayerUpload" | "CompleteLayerUpload" => "layerDigest",
                _ => "imageDigest",
            };
            let mut elements = json!({ key: digest });
            if let Some(TagMoves(moved)) = response.extensions().get::<TagMoves>() {
                let moves: Vec<Value> = moved
                    .iter()
                    .map(|(tag, previous)| json!({ "imageTag": tag, "previousImageDigest": previous }))
                    .collect();
                elements["tagMoves"] = json!(moves);
            }
            response_elements = Some(elements.to_string());
        }
        if event == "AccessDenied" {
            parameters.insert("httpMethod".into(), json!(self.method));
        }
        let user_name = user
            .map(str::to_string)
            .or(self.claimed.user)
            .filter(|name| name != "anonymous");
        app.registry.audit(AuditRecord {
            user_type: if user_name.is_some() || self.claimed.access_key_id.is_some() {
                "IAMUser".into()
            } else {
                "Anonymous".into()
            },
            user_name,
            access_key_id: self.claimed.access_key_id,
            source_ip: Some(self.source_ip),
            user_agent: self.user_agent,
            request_id: self.request_id,
            repository: parameters
                .get("repositoryName")
                .and_then(Value::as_str)
                .map(str::to_string),
            request_parameters: Some(Value::Object(parameters).to_string()),
            response_elements,
            error_code: error.map(|e| e.code_name()),
            error_message: error.map(|e| e.message().to_string()),
            ..audit_record(event)
        });
    }
}

/// Records a request to the token endpoint: a login for a token, granted or refused, with
/// the scopes it asked for.
pub fn record_token(
    app: &App,
    client: &Client,
    headers: &HeaderMap,
    scopes: Vec<&str>,
    status: StatusCode,
) {
    let claimed = claimed(headers);
    let text = |name: &str| header_text(headers, name);
    let refused = !status.is_success();
    let known = claimed.user.is_some() || claimed.access_key_id.is_some();
    app.registry.audit(AuditRecord {
        user_type: if known { "IAMUser" } else { "Anonymous" }.into(),
        user_name: claimed.user,
        access_key_id: claimed.access_key_id,
        source_ip: Some(client.origin.address.to_string()),
        user_agent: text("user-agent"),
        request_id: text("x-request-id"),
        request_parameters: Some(json!({ "scope": scopes }).to_string()),
        error_code: refused.then(|| "UNAUTHORIZED".to_string()),
        error_message: refused.then(|| format!("the token endpoint answered {status}")),
        ..audit_record("GetAuthorizationToken")
    });
}
