//! Upload sessions: monolithic, chunked, streamed, resumed, cancelled, mounted.

use futures::TryStreamExt;
use reqwest::{Method, StatusCode};
use wharf::metadata::{ContentStore, UploadStore};

use crate::common::{TestApp, assert_error, header, sha256, stored_under_digest};
use crate::paused::{Gate, paused_app};

async fn patch(
    app: &TestApp,
    location: &str,
    range: Option<&str>,
    data: &[u8],
) -> reqwest::Response {
    let mut request = app
        .request(Method::PATCH, location)
        .header("content-type", "application/octet-stream")
        .body(data.to_vec());
    if let Some(range) = range {
        request = request.header("content-range", range);
    }
    request.send().await.unwrap()
}

async fn finish(app: &TestApp, location: &str, digest: &str, data: &[u8]) -> reqwest::Response {
    let separator = if location.contains('?') { '&' } else { '?' };
    app.request(
        Method::PUT,
        &format!("{location}{separator}digest={digest}"),
    )
    .body(data.to_vec())
    .send()
    .await
    .unwrap()
}

#[tokio::test]
async fn chunked_upload_reports_progress_and_commits() {
    let app = TestApp::spawn().await;
    let data = b"first chunk|second chunk|third".to_vec();
    let digest = sha256(&data);
    let location = app.start_upload("chunky").await;
    assert!(
        location.starts_with("/v2/chunky/blobs/uploads/"),
        "{location}"
    );

    let mut offset = 0;
    for chunk in [&data[..12], &data[12..25]] {
        let end = offset + chunk.len() - 1;
        let response = patch(&app, &location, Some(&format!("{offset}-{end}")), chunk).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&response, "range"), format!("0-{end}"));
        assert_eq!(header(&response, "location"), location);
        assert!(!header(&response, "docker-upload-uuid").is_empty());
        offset = end + 1;
    }
    let status = app.get(&location).send().await.unwrap();
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&status, "range"), "0-24");

    let done = finish(&app, &location, &digest, &data[25..]).await;
    assert_eq!(done.status(), StatusCode::CREATED);
    assert_eq!(header(&done, "docker-content-digest"), digest);
    assert_eq!(
        header(&done, "location"),
        format!("/v2/chunky/blobs/{digest}")
    );
    let blob = app
        .get(&format!("/v2/chunky/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(blob.bytes().await.unwrap(), data);
    let status = app.get(&location).send().await.unwrap();
    assert_error(status, 404, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn out_of_order_and_repeated_chunks_get_416_with_the_current_range() {
    let app = TestApp::spawn().await;
    let location = app.start_upload("order").await;
    assert_eq!(
        patch(&app, &location, Some("0-3"), b"abcd").await.status(),
        StatusCode::ACCEPTED
    );

    let skipped = patch(&app, &location, Some("10-13"), b"wxyz").await;
    assert_eq!(header(&skipped, "range"), "0-3");
    assert_error(skipped, 416, "BLOB_UPLOAD_INVALID").await;
    let repeated = patch(&app, &location, Some("0-3"), b"abcd").await;
    assert_eq!(header(&repeated, "range"), "0-3");
    assert_error(repeated, 416, "BLOB_UPLOAD_INVALID").await;

    let status = app.get(&location).send().await.unwrap();
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&status, "range"), "0-3");
    assert_eq!(
        patch(&app, &location, Some("4-5"), b"ef").await.status(),
        StatusCode::ACCEPTED
    );
    let done = finish(&app, &location, &sha256(b"abcdef"), b"").await;
    assert_eq!(done.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn malformed_content_range_is_rejected() {
    let app = TestApp::spawn().await;
    let location = app.start_upload("ranges").await;
    let response = patch(&app, &location, Some("five-six"), b"ab").await;
    assert_error(response, 400, "BLOB_UPLOAD_INVALID").await;
    let response = patch(&app, &location, Some("0-9"), b"ab").await;
    assert_error(response, 400, "SIZE_INVALID").await;
}

#[tokio::test]
async fn streamed_upload_without_content_range() {
    let app = TestApp::spawn().await;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let location = app.start_upload("stream").await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(7919).map(|c| Ok(c.to_vec())).collect();
    let response = app
        .request(Method::PATCH, &location)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&response, "range"), format!("0-{}", data.len() - 1));
    let digest = sha256(&data);
    assert_eq!(
        finish(&app, &location, &digest, b"").await.status(),
        StatusCode::CREATED
    );
    let blob = app
        .get(&format!("/v2/stream/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(blob.bytes().await.unwrap(), data);
}

#[tokio::test]
async fn wrong_digest_stores_nothing_and_ends_the_upload() {
    let app = TestApp::spawn().await;
    let location = app.start_upload("liar").await;
    let claimed = sha256(b"something else");
    let response = finish(&app, &location, &claimed, b"actual bytes").await;
    let body = assert_error(response, 400, "DIGEST_INVALID").await;
    assert_eq!(
        body["errors"][0]["detail"]["actual"],
        sha256(b"actual bytes")
    );
    for digest in [claimed, sha256(b"actual bytes")] {
        let head = app
            .request(Method::HEAD, &format!("/v2/liar/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::NOT_FOUND);
    }
    assert_error(
        app.get(&location).send().await.unwrap(),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;

    let monolithic = app
        .request(
            Method::POST,
            &format!("/v2/liar/blobs/uploads/?digest={}", sha256(b"x")),
        )
        .body("y")
        .send()
        .await
        .unwrap();
    assert_error(monolithic, 400, "DIGEST_INVALID").await;
    let no_digest = app.request(Method::PUT, &location).send().await.unwrap();
    assert_error(no_digest, 400, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn cancelled_upload_is_gone() {
    let app = TestApp::spawn().await;
    let location = app.start_upload("cancel").await;
    patch(&app, &location, None, b"partial").await;
    let cancel = app.request(Method::DELETE, &location).send().await.unwrap();
    assert_eq!(cancel.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.get(&location).send().await.unwrap(),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    let again = app.request(Method::DELETE, &location).send().await.unwrap();
    assert_error(again, 404, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn an_upload_belongs_to_its_repository_and_ids_are_checked() {
    let app = TestApp::spawn().await;
    let location = app.start_upload("mine").await;
    let elsewhere = location.replace("/v2/mine/", "/v2/theirs/");
    assert_error(
        app.get(&elsewhere).send().await.unwrap(),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    for id in [
        "not-a-uuid",
        "..%2F..",
        "00000000-0000-0000-0000-000000000000",
    ] {
        let response = app
            .get(&format!("/v2/mine/blobs/uploads/{id}"))
            .send()
            .await
            .unwrap();
        assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN").await;
    }
}

#[tokio::test]
async fn upload_resumes_after_a_restart_without_rereading() {
    let mut app = TestApp::spawn().await;
    let location = app.start_upload("resume").await;
    assert_eq!(
        patch(&app, &location, Some("0-4"), b"hello").await.status(),
        StatusCode::ACCEPTED
    );
    app.restart().await;
    let status = app.get(&location).send().await.unwrap();
    assert_eq!(header(&status, "range"), "0-4");
    let done = finish(&app, &location, &sha256(b"hello world"), b" world").await;
    assert_eq!(done.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn sha512_and_empty_blobs_upload() {
    let app = TestApp::spawn().await;
    let data = b"verified with sha512";
    let digest = format!(
        "sha512:{}",
        hex::encode(<sha2::Sha512 as sha2::Digest>::digest(data))
    );
    let response = app
        .request(
            Method::POST,
            &format!("/v2/algo/blobs/uploads/?digest={digest}"),
        )
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let blob = app
        .get(&format!("/v2/algo/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&blob, "docker-content-digest"), digest);
    assert_eq!(blob.bytes().await.unwrap().as_ref(), data);

    let empty = app.push_blob("algo", b"").await;
    let head = app
        .request(Method::HEAD, &format!("/v2/algo/blobs/{empty}"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&head, "content-length"), "0");
}

#[tokio::test]
async fn cross_repository_mount_links_or_falls_back_to_an_upload() {
    let app = TestApp::spawn().await;
    let digest = app.push_blob("source", b"mount me").await;
    let mounted = app
        .request(
            Method::POST,
            &format!("/v2/target/blobs/uploads/?mount={digest}&from=source"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(mounted.status(), StatusCode::CREATED);
    assert_eq!(
        header(&mounted, "location"),
        format!("/v2/target/blobs/{digest}")
    );
    assert_eq!(header(&mounted, "docker-content-digest"), digest);
    let blob = app
        .get(&format!("/v2/target/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(blob.bytes().await.unwrap().as_ref(), b"mount me");

    let unknown = sha256(b"not in source");
    for query in [
        format!("mount={unknown}&from=source"),
        format!("mount={digest}&from=target2"),
        format!("mount={digest}"),
    ] {
        let response = app
            .request(Method::POST, &format!("/v2/other/blobs/uploads/?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{query}");
        let location = header(&response, "location");
        assert_eq!(
            app.get(&location).send().await.unwrap().status(),
            StatusCode::NO_CONTENT
        );
    }
    let bad_from = app
        .request(
            Method::POST,
            &format!("/v2/other/blobs/uploads/?mount={digest}&from=BAD"),
        )
        .send()
        .await
        .unwrap();
    assert_error(bad_from, 400, "NAME_INVALID").await;
}

#[tokio::test]
async fn idle_uploads_are_purged_with_their_bytes() {
    // Idle for a second is stale here; the server's own purge runs at start and then once a
    // minute, so it does not race this test.
    let idle = std::time::Duration::from_secs(1);
    let app = TestApp::spawn_with(|config| config.upload_idle_timeout = idle).await;
    let location = app.start_upload("idle").await;
    assert_eq!(
        patch(&app, &location, None, b"abandoned").await.status(),
        StatusCode::ACCEPTED
    );
    let id = location.rsplit('/').next().unwrap();
    let parts = app
        .store()
        .await
        .get_upload(id)
        .await
        .unwrap()
        .unwrap()
        .parts;
    let blobs = app.blob_store().await;
    assert!(
        blobs
            .read_parts(id, &parts)
            .await
            .unwrap()
            .try_next()
            .await
            .is_ok()
    );

    tokio::time::sleep(idle + std::time::Duration::from_millis(200)).await;
    let purged = app.state.registry.purge_stale_uploads().await.unwrap();
    assert!(purged >= 1);
    assert_error(
        app.get(&location).send().await.unwrap(),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    let staged = blobs.read_parts(id, &parts).await.unwrap().try_next().await;
    assert!(staged.is_err(), "the upload's staged parts are deleted");
}

#[tokio::test]
async fn racing_finishes_of_one_upload_never_fail_the_server() {
    let app = TestApp::spawn().await;
    for round in 0..5 {
        let repo = format!("race{round}");
        let location = app.start_upload(&repo).await;
        let data = format!("racing bytes {round}");
        let range = format!("0-{}", data.len() - 1);
        patch(&app, &location, Some(&range), data.as_bytes()).await;
        let digest = sha256(data.as_bytes());
        let (a, b) = tokio::join!(
            finish(&app, &location, &digest, b""),
            finish(&app, &location, &digest, b"")
        );
        let statuses = [a.status().as_u16(), b.status().as_u16()];
        assert!(statuses.contains(&201), "{statuses:?}");
        assert!(
            statuses.iter().all(|s| [201, 404].contains(s)),
            "{statuses:?}"
        );
        let blob = app
            .get(&format!("/v2/{repo}/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(blob.bytes().await.unwrap(), data.as_bytes());
    }
}

/// The upload id at the end of an upload's Location.
fn upload_id(location: &str) -> String {
    location.rsplit('/').next().unwrap().to_string()
}

fn stream_of(data: &'static [u8]) -> wharf::storage::ByteStream {
    Box::pin(futures::stream::once(async move {
        Ok(bytes::Bytes::from_static(data))
    }))
}

/// Sends `request`, cancels the upload at `location` while the request waits at `gate`, and
/// returns the request's answer.
async fn cancelled_at(
    app: &TestApp,
    gate: &Gate,
    location: &str,
    request: reqwest::RequestBuilder,
) -> reqwest::Response {
    gate.arm();
    let sending = tokio::spawn(async move { request.send().await.unwrap() });
    gate.reached().await;
    let cancel = app.request(Method::DELETE, location).send().await.unwrap();
    assert_eq!(cancel.status(), StatusCode::NO_CONTENT);
    gate.release();
    sending.await.unwrap()
}

async fn staged(app: &TestApp, id: &str) -> bool {
    let store = app.blob_store().await;
    let staged = store.staged_uploads().await.unwrap();
    staged.iter().any(|s| s.upload == id) || !store.kept_objects(id).await.unwrap().is_empty()
}

#[tokio::test]
async fn finishing_commits_only_the_bytes_that_were_hashed() {
    let app = TestApp::spawn().await;
    let location = app.start_upload("popular/base").await;
    let id = upload_id(&location);
    let layer: &[u8] = b"the layer everyone pulls";
    let range = format!("0-{}", layer.len() - 1);
    let response = patch(&app, &location, Some(&range), layer).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    // What reading the row before a racing PATCH and its parts after it would show: one part
    // more than the hashed size covers.
    let blobs = app.blob_store().await;
    let upload = app.store().await.get_upload(&id).await.unwrap().unwrap();
    let extra = blobs
        .write_part(&id, &upload.parts, stream_of(b"poison"))
        .await
        .unwrap();
    app.sql(&format!(
        "INSERT INTO upload_parts (upload_id, start, size, storage_key) \
         VALUES ('{id}', {}, {}, '{}')",
        extra.offset, extra.size, extra.key
    ))
    .await;

    let digest = sha256(layer);
    assert_error(finish(&app, &location, &digest, b"").await, 500, "UNKNOWN").await;
    let store = app.blob_store().await;
    let stored = stored_under_digest(&*store, &digest.parse().unwrap()).await;
    assert!(!stored, "nothing is stored under the digest");
    let head = app
        .request(Method::HEAD, &format!("/v2/popular/base/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_chunk_that_lands_while_the_upload_finishes_is_not_lost() {
    let (app, paused) = paused_app(|_| {}).await;
    let location = app.start_upload("racy").await;
    let (first, second): (&[u8], &[u8]) = (b"first chunk ", b"second chunk");
    let range = format!("0-{}", first.len() - 1);
    assert_eq!(
        patch(&app, &location, Some(&range), first).await.status(),
        StatusCode::ACCEPTED
    );

    paused.commit.arm();
    let finishing = tokio::spawn({
        let request = app
            .request(Method::PUT, &format!("{location}?digest={}", sha256(first)))
            .send();
        async move { request.await.unwrap() }
    });
    paused.commit.reached().await;
    let end = first.len() + second.len() - 1;
    let range = format!("{}-{end}", first.len());
    let appended = patch(&app, &location, Some(&range), second).await;
    assert_eq!(appended.status(), StatusCode::ACCEPTED);
    paused.commit.release();

    // The finish verified only the first chunk; it must not pretend that was the upload.
    assert_error(finishing.await.unwrap(), 400, "BLOB_UPLOAD_INVALID").await;
    let head = app
        .request(Method::HEAD, &format!("/v2/racy/blobs/{}", sha256(first)))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    let status = app.get(&location).send().await.unwrap();
    assert_eq!(header(&status, "range"), format!("0-{end}"));

    let whole = [first, second].concat();
    let digest = sha256(&whole);
    assert_eq!(
        finish(&app, &location, &digest, b"").await.status(),
        StatusCode::CREATED
    );
    let blob = app
        .get(&format!("/v2/racy/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(blob.bytes().await.unwrap(), whole);
}

/// A chunk, in a `PATCH` or in the finishing `PUT`, whose upload is cancelled before its bytes
/// are staged: the request answers 404 and leaves nothing behind.
#[tokio::test]
async fn cancelling_while_a_chunk_streams_in_answers_404_and_leaves_no_bytes() {
    let (app, paused) = paused_app(|_| {}).await;
    let data: &[u8] = b"late bytes";
    for method in [Method::PATCH, Method::PUT] {
        let location = app.start_upload("cancelled").await;
        let id = upload_id(&location);
        let target = match method {
            Method::PUT => format!("{location}?digest={}", sha256(data)),
            _ => location.clone(),
        };
        let request = app.request(method.clone(), &target).body(data);
        let answer = cancelled_at(&app, &paused.write, &location, request).await;
        assert_error(answer, 404, "BLOB_UPLOAD_UNKNOWN").await;
        assert!(
            !staged(&app, &id).await,
            "{method}: no staged byte outlives its upload"
        );
    }
    assert!(!app.holds_bytes(&sha256(data)).await, "no orphan is left");
}

#[tokio::test]
async fn cancelling_while_the_upload_finishes_answers_404_and_stores_nothing() {
    let (app, paused) = paused_app(|_| {}).await;
    let location = app.start_upload("cancelled").await;
    let id = upload_id(&location);
    let data: &[u8] = b"never committed";
    let range = format!("0-{}", data.len() - 1);
    assert_eq!(
        patch(&app, &location, Some(&range), data).await.status(),
        StatusCode::ACCEPTED
    );
    let finish = app.request(Method::PUT, &format!("{location}?digest={}", sha256(data)));
    let answer = cancelled_at(&app, &paused.commit, &location, finish).await;
    assert_error(answer, 404, "BLOB_UPLOAD_UNKNOWN").await;
    assert!(!app.holds_bytes(&sha256(data)).await);
    assert!(!staged(&app, &id).await);
}

#[tokio::test]
async fn cancelling_after_the_bytes_are_committed_leaves_no_bytes_behind() {
    let (app, paused) = paused_app(|_| {}).await;
    let shared: &[u8] = b"also pushed elsewhere";
    app.push_blob("elsewhere", shared).await;
    for data in [&b"committed, then cancelled"[..], shared] {
        let location = app.start_upload("cancelled").await;
        let range = format!("0-{}", data.len() - 1);
        let patched = patch(&app, &location, Some(&range), data).await;
        assert_eq!(patched.status(), StatusCode::ACCEPTED);
        let finish = app.request(Method::PUT, &format!("{location}?digest={}", sha256(data)));
        let answer = cancelled_at(&app, &paused.committed, &location, finish).await;
        assert_error(answer, 404, "BLOB_UPLOAD_UNKNOWN").await;
    }
    let unrecorded = sha256(b"committed, then cancelled");
    assert!(!app.holds_bytes(&unrecorded).await, "no orphan is left");
    // Bytes another repository links stay.
    let read = app
        .get(&format!("/v2/elsewhere/blobs/{}", sha256(shared)))
        .send();
    assert_eq!(read.await.unwrap().bytes().await.unwrap(), shared);
}

#[tokio::test]
async fn staged_bytes_without_an_upload_are_swept() {
    // Idle for a second is stale here; the server's own purge runs at start and then once a
    // minute, so it does not race this test.
    let idle = std::time::Duration::from_secs(1);
    let app = TestApp::spawn_with(|config| config.upload_idle_timeout = idle).await;
    let blobs = app.blob_store().await;
    // What a node that died between ending an upload and clearing its staging leaves behind.
    // (A first chunk alone may be kept as a blob: storage reconciliation, which checks the
    // blobs' rows, removes those.)
    let orphan = uuid::Uuid::new_v4().to_string();
    let first = blobs
        .write_part(&orphan, &[], stream_of(b"forgotten"))
        .await
        .unwrap();
    blobs
        .write_part(&orphan, &[first], stream_of(b", twice"))
        .await
        .unwrap();
    tokio::time::sleep(idle + std::time::Duration::from_millis(200)).await;
    let live = app.start_upload("live").await;
    assert_eq!(
        patch(&app, &live, None, b"in progress").await.status(),
        StatusCode::ACCEPTED
    );

    assert!(app.state.registry.purge_stale_uploads().await.unwrap() >= 1);
    assert!(!staged(&app, &orphan).await, "the orphan is swept");
    assert!(
        staged(&app, &upload_id(&live)).await,
        "a live upload keeps its bytes"
    );
    let status = app.get(&live).send().await.unwrap();
    assert_eq!(header(&status, "range"), "0-10");
}

/// A blob sent in one piece, as most clients send layers (one PATCH, or a monolithic POST),
/// is finished without a copy where the store can keep the object it was staged in (S3):
/// the row names that object, nothing is written under the digest, and it reads back whole.
/// Pushed again elsewhere, the first object stays the blob and the second upload leaves no
/// bytes behind.
#[tokio::test]
async fn a_blob_sent_in_one_piece_is_finished_without_a_copy_where_the_store_can() {
    let app = TestApp::spawn().await;
    let keeps = app.on_s3();
    // Larger than an S3 multipart piece, so the chunk streams in several.
    let data: Vec<u8> = (0..9 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
    let digest = sha256(&data);
    let location = app.start_upload("kept/one").await;
    let patched = patch(&app, &location, None, &data).await;
    assert_eq!(patched.status(), StatusCode::ACCEPTED);
    assert_eq!(
        finish(&app, &location, &digest, b"").await.status(),
        StatusCode::CREATED
    );

    let meta = app.store().await;
    let linked = meta
        .linked_blob("kept/one", &digest)
        .await
        .unwrap()
        .unwrap();
    let store = app.blob_store().await;
    let under_digest = stored_under_digest(&*store, &digest.parse().unwrap()).await;
    assert_eq!(linked.storage_key.is_some(), keeps, "{linked:?}");
    assert_eq!(under_digest, !keeps, "written under the digest too");
    let pulled = app.get(&format!("/v2/kept/one/blobs/{digest}")).send();
    assert_eq!(pulled.await.unwrap().bytes().await.unwrap(), data);

    let again = app.start_upload("kept/two").await;
    let finished = finish(&app, &again, &digest, &data).await;
    assert_eq!(finished.status(), StatusCode::CREATED);
    let second = meta
        .linked_blob("kept/two", &digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.storage_key, linked.storage_key);
    assert!(!staged(&app, &upload_id(&again)).await);
    let pulled = app.get(&format!("/v2/kept/two/blobs/{digest}")).send();
    assert_eq!(pulled.await.unwrap().bytes().await.unwrap(), data);
}

/// A chunk that lands after its upload finished is refused and cleared, and only it: the
/// object the finish kept as the blob (S3) stays.
#[tokio::test]
async fn a_chunk_that_lands_after_the_finish_clears_only_itself() {
    let (app, paused) = paused_app(|_| {}).await;
    let location = app.start_upload("late/chunk").await;
    let data: &[u8] = b"the whole blob";
    let digest = sha256(data);
    assert_eq!(
        patch(&app, &location, None, data).await.status(),
        StatusCode::ACCEPTED
    );
    paused.write.arm();
    let late = tokio::spawn({
        let request = app
            .request(Method::PATCH, &location)
            .body(&b" and more"[..]);
        async move { request.send().await.unwrap() }
    });
    paused.write.reached().await;
    assert_eq!(
        finish(&app, &location, &digest, b"").await.status(),
        StatusCode::CREATED
    );
    paused.write.release();
    assert_error(late.await.unwrap(), 404, "BLOB_UPLOAD_UNKNOWN").await;

    let pulled = app.get(&format!("/v2/late/chunk/blobs/{digest}")).send();
    assert_eq!(pulled.await.unwrap().bytes().await.unwrap(), data);
    let staged = app.blob_store().await.staged_uploads().await.unwrap();
    assert!(staged.iter().all(|s| s.upload != upload_id(&location)));
}
