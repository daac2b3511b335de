//! A Wharf server per test, on a free loopback port, with its own data directory, plus the
//! HTTP helpers tests share.

use std::path::Path;

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wharf::config::Config;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

pub struct TestApp {
    pub base: String,
    pub client: Client,
    dir: TempDir,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let (base, server) = start(dir.path()).await;
        TestApp {
            base,
            client: Client::new(),
            dir,
            server: Some(server),
        }
    }

    /// Stops the server (letting requests finish) and starts a new one on the same data,
    /// as after a restart.
    pub async fn restart(&mut self) {
        self.stop().await;
        let (base, server) = start(self.dir.path()).await;
        self.base = base;
        self.server = Some(server);
    }

    async fn stop(&mut self) {
        if let Some((shutdown, task)) = self.server.take() {
            let _ = shutdown.send(());
            task.await.expect("server task");
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

async fn start(dir: &Path) -> (String, (oneshot::Sender<()>, JoinHandle<()>)) {
    let config = Config::for_dir(dir);
    let state = wharf::build_state(&config).await.expect("build state");
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
    (base, (shutdown, task))
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

/// Reads a response body as JSON.
pub trait JsonBody {
    async fn json_body(self) -> Value;
}

impl JsonBody for Response {
    async fn json_body(self) -> Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).expect("JSON body")
    }
}
