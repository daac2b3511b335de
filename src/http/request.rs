//! Typed readers for the headers and query parameters the registry endpoints take.

use axum::http::{HeaderMap, header};

use crate::error::{ErrorCode, OciError};
use crate::registry::{ByteRange, ChunkRange};

/// The query string's pairs, decoded, in order; repeated keys (`tag=`) stay separate.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let pairs = form_urlencoded::parse(query.unwrap_or_default().as_bytes());
        Query(pairs.into_owned().collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `n` page size of tag and catalog listings.
    pub fn page_size(&self) -> Result<Option<u32>, OciError> {
        self.get("n")
            .map(|n| {
                decimal(n).ok_or_else(|| {
                    OciError::new(
                        ErrorCode::PaginationNumberInvalid,
                        format!("invalid page size n={n:?}"),
                    )
                })
            })
            .transpose()
    }
}

/// A number as HTTP and the distribution spec write them: decimal digits only (`from_str`
/// alone would also take a leading `+`).
fn decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse().ok())
}

/// The media type of `Content-Type`, without parameters.
pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    header_str(headers, header::CONTENT_TYPE)
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .filter(|v| !v.is_empty())
}

/// Every media range of every `Accept` header, without parameters.
pub fn accepted_types(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|range| {
            range
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .filter(|range| !range.is_empty())
        .collect()
}

/// A chunk's `Content-Range: <start>-<end>` (also with a `bytes ` or `bytes=` prefix),
/// checked against `Content-Length`.
pub fn chunk_range(headers: &HeaderMap) -> Result<ChunkRange, OciError> {
    let length = content_length(headers);
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(ChunkRange {
            start: None,
            length,
        });
    };
    let invalid = || {
        OciError::new(
            ErrorCode::BlobUploadInvalid,
            format!("invalid Content-Range {value:?}: expected <start>-<end>"),
        )
    };
    // A range that is there but unreadable is refused, not taken for no range at all.
    let value = value.to_str().map_err(|_| invalid())?;
    let span = (value.strip_prefix("bytes="))
        .or_else(|| value.strip_prefix("bytes "))
        .unwrap_or(value);
    let (start, end) = span.split_once('-').ok_or_else(invalid)?;
    let (Some(start), Some(end)): (Option<u64>, Option<u64>) =
        (decimal(start.trim()), decimal(end.trim()))
    else {
        return Err(invalid());
    };
    let Some(span_length) = end.checked_sub(start).and_then(|n| n.checked_add(1)) else {
        return Err(invalid());
    };
    if length.is_some_and(|length| length != span_length) {
        return Err(OciError::new(
            ErrorCode::SizeInvalid,
            format!("Content-Range {value:?} does not match Content-Length"),
        ));
    }
    Ok(ChunkRange {
        start: Some(start),
        length: Some(span_length),
    })
}

/// A single-range `Range: bytes=…` request. Anything else (several ranges, another unit,
/// garbage) is ignored and the whole blob is sent, as HTTP allows.
pub fn byte_range(headers: &HeaderMap) -> Option<ByteRange> {
    let spec = header_str(headers, header::RANGE)?
        .trim()
        .strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    match (first.is_empty(), last.is_empty()) {
        (false, false) => Some(ByteRange::Span {
            first: decimal(first)?,
            last: decimal(last)?,
        }),
        (false, true) => Some(ByteRange::From {
            first: decimal(first)?,
        }),
        (true, false) => Some(ByteRange::Suffix {
            length: decimal(last)?,
        }),
        (true, true) => None,
    }
}

/// Property tests; the file lives with the others in `src/properties/`.
#[cfg(test)]
#[path = "../properties/ranges.rs"]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn content_range_forms() {
        for value in ["0-9", "bytes 0-9", "bytes=0-9"] {
            let range = chunk_range(&headers(&[(header::CONTENT_RANGE, value)])).unwrap();
            assert_eq!((range.start, range.length), (Some(0), Some(10)));
        }
        let mismatch = headers(&[
            (header::CONTENT_RANGE, "0-9"),
            (header::CONTENT_LENGTH, "3"),
        ]);
        assert!(chunk_range(&mismatch).is_err());
        assert!(chunk_range(&headers(&[(header::CONTENT_RANGE, "9-0")])).is_err());
        assert!(chunk_range(&headers(&[(header::CONTENT_RANGE, "x")])).is_err());
        let everything = format!("0-{}", u64::MAX);
        assert!(chunk_range(&headers(&[(header::CONTENT_RANGE, everything.as_str())])).is_err());
    }

    #[test]
    fn range_forms() {
        let range = |v| byte_range(&headers(&[(header::RANGE, v)]));
        assert_eq!(
            range("bytes=1-2"),
            Some(ByteRange::Span { first: 1, last: 2 })
        );
        assert_eq!(range("bytes=5-"), Some(ByteRange::From { first: 5 }));
        assert_eq!(range("bytes=-5"), Some(ByteRange::Suffix { length: 5 }));
        assert_eq!(range("bytes=1-2,4-5"), None);
        assert_eq!(range("items=1-2"), None);
    }
}
