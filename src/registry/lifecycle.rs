//! Lifecycle policies applied to a repository's images: storing a policy once it validates,
//! previewing what it would expire, and expiring it. The grammar and the choice of images are
//! `crate::lifecycle`'s; this module feeds it the repository's images and acts on the answer
//! through the metadata store. A preview and the run after it see the same images in the same
//! way, so they agree when nothing changed in between.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{Error, MAX_PAGE, Registry, Result};
use crate::lifecycle::{Candidate, Expiry, LifecyclePolicy, evaluate};
use crate::metadata::{Millis, Page, Removal, StoredPreview, TagStatus};
use crate::oci::RepoName;

/// An image a policy expires (or, in a preview, would expire), and by which rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewResult {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: Millis,
    pub rule_priority: u32,
}

/// What one pass over every repository with a policy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifecycleRun {
    pub repositories: u64,
    pub expired: u64,
}

fn parse(text: &str) -> Result<LifecyclePolicy> {
    LifecyclePolicy::parse(text).map_err(|e| Error::LifecyclePolicyInvalid(e.0))
}

impl Registry {
    /// Sets the repository's lifecycle policy, once it validates.
    pub async fn put_lifecycle_policy(&self, repo: &RepoName, text: &str) -> Result<()> {
        parse(text)?;
        match self
            .meta
            .set_lifecycle_policy(repo.as_str(), Some(text))
            .await?
        {
            true => Ok(()),
            false => Err(Error::NameUnknown),
        }
    }

    /// The repository's lifecycle policy text.
    pub async fn lifecycle_policy(&self, repo: &RepoName) -> Result<String> {
        match self.meta.lifecycle_policy(repo.as_str()).await? {
            None => Err(Error::NameUnknown),
            Some(None) => Err(Error::LifecyclePolicyNotFound),
            Some(Some(text)) => Ok(text),
        }
    }

    /// Removes the repository's lifecycle policy and returns what it was.
    pub async fn delete_lifecycle_policy(&self, repo: &RepoName) -> Result<String> {
        let text = self.lifecycle_policy(repo).await?;
        self.meta.set_lifecycle_policy(repo.as_str(), None).await?;
        Ok(text)
    }

    /// Evaluates `text` (or, if `None`, the repository's own policy) at `now` without acting
    /// on it, and keeps the outcome as the repository's last preview.
    pub async fn preview_lifecycle(
        &self,
        repo: &RepoName,
        text: Option<&str>,
        now: Millis,
    ) -> Result<(String, Vec<PreviewResult>)> {
        let text = match text {
            Some(text) => text.to_string(),
            None => self.lifecycle_policy(repo).await?,
        };
        let results = self.evaluate_lifecycle(repo, &parse(&text)?, now).await?;
        let preview = StoredPreview {
            policy: text.clone(),
            results: serde_json::to_string(&results).expect("preview results serialize"),
            created_at: now,
        };
        if !self.meta.save_preview(repo.as_str(), &preview).await? {
            return Err(Error::NameUnknown);
        }
        Ok((text, results))
    }

    /// The repository's last preview: the policy it evaluated and what it would expire.
    pub async fn lifecycle_preview(&self, repo: &RepoName) -> Result<(String, Vec<PreviewResult>)> {
        let Some(preview) = self.meta.preview(repo.as_str()).await? else {
            if self.meta.get_repository(repo.as_str()).await?.is_none() {
                return Err(Error::NameUnknown);
            }
            return Err(Error::LifecyclePreviewNotFound);
        };
        let results = serde_json::from_str(&preview.results).map_err(|e| {
            crate::metadata::MetaError::Corrupt(format!("lifecycle preview of {repo}: {e}"))
        })?;
        Ok((preview.policy, results))
    }

    /// Expires what the repository's policy selects at `now`, each image with its tags, and
    /// returns what went. A repository without a policy expires nothing.
    pub async fn apply_lifecycle(
        &self,
        repo: &RepoName,
        now: Millis,
    ) -> Result<Vec<PreviewResult>> {
        let text = match self.lifecycle_policy(repo).await {
            Ok(text) => text,
            Err(Error::LifecyclePolicyNotFound) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut expired = Vec::new();
        for image in self.evaluate_lifecycle(repo, &parse(&text)?, now).await? {
            let reason = format!("lifecycle policy rule {}", image.rule_priority);
            let removal = self
                .meta
                .expire_image(repo.as_str(), &image.digest, &reason, now)
                .await?;
            // Deleted or listed by an index meanwhile: the next run looks again.
            if removal == Removal::Removed {
                let details = serde_json::json!({
                    "imageDigest": image.digest,
                    "imageTags": image.tags,
                    "rulePriority": image.rule_priority,
                });
                self.audit_own("PolicyExecutionEvent", Some(repo.as_str()), details);
                expired.push(image);
            }
        }
        Ok(expired)
    }

    /// Applies every repository's policy at `now`, reporting each repository done.
    pub async fn apply_all_lifecycles(
        &self,
        now: Millis,
        progress: &(dyn Fn(&str, &[PreviewResult]) + Sync),
    ) -> Result<LifecycleRun> {
        let mut run = LifecycleRun::default();
        let mut after: Option<String> = None;
        loop {
            let page = Page {
                limit: MAX_PAGE,
                after: after.as_deref(),
            };
            let policies = self.meta.lifecycle_policies(page).await?;
            for (name, _) in &policies {
                let Ok(repo) = name.parse::<RepoName>() else {
                    continue;
                };
                let expired = match self.apply_lifecycle(&repo, now).await {
                    Ok(expired) => expired,
                    // Stored before a stricter check, or gone meanwhile: the others still run.
                    Err(e @ (Error::LifecyclePolicyInvalid(_) | Error::NameUnknown)) => {
                        tracing::warn!(repository = %repo, error = %e, "lifecycle policy skipped");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                run.repositories += 1;
                run.expired += expired.len() as u64;
                progress(name, &expired);
            }
            match policies.last() {
                Some((last, _)) if policies.len() == MAX_PAGE as usize => {
                    after = Some(last.clone())
                }
                _ => return Ok(run),
            }
        }
    }

    /// What `policy` expires among the repository's images at `now`. Manifests an index of
    /// the repository lists are parts of that image, never expired on their own.
    async fn evaluate_lifecycle(
        &self,
        repo: &RepoName,
        policy: &LifecyclePolicy,
        now: Millis,
    ) -> Result<Vec<PreviewResult>> {
        self.flush_pulls().await?;
        let indexed: HashSet<String> = self
            .meta
            .indexed_manifests(repo.as_str())
            .await?
            .into_iter()
            .collect();
        let mut images = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = Page {
                limit: MAX_PAGE,
                after: after.as_deref(),
            };
            let listed = self
                .meta
                .list_images(repo.as_str(), TagStatus::Any, page)
                .await?;
            let more = listed.len() == MAX_PAGE as usize;
            after = listed.last().map(|image| image.digest.clone());
            images.extend(
                listed
                    .into_iter()
                    .filter(|image| !indexed.contains(&image.digest))
                    .map(|image| Candidate {
                        digest: image.digest,
                        tags: image.tags,
                        pushed_at: image.pushed_at,
                        last_pulled_at: image.last_pulled_at,
                    }),
            );
            if !more {
                break;
            }
        }
        let by_digest: HashMap<&str, &Candidate> = images
            .iter()
            .map(|image| (image.digest.as_str(), image))
            .collect();
        Ok(evaluate(policy, &images, now)
            .into_iter()
            .filter_map(
                |Expiry {
                     digest,
                     rule_priority,
                 }| {
                    let image = by_digest.get(digest.as_str())?;
                    Some(PreviewResult {
                        tags: image.tags.clone(),
                        pushed_at: image.pushed_at,
                        digest,
                        rule_priority,
                    })
                },
            )
            .collect())
    }
}
