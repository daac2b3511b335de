//! Pull-through caches: rules that make repositories named `<prefix>/<path>` mirrors of
//! `<path>` in an upstream registry, fetched on first pull (see `cache`). This file keeps the
//! rules (ECR's `CreatePullThroughCacheRule` and kin) and finds the upstream of a repository.
//! Depends on `metadata` for the rules and their credentials and on `remote` for the client.

mod cache;
mod flights;

use std::sync::Arc;

use super::{Error, Registry, Result, now};
use crate::metadata::{PullThroughRule, UpstreamCredential};
use crate::oci::RepoName;
use crate::remote::{Credentials, Remote, RemoteError};
use crate::secrets::{seal, unseal};

/// At most this many rules, as ECR allows.
const MAX_RULES: usize = 50;

/// The hosts Docker Hub answers on, where single-component names live under `library/`.
const DOCKER_HUB_HOSTS: &[&str] = &["registry-1.docker.io", "docker.io", "index.docker.io"];

/// What this node keeps for pull-through caches: the fetches in progress. Nothing another
/// node needs.
#[derive(Default)]
pub struct Upstreams {
    flights: flights::Flights,
}

/// Where a cached repository's content comes from.
pub(super) struct Upstream {
    remote: Arc<Remote>,
    /// The repository's name upstream.
    path: String,
}

/// The ARN the credential of the rule for `prefix` is stored under when it comes with the
/// rule, named as ECR names the Secrets Manager secrets of its rules.
pub fn credential_arn(registry_id: &str, region: &str, prefix: &str) -> String {
    format!("arn:aws:secretsmanager:{region}:{registry_id}:secret:ecr-pullthroughcache/{prefix}")
}

/// `https://host` for a URL given with or without its scheme, without a trailing slash.
pub fn normalize_upstream(url: &str) -> Result<String> {
    let given = url.trim();
    let (scheme, host) = given.split_once("://").unwrap_or(("https", given));
    let host = host.strip_suffix('/').unwrap_or(host);
    let valid = matches!(scheme, "http" | "https")
        && !host.is_empty()
        && !host.contains(['/', '?', '#', ' ', '@']);
    if !valid {
        return Err(Error::InvalidPullThroughRule(format!(
            "upstream registry URL {given:?} is not http(s)://host[:port]"
        )));
    }
    Ok(format!("{scheme}://{host}"))
}

/// The prefix as stored: a repository name of 2 to 30 characters, without a trailing `/`.
fn normalize_prefix(prefix: &str) -> Result<String> {
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    if prefix == "ROOT" {
        return Err(Error::InvalidPullThroughRule(
            "a rule for the whole registry (ROOT) is not supported".into(),
        ));
    }
    if !(2..=30).contains(&prefix.len()) || prefix.parse::<RepoName>().is_err() {
        return Err(Error::InvalidPullThroughRule(format!(
            "ecrRepositoryPrefix {prefix:?} must be a repository name of 2 to 30 characters"
        )));
    }
    Ok(prefix.to_string())
}

fn check_credential_arn(arn: &str) -> Result<()> {
    let name = arn
        .strip_prefix("arn:aws")
        .and_then(|rest| rest.split_once(":secretsmanager:"))
        .and_then(|(_, rest)| rest.split_once(":secret:ecr-pullthroughcache/"));
    match name {
        Some((_, name)) if !name.is_empty() && arn.len() <= 612 => Ok(()),
        _ => Err(Error::InvalidPullThroughRule(format!(
            "credentialArn {arn:?} is not the ARN of a secret named ecr-pullthroughcache/…"
        ))),
    }
}

/// The repository `repo` stands for upstream, by the rule with the longest matching prefix.
fn upstream_path<'r>(
    rules: &'r [PullThroughRule],
    repo: &str,
) -> Option<(&'r PullThroughRule, String)> {
    let rule = rules
        .iter()
        .filter(|rule| {
            repo.strip_prefix(rule.prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|rule| rule.prefix.len())?;
    let path = &repo[rule.prefix.len() + 1..];
    let host = rule
        .upstream_url
        .split_once("://")
        .map_or("", |(_, host)| host);
    let path = if DOCKER_HUB_HOSTS.contains(&host) && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    };
    Some((rule, path))
}

impl Registry {
    /// Creates a rule. `credential`, if given, is stored under `credential_arn`; otherwise
    /// `credential_arn` must name one stored before.
    pub async fn create_pull_through_rule(
        &self,
        prefix: &str,
        upstream_url: &str,
        credential_arn: Option<&str>,
        credential: Option<Credentials>,
    ) -> Result<PullThroughRule> {
        let prefix = normalize_prefix(prefix)?;
        let upstream_url = normalize_upstream(upstream_url)?;
        if let Some(arn) = credential_arn {
            check_credential_arn(arn)?;
        }
        let credential = match (credential_arn, credential) {
            (Some(arn), Some(login)) => Some(UpstreamCredential {
                arn: arn.to_string(),
                username: login.username,
                password: seal(self.settings.secrets_key.as_deref(), arn, &login.password),
                created_at: now(),
            }),
            (Some(arn), None) => {
                self.stored_credential(arn).await?;
                None
            }
            (None, _) => None,
        };
        if self.meta.list_pull_through_rules().await?.len() >= MAX_RULES {
            return Err(Error::TooManyPullThroughRules(MAX_RULES));
        }
        let now = now();
        let rule = PullThroughRule {
            prefix,
            upstream_url,
            credential_arn: credential_arn.map(str::to_string),
            created_at: now,
            updated_at: now,
        };
        if !self
            .meta
            .create_pull_through_rule(&rule, credential.as_ref())
            .await?
        {
            return Err(Error::PullThroughRuleExists(rule.prefix));
        }
        Ok(rule)
    }

    /// Every rule, or those of `prefixes` (each of which must exist).
    pub async fn pull_through_rules(&self, prefixes: &[String]) -> Result<Vec<PullThroughRule>> {
        let rules = self.meta.list_pull_through_rules().await?;
        if prefixes.is_empty() {
            return Ok(rules);
        }
        for prefix in prefixes {
            let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
            if !rules.iter().any(|rule| rule.prefix == prefix) {
                return Err(Error::PullThroughRuleNotFound(prefix.to_string()));
            }
        }
        // In prefix order, each once, however they were asked for: pages follow that order.
        let asked = |rule: &PullThroughRule| {
            prefixes
                .iter()
                .any(|prefix| prefix.strip_suffix('/').unwrap_or(prefix) == rule.prefix)
        };
        Ok(rules.into_iter().filter(asked).collect())
    }

    /// Points a rule at another stored credential, or none.
    pub async fn update_pull_through_rule(
        &self,
        prefix: &str,
        credential_arn: Option<&str>,
    ) -> Result<PullThroughRule> {
        if let Some(arn) = credential_arn {
            check_credential_arn(arn)?;
            self.stored_credential(arn).await?;
        }
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        self.meta
            .set_pull_through_credential(prefix, credential_arn, now())
            .await?
            .ok_or_else(|| Error::PullThroughRuleNotFound(prefix.to_string()))
    }

    /// Deletes a rule; the repositories it filled keep what they cached.
    pub async fn delete_pull_through_rule(&self, prefix: &str) -> Result<PullThroughRule> {
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        self.meta
            .delete_pull_through_rule(prefix)
            .await?
            .ok_or_else(|| Error::PullThroughRuleNotFound(prefix.to_string()))
    }

    /// What `rule` logs in to its upstream with. A credential gone or sealed with a key this
    /// node lacks is the upstream login failing; a database that cannot answer stays that.
    async fn upstream_login(&self, rule: &PullThroughRule) -> Result<Option<Credentials>> {
        let Some(arn) = &rule.credential_arn else {
            return Ok(None);
        };
        let unusable = |message: String| {
            Error::Upstream(RemoteError::Unauthorized {
                url: rule.upstream_url.clone(),
                message,
            })
        };
        let stored = self.meta.upstream_credential(arn).await?;
        let stored =
            stored.ok_or_else(|| unusable(format!("the rule's credential {arn} is gone")))?;
        let key = self.settings.secrets_key.as_deref();
        Ok(Some(Credentials {
            username: stored.username,
            password: unseal(key, arn, &stored.password).map_err(unusable)?,
        }))
    }

    async fn stored_credential(&self, arn: &str) -> Result<UpstreamCredential> {
        self.meta
            .upstream_credential(arn)
            .await?
            .ok_or_else(|| Error::CredentialNotFound(arn.to_string()))
    }

    /// The client for `rule`'s upstream.
    async fn upstream_client(&self, rule: &PullThroughRule) -> Result<Arc<Remote>> {
        let made_from = format!(
            "{} {:?} {}",
            rule.upstream_url, rule.credential_arn, rule.updated_at
        );
        let name = format!("pull-through {}", rule.prefix);
        let remote = self
            .clients
            .get(&name, &made_from, || async {
                Ok::<_, Error>(Remote::new(
                    &rule.upstream_url,
                    self.upstream_login(rule).await?,
                )?)
            })
            .await?;
        Ok(remote)
    }

    /// Whether the rule's upstream answers as a registry and accepts its credentials: the
    /// rule, and why not if it does not.
    pub async fn validate_pull_through_rule(
        &self,
        prefix: &str,
    ) -> Result<(PullThroughRule, Option<String>)> {
        let prefixes = [prefix.to_string()];
        let rule = self.pull_through_rules(&prefixes).await?.remove(0);
        let checked = match self.upstream_client(&rule).await {
            Ok(remote) => remote.check().await.map_err(Error::from),
            Err(e) => Err(e),
        };
        match checked {
            Ok(()) => Ok((rule, None)),
            Err(Error::Upstream(failure)) => Ok((rule, Some(failure.to_string()))),
            Err(e) => Err(e),
        }
    }

    /// The upstream `repo` caches, if a rule covers it.
    pub(super) async fn upstream_of(&self, repo: &RepoName) -> Result<Option<Upstream>> {
        let rules = self.meta.list_pull_through_rules().await?;
        let Some((rule, path)) = upstream_path(&rules, repo.as_str()) else {
            return Ok(None);
        };
        let remote = self.upstream_client(rule).await?;
        Ok(Some(Upstream { remote, path }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prefix: &str, url: &str) -> PullThroughRule {
        PullThroughRule {
            prefix: prefix.into(),
            upstream_url: url.into(),
            credential_arn: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn the_longest_prefix_names_the_upstream_and_docker_hub_gets_library() {
        let rules = [
            rule("hub", "https://registry-1.docker.io"),
            rule("ghcr", "https://ghcr.io"),
            rule("ghcr/special", "http://127.0.0.1:5000"),
        ];
        let path = |repo| upstream_path(&rules, repo).map(|(r, p)| (r.prefix.clone(), p));
        assert_eq!(
            path("hub/nginx"),
            Some(("hub".into(), "library/nginx".into()))
        );
        assert_eq!(
            path("hub/bitnami/redis"),
            Some(("hub".into(), "bitnami/redis".into()))
        );
        assert_eq!(
            path("ghcr/org/app"),
            Some(("ghcr".into(), "org/app".into()))
        );
        assert_eq!(path("ghcr/app"), Some(("ghcr".into(), "app".into())));
        assert_eq!(
            path("ghcr/special/app"),
            Some(("ghcr/special".into(), "app".into()))
        );
        assert_eq!(path("hub"), None);
        assert_eq!(path("hubble/app"), None);
    }

    #[test]
    fn prefixes_urls_and_credential_arns_are_checked() {
        assert_eq!(normalize_prefix("hub/").unwrap(), "hub");
        for bad in [
            "h",
            "ROOT",
            "Hub",
            "a//b",
            "thirty-one-characters-long-name",
        ] {
            assert!(normalize_prefix(bad).is_err(), "{bad}");
        }
        assert_eq!(normalize_upstream("ghcr.io").unwrap(), "https://ghcr.io");
        assert_eq!(
            normalize_upstream("http://127.0.0.1:5000/").unwrap(),
            "http://127.0.0.1:5000"
        );
        for bad in ["ftp://host", "https://", "https://host/path"] {
            assert!(normalize_upstream(bad).is_err(), "{bad}");
        }
        let arn = credential_arn("123456789012", "us-east-1", "hub");
        assert!(check_credential_arn(&arn).is_ok());
        assert!(check_credential_arn("arn:aws:secretsmanager:us-east-1:1:secret:other").is_err());
    }
}
