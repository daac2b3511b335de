//! The lifecycle policy grammar: the JSON text of ECR's `PutLifecyclePolicy`, parsed and
//! checked as the Amazon ECR User Guide describes it, in "Lifecycle policy properties"
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html>)
//! and the evaluation rules of
//! <https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html>.
//!
//! Wharf has one storage class, so of ECR's archive features only `"storageClass":
//! "standard"` (ECR's default) is accepted; the `transition` action and the
//! `sinceImageTransitioned` count are refused. ECR allows `sinceImagePulled` only with
//! `transition`; with nothing to transition to, Wharf takes it with `expire`.

use std::fmt::Display;

use serde_json::{Map, Value};

/// ECR: "There is a maximum limit of four wildcards (`*`) per string."
const MAX_WILDCARDS: usize = 4;

/// Why ECR's archive features are refused.
const NO_ARCHIVE: &str = "Wharf has no archive storage class";

/// A valid lifecycle policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecyclePolicy {
    /// Sorted by priority, lowest (the first to apply) first.
    rules: Vec<Rule>,
}

/// One rule of a policy: which images it selects and which of those it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `rulePriority`, unique within the policy: lower numbers apply first.
    pub priority: u32,
    pub description: Option<String>,
    pub selection: Selection,
}

/// A rule's `selection`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub tags: TagSelection,
    pub count: Count,
}

/// Which images a rule selects by their tags: `tagStatus` with its lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagSelection {
    /// Images with a tag, where every prefix starts one of the image's tags and every pattern
    /// matches one of them. A parsed rule has exactly one of the lists non-empty.
    Tagged {
        prefixes: Vec<String>,
        patterns: Vec<String>,
    },
    /// Images without tags.
    Untagged,
    /// Every image.
    Any,
}

/// Which of the selected images a rule expires: `countType` with `countNumber`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// `imageCountMoreThan`: all but the newest this many, by push time.
    MoreThan(u32),
    /// `sinceImagePushed`: those pushed more than this many days ago.
    SincePushed { days: u32 },
    /// `sinceImagePulled`: those last pulled (if never, pushed) more than this many days ago.
    SincePulled { days: u32 },
}

/// Why a text is not a valid lifecycle policy. The message names the rule and the member at
/// fault, e.g. `rule 2 (rulePriority 5): selection.tagPrefixList must not be empty`; the ECR
/// API puts it where ECR says "Lifecycle policy validation failure: …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPolicy(pub String);

impl LifecyclePolicy {
    /// Parses and validates a policy text.
    pub fn parse(text: &str) -> Result<LifecyclePolicy, InvalidPolicy> {
        let document: Value = serde_json::from_str(text)
            .map_err(|e| InvalidPolicy(format!("the policy is not valid JSON: {e}")))?;
        let policy = Object::root(&document, "the policy")?;
        policy.only(&["rules"])?;
        let rules = match policy.members.get("rules") {
            None => return policy.fail("rules is required"),
            Some(Value::Array(rules)) if rules.is_empty() => {
                return policy.fail("rules must hold at least one rule");
            }
            Some(Value::Array(rules)) => rules,
            Some(other) => return Err(policy.wrong("rules", "a list", other)),
        };
        let named = (rules.iter().enumerate())
            .map(|(i, rule)| parse_rule(i + 1, rule))
            .collect::<Result<Vec<_>, _>>()?;
        check_together(&named)?;
        let mut rules: Vec<Rule> = named.into_iter().map(|(_, rule)| rule).collect();
        rules.sort_by_key(|rule| rule.priority);
        Ok(LifecyclePolicy { rules })
    }

    /// The rules, lowest `rulePriority` (the first to apply) first.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// Parses the `n`th rule of the document (from 1), returning it with the name messages give it.
fn parse_rule(n: usize, value: &Value) -> Result<(String, Rule), InvalidPolicy> {
    let rule = Object::root(value, &format!("rule {n}"))?;
    rule.only(&["rulePriority", "description", "selection", "action"])?;
    let priority = rule.required("rulePriority", rule.number("rulePriority")?)?;
    // From here on, messages also give the priority, which is how people tell rules apart.
    let rule = Object {
        at: format!("rule {n} (rulePriority {priority})"),
        ..rule
    };
    let description = rule.string("description")?.map(str::to_owned);
    parse_action(&rule.required_child("action")?)?;
    let selection = parse_selection(&rule.required_child("selection")?)?;
    let parsed = Rule {
        priority,
        description,
        selection,
    };
    Ok((rule.at, parsed))
}

fn parse_action(action: &Object) -> Result<(), InvalidPolicy> {
    // The type first: a `transition` action comes with members of its own.
    match action.required_string("type")? {
        "expire" => action.only(&["type"]),
        "transition" => action.fail(format!(
            "action.type \"transition\" is not supported: {NO_ARCHIVE}"
        )),
        other => action.fail(format!("action.type must be \"expire\", not {other:?}")),
    }
}

fn parse_selection(selection: &Object) -> Result<Selection, InvalidPolicy> {
    selection.only(&[
        "tagStatus",
        "tagPrefixList",
        "tagPatternList",
        "storageClass",
        "countType",
        "countUnit",
        "countNumber",
    ])?;
    let tags = parse_tags(selection)?;
    let class = selection.string("storageClass")?;
    if let Some(class) = class.filter(|class| *class != "standard") {
        return selection.fail(format!(
            "selection.storageClass must be \"standard\", not {class:?}: {NO_ARCHIVE}"
        ));
    }
    let count_type = selection.required_string("countType")?;
    let number = selection.required("countNumber", selection.number("countNumber")?)?;
    let count = match count_type {
        "imageCountMoreThan" => Count::MoreThan(number),
        "sinceImagePushed" => Count::SincePushed { days: number },
        "sinceImagePulled" => Count::SincePulled { days: number },
        "sinceImageTransitioned" => {
            let message =
                format!("selection.countType {count_type:?} is not supported: {NO_ARCHIVE}");
            return selection.fail(message);
        }
        other => {
            let known = r#""imageCountMoreThan", "sinceImagePushed" or "sinceImagePulled""#;
            return selection.fail(format!(
                "selection.countType must be {known}, not {other:?}"
            ));
        }
    };
    // A unit goes with ages only, and is days.
    let unit_error = match (count, selection.string("countUnit")?) {
        (Count::MoreThan(_), None)
        | (Count::SincePushed { .. } | Count::SincePulled { .. }, Some("days")) => None,
        (Count::MoreThan(_), Some(_)) => {
            Some(format!("is not allowed with countType {count_type:?}"))
        }
        (_, None) => Some(format!("is required with countType {count_type:?}")),
        (_, Some(other)) => Some(format!("must be \"days\", not {other:?}")),
    };
    match unit_error {
        Some(error) => selection.fail(format!("selection.countUnit {error}")),
        None => Ok(Selection { tags, count }),
    }
}

fn parse_tags(selection: &Object) -> Result<TagSelection, InvalidPolicy> {
    let prefixes = selection.tag_list("tagPrefixList")?;
    let patterns = selection.tag_list("tagPatternList")?;
    let status = selection.required_string("tagStatus")?;
    match (status, prefixes, patterns) {
        ("tagged", Some(_), Some(_)) => selection.fail(
            "selection.tagPrefixList and selection.tagPatternList cannot both be in one rule",
        ),
        ("tagged", None, None) => selection
            .fail("tagStatus \"tagged\" needs selection.tagPrefixList or selection.tagPatternList"),
        ("tagged", prefixes, patterns) => {
            let patterns = patterns.unwrap_or_default();
            if let Some(pattern) =
                (patterns.iter()).find(|p| p.matches('*').count() > MAX_WILDCARDS)
            {
                return selection.fail(format!(
                    "selection.tagPatternList: {pattern:?} has more than {MAX_WILDCARDS} \
                     wildcards (*)"
                ));
            }
            Ok(TagSelection::Tagged {
                prefixes: prefixes.unwrap_or_default(),
                patterns,
            })
        }
        ("untagged" | "any", prefixes, patterns) => {
            if let Some(list) =
                (prefixes.map(|_| "tagPrefixList")).or(patterns.map(|_| "tagPatternList"))
            {
                return selection.fail(format!(
                    "selection.{list} is only allowed with tagStatus \"tagged\", not {status:?}"
                ));
            }
            Ok(match status {
                "untagged" => TagSelection::Untagged,
                _ => TagSelection::Any,
            })
        }
        (other, _, _) => selection.fail(format!(
            "selection.tagStatus must be \"tagged\", \"untagged\" or \"any\", not {other:?}"
        )),
    }
}

/// What ECR requires of a policy's rules taken together. An `any` rule must come last, so
/// there is at most one. ECR: "The set of rules must contain a unique set of tag prefixes":
/// of two rules with the same tag list, the later could never expire anything.
fn check_together(rules: &[(String, Rule)]) -> Result<(), InvalidPolicy> {
    for (i, (at, rule)) in rules.iter().enumerate() {
        let tags = &rule.selection.tags;
        // The first rule before this one that passes `test`.
        let earlier = |test: &dyn Fn(&Rule) -> bool| rules[..i].iter().find(|(_, r)| test(r));
        let error = if let Some((other, _)) = earlier(&|r| r.priority == rule.priority) {
            format!("rulePriority must be unique, and {other} has it too")
        } else if *tags == TagSelection::Any
            && let Some((other, _)) = rules.iter().find(|(_, r)| r.priority > rule.priority)
        {
            format!(
                "a rule with tagStatus \"any\" must have the highest rulePriority, and {other} \
                 has a higher one"
            )
        } else if *tags == TagSelection::Untagged
            && let Some((other, _)) = earlier(&|r| r.selection.tags == *tags)
        {
            format!("only one rule may select untagged images, and {other} does already")
        } else if let Some(set) = tag_set(tags)
            && let Some((other, _)) =
                earlier(&|r| tag_set(&r.selection.tags).as_ref() == Some(&set))
        {
            format!("each rule's tag list must be unique, and {other} has the same one")
        } else {
            continue;
        };
        return Err(InvalidPolicy(format!("{at}: {error}")));
    }
    Ok(())
}

/// A tagged selection's prefixes and patterns, each sorted and without repeats.
fn tag_set(tags: &TagSelection) -> Option<(Vec<&str>, Vec<&str>)> {
    let TagSelection::Tagged { prefixes, patterns } = tags else {
        return None;
    };
    fn set(list: &[String]) -> Vec<&str> {
        let mut list: Vec<&str> = list.iter().map(String::as_str).collect();
        list.sort_unstable();
        list.dedup();
        list
    }
    Some((set(prefixes), set(patterns)))
}

/// A JSON object of the policy, with how messages name it.
struct Object<'a> {
    members: &'a Map<String, Value>,
    /// Which part of the policy: "the policy", "rule 2 (rulePriority 5)".
    at: String,
    /// Prefixes the names of its members: "" or "selection.".
    path: String,
}

impl<'a> Object<'a> {
    /// The policy itself or one of its rules, named `at`.
    fn root(value: &'a Value, at: &str) -> Result<Object<'a>, InvalidPolicy> {
        let Value::Object(members) = value else {
            return Err(InvalidPolicy(format!(
                "{at} must be a JSON object, not {value}"
            )));
        };
        let (at, path) = (at.to_owned(), String::new());
        Ok(Object { members, at, path })
    }

    fn error(&self, message: impl Display) -> InvalidPolicy {
        InvalidPolicy(format!("{}: {message}", self.at))
    }

    fn fail<T>(&self, message: impl Display) -> Result<T, InvalidPolicy> {
        Err(self.error(message))
    }

    /// `member` holds `found` instead of `expected`.
    fn wrong(&self, member: &str, expected: &str, found: &Value) -> InvalidPolicy {
        self.error(format!(
            "{} must be {expected}, not {found}",
            self.name(member)
        ))
    }

    /// How messages name `member`.
    fn name(&self, member: &str) -> String {
        format!("{}{member}", self.path)
    }

    /// Refuses members not in `known`, naming them all.
    fn only(&self, known: &[&str]) -> Result<(), InvalidPolicy> {
        let mut unknown: Vec<String> = (self.members.keys())
            .filter(|member| !known.contains(&member.as_str()))
            .map(|member| self.name(member))
            .collect();
        unknown.sort();
        match unknown.as_slice() {
            [] => Ok(()),
            [one] => self.fail(format!("unknown member {one}")),
            many => self.fail(format!("unknown members {}", many.join(", "))),
        }
    }

    fn required<T>(&self, member: &str, value: Option<T>) -> Result<T, InvalidPolicy> {
        value.ok_or_else(|| self.error(format!("{} is required", self.name(member))))
    }

    fn required_child(&self, member: &str) -> Result<Object<'a>, InvalidPolicy> {
        match self.required(member, self.members.get(member))? {
            Value::Object(members) => Ok(Object {
                members,
                at: self.at.clone(),
                path: format!("{}.", self.name(member)),
            }),
            other => Err(self.wrong(member, "a JSON object", other)),
        }
    }

    fn string(&self, member: &str) -> Result<Option<&'a str>, InvalidPolicy> {
        match self.members.get(member) {
            None => Ok(None),
            Some(Value::String(value)) => Ok(Some(value)),
            Some(other) => Err(self.wrong(member, "a string", other)),
        }
    }

    fn required_string(&self, member: &str) -> Result<&'a str, InvalidPolicy> {
        self.required(member, self.string(member)?)
    }

    /// A positive integer (ECR: "`0` is not an accepted value").
    fn number(&self, member: &str) -> Result<Option<u32>, InvalidPolicy> {
        let Some(value) = self.members.get(member) else {
            return Ok(None);
        };
        match value.as_u64().map(u32::try_from) {
            Some(Ok(number)) if number >= 1 => Ok(Some(number)),
            _ => Err(self.wrong(member, &format!("an integer from 1 to {}", u32::MAX), value)),
        }
    }

    /// A non-empty list of non-empty strings.
    fn tag_list(&self, member: &str) -> Result<Option<Vec<String>>, InvalidPolicy> {
        let name = self.name(member);
        let items = match self.members.get(member) {
            None => return Ok(None),
            Some(Value::Array(items)) if items.is_empty() => {
                return self.fail(format!("{name} must not be empty"));
            }
            Some(Value::Array(items)) => items,
            Some(other) => return Err(self.wrong(member, "a list of strings", other)),
        };
        let strings = items.iter().map(|item| match item {
            Value::String(s) if s.is_empty() => {
                self.fail(format!("{name} must not hold an empty string"))
            }
            Value::String(s) => Ok(s.clone()),
            other => self.fail(format!("{name} must hold only strings, not {other}")),
        });
        strings.collect::<Result<_, _>>().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP_ONE: &str = r#""countType": "imageCountMoreThan", "countNumber": 1"#;

    /// A rule with this priority and selection (the members inside its braces).
    fn rule(priority: u32, selection: &str) -> String {
        format!(
            r#"{{"rulePriority": {priority}, "selection": {{{selection}}},
                "action": {{"type": "expire"}}}}"#
        )
    }

    fn policy(rules: &[String]) -> String {
        format!(r#"{{"rules": [{}]}}"#, rules.join(", "))
    }

    /// A policy of one rule, priority 1, with this selection.
    fn one_rule(selection: &str) -> String {
        policy(&[rule(1, selection)])
    }

    /// A policy of one rule, priority 1, with these members besides `rulePriority`.
    fn rule_with(members: &str) -> String {
        format!(r#"{{"rules": [{{"rulePriority": 1, {members}}}]}}"#)
    }

    fn refusal(text: &str) -> String {
        LifecyclePolicy::parse(text).expect_err(text).0
    }

    const R1: &str = "rule 1 (rulePriority 1)";

    #[test]
    fn parses_a_policy_and_sorts_its_rules_by_priority() {
        let text = r#"{"rules": [
            {"rulePriority": 20, "description": "the rest",
             "selection": {"tagStatus": "any", "countType": "sinceImagePulled",
                           "countUnit": "days", "countNumber": 90},
             "action": {"type": "expire"}},
            {"rulePriority": 3,
             "selection": {"tagStatus": "tagged", "tagPrefixList": ["prod", "v"],
                           "countType": "imageCountMoreThan", "countNumber": 10},
             "action": {"type": "expire"}},
            {"rulePriority": 7,
             "selection": {"tagStatus": "tagged", "tagPatternList": ["*-rc?"],
                           "storageClass": "standard",
                           "countType": "sinceImagePushed", "countUnit": "days",
                           "countNumber": 14},
             "action": {"type": "expire"}},
            {"rulePriority": 5,
             "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan",
                           "countNumber": 1},
             "action": {"type": "expire"}}
        ]}"#;
        let policy = LifecyclePolicy::parse(text).unwrap();
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            policy.rules(),
            [
                Rule {
                    priority: 3,
                    description: None,
                    selection: Selection {
                        tags: TagSelection::Tagged {
                            prefixes: strings(&["prod", "v"]),
                            patterns: vec![],
                        },
                        count: Count::MoreThan(10),
                    },
                },
                Rule {
                    priority: 5,
                    description: None,
                    selection: Selection {
                        tags: TagSelection::Untagged,
                        count: Count::MoreThan(1),
                    },
                },
                Rule {
                    priority: 7,
                    description: None,
                    selection: Selection {
                        tags: TagSelection::Tagged {
                            prefixes: vec![],
                            patterns: strings(&["*-rc?"]),
                        },
                        count: Count::SincePushed { days: 14 },
                    },
                },
                Rule {
                    priority: 20,
                    description: Some("the rest".into()),
                    selection: Selection {
                        tags: TagSelection::Any,
                        count: Count::SincePulled { days: 90 },
                    },
                },
            ]
        );
    }

    #[test]
    fn accepts_the_documented_examples() {
        // From "Examples of lifecycle policies in Amazon ECR", old (prefix) and new (pattern)
        // editions; the last is "Filtering on all images", Example B.
        for text in [
            one_rule(
                r#""tagStatus": "tagged", "tagPatternList": ["prod*"],
                   "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14"#,
            ),
            one_rule(
                r#""tagStatus": "untagged", "countType": "sinceImagePushed",
                   "countUnit": "days", "countNumber": 14"#,
            ),
            one_rule(
                r#""tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1"#,
            ),
            one_rule(
                r#""tagStatus": "tagged", "tagPrefixList": ["alpha", "beta"],
                   "countType": "sinceImagePushed", "countNumber": 5, "countUnit": "days""#,
            ),
            policy(&[
                rule(
                    1,
                    &format!(r#""tagStatus": "tagged", "tagPatternList": ["alpha*"], {KEEP_ONE}"#),
                ),
                rule(
                    2,
                    r#""tagStatus": "untagged", "countType": "sinceImagePushed",
                       "countUnit": "days", "countNumber": 1"#,
                ),
                rule(3, &format!(r#""tagStatus": "any", {KEEP_ONE}"#)),
            ]),
        ] {
            LifecyclePolicy::parse(&text).expect(&text);
        }
    }

    #[test]
    fn allows_four_wildcards_per_pattern() {
        // ECR's own example of a valid list.
        let text = one_rule(&format!(
            r#""tagStatus": "tagged", "tagPatternList": ["*test*1*2*3", "test*1*2*3*"], {KEEP_ONE}"#
        ));
        LifecyclePolicy::parse(&text).unwrap();
    }

    #[test]
    fn refuses_five_wildcards() {
        let text = one_rule(&format!(
            r#""tagStatus": "tagged", "tagPatternList": ["ok*", "a*b*c*d*e*"], {KEEP_ONE}"#
        ));
        assert_eq!(
            refusal(&text),
            format!(
                r#"{R1}: selection.tagPatternList: "a*b*c*d*e*" has more than 4 wildcards (*)"#
            )
        );
        // ECR's own example of an invalid list.
        let text = one_rule(&format!(
            r#""tagStatus": "tagged", "tagPatternList": ["test*1*2*3*4*5*6"], {KEEP_ONE}"#
        ));
        assert!(refusal(&text).contains(r#""test*1*2*3*4*5*6" has more than 4 wildcards"#));
    }

    #[test]
    fn refuses_what_is_not_a_json_object() {
        assert!(refusal("{").starts_with("the policy is not valid JSON: "));
        assert!(refusal("").starts_with("the policy is not valid JSON: "));
        assert_eq!(refusal("[]"), "the policy must be a JSON object, not []");
        assert_eq!(
            refusal(r#"{"rules": [1]}"#),
            "rule 1 must be a JSON object, not 1"
        );
        let second = policy(&[
            rule(1, &format!(r#""tagStatus": "any", {KEEP_ONE}"#)),
            "null".into(),
        ]);
        assert_eq!(refusal(&second), "rule 2 must be a JSON object, not null");
    }

    #[test]
    fn refuses_a_policy_without_rules() {
        assert_eq!(refusal("{}"), "the policy: rules is required");
        assert_eq!(
            refusal(r#"{"rules": []}"#),
            "the policy: rules must hold at least one rule"
        );
        assert_eq!(
            refusal(r#"{"rules": {}}"#),
            "the policy: rules must be a list, not {}"
        );
    }

    #[test]
    fn refuses_unknown_members_naming_them() {
        let rules = format!(
            r#""rules": [{}]"#,
            rule(1, &format!(r#""tagStatus": "any", {KEEP_ONE}"#))
        );
        assert_eq!(
            refusal(&format!(r#"{{{rules}, "Version": "1"}}"#)),
            "the policy: unknown member Version"
        );
        assert_eq!(
            refusal(&rule_with(
                r#""selection": {}, "action": {"type": "expire"}, "note": 1, "comment": 2"#
            )),
            "rule 1: unknown members comment, note"
        );
        assert_eq!(
            refusal(&one_rule(&format!(
                r#""tagStatus": "any", "tagPrefix": ["a"], {KEEP_ONE}"#
            ))),
            format!("{R1}: unknown member selection.tagPrefix")
        );
        let text = rule_with(&format!(
            r#""selection": {{"tagStatus": "any", {KEEP_ONE}}},
               "action": {{"type": "expire", "targetStorageClass": "archive"}}"#
        ));
        assert_eq!(
            refusal(&text),
            format!("{R1}: unknown member action.targetStorageClass")
        );
    }

    #[test]
    fn refuses_a_missing_or_invalid_rule_priority() {
        let text = r#"{"rules": [{"selection": {}, "action": {"type": "expire"}}]}"#;
        assert_eq!(refusal(text), "rule 1: rulePriority is required");
        for bad in ["0", "-1", "1.5", r#""1""#, "4294967296", "null"] {
            let text = policy(&[rule(1, "")])
                .replace(r#""rulePriority": 1"#, &format!(r#""rulePriority": {bad}"#));
            assert_eq!(
                refusal(&text),
                format!("rule 1: rulePriority must be an integer from 1 to 4294967295, not {bad}")
            );
        }
    }

    #[test]
    fn refuses_a_repeated_rule_priority() {
        let text = policy(&[
            rule(4, &format!(r#""tagStatus": "untagged", {KEEP_ONE}"#)),
            rule(
                4,
                &format!(r#""tagStatus": "tagged", "tagPrefixList": ["a"], {KEEP_ONE}"#),
            ),
        ]);
        assert_eq!(
            refusal(&text),
            "rule 2 (rulePriority 4): rulePriority must be unique, and rule 1 (rulePriority 4) \
             has it too"
        );
    }

    #[test]
    fn refuses_a_description_that_is_not_a_string() {
        let text = rule_with(r#""description": 5, "selection": {}, "action": {"type": "expire"}"#);
        assert_eq!(
            refusal(&text),
            format!("{R1}: description must be a string, not 5")
        );
    }

    #[test]
    fn refuses_a_missing_or_malformed_selection() {
        let text = rule_with(r#""action": {"type": "expire"}"#);
        assert_eq!(refusal(&text), format!("{R1}: selection is required"));
        let text = rule_with(r#""selection": "any", "action": {"type": "expire"}"#);
        assert_eq!(
            refusal(&text),
            format!(r#"{R1}: selection must be a JSON object, not "any""#)
        );
    }

    #[test]
    fn refuses_a_missing_or_unknown_tag_status() {
        assert_eq!(
            refusal(&one_rule(KEEP_ONE)),
            format!("{R1}: selection.tagStatus is required")
        );
        assert_eq!(
            refusal(&one_rule(&format!(r#""tagStatus": "TAGGED", {KEEP_ONE}"#))),
            format!(
                r#"{R1}: selection.tagStatus must be "tagged", "untagged" or "any", not "TAGGED""#
            )
        );
        assert_eq!(
            refusal(&one_rule(&format!(r#""tagStatus": true, {KEEP_ONE}"#))),
            format!("{R1}: selection.tagStatus must be a string, not true")
        );
    }

    #[test]
    fn tagged_needs_exactly_one_tag_list() {
        assert_eq!(
            refusal(&one_rule(&format!(r#""tagStatus": "tagged", {KEEP_ONE}"#))),
            format!(
                r#"{R1}: tagStatus "tagged" needs selection.tagPrefixList or selection.tagPatternList"#
            )
        );
        let both = format!(
            r#""tagStatus": "tagged", "tagPrefixList": ["a"], "tagPatternList": ["b*"], {KEEP_ONE}"#
        );
        assert_eq!(
            refusal(&one_rule(&both)),
            format!(
                "{R1}: selection.tagPrefixList and selection.tagPatternList cannot both be in one \
                 rule"
            )
        );
    }

    #[test]
    fn refuses_empty_tag_lists_and_empty_tags() {
        for list in ["tagPrefixList", "tagPatternList"] {
            let empty = format!(r#""tagStatus": "tagged", "{list}": [], {KEEP_ONE}"#);
            assert_eq!(
                refusal(&one_rule(&empty)),
                format!("{R1}: selection.{list} must not be empty")
            );
            let blank = format!(r#""tagStatus": "tagged", "{list}": ["a", ""], {KEEP_ONE}"#);
            assert_eq!(
                refusal(&one_rule(&blank)),
                format!("{R1}: selection.{list} must not hold an empty string")
            );
        }
    }

    #[test]
    fn refuses_tag_lists_of_the_wrong_type() {
        let text = one_rule(&format!(
            r#""tagStatus": "tagged", "tagPrefixList": "prod", {KEEP_ONE}"#
        ));
        assert_eq!(
            refusal(&text),
            format!(r#"{R1}: selection.tagPrefixList must be a list of strings, not "prod""#)
        );
        let text = one_rule(&format!(
            r#""tagStatus": "tagged", "tagPatternList": ["a*", 7], {KEEP_ONE}"#
        ));
        assert_eq!(
            refusal(&text),
            format!("{R1}: selection.tagPatternList must hold only strings, not 7")
        );
    }

    #[test]
    fn untagged_and_any_take_no_tag_list() {
        for (status, list) in [("untagged", "tagPrefixList"), ("any", "tagPatternList")] {
            let text = one_rule(&format!(
                r#""tagStatus": "{status}", "{list}": ["a"], {KEEP_ONE}"#
            ));
            assert_eq!(
                refusal(&text),
                format!(
                    r#"{R1}: selection.{list} is only allowed with tagStatus "tagged", not "{status}""#
                )
            );
        }
    }

    #[test]
    fn an_any_rule_must_come_last() {
        let text = policy(&[
            rule(1, &format!(r#""tagStatus": "any", {KEEP_ONE}"#)),
            rule(2, &format!(r#""tagStatus": "untagged", {KEEP_ONE}"#)),
        ]);
        assert_eq!(
            refusal(&text),
            format!(
                r#"{R1}: a rule with tagStatus "any" must have the highest rulePriority, and rule 2 (rulePriority 2) has a higher one"#
            )
        );
        // So there is at most one.
        let text = policy(&[
            rule(9, &format!(r#""tagStatus": "any", {KEEP_ONE}"#)),
            rule(3, &format!(r#""tagStatus": "any", {KEEP_ONE}"#)),
        ]);
        assert!(refusal(&text).starts_with(
            r#"rule 2 (rulePriority 3): a rule with tagStatus "any" must have the highest"#
        ));
    }

    #[test]
    fn only_one_rule_may_select_untagged_images() {
        let text = policy(&[
            rule(1, &format!(r#""tagStatus": "untagged", {KEEP_ONE}"#)),
            rule(
                2,
                r#""tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 3"#,
            ),
        ]);
        assert_eq!(
            refusal(&text),
            "rule 2 (rulePriority 2): only one rule may select untagged images, and rule 1 \
             (rulePriority 1) does already"
        );
    }

    #[test]
    fn each_rule_needs_its_own_tag_list() {
        let text = policy(&[
            rule(
                1,
                &format!(r#""tagStatus": "tagged", "tagPrefixList": ["a", "b"], {KEEP_ONE}"#),
            ),
            rule(
                2,
                &format!(r#""tagStatus": "tagged", "tagPatternList": ["a", "b"], {KEEP_ONE}"#),
            ),
            rule(
                3,
                &format!(r#""tagStatus": "tagged", "tagPrefixList": ["b", "a"], {KEEP_ONE}"#),
            ),
        ]);
        assert_eq!(
            refusal(&text),
            "rule 3 (rulePriority 3): each rule's tag list must be unique, and rule 1 \
             (rulePriority 1) has the same one"
        );
    }

    #[test]
    fn refuses_a_missing_or_unknown_count_type() {
        assert_eq!(
            refusal(&one_rule(r#""tagStatus": "any", "countNumber": 1"#)),
            format!("{R1}: selection.countType is required")
        );
        assert_eq!(
            refusal(&one_rule(
                r#""tagStatus": "any", "countType": "imageCountLessThan", "countNumber": 1"#
            )),
            format!(
                r#"{R1}: selection.countType must be "imageCountMoreThan", "sinceImagePushed" or "sinceImagePulled", not "imageCountLessThan""#
            )
        );
    }

    #[test]
    fn refuses_archive_storage() {
        let transitioned = r#""tagStatus": "any", "storageClass": "archive",
            "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 365"#;
        assert_eq!(
            refusal(&one_rule(transitioned)),
            format!(
                r#"{R1}: selection.storageClass must be "standard", not "archive": Wharf has no archive storage class"#
            )
        );
        let transitioned = transitioned.replace(r#""storageClass": "archive","#, "");
        assert_eq!(
            refusal(&one_rule(&transitioned)),
            format!(
                r#"{R1}: selection.countType "sinceImageTransitioned" is not supported: Wharf has no archive storage class"#
            )
        );
        let text = rule_with(
            r#""selection": {"tagStatus": "any", "countType": "sinceImagePulled",
                             "countUnit": "days", "countNumber": 90},
               "action": {"type": "transition", "targetStorageClass": "archive"}"#,
        );
        assert_eq!(
            refusal(&text),
            format!(
                r#"{R1}: action.type "transition" is not supported: Wharf has no archive storage class"#
            )
        );
    }

    #[test]
    fn refuses_a_missing_or_invalid_count_number() {
        assert_eq!(
            refusal(&one_rule(
                r#""tagStatus": "any", "countType": "imageCountMoreThan""#
            )),
            format!("{R1}: selection.countNumber is required")
        );
        for bad in ["0", r#""5""#, "2.5", "-3"] {
            let text = one_rule(&format!(
                r#""tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": {bad}"#
            ));
            assert_eq!(
                refusal(&text),
                format!(
                    "{R1}: selection.countNumber must be an integer from 1 to 4294967295, not {bad}"
                )
            );
        }
    }

    #[test]
    fn count_unit_goes_with_ages_only_and_is_days() {
        let text = one_rule(&format!(
            r#""tagStatus": "any", "countUnit": "days", {KEEP_ONE}"#
        ));
        assert_eq!(
            refusal(&text),
            format!(
                r#"{R1}: selection.countUnit is not allowed with countType "imageCountMoreThan""#
            )
        );
        for count_type in ["sinceImagePushed", "sinceImagePulled"] {
            let text = one_rule(&format!(
                r#""tagStatus": "any", "countType": "{count_type}", "countNumber": 7"#
            ));
            assert_eq!(
                refusal(&text),
                format!(r#"{R1}: selection.countUnit is required with countType "{count_type}""#)
            );
        }
        let text = one_rule(
            r#""tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "hours", "countNumber": 7"#,
        );
        assert_eq!(
            refusal(&text),
            format!(r#"{R1}: selection.countUnit must be "days", not "hours""#)
        );
    }

    #[test]
    fn refuses_a_missing_or_invalid_action() {
        let selection = format!(r#""selection": {{"tagStatus": "any", {KEEP_ONE}}}"#);
        assert_eq!(
            refusal(&rule_with(&selection)),
            format!("{R1}: action is required")
        );
        let text = rule_with(&format!(r#"{selection}, "action": "expire""#));
        assert_eq!(
            refusal(&text),
            format!(r#"{R1}: action must be a JSON object, not "expire""#)
        );
        let text = rule_with(&format!(r#"{selection}, "action": {{}}"#));
        assert_eq!(refusal(&text), format!("{R1}: action.type is required"));
        let text = rule_with(&format!(r#"{selection}, "action": {{"type": "delete"}}"#));
        assert_eq!(
            refusal(&text),
            format!(r#"{R1}: action.type must be "expire", not "delete""#)
        );
    }
}
