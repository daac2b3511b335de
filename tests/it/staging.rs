//! Requests racing on one upload's staging area, run by the blob-store suite against every
//! store: whichever part the metadata keeps, committing it yields exactly its bytes, and no
//! write, finished or abandoned, changes a part another request staged or a committed blob.

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::oneshot;
use wharf::oci::Digest;
use wharf::storage::{BlobLocation, BlobStore, ByteStream, StorageError, UploadPart};

use crate::common::sha256;

/// A body paused after its first piece: `started` fires once the store reads that piece, and
/// the rest follows when `release` is sent, or the body fails if it is dropped.
struct Paused {
    started: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
}

fn paused_body(first: &'static [u8], rest: &'static [u8]) -> (ByteStream, Paused) {
    let (started_tx, started) = oneshot::channel();
    let (release, released) = oneshot::channel::<()>();
    let first = futures::stream::once(async move {
        let _ = started_tx.send(());
        Ok(Bytes::from_static(first))
    });
    let rest = futures::stream::once(async move {
        match released.await {
            Ok(()) => Ok(Bytes::from_static(rest)),
            Err(_) => Err(std::io::Error::other("client went away")),
        }
    });
    (Box::pin(first.chain(rest)), Paused { started, release })
}

fn whole(data: &'static [u8]) -> ByteStream {
    Box::pin(futures::stream::iter([Ok(Bytes::from_static(data))]))
}

/// Commits `parts` (several, so the blob is stored under its digest) and checks that the
/// blob holds exactly `expected`.
async fn commit_and_check(
    store: &dyn BlobStore,
    upload: &str,
    parts: &[UploadPart],
    expected: &[u8],
) -> Digest {
    let digest: Digest = sha256(expected).parse().unwrap();
    let kept = store.commit(upload, parts, &digest).await.expect("commit");
    assert_eq!(kept, None, "several parts make a blob under its digest");
    assert_blob(store, &digest, expected).await;
    digest
}

async fn assert_blob(store: &dyn BlobStore, digest: &Digest, expected: &[u8]) {
    assert_eq!(
        store.stat(BlobLocation::of(digest)).await.unwrap(),
        Some(expected.len() as u64)
    );
    let mut stored = Vec::new();
    let mut bytes = store.get(BlobLocation::of(digest), None).await.unwrap();
    while let Some(chunk) = bytes.next().await {
        stored.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(
        String::from_utf8_lossy(&stored),
        String::from_utf8_lossy(expected)
    );
}

pub async fn check_racing_writers(store: &dyn BlobStore) {
    let upload = uuid::Uuid::new_v4().to_string();
    let base = store
        .write_part(&upload, &[], whole(b"base "))
        .await
        .unwrap();
    let staged = [base.clone()];

    // A second request writes at the same offset while the first waits for its bytes.
    let (slow_body, slow) = paused_body(b"", b"slow writer");
    let (slow_part, fast_part) =
        tokio::join!(store.write_part(&upload, &staged, slow_body), async {
            slow.started.await.unwrap();
            let fast = store
                .write_part(&upload, &staged, whole(b"fast writer"))
                .await;
            slow.release.send(()).unwrap();
            fast.unwrap()
        });
    let slow_part = slow_part.unwrap();
    let mut digests = vec![
        commit_and_check(
            store,
            &upload,
            &[base.clone(), slow_part],
            b"base slow writer",
        )
        .await,
    ];
    let fast = [base.clone(), fast_part];
    let fast_blob = commit_and_check(store, &upload, &fast, b"base fast writer").await;

    // Appending after a commit leaves the committed blob alone.
    let more = store
        .write_part(&upload, &fast, whole(b" and more"))
        .await
        .unwrap();
    assert_blob(store, &fast_blob, b"base fast writer").await;
    let staged = [fast.as_slice(), &[more]].concat();

    // A commit while a chunk streams in takes only the parts it was given.
    let (late_body, late) = paused_body(b"", b", late bytes");
    let (late_part, committed) =
        tokio::join!(store.write_part(&upload, &staged, late_body), async {
            late.started.await.unwrap();
            let digest =
                commit_and_check(store, &upload, &staged, b"base fast writer and more").await;
            late.release.send(()).unwrap();
            digest
        });
    digests.extend([fast_blob, committed.clone()]);
    let late_parts = [staged.as_slice(), &[late_part.unwrap()]].concat();
    let expected = b"base fast writer and more, late bytes";
    digests.push(commit_and_check(store, &upload, &late_parts, expected).await);
    assert_blob(store, &committed, b"base fast writer and more").await;

    // A body that fails, and one whose request is dropped half way, change nothing for the
    // next attempt.
    let (failing, failed) = paused_body(b" fails", b"");
    drop(failed.release);
    let result = store.write_part(&upload, &late_parts, failing).await;
    assert!(matches!(result, Err(StorageError::Body(_))), "{result:?}");
    let (abandoned, paused) = paused_body(b" abandoned", b"");
    tokio::select! {
        written = store.write_part(&upload, &late_parts, abandoned) => panic!("{written:?}"),
        _ = paused.started => {}
    }
    let retried = store
        .write_part(&upload, &late_parts, whole(b"!"))
        .await
        .unwrap();
    let parts = [late_parts.as_slice(), &[retried]].concat();
    let expected = b"base fast writer and more, late bytes!";
    digests.push(commit_and_check(store, &upload, &parts, expected).await);

    store.delete_upload(&upload, None).await.unwrap();
    for digest in &digests {
        store.delete(BlobLocation::of(digest)).await.unwrap();
    }
}
