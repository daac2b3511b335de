//! Lifecycle policies: the grammar accepts exactly what a model of ECR's documented rules
//! accepts, and parses it to the rules generated; nothing panics; and evaluation expires no
//! image twice, keeps what `countNumber` keeps, takes each image by its first selecting rule
//! only, and agrees with a reference model for one `any` rule of `imageCountMoreThan`.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{any_text, apply, change, default_cases, json_like};
use crate::lifecycle::{
    Candidate, Count, LifecyclePolicy, Rule, Selection, TagSelection, evaluate,
};
use crate::metadata::Millis;

const DAY: Millis = 86_400_000;
const NOW: Millis = 1_800_000_000_000;

/// A rule as generated: anything near the grammar, valid or not.
#[derive(Debug, Clone)]
struct GeneratedRule {
    priority: i64,
    description: Option<String>,
    status: &'static str,
    prefixes: Option<Vec<String>>,
    patterns: Option<Vec<String>>,
    storage_class: Option<&'static str>,
    count_type: &'static str,
    count_number: i64,
    count_unit: Option<&'static str>,
    action: &'static str,
}

impl GeneratedRule {
    fn json(&self) -> Value {
        let mut selection = json!({
            "tagStatus": self.status,
            "countType": self.count_type,
            "countNumber": self.count_number,
        });
        if let Some(prefixes) = &self.prefixes {
            selection["tagPrefixList"] = json!(prefixes);
        }
        if let Some(patterns) = &self.patterns {
            selection["tagPatternList"] = json!(patterns);
        }
        if let Some(class) = self.storage_class {
            selection["storageClass"] = json!(class);
        }
        if let Some(unit) = self.count_unit {
            selection["countUnit"] = json!(unit);
        }
        let mut rule = json!({
            "rulePriority": self.priority,
            "selection": selection,
            "action": {"type": self.action},
        });
        if let Some(description) = &self.description {
            rule["description"] = json!(description);
        }
        rule
    }

    /// The rule this one parses to, if it is valid on its own.
    fn expected(&self) -> Option<Rule> {
        let priority = u32::try_from(self.priority).ok().filter(|&p| p >= 1)?;
        let number = u32::try_from(self.count_number).ok().filter(|&n| n >= 1)?;
        let list_ok = |list: &Option<Vec<String>>| {
            list.as_ref()
                .is_none_or(|l| !l.is_empty() && l.iter().all(|s| !s.is_empty()))
        };
        if self.action != "expire"
            || !list_ok(&self.prefixes)
            || !list_ok(&self.patterns)
            || self.storage_class.is_some_and(|class| class != "standard")
        {
            return None;
        }
        let tags = match (self.status, &self.prefixes, &self.patterns) {
            ("tagged", Some(_), Some(_)) | ("tagged", None, None) => return None,
            ("tagged", prefixes, patterns) => {
                let patterns = patterns.clone().unwrap_or_default();
                if patterns.iter().any(|p| p.matches('*').count() > 4) {
                    return None;
                }
                TagSelection::Tagged {
                    prefixes: prefixes.clone().unwrap_or_default(),
                    patterns,
                }
            }
            ("untagged", None, None) => TagSelection::Untagged,
            ("any", None, None) => TagSelection::Any,
            _ => return None,
        };
        let count = match (self.count_type, self.count_unit) {
            ("imageCountMoreThan", None) => Count::MoreThan(number),
            ("sinceImagePushed", Some("days")) => Count::SincePushed { days: number },
            ("sinceImagePulled", Some("days")) => Count::SincePulled { days: number },
            _ => return None,
        };
        Some(Rule {
            priority,
            description: self.description.clone(),
            selection: Selection { tags, count },
        })
    }
}

/// The rules a policy of these parses to, sorted by priority, if the policy is valid: every
/// rule valid, priorities unique, `any` last, one `untagged` at most, tag lists unique.
fn expected_policy(rules: &[GeneratedRule]) -> Option<Vec<Rule>> {
    let mut parsed: Vec<Rule> = rules
        .iter()
        .map(GeneratedRule::expected)
        .collect::<Option<_>>()?;
    let priorities: BTreeSet<u32> = parsed.iter().map(|r| r.priority).collect();
    let highest = *priorities.last()?;
    let tag_set = |rule: &Rule| match &rule.selection.tags {
        TagSelection::Tagged { prefixes, patterns } => {
            let set = |list: &[String]| list.iter().cloned().collect::<BTreeSet<_>>();
            Some((set(prefixes), set(patterns)))
        }
        _ => None,
    };
    let tag_sets: Vec<_> = parsed.iter().filter_map(tag_set).collect();
    let untagged = parsed
        .iter()
        .filter(|r| r.selection.tags == TagSelection::Untagged);
    let valid = priorities.len() == parsed.len()
        && (parsed.iter()).all(|r| r.selection.tags != TagSelection::Any || r.priority == highest)
        && untagged.count() <= 1
        && tag_sets.iter().collect::<BTreeSet<_>>().len() == tag_sets.len();
    parsed.sort_by_key(|r| r.priority);
    valid.then_some(parsed)
}

fn tag_list(star_heavy: bool) -> impl Strategy<Value = Vec<String>> {
    let item = match star_heavy {
        true => prop_oneof![
            Just("*".to_string()),
            "[a-z]{0,2}(\\*[a-z]{0,2}){0,6}",
            Just(String::new()),
        ]
        .boxed(),
        false => prop_oneof![
            prop::sample::select(vec!["v", "prod", "beta", "v1", "", "release-"])
                .prop_map(str::to_string),
            "[a-z0-9.-]{1,4}",
        ]
        .boxed(),
    };
    prop::collection::vec(item, 0..3)
}

/// A rule near the grammar: each part right most of the time, so that whole policies are
/// often valid, and wrong in every way the grammar refuses otherwise.
fn generated_rule() -> impl Strategy<Value = GeneratedRule> {
    type Tags = (&'static str, Option<Vec<String>>, Option<Vec<String>>);
    let tags: BoxedStrategy<Tags> = prop_oneof![
        4 => tag_list(false).prop_map(|l| ("tagged", Some(l), None)),
        4 => tag_list(true).prop_map(|l| ("tagged", None, Some(l))),
        1 => Just(("untagged", None, None)),
        1 => Just(("any", None, None)),
        1 => (
            prop::sample::select(vec!["tagged", "untagged", "any", "TAGGED"]),
            prop::option::of(tag_list(false)),
            prop::option::of(tag_list(true)),
        ),
    ]
    .boxed();
    let count = prop_oneof![
        3 => Just(("imageCountMoreThan", None)),
        3 => Just(("sinceImagePushed", Some("days"))),
        3 => Just(("sinceImagePulled", Some("days"))),
        1 => (
            prop::sample::select(vec![
                "imageCountMoreThan",
                "sinceImagePushed",
                "sinceImageTransitioned",
                "imageCount",
            ]),
            prop::option::of(prop::sample::select(vec!["days", "hours"])),
        ),
    ];
    let number = prop_oneof![
        9 => 1i64..6,
        1 => prop::sample::select(vec![0, -1, i64::from(u32::MAX), i64::from(u32::MAX) + 1]),
    ];
    (
        prop_oneof![9 => 1i64..6, 1 => prop::sample::select(vec![0, i64::from(u32::MAX) + 1])],
        prop::option::of("[a-z ]{0,10}"),
        tags,
        prop::option::weighted(0.1, prop::sample::select(vec!["standard", "archive"])),
        count,
        number,
        prop_oneof![9 => Just("expire"), 1 => prop::sample::select(vec!["transition", "delete"])],
    )
        .prop_map(
            |(
                priority,
                description,
                (status, prefixes, patterns),
                storage_class,
                (count_type, count_unit),
                count_number,
                action,
            )| {
                GeneratedRule {
                    priority,
                    description,
                    status,
                    prefixes,
                    patterns,
                    storage_class,
                    count_type,
                    count_number,
                    count_unit,
                    action,
                }
            },
        )
}

fn document(rules: &[GeneratedRule]) -> String {
    let rules: Vec<Value> = rules.iter().map(GeneratedRule::json).collect();
    json!({ "rules": rules }).to_string()
}

/// A valid policy, mostly: distinct priorities, at most one `untagged` and one `any` (last).
fn valid_rules() -> impl Strategy<Value = Vec<GeneratedRule>> {
    let count = prop_oneof![
        (0i64..4).prop_map(|n| ("imageCountMoreThan", n.max(1), None)),
        (1i64..20).prop_map(|n| ("sinceImagePushed", n, Some("days"))),
        (1i64..20).prop_map(|n| ("sinceImagePulled", n, Some("days"))),
    ];
    let tags = prop_oneof![
        3 => tag_list(false).prop_filter("empty", |l| !l.is_empty() && l.iter().all(|s| !s.is_empty()))
            .prop_map(|l| ("tagged", Some(l), None)),
        3 => prop::collection::vec(prop::sample::select(vec!["v*", "*1", "prod*", "*", "*-*", "beta"]), 1..3)
            .prop_map(|l| ("tagged", None, Some(l.into_iter().map(str::to_string).collect()))),
        1 => Just(("untagged", None, None)),
    ];
    let rule = (tags, count).prop_map(
        |((status, prefixes, patterns), (count_type, count_number, count_unit))| GeneratedRule {
            priority: 0,
            description: None,
            status,
            prefixes,
            patterns,
            storage_class: None,
            count_type,
            count_number,
            count_unit,
            action: "expire",
        },
    );
    (
        prop::collection::vec(rule, 0..4),
        prop::option::of((count_any(), any::<bool>())),
    )
        .prop_map(|(mut rules, any_rule)| {
            // At most one untagged rule.
            let mut untagged = false;
            rules.retain(|r| !(r.status == "untagged" && std::mem::replace(&mut untagged, true)));
            if let Some(((count_type, count_number, count_unit), _)) = any_rule {
                rules.push(GeneratedRule {
                    priority: 0,
                    description: None,
                    status: "any",
                    prefixes: None,
                    patterns: None,
                    storage_class: None,
                    count_type,
                    count_number,
                    count_unit,
                    action: "expire",
                });
            }
            // Priorities in order, with gaps; the list itself reversed half the time.
            for (i, rule) in rules.iter_mut().enumerate() {
                rule.priority = 3 * i as i64 + 1;
            }
            if any_rule.is_some_and(|(_, reverse)| reverse) {
                rules.reverse();
            }
            rules
        })
        .prop_filter("no rules", |rules| !rules.is_empty())
}

fn count_any() -> impl Strategy<Value = (&'static str, i64, Option<&'static str>)> {
    prop_oneof![
        (1i64..6).prop_map(|n| ("imageCountMoreThan", n, None)),
        (1i64..20).prop_map(|n| ("sinceImagePushed", n, Some("days"))),
    ]
}

/// Images with unique digests, tags from a small set (so rules select them), push times with
/// ties, and pull times.
fn images() -> impl Strategy<Value = Vec<Candidate>> {
    let tag = prop_oneof![
        prop::sample::select(vec![
            "v1",
            "v2",
            "prod-1",
            "beta-1",
            "latest",
            "release-3",
            "1"
        ])
        .prop_map(str::to_string),
        "[a-z0-9.-]{1,5}",
    ];
    let image = (
        prop::collection::vec(tag, 0..3),
        (0i64..30).prop_map(|days| NOW - days * DAY / 2),
        prop::option::of((0i64..30).prop_map(|days| NOW - days * DAY)),
    );
    prop::collection::vec(image, 0..12).prop_map(|images| {
        (images.into_iter().enumerate())
            .map(|(i, (tags, pushed_at, last_pulled_at))| Candidate {
                digest: format!("sha256:{:02}", (i * 7) % 12 + 12 * (i / 12)),
                tags,
                pushed_at,
                last_pulled_at,
            })
            .collect()
    })
}

/// The reference tag pattern match: `*` any run of characters, everything else itself.
fn pattern_matches(pattern: &str, tag: &str) -> bool {
    let (pattern, tag): (Vec<char>, Vec<char>) = (pattern.chars().collect(), tag.chars().collect());
    let mut matched = vec![false; tag.len() + 1];
    matched[0] = true;
    for &p in &pattern {
        let mut next = vec![false; tag.len() + 1];
        for j in 0..=tag.len() {
            next[j] = match p {
                '*' => matched[j] || (j > 0 && next[j - 1]),
                c => j > 0 && matched[j - 1] && tag[j - 1] == c,
            };
        }
        matched = next;
    }
    matched[tag.len()]
}

/// Whether `selection` takes an image with these tags, read from ECR's documentation.
fn selects(selection: &TagSelection, tags: &[String]) -> bool {
    match selection {
        TagSelection::Any => true,
        TagSelection::Untagged => tags.is_empty(),
        TagSelection::Tagged { prefixes, patterns } => {
            !tags.is_empty()
                && prefixes
                    .iter()
                    .all(|p| tags.iter().any(|t| t.starts_with(p.as_str())))
                && patterns
                    .iter()
                    .all(|p| tags.iter().any(|t| pattern_matches(p, t)))
        }
    }
}

proptest! {
    #![proptest_config(default_cases())]

    #[test]
    fn any_text_never_panics(text in any_text()) {
        let _ = LifecyclePolicy::parse(&text);
    }

    #[test]
    fn any_json_never_panics(value in lifecycle_json()) {
        let _ = LifecyclePolicy::parse(&value.to_string());
    }

    #[test]
    fn spoiled_policies_never_panic(
        rules in prop::collection::vec(generated_rule(), 1..4),
        changes in prop::collection::vec(change(lifecycle_json()), 1..3),
        images in images(),
    ) {
        let mut document: Value = serde_json::from_str(&document(&rules)).unwrap();
        for change in &changes {
            apply(&mut document, change);
        }
        if let Ok(policy) = LifecyclePolicy::parse(&document.to_string()) {
            evaluate(&policy, &images, NOW);
        }
    }

    /// Accepted exactly when the model of ECR's rules accepts, and parsed to those rules.
    #[test]
    fn policies_parse_as_the_model_says(rules in prop::collection::vec(generated_rule(), 1..3)) {
        let text = document(&rules);
        let parsed = LifecyclePolicy::parse(&text);
        let parsed_rules = parsed.as_ref().map(|p| p.rules().to_vec()).ok();
        prop_assert_eq!(parsed_rules, expected_policy(&rules), "{}: {:?}", text, parsed);
    }

    #[test]
    fn valid_policies_parse_as_the_model_says(rules in valid_rules()) {
        let text = document(&rules);
        let parsed = LifecyclePolicy::parse(&text).map(|p| p.rules().to_vec()).ok();
        prop_assert_eq!(parsed, expected_policy(&rules), "{}", text);
    }

    /// What any accepted policy's evaluation must do, whatever its rules.
    #[test]
    fn evaluation_keeps_its_promises(rules in valid_rules(), images in images(), reversed in any::<bool>()) {
        let policy = LifecyclePolicy::parse(&document(&rules));
        prop_assume!(policy.is_ok());
        let policy = policy.unwrap();
        let expired = evaluate(&policy, &images, NOW);
        // Whatever the order of the images.
        let mut shuffled = images.clone();
        if reversed {
            shuffled.reverse();
        } else {
            shuffled.rotate_left(images.len() / 2);
        }
        prop_assert_eq!(&evaluate(&policy, &shuffled, NOW), &expired);
        // No image twice.
        let digests: BTreeSet<&str> = expired.iter().map(|e| e.digest.as_str()).collect();
        prop_assert_eq!(digests.len(), expired.len());
        // In order of rule, then push time, then digest.
        let image = |digest: &str| images.iter().find(|i| i.digest == digest).unwrap();
        let keys: Vec<_> = expired.iter().map(|e| (e.rule_priority, image(&e.digest).pushed_at, e.digest.clone())).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        prop_assert_eq!(&keys, &sorted);
        for rule in policy.rules() {
            // The images this rule takes: those it selects that no earlier rule does.
            let taken: Vec<&Candidate> = images
                .iter()
                .filter(|image| {
                    let first = policy.rules().iter().find(|r| selects(&r.selection.tags, &image.tags));
                    first.is_some_and(|first| first.priority == rule.priority)
                })
                .collect();
            let by_rule: Vec<&Candidate> = expired
                .iter()
                .filter(|e| e.rule_priority == rule.priority)
                .map(|e| image(&e.digest))
                .collect();
            for image in &by_rule {
                prop_assert!(taken.iter().any(|t| t.digest == image.digest), "{} not this rule's", image.digest);
            }
            match rule.selection.count {
                Count::MoreThan(keep) => {
                    prop_assert_eq!(by_rule.len(), taken.len().saturating_sub(keep as usize));
                    // The kept ones are the newest.
                    for kept in taken.iter().filter(|t| !by_rule.iter().any(|e| e.digest == t.digest)) {
                        for gone in &by_rule {
                            prop_assert!(
                                (kept.pushed_at, std::cmp::Reverse(&kept.digest)) > (gone.pushed_at, std::cmp::Reverse(&gone.digest)),
                                "kept {:?} but expired the newer {:?}", kept, gone
                            );
                        }
                    }
                }
                Count::SincePushed { days } | Count::SincePulled { days } => {
                    let time = |image: &Candidate| match rule.selection.count {
                        Count::SincePulled { .. } => image.last_pulled_at.unwrap_or(image.pushed_at),
                        _ => image.pushed_at,
                    };
                    let old: Vec<&str> = taken
                        .iter()
                        .filter(|t| NOW - time(t) > Millis::from(days) * DAY)
                        .map(|t| t.digest.as_str())
                        .collect();
                    let gone: Vec<&str> = by_rule.iter().map(|e| e.digest.as_str()).collect();
                    prop_assert_eq!(old.into_iter().collect::<BTreeSet<_>>(), gone.into_iter().collect::<BTreeSet<_>>());
                }
            }
        }
    }

    /// One `any` rule of `imageCountMoreThan`: all but the `n` newest, oldest first.
    #[test]
    fn count_more_than_on_any_keeps_the_newest(n in 1u32..8, images in images()) {
        let text = format!(
            r#"{{"rules":[{{"rulePriority":1,"selection":{{"tagStatus":"any",
                "countType":"imageCountMoreThan","countNumber":{n}}},"action":{{"type":"expire"}}}}]}}"#
        );
        let policy = LifecyclePolicy::parse(&text).unwrap();
        let mut newest_first: Vec<&Candidate> = images.iter().collect();
        // Newer first; of two pushed together, the lower digest counts as newer.
        newest_first.sort_by(|a, b| b.pushed_at.cmp(&a.pushed_at).then(a.digest.cmp(&b.digest)));
        let mut expected: Vec<&Candidate> = newest_first.into_iter().skip(n as usize).collect();
        expected.sort_by(|a, b| (a.pushed_at, &a.digest).cmp(&(b.pushed_at, &b.digest)));
        let expected: Vec<(String, u32)> = expected.iter().map(|i| (i.digest.clone(), 1)).collect();
        let expired: Vec<(String, u32)> = evaluate(&policy, &images, NOW)
            .into_iter()
            .map(|e| (e.digest, e.rule_priority))
            .collect();
        prop_assert_eq!(expired, expected);
    }

    /// Tag patterns: `*` any run, every other character (`?` too) only itself.
    #[test]
    fn tag_patterns_match_as_the_model(
        patterns in prop::collection::vec(
            prop_oneof!["[a-c?.]{1,2}(\\*[a-c?.]{0,2}){0,3}", "\\*[a-c?.]{0,2}(\\*[a-c?.]{0,2}){0,3}"],
            1..3,
        ),
        images in prop::collection::vec(prop::collection::vec("[a-c?.]{1,6}", 0..3), 1..8),
    ) {
        let rule = json!({
            "rulePriority": 1,
            "selection": {"tagStatus": "tagged", "tagPatternList": patterns,
                          "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
            "action": {"type": "expire"},
        });
        let policy = LifecyclePolicy::parse(&json!({"rules": [rule]}).to_string()).unwrap();
        let images: Vec<Candidate> = (images.into_iter().enumerate())
            .map(|(i, tags)| Candidate { digest: format!("d{i}"), tags, pushed_at: NOW - 10 * DAY, last_pulled_at: None })
            .collect();
        let expired: BTreeSet<String> = evaluate(&policy, &images, NOW).into_iter().map(|e| e.digest).collect();
        let selection = TagSelection::Tagged { prefixes: vec![], patterns };
        let expected: BTreeSet<String> = images.iter().filter(|i| selects(&selection, &i.tags)).map(|i| i.digest.clone()).collect();
        prop_assert_eq!(expired, expected);
    }
}

/// Any JSON near lifecycle policies.
fn lifecycle_json() -> impl Strategy<Value = Value> {
    let strings = prop::sample::select(vec![
        "tagged",
        "untagged",
        "any",
        "expire",
        "transition",
        "imageCountMoreThan",
        "sinceImagePushed",
        "sinceImagePulled",
        "days",
        "standard",
        "v*",
        "",
    ])
    .prop_map(str::to_string);
    let keys = prop::sample::select(vec![
        "rules",
        "rulePriority",
        "description",
        "selection",
        "action",
        "type",
        "tagStatus",
        "tagPrefixList",
        "tagPatternList",
        "storageClass",
        "countType",
        "countUnit",
        "countNumber",
    ]);
    json_like(strings, keys)
}
