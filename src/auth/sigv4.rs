//! AWS Signature Version 4, as ECR's API takes it: the `Authorization` header names an access
//! key, a credential scope and the signed headers; the signature is recomputed with the key's
//! secret (the arithmetic is the `aws-sigv4` crate's) and compared in constant time.
//!
//! Part of `auth`; knows nothing of HTTP frameworks: the request arrives as plain parts.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use sha2::{Digest as _, Sha256};

use super::{Auth, AuthError};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far the signing time may be from the registry's clock, either way, as in AWS.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// A request as signed, but for its body: method, path and query as sent, and every header
/// (names lowercase). The body comes separately, so that a request can be refused before it is
/// read.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub headers: &'a [(String, String)],
}

impl<'a> SignedRequest<'a> {
    fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request's signature was not accepted; each is one of AWS's error types.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// `MissingAuthenticationTokenException`.
    #[error("Missing Authentication Token")]
    Missing,
    /// `UnrecognizedClientException`.
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// `InvalidSignatureException`.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] AuthError),
}

/// The parts of an `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header.
struct Authorization<'a> {
    key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn invalid(message: impl Into<String>) -> SignatureError {
    SignatureError::Invalid(message.into())
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, SignatureError> {
    let Some(fields) = value.strip_prefix(ALGORITHM) else {
        return Err(invalid(format!(
            "Only {ALGORITHM} signatures are accepted."
        )));
    };
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for field in fields.split(',') {
        match field.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return Err(invalid(format!("Malformed Authorization field {field:?}."))),
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(invalid(
            "The Authorization header needs Credential, SignedHeaders and Signature.",
        ));
    };
    let [key_id, date, region, service, "aws4_request"] =
        credential.split('/').collect::<Vec<_>>()[..]
    else {
        return Err(invalid(format!(
            "Credential should be scoped to a valid region, date, service and aws4_request, \
             not {credential:?}."
        )));
    };
    Ok(Authorization {
        key_id,
        date,
        region,
        service,
        signed_headers: signed_headers.split(';').collect(),
        signature,
    })
}

/// `20261130T120000Z` as a time.
fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let at = time::PrimitiveDateTime::parse(value, format).ok()?;
    Some(at.assume_utc().into())
}

/// A signature checked as far as it can be without the body: a well-formed header, scoped to
/// this service and day, signed recently, by a key that can sign. [`SigV4Claim::verify`]
/// finishes the check over the body.
pub struct SigV4Claim<'a> {
    authorization: Authorization<'a>,
    signed_at: SystemTime,
    user: String,
    secret: String,
}

impl Auth {
    /// The first half of checking a SigV4 request, before its body is read, so that a request
    /// nobody could have signed is refused without reading it.
    pub async fn sigv4_claim<'a>(
        &self,
        request: &SignedRequest<'a>,
        service: &str,
        now: SystemTime,
    ) -> Result<SigV4Claim<'a>, SignatureError> {
        let Some(value) = request.header("authorization") else {
            return Err(SignatureError::Missing);
        };
        let authorization = parse_authorization(value)?;
        let amz_date = request.header("x-amz-date").unwrap_or_default();
        let signed_at = check_scope(&authorization, amz_date, service, now)?;
        let key = self.store.get_access_key(authorization.key_id).await;
        let Some(key) = key.map_err(AuthError::from)? else {
            return Err(SignatureError::UnknownKey);
        };
        let Some(secret) = key.secret else {
            return Err(invalid(
                "This access key predates SigV4 support and can only log in with Basic \
                 credentials; create a new key.",
            ));
        };
        Ok(SigV4Claim {
            authorization,
            signed_at,
            user: key.user,
            secret,
        })
    }
}

impl SigV4Claim<'_> {
    /// The user whose access key signed `request` with `body`, if the signature is right.
    pub fn verify(
        self,
        request: &SignedRequest<'_>,
        body: &[u8],
    ) -> Result<String, SignatureError> {
        check_payload_hash(request, body)?;
        let expected = signature(
            request,
            body,
            &self.authorization,
            &self.secret,
            self.signed_at,
        )?;
        let matches = aws_lc_rs::constant_time::verify_slices_are_equal(
            expected.as_bytes(),
            self.authorization.signature.as_bytes(),
        )
        .is_ok();
        if !matches {
            return Err(invalid(
                "The request signature we calculated does not match the signature you \
                 provided. Check your AWS Secret Access Key and signing method.",
            ));
        }
        Ok(self.user)
    }
}

/// When the request was signed, if its scope is `service` on the day of its `X-Amz-Date`, it
/// signs the headers that pin it to a host and time, and that time is within [`MAX_SKEW`].
fn check_scope(
    authorization: &Authorization<'_>,
    amz_date: &str,
    service: &str,
    now: SystemTime,
) -> Result<SystemTime, SignatureError> {
    if authorization.service != service {
        return Err(invalid(format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    for required in ["host", "x-amz-date"] {
        if !authorization.signed_headers.contains(&required) {
            return Err(invalid(format!("'{required}' must be a signed header.")));
        }
    }
    let signed_at = parse_amz_date(amz_date)
        .ok_or_else(|| invalid(format!("X-Amz-Date {amz_date:?} is not a valid time.")))?;
    // Exactly the signing day: a prefix (even an empty one) would scope a key to any day.
    if amz_date.get(..8) != Some(authorization.date) {
        return Err(invalid(format!(
            "Credential should be scoped to a valid date: {:?} is not the date of X-Amz-Date \
             {amz_date}.",
            authorization.date
        )));
    }
    let skew = match now.duration_since(signed_at) {
        Ok(behind) => behind,
        Err(ahead) => ahead.duration(),
    };
    if skew > MAX_SKEW {
        return Err(invalid(format!(
            "Signature expired or not yet valid: {amz_date} is more than 15 minutes from the \
             registry's time."
        )));
    }
    Ok(signed_at)
}

/// A claimed `x-amz-content-sha256` must be the body's hash. `UNSIGNED-PAYLOAD` is not taken:
/// the signature is always computed over the body, so such a request could never verify.
fn check_payload_hash(request: &SignedRequest<'_>, body: &[u8]) -> Result<(), SignatureError> {
    match request.header("x-amz-content-sha256") {
        Some(claimed) if !claimed.eq_ignore_ascii_case(&hex::encode(Sha256::digest(body))) => Err(
            invalid("The provided x-amz-content-sha256 does not match the body."),
        ),
        _ => Ok(()),
    }
}

/// The signature `secret` gives the request, over exactly the headers the client signed.
fn signature(
    request: &SignedRequest<'_>,
    body: &[u8],
    authorization: &Authorization<'_>,
    secret: &str,
    signed_at: SystemTime,
) -> Result<String, SignatureError> {
    // Each value of a repeated header separately, in order: the crate trims each before
    // joining them with commas, as the signer did. Joined first, the spaces around the commas
    // would stay and the signature would not match.
    let mut headers = Vec::with_capacity(authorization.signed_headers.len());
    for name in &authorization.signed_headers {
        let before = headers.len();
        headers.extend(
            (request.headers.iter())
                .filter(|(n, _)| n == name)
                .map(|(_, v)| (*name, v.as_str())),
        );
        if headers.len() == before {
            return Err(invalid(format!("Signed header {name:?} is missing.")));
        }
    }
    let identity: Identity =
        Credentials::new(authorization.key_id, secret, None, None, "wharf").into();
    let mut settings = SigningSettings::default();
    // Exactly what the client signed, whatever the crate would leave out when signing itself.
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(authorization.region)
        .name(authorization.service)
        .time(signed_at)
        .settings(settings)
        .build()
        .map_err(|e| invalid(e.to_string()))?
        .into();
    let host = headers
        .iter()
        .find(|(name, _)| *name == "host")
        .map_or("", |(_, v)| v);
    let uri = format!("http://{host}{}", request.path_and_query);
    let signable = SignableRequest::new(
        request.method,
        uri,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| invalid(format!("Cannot canonicalize the request: {e}")))?;
    let output = sign(signable, &params).map_err(|e| invalid(format!("Cannot sign: {e}")))?;
    Ok(output.signature().to_string())
}

/// Property tests; the file lives with the others in `src/properties/`.
#[cfg(test)]
#[path = "../properties/sigv4.rs"]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_headers_parse_into_scope_and_signed_headers() {
        let header = "AWS4-HMAC-SHA256 Credential=WKA1/20261130/eu-west-1/ecr/aws4_request, \
                      SignedHeaders=content-type;host;x-amz-date, Signature=abc";
        let parsed = parse_authorization(header).unwrap();
        assert_eq!(parsed.key_id, "WKA1");
        assert_eq!(parsed.date, "20261130");
        assert_eq!(parsed.region, "eu-west-1");
        assert_eq!(parsed.service, "ecr");
        assert_eq!(
            parsed.signed_headers,
            ["content-type", "host", "x-amz-date"]
        );
        assert_eq!(parsed.signature, "abc");
        for bad in [
            "AWS4-HMAC-SHA1 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=x",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d, SignedHeaders=host, Signature=x",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, Signature=x",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, Bogus, Signature=x",
        ] {
            assert!(parse_authorization(bad).is_err(), "{bad}");
        }
    }

    /// `get-vanilla` from AWS's SigV4 test suite.
    #[test]
    fn signatures_match_the_aws_test_suite() {
        let headers = [
            ("host".to_string(), "example.amazonaws.com".to_string()),
            ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
        ];
        let request = SignedRequest {
            method: "GET",
            path_and_query: "/",
            headers: &headers,
        };
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/\
                      aws4_request, SignedHeaders=host;x-amz-date, Signature=x";
        let authorization = parse_authorization(header).unwrap();
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let at = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(
            signature(&request, b"", &authorization, secret, at).unwrap(),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn amz_dates_are_basic_iso8601_in_utc() {
        let at = parse_amz_date("20150830T123600Z").unwrap();
        let since_epoch = at.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(since_epoch.as_secs(), 1_440_938_160);
        assert!(parse_amz_date("2015-08-30T12:36:00Z").is_none());
    }

    #[test]
    fn the_credential_date_is_exactly_the_signing_day() {
        let at = parse_amz_date("20261130T120000Z").unwrap();
        let scoped = |date: &str| {
            format!(
                "AWS4-HMAC-SHA256 Credential=WKA1/{date}/us-east-1/ecr/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=00"
            )
        };
        let good = scoped("20261130");
        let good = parse_authorization(&good).unwrap();
        assert_eq!(
            check_scope(&good, "20261130T120000Z", "ecr", at).unwrap(),
            at
        );
        for date in ["", "2026", "2026113", "20261129", "20261130T12"] {
            let header = scoped(date);
            let authorization = parse_authorization(&header).unwrap();
            let checked = check_scope(&authorization, "20261130T120000Z", "ecr", at);
            assert!(
                matches!(checked, Err(SignatureError::Invalid(_))),
                "{date:?}"
            );
        }
        assert!(check_scope(&good, "20261130T120000Z", "s3", at).is_err());
    }

    #[test]
    fn a_claimed_payload_hash_must_be_the_body_hash() {
        let body = b"{}";
        let with_claim = |claim: &str| [("x-amz-content-sha256".to_string(), claim.to_string())];
        fn request(headers: &[(String, String)]) -> SignedRequest<'_> {
            SignedRequest {
                method: "POST",
                path_and_query: "/",
                headers,
            }
        }
        let right = with_claim(&hex::encode(Sha256::digest(body)));
        assert!(check_payload_hash(&request(&right), body).is_ok());
        assert!(check_payload_hash(&request(&[]), body).is_ok());
        for claim in ["UNSIGNED-PAYLOAD", "", &hex::encode(Sha256::digest(b""))] {
            let headers = with_claim(claim);
            assert!(
                check_payload_hash(&request(&headers), body).is_err(),
                "{claim:?}"
            );
        }
    }
}
