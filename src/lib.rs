//! Wharf: a self-hosted OCI container registry.
//!
//! Layers, each depending only on those after it:
//! `http` (axum handlers) → `registry` (the rules) → `storage` (blob bytes) and `metadata`
//! (the database). `oci` holds the shared vocabulary; `error` maps registry errors to OCI
//! error responses.

#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
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

use crate::auth::Auth;
use crate::auth::token::SigningKey;
use crate::config::{AuthConfig, Config};
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
    #[error("access control: {0}")]
    Auth(String),
}

/// Everything a request handler needs.
pub struct App {
    pub registry: Registry,
    /// `None` when auth is off.
    pub auth: Option<Auth>,
    /// Base URL for the token realm; `None` to derive it from each request's Host.
    pub public_url: Option<String>,
}

/// The configured signing key, if a file is named; `None` means the one in the database.
pub fn signing_key(config: &AuthConfig) -> Result<Option<SigningKey>, StartError> {
    let Some(path) = &config.signing_key else {
        return Ok(None);
    };
    let pem = std::fs::read_to_string(path)
        .map_err(|e| StartError::Auth(format!("cannot read {}: {e}", path.display())))?;
    Ok(Some(SigningKey::from_pem(&pem).map_err(StartError::Auth)?))
}

/// Builds [`Auth`] over `store` from the configuration, creating the admin user if needed.
pub async fn build_auth(store: Arc<SqlStore>, config: &AuthConfig) -> Result<Auth, StartError> {
    let key = signing_key(config)?;
    let auth = Auth::new(store, key, config.settings.clone())
        .await
        .map_err(|e| StartError::Auth(e.to_string()))?;
    let generated = auth
        .bootstrap_admin(config.admin_password.as_deref())
        .await
        .map_err(|e| StartError::Auth(e.to_string()))?;
    if let Some(password) = generated {
        tracing::warn!(
            user = auth::ADMIN,
            password,
            "created the admin user with a generated password; it is shown only this once"
        );
    }
    Ok(auth)
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
    let meta = Arc::new(SqlStore::connect(&config.database_url).await?);
    let auth = match &config.auth {
        Some(auth) => Some(build_auth(meta.clone(), auth).await?),
        None => None,
    };
    let settings = Settings {
        upload_idle_timeout: config.upload_idle_timeout,
    };
    Ok(Arc::new(App {
        registry: Registry::new(blobs, meta, settings),
        auth,
        public_url: config.auth.as_ref().and_then(|a| a.public_url.clone()),
    }))
}

/// Serves the registry on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish. Also runs the stale-upload purge in the background.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let purge = tokio::spawn(purge_stale_uploads(state.clone()));
    let app = http::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    purge.abort();
    result
}

async fn purge_stale_uploads(app: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        match app.registry.purge_stale_uploads().await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "aborted stale uploads"),
            Err(e) => tracing::warn!(error = %e, "stale upload purge failed"),
        }
    }
}
