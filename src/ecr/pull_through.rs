//! Pull-through cache rule operations: `CreatePullThroughCacheRule`,
//! `DescribePullThroughCacheRules`, `UpdatePullThroughCacheRule`, `DeletePullThroughCacheRule`
//! and `ValidatePullThroughCacheRule`. Part of `ecr`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Call, EcrError, wire};
use crate::metadata::PullThroughRule;

/// The most rules a page of `DescribePullThroughCacheRules` holds.
const MAX_PAGE: u32 = 1000;

/// ECR's `upstreamRegistry` for the upstreams it knows by name.
fn upstream_registry(url: &str) -> Option<&'static str> {
    let host = url.split_once("://").map_or(url, |(_, host)| host);
    Some(match host {
        "registry-1.docker.io" | "docker.io" | "index.docker.io" => "docker-hub",
        "public.ecr.aws" => "ecr-public",
        "quay.io" => "quay",
        "registry.k8s.io" => "k8s",
        "ghcr.io" => "github-container-registry",
        "registry.gitlab.com" => "gitlab-container-registry",
        "cgr.dev" => "chainguard",
        _ if host.ends_with(".azurecr.io") => "azure-container-registry",
        _ if host.contains(".dkr.ecr.") => "ecr",
        _ => return None,
    })
}

/// The `PullThroughCacheRule` shape, which the create and delete outputs share.
fn rule_shape(call: &Call<'_>, rule: &PullThroughRule) -> Value {
    let mut shape = json!({
        "ecrRepositoryPrefix": rule.prefix,
        "upstreamRegistryUrl": rule.upstream_url,
        "createdAt": wire::timestamp(rule.created_at),
        "updatedAt": wire::timestamp(rule.updated_at),
        "registryId": call.registry_id(),
    });
    if let Some(arn) = &rule.credential_arn {
        shape["credentialArn"] = json!(arn);
    }
    if let Some(name) = upstream_registry(&rule.upstream_url) {
        shape["upstreamRegistry"] = json!(name);
    }
    shape
}

/// Members Wharf has no use for are refused rather than ignored: a caller relying on them
/// would be misled.
fn unsupported(member: &str, given: &Option<String>) -> Result<(), EcrError> {
    match given {
        Some(_) => Err(EcrError::invalid(format!(
            "Invalid parameter: {member} is not supported by this registry"
        ))),
        None => Ok(()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePullThroughCacheRule {
    ecr_repository_prefix: String,
    upstream_registry_url: String,
    upstream_registry: Option<String>,
    credential_arn: Option<String>,
    custom_role_arn: Option<String>,
    upstream_repository_prefix: Option<String>,
}

pub async fn create(call: &Call<'_>, input: CreatePullThroughCacheRule) -> Result<Value, EcrError> {
    unsupported("customRoleArn", &input.custom_role_arn)?;
    unsupported(
        "upstreamRepositoryPrefix",
        &input.upstream_repository_prefix,
    )?;
    // Wharf names the upstream by its URL; a name that says otherwise is a mistake.
    if let Some(named) = &input.upstream_registry
        && upstream_registry(&input.upstream_registry_url) != Some(named.as_str())
    {
        return Err(EcrError::invalid(format!(
            "Invalid parameter: upstreamRegistry {named:?} does not name the registry at {:?}",
            input.upstream_registry_url
        )));
    }
    let rule = call
        .registry()
        .create_pull_through_rule(
            &input.ecr_repository_prefix,
            &input.upstream_registry_url,
            input.credential_arn.as_deref(),
            None,
        )
        .await?;
    Ok(rule_shape(call, &rule))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribePullThroughCacheRules {
    #[serde(default)]
    ecr_repository_prefixes: Vec<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub async fn describe(
    call: &Call<'_>,
    input: DescribePullThroughCacheRules,
) -> Result<Value, EcrError> {
    let limit = wire::page_size(input.max_results, MAX_PAGE)? as usize;
    let after = input
        .next_token
        .as_deref()
        .map(|token| wire::token_key(token, |_| true))
        .transpose()?;
    let rules = call
        .registry()
        .pull_through_rules(&input.ecr_repository_prefixes)
        .await?;
    let remaining: Vec<&PullThroughRule> = rules
        .iter()
        .filter(|rule| {
            after
                .as_deref()
                .is_none_or(|after| rule.prefix.as_str() > after)
        })
        .collect();
    let page = &remaining[..remaining.len().min(limit)];
    let mut output = json!({
        "pullThroughCacheRules": page.iter().map(|rule| rule_shape(call, rule)).collect::<Vec<_>>(),
    });
    if remaining.len() > page.len()
        && let Some(last) = page.last()
    {
        output["nextToken"] = json!(wire::next_token(&last.prefix));
    }
    Ok(output)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePullThroughCacheRule {
    ecr_repository_prefix: String,
    credential_arn: Option<String>,
    custom_role_arn: Option<String>,
}

pub async fn update(call: &Call<'_>, input: UpdatePullThroughCacheRule) -> Result<Value, EcrError> {
    unsupported("customRoleArn", &input.custom_role_arn)?;
    let rule = call
        .registry()
        .update_pull_through_rule(
            &input.ecr_repository_prefix,
            input.credential_arn.as_deref(),
        )
        .await?;
    let mut output = json!({
        "ecrRepositoryPrefix": rule.prefix,
        "registryId": call.registry_id(),
        "updatedAt": wire::timestamp(rule.updated_at),
    });
    if let Some(arn) = &rule.credential_arn {
        output["credentialArn"] = json!(arn);
    }
    Ok(output)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletePullThroughCacheRule {
    ecr_repository_prefix: String,
}

pub async fn delete(call: &Call<'_>, input: DeletePullThroughCacheRule) -> Result<Value, EcrError> {
    let rule = call
        .registry()
        .delete_pull_through_rule(&input.ecr_repository_prefix)
        .await?;
    Ok(rule_shape(call, &rule))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatePullThroughCacheRule {
    ecr_repository_prefix: String,
}

pub async fn validate(
    call: &Call<'_>,
    input: ValidatePullThroughCacheRule,
) -> Result<Value, EcrError> {
    let (rule, failure) = call
        .registry()
        .validate_pull_through_rule(&input.ecr_repository_prefix)
        .await?;
    let mut output = json!({
        "ecrRepositoryPrefix": rule.prefix,
        "registryId": call.registry_id(),
        "upstreamRegistryUrl": rule.upstream_url,
        "isValid": failure.is_none(),
    });
    if let Some(arn) = &rule.credential_arn {
        output["credentialArn"] = json!(arn);
    }
    if let Some(failure) = failure {
        output["failure"] = json!(failure);
    }
    Ok(output)
}
