//! ECR's management API, the registry's second front door beside `/v2`: `POST /` with
//! `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Operation>`, AWS JSON 1.1 in and out,
//! signed with SigV4. Each request is authenticated, authorized on the IAM action named after
//! its operation (the same policy evaluation as `/v2`), handed to one operation, and answered
//! in ECR's shapes; errors are `{"__type", "message"}` ([`EcrError`]).
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

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use self::error::EcrError;
use crate::App;
use crate::auth::sigv4::{SignatureError, SignedRequest};
use crate::auth::{ADMIN, Caller, Need, policy};
use crate::http::{AppState, base_url, forwarded};
use crate::oci::RepoName;
use crate::registry::Registry;

const TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The largest request: an `UploadLayerPart` of ECR's largest part (20 MiB), base64-encoded,
/// with room for the JSON around it.
const MAX_REQUEST_BYTES: usize = 28 * 1024 * 1024;
/// The service name requests are signed for.
const SIGNING_NAME: &str = "ecr";

/// How the API names this registry.
#[derive(Debug, Clone)]
pub struct RegistryIdentity {
    /// Twelve digits, as an AWS account id.
    pub registry_id: String,
    pub region: String,
}

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
    let body = axum::body::to_bytes(body, MAX_REQUEST_BYTES)
        .await
        .map_err(|e| EcrError::invalid(format!("cannot read the request: {e}")))?;
    let client = forwarded::client(peer, &parts.headers, &app.trusted_proxies);
    let user = match &app.auth {
        None => ADMIN.to_string(),
        Some(auth) => {
            let headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
                })
                .collect();
            let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let signed = SignedRequest {
                method: parts.method.as_str(),
                path_and_query,
                headers: &headers,
                body: &body,
            };
            auth.sigv4_user(&signed, SIGNING_NAME, SystemTime::now())
                .await
                .map_err(signature_error)?
        }
    };
    let input: Value = if body.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| EcrError::serialization(format!("the request is not JSON: {e}")))?
    };
    if !input.is_object() {
        return Err(EcrError::serialization("the request is not a JSON object"));
    }
    let call = Call {
        app,
        user,
        base_url: base_url(app, &client),
    };
    check_registry_id(&call, &input)?;
    let resources = resources_of(&input, &app.ecr)?;
    if let Some(auth) = &app.auth {
        let caller = Caller::User(call.user.clone());
        for repository in &resources {
            let need = Need {
                repository: repository.clone(),
                action,
            };
            if !auth.permits(&caller, &need, client.origin).await? {
                return Err(EcrError::access_denied(&call, action, repository.as_ref()));
            }
        }
    }
    // Every operation on a named repository but its creation needs it to exist.
    if operation != "CreateRepository"
        && let Some(Value::String(name)) = input.get("repositoryName")
    {
        let name = wire::repository_name(name)?;
        call.registry()
            .repository(&name)
            .await
            .map_err(|e| EcrError::on_repository(e, &call, &name))?;
    }
    dispatch(&call, operation, input).await
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

/// The repositories a request acts on (`None`: the registry as a whole), which it must be
/// allowed to act on: `repositoryName`, each of `repositoryNames`, or a `resourceArn`.
fn resources_of(
    input: &Value,
    registry: &RegistryIdentity,
) -> Result<Vec<Option<RepoName>>, EcrError> {
    if let Some(name) = input.get("repositoryName") {
        let name = name
            .as_str()
            .ok_or_else(|| EcrError::invalid("repositoryName must be a string"))?;
        return Ok(vec![Some(wire::repository_name(name)?)]);
    }
    if let Some(Value::Array(names)) = input.get("repositoryNames")
        && !names.is_empty()
    {
        return names
            .iter()
            .map(|name| {
                let name = name
                    .as_str()
                    .ok_or_else(|| EcrError::invalid("repositoryNames must be strings"))?;
                Ok(Some(wire::repository_name(name)?))
            })
            .collect();
    }
    if let Some(arn) = input.get("resourceArn") {
        let arn = arn
            .as_str()
            .ok_or_else(|| EcrError::invalid("resourceArn must be a string"))?;
        return Ok(vec![Some(wire::repository_of_arn(arn, registry)?)]);
    }
    Ok(vec![None])
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
