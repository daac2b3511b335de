//! Wharf: a self-hosted OCI container registry.
//!
//! Layers, each depending only on those after it:
//! `http` (the `/v2` API) and `ecr` (ECR's management API), two front doors → `registry` (the
//! rules) → `storage` (blob bytes) and `metadata` (the database). `auth` decides who may do
//! what; `oci` holds the shared vocabulary; `error` maps registry errors to OCI error
//! responses; `metrics` counts and times what every part does.

#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod config;
pub mod ecr;
pub mod error;
pub mod housekeeping;
pub mod http;
pub mod jobs;
pub mod lifecycle;
pub mod metadata;
pub mod metrics;
pub mod observe_commands;
pub mod oci;
#[cfg(test)]
mod properties;
pub mod registry;
pub mod remote;
pub mod scan;
pub mod scan_commands;
pub mod secrets;
pub mod storage;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;

use tokio::net::TcpListener;

use crate::auth::Auth;
use crate::auth::token::SigningKey;
use crate::config::{AuthConfig, Config};
use crate::http::AppState;
use crate::metadata::sql::SqlStore;
use crate::metadata::{IdentityStore, MetaError, RegistryIdentity};
use crate::registry::Registry;
use crate::storage::fs::FsBlobStore;
use crate::storage::metered::MeteredBlobStore;
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
    /// Users, keys and policies, which the ECR API manages even with auth off.
    pub identity: Arc<dyn IdentityStore>,
    /// Base URL for the token realm and repository URIs; `None` to derive it from each
    /// request's Host.
    pub public_url: Option<String>,
    /// How ARNs and the ECR API name this registry.
    pub ecr: RegistryIdentity,
    /// Peers whose X-Forwarded-* headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    pub metrics: Arc<metrics::Metrics>,
    /// `/metrics` is open to anyone, not only to `admin`.
    pub metrics_public: bool,
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

/// Builds [`Auth`] over `store` from the configuration, creating the admin user on the very
/// first start. A generated admin password goes to a file only its owner can read in
/// `data_dir`, written before the user is created so that it cannot be lost; it never goes
/// into the log.
pub async fn build_auth(
    store: Arc<SqlStore>,
    config: &AuthConfig,
    registry: RegistryIdentity,
    data_dir: &Path,
) -> Result<Auth, StartError> {
    let key = signing_key(config)?;
    let auth_error = |e: auth::AuthError| StartError::Auth(e.to_string());
    let auth = Auth::new(store, key, config.settings.clone(), registry)
        .await
        .map_err(auth_error)?;
    if !auth.has_no_users().await.map_err(auth_error)? {
        return Ok(auth);
    }
    if let Some(password) = &config.admin_password {
        auth.bootstrap_admin(password).await.map_err(auth_error)?;
        return Ok(auth);
    }
    let password = auth::passwords::generate();
    let file = data_dir.join(ADMIN_PASSWORD_FILE);
    write_private(&file, &password)
        .map_err(|e| StartError::Auth(format!("cannot write {}: {e}", file.display())))?;
    if auth.bootstrap_admin(&password).await.map_err(auth_error)? {
        tracing::warn!(
            user = auth::ADMIN,
            file = %file.display(),
            "created the admin user with a generated password, written to this file (mode 0600) \
             on this node: store it somewhere safe and delete the file"
        );
    } else {
        // Another node created the first user meanwhile; this password is nobody's.
        let _ = std::fs::remove_file(&file);
    }
    Ok(auth)
}

/// Where the generated admin password is written, in the data directory.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // A file left from before keeps its old mode through `open`.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    writeln!(file, "{contents}")
}

/// Opens the blob store `config` names.
pub async fn open_blob_store(config: &Config) -> Result<Arc<dyn BlobStore>, StartError> {
    Ok(match &config.s3 {
        None => Arc::new(FsBlobStore::open(config.data_dir.join("blobs")).await?),
        Some(s3) => Arc::new(S3BlobStore::connect(s3.clone()).await?),
    })
}

/// Opens the stores named by `config` (applying migrations) and builds the registry.
pub async fn build_state(config: &Config) -> Result<AppState, StartError> {
    build_state_on(config, open_blob_store(config).await?).await
}

/// Like [`build_state`], over the given blob store.
pub async fn build_state_on(
    config: &Config,
    blobs: Arc<dyn BlobStore>,
) -> Result<AppState, StartError> {
    if config.database_url.starts_with("sqlite:") {
        tokio::fs::create_dir_all(&config.data_dir)
            .await
            .map_err(StorageError::Io)?;
    }
    let meta = Arc::new(SqlStore::connect(&config.database_url).await?);
    let identity = registry_identity(config, &*meta).await?;
    let auth = match &config.auth {
        Some(auth) => {
            let built = build_auth(meta.clone(), auth, identity.clone(), &config.data_dir);
            Some(built.await?)
        }
        None => None,
    };
    let metrics = Arc::new(metrics::Metrics::default());
    let backend = if config.s3.is_some() { "s3" } else { "fs" };
    let blobs = Arc::new(MeteredBlobStore::new(blobs, metrics.clone(), backend));
    Ok(Arc::new(App {
        registry: Registry::new(blobs, meta.clone(), config.into()),
        metrics,
        metrics_public: config.metrics_public,
        auth,
        identity: meta,
        public_url: config.public_url.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        ecr: identity,
    }))
}

/// The registry's id (configured, else the one stored on the first start) and region. The
/// registry's row is made even when an id is configured: it also holds the registry policy.
pub async fn registry_identity(
    config: &Config,
    store: &dyn metadata::RepositoryStore,
) -> Result<RegistryIdentity, MetaError> {
    let stored_id = store
        .registry_id(&ecr::generate_registry_id(), metadata::now_millis())
        .await?;
    Ok(RegistryIdentity {
        registry_id: config.registry_id.clone().unwrap_or(stored_id),
        region: config.region.clone(),
    })
}

/// Serves the registry on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish and writes the pulls it gathered. Also runs the background jobs (`jobs`).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let background = tokio::spawn(jobs::run(state.clone()));
    let result = http::server::serve(listener, http::router(state.clone()), shutdown).await;
    background.abort();
    if let Err(e) = state.registry.flush_pulls().await {
        tracing::warn!(error = %e, "pull times gathered since the last write are lost");
    }
    if let Err(e) = state.registry.flush_audit().await {
        tracing::warn!(error = %e, "audit records gathered since the last write are lost");
    }
    result
}
