//! Replication: copying every image pushed into repositories that a rule's filters match to
//! the rule's destinations, which are remotes (see `remote`). A push queues the copies in its
//! own transaction (see `NewManifest::replicate_to`); the background job (`jobs`) works the
//! queue: blobs the destination lacks, child manifests before an index, then the manifest
//! under its tag. A failed copy is retried with backoff, and given up on (FAILED) after
//! `MAX_ATTEMPTS`. Tag moves replicate; deletions do not, as in ECR.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{Error, MAX_PAGE, Registry, Result, now};
use crate::metadata::{
    Attempt, Destination, ManifestKey, Millis, Page, RemoteRecord, Replication, ReplicationStatus,
    TagStatus,
};
use crate::oci::{Digest, ParsedManifest};
use crate::remote::{Credentials, Remote, RemoteError};
use crate::secrets::{SecretsKey, unseal};
use crate::storage::BlobLocation;

/// How many copies a run takes from the queue at a time.
const BATCH: u32 = 16;
/// Attempts before a copy is given up on; with the backoff below, about two hours.
const MAX_ATTEMPTS: u32 = 12;
/// The wait after the first failure, doubled after each (up to `MAX_BACKOFF`).
const FIRST_BACKOFF: Millis = 5_000;
const MAX_BACKOFF: Millis = 30 * 60 * 1000;
/// ECR's limits on a configuration.
const MAX_RULES: usize = 10;
const MAX_DESTINATIONS: usize = 25;
const MAX_FILTERS: usize = 100;

/// The registry's replication configuration, in ECR's JSON shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplicationConfiguration {
    pub rules: Vec<ReplicationRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplicationRule {
    pub destinations: Vec<ReplicationDestination>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repository_filters: Vec<RepositoryFilter>,
    /// Accepted only as `{"enabled": false}`: deletions are not replicated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_replication: Option<DeleteReplication>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteReplication {
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplicationDestination {
    pub region: String,
    pub registry_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositoryFilter {
    pub filter: String,
    pub filter_type: String,
}

/// What a backfill went through and queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backfill {
    /// Repositories a rule matches.
    pub repositories: u64,
    pub images: u64,
    /// Copies queued (one per image, destination and tag), leaving out those queued before.
    pub queued: u64,
}

impl ReplicationRule {
    /// Whether the rule applies to `repository`: any filter's prefix matches, or it has none.
    fn matches(&self, repository: &str) -> bool {
        self.repository_filters.is_empty()
            || self
                .repository_filters
                .iter()
                .any(|f| repository.starts_with(&f.filter))
    }
}

/// What a remote's password is sealed for (see [`crate::secrets`]): the remote's name.
pub fn remote_secret_purpose(registry_id: &str, region: &str) -> String {
    format!("remote {registry_id} {region}")
}

/// What the client of the remote `stored` logs in with.
fn remote_login(
    key: Option<&SecretsKey>,
    stored: &RemoteRecord,
) -> std::result::Result<Option<Credentials>, RemoteError> {
    let (Some(username), Some(password)) = (&stored.username, &stored.password) else {
        return Ok(None);
    };
    let purpose = remote_secret_purpose(&stored.registry_id, &stored.region);
    let password =
        unseal(key, &purpose, password).map_err(|message| RemoteError::Unauthorized {
            url: stored.url.clone(),
            message,
        })?;
    Ok(Some(Credentials {
        username: username.clone(),
        password,
    }))
}

impl Registry {
    /// The replication configuration (no rules if none was set).
    pub async fn replication_configuration(&self) -> Result<ReplicationConfiguration> {
        let Some(stored) = self.meta.replication_configuration().await? else {
            return Ok(ReplicationConfiguration::default());
        };
        serde_json::from_str(&stored).map_err(|e| {
            Error::Meta(crate::metadata::MetaError::Corrupt(format!(
                "stored replication configuration: {e}"
            )))
        })
    }

    /// Replaces the replication configuration, after checking its shape and that every
    /// destination is a known remote.
    pub async fn put_replication_configuration(
        &self,
        configuration: &ReplicationConfiguration,
    ) -> Result<()> {
        let invalid = |message: String| Err(Error::InvalidReplication(message));
        if configuration.rules.len() > MAX_RULES {
            return invalid(format!("at most {MAX_RULES} rules"));
        }
        for rule in &configuration.rules {
            if rule.destinations.is_empty() || rule.destinations.len() > MAX_DESTINATIONS {
                return invalid(format!(
                    "each rule names 1 to {MAX_DESTINATIONS} destinations"
                ));
            }
            if rule.delete_replication.as_ref().is_some_and(|d| d.enabled) {
                return invalid(
                    "deleteReplication is not supported: deletions are not replicated".into(),
                );
            }
            if rule.repository_filters.len() > MAX_FILTERS {
                return invalid(format!("at most {MAX_FILTERS} repository filters a rule"));
            }
            for filter in &rule.repository_filters {
                if filter.filter_type != "PREFIX_MATCH" {
                    return invalid(format!(
                        "filterType {:?} is not PREFIX_MATCH",
                        filter.filter_type
                    ));
                }
                if !(2..=256).contains(&filter.filter.len()) {
                    return invalid(format!(
                        "filter {:?} must be 2 to 256 characters",
                        filter.filter
                    ));
                }
            }
            for destination in &rule.destinations {
                let known = self
                    .meta
                    .get_remote(&destination.registry_id, &destination.region)
                    .await?;
                if known.is_none() {
                    return invalid(format!(
                        "destination {} {} is not a known remote (wharf remote add)",
                        destination.registry_id, destination.region
                    ));
                }
            }
        }
        let stored = serde_json::to_string(configuration).expect("configuration serializes");
        Ok(self.meta.put_replication_configuration(&stored).await?)
    }

    /// Where pushes into `repository` are copied to.
    pub(super) async fn replication_destinations(
        &self,
        repository: &str,
    ) -> Result<Vec<Destination>> {
        let configuration = self.replication_configuration().await?;
        let destinations: HashSet<Destination> = configuration
            .rules
            .iter()
            .filter(|rule| rule.matches(repository))
            .flat_map(|rule| &rule.destinations)
            .map(|d| Destination {
                registry_id: d.registry_id.clone(),
                region: d.region.clone(),
            })
            .collect();
        let mut destinations: Vec<Destination> = destinations.into_iter().collect();
        destinations.sort();
        Ok(destinations)
    }

    /// Queues copies of every image already in repositories a rule matches (and whose name
    /// starts with `prefix`), as their pushes would have: under each tag, or by digest when
    /// untagged; never again what was queued or copied before. `progress` sees the counts
    /// after each page of images.
    pub async fn backfill_replication(
        &self,
        prefix: Option<&str>,
        progress: &(dyn Fn(&Backfill) + Sync),
    ) -> Result<Backfill> {
        let mut done = Backfill::default();
        let mut after: Option<String> = None;
        loop {
            let page = Page {
                limit: MAX_PAGE,
                after: after.as_deref(),
            };
            let names = self.meta.list_repositories(page).await?;
            for name in &names {
                if prefix.is_some_and(|prefix| !name.starts_with(prefix)) {
                    continue;
                }
                let destinations = self.replication_destinations(name).await?;
                if !destinations.is_empty() {
                    done.repositories += 1;
                    self.backfill_repository(name, &destinations, &mut done, progress)
                        .await?;
                }
            }
            match names.last() {
                Some(last) if names.len() == MAX_PAGE as usize => after = Some(last.clone()),
                _ => return Ok(done),
            }
        }
    }

    async fn backfill_repository(
        &self,
        repository: &str,
        destinations: &[Destination],
        done: &mut Backfill,
        progress: &(dyn Fn(&Backfill) + Sync),
    ) -> Result<()> {
        let mut after: Option<String> = None;
        loop {
            let page = Page {
                limit: MAX_PAGE,
                after: after.as_deref(),
            };
            let images = self
                .meta
                .list_images(repository, TagStatus::Any, page)
                .await?;
            for image in &images {
                done.images += 1;
                done.queued += self
                    .meta
                    .backfill_replications(
                        repository,
                        &image.digest,
                        &image.tags,
                        destinations,
                        now(),
                    )
                    .await?;
            }
            progress(done);
            match images.last() {
                Some(last) if images.len() == MAX_PAGE as usize => {
                    after = Some(last.digest.clone())
                }
                _ => return Ok(()),
            }
        }
    }

    /// The image's replication status at each destination it was queued for.
    pub async fn replication_statuses(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Vec<ReplicationStatus>> {
        Ok(self
            .meta
            .replication_statuses(repository, &digest.to_string())
            .await?)
    }

    /// Works the queue until nothing is due: one run of the background job. Returns how many
    /// copies were made and how many attempts failed.
    pub async fn replicate_due(&self) -> Result<(u64, u64)> {
        let (mut copied, mut failed) = (0, 0);
        loop {
            let due = self.meta.due_replications(now(), BATCH).await?;
            if due.is_empty() {
                return Ok((copied, failed));
            }
            for replication in &due {
                let attempt = match self.replicate(replication).await {
                    Ok(()) => {
                        copied += 1;
                        Attempt::Copied
                    }
                    Err(reason) => {
                        failed += 1;
                        tracing::warn!(
                            repository = replication.repository,
                            digest = replication.digest,
                            registry_id = replication.destination.registry_id,
                            region = replication.destination.region,
                            attempts = replication.attempts + 1,
                            reason,
                            "replication failed"
                        );
                        let retry_at = (replication.attempts + 1 < MAX_ATTEMPTS)
                            .then(|| now() + backoff(replication.attempts));
                        Attempt::Failed { reason, retry_at }
                    }
                };
                self.meta
                    .finish_replication(replication, &attempt, now())
                    .await?;
                let failure = match &attempt {
                    Attempt::Copied => None,
                    Attempt::Failed { reason, .. } => Some(reason.as_str()),
                };
                let details = serde_json::json!({
                    "imageDigest": replication.digest,
                    "imageTag": replication.tag,
                    "destinationRegistryId": replication.destination.registry_id,
                    "destinationRegion": replication.destination.region,
                    "result": if failure.is_some() { "FAILURE" } else { "SUCCESS" },
                    "failure": failure,
                });
                self.audit_own("ReplicateImage", Some(&replication.repository), details);
            }
        }
    }

    /// Copies one image to one destination, or says why it could not.
    async fn replicate(&self, replication: &Replication) -> std::result::Result<(), String> {
        let destination = &replication.destination;
        let stored = self
            .meta
            .get_remote(&destination.registry_id, &destination.region)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the destination is no longer a known remote")?;
        let name = remote_secret_purpose(&stored.registry_id, &stored.region);
        let made_from = format!("{} {}", stored.url, stored.created_at);
        let remote = self
            .clients
            .get(&name, &made_from, || async {
                let key = self.settings.secrets_key.as_deref();
                Remote::new(&stored.url, remote_login(key, &stored)?)
            })
            .await
            .map_err(|e| e.to_string())?;
        let digest: Digest = replication
            .digest
            .parse()
            .map_err(|_| "the queued digest is unreadable")?;
        let repository = replication.repository.as_str();
        let target = Target {
            remote: &remote,
            destination,
            repository,
        };
        let manifest = self.copy_manifest(&target, &digest).await?;
        // A copy retried after its tag moved on must not move the tag back: the image goes by
        // digest, and the copy queued by the later push sets the tag.
        let mut reference = replication.digest.as_str();
        if let Some(tag) = &replication.tag {
            let current = self
                .meta
                .get_manifest(repository, ManifestKey::Tag(tag))
                .await;
            let current = current.map_err(|e| e.to_string())?;
            if current.is_some_and(|current| current.digest == replication.digest) {
                reference = tag;
            }
        }
        remote
            .put_manifest(repository, reference, &manifest.0, manifest.1.into())
            .await
            .map_err(describe)
    }

    /// Makes sure the destination holds everything `digest` references (blobs, and child
    /// manifests by digest), and returns the manifest's media type and bytes.
    async fn copy_manifest(
        &self,
        target: &Target<'_>,
        digest: &Digest,
    ) -> std::result::Result<(String, Vec<u8>), String> {
        let (remote, repository) = (target.remote, target.repository);
        let text = digest.to_string();
        let stored = self
            .meta
            .get_manifest(repository, ManifestKey::Digest(&text))
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the image was deleted before it was replicated")?;
        let parsed = ParsedManifest::parse(&stored.content, Some(&stored.media_type))?;
        for (blob, _) in &parsed.blobs {
            if !remote.has_blob(repository, blob).await.map_err(describe)? {
                self.copy_blob(target, blob).await?;
            }
        }
        for (child, _) in &parsed.manifests {
            if !remote
                .has_manifest(repository, child)
                .await
                .map_err(describe)?
            {
                let (media_type, content) = Box::pin(self.copy_manifest(target, child)).await?;
                remote
                    .put_manifest(repository, &child.to_string(), &media_type, content.into())
                    .await
                    .map_err(describe)?;
            }
        }
        Ok((stored.media_type, stored.content))
    }

    /// Puts one blob of the repository at the destination: mounted from another repository
    /// there that an earlier copy gave it, else streamed.
    async fn copy_blob(
        &self,
        target: &Target<'_>,
        digest: &Digest,
    ) -> std::result::Result<(), String> {
        let (remote, repository) = (target.remote, target.repository);
        let copied = self
            .meta
            .copied_with_blob(&digest.to_string(), target.destination, repository)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(from) = copied
            && remote
                .mount_blob(repository, digest, &from)
                .await
                .map_err(describe)?
        {
            return Ok(());
        }
        let linked = self
            .meta
            .linked_blob(repository, &digest.to_string())
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("blob {digest} is no longer in the repository"))?;
        let location = BlobLocation {
            digest,
            key: linked.storage_key.as_deref(),
        };
        let body = self
            .blobs
            .get(location, None)
            .await
            .map_err(|e| format!("reading blob {digest}: {e}"))?;
        remote
            .push_blob(repository, digest, linked.size, body)
            .await
            .map_err(describe)
    }
}

/// Where one copy goes: a repository of the same name at a destination.
struct Target<'a> {
    remote: &'a Remote,
    destination: &'a Destination,
    repository: &'a str,
}

/// The wait before the next attempt after `failures` failed ones.
fn backoff(failures: u32) -> Millis {
    FIRST_BACKOFF
        .saturating_mul(1 << failures.min(20))
        .min(MAX_BACKOFF)
}

fn describe(error: RemoteError) -> String {
    error.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(0), 5_000);
        assert_eq!(backoff(1), 10_000);
        assert_eq!(backoff(5), 160_000);
        assert_eq!(backoff(11), MAX_BACKOFF);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn rules_match_by_prefix_or_everything() {
        let rule = |filters: &[&str]| ReplicationRule {
            destinations: Vec::new(),
            delete_replication: None,
            repository_filters: filters
                .iter()
                .map(|f| RepositoryFilter {
                    filter: f.to_string(),
                    filter_type: "PREFIX_MATCH".into(),
                })
                .collect(),
        };
        assert!(rule(&[]).matches("anything"));
        assert!(rule(&["prod/", "team"]).matches("prod/app"));
        assert!(rule(&["prod/", "team"]).matches("teamwork"));
        assert!(!rule(&["prod/"]).matches("production"));
    }
}
