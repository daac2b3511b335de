//! `algorithm:hex` content digests and the resumable SHA-256 hasher that uploads use.

use std::fmt;
use std::str::FromStr;

use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest as _, Sha256, Sha512};

/// The digest algorithms Wharf verifies. The spec requires sha256 and allows sha512.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated content digest such as `sha256:e3b0…`. The hex part is always lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("digest must have the form algorithm:hex")]
    Malformed,
    #[error("unsupported digest algorithm {0:?}: use sha256 or sha512")]
    UnsupportedAlgorithm(String),
    #[error("{0} digest must be {1} lower-case hex characters")]
    BadHex(&'static str, usize),
}

impl Digest {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The digest of `bytes` under `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut hasher = StreamHasher::new(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    pub fn sha256(bytes: &[u8]) -> Digest {
        Digest::of(Algorithm::Sha256, bytes)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (algorithm, hex) = s.split_once(':').ok_or(DigestError::Malformed)?;
        let grammar_ok = !algorithm.is_empty()
            && algorithm
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
            && !hex.is_empty()
            && hex
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b));
        if !grammar_ok {
            return Err(DigestError::Malformed);
        }
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(DigestError::UnsupportedAlgorithm(other.to_string())),
        };
        let len = algorithm.hex_len();
        if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::BadHex(algorithm.as_str(), len));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

/// Hashes bytes fed in pieces under any supported algorithm.
pub enum StreamHasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl StreamHasher {
    pub fn new(algorithm: Algorithm) -> StreamHasher {
        match algorithm {
            Algorithm::Sha256 => StreamHasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => StreamHasher::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            StreamHasher::Sha256(h) => h.update(bytes),
            StreamHasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            StreamHasher::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            StreamHasher::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

/// A SHA-256 hasher whose midstate can be saved after every chunk and restored on any node,
/// so that finishing an upload never reads its bytes back.
#[derive(Clone, Default)]
pub struct Sha256Hasher(Sha256);

impl Sha256Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn save(&self) -> Vec<u8> {
        self.0.serialize().to_vec()
    }

    /// Restores a midstate written by [`Sha256Hasher::save`]; `None` if the bytes are not one.
    pub fn restore(state: &[u8]) -> Option<Sha256Hasher> {
        let state = SerializedState::<Sha256>::try_from(state).ok()?;
        // Bytes 32..40 count the 64-byte blocks hashed. SHA-256 ends with the length in bits
        // as a u64, so no real midstate has hashed 2^55 blocks; sha2 would overflow computing
        // that length (a panic in debug builds, a wrong digest in release ones).
        let blocks = u64::from_le_bytes(state.get(32..40)?.try_into().ok()?);
        if blocks > u64::MAX / 512 {
            return None;
        }
        Sha256::deserialize(&state).ok().map(Sha256Hasher)
    }

    pub fn finish(self) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(self.0.finalize()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(empty.parse::<Digest>().unwrap().to_string(), empty);
        assert_eq!(Digest::sha256(b"").to_string(), empty);
        assert_eq!("sha256".parse::<Digest>(), Err(DigestError::Malformed));
        assert!(matches!(
            "md5:abcd".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            "sha256:ABC".parse::<Digest>(),
            Err(DigestError::BadHex(..))
        ));
        assert!(
            Digest::of(Algorithm::Sha512, b"x")
                .to_string()
                .parse::<Digest>()
                .is_ok()
        );
    }

    #[test]
    fn midstate_round_trip_matches_one_pass() {
        let mut first = Sha256Hasher::default();
        first.update(b"hello ");
        let mut resumed = Sha256Hasher::restore(&first.save()).unwrap();
        resumed.update(b"world");
        assert_eq!(resumed.finish(), Digest::sha256(b"hello world"));
        assert!(Sha256Hasher::restore(b"garbage").is_none());
    }
}
