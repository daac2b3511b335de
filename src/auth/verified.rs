//! Remembers recently verified Basic credentials for a short while, so that clients sending
//! Basic on every request do not pay an argon2 check each time, and lets identical
//! credentials arriving together wait for one check instead of each running their own.
//!
//! What is remembered is that these credentials matched a given stored hash: the caller still
//! reads the user or key and compares its hash, so a deleted key or a changed password stops
//! working at once. Per node and in memory only: losing it costs one check. Keys are salted
//! SHA-256 hashes of the credentials, never the credentials themselves (a memory dump could
//! still test guesses at them at SHA-256 speed; generated passwords and key secrets are far
//! too long for that). Part of `auth`; depends on nothing else in Wharf.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use tokio::sync::OwnedMutexGuard;

/// How long a successful check is remembered.
pub const REMEMBER_FOR: Duration = Duration::from_secs(60);
/// Entries kept at most; beyond that, expired ones go, and if none had expired, all do.
const CAPACITY: usize = 10_000;

type Key = [u8; 32];

pub struct VerifiedCredentials {
    /// Random per process, so that the keys reveal nothing about the credentials.
    salt: [u8; 16],
    /// Credentials → the stored hash they matched, and when.
    remembered: Mutex<HashMap<Key, (String, Instant)>>,
    checks: Arc<Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>>,
}

/// The right to check one set of credentials; others with the same credentials wait for it.
pub struct Turn {
    key: Key,
    checks: Arc<Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>>,
    _guard: OwnedMutexGuard<()>,
}

impl Default for VerifiedCredentials {
    fn default() -> Self {
        VerifiedCredentials {
            salt: *uuid::Uuid::new_v4().as_bytes(),
            remembered: Mutex::default(),
            checks: Arc::default(),
        }
    }
}

impl VerifiedCredentials {
    pub fn key(&self, name: &str, secret: &str) -> Key {
        let mut hasher = Sha256::new();
        hasher.update(self.salt);
        hasher.update((name.len() as u64).to_be_bytes());
        hasher.update(name);
        hasher.update(secret);
        hasher.finalize().into()
    }

    /// Whether these credentials matched `stored_hash` within the last [`REMEMBER_FOR`].
    pub fn knows(&self, key: &Key, stored_hash: &str) -> bool {
        let remembered = self.remembered.lock().expect("cache lock");
        remembered
            .get(key)
            .is_some_and(|(hash, at)| hash == stored_hash && at.elapsed() < REMEMBER_FOR)
    }

    pub fn remember(&self, key: Key, stored_hash: &str) {
        let mut remembered = self.remembered.lock().expect("cache lock");
        if remembered.len() >= CAPACITY {
            remembered.retain(|_, (_, at)| at.elapsed() < REMEMBER_FOR);
            if remembered.len() >= CAPACITY {
                remembered.clear();
            }
        }
        remembered.insert(key, (stored_hash.to_string(), Instant::now()));
    }

    /// Waits until no other request is checking the same credentials.
    pub async fn turn(&self, key: Key) -> Turn {
        let lock = {
            let mut checks = self.checks.lock().expect("checks lock");
            checks.entry(key).or_default().clone()
        };
        Turn {
            key,
            checks: self.checks.clone(),
            _guard: lock.lock_owned().await,
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut checks = self.checks.lock().expect("checks lock");
        // The map's handle and this turn's: nobody else is waiting.
        if checks
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) <= 2)
        {
            checks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn remembers_per_credentials_and_serializes_identical_checks() {
        let cache = VerifiedCredentials::default();
        let (alice, wrong) = (cache.key("alice", "pw"), cache.key("alice", "px"));
        assert_ne!(alice, wrong);
        assert_ne!(cache.key("ab", "c"), cache.key("a", "bc"));
        assert!(!cache.knows(&alice, "$hash"));

        let cache = Arc::new(cache);
        let first = cache.turn(alice).await;
        let second = tokio::spawn({
            let cache = cache.clone();
            async move {
                let _turn = cache.turn(alice).await;
                cache.knows(&alice, "$hash")
            }
        });
        tokio::task::yield_now().await;
        assert!(!second.is_finished(), "waits for the first check");
        cache.remember(alice, "$hash");
        drop(first);
        assert!(second.await.unwrap());
        assert!(cache.knows(&alice, "$hash"));
        assert!(
            !cache.knows(&alice, "$changed"),
            "a changed password is not known"
        );
        assert!(!cache.knows(&wrong, "$hash"));
        assert!(
            cache.checks.lock().unwrap().is_empty(),
            "turns are cleaned up"
        );
    }
}
