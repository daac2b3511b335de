//! `Content-Range` of upload chunks, `Range` of blob GETs, and the `n` page size: each against
//! a reference model of what `http::request` documents. Compiled as a child of that module,
//! which is private to `http`.

use axum::http::{HeaderMap, HeaderValue, header};
use proptest::prelude::*;

use super::{ByteRange, Query, byte_range, chunk_range};
use crate::error::ErrorCode;
use crate::properties::{Re, any_text};

/// Optional spaces and tabs, which the parsers allow around numbers.
fn spaces() -> Re {
    Re::star(Re::Byte(|b| b == b' ' || b == b'\t'))
}

fn digits() -> Re {
    Re::plus(Re::Byte(|b| b.is_ascii_digit()))
}

/// A decimal number that fits in a u64.
fn number(text: &str) -> Option<u64> {
    let text = text.trim_matches([' ', '\t']);
    let value: u128 = text.bytes().try_fold(0u128, |value, b| {
        let digit = (b as char).to_digit(10)?;
        Some((value * 10 + u128::from(digit)).min(u128::from(u64::MAX) + 1))
    })?;
    u64::try_from(value).ok().filter(|_| !text.is_empty())
}

/// What a header value's bytes read as text, if they are visible ASCII, spaces and tabs.
fn readable(value: &HeaderValue) -> Option<&str> {
    let bytes = value.as_bytes();
    let visible = |b: &u8| (0x20..0x7f).contains(b) || *b == b'\t';
    bytes
        .iter()
        .all(visible)
        .then(|| std::str::from_utf8(bytes).unwrap())
}

/// The reference model of `Content-Range` on a chunk: `[bytes=|bytes ]<start>-<end>`, both
/// inclusive, start <= end, and the span at most u64::MAX bytes; with a `Content-Length`, the
/// span must be as long.
fn expected_chunk(
    range: Option<&HeaderValue>,
    length: Option<u64>,
) -> Result<(Option<u64>, Option<u64>), ErrorCode> {
    let Some(range) = range else {
        return Ok((None, length));
    };
    let invalid = Err(ErrorCode::BlobUploadInvalid);
    let Some(text) = readable(range) else {
        return invalid;
    };
    let grammar = Re::Sequence(vec![
        Re::Either(vec![
            Re::Literal("bytes="),
            Re::Literal("bytes "),
            Re::Literal(""),
        ]),
        spaces(),
        digits(),
        spaces(),
        Re::Literal("-"),
        spaces(),
        digits(),
        spaces(),
    ]);
    if !grammar.matches(text) {
        return invalid;
    }
    let span = text
        .trim_start_matches("bytes")
        .trim_start_matches(['=', ' ']);
    let (start, end) = span.split_once('-').unwrap();
    let (Some(start), Some(end)) = (number(start), number(end)) else {
        return invalid;
    };
    if start > end || (start, end) == (0, u64::MAX) {
        return invalid;
    }
    let span_length = end - start + 1;
    if length.is_some_and(|length| length != span_length) {
        return Err(ErrorCode::SizeInvalid);
    }
    Ok((Some(start), Some(span_length)))
}

/// The reference model of `Range`: `bytes=first-last`, `bytes=first-` or `bytes=-length`,
/// spaces allowed around the value and the numbers; anything else is no range at all.
fn expected_range(range: Option<&HeaderValue>) -> Option<ByteRange> {
    let text = readable(range?)?;
    let grammar = Re::Sequence(vec![
        spaces(),
        Re::Literal("bytes="),
        spaces(),
        Re::Either(vec![
            Re::Sequence(vec![
                digits(),
                spaces(),
                Re::Literal("-"),
                spaces(),
                Re::Repeat(Box::new(digits()), 0, Some(1)),
            ]),
            Re::Sequence(vec![Re::Literal("-"), spaces(), digits()]),
        ]),
        spaces(),
    ]);
    if !grammar.matches(text) {
        return None;
    }
    let spec = text
        .trim_matches([' ', '\t'])
        .strip_prefix("bytes=")
        .unwrap();
    let (first, last) = spec.split_once('-').unwrap();
    let (first, last) = (
        first.trim_matches([' ', '\t']),
        last.trim_matches([' ', '\t']),
    );
    Some(match (first.is_empty(), last.is_empty()) {
        (false, false) => ByteRange::Span {
            first: number(first)?,
            last: number(last)?,
        },
        (false, true) => ByteRange::From {
            first: number(first)?,
        },
        _ => ByteRange::Suffix {
            length: number(last)?,
        },
    })
}

/// Header values: any bytes a header can hold, texts near the range grammars, and numbers near
/// u64::MAX.
fn header_value() -> impl Strategy<Value = HeaderValue> {
    let number = prop_oneof![
        (0u64..100).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (0u64..3).prop_map(|n| (u64::MAX - n).to_string()),
        Just("18446744073709551616".to_string()),
        Just("99999999999999999999999".to_string()),
        "[+-]?[0-9]{1,3}",
        Just(String::new()),
    ];
    let near = (
        prop_oneof![
            Just(""),
            Just("bytes="),
            Just("bytes "),
            Just("bytes"),
            Just("bytes=="),
            Just(" bytes="),
            Just("bytesbytes="),
            Just("Bytes="),
            Just("items="),
        ],
        number.clone(),
        prop_oneof![Just("-"), Just(" - "), Just("--"), Just(","), Just("-\t")],
        number,
        prop_oneof![Just(""), Just(" "), Just(",0-1"), Just("/*"), Just("/100")],
    )
        .prop_map(|(unit, first, dash, last, tail)| format!("{unit}{first}{dash}{last}{tail}"));
    let near = near.prop_map(|text| HeaderValue::from_str(&text).unwrap());
    let any_bytes = any::<Vec<u8>>().prop_filter_map("not a header value", |bytes| {
        HeaderValue::from_bytes(&bytes).ok()
    });
    let any_text = any_text().prop_filter_map("not a header value", |text| {
        HeaderValue::from_str(&text).ok()
    });
    prop_oneof![4 => near, 1 => any_bytes, 1 => any_text]
}

fn headers(pairs: &[(header::HeaderName, Option<HeaderValue>)]) -> HeaderMap {
    pairs
        .iter()
        .filter_map(|(name, value)| Some((name.clone(), value.clone()?)))
        .collect()
}

proptest! {
    #![proptest_config(crate::properties::default_cases())]

    #[test]
    fn chunk_ranges_parse_as_the_reference_says(
        range in prop::option::weighted(0.9, header_value()),
        length in prop::option::of(prop_oneof![0u64..20, any::<u64>()]),
    ) {
        let length_header = length.map(HeaderValue::from);
        let map = headers(&[
            (header::CONTENT_RANGE, range.clone()),
            (header::CONTENT_LENGTH, length_header),
        ]);
        let parsed = chunk_range(&map).map(|r| (r.start, r.length)).map_err(|e| e.code());
        prop_assert_eq!(parsed, expected_chunk(range.as_ref(), length), "{:?}", range);
    }

    #[test]
    fn valid_chunk_ranges_parse_back(
        start in prop_oneof![0u64..1000, any::<u64>()],
        length in prop_oneof![1u64..1000, any::<u64>()],
        unit in prop_oneof![Just(""), Just("bytes="), Just("bytes ")],
        with_length in any::<bool>(),
    ) {
        let end = start.saturating_add(length - 1);
        prop_assume!(end - start < u64::MAX);
        let value = HeaderValue::from_str(&format!("{unit}{start}-{end}")).unwrap();
        let map = headers(&[
            (header::CONTENT_RANGE, Some(value)),
            (header::CONTENT_LENGTH, with_length.then(|| HeaderValue::from(end - start + 1))),
        ]);
        let range = chunk_range(&map).unwrap();
        prop_assert_eq!((range.start, range.length), (Some(start), Some(end - start + 1)));
    }

    #[test]
    fn byte_ranges_parse_as_the_reference_says(range in prop::option::weighted(0.9, header_value())) {
        let map = headers(&[(header::RANGE, range.clone())]);
        prop_assert_eq!(byte_range(&map), expected_range(range.as_ref()), "{:?}", range);
    }

    #[test]
    fn valid_byte_ranges_parse_back(
        first in prop_oneof![0u64..1000, any::<u64>()],
        last in prop_oneof![0u64..1000, any::<u64>()],
        form in 0..3,
    ) {
        let (text, range) = match form {
            0 => (format!("bytes={first}-{last}"), ByteRange::Span { first, last }),
            1 => (format!("bytes={first}-"), ByteRange::From { first }),
            _ => (format!("bytes=-{last}"), ByteRange::Suffix { length: last }),
        };
        let map = headers(&[(header::RANGE, Some(HeaderValue::from_str(&text).unwrap()))]);
        prop_assert_eq!(byte_range(&map), Some(range));
    }

    #[test]
    fn page_sizes_are_decimal_u32s(
        n in prop_oneof![
            any::<u32>().prop_map(|n| n.to_string()),
            Just(u64::from(u32::MAX) + 1).prop_map(|n| n.to_string()),
            "[+-]?[0-9]{0,12}",
            any_text(),
        ],
        present in any::<bool>(),
    ) {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(present.then_some(("n", n.as_str())))
            .finish();
        let expected = match present {
            false => Ok(None),
            true => number(&n)
                .filter(|_| !n.contains([' ', '\t']))
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or(ErrorCode::PaginationNumberInvalid),
        };
        let parsed = Query::parse(Some(&query)).page_size().map_err(|e| e.code());
        prop_assert_eq!(parsed, expected, "{:?}", n);
    }

    #[test]
    fn query_strings_decode_whatever_they_hold(query in any_text()) {
        let parsed = Query::parse(Some(&query));
        let _ = parsed.page_size();
        prop_assert_eq!(parsed.get("n"), parsed.all("n").next());
    }
}

/// What the properties found: a sign before a number, a repeated or glued unit, and a
/// `Content-Range` that is not text (it was taken for no range at all, so the chunk was
/// appended wherever the upload stood).
#[test]
fn found_by_the_properties() {
    let chunk = |value: &[u8]| {
        let value = HeaderValue::from_bytes(value).unwrap();
        chunk_range(&headers(&[(header::CONTENT_RANGE, Some(value))])).map(|_| ())
    };
    for value in [
        b"\x80".as_slice(),
        b"bytes=0-\xff",
        b"+0-+9",
        b"bytesbytes=0-9",
        b"bytes==0-9",
        b"bytes5-6",
    ] {
        let refused = chunk(value).map_err(|e| e.code());
        assert_eq!(refused, Err(ErrorCode::BlobUploadInvalid), "{value:?}");
    }
    for value in ["bytes=0-+0", "bytes=+1-2", "bytes=-+5"] {
        let map = headers(&[(header::RANGE, Some(HeaderValue::from_static(value)))]);
        assert_eq!(byte_range(&map), None, "{value}");
    }
    let page = Query::parse(Some("n=%2B5"))
        .page_size()
        .map_err(|e| e.code());
    assert_eq!(page, Err(ErrorCode::PaginationNumberInvalid));
}
