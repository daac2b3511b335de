//! The token endpoint of the Docker token authentication flow: `GET /token` with Basic
//! credentials (or none, for public pulls), and `POST /token` with the OAuth2 `password` and
//! `refresh_token` grants. It speaks OAuth2, so its errors are OAuth2's (RFC 6749 §5.2:
//! `{"error": …, "error_description": …}`), mapped from auth errors in one place below.

use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde_json::json;

use super::request::Query;
use crate::auth::{Auth, AuthError, Caller, IssuedToken, Origin};
use crate::storage::ByteStream;

/// Largest form body accepted by `POST /token`.
const MAX_FORM: usize = 64 * 1024;

/// An OAuth2 error response.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    headers: Vec<(HeaderName, String)>,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
            headers: Vec::new(),
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn with_header(mut self, name: HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = (self.status, Json(body)).into_response();
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::try_from(value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

impl From<AuthError> for OAuthError {
    fn from(e: AuthError) -> Self {
        let message = e.to_string();
        match e {
            AuthError::Unauthenticated { .. } => {
                OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", message)
            }
            AuthError::Denied => OAuthError::new(StatusCode::FORBIDDEN, "access_denied", message),
            AuthError::TooManyAttempts { retry_after } => {
                OAuthError::new(StatusCode::TOO_MANY_REQUESTS, "slow_down", message)
                    .with_header(header::RETRY_AFTER, retry_after.to_string())
            }
            AuthError::Busy => OAuthError::new(StatusCode::TOO_MANY_REQUESTS, "slow_down", message)
                .with_header(header::RETRY_AFTER, "1".into()),
            AuthError::InvalidRequest(_) => OAuthError::invalid_request(message),
            AuthError::InvalidScope(_) => {
                OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", message)
            }
            AuthError::Store(e) => {
                tracing::error!(error = %e, "internal error");
                OAuthError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal server error",
                )
            }
        }
    }
}

/// `/token` when auth is off.
pub fn disabled() -> Response {
    let off = OAuthError::new(
        StatusCode::NOT_FOUND,
        "invalid_request",
        "authentication is not enabled on this registry",
    );
    off.into_response()
}

pub async fn token(
    auth: &Auth,
    method: &Method,
    query: Query,
    headers: &HeaderMap,
    body: ByteStream,
    origin: Origin,
) -> Result<Response, OAuthError> {
    let (caller, params) = match *method {
        Method::POST => {
            let form = Query::parse(Some(&read_form(body).await?));
            let caller = match form.get("grant_type") {
                Some("password") => {
                    let (user, password) = (form.get("username"), form.get("password"));
                    let (Some(user), Some(password)) = (user, password) else {
                        return Err(OAuthError::invalid_request(
                            "the password grant needs username and password",
                        ));
                    };
                    auth.login(user, password, origin).await?
                }
                Some("refresh_token") => {
                    let refresh = form.get("refresh_token").unwrap_or_default();
                    auth.refresh(refresh).await?
                }
                _ => {
                    return Err(OAuthError::new(
                        StatusCode::BAD_REQUEST,
                        "unsupported_grant_type",
                        "grant_type must be password or refresh_token",
                    ));
                }
            };
            let caller = caller.map(Caller::User).ok_or_else(|| {
                OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "invalid credentials or refresh token",
                )
            })?;
            (caller, form)
        }
        Method::GET => {
            let caller = match headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
            {
                None => Caller::Anonymous,
                Some(value) => auth.basic_caller(value, origin).await?.ok_or_else(|| {
                    OAuthError::new(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        "invalid credentials",
                    )
                    .with_header(
                        header::WWW_AUTHENTICATE,
                        format!("Basic realm=\"{}\"", auth.settings().service),
                    )
                })?,
            };
            (caller, query)
        }
        _ => {
            return Err(OAuthError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "use GET or POST",
            ));
        }
    };
    let scopes: Vec<String> = params.all("scope").map(str::to_string).collect();
    let offline =
        params.get("offline_token") == Some("true") || params.get("access_type") == Some("offline");
    let issued = auth
        .issue(&caller, params.get("service"), &scopes, offline, origin)
        .await?;
    Ok(token_response(issued))
}

fn token_response(issued: IssuedToken) -> Response {
    let mut body = json!({
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": issued.issued_at,
    });
    if let Some(refresh) = issued.refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    Json(body).into_response()
}

async fn read_form(mut body: ByteStream) -> Result<String, OAuthError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|_| OAuthError::invalid_request("could not read the form"))?
    {
        if bytes.len() + chunk.len() > MAX_FORM {
            return Err(OAuthError::invalid_request("form body too large"));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| OAuthError::invalid_request("form body is not UTF-8"))
}
