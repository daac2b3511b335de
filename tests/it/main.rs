//! Integration tests: one binary that starts real Wharf servers on loopback ports and drives
//! them over HTTP, as clients would.

mod audit;
mod auth;
mod backends;
mod blobs;
mod cli;
mod clients;
mod common;
mod connections;
mod ecr;
mod faults;
mod gc;
mod listing;
mod manifests;
mod nodes;
mod observability;
mod paused;
mod process;
mod pull_through;
mod remote;
mod replication;
mod scanning;
mod staging;
mod storage_check;
mod stress;
mod uploads;
mod versions;
mod webhooks;
