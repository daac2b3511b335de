//! Administration against the configured database, for the `wharf user|key|policy|
//! repository|remote|pull-through|login-password` commands: users, access keys, policies (of
//! users, repositories and the registry), public repositories, remote registries, pull-through
//! cache rules.

use std::sync::Arc;

use crate::auth::passwords;
use crate::auth::policy::Policy;
use crate::auth::token::SigningKey;
use crate::auth::{Auth, AuthSettings};
use crate::config::PullThroughAction;
use crate::metadata::{
    AccessKey, IdentityStore, RegistryIdentity, RemoteRecord, RemoteStore, User, now_millis as now,
};
use crate::oci::RepoName;
use crate::registry::{
    Registry, normalize_upstream_url, pull_through_credential_arn, remote_secret_purpose,
};
use crate::secrets::{SecretsKey, seal};

/// Whose policy a `policy` command means.
#[derive(Debug, Clone)]
pub enum PolicyTarget {
    User(String),
    Repository(RepoName),
    /// The registry policy, which applies to every repository. Through the CLI it can be
    /// repaired even when it denies everyone, admin included.
    Registry,
}

impl PolicyTarget {
    /// Whether the target takes a resource policy (statements name a `Principal`).
    fn takes_resource_policy(&self) -> bool {
        matches!(self, PolicyTarget::Repository(_) | PolicyTarget::Registry)
    }
}

fn check_user_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
        && name != crate::auth::LOGIN_PASSWORD_USER
        // Policies read twelve digits as an AWS account, so such a user could not be named.
        && !(name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit()));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid user name {name:?}: use letters, digits and . _ @ - (not AWS, not twelve \
             digits alone)"
        ))
    }
}

/// Creates a user; returns the password (generated when none is given).
pub async fn create_user(
    store: &dyn IdentityStore,
    name: &str,
    password: Option<String>,
) -> Result<String, String> {
    check_user_name(name)?;
    let password = password.unwrap_or_else(passwords::generate);
    let user = User {
        name: name.into(),
        password_hash: passwords::hash(&password).await,
        policy: None,
    };
    match store.create_user(&user, now()).await {
        Ok(true) => Ok(password),
        Ok(false) => Err(format!("user {name:?} already exists")),
        Err(e) => Err(e.to_string()),
    }
}

async fn require_user(store: &dyn IdentityStore, user: &str) -> Result<(), String> {
    match store.get_user(user).await.map_err(|e| e.to_string())? {
        Some(_) => Ok(()),
        None => Err(format!("no user {user:?}")),
    }
}

pub async fn delete_user(store: &dyn IdentityStore, name: &str) -> Result<(), String> {
    match store.delete_user(name).await.map_err(|e| e.to_string())? {
        true => Ok(()),
        false => Err(format!("no user {name:?}")),
    }
}

/// Creates an access key for `user`; returns its id and secret (shown once).
pub async fn create_key(store: &dyn IdentityStore, user: &str) -> Result<(String, String), String> {
    require_user(store, user).await?;
    let id = format!(
        "{}{}",
        crate::auth::ACCESS_KEY_PREFIX,
        &passwords::generate()[..17].to_ascii_uppercase()
    );
    let secret = format!("{}{}", passwords::generate(), &passwords::generate()[..8]);
    let key = AccessKey {
        id: id.clone(),
        user: user.into(),
        secret_hash: passwords::hash(&secret).await,
        secret: Some(secret.clone()),
    };
    store
        .create_access_key(&key, now())
        .await
        .map_err(|e| e.to_string())?;
    Ok((id, secret))
}

pub async fn delete_key(store: &dyn IdentityStore, id: &str) -> Result<(), String> {
    match store
        .delete_access_key(id)
        .await
        .map_err(|e| e.to_string())?
    {
        true => Ok(()),
        false => Err(format!("no access key {id:?}")),
    }
}

/// Validates and stores a policy document (`None` removes it). The registry's policy needs
/// its row, which every node makes at start ([`RepositoryStore::registry_id`]).
///
/// [`RepositoryStore::registry_id`]: crate::metadata::RepositoryStore::registry_id
pub async fn set_policy(
    store: &dyn IdentityStore,
    target: &PolicyTarget,
    document: Option<&str>,
) -> Result<(), String> {
    if let Some(document) = document {
        Policy::parse(document, target.takes_resource_policy())?;
    }
    match target {
        PolicyTarget::User(name) => match store.set_user_policy(name, document).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("no user {name:?}")),
            Err(e) => Err(e.to_string()),
        },
        PolicyTarget::Repository(repo) => store
            .set_repository_policy(repo.as_str(), document, now())
            .await
            .map_err(|e| e.to_string()),
        PolicyTarget::Registry => store
            .set_registry_policy(document)
            .await
            .map_err(|e| e.to_string()),
    }
}

pub async fn get_policy(
    store: &dyn IdentityStore,
    target: &PolicyTarget,
) -> Result<Option<String>, String> {
    match target {
        PolicyTarget::User(name) => match store.get_user(name).await.map_err(|e| e.to_string())? {
            Some(user) => Ok(user.policy),
            None => Err(format!("no user {name:?}")),
        },
        PolicyTarget::Repository(repo) => Ok(store
            .repository_access(Some(repo.as_str()), None, None)
            .await
            .map_err(|e| e.to_string())?
            .policy),
        PolicyTarget::Registry => store.registry_policy().await.map_err(|e| e.to_string()),
    }
}

pub async fn set_public(
    store: &dyn IdentityStore,
    repo: &RepoName,
    public: bool,
) -> Result<(), String> {
    store
        .set_repository_public(repo.as_str(), public, now())
        .await
        .map_err(|e| e.to_string())
}

/// A login password for `user`, signed with the configured key or the one in the database.
pub async fn login_password(
    store: Arc<dyn IdentityStore>,
    user: &str,
    settings: AuthSettings,
    key: Option<SigningKey>,
    registry: RegistryIdentity,
) -> Result<String, String> {
    require_user(&*store, user).await?;
    let auth = Auth::new(store, key, settings, registry)
        .await
        .map_err(|e| e.to_string())?;
    Ok(auth.login_password(user))
}

/// A remote to add: how ECR names it, where it is, and how to log in.
pub struct NewRemote {
    pub registry_id: String,
    pub region: String,
    pub url: String,
    pub credentials: Option<crate::remote::Credentials>,
    /// Whether to check first that it answers as a registry and accepts the credentials.
    pub check: bool,
}

/// Checks a remote's name as ECR's API would take it: a twelve-digit registry id and a
/// region of lowercase letters, digits and dashes.
pub fn check_remote_name(registry_id: &str, region: &str) -> Result<(), String> {
    if registry_id.len() != 12 || !registry_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid registry id {registry_id:?}: twelve digits"
        ));
    }
    let region_ok = (2..=25).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !region_ok {
        return Err(format!(
            "invalid region {region:?}: 2 to 25 lowercase letters, digits and dashes"
        ));
    }
    Ok(())
}

/// Records a remote, checking it first if asked. Returns whether it replaced one.
/// The password is sealed with `key`, if there is one.
pub async fn add_remote(
    store: &dyn RemoteStore,
    key: Option<&SecretsKey>,
    remote: NewRemote,
) -> Result<bool, String> {
    check_remote_name(&remote.registry_id, &remote.region)?;
    let client = crate::remote::Remote::new(&remote.url, remote.credentials.clone())
        .map_err(|e| e.to_string())?;
    if remote.check {
        client
            .check()
            .await
            .map_err(|e| format!("{e} (nothing stored; --skip-check stores it anyway)"))?;
    }
    let purpose = remote_secret_purpose(&remote.registry_id, &remote.region);
    let (username, password) = match remote.credentials {
        Some(c) => (Some(c.username), Some(seal(key, &purpose, &c.password))),
        None => (None, None),
    };
    let record = RemoteRecord {
        registry_id: remote.registry_id,
        region: remote.region,
        url: client.url().to_string(),
        username,
        password,
        created_at: now(),
    };
    store.put_remote(&record).await.map_err(|e| e.to_string())
}

/// The `pull-through` commands.
pub async fn pull_through(
    registry: &Registry,
    identity: &RegistryIdentity,
    action: PullThroughAction,
) -> Result<(), String> {
    match action {
        PullThroughAction::Create {
            prefix,
            upstream,
            login,
        } => {
            let credentials = login.username.map(read_password).transpose()?;
            if !login.skip_check {
                let url = normalize_upstream_url(&upstream).map_err(|e| e.to_string())?;
                crate::remote::Remote::new(&url, credentials.clone())
                    .map_err(|e| e.to_string())?
                    .check()
                    .await
                    .map_err(|e| format!("{e} (nothing stored; --skip-check stores it anyway)"))?;
            }
            let arn = credentials.as_ref().map(|_| {
                pull_through_credential_arn(&identity.registry_id, &identity.region, &prefix)
            });
            let rule = registry
                .create_pull_through_rule(&prefix, &upstream, arn.as_deref(), credentials)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "created pull-through cache rule {} -> {}",
                rule.prefix, rule.upstream_url
            );
        }
        PullThroughAction::List => {
            let rules = registry
                .pull_through_rules(&[])
                .await
                .map_err(|e| e.to_string())?;
            if rules.is_empty() {
                println!("(no pull-through cache rules)");
            }
            for rule in rules {
                let credential = rule.credential_arn.as_deref().unwrap_or("-");
                println!("{}  {}  {credential}", rule.prefix, rule.upstream_url);
            }
        }
        PullThroughAction::Delete { prefix } => {
            let rule = registry
                .delete_pull_through_rule(&prefix)
                .await
                .map_err(|e| e.to_string())?;
            println!("deleted pull-through cache rule {}", rule.prefix);
        }
    }
    Ok(())
}

/// Credentials for `username`, the password read from standard input.
pub fn read_password(username: String) -> Result<crate::remote::Credentials, String> {
    let password = std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string())?;
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    Ok(crate::remote::Credentials { username, password })
}
