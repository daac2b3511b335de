//! Password and secret hashing with argon2 (default parameters, random salt, PHC strings).
//!
//! Each argon2 computation takes ~19 MiB and tens of milliseconds of one core, so a flood of
//! logins (or of made-up user names) could take the server's memory and CPU. A [`Verifier`]
//! runs at most one verification per core at a time, each in one of a fixed set of reused
//! memory buffers; a request that cannot get a turn within [`QUEUE_WAIT`] is told the server
//! is busy. Depends on nothing else in Wharf.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::Output;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, Version};
use tokio::sync::Semaphore;

/// How long a verification may wait for a free core before the request is refused as busy.
pub const QUEUE_WAIT: Duration = Duration::from_secs(2);

/// Hashed when a login names no known user, so that the answer takes as long as a wrong
/// password would.
pub static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_now("not a password"));

/// Every core is verifying a password and the queue did not move in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks in progress")]
pub struct Busy;

/// Runs verifications: at most `concurrency` at a time, each in one of as many reused
/// memory buffers. Cheap to clone; clones share the turns and buffers.
#[derive(Clone)]
pub struct Verifier {
    turns: Arc<Semaphore>,
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl Verifier {
    pub fn new(concurrency: usize) -> Verifier {
        Verifier {
            turns: Arc::new(Semaphore::new(concurrency)),
            buffers: Arc::new(Mutex::new(Vec::with_capacity(concurrency))),
        }
    }

    /// One turn per core.
    pub fn per_core() -> Verifier {
        Verifier::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Whether `password` matches the PHC string `hash`; `Busy` if no turn freed up in time.
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, Busy> {
        let turn = tokio::time::timeout(QUEUE_WAIT, self.turns.clone().acquire_owned())
            .await
            .map_err(|_| Busy)?
            .expect("the semaphore is never closed");
        let (password, hash) = (password.to_owned(), hash.to_owned());
        let buffers = self.buffers.clone();
        tokio::task::spawn_blocking(move || {
            let taken = buffers.lock().expect("buffers lock").pop();
            let mut buffer = taken.unwrap_or_default();
            let matched = verify_in(&mut buffer, password.as_bytes(), &hash);
            buffers.lock().expect("buffers lock").push(buffer);
            drop(turn);
            Ok(matched)
        })
        .await
        .expect("verification task")
    }
}

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

/// Recomputes `hash` for `password` in `buffer` (grown to the hash's memory cost if needed)
/// and compares in constant time.
fn verify_in(buffer: &mut Vec<Block>, password: &[u8], hash: &str) -> bool {
    let Ok(hash) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let context = || -> Option<Argon2<'static>> {
        let algorithm = Algorithm::new(hash.algorithm.as_str()).ok()?;
        let version = match hash.version {
            Some(version) => Version::try_from(version).ok()?,
            None => Version::default(),
        };
        Some(Argon2::new(
            algorithm,
            version,
            Params::try_from(&hash).ok()?,
        ))
    };
    let Some(argon2) = context() else {
        return false;
    };
    let blocks = argon2.params().block_count();
    if buffer.len() < blocks {
        buffer.resize(blocks, Block::default());
    }
    let mut computed = vec![0; expected.len()];
    argon2
        .hash_password_into_with_memory(
            password,
            salt.as_ref(),
            &mut computed,
            &mut buffer[..blocks],
        )
        .is_ok()
        && Output::new(&computed).is_ok_and(|computed| computed == *expected)
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
        let verifier = Verifier::new(1);
        let hashed = hash("correct horse").await;
        assert!(hashed.starts_with("$argon2id$"));
        assert_eq!(verifier.verify("correct horse", &hashed).await, Ok(true));
        assert_eq!(verifier.verify("wrong", &hashed).await, Ok(false));
        assert_eq!(
            verifier.verify("correct horse", "not a hash").await,
            Ok(false)
        );
        assert_eq!(verifier.verify("x", &DUMMY_HASH).await, Ok(false));
        // One buffer, reused.
        assert_eq!(verifier.buffers.lock().unwrap().len(), 1);
    }

    #[test]
    fn verifies_hashes_of_other_parameters_in_a_reused_buffer() {
        let small = Params::new(64, 1, 1, None).unwrap();
        let hashed = Argon2::new(Algorithm::Argon2i, Version::V0x10, small)
            .hash_password(b"pw")
            .unwrap()
            .to_string();
        let mut buffer = Vec::new();
        assert!(verify_in(&mut buffer, b"pw", &hashed));
        assert!(!verify_in(&mut buffer, b"px", &hashed));
        assert!(verify_in(&mut buffer, b"pw", &hash_now("pw")));
        assert_eq!(buffer.len(), Params::DEFAULT.block_count());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_answers_busy() {
        let verifier = Verifier::new(1);
        let _held = verifier.turns.clone().acquire_owned().await.unwrap();
        assert_eq!(verifier.verify("x", &DUMMY_HASH).await, Err(Busy));
    }
}
