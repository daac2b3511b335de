//! Throttles password guessing: per window, at most [`MAX_PER_USER`] failed logins for one
//! user name from one client address, [`MAX_PER_ADDRESS`] from one address across all names
//! (password spraying), and [`MAX_PER_USER_ANYWHERE`] for one name from all addresses together
//! (guessing from many machines). An IPv6 client counts by its /64, which one machine usually
//! holds whole.
//!
//! An attempt is counted before its password is checked and forgiven when it succeeds, in one
//! atomic statement of the metadata store, so concurrent guesses cannot slip past the limit
//! and every node counts against the same budget. Part of `auth`; depends on `metadata`.

use std::net::IpAddr;
use std::sync::Arc;

use super::AuthError;
use crate::metadata::{IdentityStore, Millis, now_millis};

pub const MAX_PER_USER: u32 = 5;
pub const MAX_PER_ADDRESS: u32 = 30;
pub const MAX_PER_USER_ANYWHERE: u32 = 100;
pub const WINDOW: Millis = 60_000;

pub struct LoginLimiter {
    store: Arc<dyn IdentityStore>,
}

/// An attempt counted against its budgets, to be forgiven if it succeeds.
#[must_use]
pub struct Charge {
    keys: [String; 3],
}

/// The address a budget is kept for: an IPv4 address, or an IPv6 address's /64.
fn client_of(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let net = ipnet::Ipv6Net::new(v6, 64).expect("64 is a valid prefix length");
            net.trunc().to_string()
        }
        v4 => v4.to_string(),
    }
}

impl LoginLimiter {
    pub fn new(store: Arc<dyn IdentityStore>) -> LoginLimiter {
        LoginLimiter { store }
    }

    /// Counts an attempt by `name` from `address`, or refuses it while any budget is spent.
    pub async fn charge(&self, name: &str, address: IpAddr) -> Result<Charge, AuthError> {
        let now = now_millis();
        let client = client_of(address);
        let keys = [
            format!("user:{name}@{client}"),
            format!("address:{client}"),
            format!("user:{name}"),
        ];
        let limits = [MAX_PER_USER, MAX_PER_ADDRESS, MAX_PER_USER_ANYWHERE];
        let mut wait: Option<Millis> = None;
        for (key, limit) in keys.iter().zip(limits) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let one = client_of("2001:db8:1:2:aaaa::1".parse().unwrap());
        assert_eq!(one, "2001:db8:1:2::/64");
        assert_eq!(one, client_of("2001:db8:1:2:ffff::9".parse().unwrap()));
        assert_ne!(one, client_of("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(client_of("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
        assert_eq!(client_of("192.0.2.1".parse().unwrap()), "192.0.2.1");
    }
}
