//! Storage reconciliation (`wharf storage check`), on both backend pairs: orphans, missing
//! blobs and stale staging areas injected behind the registry's back are found, and repaired
//! only as far as is safe.

use bytes::Bytes;
use reqwest::StatusCode;
use wharf::oci::Digest;
use wharf::registry::StorageReport;
use wharf::storage::BlobLocation;

use crate::common::{TestApp, sha256, stored_under_digest, uuid_like};
use crate::gc::no_grace;
use crate::paused::paused_app;

async fn check(app: &TestApp, repair: bool) -> StorageReport {
    app.state
        .registry
        .check_storage(repair, &|_| {})
        .await
        .expect("storage check")
}

/// Writes `data` straight into storage as a blob under its digest that no row records, as a
/// crash between writing bytes and recording them leaves it. (Staged in two parts: one alone
/// may be kept in its own object.)
async fn inject_orphan(app: &TestApp, data: &[u8]) -> String {
    let store = app.blob_store().await;
    let upload = uuid::Uuid::new_v4().to_string();
    let (head, tail) = data.split_at(data.len() / 2);
    let mut parts = Vec::new();
    for piece in [head, tail] {
        let body = futures::stream::iter([Ok(Bytes::copy_from_slice(piece))]);
        let part = store.write_part(&upload, &parts, Box::pin(body)).await;
        parts.push(part.unwrap());
    }
    let digest: Digest = sha256(data).parse().unwrap();
    let kept = store.commit(&upload, &parts, &digest).await.unwrap();
    assert_eq!(kept, None);
    store.delete_upload(&upload, None).await.unwrap();
    digest.to_string()
}

/// Removes the bytes of `digest`, which `repository` links, wherever its row says they are.
async fn lose_bytes(app: &TestApp, repository: &str, digest: &str) {
    use wharf::metadata::ContentStore;
    let linked = app.store().await.linked_blob(repository, digest).await;
    let key = linked.unwrap().expect("the blob is linked").storage_key;
    let parsed: Digest = digest.parse().unwrap();
    let location = BlobLocation {
        digest: &parsed,
        key: key.as_deref(),
    };
    app.blob_store().await.delete(location).await.unwrap();
}

/// Stages a part for an upload no row records.
async fn inject_staging(app: &TestApp) -> String {
    let store = app.blob_store().await;
    let upload = uuid::Uuid::new_v4().to_string();
    let body = futures::stream::iter([Ok(Bytes::from_static(b"staged, then forgotten"))]);
    store
        .write_part(&upload, &[], Box::pin(body))
        .await
        .unwrap();
    upload
}

#[tokio::test]
async fn injected_orphans_missing_blobs_and_stale_staging_are_found() {
    let app = TestApp::spawn_with(no_grace).await;
    let (_, image, layer) = app.push_image("check/one", "v1").await;
    let other = format!("blob of another repository {}", uuid_like()).into_bytes();
    app.push_blob("check/two", &other).await;
    let orphan_data = format!("orphan {}", uuid_like()).into_bytes();
    let orphan = inject_orphan(&app, &orphan_data).await;
    let lost = app.push_blob("check/two", b"bytes that went missing").await;
    lose_bytes(&app, "check/two", &lost).await;
    let staging = inject_staging(&app).await;

    let report = check(&app, false).await;
    let orphans: Vec<(&str, u64, bool)> = report
        .orphans
        .iter()
        .map(|o| (o.digest.as_str(), o.size, o.removed))
        .collect();
    assert_eq!(
        orphans,
        [(orphan.as_str(), orphan_data.len() as u64, false)]
    );
    assert_eq!(report.missing.len(), 1, "{report:?}");
    assert_eq!(
        (report.missing[0].digest.as_str(), report.missing[0].links),
        (lost.as_str(), 1)
    );
    assert!(report.size_mismatches.is_empty());
    let staged: Vec<(&str, bool)> = report
        .stale_staging
        .iter()
        .map(|s| (s.upload.as_str(), s.removed))
        .collect();
    assert_eq!(staged, [(staging.as_str(), false)]);
    // Everything the registry stored: a config and a layer, the other blob, and the orphan.
    assert_eq!((report.recorded_blobs, report.stored_blobs), (4, 4));
    let one = report
        .repositories
        .iter()
        .find(|r| r.repository == "check/one")
        .expect("check/one counted");
    let config_size = br#"{"architecture":"amd64","os":"linux"}"#.len();
    assert_eq!(
        (one.blobs, one.bytes),
        (2, (layer.len() + config_size) as u64)
    );

    // Repair removes the orphan and the staging area, never the record of a missing blob.
    let repaired = check(&app, true).await;
    assert!(repaired.orphans.iter().all(|o| o.removed), "{repaired:?}");
    assert!(repaired.stale_staging.iter().all(|s| s.removed));
    assert!(!app.holds_bytes(&orphan).await);
    assert_eq!(repaired.missing.len(), 1);
    let after = check(&app, false).await;
    assert!(after.orphans.is_empty() && after.stale_staging.is_empty());
    assert_eq!(after.missing.len(), 1);
    // The image is untouched.
    let response = app
        .get(&format!("/v2/check/one/manifests/{image}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn repair_leaves_orphans_younger_than_the_grace_period() {
    let app = TestApp::spawn().await; // the default grace period: an hour
    let orphan = inject_orphan(&app, format!("young {}", uuid_like()).as_bytes()).await;
    let staging = inject_staging(&app).await;
    let report = check(&app, true).await;
    assert_eq!(report.orphans.len(), 1);
    assert!(!report.orphans[0].removed);
    assert!(app.holds_bytes(&orphan).await);
    assert_eq!(report.stale_staging.len(), 1);
    assert_eq!(report.stale_staging[0].upload, staging);
    assert!(!report.stale_staging[0].removed);
}

/// The orphan's version of the collection race: an upload finds the orphan's bytes and skips
/// writing them, a repair removes them, and only then does the upload record its blob. It
/// must write them again.
#[tokio::test]
async fn an_upload_that_found_an_orphan_removed_under_it_writes_its_bytes_again() {
    let (app, paused) = paused_app(no_grace).await;
    let data = format!("orphan uploaded again {}", uuid_like()).into_bytes();
    let orphan = inject_orphan(&app, &data).await;

    paused.committed.arm();
    let upload = tokio::spawn({
        let url = app.url(&format!("/v2/check/race/blobs/uploads/?digest={orphan}"));
        let (client, data) = (app.client.clone(), data.clone());
        async move { client.post(url).body(data).send().await.unwrap().status() }
    });
    paused.committed.reached().await;
    let report = check(&app, true).await;
    assert!(
        report
            .orphans
            .iter()
            .any(|o| o.digest == orphan && o.removed)
    );
    let store = app.blob_store().await;
    assert!(!stored_under_digest(&*store, &orphan.parse().unwrap()).await);
    paused.committed.release();
    assert_eq!(upload.await.unwrap(), StatusCode::CREATED);

    assert!(app.holds_bytes(&orphan).await);
    let response = app
        .get(&format!("/v2/check/race/blobs/{orphan}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.bytes().await.unwrap(), data);
    assert!(check(&app, false).await.orphans.is_empty());
}

/// Blobs a store keeps in the objects their uploads staged (S3) are reconciled by key, on
/// every backend alike: one whose object is gone is missing, a first chunk its upload left
/// behind is stale staging that repair removes, and an upload in progress is left alone.
#[tokio::test]
async fn blobs_and_chunks_kept_under_their_own_keys_are_reconciled() {
    let app = TestApp::spawn_with(no_grace).await;
    let kept = format!("kept {}", uuid_like()).into_bytes();
    let kept_digest = app.push_blob("check/kept", &kept).await;
    let lost = app.push_blob("check/kept", b"kept, then lost").await;
    lose_bytes(&app, "check/kept", &lost).await;
    let live = app.start_upload("check/kept").await;
    let patched = app
        .request(reqwest::Method::PATCH, &live)
        .body(b"in progress".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::ACCEPTED);
    // A first chunk whose upload ended on a node that died before clearing it.
    let forgotten = uuid::Uuid::new_v4().to_string();
    let body = futures::stream::iter([Ok(Bytes::from_static(b"a first chunk"))]);
    let store = app.blob_store().await;
    store
        .write_part(&forgotten, &[], Box::pin(body))
        .await
        .unwrap();

    let report = check(&app, false).await;
    let missing: Vec<&str> = report.missing.iter().map(|m| m.digest.as_str()).collect();
    assert_eq!(missing, [lost.as_str()]);
    assert!(report.orphans.is_empty(), "{report:?}");
    let staged: Vec<(&str, bool)> = report
        .stale_staging
        .iter()
        .map(|s| (s.upload.as_str(), s.removed))
        .collect();
    assert_eq!(staged, [(forgotten.as_str(), false)]);
    assert_eq!((report.recorded_blobs, report.stored_blobs), (2, 1));

    let repaired = check(&app, true).await;
    assert!(repaired.stale_staging.iter().all(|s| s.removed));
    let after = check(&app, false).await;
    assert!(after.stale_staging.is_empty() && after.orphans.is_empty());
    let pulled = app
        .get(&format!("/v2/check/kept/blobs/{kept_digest}"))
        .send();
    assert_eq!(pulled.await.unwrap().bytes().await.unwrap(), kept);
    let status = app.get(&live).send().await.unwrap();
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert!(!app.holds_bytes(&sha256(b"a first chunk")).await);
}
