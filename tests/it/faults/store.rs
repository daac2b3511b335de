//! A blob store that fails, delays or cuts streams where the test says, and what a client sees
//! when it does: a clean error in the protocol's shape (503 with `Retry-After` where retrying
//! helps), nothing half-written visible, and the next request served once the fault is gone.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::json;
use wharf::config::Config;
use wharf::metadata::now_millis;
use wharf::oci::Digest;
use wharf::storage::s3::{S3BlobStore, S3Settings};
use wharf::storage::{
    BlobLocation, BlobStore, ByteStream, KeptObject, StagedUpload, StorageError, StoredBlob,
    UploadPart,
};

use crate::common::{
    LAYER, OCI_MANIFEST, ProductionBackends, TestApp, assert_error, header, sha256, uuid_like,
};
use crate::gc::{collect, no_grace};

/// The store operations a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Stat,
    Get,
    Delete,
    WritePart,
    Commit,
}

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The store cannot be reached (an S3 endpoint down, say).
    Unavailable,
    /// The store fails for good (a disk error).
    Broken,
    /// The call takes this long, then goes through.
    Delay(Duration),
    /// A stream (a blob read, or the body being written) breaks after this many bytes.
    CutAfter(usize),
}

/// Delegates to a real store, applying each planned fault once to the next call of its
/// operation.
pub struct FaultyBlobStore {
    inner: Arc<dyn BlobStore>,
    planned: Mutex<Vec<(Op, Fault)>>,
}

impl FaultyBlobStore {
    pub fn new(inner: Arc<dyn BlobStore>) -> Arc<FaultyBlobStore> {
        Arc::new(FaultyBlobStore {
            inner,
            planned: Mutex::new(Vec::new()),
        })
    }

    /// Makes the next call of `op` meet `fault`.
    pub fn plan(&self, op: Op, fault: Fault) {
        self.planned.lock().unwrap().push((op, fault));
    }

    fn take(&self, op: Op) -> Option<Fault> {
        let mut planned = self.planned.lock().unwrap();
        let index = planned.iter().position(|(planned, _)| *planned == op)?;
        Some(planned.remove(index).1)
    }

    /// Applies a failure or delay planned for `op`; returns a planned cut for the caller.
    async fn enter(&self, op: Op) -> Result<Option<usize>, StorageError> {
        match self.take(op) {
            None => Ok(None),
            Some(Fault::Unavailable) => Err(StorageError::Unavailable(format!(
                "injected: the store is down during {op:?}"
            ))),
            Some(Fault::Broken) => Err(StorageError::Io(std::io::Error::other(format!(
                "injected: the store failed during {op:?}"
            )))),
            Some(Fault::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                Ok(None)
            }
            Some(Fault::CutAfter(bytes)) => Ok(Some(bytes)),
        }
    }
}

/// `stream`, breaking with an I/O error once `limit` bytes have gone through.
fn cut(stream: ByteStream, limit: usize) -> ByteStream {
    let mut left = limit;
    let stream = stream.flat_map(move |chunk| {
        let items: Vec<std::io::Result<Bytes>> = match chunk {
            Ok(chunk) if chunk.len() >= left => {
                let head = chunk.slice(..left);
                left = 0;
                let broken = std::io::Error::other("injected: the stream was cut");
                vec![Ok(head), Err(broken)]
            }
            Ok(chunk) => {
                left -= chunk.len();
                vec![Ok(chunk)]
            }
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(items)
    });
    Box::pin(stream.filter(|item| {
        let keep = !matches!(item, Ok(chunk) if chunk.is_empty());
        async move { keep }
    }))
}

#[async_trait]
impl BlobStore for FaultyBlobStore {
    async fn stat(&self, blob: BlobLocation<'_>) -> Result<Option<u64>, StorageError> {
        self.enter(Op::Stat).await?;
        self.inner.stat(blob).await
    }

    async fn get(
        &self,
        blob: BlobLocation<'_>,
        range: Option<(u64, u64)>,
    ) -> Result<ByteStream, StorageError> {
        let limit = self.enter(Op::Get).await?;
        let stream = self.inner.get(blob, range).await?;
        Ok(match limit {
            Some(limit) => cut(stream, limit),
            None => stream,
        })
    }

    async fn redirect_url(&self, blob: BlobLocation<'_>) -> Result<Option<String>, StorageError> {
        self.inner.redirect_url(blob).await
    }

    async fn delete(&self, blob: BlobLocation<'_>) -> Result<(), StorageError> {
        self.enter(Op::Delete).await?;
        self.inner.delete(blob).await
    }

    async fn write_part(
        &self,
        upload: &str,
        staged: &[UploadPart],
        body: ByteStream,
    ) -> Result<UploadPart, StorageError> {
        let body = match self.enter(Op::WritePart).await? {
            Some(limit) => cut(body, limit),
            None => body,
        };
        self.inner.write_part(upload, staged, body).await
    }

    async fn read_parts(
        &self,
        upload: &str,
        parts: &[UploadPart],
    ) -> Result<ByteStream, StorageError> {
        self.inner.read_parts(upload, parts).await
    }

    async fn commit(
        &self,
        upload: &str,
        parts: &[UploadPart],
        digest: &Digest,
    ) -> Result<Option<String>, StorageError> {
        self.enter(Op::Commit).await?;
        self.inner.commit(upload, parts, digest).await
    }

    async fn delete_upload(&self, upload: &str, keep: Option<&str>) -> Result<(), StorageError> {
        self.inner.delete_upload(upload, keep).await
    }

    async fn kept_objects(&self, upload: &str) -> Result<Vec<String>, StorageError> {
        self.inner.kept_objects(upload).await
    }

    async fn staged_uploads(&self) -> Result<Vec<StagedUpload>, StorageError> {
        self.inner.staged_uploads().await
    }

    async fn list_blobs(
        &self,
        after: Option<&Digest>,
        limit: u32,
    ) -> Result<Vec<StoredBlob>, StorageError> {
        self.inner.list_blobs(after, limit).await
    }

    async fn list_kept(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<KeptObject>, StorageError> {
        self.inner.list_kept(after, limit).await
    }
}

/// A registry on the configured backend pair, configured by `configure`, whose blob store
/// fails where the test plans.
async fn faulty_app(configure: impl FnOnce(&mut Config)) -> (TestApp, Arc<FaultyBlobStore>) {
    let mut faulty = None;
    let app = TestApp::spawn_wrapping(configure, |inner| {
        let store = FaultyBlobStore::new(inner);
        faulty = Some(store.clone());
        store
    })
    .await;
    (app, faulty.expect("wrapped"))
}

/// Asserts a 503 `UNAVAILABLE` that tells the client when to retry.
async fn assert_unavailable(response: reqwest::Response) {
    assert!(
        response.headers().contains_key("retry-after"),
        "a 503 says when to retry"
    );
    assert_error(response, 503, "UNAVAILABLE").await;
}

async fn blob_status(app: &TestApp, repo: &str, digest: &str) -> StatusCode {
    let url = format!("/v2/{repo}/blobs/{digest}");
    app.request(Method::HEAD, &url)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_store_that_is_down_answers_503_and_the_same_requests_then_succeed() {
    let (app, store) = faulty_app(|_| {}).await;
    let data = format!("blob {}", uuid_like()).into_bytes();
    let digest = sha256(&data);
    let monolithic = format!("/v2/down/blobs/uploads/?digest={digest}");

    // A whole blob in one request: nothing is stored, and the same request then works.
    store.plan(Op::Commit, Fault::Unavailable);
    let response = app.request(Method::POST, &monolithic).body(data.clone());
    assert_unavailable(response.send().await.unwrap()).await;
    assert_eq!(
        blob_status(&app, "down", &digest).await,
        StatusCode::NOT_FOUND
    );
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": LAYER, "digest": digest, "size": data.len()},
        "layers": [],
    });
    let refused = app.put_manifest("down", "v1", &manifest).await;
    assert_error(refused, 400, "MANIFEST_BLOB_UNKNOWN").await;
    let response = app.request(Method::POST, &monolithic).body(data.clone());
    assert_eq!(response.send().await.unwrap().status(), StatusCode::CREATED);

    // A chunked upload whose finish meets the outage keeps its session: finishing again works.
    let other = format!("other blob {}", uuid_like()).into_bytes();
    let other_digest = sha256(&other);
    let location = app.start_upload("down").await;
    let patched = app.request(Method::PATCH, &location).body(other.clone());
    let location = header(&patched.send().await.unwrap(), "location");
    let finish = format!("{location}?digest={other_digest}");
    store.plan(Op::Commit, Fault::Unavailable);
    assert_unavailable(app.request(Method::PUT, &finish).send().await.unwrap()).await;
    assert_eq!(
        blob_status(&app, "down", &other_digest).await,
        StatusCode::NOT_FOUND
    );
    let finished = app.request(Method::PUT, &finish).send().await.unwrap();
    assert_eq!(finished.status(), StatusCode::CREATED);

    // So does one whose finishing PUT carries the last chunk: the same PUT is sent again.
    let last = format!("last chunk {}", uuid_like()).into_bytes();
    let whole_digest = sha256(&[other.as_slice(), &last].concat());
    let location = app.start_upload("down").await;
    let patched = app.request(Method::PATCH, &location).body(other.clone());
    let location = header(&patched.send().await.unwrap(), "location");
    let finish = format!("{location}?digest={whole_digest}");
    store.plan(Op::Commit, Fault::Unavailable);
    let response = app.request(Method::PUT, &finish).body(last.clone());
    assert_unavailable(response.send().await.unwrap()).await;
    let response = app.request(Method::PUT, &finish).body(last.clone());
    assert_eq!(response.send().await.unwrap().status(), StatusCode::CREATED);

    // A read that meets the outage, then the same one again.
    store.plan(Op::Get, Fault::Unavailable);
    let get = app.get(&format!("/v2/down/blobs/{digest}")).send().await;
    assert_unavailable(get.unwrap()).await;
    let get = app.get(&format!("/v2/down/blobs/{digest}")).send().await;
    assert_eq!(get.unwrap().bytes().await.unwrap(), data);
    let get = app
        .get(&format!("/v2/down/blobs/{other_digest}"))
        .send()
        .await;
    assert_eq!(get.unwrap().bytes().await.unwrap(), other);
}

#[tokio::test]
async fn a_broken_store_answers_a_clean_500_and_stores_nothing() {
    let (app, store) = faulty_app(|_| {}).await;
    let data = format!("blob {}", uuid_like()).into_bytes();
    let digest = sha256(&data);
    let location = app.start_upload("broken").await;
    store.plan(Op::WritePart, Fault::Broken);
    let patched = app.request(Method::PATCH, &location).body(data.clone());
    assert_error(patched.send().await.unwrap(), 500, "UNKNOWN").await;
    // The upload is where it was: the chunk can be sent again.
    let status = app.get(&location).send().await.unwrap();
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&status, "range"), "0-0");
    let patched = app.request(Method::PATCH, &location).body(data.clone());
    assert_eq!(patched.send().await.unwrap().status(), StatusCode::ACCEPTED);
    store.plan(Op::Commit, Fault::Broken);
    let finish = format!("{location}?digest={digest}");
    let finished = app.request(Method::PUT, &finish).send().await.unwrap();
    assert_error(finished, 500, "UNKNOWN").await;
    assert_eq!(
        blob_status(&app, "broken", &digest).await,
        StatusCode::NOT_FOUND
    );
    let finished = app.request(Method::PUT, &finish).send().await.unwrap();
    assert_eq!(finished.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_body_cut_midway_leaves_no_bytes_and_the_chunk_can_be_sent_again() {
    let (app, store) = faulty_app(|_| {}).await;
    let data = vec![7u8; 300_000];
    let digest = sha256(&data);
    let location = app.start_upload("cut").await;
    store.plan(Op::WritePart, Fault::CutAfter(100_000));
    let patched = app.request(Method::PATCH, &location).body(data.clone());
    let patched = patched.send().await.unwrap();
    assert!(patched.status().is_client_error(), "{}", patched.status());
    let status = app.get(&location).send().await.unwrap();
    assert_eq!(
        header(&status, "range"),
        "0-0",
        "no part of the cut chunk counts"
    );
    let patched = app.request(Method::PATCH, &location).body(data.clone());
    assert_eq!(patched.send().await.unwrap().status(), StatusCode::ACCEPTED);
    let finished = app
        .request(Method::PUT, &format!("{location}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(finished.status(), StatusCode::CREATED);
    let read = app.get(&format!("/v2/cut/blobs/{digest}")).send().await;
    assert_eq!(read.unwrap().bytes().await.unwrap(), data);
}

#[tokio::test]
async fn a_read_cut_midway_breaks_the_response_instead_of_ending_it_short() {
    let (app, store) = faulty_app(|_| {}).await;
    let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let digest = app.push_blob("torn", &data).await;
    store.plan(Op::Get, Fault::CutAfter(200_000));
    // The failure may reach the client before or after the headers; either way it must
    // see the read fail, never a short blob that looks whole.
    let read = match app.get(&format!("/v2/torn/blobs/{digest}")).send().await {
        Ok(response) => response.bytes().await.map(|bytes| bytes.len()),
        Err(e) => Err(e),
    };
    assert!(read.is_err(), "read {read:?}");
    let again = app.get(&format!("/v2/torn/blobs/{digest}")).send().await;
    assert_eq!(again.unwrap().bytes().await.unwrap(), data);
}

#[tokio::test]
async fn a_slow_store_holds_up_only_the_request_that_waits_on_it() {
    let (app, store) = faulty_app(|_| {}).await;
    let (_, digest, _) = app.push_image("slow", "v1").await;
    let location = app.start_upload("slow").await;
    store.plan(Op::WritePart, Fault::Delay(Duration::from_secs(3)));
    let slow = {
        let request = app.request(Method::PATCH, &location).body(vec![1u8; 10]);
        tokio::spawn(request.send())
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let pulled = app
        .get(&format!("/v2/slow/manifests/{digest}"))
        .send()
        .await;
    assert_eq!(pulled.unwrap().status(), StatusCode::OK);
    let pushed = app.push_image("slow", "v2").await;
    assert!(!pushed.1.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "other requests went on while one waited on the store ({:?})",
        started.elapsed()
    );
    let slow = slow.await.unwrap().unwrap();
    assert_eq!(slow.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_collection_whose_delete_fails_keeps_the_blob_recorded_and_finishes_later() {
    let (app, store) = faulty_app(no_grace).await;
    let (_, digest, _) = app.push_image("gc-fault", "v1").await;
    let deleted = app
        .request(Method::DELETE, &format!("/v2/gc-fault/manifests/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    store.plan(Op::Delete, Fault::Unavailable);
    let registry = &app.state.registry;
    let failed = registry.collect_garbage(now_millis() + 1, false, &|_| {});
    assert!(failed.await.is_err(), "the collection reports the outage");
    // Every blob still recorded still has its bytes: nothing is half-removed.
    let report = registry.check_storage(false, &|_| {}).await.unwrap();
    assert!(report.missing.is_empty(), "missing {:?}", report.missing);
    assert!(report.orphans.is_empty(), "orphans {:?}", report.orphans);
    let done = collect(&app).await;
    assert_eq!(
        done.blobs, 2,
        "the config and the layer go once the store is back"
    );
    let report = registry.check_storage(false, &|_| {}).await.unwrap();
    assert!(report.missing.is_empty() && report.orphans.is_empty());
    assert_eq!(report.recorded_blobs, 0);
}

#[tokio::test]
async fn an_unreachable_object_store_is_unavailable_and_a_missing_bucket_is_not() {
    let Some(backends) = ProductionBackends::from_env() else {
        return;
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = S3Settings {
        endpoint: Some(format!("http://{}", closed.local_addr().unwrap())),
        ..backends.s3()
    };
    drop(closed);
    let refused = S3BlobStore::connect(unreachable).await.err();
    assert!(
        matches!(refused, Some(StorageError::Unavailable(_))),
        "a store that cannot be reached may come back: {refused:?}"
    );
    let missing = S3Settings {
        bucket: format!("no-such-bucket-{}", uuid_like()),
        ..backends.s3()
    };
    let missing = S3BlobStore::connect(missing).await.err();
    assert!(
        matches!(missing, Some(StorageError::Backend(_))),
        "a missing bucket is a configuration error: {missing:?}"
    );
}
