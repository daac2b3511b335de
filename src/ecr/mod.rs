//! ECR's management API, the registry's second front door beside `/v2`: `POST /` with
//! `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Operation>`, AWS JSON 1.1 in and out,
//! signed with SigV4. Each request is authenticated (its signature header before its body is
//! read), authorized on the IAM action named after its operation, on the resources that
//! operation names ([`Scope`]; the same policy evaluation as `/v2`), handed to one operation,
//! and answered in ECR's shapes; errors are `{"__type", "message"}` ([`EcrError`]).
//!
//! One file per group of operations: `repositories`, `images` (reads), `image_changes`
//! (`PutImage`, `BatchDeleteImage`), `layers`, `access` (tokens,
//! policies, resource tags); `wire` holds the shapes they share. Depends on `registry` for
//! every operation on content, on `auth` for identities and policies, and on `http` for who the
//! client is (trusted proxies) and where it reaches the registry.

mod access;
mod error;
mod image_changes;
mod images;
mod layers;
mod repositories;
mod wire;

use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use self::error::EcrError;
use crate::App;
use crate::auth::sigv4::{SignatureError, SignedRequest};
use crate::auth::{ADMIN, Caller, Need, policy};
use crate::http::{AppState, base_url, forwarded};
use crate::metadata::RegistryIdentity;
use crate::oci::RepoName;
use crate::registry::{MAX_MANIFEST_BYTES, Registry};

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
    /// The authenticated user; `admin` when auth is off.
    pub user: String,
    /// `scheme://host[:port]` the client reached the registry at, if known.
    pub base_url: Option<String>,
}

impl Call<'_> {
    pub fn registry(&self) -> &Registry {
        &self.app.registry
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
    let mut response = match handle(&app, peer.ip(), request).await {
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

async fn handle(app: &App, peer: IpAddr, request: Request) -> Result<Value, EcrError> {
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
    let input = parse_input(body)?;
    let call = Call {
        app,
        user,
        base_url: base_url(app, &client),
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
    dispatch(&call, operation, input).await
}

/// The largest body an operation takes: an `UploadLayerPart` carries a part of up to ECR's
/// 20 MiB, base64-encoded; a `PutImage` a manifest as a JSON string, which escaping makes at
/// most three times as long (botocore writes non-ASCII as `\uXXXX`); the rest carry names,
/// digests and policies of a few KiB. Each with room for the members around them.
fn body_limit(operation: &str) -> usize {
    const MIB: usize = 1024 * 1024;
    match operation {
        "UploadLayerPart" => 28 * MIB,
        "PutImage" => 3 * MAX_MANIFEST_BYTES + MIB,
        _ => MIB,
    }
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

/// The IAM action an operation is authorized by, for the operations Wharf implements.
fn action_of(operation: &str) -> Option<&'static str> {
    policy::ACTIONS
        .iter()
        .find(|action| action.strip_prefix("ecr:") == Some(operation))
        .copied()
}

async fn dispatch(call: &Call<'_>, operation: &str, input: Value) -> Result<Value, EcrError> {
    match operation {
        "CreateRepository" => run(call, input, repositories::create).await,
        "DescribeRepositories" => run(call, input, repositories::describe).await,
        "DeleteRepository" => run(call, input, repositories::delete).await,
        "PutImageTagMutability" => run(call, input, repositories::put_tag_mutability).await,
        "PutImageScanningConfiguration" => {
            run(call, input, repositories::put_scanning_configuration).await
        }
        "DescribeRegistry" => run(call, input, repositories::describe_registry).await,
        "ListImages" => run(call, input, images::list).await,
        "DescribeImages" => run(call, input, images::describe).await,
        "BatchGetImage" => run(call, input, images::batch_get).await,
        "BatchDeleteImage" => run(call, input, image_changes::batch_delete).await,
        "PutImage" => run(call, input, image_changes::put).await,
        "ListImageReferrers" => run(call, input, images::list_referrers).await,
        "BatchCheckLayerAvailability" => run(call, input, layers::check_availability).await,
        "GetDownloadUrlForLayer" => run(call, input, layers::download_url).await,
        "InitiateLayerUpload" => run(call, input, layers::initiate_upload).await,
        "UploadLayerPart" => run(call, input, layers::upload_part).await,
        "CompleteLayerUpload" => run(call, input, layers::complete_upload).await,
        "GetAuthorizationToken" => run(call, input, access::authorization_token).await,
        "SetRepositoryPolicy" => run(call, input, access::set_repository_policy).await,
        "GetRepositoryPolicy" => run(call, input, access::get_repository_policy).await,
        "DeleteRepositoryPolicy" => run(call, input, access::delete_repository_policy).await,
        "PutRegistryPolicy" => run(call, input, access::put_registry_policy).await,
        "GetRegistryPolicy" => run(call, input, access::get_registry_policy).await,
        "DeleteRegistryPolicy" => run(call, input, access::delete_registry_policy).await,
        "TagResource" => run(call, input, access::tag_resource).await,
        "UntagResource" => run(call, input, access::untag_resource).await,
        "ListTagsForResource" => run(call, input, access::list_tags_for_resource).await,
        _ => Err(EcrError::unknown_operation(operation)),
    }
}

/// Reads the operation's input shape, then runs it.
async fn run<I: DeserializeOwned>(
    call: &Call<'_>,
    input: Value,
    operation: impl AsyncFnOnce(&Call<'_>, I) -> Result<Value, EcrError>,
) -> Result<Value, EcrError> {
    let input = serde_json::from_value(input).map_err(|e| EcrError::invalid(e.to_string()))?;
    operation(call, input).await
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

/// What an operation acts on, by the operation alone: which members of its input name the
/// resources its caller must be allowed to act on. (Whatever other members a request
/// carries, its operation ignores them, so they must not choose what is authorized.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The registry as a whole.
    Registry,
    /// `DescribeRepositories`: each of `repositoryNames` if given, else the registry.
    RepositoryNames,
    /// The repository of the required `resourceArn`.
    ResourceArn,
    /// The repository of the required `repositoryName`.
    RepositoryName,
}

fn scope(operation: &str) -> Scope {
    match operation {
        "GetAuthorizationToken"
        | "DescribeRegistry"
        | "PutRegistryPolicy"
        | "GetRegistryPolicy"
        | "DeleteRegistryPolicy" => Scope::Registry,
        "DescribeRepositories" => Scope::RepositoryNames,
        "TagResource" | "UntagResource" | "ListTagsForResource" => Scope::ResourceArn,
        // Every other operation works in the one repository it names.
        _ => Scope::RepositoryName,
    }
}

/// The repositories a request acts on in its operation's `scope` (`None`: the registry).
fn resources_of(
    scope: Scope,
    input: &Value,
    registry: &RegistryIdentity,
) -> Result<Vec<Option<RepoName>>, EcrError> {
    let string = |member: &str| match input.get(member) {
        None | Some(Value::Null) => Err(EcrError::invalid(format!(
            "Invalid parameter: {member} is required"
        ))),
        Some(Value::String(value)) => Ok(value.as_str()),
        Some(_) => Err(EcrError::invalid(format!(
            "Invalid parameter: {member} must be a string"
        ))),
    };
    match scope {
        Scope::Registry => Ok(vec![None]),
        Scope::RepositoryName => Ok(vec![Some(wire::repository_name(string(
            "repositoryName",
        )?)?)]),
        Scope::ResourceArn => Ok(vec![Some(wire::repository_of_arn(
            string("resourceArn")?,
            registry,
        )?)]),
        Scope::RepositoryNames => match input.get("repositoryNames") {
            None | Some(Value::Null) => Ok(vec![None]),
            Some(Value::Array(names)) if names.is_empty() => Err(EcrError::invalid(
                "Invalid parameter at 'repositoryNames' failed to satisfy constraint: 'Member \
                 must have length greater than or equal to 1'",
            )),
            Some(Value::Array(names)) => names
                .iter()
                .map(|name| match name {
                    Value::String(name) => Ok(Some(wire::repository_name(name)?)),
                    _ => Err(EcrError::invalid(
                        "Invalid parameter: repositoryNames must be strings",
                    )),
                })
                .collect(),
            Some(_) => Err(EcrError::invalid(
                "Invalid parameter: repositoryNames must be a list",
            )),
        },
    }
}

/// Every permission a request needs: its action on each resource, and, as in ECR, tagging a
/// repository it creates with tags.
fn needs(
    operation: &str,
    action: &'static str,
    resources: &[Option<RepoName>],
    input: &Value,
) -> Vec<Need> {
    let mut needs: Vec<Need> = resources
        .iter()
        .map(|repository| Need {
            repository: repository.clone(),
            action,
        })
        .collect();
    let tags = input.get("tags").and_then(Value::as_array);
    if operation == "CreateRepository" && tags.is_some_and(|tags| !tags.is_empty()) {
        needs.extend(resources.iter().map(|repository| Need {
            repository: repository.clone(),
            action: "ecr:TagResource",
        }));
    }
    needs
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
