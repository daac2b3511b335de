//! Throttles password guessing: per window, at most [`MAX_PER_USER`] failed logins for one
//! user name from one client address, and [`MAX_PER_ADDRESS`] from one address across all
//! names (password spraying).
//!
//! An attempt is counted before its password is checked and forgiven when it succeeds, in one
//! atomic statement of the metadata store, so concurrent guesses cannot slip past the limit
//! and every node counts against the same budget.

use std::net::IpAddr;
use std::sync::Arc;

use super::{AuthError, now_millis};
use crate::metadata::{IdentityStore, Millis};

pub const MAX_PER_USER: u32 = 5;
pub const MAX_PER_ADDRESS: u32 = 30;
pub const WINDOW: Millis = 60_000;

pub struct LoginLimiter {
    store: Arc<dyn IdentityStore>,
}

/// An attempt counted against its budgets, to be forgiven if it succeeds.
#[must_use]
pub struct Charge {
    keys: [String; 2],
}

impl LoginLimiter {
    pub fn new(store: Arc<dyn IdentityStore>) -> LoginLimiter {
        LoginLimiter { store }
    }

    /// Counts an attempt by `name` from `address`, or refuses it while either budget is spent.
    pub async fn charge(&self, name: &str, address: IpAddr) -> Result<Charge, AuthError> {
        let now = now_millis();
        let keys = [
            format!("user:{name}@{address}"),
            format!("address:{address}"),
        ];
        let mut wait: Option<Millis> = None;
        for (key, limit) in keys.iter().zip([MAX_PER_USER, MAX_PER_ADDRESS]) {
            let window = self.store.count_login_attempt(key, now, WINDOW).await?;
            if window.attempts > limit {
                let left = window.started_at + WINDOW - now;
                wait = Some(wait.map_or(left, |wait| wait.max(left)));
            }
        }
        match wait {
            None => Ok(Charge { keys }),
            Some(millis) => Err(AuthError::TooManyAttempts {
                retry_after: u64::try_from((millis + 999) / 1000).unwrap_or(1).max(1),
            }),
        }
    }

    /// Takes back a charge whose attempt succeeded (or was never checked).
    pub async fn forgive(&self, charge: Charge) -> Result<(), AuthError> {
        for key in &charge.keys {
            self.store.forgive_login_attempt(key).await?;
        }
        Ok(())
    }

    /// Forgets windows that ended, so the table holds only recent attempts.
    pub async fn purge(&self) -> Result<u64, AuthError> {
        Ok(self
            .store
            .purge_login_attempts(now_millis() - WINDOW)
            .await?)
    }
}
