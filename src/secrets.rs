//! Sealing the passwords Wharf keeps to log in to other registries (remotes and pull-through
//! upstreams) with the operator's key (`--secrets-key-file`): AES-256-GCM with a random nonce
//! per value, bound to what the value is for (a remote's name, a credential's ARN), stored as
//! `sealed:v1:<base64 of nonce, ciphertext and tag>`. Without a key values are stored as given,
//! and values stored so are still read once a key is configured. Every node must have the same
//! key. Depends on nothing else in the crate.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const SEALED: &str = "sealed:v1:";

/// The key, 32 bytes.
pub struct SecretsKey(RandomizedNonceKey);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(<hidden>)")
    }
}

impl SecretsKey {
    /// Reads the key from a file holding 32 bytes in base64 (`openssl rand -base64 32`).
    pub fn from_file(path: &std::path::Path) -> Result<SecretsKey, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("secrets key file {}: {e}", path.display()))?;
        let bytes = STANDARD.decode(text.trim()).unwrap_or_default();
        SecretsKey::from_bytes(&bytes)
            .map_err(|e| format!("secrets key file {}: {e}", path.display()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<SecretsKey, String> {
        if bytes.len() != 32 {
            return Err("a secrets key is 32 bytes, written in base64".into());
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map_err(|_| "not an AES-256 key".to_string())?;
        Ok(SecretsKey(key))
    }
}

/// `secret` as stored: sealed for `purpose` if there is a key, else as given.
pub fn seal(key: Option<&SecretsKey>, purpose: &str, secret: &str) -> String {
    let Some(SecretsKey(key)) = key else {
        return secret.to_string();
    };
    let mut sealed = secret.as_bytes().to_vec();
    let nonce = key
        .seal_in_place_append_tag(Aad::from(purpose.as_bytes()), &mut sealed)
        .expect("AES-GCM seals any password-sized input");
    let mut stored = nonce.as_ref().to_vec();
    stored.extend_from_slice(&sealed);
    format!("{SEALED}{}", STANDARD.encode(stored))
}

/// The secret `stored` holds for `purpose`.
pub fn unseal(key: Option<&SecretsKey>, purpose: &str, stored: &str) -> Result<String, String> {
    let Some(encoded) = stored.strip_prefix(SEALED) else {
        return Ok(stored.to_string());
    };
    let Some(SecretsKey(key)) = key else {
        return Err(
            "the stored password is sealed, and this node has no --secrets-key-file".into(),
        );
    };
    let refused = || "the stored password does not open with this node's secrets key".to_string();
    let mut bytes = STANDARD.decode(encoded).map_err(|_| refused())?;
    if bytes.len() < NONCE_LEN {
        return Err(refused());
    }
    let mut sealed = bytes.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| refused())?;
    let opened = key
        .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut sealed)
        .map_err(|_| refused())?;
    String::from_utf8(opened.to_vec()).map_err(|_| refused())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_purpose() {
        let key = SecretsKey::from_bytes(&[7; 32]).unwrap();
        let other = SecretsKey::from_bytes(&[8; 32]).unwrap();
        let sealed = seal(Some(&key), "remote a", "hunter2");
        assert!(sealed.starts_with(SEALED) && !sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            seal(Some(&key), "remote a", "hunter2"),
            "a fresh nonce each time"
        );
        assert_eq!(unseal(Some(&key), "remote a", &sealed).unwrap(), "hunter2");
        assert!(unseal(Some(&key), "remote b", &sealed).is_err());
        assert!(unseal(Some(&other), "remote a", &sealed).is_err());
        assert!(
            unseal(None, "remote a", &sealed)
                .unwrap_err()
                .contains("--secrets-key-file")
        );
        assert!(unseal(Some(&key), "remote a", "sealed:v1:AAAA").is_err());
        // Stored before there was a key: read as it is.
        assert_eq!(seal(None, "remote a", "hunter2"), "hunter2");
        assert_eq!(
            unseal(Some(&key), "remote a", "hunter2").unwrap(),
            "hunter2"
        );
        assert!(SecretsKey::from_bytes(&[1; 16]).is_err());
    }
}
