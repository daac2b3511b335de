//! Replication operations: `PutReplicationConfiguration`, `DescribeRegistry` (which carries
//! the configuration) and `DescribeImageReplicationStatus`. Part of `ecr`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::images::{describe_id, image_ref};
use super::{Call, EcrError, wire};
use crate::registry::ReplicationConfiguration;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutReplicationConfiguration {
    replication_configuration: ReplicationConfiguration,
}

pub async fn put(call: &Call<'_>, input: PutReplicationConfiguration) -> Result<Value, EcrError> {
    call.registry()
        .put_replication_configuration(&input.replication_configuration)
        .await?;
    Ok(json!({ "replicationConfiguration": input.replication_configuration }))
}

#[derive(Deserialize)]
pub struct DescribeRegistry {}

pub async fn describe_registry(call: &Call<'_>, _: DescribeRegistry) -> Result<Value, EcrError> {
    let configuration = call.registry().replication_configuration().await?;
    Ok(json!({
        "registryId": call.registry_id(),
        "replicationConfiguration": configuration,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeImageReplicationStatus {
    repository_name: String,
    image_id: wire::ImageIdentifier,
}

pub async fn describe_status(
    call: &Call<'_>,
    input: DescribeImageReplicationStatus,
) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    call.registry()
        .repository(&name)
        .await
        .map_err(|e| EcrError::on_repository(e, call, &name))?;
    let image = image_ref(&input.image_id).map_err(|problem| EcrError::invalid(problem.reason))?;
    let Ok(found) = call.registry().image(&name, &image).await? else {
        return Err(EcrError::new(
            "ImageNotFoundException",
            format!(
                "The image with imageId {} does not exist within the repository with name \
                 '{name}' in the registry with id '{}'",
                describe_id(&input.image_id),
                call.registry_id()
            ),
        ));
    };
    let digest = found.digest.parse().map_err(|_| {
        EcrError::from(crate::metadata::MetaError::Corrupt(format!(
            "stored image digest {:?}",
            found.digest
        )))
    })?;
    let statuses = call
        .registry()
        .replication_statuses(name.as_str(), &digest)
        .await?;
    let statuses: Vec<Value> = statuses
        .into_iter()
        .map(|status| {
            let mut shape = json!({
                "region": status.destination.region,
                "registryId": status.destination.registry_id,
                "status": status.status,
            });
            if status.status == "FAILED"
                && let Some(failure) = status.failure
            {
                shape["failureCode"] = json!(failure);
            }
            shape
        })
        .collect();
    Ok(json!({
        "repositoryName": name.as_str(),
        "imageId": { "imageDigest": found.digest, "imageTag": input.image_id.image_tag },
        "replicationStatuses": statuses,
    }))
}
