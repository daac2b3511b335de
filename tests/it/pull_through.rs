//! Pull-through caches, with real Wharf servers as upstreams (one with auth on and the token
//! flow) and, where the test needs to hold the upstream's bytes back or count its requests, a
//! small upstream of the test's own.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::{IntoResponse, Response as AxumResponse};
use bytes::Bytes;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Notify;
use wharf::admin::NewRemote;
use wharf::metadata::{PullThroughStore, RemoteStore};
use wharf::registry::Registry;
use wharf::remote::Credentials;
use wharf::secrets::SecretsKey;

use crate::clients::{host, skopeo, skopeo_available};
use crate::common::{
    ADMIN_PASSWORD, LAYER, OCI_INDEX, OCI_MANIFEST, TestApp, assert_error, auth_on, basic,
    closed_port, header, sha256,
};

/// Makes `<prefix>/…` of `cache` a cache of `upstream`, logging in as the admin if `login`.
/// A registry with auth on, whose test client logs in as the admin.
async fn secure_upstream() -> TestApp {
    let mut upstream = TestApp::spawn_with(auth_on).await;
    let mut headers = reqwest::header::HeaderMap::new();
    let login = basic("admin", ADMIN_PASSWORD).parse().unwrap();
    headers.insert("authorization", login);
    upstream.client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    upstream
}

async fn add_rule(cache: &TestApp, prefix: &str, upstream: &str, login: Option<&str>) {
    let credentials = login.map(|password| Credentials {
        username: "admin".into(),
        password: password.into(),
    });
    let arn = credentials
        .as_ref()
        .map(|_| wharf::registry::pull_through_credential_arn("123456789012", "us-east-1", prefix));
    cache
        .state
        .registry
        .create_pull_through_rule(prefix, upstream, arn.as_deref(), credentials)
        .await
        .unwrap();
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    let accept = format!("{OCI_INDEX}, {OCI_MANIFEST}");
    let request = app.request(Method::GET, path).header("accept", accept);
    request.send().await.unwrap()
}

/// The digest `app` serves for `repo:reference`.
async fn manifest_digest(app: &TestApp, repo: &str, reference: &str) -> String {
    let response = get(app, &format!("/v2/{repo}/manifests/{reference}")).await;
    assert_eq!(response.status(), StatusCode::OK, "{repo}:{reference}");
    header(&response, "docker-content-digest")
}

async fn blob(app: &TestApp, repo: &str, digest: &str) -> Vec<u8> {
    let response = get(app, &format!("/v2/{repo}/blobs/{digest}")).await;
    assert_eq!(response.status(), StatusCode::OK, "{repo}@{digest}");
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn pulls_fill_the_cache_and_cached_content_outlives_the_upstream() {
    let mut upstream = secure_upstream().await;
    let cache = TestApp::spawn().await;
    add_rule(&cache, "up", &upstream.url(""), Some(ADMIN_PASSWORD)).await;
    add_rule(&cache, "wrong", &upstream.url(""), Some("not the password")).await;
    let (manifest, digest, layer) = upstream.push_image("team/app", "v1").await;
    let (_, later, _) = upstream.push_image("team/app", "v2").await;
    let layer_digest = sha256(&layer);
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();

    // By tag: fetched, stored under the tag, in a repository made for it.
    assert_eq!(manifest_digest(&cache, "up/team/app", "v1").await, digest);
    let fetched = crate::common::audited(&cache, "PullThroughCacheFetch").await;
    assert_eq!(fetched.len(), 1, "{fetched:#?}");
    assert_eq!(fetched[0].repository.as_deref(), Some("up/team/app"));
    assert_eq!(fetched[0].user_type, "AWSService");
    let repository = "up/team/app".parse().unwrap();
    assert!(cache.state.registry.repository(&repository).await.is_ok());
    let tags = get(&cache, "/v2/up/team/app/tags/list").await;
    assert_eq!(tags.json::<Value>().await.unwrap()["tags"], json!(["v1"]));
    // Its layer, and by digest: the same bytes.
    assert_eq!(blob(&cache, "up/team/app", &layer_digest).await, layer);
    assert_eq!(manifest_digest(&cache, "up/team/app", &later).await, later);

    // What the upstream does not have is not found here either.
    let missing = get(&cache, "/v2/up/team/app/manifests/v404").await;
    assert_error(missing, 404, "MANIFEST_UNKNOWN").await;
    let absent = sha256(b"nowhere");
    let missing = get(&cache, &format!("/v2/up/team/app/blobs/{absent}")).await;
    assert_error(missing, 404, "BLOB_UNKNOWN").await;
    let missing = get(&cache, "/v2/up/team/nothing/manifests/v1").await;
    assert_error(missing, 404, "MANIFEST_UNKNOWN").await;
    // Outside every prefix nothing goes upstream.
    let outside = get(&cache, "/v2/team/app/manifests/v1").await;
    assert_eq!(outside.status(), StatusCode::NOT_FOUND);
    // Credentials the upstream refuses: a bad gateway, not a missing image.
    let refused = get(&cache, "/v2/wrong/team/app/manifests/v1").await;
    assert_error(refused, 502, "UNAVAILABLE").await;

    // The upstream goes away: what was cached is served, what was not is unavailable.
    upstream.stop().await;
    assert_eq!(manifest_digest(&cache, "up/team/app", "v1").await, digest);
    assert_eq!(blob(&cache, "up/team/app", &layer_digest).await, layer);
    let uncached = get(&cache, "/v2/up/team/app/manifests/v2").await;
    let body = assert_error(uncached, 503, "UNAVAILABLE").await;
    assert!(!body.to_string().contains(ADMIN_PASSWORD));
    let uncached = get(&cache, &format!("/v2/up/team/app/blobs/{config_digest}")).await;
    assert_error(uncached, 503, "UNAVAILABLE").await;

    // A rule deleted: what it cached stays, nothing more is fetched.
    cache
        .state
        .registry
        .delete_pull_through_rule("up")
        .await
        .unwrap();
    assert_eq!(manifest_digest(&cache, "up/team/app", "v1").await, digest);
    let gone = get(&cache, "/v2/up/team/app/manifests/v2").await;
    assert_error(gone, 404, "MANIFEST_UNKNOWN").await;
}

#[tokio::test]
async fn a_cached_tag_follows_the_upstream_once_its_time_to_live_has_passed() {
    let ttl = Duration::from_secs(1);
    let mut upstream = TestApp::spawn().await;
    let cache = TestApp::spawn_with(|config| config.pull_through_ttl = ttl).await;
    add_rule(&cache, "up", &upstream.url(""), None).await;
    let (_, first, _) = upstream.push_image("app", "latest").await;
    assert_eq!(manifest_digest(&cache, "up/app", "latest").await, first);

    // Moved upstream: still the cached image until the time to live has passed.
    let (_, second, _) = upstream.push_image("app", "latest").await;
    assert_eq!(manifest_digest(&cache, "up/app", "latest").await, first);
    tokio::time::sleep(ttl).await;
    assert_eq!(manifest_digest(&cache, "up/app", "latest").await, second);
    // The first image stays pullable by digest.
    assert_eq!(manifest_digest(&cache, "up/app", &first).await, first);

    // Due again with the upstream down: the cached image is served, and at once.
    upstream.stop().await;
    tokio::time::sleep(ttl).await;
    let started = Instant::now();
    assert_eq!(manifest_digest(&cache, "up/app", "latest").await, second);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // A tag pushed into the cached repository is the pusher's: never checked again.
    let (_, pushed, _) = cache.push_image("up/app", "latest").await;
    tokio::time::sleep(ttl).await;
    assert_eq!(manifest_digest(&cache, "up/app", "latest").await, pushed);
}

#[tokio::test]
async fn an_upstream_that_is_down_answers_unavailable_at_once() {
    let cache = TestApp::spawn().await;
    add_rule(&cache, "down", &closed_port(), None).await;
    let started = Instant::now();
    let response = get(&cache, "/v2/down/app/manifests/v1").await;
    assert_error(response, 503, "UNAVAILABLE").await;
    let digest = sha256(b"layer");
    let response = get(&cache, &format!("/v2/down/app/blobs/{digest}")).await;
    assert_error(response, 503, "UNAVAILABLE").await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// An upstream of the test's own for one image `app:v1`, whose layer it sends in two
/// halves: the second only once released. It counts the layer's GETs.
#[derive(Clone)]
struct Stub {
    layer: Bytes,
    manifest: Bytes,
    /// A blob whose bytes are not those its digest names.
    forged: String,
    release: Arc<Notify>,
    layer_gets: Arc<AtomicUsize>,
}

const HALF_CHUNKS: usize = 8;

impl Stub {
    fn new() -> Stub {
        let layer: Vec<u8> = (0..1_048_576u32).map(|i| (i * 31 % 251) as u8).collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256(b"{}"), "size": 2},
            "layers": [{"mediaType": LAYER, "digest": sha256(&layer), "size": layer.len()}],
        });
        Stub {
            layer: layer.into(),
            manifest: serde_json::to_vec(&manifest).unwrap().into(),
            forged: sha256(b"what the digest names"),
            release: Arc::new(Notify::new()),
            layer_gets: Arc::default(),
        }
    }

    async fn serve(self) -> String {
        let app = axum::Router::new()
            .route("/v2/", axum::routing::get(|| async { "{}" }))
            .route(
                "/v2/app/manifests/{reference}",
                axum::routing::get(stub_manifest),
            )
            .route("/v2/app/blobs/{digest}", axum::routing::get(stub_blob))
            .with_state(self);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }
}

async fn stub_manifest(State(stub): State<Stub>, Path(reference): Path<String>) -> AxumResponse {
    if reference == "broken" {
        let broken = br#"{"schemaVersion": 1}"#;
        let headers = [
            ("content-type", OCI_MANIFEST.to_string()),
            ("docker-content-digest", sha256(broken)),
        ];
        return (headers, broken.to_vec()).into_response();
    }
    if reference != "v1" && reference != sha256(&stub.manifest) {
        return AxumStatus::NOT_FOUND.into_response();
    }
    let mut headers = HeaderMap::new();
    headers.insert("content-type", OCI_MANIFEST.parse().unwrap());
    headers.insert(
        "docker-content-digest",
        sha256(&stub.manifest).parse().unwrap(),
    );
    (headers, stub.manifest.clone()).into_response()
}

async fn stub_blob(State(stub): State<Stub>, Path(digest): Path<String>) -> AxumResponse {
    if digest == stub.forged {
        return (AxumStatus::OK, b"something else entirely".to_vec()).into_response();
    }
    if digest != sha256(&stub.layer) {
        return AxumStatus::NOT_FOUND.into_response();
    }
    stub.layer_gets.fetch_add(1, Ordering::SeqCst);
    let half = stub.layer.len() / 2;
    let chunk = half / HALF_CHUNKS;
    let first: Vec<std::io::Result<Bytes>> = (0..HALF_CHUNKS)
        .map(|i| Ok(stub.layer.slice(i * chunk..(i + 1) * chunk)))
        .collect();
    let (release, rest) = (stub.release.clone(), stub.layer.slice(half..));
    let second = futures::stream::once(async move {
        release.notified().await;
        Ok::<_, std::io::Error>(rest)
    });
    let body = Body::from_stream(futures::stream::iter(first).chain(second));
    let length = stub.layer.len().to_string();
    ([("content-length", length)], body).into_response()
}

#[tokio::test]
async fn concurrent_cold_pulls_fetch_a_layer_once_and_the_first_streams_as_it_arrives() {
    let stub = Stub::new();
    let cache = TestApp::spawn().await;
    add_rule(&cache, "stub", &stub.clone().serve().await, None).await;
    let digest = sha256(&stub.layer);
    assert_eq!(
        manifest_digest(&cache, "stub/app", "v1").await,
        sha256(&stub.manifest)
    );

    let path = format!("/v2/stub/app/blobs/{digest}");
    let first = get(&cache, &path).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        header(&first, "content-length"),
        stub.layer.len().to_string()
    );
    // Bytes arrive while the upstream still holds back the second half.
    let mut first_body = first.bytes_stream();
    let opening = first_body.next().await.unwrap().unwrap();
    assert!(!opening.is_empty());
    assert_eq!(opening[..], stub.layer[..opening.len()]);

    let others: Vec<_> = (0..5)
        .map(|_| {
            let request = cache.request(Method::GET, &path);
            tokio::spawn(async move { request.send().await.unwrap().bytes().await.unwrap() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        others.iter().all(|other| !other.is_finished()),
        "they wait for the fetch"
    );
    stub.release.notify_one();

    let mut received = opening.to_vec();
    while let Some(chunk) = first_body.next().await {
        received.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(received, stub.layer);
    for other in others {
        assert_eq!(other.await.unwrap(), stub.layer);
    }
    assert_eq!(stub.layer_gets.load(Ordering::SeqCst), 1);
    // Stored: served from here from now on, ranges too.
    let range = cache
        .request(Method::GET, &path)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(range.bytes().await.unwrap()[..], stub.layer[10..20]);
    assert_eq!(stub.layer_gets.load(Ordering::SeqCst), 1);
    assert!(cache.holds_bytes(&digest).await);
}

#[tokio::test]
async fn a_manifest_the_upstream_serves_broken_is_a_bad_gateway() {
    let stub = Stub::new();
    let cache = TestApp::spawn().await;
    add_rule(&cache, "stub", &stub.clone().serve().await, None).await;
    let response = get(&cache, "/v2/stub/app/manifests/broken").await;
    assert_error(response, 502, "UNAVAILABLE").await;
}

#[tokio::test]
async fn a_layer_whose_bytes_do_not_match_its_digest_is_neither_served_whole_nor_kept() {
    let stub = Stub::new();
    let cache = TestApp::spawn().await;
    add_rule(&cache, "stub", &stub.clone().serve().await, None).await;
    let path = format!("/v2/stub/app/blobs/{}", stub.forged);
    let response = get(&cache, &path).await;
    let received = match response.status() {
        StatusCode::OK => response.bytes().await,
        other => panic!("{other}"),
    };
    assert!(received.is_err(), "the body is cut short: {received:?}");
    let head = cache.request(Method::HEAD, &path).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK, "the upstream still has it");
    let repository = "stub/app".parse().unwrap();
    let digest = stub.forged.parse().unwrap();
    let linked = cache
        .state
        .registry
        .blob_redirect(&repository, &digest)
        .await;
    assert!(linked.is_err(), "nothing was linked");
}

#[tokio::test]
async fn skopeo_copies_a_multi_arch_index_out_of_the_cache() {
    if !skopeo_available() {
        return;
    }
    let upstream = secure_upstream().await;
    let cache = TestApp::spawn().await;
    add_rule(&cache, "mirror", &upstream.url(""), Some(ADMIN_PASSWORD)).await;
    let (amd_manifest, amd, amd_layer) = upstream.push_image("team/multi", "amd").await;
    let (arm_manifest, arm, arm_layer) = upstream.push_image("team/multi", "arm").await;
    let size = |manifest: &Value| serde_json::to_vec(manifest).unwrap().len();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd, "size": size(&amd_manifest),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm, "size": size(&arm_manifest),
             "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    });
    let pushed = upstream.put_manifest("team/multi", "latest", &index).await;
    assert_eq!(pushed.status(), StatusCode::CREATED);
    let index_digest = header(&pushed, "docker-content-digest");

    let work = tempfile::tempdir().unwrap();
    let source = format!("docker://{}/mirror/team/multi:latest", host(&cache));
    let target = format!("oci:{}:latest", work.path().display());
    tokio::task::spawn_blocking(move || {
        skopeo(&[
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-oci-accept-uncompressed-layers",
            "--src-tls-verify=false",
            &source,
            &target,
        ]);
    })
    .await
    .unwrap();
    let stored = |digest: &str| {
        let name = digest.trim_start_matches("sha256:");
        std::fs::read(work.path().join("blobs/sha256").join(name)).unwrap()
    };
    assert_eq!(sha256(&stored(&index_digest)), index_digest);
    assert_eq!(stored(&sha256(&amd_layer)), amd_layer);
    assert_eq!(stored(&sha256(&arm_layer)), arm_layer);
    // Every platform is now in the cache.
    assert_eq!(
        manifest_digest(&cache, "mirror/team/multi", &arm).await,
        arm
    );
    assert_eq!(
        manifest_digest(&cache, "mirror/team/multi", "latest").await,
        index_digest
    );
}

#[tokio::test]
async fn passwords_kept_for_other_registries_are_sealed_with_the_secrets_key() {
    let upstream = secure_upstream().await;
    let key = Arc::new(SecretsKey::from_bytes(&[9; 32]).unwrap());
    let sealing = key.clone();
    let cache = TestApp::spawn_with(move |config| config.secrets_key = Some(sealing)).await;
    add_rule(&cache, "up", &upstream.url(""), Some(ADMIN_PASSWORD)).await;
    let remote = NewRemote {
        registry_id: "111111111111".into(),
        region: "eu-west-1".into(),
        url: upstream.url(""),
        credentials: Some(Credentials {
            username: "admin".into(),
            password: ADMIN_PASSWORD.into(),
        }),
        check: false,
    };
    let store = cache.store().await;
    wharf::admin::add_remote(&*store, Some(&key), remote)
        .await
        .unwrap();

    // Stored sealed, bound to what they are for.
    let arn = wharf::registry::pull_through_credential_arn("123456789012", "us-east-1", "up");
    let credential = store.upstream_credential(&arn).await.unwrap().unwrap();
    let kept = store.get_remote("111111111111", "eu-west-1").await.unwrap();
    let kept = kept.unwrap().password.unwrap();
    for stored in [&credential.password, &kept] {
        assert!(stored.starts_with("sealed:v1:"), "{stored}");
        assert!(!stored.contains(ADMIN_PASSWORD));
    }

    // Opened to log in: a pull through the cache, a copy to the remote.
    let (_, digest, _) = upstream.push_image("team/app", "v1").await;
    assert_eq!(manifest_digest(&cache, "up/team/app", "v1").await, digest);
    let rules = json!({"rules": [{"destinations": [{"registryId": "111111111111", "region": "eu-west-1"}],
                       "repositoryFilters": [{"filter": "mine", "filterType": "PREFIX_MATCH"}]}]});
    let rules = serde_json::from_value(rules).unwrap();
    let registry = &cache.state.registry;
    registry
        .put_replication_configuration(&rules)
        .await
        .unwrap();
    let (_, pushed, _) = cache.push_image("mine/app", "v1").await;
    assert_eq!(registry.replicate_due().await.unwrap(), (1, 0));
    assert_eq!(manifest_digest(&upstream, "mine/app", "v1").await, pushed);

    // A node without the key cannot use them, and says why.
    let settings = wharf::registry::Settings {
        secrets_key: None,
        ..registry.settings().clone()
    };
    let keyless = Registry::new(cache.blob_store().await, store, settings);
    let reference = "v2".parse().unwrap();
    upstream.push_image("team/app", "v2").await;
    let repository = "up/team/app".parse().unwrap();
    let refused = keyless
        .get_manifest(&repository, &reference, &[], true)
        .await;
    let refused = refused.err().unwrap().to_string();
    assert!(refused.contains("--secrets-key-file"), "{refused}");
}

#[tokio::test]
async fn only_callers_allowed_to_pull_a_cached_repository_make_it_fetch() {
    let upstream = TestApp::spawn().await;
    let cache = TestApp::spawn_with(auth_on).await;
    add_rule(&cache, "up", &upstream.url(""), None).await;
    let (_, digest, _) = upstream.push_image("team/app", "v1").await;
    upstream.push_image("other/app", "v1").await;
    let store = cache.store().await;
    let password = wharf::admin::create_user(&*store, "reader", None)
        .await
        .unwrap();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],
        "Resource":"arn:aws:ecr:*:*:repository/up/team/*"}]}"#;
    let reader = wharf::admin::PolicyTarget::User("reader".into());
    wharf::admin::set_policy(&*store, &reader, Some(policy))
        .await
        .unwrap();
    let pull = |repo: &str, login: Option<String>| {
        let mut request = cache.request(Method::GET, &format!("/v2/{repo}/manifests/v1"));
        request = request.header("accept", OCI_MANIFEST);
        if let Some(login) = login {
            request = request.header("authorization", login);
        }
        request.send()
    };
    let login = || Some(basic("reader", &password));

    let allowed = pull("up/team/app", login()).await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(header(&allowed, "docker-content-digest"), digest);
    let denied = pull("up/other/app", login()).await.unwrap();
    assert_error(denied, 403, "DENIED").await;
    let anonymous = pull("up/other/app", None).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // Refused before anything was fetched: no repository was made for it.
    let other = "up/other/app".parse().unwrap();
    assert!(cache.state.registry.repository(&other).await.is_err());
}
