//! Lifecycle policy operations: `PutLifecyclePolicy`, `GetLifecyclePolicy`,
//! `DeleteLifecyclePolicy`, `StartLifecyclePolicyPreview` and `GetLifecyclePolicyPreview`.
//! A preview is evaluated when it is started and kept in the database, so it is `COMPLETE` by
//! the time anyone asks, on any node.

use serde::Deserialize;
use serde_json::{Value, json};

use super::images::ImagesFilter;
use super::wire::{self, ImageIdentifier};
use super::{Call, EcrError};
use crate::metadata::{TagStatus, now_millis};
use crate::oci::RepoName;
use crate::registry::PreviewResult;

/// Largest page of preview results, as in ECR.
const MAX_PREVIEW_PAGE: u32 = 100;

/// ECR's bounds on `lifecyclePolicyText`, in characters.
const POLICY_TEXT_LENGTH: std::ops::RangeInclusive<usize> = 100..=30720;

fn policy_text(text: &str) -> Result<&str, EcrError> {
    let length = text.chars().count();
    if POLICY_TEXT_LENGTH.contains(&length) {
        return Ok(text);
    }
    Err(EcrError::invalid(format!(
        "Invalid parameter at 'lifecyclePolicyText' failed to satisfy constraint: 'Member must \
         have length between {} and {}': {length}",
        POLICY_TEXT_LENGTH.start(),
        POLICY_TEXT_LENGTH.end()
    )))
}

fn answer(call: &Call<'_>, name: &RepoName, text: &str) -> Value {
    json!({
        "registryId": call.registry_id(),
        "repositoryName": name.as_str(),
        "lifecyclePolicyText": text,
    })
}

fn on_repository(call: &Call<'_>, name: &RepoName) -> impl Fn(crate::registry::Error) -> EcrError {
    move |error| match error {
        crate::registry::Error::LifecyclePolicyNotFound => EcrError::new(
            "LifecyclePolicyNotFoundException",
            format!(
                "Lifecycle policy does not exist for the repository with name '{name}' in the \
                 registry with id '{}'",
                call.registry_id()
            ),
        ),
        crate::registry::Error::LifecyclePolicyInvalid(message) => EcrError::invalid(format!(
            "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: \
             'Lifecycle policy validation failure': {message}"
        )),
        other => EcrError::on_repository(other, call, name),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLifecyclePolicy {
    repository_name: String,
    lifecycle_policy_text: String,
}

pub async fn put(call: &Call<'_>, input: PutLifecyclePolicy) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let text = policy_text(&input.lifecycle_policy_text)?;
    call.registry()
        .put_lifecycle_policy(&name, text)
        .await
        .map_err(on_repository(call, &name))?;
    Ok(answer(call, &name, text))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyRequest {
    repository_name: String,
}

pub async fn get(call: &Call<'_>, input: LifecyclePolicyRequest) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let text = call
        .registry()
        .lifecycle_policy(&name)
        .await
        .map_err(on_repository(call, &name))?;
    Ok(answer(call, &name, &text))
}

pub async fn delete(call: &Call<'_>, input: LifecyclePolicyRequest) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let text = call
        .registry()
        .delete_lifecycle_policy(&name)
        .await
        .map_err(on_repository(call, &name))?;
    Ok(answer(call, &name, &text))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartLifecyclePolicyPreview {
    repository_name: String,
    lifecycle_policy_text: Option<String>,
}

pub async fn start_preview(
    call: &Call<'_>,
    input: StartLifecyclePolicyPreview,
) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let text = input
        .lifecycle_policy_text
        .as_deref()
        .map(policy_text)
        .transpose()?;
    let (text, _) = call
        .registry()
        .preview_lifecycle(&name, text, now_millis())
        .await
        .map_err(on_repository(call, &name))?;
    let mut output = answer(call, &name, &text);
    output["status"] = json!("COMPLETE");
    Ok(output)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLifecyclePolicyPreview {
    repository_name: String,
    #[serde(default)]
    image_ids: Vec<ImageIdentifier>,
    next_token: Option<String>,
    max_results: Option<i64>,
    filter: Option<ImagesFilter>,
}

pub async fn get_preview(
    call: &Call<'_>,
    input: GetLifecyclePolicyPreview,
) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    if !input.image_ids.is_empty() && (input.next_token.is_some() || input.max_results.is_some()) {
        return Err(EcrError::invalid(
            "Invalid parameter: imageIds cannot be used with nextToken or maxResults",
        ));
    }
    let limit = wire::page_size(input.max_results, MAX_PREVIEW_PAGE)?;
    let status = ImagesFilter::tag_status(input.filter)?;
    let (text, results) = call
        .registry()
        .lifecycle_preview(&name)
        .await
        .map_err(|error| match error {
            crate::registry::Error::LifecyclePreviewNotFound => EcrError::new(
                "LifecyclePolicyPreviewNotFoundException",
                format!(
                    "There is no dry run for the repository with name '{name}' in the registry \
                     with id '{}'",
                    call.registry_id()
                ),
            ),
            other => EcrError::on_repository(other, call, &name),
        })?;
    let total = results.len();
    let selected: Vec<&PreviewResult> = results
        .iter()
        .filter(|result| match status {
            TagStatus::Any => true,
            TagStatus::Tagged => !result.tags.is_empty(),
            TagStatus::Untagged => result.tags.is_empty(),
        })
        .filter(|result| input.image_ids.is_empty() || named(&input.image_ids, result))
        .collect();
    let start = match &input.next_token {
        None => 0,
        Some(token) => {
            let after = wire::token_key(token, wire::is_digest)?;
            selected
                .iter()
                .position(|result| result.digest == after)
                .map_or(selected.len(), |at| at + 1)
        }
    };
    let page = &selected[start.min(selected.len())..];
    let more = input.image_ids.is_empty() && page.len() > limit as usize;
    let page = if input.image_ids.is_empty() {
        &page[..page.len().min(limit as usize)]
    } else {
        page
    };
    let mut output = answer(call, &name, &text);
    output["status"] = json!("COMPLETE");
    output["previewResults"] = page.iter().map(|result| shape(result)).collect();
    output["summary"] = json!({ "expiringImageTotalCount": total });
    if more && let Some(last) = page.last() {
        output["nextToken"] = json!(wire::next_token(&last.digest));
    }
    Ok(output)
}

/// Whether one of `ids` names the image of `result`, by digest or by one of its tags.
fn named(ids: &[ImageIdentifier], result: &PreviewResult) -> bool {
    ids.iter().any(|id| {
        id.image_digest
            .as_deref()
            .is_none_or(|digest| digest == result.digest)
            && id
                .image_tag
                .as_ref()
                .is_none_or(|tag| result.tags.contains(tag))
            && (id.image_digest.is_some() || id.image_tag.is_some())
    })
}

/// The `LifecyclePolicyPreviewResult` shape.
fn shape(result: &PreviewResult) -> Value {
    let mut shape = json!({
        "imageDigest": result.digest,
        "imagePushedAt": wire::timestamp(result.pushed_at),
        "action": { "type": "EXPIRE" },
        "appliedRulePriority": result.rule_priority,
        "storageClass": "STANDARD",
    });
    if !result.tags.is_empty() {
        shape["imageTags"] = json!(result.tags);
    }
    shape
}
