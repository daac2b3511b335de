//! Storage reconciliation (`wharf storage check`), on both backend pairs: orphans, missing
//! blobs and stale staging areas injected behind the registry's back are found, and repaired
//! only as far as is safe.

use bytes::Bytes;
use reqwest::StatusCode;
use wharf::oci::Digest;
use wharf::registry::StorageReport;

use crate::common::{TestApp, sha256, uuid_like};
use crate::gc::{no_grace, stored};
use crate::paused::paused_app;

async fn check(app: &TestApp, repair: bool) -> StorageReport {
    app.state
        .registry
        .check_storage(repair, &|_| {})
        .await
        .expect("storage check")
}

/// Writes `data` straight into storage as a committed blob no row records, as a crash
/// between writing bytes and recording them leaves it.
async fn inject_orphan(app: &TestApp, data: &[u8]) -> String {
    let store = app.blob_store().await;
    let upload = uuid::Uuid::new_v4().to_string();
    let body = futures::stream::iter([Ok(Bytes::copy_from_slice(data))]);
    let part = store
        .write_part(&upload, &[], Box::pin(body))
        .await
        .unwrap();
    let digest: Digest = sha256(data).parse().unwrap();
    store.commit(&upload, &[part], &digest).await.unwrap();
    store.delete_upload(&upload).await.unwrap();
    digest.to_string()
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
    app.blob_store()
        .await
        .delete(&lost.parse().unwrap())
        .await
        .unwrap();
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
    assert!(!stored(&app, &orphan).await);
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
    assert!(stored(&app, &orphan).await);
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
    assert!(!stored(&app, &orphan).await);
    paused.committed.release();
    assert_eq!(upload.await.unwrap(), StatusCode::CREATED);

    assert!(stored(&app, &orphan).await);
    let response = app
        .get(&format!("/v2/check/race/blobs/{orphan}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.bytes().await.unwrap(), data);
    assert!(check(&app, false).await.orphans.is_empty());
}
