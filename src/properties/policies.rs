//! IAM policy documents and their conditions: never a panic, whatever the document; accepted
//! documents parse the same however they are laid out; and evaluation agrees with a reference
//! model of what `auth::policy` documents (explicit Deny wins, then any Allow, else denied;
//! `*` and `?` wildcards; actions ignore case, resources and condition values do not).

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{any_text, apply, cases, change, default_cases, json_like};
use crate::auth::policy::{ACTIONS, Policy, Request, is_allowed};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
/// 2026-01-01T00:00:00Z in epoch seconds.
const NOW: u64 = 1_767_225_600;

/// The reference wildcard match: `*` any run of characters, `?` exactly one.
fn wildcard(pattern: &[char], text: &[char]) -> bool {
    // matched[j]: the pattern so far matches text[..j].
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for &p in pattern {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            next[j] = match p {
                '*' => matched[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matched[j - 1],
                c => j > 0 && matched[j - 1] && text[j - 1] == c,
            };
        }
        matched = next;
    }
    matched[text.len()]
}

fn like(pattern: &str, text: &str) -> bool {
    let chars = |s: &str| s.chars().collect::<Vec<_>>();
    wildcard(&chars(pattern), &chars(text))
}

fn like_ignoring_case(pattern: &str, text: &str) -> bool {
    like(&pattern.to_ascii_lowercase(), &text.to_ascii_lowercase())
}

/// A generated statement, rendered to JSON for the parser and read directly by the model.
#[derive(Debug, Clone)]
struct Statement {
    allow: bool,
    /// `None`: no `Principal` (identity policies); `Some(None)`: `"*"`; else user names.
    principal: Option<Option<Vec<String>>>,
    actions: Vec<String>,
    /// `None`: no `Resource` (resource policies: what the policy is attached to).
    resources: Option<Vec<String>>,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
struct Condition {
    /// The operator without `Not` and `IfExists`, e.g. `StringLike`.
    operator: &'static str,
    negated: bool,
    if_exists: bool,
    key: &'static str,
    values: Vec<String>,
}

impl Condition {
    fn name(&self) -> String {
        let base = match (self.operator, self.negated) {
            ("IpAddress", true) => "NotIpAddress".to_string(),
            (operator, true) => operator
                .replacen("String", "StringNot", 1)
                .replacen("Date", "DateNot", 1),
            (operator, false) => operator.to_string(),
        };
        format!("{base}{}", if self.if_exists { "IfExists" } else { "" })
    }

    /// The key's value in `request`; `None` when absent.
    fn actual(&self, request: &Request<'_>) -> Option<String> {
        Some(match self.key.to_ascii_lowercase().as_str() {
            "aws:username" => request.principal?.to_string(),
            "ecr:repository" => request.repository?.to_string(),
            "aws:securetransport" => request.secure_transport.to_string(),
            "aws:sourceip" => request.source_ip.to_canonical().to_string(),
            _ => millis(request.current_time).to_string(),
        })
    }

    fn holds(&self, request: &Request<'_>) -> bool {
        let actual = self.actual(request);
        if self.operator == "Null" {
            return self.values.contains(&actual.is_none().to_string());
        }
        let Some(actual) = actual else {
            return self.if_exists || self.negated;
        };
        let matches = |value: &String| match self.operator {
            "StringEquals" => *value == actual,
            "StringEqualsIgnoreCase" => value.to_lowercase() == actual.to_lowercase(),
            "StringLike" => like(value, &actual),
            "Bool" => value.to_ascii_lowercase() == actual,
            "IpAddress" => in_network(value, actual.parse().unwrap()),
            date => {
                let (time, now) = (date_millis(value), actual.parse::<u128>().unwrap());
                match date {
                    "DateEquals" => now == time,
                    "DateLessThan" => now < time,
                    "DateLessThanEquals" => now <= time,
                    "DateGreaterThan" => now > time,
                    _ => now >= time,
                }
            }
        };
        self.values.iter().any(matches) != self.negated
    }
}

fn millis(time: SystemTime) -> u128 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Condition dates are epoch seconds or the one ISO 8601 form the generator writes.
fn date_millis(value: &str) -> u128 {
    let seconds = match value {
        "2026-01-01T00:00:00Z" | "2026-01-01" => NOW,
        seconds => seconds.parse().unwrap(),
    };
    u128::from(seconds) * 1000
}

/// Whether `address` is in `network` (a CIDR or an address), IPv4-mapped networks and
/// addresses taken as IPv4.
fn in_network(network: &str, address: IpAddr) -> bool {
    let (base, length) = match network.split_once('/') {
        Some((base, length)) => (base, Some(length.parse::<u32>().unwrap())),
        None => (network, None),
    };
    let base: IpAddr = base.parse().unwrap();
    let (base, length) = match (base, length) {
        (IpAddr::V6(v6), None) if v6.to_ipv4_mapped().is_some() => (base.to_canonical(), None),
        (IpAddr::V6(v6), Some(length)) if v6.to_ipv4_mapped().is_some() && length >= 96 => {
            (base.to_canonical(), Some(length - 96))
        }
        _ => (base, length),
    };
    let bits = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => (32, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (128, u128::from(v6)),
    };
    let ((width, base), (address_width, address)) = (bits(base), bits(address.to_canonical()));
    let shift = width - length.unwrap_or(width);
    width == address_width && (shift == 128 || base >> shift == address >> shift)
}

impl Statement {
    fn json(&self) -> Value {
        let mut statement = json!({
            "Effect": if self.allow { "Allow" } else { "Deny" },
            "Action": self.actions,
        });
        match &self.principal {
            None => {}
            Some(None) => statement["Principal"] = json!("*"),
            Some(Some(users)) => statement["Principal"] = json!({ "AWS": users }),
        }
        if let Some(resources) = &self.resources {
            statement["Resource"] = json!(resources);
        }
        if !self.conditions.is_empty() {
            let mut block = serde_json::Map::new();
            for condition in &self.conditions {
                let body = block.entry(condition.name()).or_insert(json!({}));
                body[condition.key] = json!(condition.values);
            }
            statement["Condition"] = Value::Object(block);
        }
        statement
    }

    /// Whether the parser must take this statement, as the module documents.
    fn valid(&self, resource_policy: bool) -> bool {
        let known = |pattern: &String| {
            ACTIONS
                .iter()
                .any(|action| like_ignoring_case(pattern, action))
        };
        !self.actions.is_empty()
            && self.actions.iter().all(known)
            && self.principal.is_some() == resource_policy
            && (resource_policy || self.resources.is_some())
            && self.resources.as_ref().is_none_or(|r| !r.is_empty())
    }

    fn covers(&self, request: &Request<'_>) -> bool {
        let Some(resources) = &self.resources else {
            return true;
        };
        resources.iter().any(|resource| {
            // Where the resource is, and which repositories it names ("*": everything).
            let (here, repositories) = match resource.strip_prefix("arn:") {
                None => (true, resource.as_str()),
                Some(arn) => {
                    let fields: Vec<&str> = arn.splitn(5, ':').collect();
                    let [_, _, region, account, rest] = fields[..] else {
                        unreachable!("the generator writes whole ARNs");
                    };
                    let here = like(region, request.region) && like(account, request.account);
                    let repositories = match rest {
                        "*" => "*",
                        rest => rest.strip_prefix("repository/").unwrap_or(rest),
                    };
                    // `repository/*` names every repository, but not the registry.
                    let everything = rest == "*";
                    if !everything && repositories == "*" {
                        return here && request.repository.is_some();
                    }
                    (here, repositories)
                }
            };
            here && (repositories == "*"
                || request
                    .repository
                    .is_some_and(|name| like(repositories, name)))
        })
    }

    fn matches(&self, request: &Request<'_>) -> bool {
        let names = match (&self.principal, request.principal) {
            (_, None) if self.allow => false,
            (None, _) | (Some(None), _) => true,
            (Some(Some(_)), None) => false,
            (Some(Some(users)), Some(user)) => {
                users.iter().any(|u| u.rsplit('/').next() == Some(user))
            }
        };
        names
            && self
                .actions
                .iter()
                .any(|a| like_ignoring_case(a, request.action))
            && self.covers(request)
            && self.conditions.iter().all(|c| c.holds(request))
    }
}

fn document(statements: &[Statement]) -> String {
    let statements: Vec<Value> = statements.iter().map(Statement::json).collect();
    json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

/// The reference model of `is_allowed`.
fn allowed(policies: &[&[Statement]], public_pull: bool, request: &Request<'_>) -> bool {
    let matching = || {
        policies
            .iter()
            .flat_map(|p| p.iter())
            .filter(|s| s.matches(request))
    };
    !matching().any(|s| !s.allow) && (public_pull || matching().any(|s| s.allow))
}

/// The actions requests mostly ask for, so that statements often name them.
const COMMON_ACTIONS: &[&str] = &[
    "ecr:BatchGetImage",
    "ecr:PutImage",
    "ecr:ListImages",
    "ecr:DescribeRepositories",
    "ecr:GetAuthorizationToken",
];

fn some_action() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        3 => prop::sample::select(COMMON_ACTIONS),
        1 => prop::sample::select(ACTIONS),
    ]
}

fn action_pattern() -> impl Strategy<Value = String> {
    let known = some_action().prop_flat_map(|action| {
        prop_oneof![
            Just(action.to_string()),
            Just(action.to_ascii_lowercase()),
            Just(action.to_ascii_uppercase()),
        ]
    });
    prop_oneof![
        4 => known,
        4 => prop::sample::select(vec![
            "ecr:*", "*", "ecr:Batch*", "ecr:*Image", "ecr:?utImage", "ECR:LIST*",
            "ecr:Get*Policy", "ecr:*Lifecycle*", "e*:*", "ecr:DescribeRepositor??",
        ])
        .prop_map(str::to_string),
        1 => prop::sample::select(vec!["s3:GetObject", "ecr:Nothing", "ecr:", "", "ecr:Put??"])
            .prop_map(str::to_string),
    ]
}

fn resource_pattern() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "*",
        "team/*",
        "team/ap?",
        "app",
        "*/app",
        "Team/*",
        "arn:aws:ecr:us-east-1:123456789012:repository/team/*",
        "arn:aws:ecr:*:*:*",
        "arn:aws:ecr:eu-west-1:*:repository/*",
        "arn:aws:ecr:us-east-1:123456789012:*",
        "arn:aws:ecr:us-*:1234*:repository/app",
        "arn:aws:ecr:*:000000000000:repository/*",
        "arn:*:ecr:us-east-1:123456789012:team/*",
    ])
    .prop_map(str::to_string)
}

fn condition() -> impl Strategy<Value = Condition> {
    let text = (
        prop::sample::select(vec!["StringEquals", "StringEqualsIgnoreCase", "StringLike"]),
        prop::sample::select(vec!["aws:username", "AWS:UserName", "ecr:repository"]),
        prop::sample::select(vec![
            "alice", "Alice", "bob", "team/app", "team/*", "*", "team/ap?",
        ]),
    );
    let text = text.prop_map(|(operator, key, value)| (operator, key, value.to_string()));
    let ip = prop::sample::select(vec![
        "10.0.0.0/8",
        "10.1.2.3",
        "192.0.2.0/24",
        "::ffff:10.0.0.0/104",
        "2001:db8::/32",
        "0.0.0.0/0",
    ])
    .prop_map(|v| ("IpAddress", "aws:SourceIp", v.to_string()));
    let date = (
        prop::sample::select(vec![
            "DateEquals",
            "DateLessThan",
            "DateLessThanEquals",
            "DateGreaterThan",
            "DateGreaterThanEquals",
        ]),
        prop_oneof![
            (NOW - 1..=NOW + 1).prop_map(|s| s.to_string()),
            Just("2026-01-01T00:00:00Z".to_string()),
            Just("2026-01-01".to_string()),
        ],
    )
        .prop_map(|(operator, value)| (operator, "aws:CurrentTime", value));
    let boolean = prop::sample::select(vec!["true", "false", "True"])
        .prop_map(|v| ("Bool", "aws:SecureTransport", v.to_string()));
    let null = (
        prop::sample::select(vec!["aws:username", "ecr:repository", "aws:SourceIp"]),
        prop::sample::select(vec!["true", "false"]),
    )
        .prop_map(|(key, v)| ("Null", key, v.to_string()));
    let one = prop_oneof![3 => text, 1 => ip, 1 => date, 1 => boolean, 1 => null];
    (
        prop::collection::vec(one, 1..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(values, negated, if_exists)| {
            let (operator, key, _) = values[0].clone();
            let has_not_form =
                operator.starts_with("String") || ["IpAddress", "DateEquals"].contains(&operator);
            Condition {
                operator,
                negated: negated && has_not_form,
                if_exists: if_exists && operator != "Null",
                key,
                // Values of the first one's kind only.
                values: values
                    .into_iter()
                    .filter(|(o, k, _)| (*o, *k) == (operator, key))
                    .map(|(_, _, v)| v)
                    .collect(),
            }
        })
}

fn statement(resource_policy: bool) -> impl Strategy<Value = Statement> {
    let principal = prop_oneof![
        Just(None),
        prop::collection::vec(
            prop::sample::select(vec![
                "alice",
                "bob",
                "arn:aws:iam::123456789012:user/team/bob"
            ]),
            1..3
        )
        .prop_map(|users| Some(users.into_iter().map(str::to_string).collect())),
    ];
    let resources = prop::collection::vec(resource_pattern(), 1..3);
    (
        any::<bool>(),
        principal,
        prop::collection::vec(action_pattern(), 1..3),
        match resource_policy {
            true => prop::option::of(resources).boxed(),
            false => resources.prop_map(Some).boxed(),
        },
        prop::collection::vec(condition(), 0..3),
    )
        .prop_map(
            move |(allow, principal, actions, resources, mut conditions)| {
                // One operator on one key holds one list in JSON.
                let mut seen = Vec::new();
                conditions.retain(|c| {
                    let first = !seen.contains(&(c.name(), c.key));
                    seen.push((c.name(), c.key));
                    first
                });
                Statement {
                    allow,
                    principal: resource_policy.then_some(principal),
                    actions,
                    resources,
                    conditions,
                }
            },
        )
}

fn any_request() -> impl Strategy<Value = Request<'static>> {
    let at = prop::sample::select(vec![-1000i64, 0, 500, 1000]);
    (
        prop::sample::select(vec![None, Some("alice"), Some("bob"), Some("Alice")]),
        prop_oneof![9 => some_action(), 1 => Just("ecr:batchgetimage")],
        prop::sample::select(vec![
            None,
            Some("team/app"),
            Some("app"),
            Some("Team/app"),
            Some("x"),
        ]),
        prop::sample::select(vec![
            IpAddr::from([10, 1, 2, 3]),
            IpAddr::from([192, 0, 2, 7]),
            "::ffff:10.1.2.3".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        ]),
        any::<bool>(),
        at,
    )
        .prop_map(
            |(principal, action, repository, source_ip, secure_transport, at)| {
                let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
                Request {
                    principal,
                    action,
                    repository,
                    source_ip,
                    secure_transport,
                    current_time: match at {
                        ..0 => now - Duration::from_millis(at.unsigned_abs()),
                        _ => now + Duration::from_millis(at as u64),
                    },
                    region: REGION,
                    account: ACCOUNT,
                }
            },
        )
}

/// Any JSON, near policies.
fn any_json() -> impl Strategy<Value = Value> {
    let strings = prop_oneof![
        Just("Allow".to_string()),
        Just("Deny".to_string()),
        action_pattern(),
        resource_pattern(),
        Just("2026-01-01T00:00:00Z".to_string()),
        Just("10.0.0.0/8".to_string()),
        Just("::ffff:0:0/200".to_string()),
        Just("true".to_string()),
    ];
    let keys = prop::sample::select(vec![
        "Version",
        "Statement",
        "Sid",
        "Effect",
        "Principal",
        "AWS",
        "Action",
        "NotAction",
        "Resource",
        "Condition",
        "StringLike",
        "StringNotEqualsIfExists",
        "IpAddress",
        "Null",
        "DateLessThan",
        "Bool",
        "aws:username",
        "ecr:repository",
        "aws:SourceIp",
        "aws:CurrentTime",
        "aws:SecureTransport",
    ]);
    json_like(strings, keys)
}

/// Evaluates `policy` against requests of every kind: none may panic.
fn evaluate_everywhere(policy: &Policy, resource_policy: bool) {
    for principal in [None, Some("alice")] {
        for (action, repository) in [
            ("ecr:BatchGetImage", Some("team/app")),
            ("ecr:DescribeRepositories", None),
        ] {
            let request = Request {
                principal,
                action,
                repository,
                source_ip: IpAddr::from([10, 1, 2, 3]),
                secure_transport: true,
                current_time: SystemTime::UNIX_EPOCH + Duration::from_secs(NOW),
                region: REGION,
                account: ACCOUNT,
            };
            for public_pull in [false, true] {
                match resource_policy {
                    true => is_allowed(None, [policy], public_pull, &request),
                    false => is_allowed(Some(policy), [], public_pull, &request),
                };
            }
        }
    }
}

proptest! {
    #![proptest_config(default_cases())]

    #[test]
    fn any_text_never_panics(text in any_text(), resource_policy in any::<bool>()) {
        if let Ok(policy) = Policy::parse(&text, resource_policy) {
            evaluate_everywhere(&policy, resource_policy);
        }
    }

    #[test]
    fn any_json_never_panics(value in any_json(), resource_policy in any::<bool>()) {
        if let Ok(policy) = Policy::parse(&value.to_string(), resource_policy) {
            evaluate_everywhere(&policy, resource_policy);
        }
    }

    #[test]
    fn spoiled_documents_never_panic(
        resource_policy in any::<bool>(),
        statements in prop::collection::vec(statement(true), 1..4),
        changes in prop::collection::vec(change(any_json()), 1..3),
    ) {
        let statements: Vec<Statement> = statements
            .into_iter()
            .map(|mut s| {
                if !resource_policy {
                    s.principal = None;
                }
                s
            })
            .collect();
        let mut document: Value = serde_json::from_str(&document(&statements)).unwrap();
        for change in &changes {
            apply(&mut document, change);
        }
        if let Ok(policy) = Policy::parse(&document.to_string(), resource_policy) {
            evaluate_everywhere(&policy, resource_policy);
        }
    }

    /// Huge and unicode patterns, principals and condition values.
    #[test]
    fn huge_and_strange_strings_never_panic(
        text in prop_oneof![any_text(), "[*?a-z/]{1000,20000}", "\\PC{0,50}"],
        place in 0..5,
    ) {
        let quoted = json!(text);
        let statement = match place {
            0 => format!(r#"{{"Effect":"Allow","Action":{quoted},"Resource":"*"}}"#),
            1 => format!(r#"{{"Effect":"Allow","Action":"ecr:*","Resource":{quoted}}}"#),
            2 => format!(r#"{{"Effect":"Allow","Principal":{{"AWS":{quoted}}},"Action":"ecr:*","Resource":"*"}}"#),
            3 => format!(r#"{{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{{"StringLike":{{"ecr:repository":{quoted}}}}}}}"#),
            _ => format!(r#"{{"Effect":"Deny","Action":"ecr:*","Resource":"*","Condition":{{"DateLessThan":{{"aws:CurrentTime":{quoted}}}}}}}"#),
        };
        let resource_policy = place == 2;
        let text = format!(r#"{{"Statement":[{statement}]}}"#);
        if let Ok(policy) = Policy::parse(&text, resource_policy) {
            evaluate_everywhere(&policy, resource_policy);
        }
    }

    /// Layout and member order mean nothing: an accepted document, written out again, is the
    /// same policy.
    #[test]
    fn accepted_documents_parse_the_same_however_laid_out(
        statements in prop::collection::vec(statement(false), 1..4),
    ) {
        let text = document(&statements);
        if let Ok(policy) = Policy::parse(&text, false) {
            let value: Value = serde_json::from_str(&text).unwrap();
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            prop_assert_eq!(Policy::parse(&pretty, false), Ok(policy));
        }
    }

    /// One condition decides alone: an Allow of everything under it allows a user exactly
    /// when it holds, and a Deny of everything under it denies anyone exactly when it holds.
    #[test]
    fn conditions_hold_as_the_model(
        condition in condition(),
        request in any_request(),
        allow in any::<bool>(),
    ) {
        let statement = Statement {
            allow,
            principal: None,
            actions: vec!["ecr:*".into()],
            resources: Some(vec!["*".into()]),
            conditions: vec![condition.clone()],
        };
        let text = document(std::slice::from_ref(&statement));
        let policy = Policy::parse(&text, false).unwrap();
        let holds = condition.holds(&request);
        let (expected, public_pull) = match allow {
            true => (holds && request.principal.is_some(), false),
            false => (!holds, true),
        };
        prop_assert_eq!(is_allowed(Some(&policy), [], public_pull, &request), expected, "{:?} under {}", request, text);
    }

    /// Identity policies: accepted exactly when valid, and then decided as the model decides.
    #[test]
    fn identity_policies_decide_as_the_model(
        statements in prop::collection::vec(statement(false), 1..4),
        requests in prop::collection::vec(any_request(), 8),
    ) {
        let text = document(&statements);
        let parsed = Policy::parse(&text, false);
        let valid = statements.iter().all(|s| s.valid(false));
        prop_assert_eq!(parsed.is_ok(), valid, "{}: {:?}", text, parsed);
        let Ok(policy) = parsed else { return Ok(()) };
        for request in requests {
            prop_assert_eq!(
                is_allowed(Some(&policy), [], false, &request),
                allowed(&[&statements], false, &request),
                "{:?} under {}", request, text
            );
        }
    }

    /// An identity policy and up to two resource policies together, with or without public
    /// pulls: explicit Deny anywhere wins, then any Allow, else public pulls, else denied.
    #[test]
    fn policies_together_decide_as_the_model(
        identity in prop::option::of(prop::collection::vec(statement(false), 1..3)),
        resources in prop::collection::vec(prop::collection::vec(statement(true), 1..3), 0..3),
        public_pull in any::<bool>(),
        requests in prop::collection::vec(any_request(), 8),
    ) {
        let identity = identity.filter(|s| s.iter().all(|s| s.valid(false)));
        let resources: Vec<Vec<Statement>> = resources
            .into_iter()
            .filter(|s| s.iter().all(|s| s.valid(true)))
            .collect();
        let parse = |statements: &[Statement], resource_policy| {
            Policy::parse(&document(statements), resource_policy).unwrap()
        };
        let identity_policy = identity.as_deref().map(|s| parse(s, false));
        let resource_policies: Vec<Policy> = resources.iter().map(|s| parse(s, true)).collect();
        let mut all: Vec<&[Statement]> = resources.iter().map(Vec::as_slice).collect();
        all.extend(identity.as_deref());
        for request in requests {
            prop_assert_eq!(
                is_allowed(identity_policy.as_ref(), &resource_policies, public_pull, &request),
                allowed(&all, public_pull, &request),
                "{:?}", request
            );
        }
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// The reference wildcard matcher itself, against one that tries every split.
    #[test]
    fn the_reference_wildcard_matcher_is_right(pattern in "[ab*?]{0,6}", text in "[ab]{0,6}") {
        fn naive(p: &[u8], t: &[u8]) -> bool {
            match p.split_first() {
                None => t.is_empty(),
                Some((b'*', rest)) => (0..=t.len()).any(|i| naive(rest, &t[i..])),
                Some((b'?', rest)) => !t.is_empty() && naive(rest, &t[1..]),
                Some((c, rest)) => t.first() == Some(c) && naive(rest, &t[1..]),
            }
        }
        prop_assert_eq!(like(&pattern, &text), naive(pattern.as_bytes(), text.as_bytes()));
    }
}
