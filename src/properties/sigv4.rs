//! SigV4: requests signed with the `aws-sigv4` crate, as the AWS SDKs sign them, verify; any
//! change to the signature, the body, a signed header, the method, path or query does not; and
//! no header value, however strange, makes checking panic. Compiled as a child of
//! `auth::sigv4` to reach its private parsers.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use proptest::prelude::*;
use proptest::sample::Index;

use super::{
    MAX_SKEW, SigV4Claim, SignatureError, SignedRequest, check_scope, parse_amz_date,
    parse_authorization,
};
use crate::properties::{Re, any_text, cases, default_cases};

const SERVICE: &str = "ecr";

/// A request as a client has it before signing.
#[derive(Debug, Clone)]
struct Unsigned {
    method: String,
    path_and_query: String,
    /// Lower-case names, `host` among them.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    key_id: String,
    secret: String,
    region: String,
    at: SystemTime,
}

/// A request as sent: its headers now with `authorization` and `x-amz-date`.
#[derive(Debug, Clone)]
struct Sent {
    method: String,
    path_and_query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Sent {
    fn header_mut(&mut self, name: &str) -> &mut String {
        let found = self.headers.iter_mut().find(|(n, _)| n == name);
        &mut found.expect("the header is there").1
    }
}

fn unsigned() -> impl Strategy<Value = Unsigned> {
    let segment = prop_oneof![
        4 => "[A-Za-z0-9._~-]{0,8}",
        1 => prop::sample::select(vec!["%2F", "%20", "..", ".", "", "a%3Ab", "%E2%82%AC"])
            .prop_map(str::to_string),
    ];
    let path = prop::collection::vec(segment, 0..4).prop_map(|s| format!("/{}", s.join("/")));
    let pair = ("[A-Za-z0-9._~-]{1,6}", "[A-Za-z0-9._~+=-]{0,6}|%2[0-9A-F]|");
    let query = prop::collection::vec(pair, 0..4).prop_map(|pairs| {
        let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join("&")
    });
    let header = (
        prop_oneof![
            "x-[a-z]{1,8}",
            Just("content-type".to_string()),
            Just("x-amz-target".to_string()),
        ],
        "[ -~]{0,20}",
    );
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]),
        path,
        prop::option::of(query),
        "[a-z]{1,10}(\\.[a-z]{2,5})?(:[0-9]{2,5})?",
        prop::collection::vec(header, 0..4),
        prop::collection::vec(any::<u8>(), 0..200),
        (
            "[A-Z0-9]{4,20}",
            "[A-Za-z0-9/+]{10,40}",
            "[a-z]{2}-[a-z]{4,9}-[1-9]",
        ),
        (946_684_800u64..4_102_444_800, 0u32..1_000_000_000),
    )
        .prop_map(
            |(method, path, query, host, mut headers, body, (key_id, secret, region), (s, n))| {
                headers.push(("host".into(), host));
                Unsigned {
                    method: method.into(),
                    path_and_query: match query {
                        Some(query) => format!("{path}?{query}"),
                        None => path,
                    },
                    headers,
                    body,
                    key_id,
                    secret,
                    region,
                    at: SystemTime::UNIX_EPOCH + Duration::new(s, n),
                }
            },
        )
}

/// Signs `request` with the `aws-sigv4` crate's defaults, as the SDKs do; `None` when the
/// crate will not sign it (a URI it cannot parse).
fn signed(request: &Unsigned) -> Option<Sent> {
    let identity: Identity =
        Credentials::new(&request.key_id, &request.secret, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&request.region)
        .name(SERVICE)
        .time(request.at)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let host = &request.headers.iter().find(|(n, _)| n == "host")?.1;
    let signable = SignableRequest::new(
        &request.method,
        format!("http://{host}{}", request.path_and_query),
        request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(&request.body),
    )
    .ok()?;
    let (instructions, _) = sign(signable, &params).ok()?.into_parts();
    let (added, _) = instructions.into_parts();
    let mut headers = request.headers.clone();
    headers.extend(
        added
            .iter()
            .map(|h| (h.name().to_ascii_lowercase(), h.value().to_string())),
    );
    Some(Sent {
        method: request.method.clone(),
        path_and_query: request.path_and_query.clone(),
        headers,
        body: request.body.clone(),
    })
}

/// What `Auth::sigv4_claim` and `SigV4Claim::verify` decide, with the key's secret known.
fn verify(sent: &Sent, secret: &str, now: SystemTime) -> Result<String, SignatureError> {
    let request = SignedRequest {
        method: &sent.method,
        path_and_query: &sent.path_and_query,
        headers: &sent.headers,
    };
    let Some(value) = request.header("authorization") else {
        return Err(SignatureError::Missing);
    };
    let authorization = parse_authorization(value)?;
    let amz_date = request.header("x-amz-date").unwrap_or_default();
    let signed_at = check_scope(&authorization, amz_date, SERVICE, now)?;
    let claim = SigV4Claim {
        authorization,
        signed_at,
        user: "alice".into(),
        secret: secret.into(),
    };
    claim.verify(&request, &sent.body)
}

/// The signing time as X-Amz-Date has it, to the second.
fn to_the_second(at: SystemTime) -> SystemTime {
    let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs())
}

/// A time at most `MAX_SKEW` from `at`, either way.
fn near(at: SystemTime, skew: i64) -> SystemTime {
    let at = to_the_second(at);
    match skew {
        ..0 => at - Duration::from_secs(skew.unsigned_abs()),
        _ => at + Duration::from_secs(skew as u64),
    }
}

fn max_skew() -> i64 {
    MAX_SKEW.as_secs() as i64
}

/// Another visible character than `c`, chosen by `pick`.
fn other_char(c: char, pick: u8) -> char {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let replacement = ALPHABET[pick as usize % ALPHABET.len()] as char;
    if replacement == c { '~' } else { replacement }
}

/// Changes the character at `at` (an index into the non-space characters) of `text`.
fn change_char(text: &mut String, at: Index, pick: u8) {
    let positions: Vec<usize> = text
        .char_indices()
        .filter(|(_, c)| !c.is_whitespace())
        .map(|(i, _)| i)
        .collect();
    if positions.is_empty() {
        text.push('z');
        return;
    }
    let i = *at.get(&positions);
    let c = text[i..].chars().next().unwrap();
    text.replace_range(i..i + c.len_utf8(), &other_char(c, pick).to_string());
}

/// The reference model of `X-Amz-Date`: `YYYYMMDDTHHMMSSZ`, a real day and time of day, in
/// seconds since the epoch.
fn amz_date_seconds(text: &str) -> Option<i64> {
    let digits = || Re::Byte(|b| b.is_ascii_digit());
    let count = |n| Re::Repeat(Box::new(digits()), n, Some(n));
    let grammar = Re::Sequence(vec![count(8), Re::Literal("T"), count(6), Re::Literal("Z")]);
    if !grammar.matches(text) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<i64>().unwrap();
    let (year, month, day) = (number(0..4), number(4..6), number(6..8));
    let (hour, minute, second) = (number(9..11), number(11..13), number(13..15));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let valid = (1..=12).contains(&month)
        && (1..=month_days[month as usize - 1]).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    // Days since 1970-01-01 by counting (slow, and obviously right).
    let mut days = 0;
    for y in year.min(1970)..year.max(1970) {
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        days += if leap { 366 } else { 365 } * if year < 1970 { -1 } else { 1 };
    }
    days += month_days[..month as usize - 1].iter().sum::<i64>() + day - 1;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// An Authorization header near the grammar, with parts of every kind.
fn near_authorization() -> impl Strategy<Value = String> {
    let part = || prop_oneof!["[A-Za-z0-9-]{0,10}", any_text(), Just(String::new())];
    (
        prop::sample::select(vec![
            "AWS4-HMAC-SHA256 ",
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA1 ",
            "",
        ]),
        (
            part(),
            "[0-9]{8}|",
            part(),
            prop::sample::select(vec!["ecr", "s3", ""]),
        ),
        prop::sample::select(vec!["aws4_request", "aws4_request/x", ""]),
        prop::collection::vec(
            prop_oneof!["host", "x-amz-date", "[a-z-]{0,8}", any_text()],
            0..4,
        ),
        prop_oneof!["[0-9a-f]{64}", any_text()],
        prop::sample::select(vec![", ", ",", " , ", ",,"]),
    )
        .prop_map(
            |(algorithm, (key, date, region, service), end, headers, signature, comma)| {
                format!(
                    "{algorithm}Credential={key}/{date}/{region}/{service}/{end}{comma}\
                 SignedHeaders={}{comma}Signature={signature}",
                    headers.join(";")
                )
            },
        )
}

proptest! {
    #![proptest_config(default_cases())]

    #[test]
    fn authorization_headers_never_panic(value in prop_oneof![any_text(), near_authorization()]) {
        if let Ok(parsed) = parse_authorization(&value) {
            prop_assert!(value.starts_with("AWS4-HMAC-SHA256"));
            let signature = format!("Signature={}", parsed.signature);
            prop_assert!(value.contains(&signature));
        }
    }

    /// A header written from its parts parses back to them, however its commas are spaced.
    #[test]
    fn authorization_headers_parse_back(
        (key_id, date, region) in ("[A-Z0-9]{1,20}", "[0-9]{8}", "[a-z0-9-]{1,15}"),
        signed_headers in prop::collection::vec("[a-z0-9-]{1,12}", 1..5),
        signature in "[0-9a-f]{64}",
        comma in prop::sample::select(vec![", ", ",", " , ", ",  "]),
    ) {
        let value = format!(
            "AWS4-HMAC-SHA256 Credential={key_id}/{date}/{region}/{SERVICE}/aws4_request{comma}\
             SignedHeaders={}{comma}Signature={signature}",
            signed_headers.join(";")
        );
        let parsed = parse_authorization(&value).unwrap();
        prop_assert_eq!(
            (parsed.key_id, parsed.date, parsed.region, parsed.service, parsed.signature),
            (key_id.as_str(), date.as_str(), region.as_str(), SERVICE, signature.as_str())
        );
        prop_assert_eq!(parsed.signed_headers, signed_headers);
    }

    #[test]
    fn amz_dates_parse_as_the_reference_says(
        text in prop_oneof![
            "[0-9]{8}T[0-9]{6}Z",
            "(19[0-9]{2}|20[0-9]{2})(0[0-9]|1[0-3])([0-2][0-9]|3[0-2])T([01][0-9]|2[0-5])[0-6][0-9][0-6][0-9]Z",
            any_text(),
            "[0-9T:Z+-]{14,18}",
        ],
    ) {
        let parsed = parse_amz_date(&text).map(|at| match at.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => after.as_secs() as i64,
            Err(before) => -(before.duration().as_secs() as i64),
        });
        prop_assert_eq!(parsed, amz_date_seconds(&text), "{:?}", text);
    }

    /// The credential scope: this service, on the day of X-Amz-Date, signing host and
    /// X-Amz-Date, within 15 minutes of the registry's clock.
    #[test]
    fn scopes_are_checked_as_documented(
        seconds in 946_684_800u64..4_102_444_800,
        skew in prop_oneof![-1_000i64..1_000, Just(900), Just(-900), Just(901), Just(-901)],
        service in prop::sample::select(vec![SERVICE, "s3", "ECR"]),
        day_shift in prop::sample::select(vec![0u64, 0, 0, 86_400]),
        signed_headers in prop::sample::select(vec!["host;x-amz-date", "x-amz-date", "host", "content-type;host;x-amz-date"]),
    ) {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
        let amz_date = |at: SystemTime| {
            let at = time::OffsetDateTime::from(at);
            let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
            at.format(format).unwrap()
        };
        let credential_day = amz_date(at - Duration::from_secs(day_shift))[..8].to_string();
        let header = format!(
            "AWS4-HMAC-SHA256 Credential=K/{credential_day}/us-east-1/{service}/aws4_request, \
             SignedHeaders={signed_headers}, Signature=00"
        );
        let authorization = parse_authorization(&header).unwrap();
        let checked = check_scope(&authorization, &amz_date(at), SERVICE, near(at, skew));
        let expected = service == SERVICE
            && day_shift == 0
            && signed_headers.contains("host")
            && signed_headers.contains("x-amz-date")
            && skew.abs() <= max_skew();
        prop_assert_eq!(checked.is_ok(), expected, "{} {}", header, skew);
        if let Ok(signed_at) = checked {
            prop_assert_eq!(signed_at, at);
        }
    }
}

proptest! {
    // Signing and verifying are a few hundred microseconds each in a debug build.
    #![proptest_config(cases(64))]

    #[test]
    fn signed_requests_verify(request in unsigned(), skew in -max_skew()..=max_skew()) {
        let sent = signed(&request);
        prop_assume!(sent.is_some());
        let sent = sent.unwrap();
        let verified = verify(&sent, &request.secret, near(request.at, skew));
        prop_assert_eq!(verified.map_err(|e| e.to_string()), Ok("alice".to_string()), "{:?}", sent);
    }

    /// Headers the signature does not cover may come and go; the order of different headers
    /// means nothing (that of one header's repeats does).
    #[test]
    fn unsigned_headers_and_order_do_not_matter(
        request in unsigned(),
        extra in ("x-unsigned-[a-z]{1,5}", "[ -~]{0,10}"),
        reverse in any::<bool>(),
    ) {
        let sent = signed(&request);
        prop_assume!(sent.is_some());
        let mut sent = sent.unwrap();
        sent.headers.push(extra);
        // A stable sort keeps each header's repeats in order.
        sent.headers.sort_by(|(a, _), (b, _)| if reverse { b.cmp(a) } else { a.cmp(b) });
        prop_assert!(verify(&sent, &request.secret, request.at).is_ok(), "{:?}", sent);
    }

    /// Every change that matters breaks the signature.
    #[test]
    fn changed_requests_do_not_verify(
        request in unsigned(),
        what in 0..7,
        at in any::<Index>(),
        pick in any::<u8>(),
    ) {
        let sent = signed(&request);
        prop_assume!(sent.is_some());
        let mut sent = sent.unwrap();
        let authorization = parse_authorization(sent.headers.iter().find(|(n, _)| n == "authorization").unwrap().1.as_str()).unwrap();
        let signed_headers: Vec<String> = authorization.signed_headers.iter().map(|s| s.to_string()).collect();
        let mut secret = request.secret.clone();
        match what {
            0 => {
                let value = sent.header_mut("authorization");
                let start = value.find("Signature=").unwrap() + "Signature=".len();
                let mut signature = value[start..].to_string();
                change_char(&mut signature, at, pick);
                value.replace_range(start.., &signature);
            }
            1 => match sent.body.is_empty() {
                true => sent.body.push(pick),
                false => {
                    let i = at.index(sent.body.len());
                    sent.body[i] ^= pick.max(1);
                }
            },
            2 => {
                let name = at.get(&signed_headers);
                change_char(sent.header_mut(name), at, pick);
            }
            3 => {
                let name = at.get(&signed_headers).clone();
                sent.headers.retain(|(n, _)| *n != name);
            }
            4 => sent.method = if sent.method == "GET" { "POST".into() } else { "GET".into() },
            5 => match sent.path_and_query.split_once('?') {
                Some((path, query)) => sent.path_and_query = format!("{path}?{query}&zz=1"),
                None => sent.path_and_query.push_str("zz"),
            },
            _ => change_char(&mut secret, at, pick),
        }
        let verified = verify(&sent, &secret, request.at);
        prop_assert!(verified.is_err(), "change {} verified: {:?}", what, sent);
    }

    /// Whatever the headers say, checking answers without panicking: signed header names and
    /// values, regions and methods of any text reach the signature arithmetic.
    #[test]
    fn any_headers_never_panic(
        method in prop_oneof![Just("GET".to_string()), any_text()],
        path_and_query in prop_oneof![Just("/".to_string()), any_text()],
        (region, signed_headers) in (any_text(), prop::collection::vec(prop_oneof!["host", "x-amz-date", any_text()], 0..4)),
        headers in prop::collection::vec((prop_oneof!["host", "x-[a-z]{1,3}", any_text()], any_text()), 0..4),
        body in prop::collection::vec(any::<u8>(), 0..64),
        seconds in 946_684_800u64..4_102_444_800,
        signature in prop_oneof!["[0-9a-f]{64}", any_text()],
    ) {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
        let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        let amz_date = time::OffsetDateTime::from(at).format(format).unwrap();
        let mut signed_headers = signed_headers;
        signed_headers.extend(["host".to_string(), "x-amz-date".to_string()]);
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=K/{}/{region}/{SERVICE}/aws4_request, \
             SignedHeaders={}, Signature={signature}",
            &amz_date[..8],
            signed_headers.join(";"),
        );
        let mut all_headers = headers;
        all_headers.push(("authorization".into(), authorization));
        all_headers.push(("x-amz-date".into(), amz_date));
        let sent = Sent { method, path_and_query, headers: all_headers, body };
        let _ = verify(&sent, "secret", at);
    }
}

/// What the properties found: a repeated signed header whose values had spaces at their ends
/// (`content-type: a ` and `content-type: `) did not verify, because the values were joined
/// before the crate trimmed them, where the signer trims each and then joins them.
#[test]
fn found_by_the_properties() {
    let request = Unsigned {
        method: "GET".into(),
        path_and_query: "/".into(),
        headers: vec![
            ("content-type".into(), "a ".into()),
            ("content-type".into(), String::new()),
            ("host".into(), "registry.example".into()),
        ],
        body: Vec::new(),
        key_id: "WKA1".into(),
        secret: "secret".into(),
        region: "us-east-1".into(),
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600),
    };
    let sent = signed(&request).unwrap();
    assert_eq!(verify(&sent, "secret", request.at).unwrap(), "alice");
}
