//! Pull-through cache rules, the upstream credentials they log in with, and the re-check
//! times of tags cached from an upstream.

use async_trait::async_trait;

use super::{MetaResult, Millis};

/// A pull-through cache rule: repositories named `<prefix>/<path>` cache `<path>` of the
/// upstream registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullThroughRule {
    pub prefix: String,
    /// `http(s)://host[:port]`.
    pub upstream_url: String,
    /// The [`UpstreamCredential`] to log in with, if any.
    pub credential_arn: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A login for an upstream registry, named by an ARN as ECR names a Secrets Manager secret.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamCredential {
    pub arn: String,
    pub username: String,
    pub password: String,
    pub created_at: Millis,
}

impl std::fmt::Debug for UpstreamCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamCredential")
            .field("arn", &self.arn)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

#[async_trait]
pub trait PullThroughStore: Send + Sync + 'static {
    /// Records the rule, and its credential if given (replacing one of the same ARN), in one
    /// transaction. Returns false, recording nothing, if a rule has the same prefix.
    async fn create_pull_through_rule(
        &self,
        rule: &PullThroughRule,
        credential: Option<&UpstreamCredential>,
    ) -> MetaResult<bool>;

    /// Every rule, by prefix.
    async fn list_pull_through_rules(&self) -> MetaResult<Vec<PullThroughRule>>;

    /// Points the rule at another credential (or none). Returns the rule as changed, or `None`
    /// if there is no rule with this prefix. A credential no rule names any more is forgotten.
    async fn set_pull_through_credential(
        &self,
        prefix: &str,
        credential_arn: Option<&str>,
        now: Millis,
    ) -> MetaResult<Option<PullThroughRule>>;

    /// Removes the rule, and its credential if no other rule names it. Returns the rule, or
    /// `None` if there was none. What it cached stays.
    async fn delete_pull_through_rule(&self, prefix: &str) -> MetaResult<Option<PullThroughRule>>;

    async fn upstream_credential(&self, arn: &str) -> MetaResult<Option<UpstreamCredential>>;

    /// Records that the cached tag, still at `digest`, was found unchanged upstream at `now`.
    async fn mark_tag_checked(
        &self,
        repository: &str,
        tag: &str,
        digest: &str,
        now: Millis,
    ) -> MetaResult<()>;
}
