//! Which images a lifecycle policy expires, following ECR's lifecycle policy evaluation
//! rules (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html>):
//!
//! - "An image is expired or archived by exactly one or zero rules", and "An image that
//!   matches the tagging requirements of a rule cannot be expired or archived by a rule with
//!   a lower priority": an image belongs to the first rule (lowest `rulePriority`) whose tag
//!   selection takes it, whether that rule expires it or keeps it.
//! - An image an earlier rule took is not counted by later rules either: Wharf's product
//!   rule, stated so in its issue tracker, so that "keep the last N of everything else" means
//!   N images no earlier rule spoke for. ECR's own worked example "Filtering on all images",
//!   Example B, counts them ("Rules can never mark images that are marked by higher priority
//!   rules, but can still identify them as if they haven't been expired"), and so expires one
//!   image more there than Wharf does (see `all_images_example_b_counts_only_untaken_images`).
//! - Counting keeps the newest images by push time; ages are "older than" the number of days,
//!   so an image exactly that old stays.

use super::policy::{Count, LifecyclePolicy, TagSelection};
use crate::metadata::Millis;

const DAY: Millis = 86_400_000;

/// One image of a repository, as a policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: Millis,
    /// `None` if never pulled.
    pub last_pulled_at: Option<Millis>,
}

/// An image to expire, and the rule that expires it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    pub digest: String,
    pub rule_priority: u32,
}

/// Which of `images` (one repository's images) the policy expires at `now`, each with the rule
/// that expires it, in a deterministic order (by rule priority, then push time oldest first,
/// then digest).
pub fn evaluate(policy: &LifecyclePolicy, images: &[Candidate], now: Millis) -> Vec<Expiry> {
    // Whether an earlier rule has taken the image.
    let mut taken = vec![false; images.len()];
    let mut expired = Vec::new();
    for rule in policy.rules() {
        let selected: Vec<usize> = (0..images.len())
            .filter(|&i| !taken[i] && selects(&rule.selection.tags, &images[i].tags))
            .collect();
        let mut marked: Vec<&Candidate> = (marks(rule.selection.count, images, &selected, now))
            .into_iter()
            .map(|i| &images[i])
            .collect();
        marked.sort_by(|a, b| (a.pushed_at, &a.digest).cmp(&(b.pushed_at, &b.digest)));
        expired.extend(marked.into_iter().map(|image| Expiry {
            digest: image.digest.clone(),
            rule_priority: rule.priority,
        }));
        for i in selected {
            taken[i] = true;
        }
    }
    expired
}

/// Which of the `selected` images (those no earlier rule took) a rule's count expires.
fn marks(count: Count, images: &[Candidate], selected: &[usize], now: Millis) -> Vec<usize> {
    let older_than = |time: fn(&Candidate) -> Millis, days: u32| -> Vec<usize> {
        let limit = Millis::from(days) * DAY;
        (selected.iter().copied())
            .filter(|&i| now.saturating_sub(time(&images[i])) > limit)
            .collect()
    };
    match count {
        Count::MoreThan(keep) => {
            // Newest first; among images pushed at the same time, the lower digest counts as
            // the newer, so that the result does not depend on the order of `images`.
            let mut newest_first = selected.to_vec();
            newest_first.sort_by(|&a, &b| {
                let (a, b) = (&images[a], &images[b]);
                (b.pushed_at, &a.digest).cmp(&(a.pushed_at, &b.digest))
            });
            newest_first.split_off(newest_first.len().min(keep as usize))
        }
        Count::SincePushed { days } => older_than(|image| image.pushed_at, days),
        // ECR: "If an image was never pulled, the image's pushed_at_time is used instead of
        // the last_recorded_pulltime."
        Count::SincePulled { days } => older_than(
            |image| image.last_pulled_at.unwrap_or(image.pushed_at),
            days,
        ),
    }
}

/// Whether a rule's tag selection takes an image with these tags.
fn selects(selection: &TagSelection, tags: &[String]) -> bool {
    match selection {
        TagSelection::Any => true,
        TagSelection::Untagged => tags.is_empty(),
        // ECR: "An image is successfully matched if all of the tags in the tagPatternList or
        // tagPrefixList value are matched against any of the image's tags."
        TagSelection::Tagged { prefixes, patterns } => {
            !tags.is_empty()
                && (prefixes.iter())
                    .all(|prefix| tags.iter().any(|tag| tag.starts_with(prefix.as_str())))
                && (patterns.iter()).all(|pattern| tags.iter().any(|tag| matches(pattern, tag)))
        }
    }
}

/// Whether `tag` matches an ECR tag pattern: `*` matches any run of characters, even none, and
/// every other character only itself. Not `wildmatch`, which would also take `?` as a wildcard.
fn matches(pattern: &str, tag: &str) -> bool {
    let mut pieces = pattern.split('*');
    // `split` yields at least one piece: the text before the first `*`.
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = tag.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty(); // No `*`: the whole tag.
    };
    // With only `*` to match, taking each middle piece at its first occurrence never loses a
    // match that a later occurrence would find.
    for piece in middle {
        let Some(at) = rest.find(piece) else {
            return false;
        };
        rest = &rest[at + piece.len()..];
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_800_000_000_000;
    const HOUR: Millis = 3_600_000;

    /// A policy of these rules: priority and the members of `selection`.
    fn policy(rules: &[(u32, &str)]) -> LifecyclePolicy {
        let rules: Vec<String> = (rules.iter())
            .map(|(priority, selection)| {
                format!(
                    r#"{{"rulePriority": {priority}, "selection": {{{selection}}},
                        "action": {{"type": "expire"}}}}"#
                )
            })
            .collect();
        let text = format!(r#"{{"rules": [{}]}}"#, rules.join(", "));
        LifecyclePolicy::parse(&text).expect(&text)
    }

    /// An image pushed `age` before `NOW`, never pulled.
    fn image(digest: &str, tags: &[&str], age: Millis) -> Candidate {
        Candidate {
            digest: digest.into(),
            tags: tags.iter().map(|tag| tag.to_string()).collect(),
            pushed_at: NOW - age,
            last_pulled_at: None,
        }
    }

    fn pulled(mut image: Candidate, age: Millis) -> Candidate {
        image.last_pulled_at = Some(NOW - age);
        image
    }

    /// The digests expired at `NOW`, each with its rule.
    fn expired(policy: &LifecyclePolicy, images: &[Candidate]) -> Vec<(String, u32)> {
        (evaluate(policy, images, NOW).into_iter())
            .map(|expiry| (expiry.digest, expiry.rule_priority))
            .collect()
    }

    fn by(rule: u32, digests: &[&str]) -> Vec<(String, u32)> {
        digests
            .iter()
            .map(|digest| (digest.to_string(), rule))
            .collect()
    }

    // The worked examples of "Examples of lifecycle policies in Amazon ECR"
    // (https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_examples.html),
    // with their documented outcomes. The current edition uses pattern lists; earlier ones
    // used prefix lists for the same examples, so both are run.

    /// The two ways of writing "tags starting with `name`".
    fn starting_with(names: &[&str]) -> [String; 2] {
        let list = |suffix: &str| {
            let quoted: Vec<String> = names.iter().map(|n| format!(r#""{n}{suffix}""#)).collect();
            quoted.join(", ")
        };
        [
            format!(
                r#""tagStatus": "tagged", "tagPatternList": [{}]"#,
                list("*")
            ),
            format!(r#""tagStatus": "tagged", "tagPrefixList": [{}]"#, list("")),
        ]
    }

    fn keep_one(tags: &str) -> String {
        format!(r#"{tags}, "countType": "imageCountMoreThan", "countNumber": 1"#)
    }

    fn multiple_rules_repository() -> Vec<Candidate> {
        vec![
            image("A", &["beta-1", "prod-1"], 10 * DAY),
            image("B", &["beta-2", "prod-2"], 9 * DAY),
            image("C", &["beta-3"], 8 * DAY),
        ]
    }

    #[test]
    fn documented_multiple_rules_example_a() {
        for (prod, beta) in starting_with(&["prod"])
            .iter()
            .zip(starting_with(&["beta"]))
        {
            let policy = policy(&[(1, &keep_one(prod)), (2, &keep_one(&beta))]);
            // Rule 2 would mark A and B, but A and B are rule 1's: "Result: Image A is expired."
            assert_eq!(
                expired(&policy, &multiple_rules_repository()),
                by(1, &["A"])
            );
        }
    }

    #[test]
    fn documented_multiple_rules_example_b() {
        for (beta, prod) in starting_with(&["beta"])
            .iter()
            .zip(starting_with(&["prod"]))
        {
            let policy = policy(&[(1, &keep_one(beta)), (2, &keep_one(&prod))]);
            // "Result: Images A and B are expired."
            assert_eq!(
                expired(&policy, &multiple_rules_repository()),
                by(1, &["A", "B"])
            );
        }
    }

    #[test]
    fn documented_multiple_tags_in_a_single_rule_example_a() {
        let images = [
            image("A", &["alpha-1"], 12 * DAY),
            image("B", &["beta-1"], 11 * DAY),
            image("C", &["alpha-2", "beta-2"], 10 * DAY),
            image("D", &["alpha-3"], 4 * DAY),
            image("E", &["beta-3"], 3 * DAY),
            image("F", &["alpha-4", "beta-4"], 2 * DAY),
        ];
        for tags in starting_with(&["alpha", "beta"]) {
            let selection = format!(
                r#"{tags}, "countType": "sinceImagePushed", "countNumber": 5, "countUnit": "days""#
            );
            // "It sees images C and F … Result: Image C is expired."
            assert_eq!(expired(&policy(&[(1, &selection)]), &images), by(1, &["C"]));
        }
    }

    #[test]
    fn documented_multiple_tags_in_a_single_rule_example_b() {
        let images = [
            image("A", &["alpha-1", "beta-1", "gamma-1"], 10 * DAY),
            image("B", &["alpha-2", "beta-2"], 9 * DAY),
            image("C", &["alpha-3", "beta-3", "gamma-2"], 8 * DAY),
        ];
        for tags in starting_with(&["alpha", "beta"]) {
            // "Result: Images A and B are expired."
            assert_eq!(
                expired(&policy(&[(1, &keep_one(&tags))]), &images),
                by(1, &["A", "B"])
            );
        }
    }

    #[test]
    fn documented_all_images_example_a() {
        let images = [
            image("A", &["alpha-1"], 4 * DAY),
            image("B", &["beta-1"], 3 * DAY),
            image("C", &[], 2 * DAY),
            image("D", &["alpha-2"], DAY),
        ];
        let policy = policy(&[(1, &keep_one(r#""tagStatus": "any""#))]);
        // "Result: Images A, B, and C are expired."
        assert_eq!(expired(&policy, &images), by(1, &["A", "B", "C"]));
    }

    #[test]
    fn all_images_example_b_counts_only_untaken_images() {
        // D and E are both "1 day" old; the outcome has E the newer.
        let images = [
            image("A", &["alpha-1", "beta-1"], 4 * DAY),
            image("B", &[], 3 * DAY),
            image("C", &["alpha-2"], 2 * DAY),
            image("D", &["git hash"], DAY + HOUR),
            image("E", &[], DAY),
        ];
        let untagged_older_than_a_day = r#""tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1"#;
        let policy = policy(&[
            (
                1,
                &keep_one(r#""tagStatus": "tagged", "tagPatternList": ["alpha*"]"#),
            ),
            (2, untagged_older_than_a_day),
            (3, &keep_one(r#""tagStatus": "any""#)),
        ]);
        // Rule 3 counts only D, which no earlier rule took, and keeps it. (ECR's documented
        // result, "Images A, B, and D are expired", has rule 3 count E, rule 2's, as the
        // newest: see the module comment.)
        let mut want = by(1, &["A"]);
        want.extend(by(2, &["B"]));
        assert_eq!(expired(&policy, &images), want);
    }

    #[test]
    fn documented_image_age_and_count_examples() {
        let prod_older_than_14_days = r#""tagStatus": "tagged", "tagPatternList": ["prod*"],
            "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14"#;
        let images = [
            image("old-prod", &["prod-1"], 20 * DAY),
            image("new-prod", &["production"], 10 * DAY),
            image("old-dev", &["dev-1"], 20 * DAY),
            image("old-untagged", &[], 20 * DAY),
        ];
        assert_eq!(
            expired(&policy(&[(1, prod_older_than_14_days)]), &images),
            by(1, &["old-prod"])
        );

        let images = [
            image("u1", &[], 3 * DAY),
            image("u2", &[], 2 * DAY),
            image("u3", &[], DAY),
            image("tagged", &["v1"], 4 * DAY),
        ];
        let keep_one_untagged = keep_one(r#""tagStatus": "untagged""#);
        assert_eq!(
            expired(&policy(&[(1, &keep_one_untagged)]), &images),
            by(1, &["u1", "u2"])
        );
    }

    #[test]
    fn an_image_kept_by_a_rule_is_neither_expired_nor_counted_by_later_ones() {
        let images = [
            image("release-old", &["release-1"], 3 * DAY),
            image("dev", &["dev-1"], 2 * DAY),
            image("release-new", &["release-2"], DAY),
        ];
        let keep_releases = r#""tagStatus": "tagged", "tagPrefixList": ["release"],
            "countType": "imageCountMoreThan", "countNumber": 5"#;
        let policy = policy(&[(1, keep_releases), (2, &keep_one(r#""tagStatus": "any""#))]);
        // Both releases are rule 1's and kept; rule 2 counts dev alone, and keeps it.
        assert_eq!(expired(&policy, &images), vec![]);
    }

    #[test]
    fn an_image_is_expired_by_the_first_rule_that_selects_it_only() {
        let older_than_a_day = |tags: &str| {
            format!(
                r#"{tags}, "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1"#
            )
        };
        let policy = policy(&[
            (5, &older_than_a_day(r#""tagStatus": "any""#)),
            (
                2,
                &older_than_a_day(r#""tagStatus": "tagged", "tagPrefixList": ["v"]"#),
            ),
        ]);
        let images = [
            image("tagged", &["v1"], 5 * DAY),
            image("other", &["x"], 5 * DAY),
        ];
        let mut want = by(2, &["tagged"]);
        want.extend(by(5, &["other"]));
        assert_eq!(expired(&policy, &images), want);
    }

    #[test]
    fn image_count_keeps_the_newest() {
        let images = [
            image("d", &[], DAY),
            image("a", &[], 4 * DAY),
            image("c", &[], 2 * DAY),
            image("b", &[], 3 * DAY),
        ];
        let keep_two = r#""tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2"#;
        assert_eq!(
            expired(&policy(&[(1, keep_two)]), &images),
            by(1, &["a", "b"])
        );
        let keep_nine = keep_two.replace(": 2", ": 9");
        assert_eq!(expired(&policy(&[(1, &keep_nine)]), &images), []);
    }

    #[test]
    fn image_count_breaks_ties_by_digest_whatever_the_order() {
        let mut images = vec![image("sha256:b", &[], DAY), image("sha256:a", &[], DAY)];
        let policy = policy(&[(1, &keep_one(r#""tagStatus": "untagged""#))]);
        assert_eq!(expired(&policy, &images), by(1, &["sha256:b"]));
        images.reverse();
        assert_eq!(expired(&policy, &images), by(1, &["sha256:b"]));
    }

    #[test]
    fn ages_count_only_when_more_than_the_days() {
        let older_than_three_days = policy(&[(
            1,
            r#""tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 3"#,
        )]);
        let images = [
            image("exactly", &[], 3 * DAY),
            image("just-over", &[], 3 * DAY + 1),
            image("young", &[], DAY),
            image("from-the-future", &[], -DAY),
        ];
        assert_eq!(
            expired(&older_than_three_days, &images),
            by(1, &["just-over"])
        );
    }

    #[test]
    fn since_pulled_falls_back_to_the_push_time() {
        let not_pulled_in_30_days = policy(&[(
            1,
            r#""tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 30"#,
        )]);
        let images = [
            image("never-pulled-old", &[], 40 * DAY),
            image("never-pulled-new", &[], 10 * DAY),
            pulled(image("pulled-lately", &[], 400 * DAY), 2 * DAY),
            pulled(image("pulled-long-ago", &[], 400 * DAY), 31 * DAY),
        ];
        assert_eq!(
            expired(&not_pulled_in_30_days, &images),
            by(1, &["pulled-long-ago", "never-pulled-old"])
        );
    }

    #[test]
    fn tag_status_selects_tagged_untagged_or_any() {
        let images = [
            image("tagged", &["v1"], 3 * DAY),
            image("untagged", &[], 2 * DAY),
        ];
        let older_than_a_day = |tags: &str| {
            format!(
                r#"{tags}, "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1"#
            )
        };
        let everything = older_than_a_day(r#""tagStatus": "tagged", "tagPatternList": ["*"]"#);
        assert_eq!(
            expired(&policy(&[(1, &everything)]), &images),
            by(1, &["tagged"])
        );
        let untagged = older_than_a_day(r#""tagStatus": "untagged""#);
        assert_eq!(
            expired(&policy(&[(1, &untagged)]), &images),
            by(1, &["untagged"])
        );
        let any = older_than_a_day(r#""tagStatus": "any""#);
        assert_eq!(
            expired(&policy(&[(1, &any)]), &images),
            by(1, &["tagged", "untagged"])
        );
    }

    #[test]
    fn every_prefix_must_start_some_tag() {
        let selection = TagSelection::Tagged {
            prefixes: vec!["alpha".into(), "beta".into()],
            patterns: vec![],
        };
        let tags = |tags: &[&str]| tags.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert!(selects(&selection, &tags(&["alpha-1", "beta-1"])));
        assert!(selects(&selection, &tags(&["beta-1", "x", "alpha"])));
        assert!(!selects(&selection, &tags(&["alpha-1"])));
        assert!(!selects(&selection, &tags(&["alphabeta"])));
        // One tag may answer for several prefixes.
        let nested = TagSelection::Tagged {
            prefixes: vec!["v".into(), "v1.".into()],
            patterns: vec![],
        };
        assert!(selects(&nested, &tags(&["v1.2"])));
    }

    #[test]
    fn every_pattern_must_match_some_tag() {
        let selection = TagSelection::Tagged {
            prefixes: vec![],
            patterns: vec!["*-prod".into(), "v*".into()],
        };
        let tags = |tags: &[&str]| tags.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert!(selects(&selection, &tags(&["eu-prod", "v2"])));
        assert!(!selects(&selection, &tags(&["eu-prod"])));
        assert!(!selects(&selection, &tags(&["v2-staging"])));
        assert!(selects(&selection, &tags(&["v2-prod"])));
    }

    #[test]
    fn star_matches_any_run_at_the_start_middle_or_end() {
        let cases = [
            ("prod*", "prod", true),
            ("prod*", "production-team1", true),
            ("prod*", "preprod", false),
            ("*prod", "preprod", true),
            ("*prod", "production", false),
            ("*prod*", "repo-production", true),
            ("*prod*", "prod-team", true),
            ("*prod*", "pro-d", false),
            ("a*c", "ac", true),
            ("a*c", "abbbc", true),
            ("a*c", "acb", false),
            ("v*.*.*", "v1.22.3", true),
            ("v*.*.*", "v1.2", false),
            ("*test*1*2*3", "my-test-1-2-3", true),
            ("a*b*c", "abcabc", true),
            ("*ab", "aab", true),
            ("ab*ba", "aba", false),
            ("*", "anything", true),
            ("**", "x", true),
            ("latest", "latest", true),
            ("latest", "latest-2", false),
            ("latest", "not-latest", false),
        ];
        for (pattern, tag, want) in cases {
            assert_eq!(matches(pattern, tag), want, "{pattern} against {tag}");
        }
    }

    #[test]
    fn question_mark_is_not_a_wildcard() {
        assert!(matches("v?", "v?"));
        assert!(!matches("v?", "v1"));
        assert!(matches("*?", "why?"));
        assert!(!matches("*?", "why"));
        let images = [
            image("literal", &["v?"], 2 * DAY),
            image("digit", &["v1"], 2 * DAY),
        ];
        let selection = r#""tagStatus": "tagged", "tagPatternList": ["v?"],
            "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1"#;
        assert_eq!(
            expired(&policy(&[(1, selection)]), &images),
            by(1, &["literal"])
        );
    }

    #[test]
    fn results_come_by_rule_then_push_time_then_digest() {
        let older_than_a_day = |tags: &str| {
            format!(
                r#"{tags}, "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1"#
            )
        };
        let policy = policy(&[
            (1, &older_than_a_day(r#""tagStatus": "untagged""#)),
            (2, &older_than_a_day(r#""tagStatus": "any""#)),
        ]);
        let images = [
            image("t-new", &["x"], 2 * DAY),
            image("u-b", &[], 3 * DAY),
            image("t-old", &["y"], 5 * DAY),
            image("u-a", &[], 3 * DAY),
            image("u-old", &[], 4 * DAY),
        ];
        let mut want = by(1, &["u-old", "u-a", "u-b"]);
        want.extend(by(2, &["t-old", "t-new"]));
        assert_eq!(expired(&policy, &images), want);
        assert_eq!(expired(&policy, &[]), []);
    }
}
