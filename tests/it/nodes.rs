//! Several Wharf processes on one Postgres database and one S3 bucket, as behind a load
//! balancer: uploads move between nodes, concurrent pushes stay consistent, and a node killed
//! mid-upload loses nothing that was acknowledged.

use std::time::Duration;

use bytes::Bytes;
use reqwest::{Client, Method, StatusCode};

use crate::common::{OCI_EMPTY, OCI_MANIFEST, ProductionBackends, header, sha256};
use crate::process::ServerProcess;

/// Settings shared by every node of one cluster.
struct Cluster {
    env: Vec<(&'static str, String)>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn new(backends: &ProductionBackends) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let s3 = backends.s3();
        let env = vec![
            ("WHARF_LISTEN", "127.0.0.1:0".to_string()),
            ("WHARF_DATA_DIR", dir.path().display().to_string()),
            ("WHARF_DATABASE_URL", backends.database().await),
            ("WHARF_STORAGE", "s3".into()),
            ("WHARF_S3_ENDPOINT", s3.endpoint.unwrap_or_default()),
            ("WHARF_S3_REGION", s3.region),
            ("WHARF_S3_BUCKET", s3.bucket),
            ("WHARF_S3_PREFIX", s3.prefix),
            ("WHARF_S3_PATH_STYLE", "true".into()),
            ("WHARF_LOG", "warn,wharf=info".into()),
        ];
        Cluster { env, _dir: dir }
    }

    fn start(&self) -> ServerProcess {
        ServerProcess::start(&self.env)
    }
}

async fn patch(client: &Client, url: &str, start: usize, data: &[u8]) -> reqwest::Response {
    client
        .request(Method::PATCH, url)
        .header(
            "content-range",
            format!("{start}-{}", start + data.len() - 1),
        )
        .body(data.to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_upload_moves_between_nodes_and_content_is_served_by_any() {
    let Some(backends) = ProductionBackends::from_env() else {
        return;
    };
    let cluster = Cluster::new(&backends).await;
    let (a, b) = (cluster.start(), cluster.start());
    let client = Client::new();
    let data: Vec<u8> = (0..7 * 1024 * 1024 + 11).map(|i| (i % 253) as u8).collect();
    let digest = sha256(&data);

    let started = client
        .post(a.url("/v2/multi/node/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = header(&started, "location");
    let (first, rest) = data.split_at(3 * 1024 * 1024 + 1);
    assert_eq!(
        patch(&client, &a.url(&location), 0, first).await.status(),
        StatusCode::ACCEPTED
    );
    let on_b = patch(&client, &b.url(&location), first.len(), rest).await;
    assert_eq!(on_b.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&on_b, "range"), format!("0-{}", data.len() - 1));
    let done = client
        .put(a.url(&format!("{location}?digest={digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::CREATED);

    let config = b"{}";
    let config_digest = sha256(config);
    let posted = client
        .post(b.url(&format!(
            "/v2/multi/node/blobs/uploads/?digest={config_digest}"
        )))
        .body(config.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::CREATED);
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_EMPTY, "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": digest, "size": data.len()}]});
    let pushed = client
        .put(a.url("/v2/multi/node/manifests/v1"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), StatusCode::CREATED);

    let pulled = client
        .get(b.url(&format!("/v2/multi/node/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.bytes().await.unwrap(), data);
    let manifest_from_b = client
        .get(b.url("/v2/multi/node/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&manifest_from_b, "docker-content-digest"),
        header(&pushed, "docker-content-digest")
    );
}

#[tokio::test]
async fn concurrent_pushes_through_two_nodes_stay_consistent() {
    let Some(backends) = ProductionBackends::from_env() else {
        return;
    };
    let cluster = Cluster::new(&backends).await;
    let nodes = [cluster.start(), cluster.start()];
    let client = Client::new();
    let blob = Bytes::from(vec![42u8; 6 * 1024 * 1024]);
    let digest = sha256(&blob);

    // The same blob, eight times at once, half through each node.
    let pushes = (0..8).map(|i| {
        let url = nodes[i % 2].url(&format!("/v2/race/blobs/uploads/?digest={digest}"));
        let request = client.post(url).body(blob.clone());
        async move { request.send().await.unwrap().status() }
    });
    for status in futures::future::join_all(pushes).await {
        assert_eq!(status, StatusCode::CREATED);
    }
    for node in &nodes {
        let head = client
            .head(node.url(&format!("/v2/race/blobs/{digest}")))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&head, "content-length"), blob.len().to_string());
    }

    // Different manifests to one tag at once: every node agrees on one winner.
    let config_digest = sha256(b"{}");
    client
        .post(nodes[0].url(&format!("/v2/race/blobs/uploads/?digest={config_digest}")))
        .body("{}")
        .send()
        .await
        .unwrap();
    let manifests: Vec<String> = (0..6)
        .map(|i| {
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_EMPTY, "digest": config_digest, "size": 2},
                "layers": [], "annotations": {"n": i.to_string()}})
            .to_string()
        })
        .collect();
    let tag_pushes = manifests.iter().enumerate().map(|(i, manifest)| {
        let request = client
            .put(nodes[i % 2].url("/v2/race/manifests/latest"))
            .header("content-type", OCI_MANIFEST)
            .body(manifest.clone());
        async move { request.send().await.unwrap().status() }
    });
    for status in futures::future::join_all(tag_pushes).await {
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    for node in &nodes {
        let got = client
            .get(node.url("/v2/race/manifests/latest"))
            .send()
            .await
            .unwrap();
        let digest = header(&got, "docker-content-digest");
        assert_eq!(digest, sha256(&got.bytes().await.unwrap()));
        seen.push(digest);
    }
    assert_eq!(seen[0], seen[1]);
    assert!(manifests.iter().any(|m| sha256(m.as_bytes()) == seen[0]));
}

#[tokio::test]
async fn a_node_killed_mid_upload_loses_only_the_unacknowledged_chunk() {
    let Some(backends) = ProductionBackends::from_env() else {
        return;
    };
    let cluster = Cluster::new(&backends).await;
    let mut node = cluster.start();
    let client = Client::new();
    let data: Vec<u8> = (0..2 * 1024 * 1024).map(|i| (i % 241) as u8).collect();
    let digest = sha256(&data);
    let (acknowledged, rest) = data.split_at(1024 * 1024);

    let started = client
        .post(node.url("/v2/crash/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = header(&started, "location");
    assert_eq!(
        patch(&client, &node.url(&location), 0, acknowledged)
            .await
            .status(),
        StatusCode::ACCEPTED
    );

    // A chunk that is half sent when the node dies.
    let half: Vec<std::io::Result<Bytes>> = vec![Ok(Bytes::copy_from_slice(&rest[..512 * 1024]))];
    let stalled =
        futures::StreamExt::chain(futures::stream::iter(half), futures::stream::pending());
    let in_flight = tokio::spawn(
        client
            .request(Method::PATCH, node.url(&location))
            .body(reqwest::Body::wrap_stream(stalled))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    node.kill();
    assert!(
        in_flight.await.unwrap().is_err(),
        "the interrupted chunk cannot succeed"
    );

    let node = cluster.start();
    let status = client.get(node.url(&location)).send().await.unwrap();
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header(&status, "range"),
        format!("0-{}", acknowledged.len() - 1)
    );
    let partial = sha256(&data[..acknowledged.len() + 512 * 1024]);
    for never_visible in [&partial, &digest] {
        let head = client
            .head(node.url(&format!("/v2/crash/blobs/{never_visible}")))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::NOT_FOUND);
    }

    assert_eq!(
        patch(&client, &node.url(&location), acknowledged.len(), rest)
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let done = client
        .put(node.url(&format!("{location}?digest={digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::CREATED);
    let pulled = client
        .get(node.url(&format!("/v2/crash/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.bytes().await.unwrap(), data);
}
