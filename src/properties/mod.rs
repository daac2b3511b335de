//! Property tests for everything that parses outside input: names, digests, HTTP ranges,
//! manifests, IAM policies, token scopes, SigV4 headers and lifecycle policies. The properties
//! are of three kinds: parsing never panics, whatever the input; what a parser accepts
//! round-trips through its formatting where the format allows it; and a parser agrees with a
//! small reference model, written here independently from the specs, where one exists.
//!
//! Cheap properties run proptest's default 256 cases; expensive ones (deep nesting, SigV4)
//! fewer, so that the whole unit test run stays quick on two cores. Failures are not written
//! to regression files in the source tree: each bug a property found is pinned instead by a
//! plain `found_by_the_properties` test next to it.
//!
//! `ranges.rs` and `sigv4.rs` are compiled as children of the modules they test
//! (`http::request`, private to `http`, and `auth::sigv4`, whose parsers are private); they use
//! the helpers below all the same.

mod digests;
mod lifecycle;
mod manifests;
mod names;
mod policies;
mod scopes;

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

/// A tiny regular-expression engine for reference models: a spec's grammar written as it reads
/// there, matched by following every possible position at once (no backtracking, so no
/// blow-up on long inputs). Much slower than the parsers it checks, and much simpler.
pub enum Re {
    /// One byte of a class.
    Byte(fn(u8) -> bool),
    Literal(&'static str),
    Sequence(Vec<Re>),
    Either(Vec<Re>),
    /// `min` to `max` (`None`: any number of) repetitions.
    Repeat(Box<Re>, usize, Option<usize>),
}

impl Re {
    pub fn plus(inner: Re) -> Re {
        Re::Repeat(Box::new(inner), 1, None)
    }

    pub fn star(inner: Re) -> Re {
        Re::Repeat(Box::new(inner), 0, None)
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
        self.ends(bytes, BTreeSet::from([0])).contains(&bytes.len())
    }

    /// Where a match can end when it starts at any of `starts`.
    fn ends(&self, text: &[u8], starts: BTreeSet<usize>) -> BTreeSet<usize> {
        match self {
            Re::Byte(class) => starts
                .into_iter()
                .filter(|&at| text.get(at).is_some_and(|&b| class(b)))
                .map(|at| at + 1)
                .collect(),
            Re::Literal(literal) => starts
                .into_iter()
                .filter(|&at| text[at..].starts_with(literal.as_bytes()))
                .map(|at| at + literal.len())
                .collect(),
            Re::Sequence(parts) => parts.iter().fold(starts, |at, part| part.ends(text, at)),
            Re::Either(choices) => choices
                .iter()
                .flat_map(|choice| choice.ends(text, starts.clone()))
                .collect(),
            Re::Repeat(inner, min, max) => {
                let mut frontier = starts;
                for _ in 0..*min {
                    frontier = inner.ends(text, frontier);
                }
                let mut reached = frontier.clone();
                match max {
                    Some(max) => {
                        for _ in *min..*max {
                            frontier = inner.ends(text, frontier);
                            if frontier.is_empty() {
                                break;
                            }
                            reached.extend(&frontier);
                        }
                    }
                    // Every repetition consumes input, so only new positions need following.
                    None => loop {
                        frontier = inner.ends(text, frontier);
                        frontier.retain(|at| !reached.contains(at));
                        if frontier.is_empty() {
                            break;
                        }
                        reached.extend(&frontier);
                    },
                }
                reached
            }
        }
    }
}

/// `cases` cases per property, and failures not written to regression files in the source
/// tree: a failure found once becomes a plain example test next to its property.
pub fn cases(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The default number of cases, for cheap properties.
pub fn default_cases() -> ProptestConfig {
    cases(ProptestConfig::default().cases)
}

/// Strings of any characters: short ones of every kind (control characters, unicode), and long
/// ones.
pub fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        1 => proptest::collection::vec(any::<char>(), 0..5000)
            .prop_map(|chars| chars.into_iter().collect()),
    ]
}

/// Any JSON value, its strings often `strings` and its keys often `keys`, so that it comes
/// near the documents a parser reads.
pub fn json_like(
    strings: impl Strategy<Value = String> + 'static,
    keys: impl Strategy<Value = &'static str> + 'static,
) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![Just(2.0), Just(-0.0), any::<f64>()].prop_map(Value::from),
        Just(json!(1)),
        strings.prop_map(Value::from),
        ".{0,10}".prop_map(Value::from),
    ];
    let key = prop_oneof![keys.prop_map(str::to_string), ".{0,6}"];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// How a valid document can be spoiled: one place replaced, or one member removed.
#[derive(Debug, Clone)]
pub enum Change {
    Replace(Index, Value),
    Remove(Index),
}

/// Changes whose replacements come from `values`.
pub fn change(values: impl Strategy<Value = Value>) -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (any::<Index>(), values).prop_map(|(i, v)| Change::Replace(i, v)),
        1 => any::<Index>().prop_map(Change::Remove),
    ]
}

/// Every place in `value`, as the keys and indexes that lead there.
fn places(value: &Value, here: &mut Vec<Value>, all: &mut Vec<Vec<Value>>) {
    all.push(here.clone());
    let children: Vec<(Value, &Value)> = match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (json!(i), v))
            .collect(),
        Value::Object(members) => members.iter().map(|(k, v)| (json!(k), v)).collect(),
        _ => return,
    };
    for (step, child) in children {
        here.push(step);
        places(child, here, all);
        here.pop();
    }
}

/// The place `place` leads to in `value`.
fn at<'a>(value: &'a mut Value, place: &[Value]) -> &'a mut Value {
    place.iter().fold(value, |value, step| match step {
        Value::String(key) => &mut value[key.as_str()],
        _ => &mut value[step.as_u64().unwrap() as usize],
    })
}

/// Applies `change` to `document`.
pub fn apply(document: &mut Value, change: &Change) {
    let mut all: Vec<Vec<Value>> = Vec::new();
    places(document, &mut Vec::new(), &mut all);
    match change {
        Change::Replace(index, replacement) => {
            *at(document, index.get::<Vec<Value>>(&all)) = replacement.clone();
        }
        Change::Remove(index) => {
            let place = index.get::<Vec<Value>>(&all);
            if let Some((Value::String(key), parent)) = place.split_last()
                && let Value::Object(members) = at(document, parent)
            {
                members.remove(key);
            }
        }
    }
}

#[test]
fn the_reference_engine_matches_what_it_should() {
    let lower = || Re::Byte(|b| b.is_ascii_lowercase());
    let word = Re::Sequence(vec![
        Re::plus(lower()),
        Re::star(Re::Sequence(vec![
            Re::Either(vec![Re::Literal("_"), Re::Literal("__")]),
            Re::plus(lower()),
        ])),
    ]);
    for (text, expected) in [
        ("a", true),
        ("a_b__c", true),
        ("", false),
        ("a___b", false),
        ("a_", false),
        ("_a", false),
    ] {
        assert_eq!(word.matches(text), expected, "{text}");
    }
    let short = Re::Repeat(Box::new(lower()), 1, Some(3));
    for (text, expected) in [("", false), ("a", true), ("abc", true), ("abcd", false)] {
        assert_eq!(short.matches(text), expected, "{text}");
    }
}
