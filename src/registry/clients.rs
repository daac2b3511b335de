//! Clients of remote registries (replication destinations, pull-through upstreams), kept per
//! node so that their connections and bearer tokens serve many requests. A client is made
//! again when what it was made from changes, and at least every [`CLIENT_LIFETIME`], so that
//! a changed password is taken up without a restart. Depends on `remote` only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::remote::Remote;

/// How long a client is used before it is made again from what is stored.
const CLIENT_LIFETIME: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct RemoteClients {
    clients: Mutex<HashMap<String, Kept>>,
}

/// A client, with what it was made from and when.
struct Kept {
    made_from: String,
    made_at: Instant,
    remote: Arc<Remote>,
}

impl RemoteClients {
    /// The client kept as `name` if it was made from `made_from` within its lifetime; else
    /// the one `make` makes, kept from now on.
    pub async fn get<F, E>(
        &self,
        name: &str,
        made_from: &str,
        make: impl FnOnce() -> F,
    ) -> Result<Arc<Remote>, E>
    where
        F: Future<Output = Result<Remote, E>>,
    {
        let kept = self
            .clients
            .lock()
            .expect("remote clients lock")
            .get(name)
            .filter(|kept| kept.made_from == made_from && kept.made_at.elapsed() < CLIENT_LIFETIME)
            .map(|kept| kept.remote.clone());
        if let Some(remote) = kept {
            return Ok(remote);
        }
        let remote = Arc::new(make().await?);
        let kept = Kept {
            made_from: made_from.to_string(),
            made_at: Instant::now(),
            remote: remote.clone(),
        };
        self.clients
            .lock()
            .expect("remote clients lock")
            .insert(name.to_string(), kept);
        Ok(remote)
    }
}
