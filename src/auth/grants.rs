//! The token endpoint's side of access control: which of the requested Docker scopes a caller
//! gets (`repository:<name>:pull,push,delete`, `registry:catalog:*`), and how Docker's actions
//! map onto ECR's. Part of `auth`; depends on its policy evaluation and token signing only.

use super::token::{self, AccessEntry, TokenUse};
use super::{Auth, AuthError, Caller, IssuedToken, Need, Origin, Standing};
use crate::oci::RepoName;

/// Distinct resources one token may name; a request for more is refused.
pub const MAX_SCOPES: usize = 16;
/// The Docker actions a scope may ask for; others are never granted.
const KNOWN_ACTIONS: &[&str] = &["pull", "push", "delete", "*"];

/// Every ECR action a registry operation needs, with the Docker token action that covers it.
const DOCKER_ACTIONS: &[(&str, &str)] = &[
    ("ecr:BatchGetImage", "pull"),
    ("ecr:GetDownloadUrlForLayer", "pull"),
    ("ecr:BatchCheckLayerAvailability", "pull"),
    ("ecr:ListImages", "pull"),
    ("ecr:DescribeImages", "pull"),
    ("ecr:PutImage", "push"),
    ("ecr:InitiateLayerUpload", "push"),
    ("ecr:UploadLayerPart", "push"),
    ("ecr:CompleteLayerUpload", "push"),
    ("ecr:BatchDeleteImage", "delete"),
    ("ecr:DescribeRepositories", "*"),
];

/// The Docker token action that covers an ECR action; `None` for an action no token covers.
pub(super) fn docker_action(action: &str) -> Option<&'static str> {
    DOCKER_ACTIONS
        .iter()
        .find(|(ecr, _)| *ecr == action)
        .map(|(_, docker)| *docker)
}

/// The ECR actions a Docker token action covers on a repository (`*`: all of them).
fn ecr_actions(docker: &str) -> impl Iterator<Item = &'static str> + '_ {
    DOCKER_ACTIONS
        .iter()
        .filter(move |(_, covering)| docker == "*" || *covering == docker)
        .map(|(ecr, _)| *ecr)
        .filter(|ecr| *ecr != "ecr:DescribeRepositories")
}

/// Read-only actions, which a public repository allows anyone.
pub(super) fn is_pull(action: &str) -> bool {
    docker_action(action) == Some("pull")
}

/// The scope a challenge asks for so that the client's token covers `need`.
pub(crate) fn scope_of(need: &Need) -> String {
    match &need.repository {
        None => "registry:catalog:*".into(),
        Some(repo) => {
            // A pusher also reads (blob existence checks), so it is asked for both.
            let actions = match docker_action(need.action) {
                Some("push") => "pull,push",
                Some(other) => other,
                None => "pull",
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
            // A registry scope (`registry:catalog:*`) is decided on the registry as a whole.
            let repository = match entry.kind.as_str() {
                "repository" => entry.name.parse::<RepoName>().ok(),
                _ => None,
            };
            let standing = self.standing(user, repository.as_ref()).await?;
            entry
                .actions
                .retain(|action| grants(&standing, &entry.kind, action, origin));
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
}

/// Whether a token may carry Docker `action` on a `kind` resource: when the policies allow any
/// ECR action it covers. Each operation is still checked on its own action when the token is
/// used, so this only keeps tokens from claiming what could never be used.
fn grants(standing: &Standing, kind: &str, action: &str, origin: Origin) -> bool {
    match kind {
        "registry" => standing.allows("ecr:DescribeRepositories", origin),
        _ => ecr_actions(action).any(|ecr| standing.allows(ecr, origin)),
    }
}

/// `repository:<name>:<actions>` or `registry:catalog:*`. Names must be valid repository
/// names exactly as written: no case folding, no `..`, no encoded slashes. Actions other than
/// Docker's are dropped.
pub(crate) fn parse_scope(scope: &str) -> Result<AccessEntry, AuthError> {
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
