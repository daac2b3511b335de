//! Password and secret hashing with argon2 (default parameters, random salt, PHC strings).
//! Hashing is deliberately slow, so it runs on the blocking pool.

use std::sync::LazyLock;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

/// Hashed when a login names no known user, so that the answer takes as long as a wrong
/// password would.
pub static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_now("not a password"));

fn hash_now(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 with default parameters")
        .to_string()
}

pub async fn hash(password: &str) -> String {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .expect("hashing task")
}

pub async fn verify(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
    })
    .await
    .expect("verification task")
}

/// A random secret of 32 hex characters (122 random bits).
pub fn generate() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_only_the_right_password() {
        let hashed = hash("correct horse").await;
        assert!(hashed.starts_with("$argon2id$"));
        assert!(verify("correct horse", &hashed).await);
        assert!(!verify("wrong", &hashed).await);
        assert!(!verify("correct horse", "not a hash").await);
        assert!(!verify("x", &DUMMY_HASH).await);
    }
}
