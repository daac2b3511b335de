//! Garbage collection, on both backend pairs: what goes and what stays, the grace period, and
//! the protocol that keeps it safe beside pushes — with the dangerous interleavings forced by
//! a paused blob store, a collection killed half way, and collections looping while many
//! clients push.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wharf::config::Config;
use wharf::metadata::{ContentStore, now_millis};
use wharf::oci::Digest;
use wharf::registry::Collection;
use wharf::storage::BlobLocation;

use crate::common::{LAYER, OCI_MANIFEST, TestApp, assert_error, header, sha256, uuid_like};
use crate::paused::paused_app;

/// Collections treat everything not referenced as garbage at once.
pub fn no_grace(config: &mut Config) {
    config.gc_grace = std::time::Duration::ZERO;
}

pub async fn collect(app: &TestApp) -> Collection {
    app.state
        .registry
        .collect_garbage(now_millis() + 1, false, &|_| {})
        .await
        .expect("garbage collection")
}

async fn assert_nothing_left(app: &TestApp) {
    let done = collect(app).await;
    assert_eq!((done.links, done.blobs, done.bytes), (0, 0, 0), "{done:?}");
}

/// An image manifest over the given (digest, size) config and layers.
fn manifest(config: (&str, usize), layers: &[(&str, usize)]) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config.0, "size": config.1},
        "layers": layers.iter().map(|(digest, size)| {
            json!({"mediaType": LAYER, "digest": digest, "size": size})
        }).collect::<Vec<_>>(),
    })
}

/// Pushes `blobs` and a manifest of them (the first is the config) as `repo:tag`.
async fn push(app: &TestApp, repo: &str, tag: &str, blobs: &[&[u8]]) -> String {
    let mut described = Vec::new();
    for blob in blobs {
        described.push((app.push_blob(repo, blob).await, blob.len()));
    }
    let layers: Vec<(&str, usize)> = described[1..]
        .iter()
        .map(|(d, s)| (d.as_str(), *s))
        .collect();
    let body = manifest((&described[0].0, described[0].1), &layers);
    let response = app.put_manifest(repo, tag, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED, "push {repo}:{tag}");
    header(&response, "docker-content-digest")
}

/// Pulls the image completely, checking every blob's bytes against its digest.
async fn pull_completely(app: &TestApp, repo: &str, reference: &str) {
    let response = app
        .get(&format!("/v2/{repo}/manifests/{reference}"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "manifest {repo}:{reference}"
    );
    let manifest: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let mut digests = vec![manifest["config"]["digest"].as_str().unwrap().to_string()];
    for layer in manifest["layers"].as_array().unwrap() {
        digests.push(layer["digest"].as_str().unwrap().to_string());
    }
    for digest in digests {
        let response = app
            .get(&format!("/v2/{repo}/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "blob {digest} of {repo}");
        assert_eq!(sha256(&response.bytes().await.unwrap()), digest);
    }
}

async fn delete_manifest(app: &TestApp, repo: &str, digest: &str) {
    let response = app
        .request(Method::DELETE, &format!("/v2/{repo}/manifests/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

async fn head_blob(app: &TestApp, repo: &str, digest: &str) -> StatusCode {
    let response = app
        .request(Method::HEAD, &format!("/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    response.status()
}

#[tokio::test]
async fn bytes_of_deleted_images_go_and_shared_or_referenced_bytes_stay() {
    let app = TestApp::spawn_with(no_grace).await;
    let config = format!("config {}", uuid_like()).into_bytes();
    let other_config = format!("other config {}", uuid_like()).into_bytes();
    let shared = format!("shared layer {}", uuid_like()).into_bytes();
    let own = format!("own layer {}", uuid_like()).into_bytes();
    let first = push(&app, "gc/one", "first", &[&config, &shared]).await;
    let second = push(&app, "gc/one", "second", &[&config, &own]).await;
    // The shared layer is also in another repository, in an image of its own.
    push(&app, "gc/two", "kept", &[&other_config, &shared]).await;
    // Untagged images are images: deleting the tag alone frees nothing.
    let untag = app
        .request(Method::DELETE, "/v2/gc/one/manifests/second")
        .send()
        .await
        .unwrap();
    assert_eq!(untag.status(), StatusCode::ACCEPTED);
    assert_eq!(collect(&app).await.blobs, 0);
    pull_completely(&app, "gc/one", &second).await;

    delete_manifest(&app, "gc/one", &first).await;
    delete_manifest(&app, "gc/one", &second).await;
    let done = collect(&app).await;
    assert_eq!(
        (done.blobs, done.bytes),
        (2, (config.len() + own.len()) as u64),
        "{done:?}"
    );
    assert!(!app.holds_bytes(&sha256(&config)).await);
    assert!(!app.holds_bytes(&sha256(&own)).await);
    assert!(app.holds_bytes(&sha256(&shared)).await);
    // gc/one no longer holds the shared layer; gc/two's image is whole.
    assert_eq!(
        head_blob(&app, "gc/one", &sha256(&shared)).await,
        StatusCode::NOT_FOUND
    );
    pull_completely(&app, "gc/two", "kept").await;
    // Nothing is left to collect, and the registry takes the same content again.
    assert_nothing_left(&app).await;
    push(&app, "gc/one", "again", &[&config, &own]).await;
    pull_completely(&app, "gc/one", "again").await;
}

#[tokio::test]
async fn a_dry_run_reports_what_a_collection_removes_and_removes_nothing() {
    let app = TestApp::spawn_with(no_grace).await;
    let config = format!("config {}", uuid_like()).into_bytes();
    let layer = format!("layer {}", uuid_like()).into_bytes();
    let image = push(&app, "gc/dry", "x", &[&config, &layer]).await;
    let unused = app.push_blob("gc/dry", b"never referenced").await;
    delete_manifest(&app, "gc/dry", &image).await;
    let registry = &app.state.registry;
    let dry = registry
        .collect_garbage(now_millis() + 1, true, &|_| {})
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!((dry.links, dry.blobs), (3, 3), "{dry:?}");
    assert_eq!(head_blob(&app, "gc/dry", &unused).await, StatusCode::OK);
    assert!(app.holds_bytes(&sha256(&layer)).await);
    let done = collect(&app).await;
    assert_eq!(
        (done.links, done.blobs, done.bytes),
        (dry.links, dry.blobs, dry.bytes)
    );
    assert!(!app.holds_bytes(&unused).await);
}

#[tokio::test]
async fn the_grace_period_counts_from_the_upload_the_last_reference_or_a_head() {
    let app = TestApp::spawn().await; // the default grace period: an hour
    let age_everything = "UPDATE repository_blobs SET linked_at = 0; \
                          UPDATE blobs SET created_at = 0";
    let blob = app.push_blob("gc/grace", b"uploaded just now").await;
    assert_eq!(collect(&app).await.blobs, 0);

    // An hour later, a client finds the blob with a HEAD and skips its upload: the manifest
    // that follows within the grace period still finds it.
    app.sql(age_everything).await;
    assert_eq!(head_blob(&app, "gc/grace", &blob).await, StatusCode::OK);
    assert_eq!(collect(&app).await.blobs, 0);
    assert_eq!(head_blob(&app, "gc/grace", &blob).await, StatusCode::OK);

    // Unreferenced for an hour, with no HEAD: collected.
    app.sql(age_everything).await;
    assert_eq!(collect(&app).await.blobs, 1);
    assert_eq!(
        head_blob(&app, "gc/grace", &blob).await,
        StatusCode::NOT_FOUND
    );
    assert!(!app.holds_bytes(&blob).await);

    // Deleting an image an hour after its push starts the grace period of its blobs anew.
    let config = format!("config {}", uuid_like()).into_bytes();
    let image = push(&app, "gc/grace", "old", &[&config]).await;
    app.sql(age_everything).await;
    delete_manifest(&app, "gc/grace", &image).await;
    assert_eq!(collect(&app).await.blobs, 0);
    assert!(app.holds_bytes(&sha256(&config)).await);
}

/// The race the protocol exists for: an upload finds the bytes of its (garbage) blob already
/// stored and skips writing them, a collection removes them, and only then does the upload
/// record its blob. It must store the bytes again rather than link a blob without them.
#[tokio::test]
async fn an_upload_whose_bytes_are_collected_before_it_records_them_writes_them_again() {
    let (app, paused) = paused_app(no_grace).await;
    let data = format!("collected while uploaded {}", uuid_like()).into_bytes();
    let digest = app.push_blob("gc/race", &data).await;
    let linked = app.store().await.linked_blob("gc/race", &digest).await;
    let key = linked.unwrap().unwrap().storage_key;
    let unlink = app
        .request(Method::DELETE, &format!("/v2/gc/race/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(unlink.status(), StatusCode::ACCEPTED);

    paused.committed.arm();
    let upload = tokio::spawn({
        let url = app.url(&format!("/v2/gc/race/blobs/uploads/?digest={digest}"));
        let client = app.client.clone();
        let data = data.clone();
        async move { client.post(url).body(data).send().await.unwrap().status() }
    });
    paused.committed.reached().await;
    // The upload found the bytes stored (or, kept in an object of its own, wrote them); the
    // blob is still garbage, and goes.
    let done = collect(&app).await;
    assert_eq!(done.blobs, 1, "{done:?}");
    let parsed: Digest = digest.parse().unwrap();
    let collected = BlobLocation {
        digest: &parsed,
        key: key.as_deref(),
    };
    assert_eq!(app.blob_store().await.stat(collected).await.unwrap(), None);
    paused.committed.release();
    assert_eq!(upload.await.unwrap(), StatusCode::CREATED);

    assert!(app.holds_bytes(&digest).await);
    let response = app
        .get(&format!("/v2/gc/race/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap(), data);
}

/// A collection that dies after removing a blob's bytes, before its transaction commits, as
/// with `kill -9`: the blob's row stays, unlinked; nothing that is linked lost a byte; an
/// upload of the same content stores it again; the next collection finishes the job.
#[tokio::test]
async fn a_collection_killed_after_removing_bytes_is_finished_by_the_next() {
    let (app, paused) = paused_app(no_grace).await;
    let kept = push(&app, "gc/crash", "kept", &[b"config kept", b"layer kept"]).await;
    let garbage = app.push_blob("gc/crash", b"garbage one").await;
    let reuploaded = app.push_blob("gc/crash", b"garbage two").await;

    paused.deleted.arm();
    let registry_state = app.state.clone();
    let collection = tokio::spawn(async move {
        let registry = &registry_state.registry;
        registry
            .collect_garbage(now_millis() + 1, false, &|_| {})
            .await
    });
    paused.deleted.reached().await;
    collection.abort(); // the collection dies here, its transaction with it
    assert!(collection.await.unwrap_err().is_cancelled());
    paused.deleted.release(); // (nobody is waiting any more)

    let mut bytes_gone = 0;
    for digest in [&garbage, &reuploaded] {
        if !app.holds_bytes(digest).await {
            bytes_gone += 1;
        }
    }
    assert_eq!(
        bytes_gone, 1,
        "the collection was stopped after its first removal"
    );
    pull_completely(&app, "gc/crash", &kept).await;
    // Whichever blob lost its bytes, uploading it again stores them.
    for (digest, data) in [
        (&garbage, &b"garbage one"[..]),
        (&reuploaded, &b"garbage two"[..]),
    ] {
        if !app.holds_bytes(digest).await {
            assert_eq!(&app.push_blob("gc/crash", data).await, digest);
            assert!(app.holds_bytes(digest).await);
            let unlink = app
                .request(Method::DELETE, &format!("/v2/gc/crash/blobs/{digest}"))
                .send()
                .await
                .unwrap();
            assert_eq!(unlink.status(), StatusCode::ACCEPTED);
        }
    }
    let done = collect(&app).await;
    assert_eq!(done.blobs, 2, "{done:?}");
    for digest in [&garbage, &reuploaded] {
        assert!(!app.holds_bytes(digest).await);
    }
    pull_completely(&app, "gc/crash", &kept).await;
    assert_nothing_left(&app).await;
}

/// Many clients push images as docker does (HEAD each blob, upload the missing ones, then the
/// manifest, again when refused) while collections run back to back with no grace period at
/// all. A push may be refused (its fresh blobs can be collected before its manifest arrives)
/// but only with MANIFEST_BLOB_UNKNOWN; every manifest the registry accepted pulls completely
/// afterwards.
#[tokio::test]
async fn collections_racing_pushes_never_accept_a_manifest_without_its_bytes() {
    const PUSHERS: usize = 6;
    const IMAGES: usize = 6;
    const ATTEMPTS: usize = 10;
    let app = Arc::new(TestApp::spawn_with(no_grace).await);
    let stop = Arc::new(AtomicBool::new(false));
    let removed = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let collector = tokio::spawn({
        let (app, stop, removed) = (app.clone(), stop.clone(), removed.clone());
        async move {
            let mut runs = 0;
            while !stop.load(Ordering::SeqCst) {
                removed.fetch_add(collect(&app).await.blobs, Ordering::SeqCst);
                runs += 1;
                // A breath between collections, so that pushes get somewhere.
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            runs
        }
    });
    let base = format!("base layer {}", uuid_like()).into_bytes();
    let mut pushers = Vec::new();
    for pusher in 0..PUSHERS {
        let (app, base, refused) = (app.clone(), base.clone(), refused.clone());
        pushers.push(tokio::spawn(async move {
            let repo = format!("gc/race{}", pusher % 2);
            let mut accepted = Vec::new();
            for image in 0..IMAGES {
                let config = format!("config {pusher} {image} {}", uuid_like()).into_bytes();
                let own = format!("layer {pusher} {image} {}", uuid_like()).into_bytes();
                let tag = format!("p{pusher}-{image}");
                // As a client retries a refused push: the blobs it finds missing again are
                // uploaded again, often while a collection is removing them.
                for _attempt in 0..ATTEMPTS {
                    let mut described = Vec::new();
                    for blob in [&config, &base, &own] {
                        let digest = sha256(blob);
                        if head_blob(&app, &repo, &digest).await != StatusCode::OK {
                            app.push_blob(&repo, blob).await;
                        }
                        described.push((digest, blob.len()));
                    }
                    let layers = [
                        (described[1].0.as_str(), described[1].1),
                        (described[2].0.as_str(), described[2].1),
                    ];
                    let body = manifest((&described[0].0, described[0].1), &layers);
                    let response = app.put_manifest(&repo, &tag, &body).await;
                    if response.status() == StatusCode::CREATED {
                        accepted.push((repo.clone(), tag));
                        break;
                    }
                    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN").await;
                    refused.fetch_add(1, Ordering::SeqCst);
                }
            }
            accepted
        }));
    }
    let mut accepted = Vec::new();
    for pusher in pushers {
        accepted.extend(pusher.await.unwrap());
    }
    stop.store(true, Ordering::SeqCst);
    let runs = collector.await.unwrap();
    assert!(runs > 1, "collections ran {runs} times");
    assert!(
        accepted.len() >= PUSHERS * IMAGES / 4,
        "{} of {} images got through",
        accepted.len(),
        PUSHERS * IMAGES
    );
    // One more collection after the pushes: what was accepted stays whole.
    collect(&app).await;
    for (repo, tag) in &accepted {
        pull_completely(&app, repo, tag).await;
    }
    eprintln!(
        "{} of {} images pushed ({} pushes refused first) beside {runs} collections that \
         removed {} blobs",
        accepted.len(),
        PUSHERS * IMAGES,
        refused.load(Ordering::SeqCst),
        removed.load(Ordering::SeqCst)
    );
}

/// A server applies lifecycle policies and collects garbage on its own, each every interval:
/// an expired image's bytes go without anyone asking.
#[tokio::test]
async fn a_server_expires_and_collects_on_its_own() {
    let app = TestApp::spawn_with(|config| {
        // Long enough that a collection between pushing a blob and pushing the manifest that
        // references it leaves the blob alone, however slow the machine.
        config.gc_grace = std::time::Duration::from_secs(3);
        config.lifecycle_interval = std::time::Duration::from_secs(1);
        config.gc_interval = std::time::Duration::from_secs(1);
    })
    .await;
    let old_layer = format!("old layer {}", uuid_like()).into_bytes();
    let new_layer = format!("new layer {}", uuid_like()).into_bytes();
    push(&app, "gc/auto", "old", &[b"config auto", &old_layer]).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    push(&app, "gc/auto", "new", &[b"config auto", &new_layer]).await;
    let policy = r#"{"rules":[{"rulePriority":1,"description":"keep only the newest image",
        "selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},
        "action":{"type":"expire"}}]}"#;
    let repo = "gc/auto".parse().unwrap();
    app.state
        .registry
        .put_lifecycle_policy(&repo, policy)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while app.holds_bytes(&sha256(&old_layer)).await {
        assert!(
            std::time::Instant::now() < deadline,
            "the old image's layer is still stored after 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    pull_completely(&app, "gc/auto", "new").await;
    let old = app
        .get("/v2/gc/auto/manifests/old")
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::NOT_FOUND);
}
