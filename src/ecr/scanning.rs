//! Scanning operations: `PutRegistryScanningConfiguration`, `GetRegistryScanningConfiguration`,
//! `BatchGetRepositoryScanningConfiguration`, `StartImageScan`, `DescribeImageScanFindings`,
//! and the scan summary `DescribeImages` carries. Part of `ecr`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::images::{describe_id, image_ref};
use super::{Call, EcrError, wire};
use crate::oci::RepoName;
use crate::registry::{self, FindingRecord, ScanReport, ScanningConfiguration, ScanningRule};

/// ECR's limits.
const MAX_REPOSITORY_NAMES: usize = 25;
const MAX_FINDINGS_PAGE: u32 = 1000;
const DEFAULT_FINDINGS_PAGE: u32 = 100;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutRegistryScanningConfiguration {
    scan_type: Option<String>,
    #[serde(default)]
    rules: Vec<ScanningRule>,
}

pub async fn put_registry_configuration(
    call: &Call<'_>,
    input: PutRegistryScanningConfiguration,
) -> Result<Value, EcrError> {
    let configuration = ScanningConfiguration {
        scan_type: input.scan_type.unwrap_or_else(|| "BASIC".into()),
        rules: input.rules,
    };
    call.registry()
        .put_scanning_configuration(&configuration)
        .await?;
    Ok(json!({ "registryScanningConfiguration": configuration }))
}

#[derive(Deserialize)]
pub struct GetRegistryScanningConfiguration {}

pub async fn get_registry_configuration(
    call: &Call<'_>,
    _: GetRegistryScanningConfiguration,
) -> Result<Value, EcrError> {
    let configuration = call.registry().scanning_configuration().await?;
    Ok(json!({
        "registryId": call.registry_id(),
        "scanningConfiguration": configuration,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetRepositoryScanningConfiguration {
    repository_names: Vec<String>,
}

pub async fn batch_get_repository_configuration(
    call: &Call<'_>,
    input: BatchGetRepositoryScanningConfiguration,
) -> Result<Value, EcrError> {
    let count = input.repository_names.len();
    if !(1..=MAX_REPOSITORY_NAMES).contains(&count) {
        return Err(EcrError::invalid(format!(
            "Invalid parameter at 'repositoryNames' failed to satisfy constraint: 'Member must \
             have length between 1 and {MAX_REPOSITORY_NAMES}'"
        )));
    }
    let mut configurations = Vec::new();
    let mut failures = Vec::new();
    let mut names = Vec::new();
    for name in &input.repository_names {
        let repo = wire::repository_name(name)?;
        if !names.contains(&repo) {
            names.push(repo);
        }
    }
    for repo in names {
        match call.registry().repository_scanning(&repo).await {
            Ok(scanning) => configurations.push(json!({
                "repositoryArn": call.repository_arn(repo.as_str()),
                "repositoryName": repo.as_str(),
                "scanOnPush": scanning.scan_on_push,
                "scanFrequency": scanning.frequency,
                "appliedScanFilters": scanning.applied_filters,
            })),
            Err(registry::Error::NameUnknown) => failures.push(json!({
                "repositoryName": repo.as_str(),
                "failureCode": "REPOSITORY_NOT_FOUND",
                "failureReason": "REPOSITORY_NOT_FOUND",
            })),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(json!({ "scanningConfigurations": configurations, "failures": failures }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartImageScan {
    repository_name: String,
    image_id: wire::ImageIdentifier,
}

pub async fn start(call: &Call<'_>, input: StartImageScan) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let image = image_ref(&input.image_id).map_err(|problem| EcrError::invalid(problem.reason))?;
    let found = call
        .registry()
        .start_image_scan(&name, &image)
        .await
        .map_err(|e| not_found(e, call, &name, &input.image_id))?;
    Ok(json!({
        "registryId": call.registry_id(),
        "repositoryName": name.as_str(),
        "imageId": image_id(&input.image_id, &found.digest),
        "imageScanStatus": { "status": "IN_PROGRESS", "description": "The scan is queued." },
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeImageScanFindings {
    repository_name: String,
    image_id: wire::ImageIdentifier,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub async fn describe_findings(
    call: &Call<'_>,
    input: DescribeImageScanFindings,
) -> Result<Value, EcrError> {
    let name = wire::repository_name(&input.repository_name)?;
    let image = image_ref(&input.image_id).map_err(|problem| EcrError::invalid(problem.reason))?;
    let limit = match input.max_results {
        None => DEFAULT_FINDINGS_PAGE,
        max_results => wire::page_size(max_results, MAX_FINDINGS_PAGE)?,
    };
    let start: usize = match &input.next_token {
        None => 0,
        Some(token) => wire::token_key(token, |key| key.parse::<usize>().is_ok())?
            .parse()
            .expect("checked"),
    };
    let found = call
        .registry()
        .existing_image(&name, &image)
        .await
        .map_err(|e| not_found(e, call, &name, &input.image_id))?;
    let Some(report) = call
        .registry()
        .image_scan(&name, &found.digest, true)
        .await?
    else {
        return Err(EcrError::new(
            "ScanNotFoundException",
            format!(
                "Image scan does not exist for the image with '{}' in the repository with name \
                 '{name}' in the registry with id '{}'",
                describe_id(&input.image_id),
                call.registry_id()
            ),
        ));
    };
    let end = start
        .saturating_add(limit as usize)
        .min(report.findings.len());
    let page: Vec<Value> = report
        .findings
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(finding)
        .collect();
    let mut output = json!({
        "registryId": call.registry_id(),
        "repositoryName": name.as_str(),
        "imageId": image_id(&input.image_id, &found.digest),
        "imageScanStatus": scan_status(&report),
    });
    if let Some(mut findings) = findings_summary(&report) {
        findings["findings"] = json!(page);
        output["imageScanFindings"] = findings;
    }
    if end < report.findings.len() {
        output["nextToken"] = json!(wire::next_token(&end.to_string()));
    }
    Ok(output)
}

/// The `ImageScanFinding` shape, which `wharf scan --json` prints too.
pub fn finding(finding: &FindingRecord) -> Value {
    let attributes: Vec<Value> = finding
        .attributes()
        .into_iter()
        .map(|(key, value)| json!({ "key": key, "value": value }))
        .collect();
    let mut shape = json!({
        "name": finding.name,
        "description": finding.description,
        "severity": finding.severity,
        "attributes": attributes,
    });
    if let Some(uri) = &finding.uri {
        shape["uri"] = json!(uri);
    }
    shape
}

/// Adds the scan's status and summary to an `ImageDetail`, as `DescribeImages` reports them.
pub(super) fn add_summary(detail: &mut Value, report: &ScanReport) {
    detail["imageScanStatus"] = scan_status(report);
    if let Some(summary) = findings_summary(report) {
        detail["imageScanFindingsSummary"] = summary;
    }
}

fn scan_status(report: &ScanReport) -> Value {
    json!({ "status": report.status, "description": report.description })
}

/// `imageScanCompletedAt`, `vulnerabilitySourceUpdatedAt` and `findingSeverityCounts` of a
/// completed scan.
fn findings_summary(report: &ScanReport) -> Option<Value> {
    if report.status != "COMPLETE" {
        return None;
    }
    let mut summary = json!({ "findingSeverityCounts": report.severity_counts });
    if let Some(at) = report.completed_at {
        summary["imageScanCompletedAt"] = wire::timestamp(at);
    }
    if let Some(at) = report.source_updated_at {
        summary["vulnerabilitySourceUpdatedAt"] = wire::timestamp(at);
    }
    Some(summary)
}

/// The request's image id with the digest filled in.
fn image_id(requested: &wire::ImageIdentifier, digest: &str) -> wire::ImageIdentifier {
    wire::ImageIdentifier {
        image_digest: Some(digest.to_string()),
        image_tag: requested.image_tag.clone(),
    }
}

/// ECR's words for a missing image.
fn not_found(
    e: registry::Error,
    call: &Call<'_>,
    name: &RepoName,
    id: &wire::ImageIdentifier,
) -> EcrError {
    match e {
        registry::Error::ManifestUnknown => EcrError::new(
            "ImageNotFoundException",
            format!(
                "The image with imageId {} does not exist within the repository with name \
                 '{name}' in the registry with id '{}'",
                describe_id(id),
                call.registry_id()
            ),
        ),
        other => EcrError::on_repository(other, call, name),
    }
}
