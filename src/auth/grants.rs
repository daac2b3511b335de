//! The token endpoint's side of access control: which of the requested Docker scopes a caller
//! gets (`repository:<name>:pull,push,delete`, `registry:catalog:*`), and how Docker's actions
//! map onto ECR's.

use super::token::{self, AccessEntry, TokenUse};
use super::{Auth, AuthError, Caller, IssuedToken, Need, Origin};
use crate::oci::RepoName;

/// Distinct resources one token may name; a request for more is refused.
pub const MAX_SCOPES: usize = 16;
/// The Docker actions a scope may ask for; others are never granted.
const KNOWN_ACTIONS: &[&str] = &["pull", "push", "delete", "*"];

/// The Docker token action that covers an ECR action.
pub(super) fn docker_action(action: &str) -> &'static str {
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

pub(super) fn is_pull(action: &str) -> bool {
    docker_action(action) == "pull"
}

/// The scope a challenge asks for so that the client's token covers `need`.
pub(super) fn scope_of(need: &Need) -> String {
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

impl Auth {
    /// `GET /token`: a Bearer token granting, of the requested scopes, what the caller may
    /// have now. Asking for more yields less, never an error; repeated scopes and actions are
    /// merged, and more than [`MAX_SCOPES`] resources are refused.
    pub async fn issue(
        &self,
        caller: &Caller,
        service: Option<&str>,
        scopes: &[String],
        offline: bool,
        origin: Origin,
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
        let mut requested: Vec<AccessEntry> = Vec::new();
        for scope in scopes
            .iter()
            .flat_map(|s| s.split(' '))
            .filter(|s| !s.is_empty())
        {
            let entry = parse_scope(scope)?;
            let same = |known: &AccessEntry| known.kind == entry.kind && known.name == entry.name;
            if let Some(known) = requested.iter_mut().find(|known| same(known)) {
                known.actions.extend(entry.actions);
            } else if requested.len() < MAX_SCOPES {
                requested.push(entry);
            } else {
                return Err(AuthError::InvalidRequest(format!(
                    "more than {MAX_SCOPES} scopes in one token request"
                )));
            }
        }
        let mut access = Vec::with_capacity(requested.len());
        for mut entry in requested {
            entry.actions.sort();
            entry.actions.dedup();
            let mut granted = Vec::new();
            for action in &entry.actions {
                if self.grants(user, &entry, action, origin).await? {
                    granted.push(action.clone());
                }
            }
            entry.actions = granted;
            access.push(entry);
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

    /// Whether `user` may have Docker `action` on the scope's resource: every ECR action it
    /// stands for must be allowed.
    async fn grants(
        &self,
        user: Option<&str>,
        entry: &AccessEntry,
        action: &str,
        origin: Origin,
    ) -> Result<bool, AuthError> {
        let repository = || entry.name.parse::<RepoName>().ok();
        let needs: Vec<Need> = match (entry.kind.as_str(), action) {
            ("registry", "*") => vec![Need {
                repository: None,
                action: "ecr:DescribeRepositories",
            }],
            ("repository", "*") => ["pull", "push", "delete"]
                .iter()
                .flat_map(|a| ecr_actions(a))
                .map(|action| Need {
                    repository: repository(),
                    action,
                })
                .collect(),
            ("repository", action) => ecr_actions(action)
                .iter()
                .map(|action| Need {
                    repository: repository(),
                    action,
                })
                .collect(),
            _ => Vec::new(),
        };
        if needs.is_empty() {
            return Ok(false);
        }
        for need in &needs {
            if !self.allowed(user, need, origin).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// `repository:<name>:<actions>` or `registry:catalog:*`. Names must be valid repository
/// names exactly as written: no case folding, no `..`, no encoded slashes. Actions other than
/// Docker's are dropped.
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
            .filter(|a| KNOWN_ACTIONS.contains(a))
            .map(str::to_string)
            .collect(),
    })
}
