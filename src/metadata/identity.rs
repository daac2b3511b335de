//! Principals and access settings: users, access keys, policies, the signing key, login
//! attempts.

use async_trait::async_trait;

use super::{MetaResult, Millis};

/// A user as stored: the argon2 hash of the password, never the password.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password_hash: String,
    /// IAM-style identity policy (JSON).
    pub policy: Option<String>,
}

/// An access key of a user, for tools: the id is public; the secret is stored hashed (for
/// Basic logins) and as it is (SigV4 recomputes signatures with it).
#[derive(Debug, Clone)]
pub struct AccessKey {
    pub id: String,
    pub user: String,
    pub secret_hash: String,
    /// The secret itself, which SigV4 needs; `None` for keys made before Wharf spoke SigV4.
    pub secret: Option<String>,
}

/// What access control needs to know about a caller on a repository (or the registry as a
/// whole): the caller's credential and identity policy and the resource policies that apply,
/// read together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryAccess {
    /// What the login name asked about stands for, if anything.
    pub login: Option<Credential>,
    /// The caller (the user named, else the login's user), if one exists.
    pub user: Option<UserPolicy>,
    /// Anyone may pull, without credentials.
    pub public: bool,
    /// The repository's IAM-style resource policy (JSON).
    pub policy: Option<String>,
    /// The registry policy, which applies to every repository and to registry-wide actions.
    pub registry_policy: Option<String>,
}

/// A user as access control sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPolicy {
    pub name: String,
    /// IAM-style identity policy (JSON).
    pub policy: Option<String>,
}

/// What a Basic login's name stands for: the user, and the hash its secret must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub user: String,
    pub secret_hash: String,
}

/// Login attempts counted against one key in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptWindow {
    pub attempts: u32,
    pub started_at: Millis,
}

/// Principals and access settings, for the `auth` layer and the admin CLI.
#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    /// Creates the user. Returns false (changing nothing) if the name is taken.
    async fn create_user(&self, user: &User, now: Millis) -> MetaResult<bool>;
    /// Creates the user only if there are no users at all (first start). Returns whether it did.
    async fn create_first_user(&self, user: &User, now: Millis) -> MetaResult<bool>;
    async fn get_user(&self, name: &str) -> MetaResult<Option<User>>;
    async fn list_users(&self) -> MetaResult<Vec<String>>;
    /// Deletes the user and its access keys. Returns false if there was no such user.
    async fn delete_user(&self, name: &str) -> MetaResult<bool>;
    /// Returns false if there is no such user.
    async fn set_user_policy(&self, name: &str, policy: Option<&str>) -> MetaResult<bool>;

    async fn create_access_key(&self, key: &AccessKey, now: Millis) -> MetaResult<()>;
    async fn get_access_key(&self, id: &str) -> MetaResult<Option<AccessKey>>;
    async fn list_access_keys(&self, user: &str) -> MetaResult<Vec<String>>;
    async fn delete_access_key(&self, id: &str) -> MetaResult<bool>;

    /// Settings of the repository (`None`: registry-wide, no repository's) with the registry
    /// policy, the caller's identity policy, and what the Basic `login` name stands for (an
    /// access key id first, else a user name), in one query: a request's access check is one
    /// round trip. The caller is `user` if given, else the login's user. Private and without
    /// a repository policy if the repository does not exist.
    async fn repository_access(
        &self,
        repository: Option<&str>,
        user: Option<&str>,
        login: Option<&str>,
    ) -> MetaResult<RepositoryAccess>;
    /// Sets (or with `None` removes) the resource policy, creating the repository if needed.
    async fn set_repository_policy(
        &self,
        repository: &str,
        policy: Option<&str>,
        now: Millis,
    ) -> MetaResult<()>;
    /// Makes the repository public or private, creating it if needed.
    async fn set_repository_public(
        &self,
        repository: &str,
        public: bool,
        now: Millis,
    ) -> MetaResult<()>;

    /// The registry-wide resource policy, which applies to every repository.
    async fn registry_policy(&self) -> MetaResult<Option<String>>;
    /// Sets or (with `None`) removes the registry policy. The registry's row must exist
    /// ([`RepositoryStore::registry_id`] makes it, as every node does at start); without it
    /// this fails rather than drop the policy.
    ///
    /// [`RepositoryStore::registry_id`]: super::RepositoryStore::registry_id
    async fn set_registry_policy(&self, policy: Option<&str>) -> MetaResult<()>;

    /// The registry's token signing key (PKCS#8). The first caller's `candidate` is stored;
    /// everyone gets the stored one, so every node signs and verifies with the same key.
    async fn signing_key(&self, candidate: &[u8], now: Millis) -> MetaResult<Vec<u8>>;

    /// Counts one login attempt against `key`, atomically, in a window that starts afresh
    /// once it is `window` old, and returns the window as it now stands.
    async fn count_login_attempt(
        &self,
        key: &str,
        now: Millis,
        window: Millis,
    ) -> MetaResult<AttemptWindow>;
    /// Takes back one counted attempt (it succeeded).
    async fn forgive_login_attempt(&self, key: &str) -> MetaResult<()>;
    /// Forgets windows that started before `before`; returns how many.
    async fn purge_login_attempts(&self, before: Millis) -> MetaResult<u64>;
}
