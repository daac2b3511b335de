//! Whether an installed package version is affected, by an OSV advisory's `affected` entry:
//! its `ECOSYSTEM` ranges (`introduced`, `fixed` and `last_affected` events, in the
//! distribution's version order) and its explicit `versions`, as the OSV schema's evaluation
//! reads them. Part of `scan`; depends on `scan::versions`.

use std::cmp::Ordering;

use serde::Deserialize;

use super::versions::Scheme;

/// The part of an OSV `affected` entry that says which versions are affected.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Affected {
    #[serde(default)]
    pub ranges: Vec<Range>,
    #[serde(default)]
    pub versions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Range {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One event of a range; OSV writes each as an object with one member.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    /// For `GIT` ranges only; ignored here.
    Limit(String),
}

impl Affected {
    /// Whether `version`, ordered by `scheme`, is listed or falls in one of the ranges.
    pub fn affects(&self, scheme: Scheme, version: &str) -> bool {
        let equal = |listed: &String| scheme.compare(version, listed) == Ordering::Equal;
        self.versions.iter().any(equal)
            || self
                .ranges
                .iter()
                .filter(|range| range.kind == "ECOSYSTEM")
                .any(|range| range.contains(scheme, version))
    }
}

impl Range {
    /// Walks the events in version order: an `introduced` at or below the version opens an
    /// affected span, a `fixed` at or below it or a `last_affected` below it closes one.
    fn contains(&self, scheme: Scheme, version: &str) -> bool {
        let mut events: Vec<(&str, &Event)> = self
            .events
            .iter()
            .filter_map(|event| match event {
                Event::Introduced(at) | Event::Fixed(at) | Event::LastAffected(at) => {
                    Some((at.as_str(), event))
                }
                Event::Limit(_) => None,
            })
            .collect();
        // "0" is OSV's "before every version", whatever the scheme makes of it.
        events.sort_by(|(a, _), (b, _)| match (*a == "0", *b == "0") {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => scheme.compare(a, b),
        });
        let mut affected = false;
        for (at, event) in events {
            let order = if at == "0" {
                Ordering::Greater
            } else {
                scheme.compare(version, at)
            };
            match event {
                Event::Introduced(_) if order != Ordering::Less => affected = true,
                Event::Fixed(_) if order != Ordering::Less => affected = false,
                Event::LastAffected(_) if order == Ordering::Greater => affected = false,
                _ => {}
            }
        }
        affected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affected(json: &str) -> Affected {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn versions_from_introduced_up_to_fixed_are_affected() {
        let entry = affected(
            r#"{"ranges": [{"type": "ECOSYSTEM", "events": [
                {"introduced": "0"}, {"fixed": "1:2.4-1"}]}]}"#,
        );
        // Without an epoch, 2.4-1 is older than 1:2.4-1.
        for (version, expected) in [
            ("2.4-1", true),
            ("1:2.4-0", true),
            ("1:2.4-1~deb12u1", true),
            ("1:2.4-1", false),
            ("1:2.4-1+b1", false),
            ("2:0.1", false),
        ] {
            assert_eq!(entry.affects(Scheme::Dpkg, version), expected, "{version}");
        }
    }

    #[test]
    fn several_spans_last_affected_and_unsorted_events() {
        let entry = affected(
            r#"{"ranges": [{"type": "ECOSYSTEM", "events": [
                {"fixed": "1.5"}, {"introduced": "2.0"}, {"introduced": "1.0"},
                {"last_affected": "2.3"}]}]}"#,
        );
        for (version, expected) in [
            ("0.9", false),
            ("1.0", true),
            ("1.4.9", true),
            ("1.5", false),
            ("1.9", false),
            ("2.0", true),
            ("2.3", true),
            ("2.3.1", false),
        ] {
            assert_eq!(entry.affects(Scheme::Dpkg, version), expected, "{version}");
        }
    }

    #[test]
    fn listed_versions_count_and_other_range_kinds_do_not() {
        let entry = affected(
            r#"{"versions": ["1.2-r0"], "ranges": [{"type": "GIT", "events": [
                {"introduced": "0"}, {"limit": "abc"}]}]}"#,
        );
        assert!(entry.affects(Scheme::Apk, "1.2-r0"));
        assert!(!entry.affects(Scheme::Apk, "1.3-r0"));
        assert!(!affected("{}").affects(Scheme::Rpm, "1.0-1"));
    }
}
