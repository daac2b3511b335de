//! Access control, ECR's model for a self-hosted registry: who is calling (Basic credentials,
//! access keys, 12-hour login passwords, Bearer JWTs, or nobody) and whether the user's
//! identity policy and the repository's resource policy allow what the request needs.
//!
//! Dependency direction: `http → auth → metadata`; `auth` knows nothing of HTTP types.

mod limiter;
pub mod passwords;
pub mod policy;
pub mod token;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use self::limiter::FailureLimiter;
use self::policy::Policy;
use self::token::{AccessEntry, Claims, SigningKey, TokenUse};
use crate::metadata::{IdentityStore, MetaError};
use crate::oci::RepoName;

/// The user name `docker login` uses with a login password, as with ECR.
pub const LOGIN_PASSWORD_USER: &str = "AWS";
/// The user bootstrapped on first start, allowed everything.
pub const ADMIN: &str = "admin";
const ADMIN_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Admin","Effect":"Allow","Action":"ecr:*","Resource":"*"}]}"#;

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The `iss` of every token.
    pub issuer: String,
    /// The `service` of the challenge and the `aud` of every token.
    pub service: String,
    pub token_lifetime: Duration,
    pub login_password_lifetime: Duration,
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    Anonymous,
    /// Proven by password, access key or login password.
    User(String),
    /// A Bearer token: only what its `access` claim lists.
    Token {
        user: String,
        access: Vec<AccessEntry>,
    },
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
    #[error("invalid token request: {0}")]
    InvalidRequest(String),
    #[error("invalid scope {0:?}")]
    InvalidScope(String),
    #[error(transparent)]
    Store(#[from] MetaError),
}

/// The Docker token action that covers an ECR action.
fn docker_action(action: &str) -> &'static str {
    match action {
        "ecr:PutImage"
        | "ecr:InitiateLayerUpload"
        | "ecr:UploadLayerPart"
        | "ecr:CompleteLayerUpload" => "push",
        "ecr:BatchDeleteImage" => "delete",
        "ecr:DescribeRepositories" => "*",
        _ => "pull",
    }
}

/// The ECR actions a Docker token action stands for: all must be allowed to grant it.
fn ecr_actions(docker_action: &str) -> &'static [&'static str] {
    match docker_action {
        "pull" => &[
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchCheckLayerAvailability",
        ],
        "push" => &[
            "ecr:PutImage",
            "ecr:InitiateLayerUpload",
            "ecr:UploadLayerPart",
            "ecr:CompleteLayerUpload",
        ],
        "delete" => &["ecr:BatchDeleteImage"],
        _ => &[],
    }
}

fn is_pull(action: &str) -> bool {
    docker_action(action) == "pull"
}

pub struct Auth {
    store: Arc<dyn IdentityStore>,
    key: SigningKey,
    settings: AuthSettings,
    limiter: FailureLimiter,
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
        Ok(Auth {
            store,
            key,
            settings,
            limiter: FailureLimiter::default(),
        })
    }

    /// Creates the `admin` user if it does not exist. Returns the generated password when
    /// none was given, for the caller to print once.
    pub async fn bootstrap_admin(
        &self,
        password: Option<&str>,
    ) -> Result<Option<String>, AuthError> {
        if self.store.get_user(ADMIN).await?.is_some() {
            return Ok(None);
        }
        let generated = password.is_none().then(passwords::generate);
        let password = password.or(generated.as_deref()).expect("one of them");
        let user = crate::metadata::User {
            name: ADMIN.into(),
            password_hash: passwords::hash(password).await,
            policy: Some(ADMIN_POLICY.into()),
        };
        let created = self.store.create_user(&user, now_millis()).await?;
        Ok(generated.filter(|_| created))
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
    /// `needs`. An empty `needs` still requires some valid identity (the `/v2/` check).
    pub async fn check(
        &self,
        authorization: Option<&str>,
        address: IpAddr,
        realm: &str,
        needs: &[Need],
    ) -> Result<Caller, AuthError> {
        let challenge = |error: Option<&str>| self.challenge(realm, needs, error);
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
                    let user = self.basic(credentials.trim(), address).await?;
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
        if needs.is_empty() && caller == Caller::Anonymous {
            return Err(AuthError::Unauthenticated {
                challenge: challenge(None),
            });
        }
        for need in needs {
            if self.permits(&caller, need, address).await? {
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
                Caller::Token { user, .. } if self.user_allowed(user, need, address).await? => {
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
        address: IpAddr,
    ) -> Result<Option<Caller>, AuthError> {
        match authorization.split_once(' ') {
            Some((scheme, credentials)) if scheme.eq_ignore_ascii_case("basic") => Ok(self
                .basic(credentials.trim(), address)
                .await?
                .map(Caller::User)),
            _ => Ok(None),
        }
    }

    /// Verifies Basic credentials: `AWS` + login password, access key id + secret, or user +
    /// password. `Ok(None)` for wrong credentials (counted against the limiter).
    async fn basic(&self, credentials: &str, address: IpAddr) -> Result<Option<String>, AuthError> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let Some((name, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
            return Ok(None);
        };
        self.login(name, secret, address).await
    }

    /// Checks a user name and secret, throttling repeated failures.
    pub async fn login(
        &self,
        name: &str,
        secret: &str,
        address: IpAddr,
    ) -> Result<Option<String>, AuthError> {
        if let Err(retry_after) = self.limiter.check(name, address) {
            return Err(AuthError::TooManyAttempts { retry_after });
        }
        let user = if name == LOGIN_PASSWORD_USER {
            // A login password outlives nothing: its user must still exist.
            match self.verify(secret, TokenUse::Login) {
                Some(claims) => self.store.get_user(&claims.sub).await?.map(|u| u.name),
                None => None,
            }
        } else if let Some(key) = self.store.get_access_key(name).await? {
            // Keys are deleted with their user.
            passwords::verify(secret, &key.secret_hash)
                .await
                .then_some(key.user)
        } else {
            match self.store.get_user(name).await? {
                Some(user) => passwords::verify(secret, &user.password_hash)
                    .await
                    .then_some(user.name),
                // Hash anyway so that unknown names take as long as wrong passwords.
                None => {
                    passwords::verify(secret, &passwords::DUMMY_HASH).await;
                    None
                }
            }
        };
        match &user {
            Some(_) => self.limiter.succeeded(name, address),
            None => self.limiter.failed(name, address),
        }
        Ok(user)
    }

    /// Whether `caller` may do `need`.
    pub async fn permits(
        &self,
        caller: &Caller,
        need: &Need,
        address: IpAddr,
    ) -> Result<bool, AuthError> {
        match caller {
            Caller::Anonymous => self.allowed(None, need, address).await,
            Caller::User(user) => self.user_allowed(user, need, address).await,
            Caller::Token { access, .. } => {
                let (kind, name) = match &need.repository {
                    Some(repo) => ("repository", repo.as_str()),
                    None => ("registry", "catalog"),
                };
                let wanted = docker_action(need.action);
                Ok(access.iter().any(|entry| {
                    entry.kind == kind
                        && entry.name == name
                        && entry.actions.iter().any(|a| a == wanted || a == "*")
                }))
            }
        }
    }

    async fn user_allowed(
        &self,
        user: &str,
        need: &Need,
        address: IpAddr,
    ) -> Result<bool, AuthError> {
        self.allowed(Some(user), need, address).await
    }

    /// Policy evaluation for a principal (`None`: anonymous). Public repositories allow
    /// anyone to pull.
    async fn allowed(
        &self,
        principal: Option<&str>,
        need: &Need,
        address: IpAddr,
    ) -> Result<bool, AuthError> {
        let repository = need.repository.as_ref().map(RepoName::as_str);
        let access = match repository {
            Some(repo) => self.store.repository_access(repo).await?,
            None => Default::default(),
        };
        if access.public && is_pull(need.action) {
            return Ok(true);
        }
        let identity = match principal {
            Some(user) => self.store.get_user(user).await?.and_then(|u| u.policy),
            None => None,
        };
        let parse = |text: Option<String>, resource: bool| {
            text.and_then(|text| match Policy::parse(&text, resource) {
                Ok(policy) => Some(policy),
                Err(e) => {
                    tracing::error!(error = %e, "stored policy no longer parses; ignoring it");
                    None
                }
            })
        };
        let source_ip = address.to_string();
        let request = policy::Request {
            principal,
            action: need.action,
            repository,
            source_ip: &source_ip,
        };
        Ok(policy::is_allowed(
            parse(identity, false).as_ref(),
            parse(access.policy, true).as_ref(),
            &request,
        ))
    }

    /// `Bearer realm="…",service="…",scope="…"` for what `needs` asks.
    fn challenge(&self, realm: &str, needs: &[Need], error: Option<&str>) -> String {
        let mut challenge = format!(
            "Bearer realm=\"{realm}\",service=\"{}\"",
            self.settings.service
        );
        let scopes: Vec<String> = needs.iter().map(scope_of).collect();
        if !scopes.is_empty() {
            let mut unique = scopes.clone();
            unique.dedup();
            challenge.push_str(&format!(",scope=\"{}\"", unique.join(" ")));
        }
        if let Some(error) = error {
            challenge.push_str(&format!(",error=\"{error}\""));
        }
        challenge
    }

    /// `GET /token`: a Bearer token granting, of the requested scopes, what the caller may
    /// have. Asking for more yields less, never an error.
    pub async fn issue(
        &self,
        caller: &Caller,
        service: Option<&str>,
        scopes: &[String],
        offline: bool,
        address: IpAddr,
    ) -> Result<IssuedToken, AuthError> {
        if let Some(service) = service
            && service != self.settings.service
        {
            return Err(AuthError::InvalidRequest(format!(
                "unknown service {service:?}"
            )));
        }
        let user = match caller {
            Caller::User(user) => Some(user.as_str()),
            _ => None,
        };
        let mut access = Vec::new();
        for scope in scopes
            .iter()
            .flat_map(|s| s.split(' '))
            .filter(|s| !s.is_empty())
        {
            let entry = parse_scope(scope)?;
            let mut granted = Vec::new();
            for action in &entry.actions {
                if self.grants(user, &entry, action, address).await? {
                    granted.push(action.clone());
                }
            }
            access.push(AccessEntry {
                actions: granted,
                ..entry
            });
        }
        let lifetime = self.settings.token_lifetime;
        let issued = token::unix_now();
        Ok(IssuedToken {
            token: self.sign(user.unwrap_or_default(), TokenUse::Access, lifetime, access),
            expires_in: lifetime.as_secs(),
            issued_at: token::rfc3339(issued),
            refresh_token: user.filter(|_| offline).map(|u| {
                self.sign(
                    u,
                    TokenUse::Refresh,
                    self.settings.login_password_lifetime,
                    Vec::new(),
                )
            }),
        })
    }

    /// The user a refresh token was issued to, if it is still valid and the user exists.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Option<String>, AuthError> {
        let Some(claims) = self.verify(refresh_token, TokenUse::Refresh) else {
            return Ok(None);
        };
        Ok(self.store.get_user(&claims.sub).await?.map(|u| u.name))
    }

    async fn grants(
        &self,
        user: Option<&str>,
        entry: &AccessEntry,
        action: &str,
        address: IpAddr,
    ) -> Result<bool, AuthError> {
        let needs: Vec<Need> = match (entry.kind.as_str(), action) {
            ("registry", "*") => vec![Need {
                repository: None,
                action: "ecr:DescribeRepositories",
            }],
            ("repository", "*") => ["pull", "push", "delete"]
                .iter()
                .flat_map(|a| ecr_actions(a))
                .map(|action| Need {
                    repository: entry.name.parse().ok(),
                    action,
                })
                .collect(),
            ("repository", action) => ecr_actions(action)
                .iter()
                .map(|action| Need {
                    repository: entry.name.parse().ok(),
                    action,
                })
                .collect(),
            _ => Vec::new(),
        };
        if needs.is_empty() {
            return Ok(false);
        }
        for need in &needs {
            if !self.allowed(user, need, address).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// `repository:<name>:<actions>` or `registry:catalog:*`. Names must be valid repository
/// names exactly as written: no case folding, no `..`, no encoded slashes.
fn parse_scope(scope: &str) -> Result<AccessEntry, AuthError> {
    let invalid = || AuthError::InvalidScope(scope.to_string());
    let (kind, rest) = scope.split_once(':').ok_or_else(invalid)?;
    let (name, actions) = rest.rsplit_once(':').ok_or_else(invalid)?;
    match kind {
        "repository" => {
            name.parse::<RepoName>().map_err(|_| invalid())?;
        }
        "registry" if name == "catalog" => {}
        _ => return Err(invalid()),
    }
    Ok(AccessEntry {
        kind: kind.into(),
        name: name.into(),
        actions: actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

fn scope_of(need: &Need) -> String {
    match &need.repository {
        None => "registry:catalog:*".into(),
        Some(repo) => {
            let actions = match docker_action(need.action) {
                "push" => "pull,push",
                other => other,
            };
            format!("repository:{repo}:{actions}")
        }
    }
}

fn now_millis() -> i64 {
    i64::try_from(token::unix_now() * 1000).unwrap_or(i64::MAX)
}
