//! Policy conditions: IAM's operators on the five request keys Wharf knows, parsed once into
//! typed values (patterns, networks, instants) so that evaluation parses nothing.
//!
//! Each key has one type, and only that type's operators, or `Null`, may test it:
//! - `aws:username`, `ecr:repository`: `StringEquals`, `StringNotEquals`,
//!   `StringEqualsIgnoreCase`, `StringNotEqualsIgnoreCase`, `StringLike`, `StringNotLike`;
//! - `aws:SourceIp`: `IpAddress`, `NotIpAddress`, with CIDRs or single addresses;
//! - `aws:CurrentTime`: `DateEquals`, `DateNotEquals`, `DateLessThan`, `DateLessThanEquals`,
//!   `DateGreaterThan`, `DateGreaterThanEquals`;
//! - `aws:SecureTransport`: `Bool`, with `"true"` or `"false"`.
//!
//! `Null` takes `"true"` (the key must be absent) or `"false"` (present). Every other operator
//! also comes as `…IfExists`. Anything else is refused at parse time: other operators
//! (`ForAnyValue:`/`ForAllValues:`, `Numeric…`, `Arn…`, `Binary…`), other keys, and operators
//! on a key of another type, such as `StringLike` on `aws:SourceIp` or `DateLessThan` on
//! `aws:username`: they could never mean what their author wanted. Key names compare
//! case-insensitively, as in IAM; operator names are exact.
//!
//! `aws:username` is absent for anonymous callers and `ecr:repository` for registry-wide
//! actions; the other keys are always present. As in IAM, an absent key fails positive
//! operators and satisfies negated ones (`…Not…`); `…IfExists` makes every operator hold when
//! its key is absent. Several values for one key: any may match, or for negated operators none
//! may. Several keys, and several operators in a block, must all hold.
//!
//! Dates are ISO 8601 with an offset (`2026-01-01T00:00:00Z`, `…+02:00`, fractional seconds),
//! a plain date meaning midnight UTC, or epoch seconds; they compare with `aws:CurrentTime` at
//! full precision.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};
use serde_json::{Map, Value};
use time::format_description::{self, well_known::Iso8601};
use time::{Date, OffsetDateTime};
use wildmatch::WildMatch;

use super::Request;

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Condition {
    test: Test,
    /// A `Not` operator: holds when no value matches.
    negated: bool,
    /// `…IfExists`: holds when the key is absent.
    if_exists: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Key {
    Text(TextKey),
    SourceIp,
    CurrentTime,
    SecureTransport,
}

/// The string keys, the only ones that can be absent.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TextKey {
    Username,
    Repository,
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Equals(TextKey, Vec<String>),
    /// Values lower-cased at parse time.
    EqualsIgnoreCase(TextKey, Vec<String>),
    Like(TextKey, Vec<WildMatch>),
    Ip(Vec<IpNet>),
    Date(DateOp, Vec<OffsetDateTime>),
    Bool(Vec<bool>),
    /// `true` holds when the key is absent, `false` when it is present.
    Null(Key, Vec<bool>),
}

/// An operator without `Not` and `IfExists`.
#[derive(Clone, Copy)]
enum Operator {
    Equals,
    EqualsIgnoreCase,
    Like,
    Ip,
    Date(DateOp),
    Bool,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum DateOp {
    Equals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

/// Parses a statement's `Condition` block.
pub(super) fn parse(block: Map<String, Value>) -> Result<Vec<Condition>, String> {
    let mut conditions = Vec::new();
    for (name, body) in block {
        let (operator, negated, if_exists) = parse_operator(&name).ok_or_else(|| {
            format!(
                "unsupported condition operator {name:?}: Wharf supports String…, IpAddress, \
                 NotIpAddress, Date…, Bool and Null, and …IfExists forms"
            )
        })?;
        let Value::Object(body) = body else {
            return Err(format!("condition {name} must be an object"));
        };
        for (key_name, values) in body {
            let key = parse_key(&key_name).ok_or_else(|| {
                format!(
                    "condition {name}: unsupported key {key_name:?}; Wharf knows aws:username, \
                     ecr:repository, aws:SourceIp, aws:CurrentTime and aws:SecureTransport"
                )
            })?;
            let test = parse_test(operator, key, &values)
                .map_err(|e| format!("condition {name} on {key_name}: {e}"))?;
            conditions.push(Condition {
                test,
                negated,
                if_exists,
            });
        }
    }
    Ok(conditions)
}

/// The operator, whether it is negated, and whether it is an `IfExists` form.
fn parse_operator(name: &str) -> Option<(Operator, bool, bool)> {
    let (base, if_exists) = match name.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let (operator, negated) = match base {
        "StringEquals" => (Operator::Equals, false),
        "StringNotEquals" => (Operator::Equals, true),
        "StringEqualsIgnoreCase" => (Operator::EqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Operator::EqualsIgnoreCase, true),
        "StringLike" => (Operator::Like, false),
        "StringNotLike" => (Operator::Like, true),
        "IpAddress" => (Operator::Ip, false),
        "NotIpAddress" => (Operator::Ip, true),
        "DateEquals" => (Operator::Date(DateOp::Equals), false),
        "DateNotEquals" => (Operator::Date(DateOp::Equals), true),
        "DateLessThan" => (Operator::Date(DateOp::LessThan), false),
        "DateLessThanEquals" => (Operator::Date(DateOp::LessThanEquals), false),
        "DateGreaterThan" => (Operator::Date(DateOp::GreaterThan), false),
        "DateGreaterThanEquals" => (Operator::Date(DateOp::GreaterThanEquals), false),
        "Bool" => (Operator::Bool, false),
        "Null" if !if_exists => (Operator::Null, false),
        _ => return None,
    };
    Some((operator, negated, if_exists))
}

fn parse_key(name: &str) -> Option<Key> {
    match name.to_ascii_lowercase().as_str() {
        "aws:username" => Some(Key::Text(TextKey::Username)),
        "ecr:repository" => Some(Key::Text(TextKey::Repository)),
        "aws:sourceip" => Some(Key::SourceIp),
        "aws:currenttime" => Some(Key::CurrentTime),
        "aws:securetransport" => Some(Key::SecureTransport),
        _ => None,
    }
}

fn parse_test(operator: Operator, key: Key, values: &Value) -> Result<Test, String> {
    let values = scalars(values)?;
    Ok(match (operator, key) {
        (Operator::Equals, Key::Text(key)) => Test::Equals(key, values),
        (Operator::EqualsIgnoreCase, Key::Text(key)) => {
            Test::EqualsIgnoreCase(key, values.iter().map(|v| v.to_lowercase()).collect())
        }
        (Operator::Like, Key::Text(key)) => {
            Test::Like(key, values.iter().map(|v| WildMatch::new(v)).collect())
        }
        (Operator::Ip, Key::SourceIp) => Test::Ip(parse_all(&values, parse_net)?),
        (Operator::Date(op), Key::CurrentTime) => Test::Date(op, parse_all(&values, parse_time)?),
        (Operator::Bool, Key::SecureTransport) => Test::Bool(parse_all(&values, parse_bool)?),
        (Operator::Null, key) => Test::Null(key, parse_all(&values, parse_bool)?),
        _ => {
            let takes = match key {
                Key::Text(_) => "String operators",
                Key::SourceIp => "IpAddress and NotIpAddress",
                Key::CurrentTime => "Date operators",
                Key::SecureTransport => "Bool",
            };
            return Err(format!("this key takes only {takes} and Null"));
        }
    })
}

/// A value or a list of values; IAM also takes numbers and booleans, as their text.
fn scalars(value: &Value) -> Result<Vec<String>, String> {
    let items = match value {
        Value::Array(items) => items.as_slice(),
        one => std::slice::from_ref(one),
    };
    if items.is_empty() {
        return Err("no values".into());
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            Value::Number(_) | Value::Bool(_) => Ok(item.to_string()),
            _ => Err(format!("{item} is not a string")),
        })
        .collect()
}

fn parse_all<T>(values: &[String], parse: fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    values.iter().map(|v| parse(v)).collect()
}

/// A CIDR, or a single address meaning /32 or /128. IPv4-mapped IPv6 networks become IPv4,
/// as source addresses do.
fn parse_net(text: &str) -> Result<IpNet, String> {
    let net = match (text.parse::<IpNet>(), text.parse::<IpAddr>()) {
        (Ok(net), _) => net,
        (_, Ok(address)) => IpNet::from(address),
        _ => return Err(format!("{text:?} is neither a CIDR nor an IP address")),
    };
    Ok(match net {
        IpNet::V6(v6) => match (v6.addr().to_ipv4_mapped(), v6.prefix_len().checked_sub(96)) {
            (Some(v4), Some(len)) => Ipv4Net::new_assert(v4, len).into(),
            _ => net,
        },
        IpNet::V4(_) => net,
    })
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    let plain_date =
        format_description::parse_borrowed::<2>("[year]-[month]-[day]").expect("a valid format");
    let time = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse()
            .ok()
            .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
    } else if let Ok(time) = OffsetDateTime::parse(text, &Iso8601::DEFAULT) {
        Some(time)
    } else {
        let date = Date::parse(text, &plain_date).ok();
        date.map(|date| date.midnight().assume_utc())
    };
    time.ok_or_else(|| {
        format!(
            "{text:?} is not a date: use ISO 8601 with an offset (2026-01-01T00:00:00Z), \
             a date (2026-01-01) or epoch seconds"
        )
    })
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{text:?} is neither true nor false")),
    }
}

impl Condition {
    pub(super) fn holds(&self, request: &Request<'_>) -> bool {
        match self.test.matches(request) {
            Some(matched) => matched != self.negated,
            // IAM: an absent key fails positive operators and satisfies negated ones.
            None => self.if_exists || self.negated,
        }
    }
}

impl Test {
    /// Whether any value matches the request; `None` when the key is absent.
    fn matches(&self, request: &Request<'_>) -> Option<bool> {
        Some(match self {
            Test::Equals(key, values) => {
                let actual = key.value(request)?;
                values.iter().any(|v| v == actual)
            }
            Test::EqualsIgnoreCase(key, values) => {
                let actual = key.value(request)?.to_lowercase();
                values.contains(&actual)
            }
            Test::Like(key, patterns) => {
                let actual = key.value(request)?;
                patterns.iter().any(|p| p.matches(actual))
            }
            Test::Ip(nets) => {
                let source = request.source_ip.to_canonical();
                nets.iter().any(|net| net.contains(&source))
            }
            Test::Date(op, times) => {
                let now = OffsetDateTime::from(request.current_time);
                times.iter().any(|&time| match op {
                    DateOp::Equals => now == time,
                    DateOp::LessThan => now < time,
                    DateOp::LessThanEquals => now <= time,
                    DateOp::GreaterThan => now > time,
                    DateOp::GreaterThanEquals => now >= time,
                })
            }
            Test::Bool(values) => values.contains(&request.secure_transport),
            Test::Null(key, values) => {
                let absent = match key {
                    Key::Text(key) => key.value(request).is_none(),
                    _ => false,
                };
                values.contains(&absent)
            }
        })
    }
}

impl TextKey {
    fn value<'a>(self, request: &Request<'a>) -> Option<&'a str> {
        match self {
            TextKey::Username => request.principal,
            TextKey::Repository => request.repository,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{NOW, request};
    use super::*;

    /// `alice` pulling `team/app` over TLS from 10.1.2.3 at `NOW`.
    fn alice() -> Request<'static> {
        request(Some("alice"), "ecr:BatchGetImage", Some("team/app"))
    }

    /// An anonymous registry-wide request: both string keys are absent.
    fn nobody() -> Request<'static> {
        request(None, "ecr:DescribeRepositories", None)
    }

    fn holds(block: &str, request: &Request<'_>) -> bool {
        let block = serde_json::from_str(block).unwrap();
        parse(block).unwrap().iter().all(|c| c.holds(request))
    }

    fn check(rows: &[(&str, bool)], request: &Request<'_>) {
        for &(block, expected) in rows {
            assert_eq!(holds(block, request), expected, "{block}");
        }
    }

    #[test]
    fn string_operators_are_case_sensitive_except_ignore_case() {
        check(
            &[
                (r#"{"StringEquals":{"aws:username":"alice"}}"#, true),
                (r#"{"StringEquals":{"aws:username":"Alice"}}"#, false),
                (r#"{"StringEquals":{"aws:username":["bob","alice"]}}"#, true),
                (
                    r#"{"StringNotEquals":{"aws:username":["bob","carol"]}}"#,
                    true,
                ),
                (
                    r#"{"StringNotEquals":{"aws:username":["bob","alice"]}}"#,
                    false,
                ),
                (
                    r#"{"StringEqualsIgnoreCase":{"aws:username":"ALICE"}}"#,
                    true,
                ),
                (
                    r#"{"StringEqualsIgnoreCase":{"aws:username":"bob"}}"#,
                    false,
                ),
                (
                    r#"{"StringNotEqualsIgnoreCase":{"aws:username":"Alice"}}"#,
                    false,
                ),
                (
                    r#"{"StringNotEqualsIgnoreCase":{"aws:username":"bob"}}"#,
                    true,
                ),
                (r#"{"StringLike":{"ecr:repository":"team/*"}}"#, true),
                (r#"{"StringLike":{"ecr:repository":"team/ap?"}}"#, true),
                (r#"{"StringLike":{"ecr:repository":"Team/*"}}"#, false),
                (r#"{"StringLike":{"ecr:repository":["x/*","*/app"]}}"#, true),
                (r#"{"StringNotLike":{"ecr:repository":"other/*"}}"#, true),
                (
                    r#"{"StringNotLike":{"ecr:repository":["other/*","team/*"]}}"#,
                    false,
                ),
                (r#"{"StringEquals":{"AWS:UserName":"alice"}}"#, true),
                (r#"{"StringEquals":{"ECR:REPOSITORY":"team/app"}}"#, true),
            ],
            &alice(),
        );
    }

    #[test]
    fn several_keys_and_operators_must_all_hold() {
        check(
            &[
                (
                    r#"{"StringEquals":{"aws:username":"alice","ecr:repository":"team/app"}}"#,
                    true,
                ),
                (
                    r#"{"StringEquals":{"aws:username":"alice","ecr:repository":"x"}}"#,
                    false,
                ),
                (
                    r#"{"StringEquals":{"aws:username":"alice"},
                        "IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
                    true,
                ),
                (
                    r#"{"StringEquals":{"aws:username":"alice"},
                        "IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#,
                    false,
                ),
            ],
            &alice(),
        );
    }

    #[test]
    fn absent_keys_fail_positive_operators_and_satisfy_negated_ones() {
        for (operator, expected) in [
            ("StringEquals", false),
            ("StringEqualsIgnoreCase", false),
            ("StringLike", false),
            ("StringNotEquals", true),
            ("StringNotEqualsIgnoreCase", true),
            ("StringNotLike", true),
            ("StringEqualsIfExists", true),
            ("StringEqualsIgnoreCaseIfExists", true),
            ("StringLikeIfExists", true),
            ("StringNotEqualsIfExists", true),
            ("StringNotLikeIfExists", true),
        ] {
            for key in ["aws:username", "ecr:repository"] {
                let block = format!(r#"{{"{operator}":{{"{key}":"*"}}}}"#);
                assert_eq!(holds(&block, &nobody()), expected, "{block}");
            }
        }
    }

    #[test]
    fn if_exists_evaluates_present_keys_normally() {
        check(
            &[
                (r#"{"StringEqualsIfExists":{"aws:username":"alice"}}"#, true),
                (r#"{"StringEqualsIfExists":{"aws:username":"bob"}}"#, false),
                (
                    r#"{"StringNotLikeIfExists":{"ecr:repository":"team/*"}}"#,
                    false,
                ),
                (
                    r#"{"IpAddressIfExists":{"aws:SourceIp":"192.0.2.0/24"}}"#,
                    false,
                ),
                (
                    r#"{"NotIpAddressIfExists":{"aws:SourceIp":"192.0.2.0/24"}}"#,
                    true,
                ),
                (
                    r#"{"DateLessThanIfExists":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#,
                    false,
                ),
                (
                    r#"{"DateNotEqualsIfExists":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#,
                    false,
                ),
                (r#"{"BoolIfExists":{"aws:SecureTransport":"false"}}"#, false),
            ],
            &alice(),
        );
    }

    #[test]
    fn null_tests_whether_a_key_is_present() {
        let rows = [
            (r#"{"Null":{"aws:username":"true"}}"#, false, true),
            (r#"{"Null":{"aws:username":"false"}}"#, true, false),
            (r#"{"Null":{"ecr:repository":"TRUE"}}"#, false, true),
            (r#"{"Null":{"ecr:repository":false}}"#, true, false),
            (r#"{"Null":{"aws:SourceIp":"true"}}"#, false, false),
            (r#"{"Null":{"aws:CurrentTime":"false"}}"#, true, true),
            (r#"{"Null":{"aws:SecureTransport":"false"}}"#, true, true),
        ];
        for (block, for_alice, for_nobody) in rows {
            assert_eq!(holds(block, &alice()), for_alice, "{block}");
            assert_eq!(holds(block, &nobody()), for_nobody, "{block}");
        }
    }

    #[test]
    fn ip_addresses_match_cidrs_and_single_addresses() {
        let from = |source: &str| {
            let mut request = alice();
            request.source_ip = source.parse().unwrap();
            request
        };
        let rows = [
            (
                r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
                "10.1.2.3",
                true,
            ),
            (
                r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
                "::ffff:10.1.2.3",
                true,
            ),
            (
                r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
                "192.0.2.1",
                false,
            ),
            (
                r#"{"IpAddress":{"aws:SourceIp":"10.1.2.3"}}"#,
                "10.1.2.3",
                true,
            ),
            (
                r#"{"IpAddress":{"aws:SourceIp":"10.1.2.3"}}"#,
                "10.1.2.4",
                false,
            ),
            (
                r#"{"IpAddress":{"aws:SourceIp":"::ffff:10.0.0.0/104"}}"#,
                "10.1.2.3",
                true,
            ),
            (
                r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#,
                "2001:db8::1",
                true,
            ),
            (
                r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#,
                "2001:db9::1",
                false,
            ),
            (
                r#"{"IpAddress":{"aws:SourceIp":"2001:db8::1"}}"#,
                "2001:db8::1",
                true,
            ),
            (
                r#"{"IpAddress":{"aws:SourceIp":"::/0"}}"#,
                "10.1.2.3",
                false,
            ),
            (
                r#"{"IpAddress":{"aws:SourceIp":["192.0.2.0/24","10.0.0.0/8"]}}"#,
                "10.1.2.3",
                true,
            ),
            (
                r#"{"NotIpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#,
                "10.1.2.3",
                true,
            ),
            (
                r#"{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","10.0.0.0/8"]}}"#,
                "10.1.2.3",
                false,
            ),
            (
                r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
                "::ffff:10.1.2.3",
                false,
            ),
        ];
        for (block, source, expected) in rows {
            assert_eq!(holds(block, &from(source)), expected, "{block} {source}");
        }
    }

    #[test]
    fn dates_compare_with_the_current_time_at_the_exact_instant() {
        let at = |operator: &str, value: &str| {
            format!(r#"{{"{operator}":{{"aws:CurrentTime":{value}}}}}"#)
        };
        let now = r#""2026-01-01T00:00:00Z""#;
        let before = r#""2025-12-31T23:59:59.999Z""#;
        for (operator, at_now, after_before) in [
            ("DateEquals", true, false),
            ("DateNotEquals", false, true),
            ("DateLessThan", false, false),
            ("DateLessThanEquals", true, false),
            ("DateGreaterThan", false, true),
            ("DateGreaterThanEquals", true, true),
        ] {
            assert_eq!(
                holds(&at(operator, now), &alice()),
                at_now,
                "{operator} now"
            );
            assert_eq!(
                holds(&at(operator, before), &alice()),
                after_before,
                "{operator} before"
            );
        }
        assert!(holds(
            &at("DateEquals", r#"["2020-01-01", "2026-01-01"]"#),
            &alice()
        ));
        assert!(!holds(
            &at("DateNotEquals", r#"["2020-01-01", "2026-01-01"]"#),
            &alice()
        ));
    }

    #[test]
    fn dates_take_iso_8601_plain_dates_and_epoch_seconds() {
        let now = OffsetDateTime::from_unix_timestamp(NOW as i64).unwrap();
        for text in [
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.000Z",
            "2026-01-01T01:00:00+01:00",
            "2025-12-31T19:00:00-05:00",
            "2026-01-01",
            "1767225600",
        ] {
            assert_eq!(parse_time(text), Ok(now), "{text}");
        }
        assert!(parse_time("2026-01-01T00:00:00.5Z").unwrap() > now);
        for bad in [
            "",
            "yesterday",
            "2026-01-01T00:00:00",
            "2026-01-01T12:00:00",
            "2026-01-01 00:00:00Z",
            "2026-13-01",
            "-1",
            "1.5",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert!(holds(
            r#"{"DateEquals":{"aws:CurrentTime":1767225600}}"#,
            &alice()
        ));
    }

    #[test]
    fn bool_tests_secure_transport() {
        let mut plain = alice();
        plain.secure_transport = false;
        for (value, over_tls) in [
            (r#""true""#, true),
            (r#""FALSE""#, false),
            ("true", true),
            ("false", false),
        ] {
            let block = format!(r#"{{"Bool":{{"aws:SecureTransport":{value}}}}}"#);
            assert_eq!(holds(&block, &alice()), over_tls, "{block}");
            assert_eq!(holds(&block, &plain), !over_tls, "{block}");
        }
    }

    #[test]
    fn unsupported_conditions_are_refused_naming_operator_and_key() {
        for (block, names) in [
            (
                r#"{"ForAnyValue:StringLike":{"aws:username":"a"}}"#,
                &["ForAnyValue:StringLike"][..],
            ),
            (
                r#"{"ForAllValues:StringEquals":{"aws:username":"a"}}"#,
                &["ForAllValues:StringEquals"],
            ),
            (
                r#"{"NumericLessThan":{"aws:username":"1"}}"#,
                &["NumericLessThan"],
            ),
            (r#"{"ArnLike":{"aws:username":"arn:*"}}"#, &["ArnLike"]),
            (
                r#"{"BinaryEquals":{"aws:username":"YQ=="}}"#,
                &["BinaryEquals"],
            ),
            (
                r#"{"NullIfExists":{"aws:username":"true"}}"#,
                &["NullIfExists"],
            ),
            (
                r#"{"stringequals":{"aws:username":"a"}}"#,
                &["stringequals"],
            ),
            (
                r#"{"StringEquals":{"aws:PrincipalTag/team":"a"}}"#,
                &["aws:PrincipalTag/team"],
            ),
            (
                r#"{"StringEquals":{"s3:prefix":"a"}}"#,
                &["StringEquals", "s3:prefix"],
            ),
            (
                r#"{"IpAddress":{"aws:username":"10.0.0.0/8"}}"#,
                &["IpAddress", "aws:username"],
            ),
            (
                r#"{"DateLessThan":{"aws:SourceIp":"2026-01-01"}}"#,
                &["DateLessThan", "aws:SourceIp"],
            ),
            (
                r#"{"Bool":{"aws:username":"true"}}"#,
                &["Bool", "aws:username"],
            ),
            (
                r#"{"BoolIfExists":{"ecr:repository":"true"}}"#,
                &["BoolIfExists", "ecr:repository"],
            ),
            (
                r#"{"StringEquals":{"aws:CurrentTime":"2026-01-01"}}"#,
                &["StringEquals", "aws:CurrentTime"],
            ),
            (
                r#"{"StringLike":{"aws:SecureTransport":"t*"}}"#,
                &["StringLike", "aws:SecureTransport"],
            ),
            (
                r#"{"StringLike":{"aws:SourceIp":"10.*"}}"#,
                &["StringLike", "aws:SourceIp"],
            ),
            (
                r#"{"IpAddress":{"aws:CurrentTime":"10.0.0.0/8"}}"#,
                &["IpAddress", "aws:CurrentTime"],
            ),
            (
                r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}"#,
                &["IpAddress", "aws:SourceIp", "10.0.0.0/33"],
            ),
            (
                r#"{"IpAddress":{"aws:SourceIp":"office"}}"#,
                &["IpAddress", "office"],
            ),
            (
                r#"{"DateLessThan":{"aws:CurrentTime":"soon"}}"#,
                &["DateLessThan", "soon"],
            ),
            (
                r#"{"Bool":{"aws:SecureTransport":"yes"}}"#,
                &["Bool", "yes"],
            ),
            (r#"{"Null":{"aws:username":"maybe"}}"#, &["Null", "maybe"]),
            (
                r#"{"StringEquals":{"aws:username":[]}}"#,
                &["StringEquals", "no values"],
            ),
            (
                r#"{"StringEquals":{"aws:username":{"a":1}}}"#,
                &["StringEquals", "not a string"],
            ),
            (r#"{"StringEquals":"alice"}"#, &["StringEquals", "object"]),
        ] {
            let block = serde_json::from_str(block).unwrap();
            let error = parse(block).unwrap_err();
            for name in names {
                assert!(error.contains(name), "{error} should name {name}");
            }
        }
    }
}
