//! Repository operations: `CreateRepository`, `DescribeRepositories`, `DeleteRepository`,
//! `PutImageTagMutability`, `PutImageScanningConfiguration`, `DescribeRegistry`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{self, ExclusionFilter, TagShape};
use super::{Call, EcrError};
use crate::metadata::{RepositorySettings, TagMutability};
use crate::oci::RepoName;
use crate::registry::MAX_PAGE;

/// Most exclusion filters a repository's mutability setting may carry, as in ECR.
const MAX_EXCLUSION_FILTERS: usize = 5;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRepository {
    repository_name: String,
    #[serde(default)]
    tags: Vec<TagShape>,
    image_tag_mutability: Option<String>,
    #[serde(default)]
    image_tag_mutability_exclusion_filters: Vec<ExclusionFilter>,
    image_scanning_configuration: Option<ScanningConfiguration>,
    encryption_configuration: Option<EncryptionConfiguration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanningConfiguration {
    #[serde(default)]
    scan_on_push: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionConfiguration {
    encryption_type: String,
    kms_key: Option<String>,
}

pub async fn create(call: &Call<'_>, input: CreateRepository) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let (tag_mutability, tag_mutability_exclusions) = tag_mutability(
        input.image_tag_mutability.as_deref(),
        input.image_tag_mutability_exclusion_filters,
    )?;
    let (encryption_type, kms_key) = match input.encryption_configuration {
        None => ("AES256".to_string(), None),
        Some(EncryptionConfiguration {
            encryption_type,
            kms_key,
        }) => match encryption_type.as_str() {
            "AES256" if kms_key.is_some() => {
                return Err(EcrError::invalid(
                    "Invalid parameter: a kmsKey is only taken with KMS encryption",
                ));
            }
            "AES256" | "KMS" | "KMS_DSSE" => (encryption_type, kms_key),
            other => {
                return Err(EcrError::invalid(format!(
                    "Invalid parameter at 'encryptionType': {other:?} is not AES256, KMS or \
                     KMS_DSSE"
                )));
            }
        },
    };
    let settings = RepositorySettings {
        tag_mutability,
        tag_mutability_exclusions,
        scan_on_push: input
            .image_scanning_configuration
            .is_some_and(|c| c.scan_on_push),
        encryption_type,
        kms_key,
    };
    let tags = wire::resource_tags(input.tags)?;
    let repository = call
        .registry()
        .create_repository(&name, settings, &tags)
        .await
        .map_err(|e| EcrError::on_repository(e, call, &name))?;
    Ok(json!({ "repository": wire::repository(call, &repository) }))
}

/// A mutability setting and its exclusion filters, checked as ECR checks them: filters come
/// with (and only with) the `*_WITH_EXCLUSION` settings.
fn tag_mutability(
    name: Option<&str>,
    filters: Vec<ExclusionFilter>,
) -> Result<(TagMutability, Vec<String>), EcrError> {
    let mutability = match name {
        None => TagMutability::Mutable,
        Some(name) => TagMutability::parse(name).ok_or_else(|| {
            EcrError::invalid(format!(
                "Invalid parameter at 'imageTagMutability': {name:?} is not one of MUTABLE, \
                 IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION"
            ))
        })?,
    };
    let with_exclusion = matches!(
        mutability,
        TagMutability::ImmutableWithExclusion | TagMutability::MutableWithExclusion
    );
    if with_exclusion && !(1..=MAX_EXCLUSION_FILTERS).contains(&filters.len()) {
        return Err(EcrError::invalid(format!(
            "Invalid parameter: {} needs 1 to {MAX_EXCLUSION_FILTERS} \
             imageTagMutabilityExclusionFilters",
            mutability.as_str()
        )));
    }
    if !with_exclusion && !filters.is_empty() {
        return Err(EcrError::invalid(format!(
            "Invalid parameter: imageTagMutabilityExclusionFilters are only taken with \
             IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION, not {}",
            mutability.as_str()
        )));
    }
    let patterns = filters
        .into_iter()
        .map(|f| {
            let valid = f.filter_type == "WILDCARD"
                && (1..=128).contains(&f.filter.len())
                && f.filter
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._*-".contains(&b));
            if valid {
                Ok(f.filter)
            } else {
                Err(EcrError::invalid(format!(
                    "Invalid parameter: exclusion filter {:?} of type {:?}: filters are WILDCARD \
                     patterns of 1 to 128 letters, digits and . _ - *",
                    f.filter, f.filter_type
                )))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((mutability, patterns))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRepositories {
    /// At least one when given (the front door has checked, and authorized each).
    repository_names: Option<Vec<String>>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub async fn describe(call: &Call<'_>, input: DescribeRepositories) -> Result<Value, EcrError> {
    if let Some(names) = &input.repository_names {
        if input.next_token.is_some() || input.max_results.is_some() {
            return Err(EcrError::invalid(
                "Invalid parameter: maxResults and nextToken cannot be used with \
                 repositoryNames",
            ));
        }
        let mut repositories = Vec::with_capacity(names.len());
        for name in names {
            let name = wire::repository_name(name)?;
            let repository = call
                .registry()
                .repository(&name)
                .await
                .map_err(|e| EcrError::on_repository(e, call, &name))?;
            repositories.push(wire::repository(call, &repository));
        }
        return Ok(json!({ "repositories": repositories }));
    }
    let limit = wire::page_size(input.max_results, MAX_PAGE)?;
    let after = input
        .next_token
        .as_deref()
        .map(|token| wire::token_key(token, |key| key.parse::<RepoName>().is_ok()))
        .transpose()?;
    let (repositories, more) = call
        .registry()
        .describe_repositories(limit, after.as_deref())
        .await?;
    let mut output = json!({
        "repositories": repositories
            .iter()
            .map(|r| wire::repository(call, r))
            .collect::<Vec<_>>(),
    });
    if more && let Some(last) = repositories.last() {
        output["nextToken"] = json!(wire::next_token(&last.name));
    }
    Ok(output)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRepository {
    repository_name: String,
    #[serde(default)]
    force: bool,
}

pub async fn delete(call: &Call<'_>, input: DeleteRepository) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let repository = call
        .registry()
        .delete_repository(&name, input.force)
        .await
        .map_err(|e| EcrError::on_repository(e, call, &name))?;
    Ok(json!({ "repository": wire::repository(call, &repository) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageTagMutability {
    repository_name: String,
    image_tag_mutability: String,
    #[serde(default)]
    image_tag_mutability_exclusion_filters: Vec<ExclusionFilter>,
}

pub async fn put_tag_mutability(
    call: &Call<'_>,
    input: PutImageTagMutability,
) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let (mutability, exclusions) = tag_mutability(
        Some(&input.image_tag_mutability),
        input.image_tag_mutability_exclusion_filters.clone(),
    )?;
    call.registry()
        .set_tag_mutability(&name, mutability, &exclusions)
        .await
        .map_err(|e| EcrError::on_repository(e, call, &name))?;
    let mut output = json!({
        "registryId": call.registry_id(),
        "repositoryName": name.as_str(),
        "imageTagMutability": mutability.as_str(),
    });
    if !input.image_tag_mutability_exclusion_filters.is_empty() {
        output["imageTagMutabilityExclusionFilters"] =
            json!(input.image_tag_mutability_exclusion_filters);
    }
    Ok(output)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageScanningConfiguration {
    repository_name: String,
    image_scanning_configuration: ScanningConfiguration,
}

pub async fn put_scanning_configuration(
    call: &Call<'_>,
    input: PutImageScanningConfiguration,
) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let scan_on_push = input.image_scanning_configuration.scan_on_push;
    call.registry()
        .set_scan_on_push(&name, scan_on_push)
        .await
        .map_err(|e| EcrError::on_repository(e, call, &name))?;
    Ok(json!({
        "registryId": call.registry_id(),
        "repositoryName": name.as_str(),
        "imageScanningConfiguration": { "scanOnPush": scan_on_push },
    }))
}
