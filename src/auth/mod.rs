//! Access control, ECR's model for a self-hosted registry: who is calling (Basic credentials,
//! access keys, 12-hour login passwords, Bearer JWTs, or nobody) and whether the user's
//! identity policy and the repository's resource policy allow what the request needs.
//!
//! Every operation is decided on its own ECR action, whatever the credentials: a Bearer token
//! only narrows what its user's policies allow at the time of the request. Anonymous callers
//! get nothing from policies; a public repository lets anyone pull, and an explicit Deny still
//! wins over that.
//!
//! Dependency direction: `http → auth → metadata`; `auth` knows nothing of HTTP types.

mod downloads;
pub(crate) mod grants;
mod limiter;
pub mod passwords;
pub mod policy;
pub mod sigv4;
pub mod token;
mod verified;

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;

pub use self::grants::MAX_SCOPES;
use self::grants::{docker_action, is_pull, scope_of};
use self::limiter::LoginLimiter;
use self::passwords::Verifier;
use self::policy::Policy;
use self::token::{AccessEntry, Claims, SigningKey, TokenUse};
use self::verified::VerifiedCredentials;
use crate::metadata::{IdentityStore, MetaError, RegistryIdentity, RepositoryAccess, now_millis};
use crate::oci::RepoName;

/// The user name `docker login` uses with a login password, as with ECR.
pub const LOGIN_PASSWORD_USER: &str = "AWS";
/// The user bootstrapped on first start, allowed everything.
pub const ADMIN: &str = "admin";
const ADMIN_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Admin","Effect":"Allow","Action":"ecr:*","Resource":"*"}]}"#;
/// Longer Basic user names cannot belong to any user or key, so they are refused unchecked.
const MAX_NAME: usize = 128;

/// Whether `name` could be a user name or an access key id (both are made of these
/// characters); anything else is refused before it reaches the database.
fn plausible_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The `iss` of every token.
    pub issuer: String,
    /// The `service` of the challenge and the `aud` of every token.
    pub service: String,
    pub token_lifetime: Duration,
    pub login_password_lifetime: Duration,
}

/// Where a request came from, as far as the registry can tell (through trusted proxies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub address: IpAddr,
    /// Whether the client connected over TLS (to a proxy in front of Wharf).
    pub secure: bool,
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    Anonymous,
    /// Proven by password, access key or login password.
    User(String),
    /// A Bearer token: at most what its `access` claim lists. `user` is empty for tokens
    /// issued to anonymous callers.
    Token {
        user: String,
        access: Vec<AccessEntry>,
    },
}

/// How access key ids begin (`WKA` and 17 more letters and digits).
pub const ACCESS_KEY_PREFIX: &str = "WKA";

/// Whether a name given as a login is an access key id rather than a user.
pub fn is_access_key_id(name: &str) -> bool {
    name.len() == ACCESS_KEY_PREFIX.len() + 17
        && name.starts_with(ACCESS_KEY_PREFIX)
        && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Caller {
    /// The user's name, for logs; `anonymous` for a caller without one.
    pub fn name(&self) -> &str {
        match self {
            Caller::User(user) => user,
            Caller::Token { user, .. } if !user.is_empty() => user,
            Caller::Anonymous | Caller::Token { .. } => "anonymous",
        }
    }
}

/// One permission a request needs: an ECR action on a repository, or registry-wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub repository: Option<RepoName>,
    pub action: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No or bad credentials; `challenge` is the `WWW-Authenticate` value.
    #[error("authentication required")]
    Unauthenticated { challenge: String },
    #[error("requested access to the resource is denied")]
    Denied,
    #[error("too many failed login attempts; retry in {retry_after} seconds")]
    TooManyAttempts { retry_after: u64 },
    #[error("too many password checks in progress; retry shortly")]
    Busy,
    #[error("invalid token request: {0}")]
    InvalidRequest(String),
    #[error("invalid scope {0:?}")]
    InvalidScope(String),
    #[error(transparent)]
    Store(#[from] MetaError),
}

impl From<passwords::Busy> for AuthError {
    fn from(_: passwords::Busy) -> Self {
        AuthError::Busy
    }
}

pub struct Auth {
    store: Arc<dyn IdentityStore>,
    key: SigningKey,
    settings: AuthSettings,
    /// Where resource ARNs of policies must point to cover this registry's repositories.
    registry: Arc<RegistryIdentity>,
    limiter: LoginLimiter,
    verifier: Verifier,
    verified: VerifiedCredentials,
}

/// What the token endpoint answers.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
    pub issued_at: String,
    pub refresh_token: Option<String>,
}

impl Auth {
    /// Loads (or, on the very first start, creates and stores) the signing key.
    pub async fn new(
        store: Arc<dyn IdentityStore>,
        configured_key: Option<SigningKey>,
        settings: AuthSettings,
        registry: RegistryIdentity,
    ) -> Result<Auth, AuthError> {
        let key = match configured_key {
            Some(key) => key,
            None => {
                let stored = store
                    .signing_key(&SigningKey::generate(), now_millis())
                    .await?;
                SigningKey::from_pkcs8(&stored).map_err(MetaError::Corrupt)?
            }
        };
        // Computed now, on the blocking pool, rather than by the first unknown user's login.
        tokio::task::spawn_blocking(|| LazyLock::force(&passwords::DUMMY_HASH).len())
            .await
            .expect("dummy hash task");
        Ok(Auth {
            limiter: LoginLimiter::new(store.clone()),
            store,
            key,
            settings,
            registry: Arc::new(registry),
            verifier: Verifier::per_core(),
            verified: VerifiedCredentials::default(),
        })
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Whether there are no users at all: the very first start, when `admin` is created.
    pub async fn has_no_users(&self) -> Result<bool, AuthError> {
        Ok(self.store.list_users().await?.is_empty())
    }

    /// Creates `admin`, allowed everything, unless some user exists by now (another node won,
    /// or `admin` was deleted after others were made: that is not undone). Returns whether it
    /// did.
    pub async fn bootstrap_admin(&self, password: &str) -> Result<bool, AuthError> {
        let user = crate::metadata::User {
            name: ADMIN.into(),
            password_hash: passwords::hash(password).await,
            policy: Some(ADMIN_POLICY.into()),
        };
        Ok(self.store.create_first_user(&user, now_millis()).await?)
    }

    /// A 12-hour (by default) password for `docker login -u AWS`.
    pub fn login_password(&self, user: &str) -> String {
        let lifetime = self.settings.login_password_lifetime;
        self.sign(user, TokenUse::Login, lifetime, Vec::new())
    }

    fn sign(
        &self,
        user: &str,
        token_use: TokenUse,
        lifetime: Duration,
        access: Vec<AccessEntry>,
    ) -> String {
        let s = &self.settings;
        self.key.sign(&token::claims(
            &s.issuer, &s.service, user, token_use, lifetime, access,
        ))
    }

    fn verify(&self, token: &str, token_use: TokenUse) -> Option<Claims> {
        let s = &self.settings;
        self.key.verify(token, &s.issuer, &s.service, token_use)
    }

    /// Decides whether the request with this `Authorization` header may do everything in
    /// `needs`. An empty `needs` still requires a user (the `/v2/` check). Challenges send
    /// clients to `realm` for a token (or, without a usable realm, ask for Basic credentials)
    /// and also ask for `wanted`: access the request can do without but is better with (a
    /// mount's source), so that clients that follow challenges get a token for it.
    pub async fn check(
        &self,
        authorization: Option<&str>,
        origin: Origin,
        realm: Option<&str>,
        needs: &[Need],
        wanted: &[Need],
    ) -> Result<Caller, AuthError> {
        let asked: Vec<Need> = needs.iter().chain(wanted).cloned().collect();
        let challenge = |error: Option<&str>| self.challenge(realm, &asked, error);
        let mut read: Option<Standing> = None;
        let caller = match authorization {
            None => Caller::Anonymous,
            Some(value) => match value.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                    let claims = self.verify(token.trim(), TokenUse::Access).ok_or_else(|| {
                        AuthError::Unauthenticated {
                            challenge: challenge(Some("invalid_token")),
                        }
                    })?;
                    Caller::Token {
                        user: claims.sub,
                        access: claims.access,
                    }
                }
                Some((scheme, credentials)) if scheme.eq_ignore_ascii_case("basic") => {
                    // The login reads the first need's standing with the credential.
                    let repository = needs.first().and_then(|need| need.repository.as_ref());
                    let (user, standing) =
                        self.basic(credentials.trim(), origin, repository).await?;
                    read = standing;
                    user.map(Caller::User)
                        .ok_or_else(|| AuthError::Unauthenticated {
                            challenge: challenge(None),
                        })?
                }
                _ => {
                    return Err(AuthError::Unauthenticated {
                        challenge: challenge(None),
                    });
                }
            },
        };
        if needs.is_empty() && !self.is_user(&caller).await? {
            return Err(AuthError::Unauthenticated {
                challenge: challenge(None),
            });
        }
        for need in needs {
            let permitted = match &read {
                Some(standing) if standing.covers(need.repository.as_ref()) => {
                    standing.allows(need.action, origin)
                }
                _ => self.permits(&caller, need, origin).await?,
            };
            if permitted {
                continue;
            }
            return Err(match &caller {
                Caller::Anonymous => AuthError::Unauthenticated {
                    challenge: challenge(None),
                },
                // An anonymous token: credentials would help.
                Caller::Token { user, .. } if user.is_empty() => AuthError::Unauthenticated {
                    challenge: challenge(None),
                },
                // The token did not ask for enough; if its user may, let the client get a
                // broader one.
                Caller::Token { user, .. } if self.allowed(Some(user), need, origin).await? => {
                    AuthError::Unauthenticated {
                        challenge: challenge(Some("insufficient_scope")),
                    }
                }
                _ => AuthError::Denied,
            });
        }
        Ok(caller)
    }

    /// The caller an `Authorization: Basic …` header proves, if its credentials are right.
    pub async fn basic_caller(
        &self,
        authorization: &str,
        origin: Origin,
    ) -> Result<Option<Caller>, AuthError> {
        match authorization.split_once(' ') {
            Some((scheme, credentials)) if scheme.eq_ignore_ascii_case("basic") => Ok(self
                .basic(credentials.trim(), origin, None)
                .await?
                .0
                .map(Caller::User)),
            _ => Ok(None),
        }
    }

    /// Verifies Basic credentials: `AWS` + login password, access key id + secret, or user +
    /// password, reading the user's standing on `repository` in the same query. `Ok(None)`
    /// for wrong credentials.
    async fn basic(
        &self,
        credentials: &str,
        origin: Origin,
        repository: Option<&RepoName>,
    ) -> Result<(Option<String>, Option<Standing>), AuthError> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let Some((name, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
            return Ok((None, None));
        };
        self.login_reading(name, secret, origin, repository).await
    }

    /// Checks a user name and secret. Password checks are throttled per user and address,
    /// and a success is remembered briefly so that repeated Basic requests cost a lookup, not
    /// an argon2 check.
    pub async fn login(
        &self,
        name: &str,
        secret: &str,
        origin: Origin,
    ) -> Result<Option<String>, AuthError> {
        Ok(self.login_reading(name, secret, origin, None).await?.0)
    }

    /// [`Auth::login`], also returning the user's standing on `repository` (`None`: the
    /// registry as a whole), read in the same query as the credential.
    async fn login_reading(
        &self,
        name: &str,
        secret: &str,
        origin: Origin,
        repository: Option<&RepoName>,
    ) -> Result<(Option<String>, Option<Standing>), AuthError> {
        let repository_name = repository.map(RepoName::as_str);
        if name == LOGIN_PASSWORD_USER {
            // A signature check: nothing to guess, nothing to throttle.
            let Some(claims) = self.verify(secret, TokenUse::Login) else {
                return Ok((None, None));
            };
            // A login password outlives nothing: its user must still exist.
            let access = self
                .store
                .repository_access(repository_name, Some(&claims.sub), None)
                .await?;
            let user = access.user.as_ref().map(|user| user.name.clone());
            return Ok((user, Some(self.standing_from(access, repository))));
        }
        if !plausible_name(name) {
            return Ok((None, None));
        }
        let access = self
            .store
            .repository_access(repository_name, None, Some(name))
            .await?;
        let credential = access
            .login
            .clone()
            .map(|login| (login.user, login.secret_hash));
        let key = self.verified.key(name, secret);
        let known = || {
            credential
                .as_ref()
                .filter(|(_, hash)| self.verified.knows(&key, hash))
                .map(|(user, _)| user.clone())
        };
        let standing = || Some(self.standing_from(access.clone(), repository));
        if let Some(user) = known() {
            return Ok((Some(user), standing()));
        }
        let _turn = self.verified.turn(key).await;
        if let Some(user) = known() {
            return Ok((Some(user), standing()));
        }
        let charge = self.limiter.charge(name, origin.address).await?;
        // Unknown names are checked against a dummy hash, so they take as long as wrong
        // passwords.
        let hash = credential
            .as_ref()
            .map_or(passwords::DUMMY_HASH.as_str(), |(_, hash)| hash.as_str());
        match (self.verifier.verify(secret, hash).await, credential) {
            (Ok(true), Some((user, hash))) => {
                self.limiter.forgive(charge).await?;
                self.verified.remember(key, &hash);
                Ok((Some(user), standing()))
            }
            (Ok(_), _) => Ok((None, None)),
            (Err(busy), _) => {
                self.limiter.forgive(charge).await?;
                Err(busy.into())
            }
        }
    }

    /// Whether `caller` is a user that still exists (not anonymous, nor a token issued to
    /// nobody or to a deleted user).
    async fn is_user(&self, caller: &Caller) -> Result<bool, AuthError> {
        Ok(match caller {
            Caller::Anonymous => false,
            Caller::User(_) => true,
            Caller::Token { user, .. } => {
                !user.is_empty() && self.store.get_user(user).await?.is_some()
            }
        })
    }

    /// Whether `caller` may do `need` now, from `origin`.
    pub async fn permits(
        &self,
        caller: &Caller,
        need: &Need,
        origin: Origin,
    ) -> Result<bool, AuthError> {
        match caller {
            Caller::Anonymous => self.allowed(None, need, origin).await,
            Caller::User(user) => self.allowed(Some(user), need, origin).await,
            Caller::Token { user, access } => {
                let (kind, name) = match &need.repository {
                    Some(repo) => ("repository", repo.as_str()),
                    None => ("registry", "catalog"),
                };
                let Some(wanted) = docker_action(need.action) else {
                    return Ok(false);
                };
                let scoped = access.iter().any(|entry| {
                    entry.kind == kind
                        && entry.name == name
                        && entry.actions.iter().any(|a| a == wanted || a == "*")
                });
                let user = Some(user.as_str()).filter(|user| !user.is_empty());
                Ok(scoped && self.allowed(user, need, origin).await?)
            }
        }
    }

    /// Policy evaluation of one need for a user (`None`: anonymous).
    async fn allowed(
        &self,
        user: Option<&str>,
        need: &Need,
        origin: Origin,
    ) -> Result<bool, AuthError> {
        let standing = self.standing(user, need.repository.as_ref()).await?;
        Ok(standing.allows(need.action, origin))
    }

    /// Loads what policy evaluation needs about `user` on `repository` (`None`: the registry
    /// as a whole). A user that no longer exists is anonymous.
    async fn standing(
        &self,
        user: Option<&str>,
        repository: Option<&RepoName>,
    ) -> Result<Standing, AuthError> {
        let access = self
            .store
            .repository_access(repository.map(RepoName::as_str), user, None)
            .await?;
        Ok(self.standing_from(access, repository))
    }

    /// The standing `access` (read for `repository`) gives its user.
    fn standing_from(&self, access: RepositoryAccess, repository: Option<&RepoName>) -> Standing {
        let user = access.user;
        let identity = parse_stored(user.as_ref().and_then(|u| u.policy.as_deref()), false);
        let resources = [access.policy.as_deref(), access.registry_policy.as_deref()]
            .into_iter()
            .filter_map(|text| parse_stored(text, true).transpose())
            .collect::<Result<Vec<Policy>, ()>>();
        Standing {
            user: user.map(|u| u.name),
            repository: repository.map(|r| r.as_str().to_string()),
            registry: self.registry.clone(),
            public: access.public,
            policies: identity.and_then(|identity| Ok((identity, resources?))),
        }
    }

    /// `Bearer realm="…",service="…",scope="…"` for what `needs` asks; `Basic realm="…"`
    /// when there is no realm to send clients to.
    fn challenge(&self, realm: Option<&str>, needs: &[Need], error: Option<&str>) -> String {
        let service = &self.settings.service;
        let Some(realm) = realm else {
            return format!("Basic realm=\"{service}\"");
        };
        let mut challenge = format!("Bearer realm=\"{realm}\",service=\"{service}\"");
        let mut scopes: Vec<String> = needs.iter().map(scope_of).collect();
        scopes.dedup();
        if !scopes.is_empty() {
            challenge.push_str(&format!(",scope=\"{}\"", scopes.join(" ")));
        }
        if let Some(error) = error {
            challenge.push_str(&format!(",error=\"{error}\""));
        }
        challenge
    }

    /// Forgets login-attempt windows that have ended.
    pub async fn purge_login_attempts(&self) -> Result<u64, AuthError> {
        self.limiter.purge().await
    }
}

/// One caller's standing on one repository (or the registry as a whole), loaded once and then
/// evaluated in memory for as many actions as needed.
pub(crate) struct Standing {
    /// `None` for anonymous callers.
    user: Option<String>,
    repository: Option<String>,
    registry: Arc<RegistryIdentity>,
    public: bool,
    /// The identity policy and the resource policies (repository, registry); `Err` when a
    /// stored one no longer parses, which denies everything.
    policies: Result<(Option<Policy>, Vec<Policy>), ()>,
}

impl Standing {
    /// Whether this standing was read for `repository` (`None`: the registry as a whole).
    fn covers(&self, repository: Option<&RepoName>) -> bool {
        self.repository.as_deref() == repository.map(RepoName::as_str)
    }

    pub(crate) fn allows(&self, action: &str, origin: Origin) -> bool {
        let Ok((identity, resources)) = &self.policies else {
            return false;
        };
        let request = policy::Request {
            principal: self.user.as_deref(),
            action,
            repository: self.repository.as_deref(),
            source_ip: origin.address,
            secure_transport: origin.secure,
            current_time: SystemTime::now(),
            region: &self.registry.region,
            account: &self.registry.registry_id,
        };
        let public_pull = self.public && is_pull(action);
        policy::is_allowed(identity.as_ref(), resources, public_pull, &request)
    }
}

/// A stored policy document, parsed. `Err` (logged) when it no longer parses: the caller
/// fails closed.
fn parse_stored(text: Option<&str>, resource_policy: bool) -> Result<Option<Policy>, ()> {
    let Some(text) = text else {
        return Ok(None);
    };
    Policy::parse(text, resource_policy).map(Some).map_err(|e| {
        let kind = if resource_policy { "resource" } else { "user" };
        tracing::error!(error = %e, "a stored {kind} policy no longer parses; denying what it covers");
    })
}
