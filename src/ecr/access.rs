//! Access operations: `GetAuthorizationToken` (a login password for `docker login -u AWS`),
//! repository and registry policies, and resource tags on repository ARNs.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{self, TagShape};
use super::{Call, EcrError};
use crate::auth::LOGIN_PASSWORD_USER;
use crate::auth::policy::Policy;
use crate::metadata::now_millis;
use crate::oci::RepoName;

/// How long the password of a registry without auth is said to last (it is not checked).
const UNCHECKED_PASSWORD_LIFETIME_MILLIS: i64 = 12 * 60 * 60 * 1000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthorizationToken {
    /// Deprecated in ECR, where it picks registries; here each must be this one.
    #[serde(default)]
    registry_ids: Vec<String>,
}

pub async fn authorization_token(
    call: &Call<'_>,
    input: GetAuthorizationToken,
) -> Result<Value, EcrError> {
    if let Some(other) = input
        .registry_ids
        .iter()
        .find(|id| *id != call.registry_id())
    {
        return Err(EcrError::invalid(format!(
            "registryIds: {other:?} is not this registry's id, {}",
            call.registry_id()
        )));
    }
    let (password, lifetime) = match &call.app.auth {
        Some(auth) => {
            let lifetime = auth.settings().login_password_lifetime.as_millis();
            (
                auth.login_password(&call.user),
                i64::try_from(lifetime).unwrap_or(i64::MAX),
            )
        }
        // Without auth every login succeeds; the password only has to look like one.
        None => (
            uuid::Uuid::new_v4().simple().to_string(),
            UNCHECKED_PASSWORD_LIFETIME_MILLIS,
        ),
    };
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{LOGIN_PASSWORD_USER}:{password}"));
    let mut data = json!({
        "authorizationToken": token,
        "expiresAt": wire::timestamp(now_millis().saturating_add(lifetime)),
    });
    if let Some(url) = &call.base_url {
        data["proxyEndpoint"] = json!(url);
    }
    Ok(json!({ "authorizationData": [data] }))
}

/// A policy text checked as a resource policy.
fn resource_policy(text: &str) -> Result<(), EcrError> {
    Policy::parse(text, true).map(|_| ()).map_err(|e| {
        EcrError::invalid(format!(
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid policy \
             provided': {e}"
        ))
    })
}

fn repository_policy_not_found(call: &Call<'_>, name: &RepoName) -> EcrError {
    EcrError::new(
        "RepositoryPolicyNotFoundException",
        format!(
            "Repository policy does not exist for the repository with name '{name}' in the \
             registry with id '{}'",
            call.registry_id()
        ),
    )
}

fn registry_policy_not_found(call: &Call<'_>) -> EcrError {
    EcrError::new(
        "RegistryPolicyNotFoundException",
        format!(
            "Registry policy does not exist in the registry with id '{}'",
            call.registry_id()
        ),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetRepositoryPolicy {
    repository_name: String,
    policy_text: String,
}

pub async fn set_repository_policy(
    call: &Call<'_>,
    input: SetRepositoryPolicy,
) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    resource_policy(&input.policy_text)?;
    call.registry()
        .set_repository_policy(&name, Some(&input.policy_text))
        .await
        .map_err(|e| EcrError::on_repository(e, call, &name))?;
    Ok(json!({
        "registryId": call.registry_id(),
        "repositoryName": name.as_str(),
        "policyText": input.policy_text,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryPolicyRequest {
    repository_name: String,
}

/// The repository and its policy, or `RepositoryPolicyNotFoundException`.
async fn stored_repository_policy(
    call: &Call<'_>,
    input: &RepositoryPolicyRequest,
) -> Result<(RepoName, String), EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let repository = call
        .registry()
        .repository(&name)
        .await
        .map_err(|e| EcrError::on_repository(e, call, &name))?;
    match repository.policy {
        Some(policy) => Ok((name, policy)),
        None => Err(repository_policy_not_found(call, &name)),
    }
}

pub async fn get_repository_policy(
    call: &Call<'_>,
    input: RepositoryPolicyRequest,
) -> Result<Value, EcrError> {
    let (name, policy) = stored_repository_policy(call, &input).await?;
    Ok(json!({
        "registryId": call.registry_id(),
        "repositoryName": name.as_str(),
        "policyText": policy,
    }))
}

pub async fn delete_repository_policy(
    call: &Call<'_>,
    input: RepositoryPolicyRequest,
) -> Result<Value, EcrError> {
    let (name, policy) = stored_repository_policy(call, &input).await?;
    call.registry()
        .set_repository_policy(&name, None)
        .await
        .map_err(|e| EcrError::on_repository(e, call, &name))?;
    Ok(json!({
        "registryId": call.registry_id(),
        "repositoryName": name.as_str(),
        "policyText": policy,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutRegistryPolicy {
    policy_text: String,
}

pub async fn put_registry_policy(
    call: &Call<'_>,
    input: PutRegistryPolicy,
) -> Result<Value, EcrError> {
    resource_policy(&input.policy_text)?;
    call.app
        .identity
        .set_registry_policy(Some(&input.policy_text))
        .await?;
    Ok(json!({ "registryId": call.registry_id(), "policyText": input.policy_text }))
}

#[derive(Deserialize)]
pub struct RegistryPolicyRequest {}

pub async fn get_registry_policy(
    call: &Call<'_>,
    _: RegistryPolicyRequest,
) -> Result<Value, EcrError> {
    let policy = call.app.identity.registry_policy().await?;
    let policy = policy.ok_or_else(|| registry_policy_not_found(call))?;
    Ok(json!({ "registryId": call.registry_id(), "policyText": policy }))
}

pub async fn delete_registry_policy(
    call: &Call<'_>,
    _: RegistryPolicyRequest,
) -> Result<Value, EcrError> {
    let identity = &call.app.identity;
    let policy = identity.registry_policy().await?;
    let policy = policy.ok_or_else(|| registry_policy_not_found(call))?;
    identity.set_registry_policy(None).await?;
    Ok(json!({ "registryId": call.registry_id(), "policyText": policy }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResource {
    resource_arn: String,
    tags: Vec<TagShape>,
}

pub async fn tag_resource(call: &Call<'_>, input: TagResource) -> Result<Value, EcrError> {
    let name = wire::repository_of_arn(&input.resource_arn, &call.app.ecr)?;
    let tags = wire::resource_tags(input.tags)?;
    call.registry()
        .tag_repository(&name, &tags)
        .await
        .map_err(|e| EcrError::on_repository(e, call, &name))?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResource {
    resource_arn: String,
    tag_keys: Vec<String>,
}

pub async fn untag_resource(call: &Call<'_>, input: UntagResource) -> Result<Value, EcrError> {
    let name = wire::repository_of_arn(&input.resource_arn, &call.app.ecr)?;
    call.registry()
        .untag_repository(&name, &input.tag_keys)
        .await
        .map_err(|e| EcrError::on_repository(e, call, &name))?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResource {
    resource_arn: String,
}

pub async fn list_tags_for_resource(
    call: &Call<'_>,
    input: ListTagsForResource,
) -> Result<Value, EcrError> {
    let name = wire::repository_of_arn(&input.resource_arn, &call.app.ecr)?;
    let tags = call
        .registry()
        .resource_tags(&name)
        .await
        .map_err(|e| EcrError::on_repository(e, call, &name))?;
    let tags: Vec<TagShape> = tags
        .into_iter()
        .map(|tag| TagShape {
            key: tag.key,
            value: tag.value,
        })
        .collect();
    Ok(json!({ "tags": tags }))
}
