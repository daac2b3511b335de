//! The table of ECR operations Wharf implements: each one's IAM action, what it acts on (and
//! so what its caller must be allowed), the largest body it takes, and the function that runs
//! it. Part of `ecr`; `mod.rs` authenticates and authorizes with what this table says.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    Call, EcrError, access, image_changes, images, layers, lifecycle, pull_through, replication,
    repositories, scanning, wire,
};
use crate::auth::{Need, policy};
use crate::metadata::RegistryIdentity;
use crate::oci::RepoName;
use crate::registry::MAX_MANIFEST_BYTES;

/// The largest body an operation takes: an `UploadLayerPart` carries a part of up to ECR's
/// 20 MiB, base64-encoded; a `PutImage` a manifest as a JSON string, which escaping makes at
/// most three times as long (botocore writes non-ASCII as `\uXXXX`); the rest carry names,
/// digests and policies of a few KiB. Each with room for the members around them.
pub(super) fn body_limit(operation: &str) -> usize {
    const MIB: usize = 1024 * 1024;
    match operation {
        "UploadLayerPart" => 28 * MIB,
        "PutImage" => 3 * MAX_MANIFEST_BYTES + MIB,
        _ => MIB,
    }
}

/// The IAM action an operation is authorized by, for the operations Wharf implements.
pub(super) fn action_of(operation: &str) -> Option<&'static str> {
    policy::ACTIONS
        .iter()
        .find(|action| action.strip_prefix("ecr:") == Some(operation))
        .copied()
}

pub(super) async fn dispatch(
    call: &Call<'_>,
    operation: &str,
    input: Value,
) -> Result<Value, EcrError> {
    match operation {
        "CreateRepository" => run(call, input, repositories::create).await,
        "DescribeRepositories" => run(call, input, repositories::describe).await,
        "DeleteRepository" => run(call, input, repositories::delete).await,
        "PutImageTagMutability" => run(call, input, repositories::put_tag_mutability).await,
        "PutImageScanningConfiguration" => {
            run(call, input, repositories::put_scanning_configuration).await
        }
        "PutRegistryScanningConfiguration" => {
            run(call, input, scanning::put_registry_configuration).await
        }
        "GetRegistryScanningConfiguration" => {
            run(call, input, scanning::get_registry_configuration).await
        }
        "BatchGetRepositoryScanningConfiguration" => {
            run(call, input, scanning::batch_get_repository_configuration).await
        }
        "StartImageScan" => run(call, input, scanning::start).await,
        "DescribeImageScanFindings" => run(call, input, scanning::describe_findings).await,
        "DescribeRegistry" => run(call, input, replication::describe_registry).await,
        "PutReplicationConfiguration" => run(call, input, replication::put).await,
        "DescribeImageReplicationStatus" => run(call, input, replication::describe_status).await,
        "CreatePullThroughCacheRule" => run(call, input, pull_through::create).await,
        "DescribePullThroughCacheRules" => run(call, input, pull_through::describe).await,
        "UpdatePullThroughCacheRule" => run(call, input, pull_through::update).await,
        "DeletePullThroughCacheRule" => run(call, input, pull_through::delete).await,
        "ValidatePullThroughCacheRule" => run(call, input, pull_through::validate).await,
        "ListImages" => run(call, input, images::list).await,
        "DescribeImages" => run(call, input, images::describe).await,
        "BatchGetImage" => run(call, input, images::batch_get).await,
        "BatchDeleteImage" => run(call, input, image_changes::batch_delete).await,
        "PutImage" => run(call, input, image_changes::put).await,
        "ListImageReferrers" => run(call, input, images::list_referrers).await,
        "BatchCheckLayerAvailability" => run(call, input, layers::check_availability).await,
        "GetDownloadUrlForLayer" => run(call, input, layers::download_url).await,
        "InitiateLayerUpload" => run(call, input, layers::initiate_upload).await,
        "UploadLayerPart" => run(call, input, layers::upload_part).await,
        "CompleteLayerUpload" => run(call, input, layers::complete_upload).await,
        "GetAuthorizationToken" => run(call, input, access::authorization_token).await,
        "SetRepositoryPolicy" => run(call, input, access::set_repository_policy).await,
        "GetRepositoryPolicy" => run(call, input, access::get_repository_policy).await,
        "DeleteRepositoryPolicy" => run(call, input, access::delete_repository_policy).await,
        "PutRegistryPolicy" => run(call, input, access::put_registry_policy).await,
        "GetRegistryPolicy" => run(call, input, access::get_registry_policy).await,
        "DeleteRegistryPolicy" => run(call, input, access::delete_registry_policy).await,
        "TagResource" => run(call, input, access::tag_resource).await,
        "UntagResource" => run(call, input, access::untag_resource).await,
        "ListTagsForResource" => run(call, input, access::list_tags_for_resource).await,
        "PutLifecyclePolicy" => run(call, input, lifecycle::put).await,
        "GetLifecyclePolicy" => run(call, input, lifecycle::get).await,
        "DeleteLifecyclePolicy" => run(call, input, lifecycle::delete).await,
        "StartLifecyclePolicyPreview" => run(call, input, lifecycle::start_preview).await,
        "GetLifecyclePolicyPreview" => run(call, input, lifecycle::get_preview).await,
        _ => Err(EcrError::unknown_operation(operation)),
    }
}

/// Reads the operation's input shape, then runs it.
async fn run<I: DeserializeOwned>(
    call: &Call<'_>,
    input: Value,
    operation: impl AsyncFnOnce(&Call<'_>, I) -> Result<Value, EcrError>,
) -> Result<Value, EcrError> {
    let input = serde_json::from_value(input).map_err(|e| EcrError::invalid(e.to_string()))?;
    operation(call, input).await
}

/// What an operation acts on, by the operation alone: which members of its input name the
/// resources its caller must be allowed to act on. (Whatever other members a request
/// carries, its operation ignores them, so they must not choose what is authorized.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// The registry as a whole.
    Registry,
    /// `DescribeRepositories`: each of `repositoryNames` if given, else the registry.
    RepositoryNames,
    /// The repository of the required `resourceArn`.
    ResourceArn,
    /// The repository of the required `repositoryName`.
    RepositoryName,
}

pub(super) fn scope(operation: &str) -> Scope {
    match operation {
        "GetAuthorizationToken"
        | "DescribeRegistry"
        | "PutReplicationConfiguration"
        | "PutRegistryScanningConfiguration"
        | "GetRegistryScanningConfiguration"
        | "CreatePullThroughCacheRule"
        | "DescribePullThroughCacheRules"
        | "UpdatePullThroughCacheRule"
        | "DeletePullThroughCacheRule"
        | "ValidatePullThroughCacheRule"
        | "PutRegistryPolicy"
        | "GetRegistryPolicy"
        | "DeleteRegistryPolicy" => Scope::Registry,
        "DescribeRepositories" | "BatchGetRepositoryScanningConfiguration" => {
            Scope::RepositoryNames
        }
        "TagResource" | "UntagResource" | "ListTagsForResource" => Scope::ResourceArn,
        // Every other operation works in the one repository it names.
        _ => Scope::RepositoryName,
    }
}

/// The repositories a request acts on in its operation's `scope` (`None`: the registry).
pub(super) fn resources_of(
    scope: Scope,
    input: &Value,
    registry: &RegistryIdentity,
) -> Result<Vec<Option<RepoName>>, EcrError> {
    let string = |member: &str| match input.get(member) {
        None | Some(Value::Null) => Err(EcrError::invalid(format!(
            "Invalid parameter: {member} is required"
        ))),
        Some(Value::String(value)) => Ok(value.as_str()),
        Some(_) => Err(EcrError::invalid(format!(
            "Invalid parameter: {member} must be a string"
        ))),
    };
    match scope {
        Scope::Registry => Ok(vec![None]),
        Scope::RepositoryName => Ok(vec![Some(wire::repository_name(string(
            "repositoryName",
        )?)?)]),
        Scope::ResourceArn => Ok(vec![Some(wire::repository_of_arn(
            string("resourceArn")?,
            registry,
        )?)]),
        Scope::RepositoryNames => match input.get("repositoryNames") {
            None | Some(Value::Null) => Ok(vec![None]),
            Some(Value::Array(names)) if names.is_empty() => Err(EcrError::invalid(
                "Invalid parameter at 'repositoryNames' failed to satisfy constraint: 'Member \
                 must have length greater than or equal to 1'",
            )),
            Some(Value::Array(names)) => names
                .iter()
                .map(|name| match name {
                    Value::String(name) => Ok(Some(wire::repository_name(name)?)),
                    _ => Err(EcrError::invalid(
                        "Invalid parameter: repositoryNames must be strings",
                    )),
                })
                .collect(),
            Some(_) => Err(EcrError::invalid(
                "Invalid parameter: repositoryNames must be a list",
            )),
        },
    }
}

/// Every permission a request needs: its action on each resource, and, as in ECR, tagging a
/// repository it creates with tags.
pub(super) fn needs(
    operation: &str,
    action: &'static str,
    resources: &[Option<RepoName>],
    input: &Value,
) -> Vec<Need> {
    let mut needs: Vec<Need> = resources
        .iter()
        .map(|repository| Need {
            repository: repository.clone(),
            action,
        })
        .collect();
    let tags = input.get("tags").and_then(Value::as_array);
    if operation == "CreateRepository" && tags.is_some_and(|tags| !tags.is_empty()) {
        needs.extend(resources.iter().map(|repository| Need {
            repository: repository.clone(),
            action: "ecr:TagResource",
        }));
    }
    needs
}
