//! The token endpoint of the Docker token authentication flow: `GET /token` with Basic
//! credentials (or none, for public pulls), and `POST /token` with the OAuth2 `password` and
//! `refresh_token` grants.

use std::net::IpAddr;

use axum::Json;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde_json::json;

use super::request::Query;
use crate::auth::{Auth, AuthError, Caller, IssuedToken};
use crate::error::{ErrorCode, OciError};
use crate::storage::ByteStream;

/// Largest form body accepted by `POST /token`.
const MAX_FORM: usize = 64 * 1024;

pub async fn token(
    auth: &Auth,
    method: &Method,
    query: Query,
    headers: &HeaderMap,
    body: ByteStream,
    address: IpAddr,
    realm: &str,
) -> Result<Response, OciError> {
    let unauthorized = || AuthError::Unauthenticated {
        challenge: format!("Basic realm=\"{realm}\""),
    };
    let (caller, params) = if method == Method::POST {
        let form = Query::parse(Some(&read_form(body).await?));
        let caller = match form.get("grant_type") {
            Some("password") => {
                let (user, password) = (form.get("username"), form.get("password"));
                let (Some(user), Some(password)) = (user, password) else {
                    return Err(bad_request(
                        "the password grant needs username and password",
                    ));
                };
                auth.login(user, password, address).await?.map(Caller::User)
            }
            Some("refresh_token") => {
                let refresh = form.get("refresh_token").unwrap_or_default();
                auth.refresh(refresh).await?.map(Caller::User)
            }
            _ => return Err(bad_request("grant_type must be password or refresh_token")),
        };
        (caller.ok_or_else(unauthorized)?, form)
    } else {
        let caller = match headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            None => Caller::Anonymous,
            Some(value) => auth
                .basic_caller(value, address)
                .await?
                .ok_or_else(unauthorized)?,
        };
        (caller, query)
    };
    let scopes: Vec<String> = params.all("scope").map(str::to_string).collect();
    let offline =
        params.get("offline_token") == Some("true") || params.get("access_type") == Some("offline");
    let issued = auth
        .issue(&caller, params.get("service"), &scopes, offline, address)
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

async fn read_form(mut body: ByteStream) -> Result<String, OciError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|_| bad_request("could not read the form"))?
    {
        if bytes.len() + chunk.len() > MAX_FORM {
            return Err(bad_request("form body too large"));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| bad_request("form body is not UTF-8"))
}

fn bad_request(message: &str) -> OciError {
    OciError::new(ErrorCode::Unsupported, message).with_status(axum::http::StatusCode::BAD_REQUEST)
}
