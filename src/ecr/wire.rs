//! Shapes and conventions the ECR operations share: repository names and ARNs as ECR checks
//! them, timestamps (epoch seconds), `maxResults`/`nextToken` pagination, and the
//! `Repository` output shape.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Call, EcrError, RegistryIdentity};
use crate::metadata::{Millis, Repository, ResourceTag};
use crate::oci::RepoName;

/// ECR's shortest repository name.
const MIN_NAME: usize = 2;

/// A repository name as ECR takes it: an OCI name of at least two characters.
pub fn repository_name(name: &str) -> Result<RepoName, EcrError> {
    let invalid = || {
        EcrError::invalid(format!(
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy \
             regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*' \
             and be 2 to 256 characters long': {name:?}"
        ))
    };
    if name.len() < MIN_NAME {
        return Err(invalid());
    }
    name.parse().map_err(|_| invalid())
}

/// The repository an ECR repository ARN of this registry names
/// (`arn:aws:ecr:<region>:<registry id>:repository/<name>`); the same name in another region
/// or registry is another resource, which Wharf does not hold.
pub fn repository_of_arn(arn: &str, registry: &RegistryIdentity) -> Result<RepoName, EcrError> {
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", _, "ecr", region, registry_id, resource] = fields[..] else {
        return Err(EcrError::invalid(format!(
            "Invalid parameter at 'resourceArn': {arn:?} is not an ECR repository ARN"
        )));
    };
    let Some(name) = resource.strip_prefix("repository/") else {
        return Err(EcrError::invalid(format!(
            "Invalid parameter at 'resourceArn': {arn:?} does not name a repository"
        )));
    };
    if region != registry.region || registry_id != registry.registry_id {
        return Err(EcrError::invalid(format!(
            "Invalid parameter at 'resourceArn': {arn:?} is not in this registry ({}, region \
             {})",
            registry.registry_id, registry.region
        )));
    }
    repository_name(name)
}

/// A time as the AWS JSON protocol writes it: seconds since the epoch.
pub fn timestamp(millis: Millis) -> Value {
    json!(millis as f64 / 1000.0)
}

/// A page size: `maxResults` if given (from 1 to `max`), else `max`.
pub fn page_size(max_results: Option<i64>, max: u32) -> Result<u32, EcrError> {
    match max_results {
        None => Ok(max),
        Some(n) if n >= 1 && n <= i64::from(max) => Ok(n as u32),
        Some(n) => Err(EcrError::invalid(format!(
            "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must \
             have value between 1 and {max}': {n}"
        ))),
    }
}

/// An opaque `nextToken` for a page that ends at `key`.
pub fn next_token(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

/// The key a `nextToken` from [`next_token`] holds, if it is `valid` (a key this registry
/// could have issued).
pub fn token_key(token: &str, valid: impl Fn(&str) -> bool) -> Result<String, EcrError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|key| valid(key))
        .ok_or_else(|| {
            EcrError::invalid("Invalid parameter at 'nextToken': not a token this registry issued")
        })
}

/// Whether a token key is a digest: where image and referrer pages end.
pub fn is_digest(key: &str) -> bool {
    key.parse::<crate::oci::Digest>().is_ok()
}

/// An image's id as requests and answers carry it: a digest, a tag, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIdentifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
}

/// `{"filterType": "WILDCARD", "filter": "…"}`: a tag pattern of a mutability setting.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExclusionFilter {
    pub filter_type: String,
    pub filter: String,
}

/// A resource tag as ECR spells it, `{"Key": …, "Value": …}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TagShape {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value")]
    pub value: String,
}

/// Checks resource tags as ECR does: keys of 1 to 128 characters, values of at most 256.
pub fn resource_tags(tags: Vec<TagShape>) -> Result<Vec<ResourceTag>, EcrError> {
    tags.into_iter()
        .map(|tag| {
            let key_ok = (1..=128).contains(&tag.key.chars().count());
            if !key_ok || tag.value.chars().count() > 256 {
                return Err(EcrError::new(
                    "InvalidTagParameterException",
                    format!(
                        "tag {:?}: keys are 1 to 128 characters, values at most 256",
                        tag.key
                    ),
                ));
            }
            Ok(ResourceTag {
                key: tag.key,
                value: tag.value,
            })
        })
        .collect()
}

/// The `Repository` shape.
pub fn repository(call: &Call<'_>, repository: &Repository) -> Value {
    let settings = &repository.settings;
    let exclusions: Vec<ExclusionFilter> = settings
        .tag_mutability_exclusions
        .iter()
        .map(|filter| ExclusionFilter {
            filter_type: "WILDCARD".into(),
            filter: filter.clone(),
        })
        .collect();
    let mut encryption = json!({ "encryptionType": settings.encryption_type });
    if let Some(key) = &settings.kms_key {
        encryption["kmsKey"] = json!(key);
    }
    let mut shape = json!({
        "repositoryArn": call.repository_arn(&repository.name),
        "registryId": call.registry_id(),
        "repositoryName": repository.name,
        "repositoryUri": call.repository_uri(&repository.name),
        "createdAt": timestamp(repository.created_at),
        "imageTagMutability": settings.tag_mutability.as_str(),
        "imageScanningConfiguration": { "scanOnPush": settings.scan_on_push },
        "encryptionConfiguration": encryption,
    });
    if !exclusions.is_empty() {
        shape["imageTagMutabilityExclusionFilters"] = json!(exclusions);
    }
    shape
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_arns_name_their_repository_in_this_registry() {
        let registry = RegistryIdentity {
            registry_id: "123456789012".into(),
            region: "eu-west-1".into(),
        };
        let name = repository_of_arn(
            "arn:aws:ecr:eu-west-1:123456789012:repository/team/app",
            &registry,
        );
        assert_eq!(name.unwrap().as_str(), "team/app");
        for bad in [
            "team/app",
            "arn:aws:s3:::bucket/key",
            "arn:aws:ecr:eu-west-1:123456789012:team/app",
            "arn:aws:ecr:eu-west-1:123456789012:repository/Team",
            "arn:aws:ecr:us-east-1:123456789012:repository/team/app",
            "arn:aws:ecr:eu-west-1:000000000000:repository/team/app",
        ] {
            assert!(repository_of_arn(bad, &registry).is_err(), "{bad}");
        }
    }

    #[test]
    fn page_tokens_round_trip_and_reject_what_they_did_not_issue() {
        let key = "team/app\u{0}sha256:abc";
        assert_eq!(token_key(&next_token(key), |_| true).unwrap(), key);
        assert!(token_key("%%%", |_| true).is_err());
        assert!(token_key(&next_token(key), |_| false).is_err());
        assert_eq!(page_size(None, 1000).unwrap(), 1000);
        assert_eq!(page_size(Some(5), 1000).unwrap(), 5);
        assert!(page_size(Some(0), 1000).is_err());
        assert!(page_size(Some(1001), 1000).is_err());
    }
}
