//! The ECR API's errors, in AWS JSON 1.1's shape: `{"__type": "<Exception>", "message": "…"}`,
//! 400 for the client's mistakes (so that the SDKs raise their typed exceptions) and 500
//! `ServerException` for the registry's own faults. Registry and auth errors map here, in
//! one place; operations only add context where ECR's messages name it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::Call;
use crate::auth::AuthError;
use crate::metadata::MetaError;
use crate::oci::RepoName;
use crate::registry;
use crate::storage::StorageError;

#[derive(Debug)]
pub struct EcrError {
    status: StatusCode,
    /// The exception's name, `__type`.
    kind: &'static str,
    message: String,
}

impl EcrError {
    /// The exception's name, `__type`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn new(kind: &'static str, message: impl Into<String>) -> EcrError {
        EcrError {
            status: StatusCode::BAD_REQUEST,
            kind,
            message: message.into(),
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> EcrError {
        self.status = status;
        self
    }

    pub fn invalid(message: impl Into<String>) -> EcrError {
        EcrError::new("InvalidParameterException", message)
    }

    pub fn serialization(message: impl Into<String>) -> EcrError {
        EcrError::new("SerializationException", message)
    }

    pub fn unknown_operation(target: &str) -> EcrError {
        EcrError::new(
            "UnknownOperationException",
            format!("Wharf does not implement the operation {target:?}"),
        )
    }

    pub fn access_denied(call: &Call<'_>, action: &str, repository: Option<&RepoName>) -> EcrError {
        let resource = match repository {
            Some(name) => call.repository_arn(name.as_str()),
            None => "*".into(),
        };
        EcrError::new(
            "AccessDeniedException",
            format!(
                "User: arn:aws:iam::{}:user/{} is not authorized to perform: {action} on \
                 resource: {resource}",
                call.registry_id(),
                call.user
            ),
        )
    }

    pub fn repository_not_found(call: &Call<'_>, name: &str) -> EcrError {
        EcrError::new(
            "RepositoryNotFoundException",
            format!(
                "The repository with name '{name}' does not exist in the registry with id '{}'",
                call.registry_id()
            ),
        )
    }

    /// A registry error on one repository, with ECR's messages for what names it.
    pub fn on_repository(error: registry::Error, call: &Call<'_>, name: &RepoName) -> EcrError {
        let registry_id = call.registry_id();
        match error {
            registry::Error::NameUnknown => EcrError::repository_not_found(call, name.as_str()),
            registry::Error::RepositoryAlreadyExists => EcrError::new(
                "RepositoryAlreadyExistsException",
                format!(
                    "The repository with name '{name}' already exists in the registry with id \
                     '{registry_id}'"
                ),
            ),
            registry::Error::RepositoryNotEmpty => EcrError::new(
                "RepositoryNotEmptyException",
                format!(
                    "The repository with name '{name}' in registry with id '{registry_id}' \
                     cannot be deleted because it still contains images"
                ),
            ),
            other => other.into(),
        }
    }

    /// A dependency that cannot serve now: the SDKs retry a 503 on their own.
    fn unavailable(error: &dyn std::error::Error) -> EcrError {
        tracing::warn!(error = %error, "dependency unavailable");
        EcrError::new(
            "ServiceUnavailableException",
            "service temporarily unavailable; retry shortly",
        )
        .with_status(StatusCode::SERVICE_UNAVAILABLE)
    }

    /// A fault of the registry's own: logged (with the request's id), answered generically.
    fn server(error: &dyn std::error::Error) -> EcrError {
        tracing::error!(error = %error, "internal error");
        EcrError::new("ServerException", "internal server error")
            .with_status(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<registry::Error> for EcrError {
    fn from(e: registry::Error) -> EcrError {
        use registry::Error as E;
        let message = e.to_string();
        match e {
            E::NameUnknown => EcrError::new("RepositoryNotFoundException", message),
            E::RepositoryAlreadyExists => {
                EcrError::new("RepositoryAlreadyExistsException", message)
            }
            E::RepositoryNotEmpty => EcrError::new("RepositoryNotEmptyException", message),
            E::TooManyTags => EcrError::new("TooManyTagsException", message),
            E::LifecyclePolicyNotFound => {
                EcrError::new("LifecyclePolicyNotFoundException", message)
            }
            E::LifecyclePreviewNotFound => {
                EcrError::new("LifecyclePolicyPreviewNotFoundException", message)
            }
            E::TagImmutable { .. } => EcrError::new("ImageTagAlreadyExistsException", message),
            E::ManifestUnknown | E::ManifestNotAcceptable { .. } => {
                EcrError::new("ImageNotFoundException", message)
            }
            E::ManifestBlobUnknown {
                kind: "manifest", ..
            } => EcrError::new("ReferencedImagesNotFoundException", message),
            E::ManifestBlobUnknown { .. } | E::BlobUnknown => {
                EcrError::new("LayersNotFoundException", message)
            }
            E::UploadUnknown => EcrError::new("UploadNotFoundException", message),
            E::OffsetMismatch { .. } => EcrError::new("InvalidLayerPartException", message),
            E::DigestMismatch { .. } => EcrError::new("InvalidLayerException", message),
            E::UploadInvalid(_)
            | E::RangeNotSatisfiable { .. }
            | E::ManifestInvalid(_)
            | E::ManifestTooLarge
            | E::ManifestReferenced { .. }
            | E::BlobReferenced { .. }
            | E::LifecyclePolicyInvalid(_)
            | E::InvalidReplication(_)
            | E::InvalidPullThroughRule(_)
            | E::InvalidScanning(_)
            | E::InvalidWebhook(_)
            | E::AdvisoryImport(_)
            | E::Body(_) => EcrError::invalid(message),
            E::UnsupportedImageType(_) => EcrError::new("UnsupportedImageTypeException", message),
            E::PullThroughRuleExists(_) => {
                EcrError::new("PullThroughCacheRuleAlreadyExistsException", message)
            }
            E::PullThroughRuleNotFound(_) => {
                EcrError::new("PullThroughCacheRuleNotFoundException", message)
            }
            E::CredentialNotFound(_) => EcrError::new("SecretNotFoundException", message),
            E::TooManyPullThroughRules(_) => EcrError::new("LimitExceededException", message),
            E::Upstream(_) => EcrError::new("UnableToGetUpstreamImageException", message),
            E::Storage(StorageError::Unavailable(_)) | E::Meta(MetaError::Unavailable(_)) => {
                EcrError::unavailable(&e)
            }
            E::Storage(_) | E::Meta(_) => EcrError::server(&e),
        }
    }
}

impl From<AuthError> for EcrError {
    fn from(e: AuthError) -> EcrError {
        match e {
            AuthError::Store(ref store) => store.into(),
            AuthError::TooManyAttempts { .. } | AuthError::Busy => {
                EcrError::new("ThrottlingException", e.to_string())
            }
            AuthError::Unauthenticated { .. } | AuthError::Denied => {
                EcrError::new("AccessDeniedException", e.to_string())
            }
            AuthError::InvalidRequest(_) | AuthError::InvalidScope(_) => {
                EcrError::invalid(e.to_string())
            }
        }
    }
}

impl From<&MetaError> for EcrError {
    fn from(e: &MetaError) -> EcrError {
        match e {
            MetaError::Unavailable(_) => EcrError::unavailable(e),
            _ => EcrError::server(e),
        }
    }
}

impl From<MetaError> for EcrError {
    fn from(e: MetaError) -> EcrError {
        (&e).into()
    }
}

impl IntoResponse for EcrError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "__type": self.kind, "message": self.message });
        (self.status, body.to_string()).into_response()
    }
}
