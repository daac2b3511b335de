//! The one place where failures become HTTP responses: OCI error codes, statuses and the
//! `{"errors":[…]}` body. `From<registry::Error>` below is the only mapping table.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::metadata::MetaError;
use crate::oci::{DigestError, NameError};
use crate::registry;
use crate::remote::RemoteError;
use crate::storage::StorageError;

/// The error codes of the OCI distribution spec, plus those CNCF Distribution also sends
/// where the spec has none that says what happened: `TAG_INVALID`,
/// `PAGINATION_NUMBER_INVALID`, `UNAVAILABLE`, the catch-all `UNKNOWN` for server faults, and
/// `NOT_FOUND` for a path that is no registry endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    PaginationNumberInvalid,
    NotFound,
    Unauthorized,
    Denied,
    Unsupported,
    #[serde(rename = "TOOMANYREQUESTS")]
    TooManyRequests,
    Unavailable,
    Unknown,
}

impl ErrorCode {
    fn default_status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            BlobUnknown | BlobUploadUnknown | ManifestUnknown | NameUnknown | NotFound => {
                StatusCode::NOT_FOUND
            }
            Unauthorized => StatusCode::UNAUTHORIZED,
            Denied => StatusCode::FORBIDDEN,
            Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Unknown => StatusCode::INTERNAL_SERVER_ERROR,
            BlobUploadInvalid
            | DigestInvalid
            | ManifestBlobUnknown
            | ManifestInvalid
            | NameInvalid
            | SizeInvalid
            | TagInvalid
            | PaginationNumberInvalid => StatusCode::BAD_REQUEST,
        }
    }
}

/// An error response: status, OCI code, message, optional detail and extra headers.
#[derive(Debug)]
pub struct OciError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    detail: Option<serde_json::Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl OciError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> OciError {
        OciError {
            status: code.default_status(),
            code,
            message: message.into(),
            detail: None,
            headers: Vec::new(),
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> OciError {
        self.status = status;
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> OciError {
        self.detail = Some(detail);
        self
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> OciError {
        if let Ok(value) = HeaderValue::try_from(value) {
            self.headers.push((HeaderName::from_static(name), value));
        }
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The code as the error body writes it (`MANIFEST_UNKNOWN`, …).
    pub fn code_name(&self) -> String {
        match serde_json::to_value(self.code) {
            Ok(serde_json::Value::String(name)) => name,
            _ => format!("{:?}", self.code),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    errors: [ErrorEntry<'a>; 1],
}

#[derive(Serialize)]
struct ErrorEntry<'a> {
    code: ErrorCode,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a serde_json::Value>,
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            errors: [ErrorEntry {
                code: self.code,
                message: &self.message,
                detail: self.detail.as_ref(),
            }],
        };
        let mut response = (self.status, Json(body)).into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

/// The end of an upload's received bytes as the `Range` header reports it.
pub fn upload_range(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

impl From<registry::Error> for OciError {
    fn from(e: registry::Error) -> OciError {
        use registry::Error as E;
        let message = e.to_string();
        match e {
            E::BlobUnknown => OciError::new(ErrorCode::BlobUnknown, message),
            E::BlobReferenced { ref manifests } => OciError::new(ErrorCode::Denied, message)
                .with_status(StatusCode::CONFLICT)
                .with_detail(serde_json::json!({ "manifests": manifests })),
            E::UploadUnknown => OciError::new(ErrorCode::BlobUploadUnknown, message),
            E::OffsetMismatch { size } => OciError::new(ErrorCode::BlobUploadInvalid, message)
                .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
                .with_header("range", upload_range(size)),
            E::UploadInvalid(_) => OciError::new(ErrorCode::BlobUploadInvalid, message),
            E::DigestMismatch { expected, actual } => {
                OciError::new(ErrorCode::DigestInvalid, message).with_detail(
                    serde_json::json!({ "expected": expected.to_string(), "actual": actual.to_string() }),
                )
            }
            E::RangeNotSatisfiable { size } => OciError::new(ErrorCode::SizeInvalid, message)
                .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
                .with_header("content-range", format!("bytes */{size}")),
            E::ManifestInvalid(_) => OciError::new(ErrorCode::ManifestInvalid, message),
            E::ManifestTooLarge => OciError::new(ErrorCode::SizeInvalid, message)
                .with_status(StatusCode::PAYLOAD_TOO_LARGE),
            E::ManifestBlobUnknown { ref digest, .. } => {
                let detail = serde_json::json!({ "digest": digest });
                OciError::new(ErrorCode::ManifestBlobUnknown, message).with_detail(detail)
            }
            E::ManifestUnknown | E::ManifestNotAcceptable { .. } => {
                OciError::new(ErrorCode::ManifestUnknown, message)
            }
            E::ManifestReferenced { ref indexes } => OciError::new(ErrorCode::Denied, message)
                .with_status(StatusCode::CONFLICT)
                .with_detail(serde_json::json!({ "indexes": indexes })),
            E::NameUnknown => OciError::new(ErrorCode::NameUnknown, message),
            E::TagImmutable { .. } => OciError::new(ErrorCode::TagInvalid, message),
            // Not reachable from /v2, which never creates, deletes or tags repositories as
            // resources; answered as the client's mistake all the same.
            E::RepositoryAlreadyExists
            | E::RepositoryNotEmpty
            | E::TooManyTags
            | E::LifecyclePolicyInvalid(_)
            | E::InvalidReplication(_)
            | E::InvalidPullThroughRule(_)
            | E::InvalidScanning(_)
            | E::InvalidWebhook(_)
            | E::UnsupportedImageType(_)
            | E::AdvisoryImport(_)
            | E::PullThroughRuleExists(_)
            | E::TooManyPullThroughRules(_)
            | E::PullThroughRuleNotFound(_)
            | E::CredentialNotFound(_)
            | E::LifecyclePolicyNotFound
            | E::LifecyclePreviewNotFound => {
                OciError::new(ErrorCode::Denied, message).with_status(StatusCode::CONFLICT)
            }
            E::Upstream(ref upstream) => {
                tracing::warn!(error = %upstream, "pull-through upstream failed");
                let status = match upstream {
                    RemoteError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                    RemoteError::TimedOut { .. } => StatusCode::GATEWAY_TIMEOUT,
                    RemoteError::Unauthorized { .. } | RemoteError::Refused { .. } => {
                        StatusCode::BAD_GATEWAY
                    }
                };
                OciError::new(ErrorCode::Unavailable, message).with_status(status)
            }
            E::Body(e) => {
                tracing::info!(error = %e, "request body failed");
                OciError::new(ErrorCode::SizeInvalid, message)
            }
            E::Storage(StorageError::Unavailable(_)) | E::Meta(MetaError::Unavailable(_)) => {
                unavailable(&e)
            }
            E::Storage(_) | E::Meta(_) => internal(&e),
        }
    }
}

/// A dependency that cannot serve now: logged, and the client asked to retry shortly.
fn unavailable(e: &dyn std::error::Error) -> OciError {
    tracing::warn!(error = %e, "dependency unavailable");
    OciError::new(
        ErrorCode::Unavailable,
        "service temporarily unavailable; retry shortly",
    )
    .with_header("retry-after", RETRY_AFTER_SECONDS.into())
}

/// What `Retry-After` says when a retry is likely to succeed soon.
const RETRY_AFTER_SECONDS: &str = "1";

/// A server fault: logged with the request's span (and so its id), answered generically.
fn internal(e: &dyn std::error::Error) -> OciError {
    tracing::error!(error = %e, "internal error");
    OciError::new(ErrorCode::Unknown, "internal server error")
}

impl From<AuthError> for OciError {
    fn from(e: AuthError) -> OciError {
        let message = e.to_string();
        match e {
            AuthError::Unauthenticated { challenge } => {
                OciError::new(ErrorCode::Unauthorized, message)
                    .with_header("www-authenticate", challenge)
            }
            AuthError::Denied => OciError::new(ErrorCode::Denied, message),
            AuthError::TooManyAttempts { retry_after } => {
                OciError::new(ErrorCode::TooManyRequests, message)
                    .with_header("retry-after", retry_after.to_string())
            }
            // Password checks are rationed like guesses: the client backs off and retries.
            AuthError::Busy => OciError::new(ErrorCode::TooManyRequests, message)
                .with_header("retry-after", RETRY_AFTER_SECONDS.into()),
            // Only the token endpoint asks for scopes; it answers in OAuth2's shape.
            AuthError::InvalidScope(_) | AuthError::InvalidRequest(_) => {
                OciError::new(ErrorCode::Unsupported, message).with_status(StatusCode::BAD_REQUEST)
            }
            AuthError::Store(MetaError::Unavailable(_)) => unavailable(&e),
            AuthError::Store(_) => internal(&e),
        }
    }
}

impl From<NameError> for OciError {
    fn from(e: NameError) -> OciError {
        match e {
            NameError::Name(_) => OciError::new(ErrorCode::NameInvalid, e.to_string()),
            NameError::Tag(_) => OciError::new(ErrorCode::TagInvalid, e.to_string()),
            NameError::Digest(e) => e.into(),
        }
    }
}

impl From<DigestError> for OciError {
    fn from(e: DigestError) -> OciError {
        OciError::new(ErrorCode::DigestInvalid, e.to_string())
    }
}
