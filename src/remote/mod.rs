//! Other OCI registries, as a client sees them: replication destinations and pull-through
//! upstreams. Speaks the Distribution API over HTTP(S) and authenticates however the remote
//! asks when it answers 401: the Docker token flow (a bearer token per repository scope,
//! fetched from the realm it names, with the stored credentials if any), Basic, or nothing.
//! Blob bytes stream through; nothing is held whole in memory but manifests. Depends on
//! `oci` for digests and on `storage` for the byte stream type only.

mod challenge;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use self::challenge::Challenge;
use crate::oci::Digest;
use crate::storage::ByteStream;

/// How long one request to a remote may take before it counts as down, body excluded.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Tokens are renewed this long before the remote says they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);
/// What a token's lifetime is taken to be when the token server does not say (its spec's
/// default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The remote could not be reached, timed out, or failed on its side (5xx, 429): worth
    /// trying again later.
    #[error("{url}: unavailable: {message}")]
    Unavailable { url: String, message: String },
    /// The remote refused the credentials, or has none to offer for what is asked.
    #[error("{url}: authentication failed: {message}")]
    Unauthorized { url: String, message: String },
    /// The remote answered, but not as the protocol says it would, or refused the request.
    #[error("{url}: {message}")]
    Refused { url: String, message: String },
}

/// A user name and password (or token) for a remote.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <hidden>)", self.username)
    }
}

/// A manifest as a remote serves it.
#[derive(Debug, Clone)]
pub struct RemoteManifest {
    pub media_type: String,
    pub digest: Digest,
    pub content: Bytes,
}

/// One remote registry, at `base_url` (`https://host[:port]`, no path).
pub struct Remote {
    base_url: String,
    credentials: Option<Credentials>,
    http: reqwest::Client,
    /// Learnt from the first 401, then used up front.
    challenge: Mutex<Option<Challenge>>,
    /// Bearer tokens by scope, with when to stop using them.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

/// What the caller wants to do in a repository: the scope a token is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    Push,
}

impl Remote {
    pub fn new(base_url: &str, credentials: Option<Credentials>) -> Result<Remote, RemoteError> {
        let base_url = base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(RemoteError::Refused {
                url: base_url,
                message: "a remote's URL starts with http:// or https://".into(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("wharf/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RemoteError::Refused {
                url: base_url.clone(),
                message: format!("cannot build an HTTP client: {e}"),
            })?;
        Ok(Remote {
            base_url,
            credentials,
            http,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// `GET /v2/`: whether the remote is a registry that accepts these credentials.
    pub async fn check(&self) -> Result<(), RemoteError> {
        let response = self
            .send(Method::GET, "/v2/", None, |request| request)
            .await?;
        self.expect(response, &[StatusCode::OK]).await.map(drop)
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`.
    pub async fn has_blob(&self, repo: &str, digest: &Digest) -> Result<bool, RemoteError> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let scope = Some((repo, Access::Pull));
        let response = self.send(Method::HEAD, &path, scope, |r| r).await?;
        self.found(response).await
    }

    /// `HEAD /v2/<repo>/manifests/<digest>`.
    pub async fn has_manifest(&self, repo: &str, digest: &Digest) -> Result<bool, RemoteError> {
        let path = format!("/v2/{repo}/manifests/{digest}");
        let scope = Some((repo, Access::Pull));
        let accept = |request: RequestBuilder| request.header(ACCEPT, ACCEPTED_MANIFESTS);
        let response = self.send(Method::HEAD, &path, scope, accept).await?;
        self.found(response).await
    }

    /// Uploads `size` bytes of `body` as the blob `digest` in `repo`: `POST`, then one `PUT`
    /// carrying the whole body, which streams.
    pub async fn push_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        body: ByteStream,
    ) -> Result<(), RemoteError> {
        let scope = Some((repo, Access::Push));
        let started = self
            .send(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                scope,
                |r| r.header(CONTENT_LENGTH, 0),
            )
            .await?;
        let started = self.expect(started, &[StatusCode::ACCEPTED]).await?;
        let location = started
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| self.refused("an upload was started without a Location"))?;
        let mut target = self.resolve(location);
        target.push(if target.contains('?') { '&' } else { '?' });
        target.push_str(&format!("digest={digest}"));
        // The body cannot be sent twice: the POST above has settled how to authenticate.
        let request = self
            .authorized(Method::PUT, &target, scope)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(body));
        let finished = request.send().await.map_err(|e| self.unreachable(e))?;
        self.expect(finished, &[StatusCode::CREATED])
            .await
            .map(drop)
    }

    /// `PUT /v2/<repo>/manifests/<reference>`.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        content: Bytes,
    ) -> Result<(), RemoteError> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let scope = Some((repo, Access::Push));
        let response = self
            .send(Method::PUT, &path, scope, |request| {
                request
                    .header(CONTENT_TYPE, media_type)
                    .body(content.clone())
            })
            .await?;
        self.expect(response, &[StatusCode::CREATED])
            .await
            .map(drop)
    }

    /// `GET /v2/<repo>/manifests/<reference>`, or `None` if the remote has no such manifest.
    /// The digest is the one the remote states, checked against the bytes.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<RemoteManifest>, RemoteError> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let scope = Some((repo, Access::Pull));
        let accept = |request: RequestBuilder| request.header(ACCEPT, ACCEPTED_MANIFESTS);
        let response = self.send(Method::GET, &path, scope, accept).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = self.expect(response, &[StatusCode::OK]).await?;
        let media_type = header(&response, CONTENT_TYPE.as_str()).unwrap_or_default();
        let stated = header(&response, "docker-content-digest");
        let content = response.bytes().await.map_err(|e| self.unreachable(e))?;
        if content.len() > crate::registry::MAX_MANIFEST_BYTES {
            return Err(self.refused("a manifest larger than this registry accepts"));
        }
        let digest = match stated.as_deref().map(str::parse::<Digest>) {
            Some(Ok(stated)) => stated,
            Some(Err(_)) => return Err(self.refused("an unreadable Docker-Content-Digest")),
            None => Digest::sha256(&content),
        };
        if Digest::of(digest.algorithm(), &content) != digest {
            return Err(self.refused("a manifest whose bytes do not match its digest"));
        }
        Ok(Some(RemoteManifest {
            media_type,
            digest,
            content,
        }))
    }

    /// `GET /v2/<repo>/blobs/<digest>`: its size and bytes (following a redirect), or `None`
    /// if the remote has no such blob. The caller verifies the digest as the bytes pass.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<(u64, ByteStream)>, RemoteError> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let scope = Some((repo, Access::Pull));
        let response = self.send(Method::GET, &path, scope, |r| r).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = self.expect(response, &[StatusCode::OK]).await?;
        let size = response
            .content_length()
            .ok_or_else(|| self.refused("a blob without a Content-Length"))?;
        let stream = futures::TryStreamExt::map_err(response.bytes_stream(), std::io::Error::other);
        Ok(Some((size, Box::pin(stream))))
    }

    /// Sends a request built by `build`, authenticated for `scope`; on a 401 learns how the
    /// remote wants to be asked, and sends it again once.
    async fn send(
        &self,
        method: Method,
        path: &str,
        scope: Option<(&str, Access)>,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, RemoteError> {
        let url = self.resolve(path);
        let first = build(self.authorized(method.clone(), &url, scope))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if first.status() != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let offered = header(&first, "www-authenticate").unwrap_or_default();
        let challenge = Challenge::parse(&offered).ok_or_else(|| RemoteError::Unauthorized {
            url: self.base_url.clone(),
            message: format!("401 with no usable challenge ({offered:?})"),
        })?;
        if let Challenge::Bearer { .. } = &challenge {
            self.fetch_token(&challenge, scope).await?;
        } else if self.credentials.is_none() {
            return Err(self.unauthorized("Basic authentication is asked for and none is stored"));
        }
        *self.challenge.lock().expect("challenge lock") = Some(challenge);
        let second = build(self.authorized(method, &url, scope))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if second.status() == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized("the credentials were refused"));
        }
        Ok(second)
    }

    /// A request with whatever authorization is known for `scope`.
    fn authorized(
        &self,
        method: Method,
        url: &str,
        scope: Option<(&str, Access)>,
    ) -> RequestBuilder {
        let request = self.http.request(method, url);
        let challenge = self.challenge.lock().expect("challenge lock").clone();
        match challenge {
            Some(Challenge::Basic) => match &self.credentials {
                Some(c) => request.basic_auth(&c.username, Some(&c.password)),
                None => request,
            },
            Some(Challenge::Bearer { .. }) => {
                let key = scope_string(scope);
                let tokens = self.tokens.lock().expect("token lock");
                match tokens.get(&key) {
                    Some((token, until)) if Instant::now() < *until => {
                        request.header(AUTHORIZATION, format!("Bearer {token}"))
                    }
                    _ => request,
                }
            }
            None => request,
        }
    }

    /// Asks the token server the challenge names for a token covering `scope`.
    async fn fetch_token(
        &self,
        challenge: &Challenge,
        scope: Option<(&str, Access)>,
    ) -> Result<(), RemoteError> {
        let Challenge::Bearer { realm, service } = challenge else {
            return Ok(());
        };
        let key = scope_string(scope);
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            if !key.is_empty() {
                query.append_pair("scope", &key);
            }
            query.finish()
        };
        let separator = if realm.contains('?') { '&' } else { '?' };
        let mut request = self.http.get(format!("{realm}{separator}{query}"));
        if let Some(c) = &self.credentials {
            request = request.basic_auth(&c.username, Some(&c.password));
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        if matches!(
            response.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Err(self.unauthorized("the token server refused the credentials"));
        }
        let response = self.expect(response, &[StatusCode::OK]).await?;
        let granted: TokenResponse = response
            .json()
            .await
            .map_err(|e| self.refused(&format!("an unreadable token response: {e}")))?;
        let token = granted
            .token
            .or(granted.access_token)
            .ok_or_else(|| self.refused("a token response without a token"))?;
        let lifetime = granted
            .expires_in
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        let until = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN).max(TOKEN_MARGIN);
        self.tokens
            .lock()
            .expect("token lock")
            .insert(key, (token, until));
        Ok(())
    }

    /// `response` if its status is one of `expected`, else the error it stands for.
    async fn expect(
        &self,
        response: Response,
        expected: &[StatusCode],
    ) -> Result<Response, RemoteError> {
        let status = response.status();
        if expected.contains(&status) {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = format!(
            "{} {}",
            status.as_u16(),
            body.chars().take(300).collect::<String>()
        );
        Err(
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                RemoteError::Unavailable {
                    url: self.base_url.clone(),
                    message,
                }
            } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                self.unauthorized(&message)
            } else {
                self.refused(&message)
            },
        )
    }

    /// Whether a HEAD found what it asked about.
    async fn found(&self, response: Response) -> Result<bool, RemoteError> {
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        self.expect(response, &[StatusCode::OK]).await.map(|_| true)
    }

    /// `location` (absolute, or a path on this remote) as an absolute URL.
    fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base_url)
        }
    }

    fn unreachable(&self, error: reqwest::Error) -> RemoteError {
        RemoteError::Unavailable {
            url: self.base_url.clone(),
            message: error.to_string(),
        }
    }

    fn unauthorized(&self, message: &str) -> RemoteError {
        RemoteError::Unauthorized {
            url: self.base_url.clone(),
            message: message.to_string(),
        }
    }

    fn refused(&self, message: &str) -> RemoteError {
        RemoteError::Refused {
            url: self.base_url.clone(),
            message: message.to_string(),
        }
    }
}

/// Every manifest type this registry stores, for `Accept`.
const ACCEPTED_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

#[derive(serde::Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// `repository:<name>:pull` or `…:pull,push`; empty for the base endpoint.
fn scope_string(scope: Option<(&str, Access)>) -> String {
    match scope {
        None => String::new(),
        Some((repo, Access::Pull)) => format!("repository:{repo}:pull"),
        Some((repo, Access::Push)) => format!("repository:{repo}:pull,push"),
    }
}

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}
