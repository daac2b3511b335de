//! Docker token scopes (`repository:<name>:<actions>`, `registry:catalog:*`): never a panic,
//! agreement with a reference model, and the scopes challenges ask for parse back.

use proptest::prelude::*;

use super::any_text;
use super::default_cases;
use super::names::{MAX_NAME_LEN, grammar_name, name_grammar};
use crate::auth::grants::{parse_scope, scope_of};
use crate::auth::policy::ACTIONS;
use crate::auth::token::AccessEntry;
use crate::auth::{AuthError, Need};

/// The reference model: `type:name:actions` split at the first and the last colon; a
/// repository must have a valid name, the registry is named `catalog`; actions other than
/// Docker's are dropped, the others kept in order.
fn reference(scope: &str) -> Option<(String, String, Vec<String>)> {
    let first = scope.find(':')?;
    let last = scope.rfind(':').filter(|&last| last > first)?;
    let (kind, name, actions) = (&scope[..first], &scope[first + 1..last], &scope[last + 1..]);
    let valid = match kind {
        "repository" => name.len() <= MAX_NAME_LEN && name_grammar().matches(name),
        "registry" => name == "catalog",
        _ => false,
    };
    let docker = ["pull", "push", "delete", "*"];
    let actions = actions.split(',').filter(|a| docker.contains(a));
    valid.then(|| {
        (
            kind.into(),
            name.into(),
            actions.map(str::to_string).collect(),
        )
    })
}

fn parsed(scope: &str) -> Result<Option<(String, String, Vec<String>)>, TestCaseError> {
    Ok(match parse_scope(scope) {
        Ok(AccessEntry {
            kind,
            name,
            actions,
        }) => Some((kind, name, actions)),
        Err(AuthError::InvalidScope(quoted)) => {
            prop_assert_eq!(quoted, scope);
            None
        }
        Err(other) => return Err(TestCaseError::fail(format!("{scope:?}: {other:?}"))),
    })
}

/// Scopes near the grammar: right and wrong types, names and actions, missing and extra colons.
fn near_scopes() -> impl Strategy<Value = String> {
    let kind = prop::sample::select(vec![
        "repository",
        "registry",
        "Repository",
        "repository(plugin)",
        "",
        "token",
    ]);
    let name = prop_oneof![
        3 => grammar_name(),
        1 => prop::sample::select(vec![
            "catalog", "Catalog", "", "Foo", "a//b", "a/../b", "localhost:5000/foo", "a%2Fb",
            "a:b", " a",
        ])
        .prop_map(str::to_string),
        1 => "[a-z]{250,260}",
    ];
    let action = prop::sample::select(vec![
        "pull", "push", "delete", "*", "PULL", "", "x", " pull",
    ]);
    let actions = prop::collection::vec(action, 0..4).prop_map(|a| a.join(","));
    let separator = prop::sample::select(vec![":", ":", ":", "", "::"]);
    (kind, separator.clone(), name, separator, actions)
        .prop_map(|(kind, s1, name, s2, actions)| format!("{kind}{s1}{name}{s2}{actions}"))
}

proptest! {
    #![proptest_config(default_cases())]

    #[test]
    fn any_text_parses_as_the_reference_says(scope in any_text()) {
        prop_assert_eq!(parsed(&scope)?, reference(&scope));
    }

    #[test]
    fn near_scopes_parse_as_the_reference_says(scope in near_scopes()) {
        prop_assert_eq!(parsed(&scope)?, reference(&scope), "{:?}", scope);
    }

    /// A scope written from its parts parses back to them.
    #[test]
    fn formatted_scopes_parse_back(
        name in grammar_name(),
        actions in prop::collection::vec(prop::sample::select(vec!["pull", "push", "delete", "*"]), 0..5),
    ) {
        prop_assume!(name.len() <= MAX_NAME_LEN);
        let scope = format!("repository:{name}:{}", actions.join(","));
        let expected = ("repository".to_string(), name, actions.iter().map(|a| a.to_string()).collect());
        prop_assert_eq!(parsed(&scope)?, Some(expected));
    }

    /// The scope a challenge asks for is one the token endpoint takes, naming the same
    /// repository and at least the Docker action that covers the need.
    #[test]
    fn challenge_scopes_parse_back(
        name in prop::option::of(grammar_name()),
        action in prop::sample::select(ACTIONS),
    ) {
        let repository = name.filter(|n| n.len() <= MAX_NAME_LEN).map(|n| n.parse().unwrap());
        let need = Need { repository: repository.clone(), action };
        let scope = scope_of(&need);
        let Some((kind, name, actions)) = parsed(&scope)? else {
            return Err(TestCaseError::fail(format!("{scope:?} refused")));
        };
        match repository {
            None => prop_assert_eq!((kind.as_str(), name.as_str(), actions), ("registry", "catalog", vec!["*".to_string()])),
            Some(repository) => {
                prop_assert_eq!(kind, "repository");
                prop_assert_eq!(name.as_str(), repository.as_str());
                prop_assert!(!actions.is_empty());
                if ["ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"].contains(&action) {
                    prop_assert_eq!(actions, vec!["pull".to_string(), "push".to_string()]);
                }
            }
        }
    }
}
