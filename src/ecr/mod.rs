//! ECR's management API, the registry's second front door beside `/v2`: `POST /` with
//! `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Operation>`, AWS JSON 1.1 in and out,
//! signed with SigV4. Each request is authenticated (its signature header before its body is
//! read), authorized on the IAM action named after its operation, on the resources that
//! operation names ([`Scope`]; the same policy evaluation as `/v2`), handed to one operation,
//! and answered in ECR's shapes; errors are `{"__type", "message"}` ([`EcrError`]).
//!
//! `operations` is the table of operations (action, scope, body limit, handler); one file per
//! group of operations: `repositories`, `images` (reads), `image_changes`
//! (`PutImage`, `BatchDeleteImage`), `layers`, `access` (tokens,
//! policies, resource tags), `lifecycle` (lifecycle policies and previews), `replication`
//! (its configuration and image statuses), `pull_through` (cache rules); `wire` holds the
//! shapes they share. Depends on `registry` for
//! every operation on content, on `auth` for identities and policies, and on `http` for who the
//! client is (trusted proxies) and where it reaches the registry.

mod access;
mod audit;
mod error;
mod image_changes;
mod images;
mod layers;
mod lifecycle;
mod operations;
mod pull_through;
mod replication;
mod repositories;
mod scanning;
mod wire;

use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use serde_json::Value;

pub use self::error::EcrError;
use self::operations::{Scope, action_of, body_limit, dispatch, needs, resources_of, scope};
pub use self::scanning::finding as finding_shape;
use crate::App;
use crate::auth::sigv4::{SignatureError, SignedRequest};
use crate::auth::{ADMIN, Caller};
use crate::http::{AppState, base_url, forwarded};
use crate::metadata::RegistryIdentity;
use crate::registry::Registry;

const TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The service name requests are signed for.
const SIGNING_NAME: &str = "ecr";

/// Twelve random digits, for a registry that was given no id.
pub fn generate_registry_id() -> String {
    let random = u128::from_le_bytes(*uuid::Uuid::new_v4().as_bytes());
    format!("{:012}", random % 1_000_000_000_000)
}

/// One API call in progress: who makes it and what operations need to shape their answers.
pub struct Call<'a> {
    pub app: &'a App,
    /// The registry as ECR's operations see it: none of them creates a repository on its
    /// own, whatever `--create-on-push` lets `/v2` pushes do (so a push racing a
    /// `DeleteRepository` never brings the repository back).
    registry: Registry,
    /// The authenticated user; `admin` when auth is off.
    pub user: String,
    /// `scheme://host[:port]` the client reached the registry at, if known.
    pub base_url: Option<String>,
    /// What the operation adds to its audit record's `responseElements` (see `audit`).
    audit_elements: std::sync::Mutex<Option<Value>>,
}

impl Call<'_> {
    /// Adds `elements` to the call's audit record.
    pub fn audit_elements(&self, elements: Value) {
        *self.audit_elements.lock().expect("audit lock") = Some(elements);
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn registry_id(&self) -> &str {
        &self.app.ecr.registry_id
    }

    /// `arn:aws:ecr:<region>:<registry id>:repository/<name>`.
    pub fn repository_arn(&self, name: &str) -> String {
        let ecr = &self.app.ecr;
        format!(
            "arn:aws:ecr:{}:{}:repository/{name}",
            ecr.region, ecr.registry_id
        )
    }

    /// `<host>/<name>`: what `docker pull` takes.
    pub fn repository_uri(&self, name: &str) -> String {
        let host = self
            .base_url
            .as_deref()
            .map(|url| url.split_once("://").map_or(url, |(_, host)| host))
            .unwrap_or("localhost");
        format!("{host}/{name}")
    }
}

/// `POST /`: one ECR API call.
pub async fn endpoint(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let request_id = request.headers().get("x-request-id").cloned();
    let client = forwarded::client(peer.ip(), request.headers(), &app.trusted_proxies);
    let audited = audit::Call::of(request.headers(), &client);
    let mut seen = audit::Seen::default();
    let outcome = handle(&app, peer.ip(), request, &mut seen).await;
    audited.record(&app, seen, &outcome);
    let mut response = match outcome {
        Ok(output) => (StatusCode::OK, output.to_string()).into_response(),
        Err(error) => error.into_response(),
    };
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE),
    );
    // Where the SDKs look for the request id they report with errors.
    if let Some(id) = request_id {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-amzn-requestid"), id);
    }
    response
}

/// Serves a call; `seen` gets who signed it and its input, once known.
async fn handle(
    app: &App,
    peer: IpAddr,
    request: Request,
    seen: &mut audit::Seen,
) -> Result<Value, EcrError> {
    let (parts, body) = request.into_parts();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let operation = target.strip_prefix(TARGET_PREFIX).unwrap_or(target);
    let action = action_of(operation).ok_or_else(|| EcrError::unknown_operation(target))?;
    let client = forwarded::client(peer, &parts.headers, &app.trusted_proxies);
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path_and_query: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        headers: &headers,
    };
    // Everything but the body is checked first: nobody gets to make the registry read (and
    // hold) a body without a key that could have signed it.
    let claim = match &app.auth {
        None => None,
        Some(auth) => Some(
            auth.sigv4_claim(&signed, SIGNING_NAME, SystemTime::now())
                .await
                .map_err(signature_error)?,
        ),
    };
    let body = read_body(body, operation).await?;
    let user = match claim {
        None => ADMIN.to_string(),
        Some(claim) => claim.verify(&signed, &body).map_err(signature_error)?,
    };
    tracing::Span::current().record("user", tracing::field::display(&user));
    seen.user = Some(user.clone());
    let input = parse_input(body)?;
    seen.input = Some(audit::recorded(&input));
    let call = Call {
        app,
        registry: app.registry.never_creating_repositories(),
        user,
        base_url: base_url(app, &client),
        audit_elements: std::sync::Mutex::default(),
    };
    check_registry_id(&call, &input)?;
    let scope = scope(operation);
    let resources = resources_of(scope, &input, &app.ecr)?;
    if let Some(auth) = &app.auth {
        let caller = Caller::User(call.user.clone());
        for need in needs(operation, action, &resources, &input) {
            if !auth.permits(&caller, &need, client.origin).await? {
                return Err(EcrError::access_denied(
                    &call,
                    need.action,
                    need.repository.as_ref(),
                ));
            }
        }
    }
    // Every operation on a named repository but its creation needs it to exist.
    if scope == Scope::RepositoryName
        && operation != "CreateRepository"
        && let [Some(name)] = &resources[..]
    {
        call.registry()
            .repository(name)
            .await
            .map_err(|e| EcrError::on_repository(e, &call, name))?;
    }
    let output = dispatch(&call, operation, input).await;
    seen.response_elements = call.audit_elements.lock().expect("audit lock").take();
    output
}

/// The request's body, read no further than the operation's limit. Too long is
/// `InvalidParameterException`, as ECR answers a member over its length constraint (the
/// part, the manifest, the policy), rather than `SerializationException`, which says the
/// body is not what the protocol expects.
async fn read_body(body: Body, operation: &str) -> Result<Bytes, EcrError> {
    let limit = body_limit(operation);
    let mut read = BytesMut::new();
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk =
            chunk.map_err(|e| EcrError::invalid(format!("cannot read the request: {e}")))?;
        if read.len() + chunk.len() > limit {
            return Err(EcrError::invalid(format!(
                "Invalid parameter: the request is larger than {limit} bytes, the most \
                 {operation} takes"
            )));
        }
        read.extend_from_slice(&chunk);
    }
    Ok(read.freeze())
}

/// The body as a JSON object (empty: no members). Takes the body so that it is dropped once
/// parsed: an upload part is large enough that holding it twice matters.
fn parse_input(body: Bytes) -> Result<Value, EcrError> {
    if body.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    let input: Value = serde_json::from_slice(&body)
        .map_err(|e| EcrError::serialization(format!("the request is not JSON: {e}")))?;
    if !input.is_object() {
        return Err(EcrError::serialization("the request is not a JSON object"));
    }
    Ok(input)
}

/// A `registryId`, where a request names one, must be this registry's.
fn check_registry_id(call: &Call<'_>, input: &Value) -> Result<(), EcrError> {
    match input.get("registryId") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(id)) if id == call.registry_id() => Ok(()),
        Some(other) => Err(EcrError::invalid(format!(
            "registryId {other} is not this registry's id, {}",
            call.registry_id()
        ))),
    }
}

fn signature_error(error: SignatureError) -> EcrError {
    match error {
        SignatureError::Missing => {
            EcrError::new("MissingAuthenticationTokenException", error.to_string())
                .with_status(StatusCode::FORBIDDEN)
        }
        SignatureError::UnknownKey => {
            EcrError::new("UnrecognizedClientException", error.to_string())
        }
        SignatureError::Invalid(message) => EcrError::new("InvalidSignatureException", message),
        SignatureError::Store(e) => e.into(),
    }
}
