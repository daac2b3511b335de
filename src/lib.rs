//! Wharf: a self-hosted OCI container registry.
//!
//! Layers, each depending only on those after it:
//! `http` (axum handlers) → `registry` (the rules) → `storage` (blob bytes) and `metadata`
//! (the database). `oci` holds the shared vocabulary; `error` maps registry errors to OCI
//! error responses.

#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod http;
pub mod metadata;
pub mod oci;
pub mod registry;
pub mod storage;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::AppState;
use crate::metadata::MetaError;
use crate::metadata::sql::SqlStore;
use crate::registry::{Registry, Settings};
use crate::storage::fs::FsBlobStore;
use crate::storage::s3::S3BlobStore;
use crate::storage::{BlobStore, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open blob storage: {0}")]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Metadata(#[from] MetaError),
}

/// Opens the stores named by `config` (applying migrations) and builds the registry.
pub async fn build_state(config: &Config) -> Result<AppState, StartError> {
    let blobs: Arc<dyn BlobStore> = match &config.s3 {
        None => Arc::new(FsBlobStore::open(config.data_dir.join("blobs")).await?),
        Some(s3) => Arc::new(S3BlobStore::connect(s3.clone()).await?),
    };
    if config.database_url.starts_with("sqlite:") {
        tokio::fs::create_dir_all(&config.data_dir)
            .await
            .map_err(StorageError::Io)?;
    }
    let meta = SqlStore::connect(&config.database_url).await?;
    let settings = Settings {
        upload_idle_timeout: config.upload_idle_timeout,
    };
    Ok(Arc::new(Registry::new(blobs, Arc::new(meta), settings)))
}

/// Serves the registry on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish. Also runs the stale-upload purge in the background.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let purge = tokio::spawn(purge_stale_uploads(state.clone()));
    let result = axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    purge.abort();
    result
}

async fn purge_stale_uploads(registry: Arc<Registry>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        match registry.purge_stale_uploads().await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "aborted stale uploads"),
            Err(e) => tracing::warn!(error = %e, "stale upload purge failed"),
        }
    }
}
