//! IAM-style policy documents, as ECR takes them: identity policies on users and resource
//! policies on repositories. Evaluation follows IAM: an explicit Deny anywhere wins, then any
//! Allow grants, and nothing allowed means denied.

use serde::Deserialize;
use serde_json::Value;

/// Every action a policy can name, with the registry operations that need it.
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
];

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
    principals: Option<Vec<String>>,
    actions: Vec<String>,
    resources: Vec<String>,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    operator: String,
    key: String,
    values: Vec<String>,
}

/// Who asks, for what, on which repository (`None` for registry-wide actions).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: Option<&'a str>,
    pub action: &'a str,
    pub repository: Option<&'a str>,
    pub source_ip: &'a str,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    id: Option<String>,
    statement: OneOrMany<RawStatement>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RawStatement {
    #[serde(default)]
    sid: Option<String>,
    effect: Effect,
    #[serde(default)]
    principal: Option<Value>,
    action: OneOrMany<String>,
    #[serde(default)]
    resource: Option<OneOrMany<String>>,
    #[serde(default)]
    condition: Option<serde_json::Map<String, Value>>,
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

const CONDITION_OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "StringNotLike",
];
const CONDITION_KEYS: &[&str] = &["aws:username", "aws:SourceIp", "ecr:repository"];

impl Policy {
    /// Parses and checks a policy document. `resource_policy` says whether statements must
    /// name a `Principal` (repository policies) or must not (user policies).
    pub fn parse(text: &str, resource_policy: bool) -> Result<Policy, String> {
        let raw: RawPolicy =
            serde_json::from_str(text).map_err(|e| format!("invalid policy document: {e}"))?;
        let _ = (raw.version, raw.id);
        let mut statements = Vec::new();
        for raw in raw.statement.into_vec() {
            let _ = raw.sid;
            let principals = match (raw.principal, resource_policy) {
                (Some(principal), true) => Some(parse_principal(&principal)?),
                (None, true) => {
                    return Err("a repository policy statement needs a Principal".into());
                }
                (Some(_), false) => {
                    return Err("a user policy statement cannot name a Principal".into());
                }
                (None, false) => None,
            };
            let actions = raw.action.into_vec();
            for action in &actions {
                if !ACTIONS.iter().any(|known| glob(action, known)) {
                    return Err(format!("action {action:?} matches no ecr action"));
                }
            }
            let resources = match raw.resource {
                Some(resources) => resources.into_vec(),
                None if resource_policy => vec!["*".into()],
                None => return Err("a user policy statement needs a Resource".into()),
            };
            let mut conditions = Vec::new();
            for (operator, body) in raw.condition.unwrap_or_default() {
                if !CONDITION_OPERATORS.contains(&operator.as_str()) {
                    return Err(format!("unsupported condition operator {operator:?}"));
                }
                let Value::Object(body) = body else {
                    return Err(format!("condition {operator} must be an object"));
                };
                for (key, values) in body {
                    if !CONDITION_KEYS.contains(&key.as_str()) {
                        return Err(format!("unsupported condition key {key:?}"));
                    }
                    conditions.push(Condition {
                        operator: operator.clone(),
                        key,
                        values: strings(&values)?,
                    });
                }
            }
            statements.push(Statement {
                effect: raw.effect,
                principals,
                actions,
                resources,
                conditions,
            });
        }
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

/// IAM evaluation over a user's identity policy and a repository's resource policy.
pub fn is_allowed(
    identity: Option<&Policy>,
    resource: Option<&Policy>,
    request: &Request<'_>,
) -> bool {
    let effects = [identity, resource].map(|policy| policy.and_then(|p| p.effect(request)));
    !effects.contains(&Some(Effect::Deny)) && effects.contains(&Some(Effect::Allow))
}

impl Statement {
    fn matches(&self, request: &Request<'_>) -> bool {
        let principal_ok = match (&self.principals, request.principal) {
            (None, _) => true,
            (Some(principals), who) => principals
                .iter()
                .any(|p| p == "*" || Some(p.as_str()) == who),
        };
        principal_ok
            && self.actions.iter().any(|a| glob(a, request.action))
            && self
                .resources
                .iter()
                .any(|r| resource_matches(r, request.repository))
            && self.conditions.iter().all(|c| c.holds(request))
    }
}

impl Condition {
    fn holds(&self, request: &Request<'_>) -> bool {
        let actual = match self.key.as_str() {
            "aws:username" => request.principal.unwrap_or_default(),
            "aws:SourceIp" => request.source_ip,
            _ => request.repository.unwrap_or_default(),
        };
        let positive = |like: bool| {
            self.values
                .iter()
                .any(|v| if like { glob(v, actual) } else { v == actual })
        };
        match self.operator.as_str() {
            "StringEquals" => positive(false),
            "StringLike" => positive(true),
            "StringNotEquals" => !positive(false),
            _ => !positive(true),
        }
    }
}

/// A principal as ECR writes it: `"*"`, `{"AWS": "*"}`, user names or user ARNs
/// (`arn:aws:iam::<account>:user/<name>`).
fn parse_principal(value: &Value) -> Result<Vec<String>, String> {
    let names = match value {
        Value::String(s) if s == "*" => return Ok(vec!["*".into()]),
        Value::Object(map) => strings(map.get("AWS").ok_or("Principal needs an \"AWS\" key")?)?,
        _ => return Err("Principal must be \"*\" or {\"AWS\": …}".into()),
    };
    Ok(names
        .into_iter()
        .map(|name| match name.split_once(":user/") {
            Some((_, user)) => user.to_string(),
            None => name,
        })
        .collect())
}

fn strings(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or("expected strings".to_string())
            })
            .collect(),
        _ => Err("expected a string or a list of strings".into()),
    }
}

/// `"*"`, a repository name pattern, or an ECR ARN ending in `repository/<pattern>`.
fn resource_matches(resource: &str, repository: Option<&str>) -> bool {
    let pattern = match resource.split_once(":repository/") {
        Some((_, pattern)) => pattern,
        None if resource.starts_with("arn:") => resource.rsplit(':').next().unwrap_or_default(),
        None => resource,
    };
    match repository {
        Some(name) => glob(pattern, name),
        None => pattern == "*",
    }
}

/// IAM wildcards: `*` any run of characters, `?` any one. Actions compare case-insensitively,
/// which is harmless for repository names (always lower case).
fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.to_ascii_lowercase(), text.to_ascii_lowercase());
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(
        principal: Option<&'a str>,
        action: &'a str,
        repository: Option<&'a str>,
    ) -> Request<'a> {
        Request {
            principal,
            action,
            repository,
            source_ip: "10.0.0.1",
        }
    }

    #[test]
    fn explicit_deny_wins_and_nothing_allowed_is_denied() {
        let user = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"ecr:*","Resource":"*"},
                {"Effect":"Deny","Action":"ecr:BatchDeleteImage","Resource":"arn:aws:ecr:*:*:repository/prod/*"}]}"#,
            false,
        )
        .unwrap();
        let pull = request(Some("alice"), "ecr:BatchGetImage", Some("prod/app"));
        assert!(is_allowed(Some(&user), None, &pull));
        let delete = request(Some("alice"), "ecr:BatchDeleteImage", Some("prod/app"));
        assert!(!is_allowed(Some(&user), None, &delete));
        assert!(is_allowed(
            Some(&user),
            None,
            &request(Some("alice"), "ecr:BatchDeleteImage", Some("dev/app"))
        ));
        assert!(!is_allowed(None, None, &pull));
    }

    #[test]
    fn resource_policies_name_principals() {
        let repo = Policy::parse(
            r#"{"Statement":{"Sid":"pull","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123:user/bob"]},
                "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}}"#,
            true,
        )
        .unwrap();
        assert!(is_allowed(
            None,
            Some(&repo),
            &request(Some("bob"), "ecr:BatchGetImage", Some("x"))
        ));
        assert!(!is_allowed(
            None,
            Some(&repo),
            &request(Some("eve"), "ecr:BatchGetImage", Some("x"))
        ));
        assert!(!is_allowed(
            None,
            Some(&repo),
            &request(Some("bob"), "ecr:PutImage", Some("x"))
        ));
        assert!(!is_allowed(
            None,
            Some(&repo),
            &request(None, "ecr:BatchGetImage", Some("x"))
        ));
    }

    #[test]
    fn registry_wide_actions_need_a_wildcard_resource() {
        let scoped = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"team/*"}]}"#,
            false,
        )
        .unwrap();
        assert!(!is_allowed(
            Some(&scoped),
            None,
            &request(Some("a"), "ecr:DescribeRepositories", None)
        ));
        assert!(is_allowed(
            Some(&scoped),
            None,
            &request(Some("a"), "ecr:PutImage", Some("team/x"))
        ));
    }

    #[test]
    fn conditions_and_bad_documents() {
        let conditional = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*",
                "Condition":{"StringLike":{"aws:SourceIp":"10.*"}}}]}"#,
            false,
        )
        .unwrap();
        assert!(is_allowed(
            Some(&conditional),
            None,
            &request(Some("a"), "ecr:ListImages", Some("r"))
        ));
        let mut elsewhere = request(Some("a"), "ecr:ListImages", Some("r"));
        elsewhere.source_ip = "192.0.2.1";
        assert!(!is_allowed(Some(&conditional), None, &elsewhere));

        for bad in [
            "not json",
            r#"{"Statement":[{"Effect":"Maybe","Action":"ecr:*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"x"}}}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*"}]}"#,
        ] {
            assert!(Policy::parse(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcards() {
        assert!(glob("ecr:Batch*", "ecr:BatchGetImage"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("team/*", "other/x"));
        assert!(glob("*", ""));
    }
}
