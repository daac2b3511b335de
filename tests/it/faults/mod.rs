//! Failures of the services Wharf depends on, injected: a blob store that fails, stalls or
//! cuts streams (`store`), and Postgres restarted under load (`postgres`). Each shows a clean
//! error in the protocol's shape, nothing half-written, and recovery without a restart.

mod postgres;
mod store;
