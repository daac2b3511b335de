//! One fetch at a time per key on this node: the first request for something uncached leads
//! the fetch, and requests arriving meanwhile wait for it to land, then read what it stored.
//! Depends on nothing else in the crate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

type Running = Arc<Mutex<HashMap<String, watch::Receiver<()>>>>;

#[derive(Default)]
pub struct Flights {
    running: Running,
}

/// Where a request stands in the flight for its key.
pub enum Seat {
    /// This request fetches; the flight lands when the [`Landing`] is dropped.
    Leader(Landing),
    /// Another request is fetching: wait with [`wait`].
    Follower(watch::Receiver<()>),
}

/// Held by the leader while it fetches; dropping it wakes the followers.
pub struct Landing {
    key: String,
    running: Running,
    _done: watch::Sender<()>,
}

impl Flights {
    pub fn board(&self, key: String) -> Seat {
        let mut running = self.running.lock().expect("flights lock");
        if let Some(landed) = running.get(&key) {
            return Seat::Follower(landed.clone());
        }
        let (done, landed) = watch::channel(());
        running.insert(key.clone(), landed);
        Seat::Leader(Landing {
            key,
            running: self.running.clone(),
            _done: done,
        })
    }
}

/// Waits until the leader's flight has landed, whether it succeeded or not.
pub async fn wait(mut landed: watch::Receiver<()>) {
    // Nothing is ever sent: this returns when the sender is dropped.
    while landed.changed().await.is_ok() {}
}

impl Drop for Landing {
    fn drop(&mut self) {
        // Removed before the sender drops, so that a woken follower boarding again leads.
        self.running.lock().expect("flights lock").remove(&self.key);
    }
}
