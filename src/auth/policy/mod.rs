//! IAM-style policy documents, as ECR takes them: identity policies on users and resource
//! policies on repositories. Evaluation follows IAM: an explicit Deny anywhere wins, then any
//! Allow grants, and nothing allowed means denied. Depends on nothing else in Wharf.
//!
//! Anonymous callers are never allowed by a statement, not even one naming `"*"` (in IAM that
//! means any authenticated identity): only a public repository lets them pull. Denies naming
//! `"*"` do apply to them.
//!
//! Principals (resource policies only): `"*"`, `{"AWS": "*"}`, and in `{"AWS": …}` Wharf user
//! names or IAM user ARNs, `arn:aws:iam::<account>:user/[<path>/]<name>`. Refused: account
//! principals (root ARNs, bare account ids; Wharf has one account), other ARNs (roles,
//! assumed roles, groups, federated users) and other principal types (`Service`, `Federated`,
//! `CanonicalUser`), none of which exist here.
//!
//! Resources: `"*"` (or an ECR ARN whose resource part is `*`) covers everything, including
//! registry-wide actions; repository name patterns and `…:repository/<pattern>` ARNs cover
//! repositories only, however wide the pattern.
//!
//! Action names compare case-insensitively, as in IAM; resources and condition values are
//! case-sensitive. A resource ARN covers only what is in the region and account (registry id)
//! it names, wildcards allowed; a bare repository name or `"*"` is this registry's.
//! Conditions are described in [`conditions`].

mod conditions;

use std::net::IpAddr;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{Map, Value};
use wildmatch::WildMatch;

use self::conditions::Condition;

/// Every action a policy can name: one per operation of the ECR API (the `/v2` endpoints need
/// the first eleven).
pub const ACTIONS: &[&str] = &[
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:BatchDeleteImage",
    "ecr:DescribeImages",
    "ecr:ListImages",
    "ecr:DescribeRepositories",
    "ecr:CreateRepository",
    "ecr:DeleteRepository",
    "ecr:PutImageTagMutability",
    "ecr:PutImageScanningConfiguration",
    "ecr:PutRegistryScanningConfiguration",
    "ecr:GetRegistryScanningConfiguration",
    "ecr:BatchGetRepositoryScanningConfiguration",
    "ecr:StartImageScan",
    "ecr:DescribeImageScanFindings",
    "ecr:DescribeRegistry",
    "ecr:PutReplicationConfiguration",
    "ecr:DescribeImageReplicationStatus",
    "ecr:CreatePullThroughCacheRule",
    "ecr:DescribePullThroughCacheRules",
    "ecr:UpdatePullThroughCacheRule",
    "ecr:DeletePullThroughCacheRule",
    "ecr:ValidatePullThroughCacheRule",
    "ecr:ListImageReferrers",
    "ecr:GetAuthorizationToken",
    "ecr:SetRepositoryPolicy",
    "ecr:GetRepositoryPolicy",
    "ecr:DeleteRepositoryPolicy",
    "ecr:PutRegistryPolicy",
    "ecr:GetRegistryPolicy",
    "ecr:DeleteRegistryPolicy",
    "ecr:TagResource",
    "ecr:UntagResource",
    "ecr:ListTagsForResource",
    "ecr:PutLifecyclePolicy",
    "ecr:GetLifecyclePolicy",
    "ecr:DeleteLifecyclePolicy",
    "ecr:StartLifecyclePolicyPreview",
    "ecr:GetLifecyclePolicyPreview",
];

/// Who asks, for what, on which repository (`None` for registry-wide actions), and the
/// request context conditions are evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The authenticated user; `None` for anonymous callers.
    pub principal: Option<&'a str>,
    pub action: &'a str,
    pub repository: Option<&'a str>,
    /// The client's address (already taken from trusted proxies by the caller). IPv4-mapped
    /// IPv6 addresses compare as IPv4.
    pub source_ip: IpAddr,
    /// Whether the client reached the registry over TLS (aws:SecureTransport).
    pub secure_transport: bool,
    /// aws:CurrentTime.
    pub current_time: SystemTime,
    /// The region and account (registry id) of this registry, which a resource ARN must name
    /// (or match with wildcards) to cover anything here.
    pub region: &'a str,
    pub account: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    effect: Effect,
    /// `None` in identity policies, which apply to their user only.
    principals: Option<Vec<Principal>>,
    /// Case-insensitive patterns.
    actions: Vec<WildMatch>,
    resources: Vec<Resource>,
    conditions: Vec<Condition>,
}

/// What a statement's `Resource` covers. As in IAM, registry-wide actions (the catalog,
/// `ecr:GetAuthorizationToken`, the registry policy…) need `"*"`: a pattern that happens to
/// match every repository, such as `repository/*`, does not grant them. An ARN covers only
/// what is in the region and account it names (wildcards allowed); a bare name or `"*"` is
/// this registry's.
#[derive(Debug, Clone, PartialEq)]
struct Resource {
    /// The ARN's region and account patterns; `None` for a bare name or `"*"`.
    place: Option<(WildMatch, WildMatch)>,
    /// Repositories whose names match the (case-sensitive) pattern; `None` for anything, the
    /// registry as a whole included (`"*"`, or an ARN whose resource part is `*`).
    repositories: Option<WildMatch>,
}

impl Resource {
    /// Whether this covers what `request` acts on: its repository, or with none the registry
    /// as a whole.
    fn covers(&self, request: &Request<'_>) -> bool {
        let here = self.place.as_ref().is_none_or(|(region, account)| {
            region.matches(request.region) && account.matches(request.account)
        });
        here && match (&self.repositories, request.repository) {
            (None, _) => true,
            (Some(pattern), Some(name)) => pattern.matches(name),
            (Some(_), None) => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Principal {
    /// `"*"`: any authenticated user.
    Anyone,
    User(String),
}

// `NotPrincipal`, `NotAction` and `NotResource` are refused by `deny_unknown_fields`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RawPolicy {
    // Accepted for compatibility with AWS documents; nothing depends on them.
    #[serde(default, rename = "Version")]
    _version: Option<String>,
    #[serde(default, rename = "Id")]
    _id: Option<String>,
    statement: OneOrMany<RawStatement>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RawStatement {
    #[serde(default, rename = "Sid")]
    _sid: Option<String>,
    effect: Effect,
    #[serde(default)]
    principal: Option<Value>,
    action: OneOrMany<String>,
    #[serde(default)]
    resource: Option<OneOrMany<String>>,
    #[serde(default)]
    condition: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

impl Policy {
    /// Parses and checks a policy document. `resource_policy` says whether statements must
    /// name a `Principal` (repository policies) or must not (user policies).
    pub fn parse(text: &str, resource_policy: bool) -> Result<Policy, String> {
        let raw: RawPolicy =
            serde_json::from_str(text).map_err(|e| format!("invalid policy document: {e}"))?;
        let statements = raw
            .statement
            .into_vec()
            .into_iter()
            .map(|statement| Statement::parse(statement, resource_policy))
            .collect::<Result<_, _>>()?;
        Ok(Policy { statements })
    }

    /// The effect of this policy on the request: `Some(Deny)`, `Some(Allow)`, or `None` when
    /// no statement matches.
    fn effect(&self, request: &Request<'_>) -> Option<Effect> {
        let mut allowed = None;
        for statement in self.statements.iter().filter(|s| s.matches(request)) {
            if statement.effect == Effect::Deny {
                return Some(Effect::Deny);
            }
            allowed = Some(Effect::Allow);
        }
        allowed
    }
}

/// IAM evaluation: an explicit Deny in any policy wins; otherwise allowed when any policy
/// Allows or `public_pull` is true. `resources` are the resource policies that apply (the
/// repository's and the registry's). Anonymous callers (principal None) are never allowed by a
/// policy statement: only `public_pull` lets them in, and Denies still apply to them.
pub fn is_allowed<'p>(
    identity: Option<&'p Policy>,
    resources: impl IntoIterator<Item = &'p Policy>,
    public_pull: bool,
    request: &Request<'_>,
) -> bool {
    let effects: Vec<Option<Effect>> = identity
        .into_iter()
        .chain(resources)
        .map(|policy| policy.effect(request))
        .collect();
    !effects.contains(&Some(Effect::Deny))
        && (public_pull || effects.contains(&Some(Effect::Allow)))
}

impl Statement {
    fn parse(raw: RawStatement, resource_policy: bool) -> Result<Statement, String> {
        let principals = match (raw.principal, resource_policy) {
            (Some(principal), true) => Some(parse_principals(&principal)?),
            (None, true) => return Err("a repository policy statement needs a Principal".into()),
            (Some(_), false) => {
                return Err("a user policy statement cannot name a Principal".into());
            }
            (None, false) => None,
        };
        let actions = raw
            .action
            .into_vec()
            .iter()
            .map(|action| parse_action(action))
            .collect::<Result<Vec<_>, _>>()?;
        let resources: Vec<_> = match raw.resource {
            Some(resources) => resources
                .into_vec()
                .iter()
                .map(|r| parse_resource(r))
                .collect::<Result<_, _>>()?,
            // A resource policy covers what it is attached to: its repository, or (the
            // registry's) everything.
            None if resource_policy => vec![Resource {
                place: None,
                repositories: None,
            }],
            None => return Err("a user policy statement needs a Resource".into()),
        };
        if actions.is_empty() || resources.is_empty() {
            return Err("a statement needs at least one Action and one Resource".into());
        }
        Ok(Statement {
            effect: raw.effect,
            principals,
            actions,
            resources,
            conditions: conditions::parse(raw.condition.unwrap_or_default())?,
        })
    }

    fn matches(&self, request: &Request<'_>) -> bool {
        self.names(request.principal)
            && self.actions.iter().any(|a| a.matches(request.action))
            && self.resources.iter().any(|r| r.covers(request))
            && self.conditions.iter().all(|c| c.holds(request))
    }

    fn names(&self, principal: Option<&str>) -> bool {
        match (principal, &self.principals) {
            // Only a public repository admits anonymous callers; Denies still reach them.
            (None, _) if self.effect == Effect::Allow => false,
            (_, None) => true,
            (None, Some(principals)) => principals.contains(&Principal::Anyone),
            (Some(user), Some(principals)) => principals.iter().any(|p| match p {
                Principal::Anyone => true,
                Principal::User(name) => name == user,
            }),
        }
    }
}

const ACCEPTED_PRINCIPALS: &str = "Wharf accepts \"*\", {\"AWS\": \"*\"}, and in {\"AWS\": …} \
    user names or IAM user ARNs (arn:aws:iam::<account>:user/<name>)";

fn parse_principals(value: &Value) -> Result<Vec<Principal>, String> {
    let entries = match value {
        Value::String(s) if s == "*" => return Ok(vec![Principal::Anyone]),
        Value::Object(map) => {
            if let Some(kind) = map.keys().find(|k| *k != "AWS") {
                return Err(format!(
                    "{kind:?} principals do not exist in Wharf; {ACCEPTED_PRINCIPALS}"
                ));
            }
            let aws = map.get("AWS").ok_or("Principal needs an \"AWS\" key")?;
            strings(aws).map_err(|e| format!("Principal \"AWS\": {e}"))?
        }
        _ => {
            return Err(format!(
                "unsupported Principal {value}; {ACCEPTED_PRINCIPALS}"
            ));
        }
    };
    if entries.is_empty() {
        return Err("Principal names no one".into());
    }
    entries.iter().map(|entry| parse_principal(entry)).collect()
}

fn parse_principal(entry: &str) -> Result<Principal, String> {
    let refuse = |why: &str| Err(format!("principal {entry:?} {why}; {ACCEPTED_PRINCIPALS}"));
    let account = "names an account, which has no meaning in Wharf: it has a single account";
    if entry == "*" {
        return Ok(Principal::Anyone);
    }
    if entry.len() == 12 && entry.bytes().all(|b| b.is_ascii_digit()) {
        return refuse(account);
    }
    let name = match entry.strip_prefix("arn:") {
        None => entry,
        Some(arn) => match arn.splitn(5, ':').collect::<Vec<_>>()[..] {
            [_, "iam", "", _, "root"] => return refuse(account),
            // Wharf user names have no `/`: the last segment is the name, whatever the path.
            [_, "iam", "", _, resource] if resource.starts_with("user/") => {
                resource.rsplit('/').next().unwrap_or_default()
            }
            _ => return refuse("is not an IAM user ARN (Wharf has no roles or groups)"),
        },
    };
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if valid {
        Ok(Principal::User(name.into()))
    } else {
        refuse("is not a user name (letters, digits and . _ @ -)")
    }
}

fn parse_action(action: &str) -> Result<WildMatch, String> {
    let pattern = WildMatch::new_case_insensitive(action);
    if ACTIONS.iter().any(|known| pattern.matches(known)) {
        Ok(pattern)
    } else {
        Err(format!("action {action:?} matches no ecr action"))
    }
}

/// `"*"`, a repository name pattern, or an ECR ARN ending in `repository/<pattern>` or `*`.
fn parse_resource(resource: &str) -> Result<Resource, String> {
    let Some(arn) = resource.strip_prefix("arn:") else {
        return Ok(Resource {
            place: None,
            repositories: (resource != "*").then(|| WildMatch::new(resource)),
        });
    };
    // arn:<partition>:<service>:<region>:<account>:<resource>
    let fields: Vec<&str> = arn.splitn(5, ':').collect();
    let [_, service, region, account, rest] = fields[..] else {
        return Err(format!("resource {resource:?} is not an ARN"));
    };
    if !["ecr", "*"].contains(&service) {
        return Err(format!(
            "resource {resource:?} is not an ECR ARN: name repositories as \
             arn:aws:ecr:<region>:<account>:repository/<name>, or by name"
        ));
    }
    let repositories = match rest {
        "*" => None,
        rest => Some(WildMatch::new(
            rest.strip_prefix("repository/").unwrap_or(rest),
        )),
    };
    Ok(Resource {
        place: Some((WildMatch::new(region), WildMatch::new(account))),
        repositories,
    })
}

fn strings(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or("expected strings".into())
            })
            .collect(),
        _ => Err("expected a string or a list of strings".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// 2026-01-01T00:00:00Z in epoch seconds.
    pub(super) const NOW: u64 = 1_767_225_600;

    /// A request over TLS from 10.1.2.3 at `NOW`.
    pub(super) fn request<'a>(
        principal: Option<&'a str>,
        action: &'a str,
        repository: Option<&'a str>,
    ) -> Request<'a> {
        Request {
            principal,
            action,
            repository,
            source_ip: IpAddr::from([10, 1, 2, 3]),
            secure_transport: true,
            current_time: SystemTime::UNIX_EPOCH + Duration::from_secs(NOW),
            region: "us-east-1",
            account: "123456789012",
        }
    }

    fn pull(principal: Option<&str>) -> Request<'_> {
        request(principal, "ecr:BatchGetImage", Some("team/app"))
    }

    fn user_policy(text: &str) -> Policy {
        Policy::parse(text, false).unwrap()
    }

    fn repo_policy(text: &str) -> Policy {
        Policy::parse(text, true).unwrap()
    }

    #[test]
    fn explicit_deny_wins_and_nothing_allowed_is_denied() {
        let user = user_policy(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"ecr:*","Resource":"*"},
                {"Effect":"Deny","Action":"ecr:BatchDeleteImage",
                 "Resource":"arn:aws:ecr:*:*:repository/prod/*"}]}"#,
        );
        let allow_all =
            repo_policy(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"}]}"#);
        let delete = request(Some("alice"), "ecr:BatchDeleteImage", Some("prod/app"));
        assert!(is_allowed(Some(&user), None, false, &pull(Some("alice"))));
        assert!(!is_allowed(Some(&user), None, false, &delete));
        assert!(!is_allowed(Some(&user), Some(&allow_all), false, &delete));
        let dev = request(Some("alice"), "ecr:BatchDeleteImage", Some("dev/app"));
        assert!(is_allowed(Some(&user), None, false, &dev));
        assert!(!is_allowed(None, None, false, &pull(Some("alice"))));
    }

    #[test]
    fn star_principal_means_any_authenticated_user() {
        let everything =
            user_policy(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#);
        for principal in [r#""*""#, r#"{"AWS":"*"}"#, r#"{"AWS":["*"]}"#] {
            let repo = repo_policy(&format!(
                r#"{{"Statement":[{{"Effect":"Allow","Principal":{principal},
                    "Action":"ecr:BatchGetImage"}}]}}"#
            ));
            assert!(
                is_allowed(None, Some(&repo), false, &pull(Some("bob"))),
                "{principal}"
            );
            assert!(
                !is_allowed(None, Some(&repo), false, &pull(None)),
                "{principal}"
            );
            assert!(!is_allowed(
                Some(&everything),
                Some(&repo),
                false,
                &pull(None)
            ));
        }
    }

    #[test]
    fn denies_naming_star_reach_anonymous_callers() {
        let deny_all = repo_policy(
            r#"{"Statement":[{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"ecr:*"}]}"#,
        );
        let deny_bob = repo_policy(
            r#"{"Statement":[{"Effect":"Deny","Principal":{"AWS":"bob"},"Action":"ecr:*"}]}"#,
        );
        assert!(!is_allowed(None, Some(&deny_all), true, &pull(None)));
        assert!(!is_allowed(None, Some(&deny_all), true, &pull(Some("bob"))));
        assert!(is_allowed(None, Some(&deny_bob), true, &pull(None)));
        assert!(is_allowed(
            None,
            Some(&deny_bob),
            true,
            &pull(Some("alice"))
        ));
        assert!(!is_allowed(None, Some(&deny_bob), true, &pull(Some("bob"))));
    }

    #[test]
    fn public_pull_admits_anonymous_callers_unless_denied() {
        assert!(is_allowed(None, None, true, &pull(None)));
        assert!(!is_allowed(None, None, false, &pull(None)));
        let office_only = repo_policy(
            r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:*",
                "Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
        );
        for (source, expected) in [
            ("10.1.2.3", true),
            ("::ffff:10.1.2.3", true),
            ("192.0.2.1", false),
            ("2001:db8::1", false),
        ] {
            let mut anonymous = pull(None);
            anonymous.source_ip = source.parse().unwrap();
            assert_eq!(
                is_allowed(None, Some(&office_only), true, &anonymous),
                expected,
                "{source}"
            );
        }
    }

    #[test]
    fn principals_name_users_by_name_or_user_arn_with_any_path() {
        let repo = repo_policy(
            r#"{"Statement":{"Sid":"pull","Effect":"Allow","Principal":{"AWS":[
                "arn:aws:iam::123456789012:user/bob",
                "arn:aws:iam::123456789012:user/team/ops/carol",
                "dave@example.com"]},
                "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}}"#,
        );
        for (who, expected) in [
            ("bob", true),
            ("carol", true),
            ("dave@example.com", true),
            ("ops", false),
            ("Bob", false),
            ("eve", false),
        ] {
            assert_eq!(
                is_allowed(None, Some(&repo), false, &pull(Some(who))),
                expected,
                "{who}"
            );
        }
        let push = request(Some("bob"), "ecr:PutImage", Some("team/app"));
        assert!(!is_allowed(None, Some(&repo), false, &push));
    }

    #[test]
    fn unsupported_principals_are_refused_with_what_wharf_accepts() {
        let account = "single account";
        let not_user = "not an IAM user ARN";
        for (principal, reason) in [
            (r#"{"AWS":"arn:aws:iam::123456789012:root"}"#, account),
            (r#"{"AWS":["bob","123456789012"]}"#, account),
            (
                r#"{"AWS":"arn:aws:iam::123456789012:role/deploy"}"#,
                not_user,
            ),
            (
                r#"{"AWS":"arn:aws:sts::123456789012:assumed-role/deploy/ci"}"#,
                not_user,
            ),
            (
                r#"{"AWS":"arn:aws:iam::123456789012:group/devs"}"#,
                not_user,
            ),
            (
                r#"{"AWS":"arn:aws:sts::123456789012:federated-user/x"}"#,
                not_user,
            ),
            (
                r#"{"AWS":"arn:aws:ecr:us-east-1:123456789012:repository/x"}"#,
                not_user,
            ),
            (
                r#"{"AWS":"arn:aws:iam::123456789012:user/"}"#,
                "not a user name",
            ),
            (r#"{"AWS":"bo*"}"#, "not a user name"),
            (
                r#"{"Service":"ecr.amazonaws.com"}"#,
                "\"Service\" principals",
            ),
            (
                r#"{"Federated":"accounts.google.com"}"#,
                "\"Federated\" principals",
            ),
            (
                r#"{"CanonicalUser":"79a59df900b949e5"}"#,
                "\"CanonicalUser\" principals",
            ),
            (
                r#"{"AWS":"*","Service":"ecr.amazonaws.com"}"#,
                "\"Service\" principals",
            ),
            (r#""bob""#, "unsupported Principal"),
        ] {
            let text = format!(
                r#"{{"Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"ecr:*"}}]}}"#
            );
            let error = Policy::parse(&text, true).unwrap_err();
            assert!(error.contains(reason), "{principal}: {error}");
            assert!(error.contains("Wharf accepts"), "{principal}: {error}");
        }
        for (principal, reason) in [(r#"{"AWS":[]}"#, "names no one"), ("{}", "\"AWS\" key")] {
            let text = format!(
                r#"{{"Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"ecr:*"}}]}}"#
            );
            let error = Policy::parse(&text, true).unwrap_err();
            assert!(error.contains(reason), "{principal}: {error}");
        }
    }

    #[test]
    fn actions_ignore_case_and_resources_do_not() {
        let user = user_policy(
            r#"{"Statement":[{"Effect":"Allow","Action":"ECR:batchget*","Resource":"team/*"}]}"#,
        );
        assert!(is_allowed(Some(&user), None, false, &pull(Some("alice"))));
        let lower = request(Some("alice"), "ecr:batchgetimage", Some("team/app"));
        assert!(is_allowed(Some(&user), None, false, &lower));
        let upper = request(Some("alice"), "ecr:BatchGetImage", Some("TEAM/app"));
        assert!(!is_allowed(Some(&user), None, false, &upper));
        let other = request(Some("alice"), "ecr:PutImage", Some("team/app"));
        assert!(!is_allowed(Some(&user), None, false, &other));
    }

    #[test]
    fn resources_are_patterns_or_ecr_arns_and_registry_wide_actions_need_star() {
        for (resource, repository, expected) in [
            ("*", Some("team/app"), true),
            ("*", None, true),
            ("team/*", Some("team/app"), true),
            ("team/*", Some("team/a/b"), true),
            ("team/*", Some("other/app"), false),
            ("team/*", None, false),
            ("app?", Some("app1"), true),
            ("app?", Some("app"), false),
            ("Team/*", Some("team/app"), false),
            (
                "arn:aws:ecr:us-east-1:123456789012:repository/team/*",
                Some("team/app"),
                true,
            ),
            (
                "arn:aws:ecr:us-east-1:123456789012:repository/team/*",
                Some("app"),
                false,
            ),
            // Every repository, but not the registry itself: registry-wide actions need `*`.
            (
                "arn:aws:ecr:us-east-1:123456789012:repository/*",
                Some("team/app"),
                true,
            ),
            (
                "arn:aws:ecr:us-east-1:123456789012:repository/*",
                None,
                false,
            ),
            ("arn:aws:ecr:*:*:*", Some("team/app"), true),
            ("arn:aws:ecr:*:*:*", None, true),
        ] {
            let user = user_policy(&format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":"ecr:*","Resource":"{resource}"}}]}}"#
            ));
            let action = match repository {
                Some(_) => "ecr:PutImage",
                None => "ecr:DescribeRepositories",
            };
            let asked = request(Some("alice"), action, repository);
            assert_eq!(
                is_allowed(Some(&user), None, false, &asked),
                expected,
                "{resource} {repository:?}"
            );
        }
        let repo = repo_policy(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:ListImages"}]}"#,
        );
        let list = request(Some("bob"), "ecr:ListImages", Some("any/repo"));
        assert!(is_allowed(None, Some(&repo), false, &list));
    }

    #[test]
    fn only_star_resources_grant_registry_wide_actions() {
        let registry_wide = [
            "ecr:PutRegistryPolicy",
            "ecr:GetAuthorizationToken",
            "ecr:DescribeRegistry",
            "ecr:DescribeRepositories",
        ];
        for (resource, expected) in [
            ("*", true),
            ("arn:aws:ecr:*:*:*", true),
            ("arn:aws:ecr:us-east-1:123456789012:*", true),
            ("arn:aws:ecr:*:*:repository/*", false),
            ("team/*", false),
        ] {
            let user = user_policy(&format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":"ecr:*","Resource":"{resource}"}}]}}"#
            ));
            for action in registry_wide {
                let asked = request(Some("alice"), action, None);
                assert_eq!(
                    is_allowed(Some(&user), None, false, &asked),
                    expected,
                    "{resource} {action}"
                );
            }
        }
        // A Deny on every repository leaves registry-wide actions alone, as in IAM.
        let user = user_policy(
            r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"},
                {"Effect":"Deny","Action":"ecr:*","Resource":"arn:aws:ecr:*:*:repository/*"}]}"#,
        );
        let token = request(Some("alice"), "ecr:GetAuthorizationToken", None);
        assert!(is_allowed(Some(&user), None, false, &token));
        assert!(!is_allowed(Some(&user), None, false, &pull(Some("alice"))));
    }

    /// The requests of these tests are in us-east-1, account 123456789012.
    #[test]
    fn arns_cover_only_what_is_in_their_region_and_account() {
        for (resource, expected) in [
            ("arn:aws:ecr:us-east-1:123456789012:repository/team/*", true),
            ("arn:aws:ecr:*:123456789012:repository/team/*", true),
            ("arn:aws:ecr:us-*:*:repository/team/*", true),
            (
                "arn:aws:ecr:eu-west-1:123456789012:repository/team/*",
                false,
            ),
            (
                "arn:aws:ecr:us-east-1:000000000000:repository/team/*",
                false,
            ),
            ("arn:aws:ecr:us-east-1:000000000000:*", false),
            ("team/*", true),
        ] {
            let user = user_policy(&format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":"ecr:*","Resource":"{resource}"}}]}}"#
            ));
            assert_eq!(
                is_allowed(Some(&user), None, false, &pull(Some("alice"))),
                expected,
                "{resource}"
            );
        }
    }

    #[test]
    fn conditions_decide_whether_statements_apply() {
        let user = user_policy(
            r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*",
                "Condition":{"Bool":{"aws:SecureTransport":"true"},
                             "StringLike":{"ecr:repository":"team/*"}}}]}"#,
        );
        assert!(is_allowed(Some(&user), None, false, &pull(Some("alice"))));
        let mut plain = pull(Some("alice"));
        plain.secure_transport = false;
        assert!(!is_allowed(Some(&user), None, false, &plain));
        let elsewhere = request(Some("alice"), "ecr:BatchGetImage", Some("other/app"));
        assert!(!is_allowed(Some(&user), None, false, &elsewhere));
    }

    #[test]
    fn bad_documents_are_refused() {
        for bad in [
            "not json",
            r#"{"Version":"2012-10-17"}"#,
            r#"{"Statement":[],"Extra":1}"#,
        ] {
            assert!(Policy::parse(bad, false).is_err(), "{bad}");
        }
        let user_statements = [
            r#"{"Effect":"Maybe","Action":"ecr:*","Resource":"*"}"#,
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#,
            r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#,
            r#"{"Effect":"Allow","Action":"ecr:*"}"#,
            r#"{"Effect":"Allow","Action":"ecr:*","Resource":[]}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*"}"#,
            r#"{"Effect":"Allow","Action":"ecr:*","NotResource":"prod/*"}"#,
            r#"{"Effect":"Allow","NotAction":"ecr:PutImage","Resource":"*"}"#,
            r#"{"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:s3:::team/*"}"#,
            r#"{"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:ecr"}"#,
            r#"{"Effect":"Allow","Action":"ecr:*","Resource":"*",
                "Condition":{"DateLessThan":{"aws:CurrentTime":"x"}}}"#,
        ];
        let repo_statements = [
            r#"{"Effect":"Allow","Action":"ecr:*"}"#,
            r#"{"Effect":"Allow","NotPrincipal":"*","Action":"ecr:*"}"#,
            r#"{"Effect":"Allow","Principal":"*","NotAction":"ecr:PutImage"}"#,
            r#"{"Effect":"Deny","Principal":"*","Action":"ecr:*",
                "Condition":{"StringEquals":{"aws:PrincipalTag/team":"x"}}}"#,
        ];
        for (statements, resource_policy) in
            [(&user_statements[..], false), (&repo_statements, true)]
        {
            for statement in statements {
                let text = format!(r#"{{"Statement":[{statement}]}}"#);
                assert!(
                    Policy::parse(&text, resource_policy).is_err(),
                    "{statement}"
                );
            }
        }
    }

    #[test]
    fn wildmatch_follows_iam_wildcards() {
        for (pattern, text, expected) in [
            ("*", "", true),
            ("*", "team/app/x", true),
            ("?", "", false),
            ("?", "a", true),
            ("??", "a", false),
            ("", "", true),
            ("", "a", false),
            ("a*", "a", true),
            ("*a*b*", "xaybz", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b", "abab", true),
            ("a*b", "aba", false),
            ("team/*", "team/", true),
            ("Team", "team", false),
        ] {
            assert_eq!(
                WildMatch::new(pattern).matches(text),
                expected,
                "{pattern} {text}"
            );
        }
        assert!(WildMatch::new_case_insensitive("ECR:Batch*").matches("ecr:batchgetimage"));
    }
}
