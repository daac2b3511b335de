//! Repository names, tags and references against the distribution spec's grammars.

use proptest::prelude::*;

use super::{Re, any_text};
use crate::oci::{Digest, Reference, RepoName, Tag};

/// The longest name `RepoName` documents accepting.
pub(super) const MAX_NAME_LEN: usize = 255;

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
pub(super) fn name_grammar() -> Re {
    let alnum = || Re::plus(Re::Byte(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    let component = || {
        Re::Sequence(vec![
            alnum(),
            Re::star(Re::Sequence(vec![
                Re::Either(vec![
                    Re::Literal("."),
                    Re::Literal("_"),
                    Re::Literal("__"),
                    Re::plus(Re::Literal("-")),
                ]),
                alnum(),
            ])),
        ])
    };
    Re::Sequence(vec![
        component(),
        Re::star(Re::Sequence(vec![Re::Literal("/"), component()])),
    ])
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
fn tag_grammar() -> Re {
    Re::Sequence(vec![
        Re::Byte(|b| b.is_ascii_alphanumeric() || b == b'_'),
        Re::Repeat(
            Box::new(Re::Byte(|b| {
                b.is_ascii_alphanumeric() || b"._-".contains(&b)
            })),
            0,
            Some(127),
        ),
    ])
}

/// Strings near the grammars: their characters, some that are not, and lengths around the
/// limits.
fn near_names() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9._/-]{1,20}",
        "[a-zA-Z0-9._/:@ -]{0,40}",
        "[a-z0-9._/-]{240,270}",
        "[a-z0-9]{250,260}",
    ]
}

/// A name built from the grammar, of any length (the limit is not part of the grammar).
pub(super) fn grammar_name() -> impl Strategy<Value = String> {
    let alnum = "[a-z0-9]{1,8}";
    let separator = prop_oneof![
        Just(".".to_string()),
        Just("_".to_string()),
        Just("__".to_string()),
        "-{1,4}",
    ];
    let component =
        (alnum, prop::collection::vec((separator, alnum), 0..4)).prop_map(|(first, rest)| {
            rest.into_iter()
                .fold(first, |name, (separator, run)| name + &separator + &run)
        });
    prop::collection::vec(component, 1..12).prop_map(|components| components.join("/"))
}

proptest! {
    #![proptest_config(super::default_cases())]

    #[test]
    fn parsing_any_text_never_panics(text in any_text()) {
        let name = text.parse::<RepoName>();
        let tag = text.parse::<Tag>();
        let reference = text.parse::<Reference>();
        prop_assert_eq!(
            name.is_ok(),
            text.len() <= MAX_NAME_LEN && name_grammar().matches(&text)
        );
        prop_assert_eq!(tag.is_ok(), tag_grammar().matches(&text));
        prop_assert_eq!(
            reference.is_ok(),
            text.parse::<Digest>().is_ok() || (!text.contains(':') && tag.is_ok())
        );
    }

    #[test]
    fn names_are_accepted_exactly_when_the_grammar_matches(text in near_names()) {
        let expected = text.len() <= MAX_NAME_LEN && name_grammar().matches(&text);
        prop_assert_eq!(text.parse::<RepoName>().is_ok(), expected, "{:?}", text);
    }

    #[test]
    fn names_from_the_grammar_are_accepted_up_to_the_limit(name in grammar_name()) {
        prop_assert!(name_grammar().matches(&name));
        match name.parse::<RepoName>() {
            Ok(parsed) => {
                prop_assert!(name.len() <= MAX_NAME_LEN);
                prop_assert_eq!(parsed.as_str(), name.as_str());
                prop_assert_eq!(parsed.to_string().parse::<RepoName>(), Ok(parsed));
            }
            Err(_) => prop_assert!(name.len() > MAX_NAME_LEN, "refused {:?}", name),
        }
    }

    #[test]
    fn tags_are_accepted_exactly_when_the_grammar_matches(
        text in prop_oneof!["[a-zA-Z0-9._-]{0,10}", "[a-zA-Z0-9._/:@+ -]{0,20}", "[a-z_]{125,131}"]
    ) {
        prop_assert_eq!(text.parse::<Tag>().is_ok(), tag_grammar().matches(&text), "{:?}", text);
    }

    #[test]
    fn tags_from_the_grammar_round_trip(tag in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}") {
        let parsed: Tag = tag.parse().unwrap();
        prop_assert_eq!(parsed.as_str(), tag.as_str());
        let reference: Reference = tag.parse().unwrap();
        prop_assert_eq!(&reference, &Reference::Tag(parsed));
        prop_assert_eq!(reference.to_string().parse::<Reference>(), Ok(reference));
    }

    #[test]
    fn digest_references_round_trip(bytes in any::<Vec<u8>>()) {
        let digest = Digest::sha256(&bytes);
        let reference: Reference = digest.to_string().parse().unwrap();
        prop_assert_eq!(&reference, &Reference::Digest(digest.clone()));
        prop_assert_eq!(reference.to_string(), digest.to_string());
    }
}
