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

/// How long connecting to a remote may take before it counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a remote may keep a request waiting for its answer, or for the next bytes of a
/// body, before it counts as down.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Tokens are renewed this long before the remote says they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);
/// What a token's lifetime is taken to be when the token server does not say (its spec's
/// default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteError {
    /// The remote could not be reached, or failed on its side (5xx, 429): worth trying again
    /// later.
    #[error("{url}: unavailable: {message}")]
    Unavailable { url: String, message: String },
    /// The remote took too long to answer: worth trying again later.
    #[error("{url}: timed out: {message}")]
    TimedOut { url: String, message: String },
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
            .read_timeout(READ_TIMEOUT)
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
            .send(Method::GET, "/v2/", "", |request| request)
            .await?;
        self.expect(response, &[StatusCode::OK]).await.map(drop)
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`.
    pub async fn has_blob(&self, repo: &str, digest: &Digest) -> Result<bool, RemoteError> {
        Ok(self.blob_size(repo, digest).await?.is_some())
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`: the blob's size, or `None` if the remote has none.
    pub async fn blob_size(&self, repo: &str, digest: &Digest) -> Result<Option<u64>, RemoteError> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let scope = &pull_scope(repo);
        let response = self.send(Method::HEAD, &path, scope, |r| r).await?;
        let Some(response) = self.found(response).await? else {
            return Ok(None);
        };
        // Read from the header: a HEAD response has no body to measure.
        match header(&response, CONTENT_LENGTH.as_str()).map(|length| length.parse()) {
            Some(Ok(size)) => Ok(Some(size)),
            _ => Err(self.refused("a blob HEAD without a Content-Length")),
        }
    }

    /// `HEAD /v2/<repo>/manifests/<digest>`.
    pub async fn has_manifest(&self, repo: &str, digest: &Digest) -> Result<bool, RemoteError> {
        let path = format!("/v2/{repo}/manifests/{digest}");
        let scope = &pull_scope(repo);
        let accept = |request: RequestBuilder| request.header(ACCEPT, ACCEPTED_MANIFESTS);
        let response = self.send(Method::HEAD, &path, scope, accept).await?;
        Ok(self.found(response).await?.is_some())
    }

    /// Asks the remote to link the blob `digest` of its repository `from` into `repo` (a
    /// cross-repository mount). Returns whether it did; when it offers an upload instead, the
    /// upload is cancelled.
    pub async fn mount_blob(
        &self,
        repo: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RemoteError> {
        let path = format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}");
        let scope = &format!("{} {}", push_scope(repo), pull_scope(from));
        let response = self
            .send(Method::POST, &path, scope, |r| r.header(CONTENT_LENGTH, 0))
            .await?;
        let response = self
            .expect(response, &[StatusCode::CREATED, StatusCode::ACCEPTED])
            .await?;
        if response.status() == StatusCode::CREATED {
            return Ok(true);
        }
        if let Some(location) = header(&response, LOCATION.as_str()) {
            let target = self.resolve(&location);
            // A session left open expires on the remote's own; no need to fail over it.
            let _ = self.authorized(Method::DELETE, &target, scope).send().await;
        }
        Ok(false)
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
        let scope = &push_scope(repo);
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

    /// The digest of the manifest `reference` names, or `None` if the remote has none: from
    /// a `HEAD`, or a `GET` if the remote does not state it.
    pub async fn manifest_digest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<Digest>, RemoteError> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let scope = &pull_scope(repo);
        let accept = |request: RequestBuilder| request.header(ACCEPT, ACCEPTED_MANIFESTS);
        let response = self.send(Method::HEAD, &path, scope, accept).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = self.expect(response, &[StatusCode::OK]).await?;
        match header(&response, "docker-content-digest").map(|d| d.parse::<Digest>()) {
            Some(Ok(digest)) => Ok(Some(digest)),
            Some(Err(_)) => Err(self.refused("an unreadable Docker-Content-Digest")),
            None => Ok(self
                .get_manifest(repo, reference)
                .await?
                .map(|manifest| manifest.digest)),
        }
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
        let scope = &push_scope(repo);
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
        let scope = &pull_scope(repo);
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
        let scope = &pull_scope(repo);
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
        scope: &str,
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
            return Err(self.unauthorized(match self.credentials {
                Some(_) => "the credentials were refused",
                None => "anonymous access was refused; the remote needs credentials",
            }));
        }
        Ok(second)
    }

    /// A request with whatever authorization is known for `scope`.
    fn authorized(&self, method: Method, url: &str, scope: &str) -> RequestBuilder {
        let request = self.http.request(method, url);
        let challenge = self.challenge.lock().expect("challenge lock").clone();
        match challenge {
            Some(Challenge::Basic) => match &self.credentials {
                Some(c) => request.basic_auth(&c.username, Some(&c.password)),
                None => request,
            },
            Some(Challenge::Bearer { .. }) => {
                let tokens = self.tokens.lock().expect("token lock");
                match tokens.get(scope) {
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
    async fn fetch_token(&self, challenge: &Challenge, scope: &str) -> Result<(), RemoteError> {
        let Challenge::Bearer { realm, service } = challenge else {
            return Ok(());
        };
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            for one in scope.split_whitespace() {
                query.append_pair("scope", one);
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
            .insert(scope.to_string(), (token, until));
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

    /// The response, if a HEAD found what it asked about.
    async fn found(&self, response: Response) -> Result<Option<Response>, RemoteError> {
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.expect(response, &[StatusCode::OK]).await.map(Some)
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
        let url = self.base_url.clone();
        let message = error.to_string();
        if error.is_timeout() {
            RemoteError::TimedOut { url, message }
        } else {
            RemoteError::Unavailable { url, message }
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

/// The token scope for reading `repo`. A request's scope is empty for the base endpoint, and
/// may name several scopes separated by spaces.
fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// The token scope for reading and writing `repo`.
fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}
