//! Throttles repeated failed logins per principal and client address.
//!
//! Kept in each node's memory: a node only needs its own view to slow a guessing client
//! down, and losing the counts on restart is harmless.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts allowed per window before further attempts are refused.
const MAX_FAILURES: u32 = 5;
const WINDOW: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct FailureLimiter {
    failures: Mutex<HashMap<(String, IpAddr), (u32, Instant)>>,
}

impl FailureLimiter {
    /// `Err(seconds to wait)` while `principal` from `address` is locked out.
    pub fn check(&self, principal: &str, address: IpAddr) -> Result<(), u64> {
        let failures = self.failures.lock().expect("limiter lock");
        match failures.get(&(principal.to_string(), address)) {
            Some((count, since)) if *count >= MAX_FAILURES && since.elapsed() < WINDOW => {
                Err((WINDOW - since.elapsed()).as_secs() + 1)
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, principal: &str, address: IpAddr) {
        let mut failures = self.failures.lock().expect("limiter lock");
        failures.retain(|_, (_, since)| since.elapsed() < WINDOW);
        let entry = failures
            .entry((principal.to_string(), address))
            .or_insert((0, Instant::now()));
        entry.0 += 1;
    }

    pub fn succeeded(&self, principal: &str, address: IpAddr) {
        let mut failures = self.failures.lock().expect("limiter lock");
        failures.remove(&(principal.to_string(), address));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_out_after_repeated_failures_per_principal_and_address() {
        let limiter = FailureLimiter::default();
        let (here, there) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        for _ in 0..MAX_FAILURES {
            assert!(limiter.check("alice", here).is_ok());
            limiter.failed("alice", here);
        }
        assert!(limiter.check("alice", here).is_err());
        assert!(limiter.check("alice", there).is_ok());
        assert!(limiter.check("bob", here).is_ok());
    }
}
