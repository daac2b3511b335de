//! A Wharf server per test, on a free loopback port, with its own data directory, plus the
//! HTTP helpers tests share.

use std::path::Path;
use std::sync::Arc;

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wharf::config::Config;
use wharf::storage::s3::S3Settings;
use wharf::storage::{BlobLocation, BlobStore};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// The Postgres server and S3 bucket the production backend pair uses, from the variables
/// `scripts/services.sh` exports.
#[derive(Debug, Clone)]
pub struct ProductionBackends {
    /// An administrative connection URL; each test gets a database of its own.
    pub postgres_url: String,
    pub s3_endpoint: String,
    pub s3_bucket: String,
}

impl ProductionBackends {
    /// The configured backends, or `None` (with a message) outside CI. Under `CI=true` a
    /// missing backend fails the test instead of skipping it.
    pub fn from_env() -> Option<ProductionBackends> {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let found = (|| {
            Some(ProductionBackends {
                postgres_url: var("WHARF_TEST_POSTGRES_URL")?,
                s3_endpoint: var("WHARF_TEST_S3_ENDPOINT")?,
                s3_bucket: var("WHARF_TEST_S3_BUCKET")?,
            })
        })();
        if found.is_none() {
            assert!(
                std::env::var("CI").is_err(),
                "CI=true but WHARF_TEST_POSTGRES_URL / WHARF_TEST_S3_* are not set"
            );
            eprintln!("skipped: Postgres and S3 are not configured (see scripts/services.sh)");
        }
        found
    }

    /// A fresh database on the Postgres server.
    pub async fn database(&self) -> String {
        use sqlx::{Connection, Executor};
        let name = format!("wharf_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&self.postgres_url)
            .await
            .expect("postgres");
        let create = format!("CREATE DATABASE {name}");
        admin
            .execute(sqlx::AssertSqlSafe(create))
            .await
            .expect("create database");
        let (server, _) = self
            .postgres_url
            .rsplit_once('/')
            .expect("URL with a database");
        format!("{server}/{name}")
    }

    /// Settings for a fresh key prefix in the bucket.
    pub fn s3(&self) -> S3Settings {
        S3Settings {
            endpoint: Some(self.s3_endpoint.clone()),
            region: std::env::var("AWS_REGION").unwrap_or_else(|_| "garage".into()),
            bucket: self.s3_bucket.clone(),
            prefix: format!("test-{}/", uuid::Uuid::new_v4().simple()),
            path_style: true,
            ..S3Settings::default()
        }
    }

    /// A registry configuration on a fresh database and prefix.
    pub async fn config(&self, dir: &Path) -> Config {
        let mut config = Config::for_dir(dir);
        config.database_url = self.database().await;
        config.s3 = Some(self.s3());
        config
    }
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    /// The running server's state, for driving background jobs directly.
    pub state: wharf::http::AppState,
    config: Config,
    _dir: TempDir,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl TestApp {
    /// A registry on the backend pair `WHARF_TEST_BACKEND` names: `sqlite-fs` (the default) or
    /// `postgres-s3`.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// Like [`TestApp::spawn`], with the configuration adjusted first.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::spawn_wrapping(configure, |blobs| blobs).await
    }

    /// Like [`TestApp::spawn_with`], serving through `wrap` of its blob store (a paused store,
    /// say). The wrapper is used for this first start only.
    pub async fn spawn_wrapping(
        configure: impl FnOnce(&mut Config),
        wrap: impl FnOnce(Arc<dyn BlobStore>) -> Arc<dyn BlobStore>,
    ) -> TestApp {
        // A failing test's output then shows the server errors it met.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("error")
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = match std::env::var("WHARF_TEST_BACKEND").as_deref() {
            Ok("postgres-s3") => {
                let backends = ProductionBackends::from_env()
                    .expect("WHARF_TEST_BACKEND=postgres-s3 needs Postgres and S3");
                backends.config(dir.path()).await
            }
            Ok("sqlite-fs") | Err(_) => Config::for_dir(dir.path()),
            Ok(other) => panic!("unknown WHARF_TEST_BACKEND {other:?}"),
        };
        without_background_jobs(&mut config);
        configure(&mut config);
        let blobs = wharf::open_blob_store(&config).await.expect("blob store");
        let (base, state, server) = start(&config, wrap(blobs)).await;
        TestApp {
            base,
            client: Client::new(),
            state,
            config,
            _dir: dir,
            server: Some(server),
        }
    }

    /// Stops the server (letting requests finish) and starts a new one on the same data,
    /// as after a restart.
    pub async fn restart(&mut self) {
        self.stop().await;
        let blobs = wharf::open_blob_store(&self.config)
            .await
            .expect("blob store");
        let (base, state, server) = start(&self.config, blobs).await;
        self.base = base;
        self.state = state;
        self.server = Some(server);
    }

    /// Stops the server, letting requests finish: its port is closed afterwards.
    pub async fn stop(&mut self) {
        if let Some((shutdown, task)) = self.server.take() {
            let _ = shutdown.send(());
            task.await.expect("server task");
        }
    }

    /// The registry's metadata database, for reading what the API does not show.
    pub fn database_url(&self) -> &str {
        &self.config.database_url
    }

    /// Runs one SQL statement on the registry's database, for setting up states the API
    /// cannot reach.
    pub async fn sql(&self, statement: &str) {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let mut connection = sqlx::AnyConnection::connect(&self.config.database_url)
            .await
            .expect("connect to the registry's database");
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()))
            .execute(&mut connection)
            .await
            .expect("SQL statement");
    }

    /// A second connection to the registry's database, as the admin CLI has.
    pub async fn store(&self) -> std::sync::Arc<wharf::metadata::sql::SqlStore> {
        let store = wharf::metadata::sql::SqlStore::connect(&self.config.database_url).await;
        std::sync::Arc::new(store.expect("open the registry's database"))
    }

    /// Whether blobs are stored on S3 (else on the filesystem).
    pub fn on_s3(&self) -> bool {
        self.config.s3.is_some()
    }

    /// A second handle on the registry's blob storage.
    pub async fn blob_store(&self) -> std::sync::Arc<dyn wharf::storage::BlobStore> {
        match &self.config.s3 {
            Some(s3) => std::sync::Arc::new(
                wharf::storage::s3::S3BlobStore::connect(s3.clone())
                    .await
                    .unwrap(),
            ),
            None => {
                let root = self.config.data_dir.join("blobs");
                std::sync::Arc::new(wharf::storage::fs::FsBlobStore::open(root).await.unwrap())
            }
        }
    }

    /// Whether storage holds the bytes of `digest` anywhere: under the digest, or in an object
    /// a store keeps as a blob (each read back and hashed, so no row is needed to find it).
    pub async fn holds_bytes(&self, digest: &str) -> bool {
        use futures::TryStreamExt;
        let store = self.blob_store().await;
        let parsed: wharf::oci::Digest = digest.parse().unwrap();
        if stored_under_digest(&*store, &parsed).await {
            return true;
        }
        let mut after: Option<String> = None;
        loop {
            let page = store.list_kept(after.as_deref(), 100).await.unwrap();
            for object in &page {
                let location = BlobLocation {
                    digest: &parsed,
                    key: Some(&object.key),
                };
                // The server may remove it meanwhile (a collection it runs on its own).
                let body = match store.get(location, None).await {
                    Err(wharf::storage::StorageError::NotFound) => continue,
                    body => body.unwrap(),
                };
                let bytes = body
                    .try_fold(Vec::new(), |mut all, chunk| async move {
                        all.extend_from_slice(&chunk);
                        Ok(all)
                    })
                    .await
                    .unwrap();
                if sha256(&bytes) == digest {
                    return true;
                }
            }
            match page.last() {
                Some(last) if page.len() == 100 => after = Some(last.key.clone()),
                _ => return false,
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    /// Pushes `data` as a blob of `repo` in one request and returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let response = self
            .request(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            )
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "push blob to {repo}"
        );
        digest
    }

    /// Starts an upload session and returns its Location.
    pub async fn start_upload(&self, repo: &str) -> String {
        let response = self
            .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        header(&response, "location")
    }

    pub async fn put_manifest(&self, repo: &str, reference: &str, manifest: &Value) -> Response {
        let media_type = manifest["mediaType"]
            .as_str()
            .unwrap_or(OCI_MANIFEST)
            .to_string();
        self.request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(serde_json::to_vec(manifest).unwrap())
            .send()
            .await
            .unwrap()
    }

    /// Pushes a one-layer image (config + layer blobs, manifest) and returns the manifest,
    /// its digest and the layer's bytes.
    pub async fn push_image(&self, repo: &str, tag: &str) -> (Value, String, Vec<u8>) {
        let layer = format!("layer of {repo}:{tag} {}", uuid_like()).into_bytes();
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let layer_digest = self.push_blob(repo, &layer).await;
        let config_digest = self.push_blob(repo, config).await;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": LAYER, "digest": layer_digest, "size": layer.len()}],
        });
        let response = self.put_manifest(repo, tag, &manifest).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "push image {repo}:{tag}"
        );
        let digest = header(&response, "docker-content-digest");
        (manifest, digest, layer)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((shutdown, _)) = self.server.take() {
            let _ = shutdown.send(());
        }
    }
}

type Server = (oneshot::Sender<()>, JoinHandle<()>);

async fn start(
    config: &Config,
    blobs: Arc<dyn BlobStore>,
) -> (String, wharf::http::AppState, Server) {
    let state = wharf::build_state_on(config, blobs)
        .await
        .expect("build state");
    let shared = state.clone();
    let listener = TcpListener::bind(&config.listen).await.expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        wharf::serve(listener, state, shutdown)
            .await
            .expect("serve");
    });
    (base, shared, (shutdown, task))
}

/// Turns off the lifecycle, garbage collection, replication, scan and webhook runs a server
/// starts on its own, so that tests run them when they choose.
pub fn without_background_jobs(config: &mut Config) {
    config.lifecycle_interval = std::time::Duration::ZERO;
    config.gc_interval = std::time::Duration::ZERO;
    config.replication_interval = std::time::Duration::ZERO;
    config.scan_interval = std::time::Duration::ZERO;
    config.webhook_interval = std::time::Duration::ZERO;
}

/// Settings for a registry under `dir`, like [`Config::for_dir`], without background jobs.
pub fn config_for_dir(dir: &Path) -> Config {
    let mut config = Config::for_dir(dir);
    without_background_jobs(&mut config);
    config
}

/// The URL of a port nothing listens on: a remote that is down.
pub fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

pub const ADMIN_PASSWORD: &str = "admin-secret";

/// Turns access control on, with a known admin password.
pub fn auth_on(config: &mut Config) {
    let settings = wharf::config::SettingsArgs {
        auth: Some(true),
        admin_password: Some(ADMIN_PASSWORD.into()),
        ..Default::default()
    };
    config.auth = Config::load(settings).expect("auth settings").auth;
}

/// An `Authorization: Basic …` value.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("response has no {name} header"))
        .to_str()
        .unwrap()
        .to_string()
}

/// A unique suffix so that blobs of different tests differ.
pub fn uuid_like() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Asserts the status and the OCI error code of an error response, and returns its body.
pub async fn assert_error(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let body: Value =
        serde_json::from_slice(&response.bytes().await.unwrap()).expect("error body is JSON");
    assert_eq!(body["errors"][0]["code"], code, "error body {body}");
    assert!(
        body["errors"][0]["message"].is_string(),
        "message in {body}"
    );
    body
}

/// Asserts the status and the OAuth2 `error` of a token endpoint response, and returns its body.
pub async fn assert_oauth_error(response: Response, status: u16, error: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let body: Value =
        serde_json::from_slice(&response.bytes().await.unwrap()).expect("error body is JSON");
    assert_eq!(body["error"], error, "error body {body}");
    assert!(
        body["error_description"].is_string(),
        "description in {body}"
    );
    body
}

/// Reads a response body as JSON.
pub trait JsonBody {
    async fn json_body(self) -> Value;
}

impl JsonBody for Response {
    async fn json_body(self) -> Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).expect("JSON body")
    }
}

/// Whether `store` holds a blob under `digest` itself (not in an object kept as a blob).
pub async fn stored_under_digest(store: &dyn BlobStore, digest: &wharf::oci::Digest) -> bool {
    let location = BlobLocation::of(digest);
    store.stat(location).await.unwrap().is_some()
}

/// The audit records of `event`, newest first (this node's are written first).
pub async fn audited(app: &TestApp, event: &str) -> Vec<wharf::metadata::AuditRecord> {
    let filter = wharf::metadata::AuditFilter {
        event_name: Some(event.into()),
        ..Default::default()
    };
    let (records, _) = app
        .state
        .registry
        .audit_events(&filter, None, 1000)
        .await
        .expect("audit records");
    records
}
