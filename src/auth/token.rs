//! JSON Web Tokens as the Docker token specification describes them, signed with ES256.
//! Four kinds share one key and format, told apart by the `use` claim so that none can stand
//! in for another: `access` (Bearer tokens with an `access` list), `refresh` (OAuth2 refresh
//! tokens), `login` (12-hour passwords for `docker login -u AWS`) and `download` (the
//! short-lived layer URLs of `GetDownloadUrlForLayer`).

use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What a token grants on one resource, e.g. `repository` `team/app` `["pull", "push"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenUse {
    Access,
    Refresh,
    Login,
    Download,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    #[serde(rename = "use")]
    pub token_use: TokenUse,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<AccessEntry>,
}

/// The registry's token signing key. Every node loads the same one from the metadata store.
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl SigningKey {
    /// A new P-256 key as PKCS#8 DER.
    pub fn generate() -> Vec<u8> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .expect("generate a P-256 key")
            .as_ref()
            .to_vec()
    }

    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey, String> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|e| format!("invalid P-256 PKCS#8 key: {e}"))?;
        let public = pair.public_key().as_ref();
        let kid = crate::oci::Digest::sha256(public).hex()[..16].to_string();
        Ok(SigningKey {
            kid,
            encoding: EncodingKey::from_ec_der(der),
            decoding: DecodingKey::from_ec_der(public),
        })
    }

    /// A key from a PEM file (`-----BEGIN PRIVATE KEY-----`, PKCS#8).
    pub fn from_pem(pem: &str) -> Result<SigningKey, String> {
        use base64::Engine as _;
        let body: String = pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| format!("signing key is not PEM: {e}"))?;
        SigningKey::from_pkcs8(&der)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("ES256 signing")
    }

    /// Verifies signature, algorithm (ES256 only: no `none`, no HMAC confusion), key id,
    /// issuer, audience, expiry and not-before, and the token's use.
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        token_use: TokenUse,
    ) -> Option<Claims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::ES256 || header.kid.as_deref() != Some(self.kid.as_str()) {
            return None;
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()?
            .claims;
        (claims.token_use == token_use).then_some(claims)
    }
}

/// Builds claims for `subject`, valid from now for `lifetime`.
pub fn claims(
    issuer: &str,
    audience: &str,
    subject: &str,
    token_use: TokenUse,
    lifetime: Duration,
    access: Vec<AccessEntry>,
) -> Claims {
    let now = unix_now();
    Claims {
        iss: issuer.into(),
        sub: subject.into(),
        aud: audience.into(),
        iat: now,
        nbf: now,
        exp: now + lifetime.as_secs(),
        jti: uuid::Uuid::new_v4().to_string(),
        token_use,
        access,
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// `YYYY-MM-DDThh:mm:ssZ` for a Unix time, as the token response's `issued_at` wants.
pub fn rfc3339(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_pkcs8(&SigningKey::generate()).unwrap()
    }

    #[test]
    fn tokens_verify_only_with_the_right_key_issuer_audience_and_use() {
        let key = key();
        let c = claims(
            "wharf",
            "registry",
            "alice",
            TokenUse::Access,
            Duration::from_secs(60),
            vec![],
        );
        let token = key.sign(&c);
        assert_eq!(
            key.verify(&token, "wharf", "registry", TokenUse::Access)
                .unwrap()
                .sub,
            "alice"
        );
        assert!(
            key.verify(&token, "wharf", "other-service", TokenUse::Access)
                .is_none()
        );
        assert!(
            key.verify(&token, "evil", "registry", TokenUse::Access)
                .is_none()
        );
        assert!(
            key.verify(&token, "wharf", "registry", TokenUse::Login)
                .is_none()
        );
        assert!(
            self::key()
                .verify(&token, "wharf", "registry", TokenUse::Access)
                .is_none()
        );

        let mut expired = c.clone();
        expired.exp = unix_now() - 60;
        assert!(
            key.verify(&key.sign(&expired), "wharf", "registry", TokenUse::Access)
                .is_none()
        );
        let mut early = c;
        early.nbf = unix_now() + 600;
        assert!(
            key.verify(&key.sign(&early), "wharf", "registry", TokenUse::Access)
                .is_none()
        );
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
