//! One behavioural suite per storage trait, run against every implementation: the
//! filesystem and SQLite always, S3 (Garage) and Postgres when `scripts/services.sh` has
//! started them (under CI they are required).

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use wharf::metadata::sql::SqlStore;
use wharf::metadata::{
    BlobRecord, CollectionStore, ContentRef, ContentStore, FinishedBlob, IdentityStore, LinkedBlob,
    ManifestKey, MetadataStore, NewAdvisory, NewManifest, Page, PullThroughRule, Pulls, RefKind,
    RefusedManifest, RemoteRecord, RemoteStore, Removal, Repository, RepositorySettings,
    RepositoryStore, ScanOnPush, ScanResult, TagMutability, UploadStore, UpstreamCredential, User,
};
use wharf::oci::{Digest, Sha256Hasher};
use wharf::storage::fs::FsBlobStore;
use wharf::storage::s3::S3BlobStore;
use wharf::storage::{BlobLocation, BlobStore, ByteStream, StorageError, UploadPart};

use crate::common::{ProductionBackends, sha256};

const MIB: usize = 1024 * 1024;

/// `data` as a request body arriving in pieces of `piece` bytes.
fn body(data: &[u8], piece: usize) -> ByteStream {
    let pieces: Vec<std::io::Result<Bytes>> = data
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(pieces))
}

async fn read_all(stream: ByteStream) -> Vec<u8> {
    stream
        .try_fold(Vec::new(), |mut all, chunk| async move {
            all.extend_from_slice(&chunk);
            Ok(all)
        })
        .await
        .expect("read stream")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Stages `chunks` as consecutive parts of a new upload, commits them and checks the blob.
async fn upload_and_check(store: &dyn BlobStore, chunks: &[(Vec<u8>, usize)]) {
    let upload = uuid::Uuid::new_v4().to_string();
    let mut parts: Vec<UploadPart> = Vec::new();
    let mut whole = Vec::new();
    for (data, piece) in chunks {
        let part = store
            .write_part(&upload, &parts, body(data, *piece))
            .await
            .expect("write part");
        assert_eq!(part.size, data.len() as u64);
        assert_eq!(part.offset, whole.len() as u64);
        whole.extend_from_slice(data);
        parts.push(part);
    }
    assert_eq!(
        read_all(store.read_parts(&upload, &parts).await.unwrap()).await,
        whole
    );
    let digest: Digest = sha256(&whole).parse().unwrap();
    let kept = store
        .commit(&upload, &parts, &digest)
        .await
        .expect("commit");
    let again = store
        .commit(&upload, &parts, &digest)
        .await
        .expect("commit again");
    assert_eq!(again, kept);
    store
        .delete_upload(&upload, kept.as_deref())
        .await
        .expect("delete upload");
    let blob = BlobLocation {
        digest: &digest,
        key: kept.as_deref(),
    };
    assert_eq!(store.stat(blob).await.unwrap(), Some(whole.len() as u64));
    assert_eq!(read_all(store.get(blob, None).await.unwrap()).await, whole);
    if whole.len() > 10 {
        let last = whole.len() as u64 - 2;
        let tail = read_all(store.get(blob, Some((3, last))).await.unwrap()).await;
        assert_eq!(tail, whole[3..=last as usize]);
    }
    store.delete(blob).await.unwrap();
    assert_eq!(store.stat(blob).await.unwrap(), None);
}

/// A blob committed from one staged object may be kept in that object, so that nothing is
/// copied (S3): it survives its upload's staging being cleared, and is listed, as its
/// upload's, by `kept_objects` and `list_kept` until it is deleted. Stores that keep no
/// objects list none.
async fn check_kept_objects(store: &dyn BlobStore) {
    let upload = uuid::Uuid::new_v4().to_string();
    let data = pattern(3 * MIB + 1, 9);
    let digest = Digest::sha256(&data);
    let part = store
        .write_part(&upload, &[], body(&data, 1 << 20))
        .await
        .unwrap();
    let Some(key) = store
        .commit(&upload, std::slice::from_ref(&part), &digest)
        .await
        .unwrap()
    else {
        assert!(store.kept_objects(&upload).await.unwrap().is_empty());
        assert!(store.list_kept(None, 10).await.unwrap().is_empty());
        store.delete_upload(&upload, None).await.unwrap();
        store.delete(BlobLocation::of(&digest)).await.unwrap();
        return;
    };
    let blob = BlobLocation {
        digest: &digest,
        key: Some(&key),
    };
    assert_eq!(store.stat(BlobLocation::of(&digest)).await.unwrap(), None);
    assert_eq!(
        store.kept_objects(&upload).await.unwrap(),
        std::slice::from_ref(&key)
    );
    // A chunk staged after the commit (a racing request) goes with the staging; the blob stays.
    store
        .write_part(&upload, &[part], body(b"late", 2))
        .await
        .unwrap();
    store.delete_upload(&upload, Some(&key)).await.unwrap();
    let staged = store.staged_uploads().await.unwrap();
    assert!(staged.iter().all(|s| s.upload != upload), "{staged:?}");
    assert_eq!(read_all(store.get(blob, None).await.unwrap()).await, data);
    let listed: Vec<_> = store
        .list_kept(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|object| (object.key, object.upload, object.size))
        .collect();
    assert_eq!(listed, [(key.clone(), upload.clone(), data.len() as u64)]);
    assert!(store.list_kept(Some(&key), 10).await.unwrap().is_empty());
    assert!(store.list_kept(None, 0).await.unwrap().is_empty());

    store.delete(blob).await.unwrap();
    assert_eq!(store.stat(blob).await.unwrap(), None);
    assert!(store.list_kept(None, 10).await.unwrap().is_empty());
}

/// Commits blobs of both algorithms, from two parts each so that they are stored under their
/// digests, and checks that `list_blobs` pages through exactly them in digest order, never
/// listing staged parts or deleted blobs. Exact lists are fine: the suite runs on a fresh
/// directory or key prefix, and its other checks delete what they commit.
async fn check_blob_listing(store: &dyn BlobStore) {
    let upload = uuid::Uuid::new_v4().to_string();
    let mut committed = Vec::new();
    for seed in 0..6u8 {
        let algorithm = match seed {
            0 | 1 => wharf::oci::Algorithm::Sha512,
            _ => wharf::oci::Algorithm::Sha256,
        };
        let data = pattern(100 + usize::from(seed), seed);
        let digest = Digest::of(algorithm, &data);
        let first = store
            .write_part(&upload, &[], body(&data[..50], 7))
            .await
            .unwrap();
        let second = store
            .write_part(&upload, std::slice::from_ref(&first), body(&data[50..], 7))
            .await
            .unwrap();
        let kept = store.commit(&upload, &[first, second], &digest).await;
        assert_eq!(kept.unwrap(), None);
        committed.push((digest, data.len() as u64));
    }
    // Sorted by the string form, then compared whole: digest order, no more and no fewer.
    committed.sort_by_key(|(digest, _)| digest.to_string());
    let all = store.list_blobs(None, 1000).await.unwrap();
    let listed: Vec<(Digest, u64)> = all.iter().map(|b| (b.digest.clone(), b.size)).collect();
    assert_eq!(listed, committed);
    for blob in &all {
        let age = blob.modified.elapsed().unwrap_or_default();
        assert!(age < std::time::Duration::from_secs(60), "{blob:?}");
    }
    assert!(store.list_blobs(None, 0).await.unwrap().is_empty());

    // Pages of any size walk the same sequence, every page full until the listing ends.
    for limit in 1..=4 {
        let mut walked = Vec::new();
        let mut after: Option<Digest> = None;
        loop {
            let page = store.list_blobs(after.as_ref(), limit).await.unwrap();
            let left = all.len() - walked.len();
            assert_eq!(page.len(), left.min(limit as usize), "pages of {limit}");
            let Some(last) = page.last() else { break };
            after = Some(last.digest.clone());
            walked.extend(page);
        }
        assert_eq!(walked, all, "pages of {limit}");
    }
    // Any digest can start a page, stored or not.
    let unstored: Digest = sha256(b"not stored").parse().unwrap();
    let rest: Vec<_> = all
        .iter()
        .filter(|b| b.digest.to_string() > unstored.to_string())
        .cloned()
        .collect();
    assert_eq!(store.list_blobs(Some(&unstored), 1000).await.unwrap(), rest);

    let (gone, _) = &committed[2];
    store.delete(BlobLocation::of(gone)).await.unwrap();
    let listed = store.list_blobs(None, 1000).await.unwrap();
    let kept: Vec<_> = all.into_iter().filter(|b| &b.digest != gone).collect();
    assert_eq!(listed, kept);

    for (digest, _) in &committed {
        store.delete(BlobLocation::of(digest)).await.unwrap();
    }
    store.delete_upload(&upload, None).await.unwrap();
    assert!(store.list_blobs(None, 1000).await.unwrap().is_empty());
}

async fn run_blob_store_suite(store: &dyn BlobStore) {
    let missing: Digest = sha256(b"missing").parse().unwrap();
    let missing = BlobLocation::of(&missing);
    assert_eq!(store.stat(missing).await.unwrap(), None);
    assert!(matches!(
        store.get(missing, None).await,
        Err(StorageError::NotFound)
    ));
    store
        .delete(missing)
        .await
        .expect("deleting a missing blob succeeds");
    store
        .delete_upload("never-started", None)
        .await
        .expect("unknown upload");

    // Tiny and odd-sized chunks, an empty one among them.
    upload_and_check(
        store,
        &[(b"a".to_vec(), 1), (Vec::new(), 1), (b"bcd".to_vec(), 2)],
    )
    .await;
    upload_and_check(store, &[(Vec::new(), 1)]).await;
    // One chunk larger than a multipart piece, streamed in odd pieces.
    upload_and_check(store, &[(pattern(9 * MIB + 5, 1), 65_521)]).await;
    // Larger than the filesystem store's background sync step, in the pieces hyper delivers.
    upload_and_check(store, &[(pattern(40 * MIB + 3, 8), 16 * 1024)]).await;
    // Large, small, large: copies and re-sends must interleave in order.
    let mixed = [
        (pattern(6 * MIB + 7, 2), 1 << 20),
        (pattern(MIB + 3, 3), 4093),
        (pattern(17, 4), 5),
        (pattern(5 * MIB + 1, 5), 1 << 20),
        (pattern(2 * MIB, 6), 1 << 20),
    ];
    upload_and_check(store, &mixed).await;

    crate::staging::check_racing_writers(store).await;

    // A body that fails half way leaves nothing behind.
    let upload = uuid::Uuid::new_v4().to_string();
    let failing: ByteStream = Box::pin(
        futures::stream::iter([Ok(Bytes::from(pattern(9 * MIB, 7)))]).chain(futures::stream::once(
            async { Err(std::io::Error::other("client went away")) },
        )),
    );
    let result = store.write_part(&upload, &[], failing).await;
    assert!(matches!(result, Err(StorageError::Body(_))), "{result:?}");
    store.delete_upload(&upload, None).await.unwrap();

    // Staging areas are listed whatever the metadata says, with their last write. (An
    // upload's first chunk alone may be kept as a blob: reconciliation finds those.)
    let staged_upload = uuid::Uuid::new_v4().to_string();
    let first = store
        .write_part(&staged_upload, &[], body(b"staged", 3))
        .await
        .unwrap();
    store
        .write_part(&staged_upload, &[first], body(b" more", 3))
        .await
        .unwrap();
    let staged = store.staged_uploads().await.unwrap();
    let listed = staged.iter().find(|s| s.upload == staged_upload);
    let age = listed
        .expect("the staged upload is listed")
        .last_write
        .elapsed()
        .unwrap_or_default();
    assert!(age < std::time::Duration::from_secs(60), "{age:?}");
    store.delete_upload(&staged_upload, None).await.unwrap();
    let staged = store.staged_uploads().await.unwrap();
    assert!(staged.iter().all(|s| s.upload != staged_upload));
    assert!(store.kept_objects(&staged_upload).await.unwrap().is_empty());

    check_kept_objects(store).await;
    check_blob_listing(store).await;
}

#[tokio::test]
async fn filesystem_blob_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).await.unwrap();
    run_blob_store_suite(&store).await;
    assert_eq!(
        store
            .redirect_url(BlobLocation::of(&sha256(b"x").parse().unwrap()))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn s3_blob_store() {
    let Some(backends) = ProductionBackends::from_env() else {
        return;
    };
    let store = S3BlobStore::connect(backends.s3())
        .await
        .expect("connect to S3");
    run_blob_store_suite(&store).await;

    let mut settings = backends.s3();
    settings.redirect = Some(std::time::Duration::from_secs(60));
    let redirecting = S3BlobStore::connect(settings).await.unwrap();
    let url = redirecting
        .redirect_url(BlobLocation::of(&sha256(b"x").parse().unwrap()))
        .await
        .unwrap();
    assert!(url.unwrap().contains("X-Amz-Signature"));
}

/// The size of the blob the suite's manifests reference.
const LAYER_SIZE: u64 = 4;

/// The blob `digest` of `size` bytes, stored under its digest.
fn under_digest(digest: &str, size: u64) -> FinishedBlob<'_> {
    FinishedBlob {
        digest,
        size,
        storage_key: None,
        relocate: false,
    }
}

/// Completes the upload as the registry does once it has found the bytes stored. Returns
/// false if the upload was gone or of another size.
async fn complete(store: &dyn MetadataStore, id: &str, blob: &str, size: u64, now: i64) -> bool {
    match store
        .complete_upload(id, size, under_digest(blob, size), true, now)
        .await
        .unwrap()
    {
        Some(held) => {
            held.commit().await.unwrap();
            true
        }
        None => false,
    }
}

fn manifest(repository: &str, content: &str, subject: Option<&str>, kind: &str) -> NewManifest {
    NewManifest {
        repository: repository.into(),
        digest: sha256(content.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        artifact_type: Some(kind.into()),
        subject: subject.map(str::to_string),
        annotations: None,
        content: content.as_bytes().to_vec(),
        total_size: 100,
        blob_references: vec![ContentRef {
            digest: sha256(b"layer"),
            size: LAYER_SIZE,
        }],
        manifest_references: Vec::new(),
        replicate_to: Vec::new(),
        scan_on_push: ScanOnPush::Never,
        upstream_checked_at: None,
    }
}

/// A manifest referencing more blobs than one batched statement holds: the refusal names the
/// first missing reference, and once all are there every one is recorded.
async fn check_many_references(store: &dyn MetadataStore) {
    let state = Sha256Hasher::default().save();
    let mut layers = Vec::new();
    for i in 0..600 {
        let id = format!("many-{i}");
        let digest = sha256(id.as_bytes());
        store.create_upload(&id, "many", &state, 1).await.unwrap();
        assert!(complete(store, &id, &digest, 0, 1).await);
        layers.push(ContentRef { digest, size: 0 });
    }
    layers.sort_by(|a, b| a.digest.cmp(&b.digest));
    let missing = ContentRef {
        digest: sha256(b"never uploaded"),
        size: 0,
    };
    let mut wide = NewManifest {
        repository: "many".into(),
        blob_references: layers.clone(),
        ..manifest("many", "wide", None, "wide")
    };
    wide.blob_references.insert(550, missing.clone());
    assert_eq!(
        store.put_manifest(&wide, &[], false, 2).await.unwrap(),
        Err(RefusedManifest::Unknown {
            kind: RefKind::Blob,
            digest: missing.digest,
        })
    );
    wide.blob_references.remove(550);
    wide.blob_references[580].size = 1;
    assert_eq!(
        store.put_manifest(&wide, &[], false, 2).await.unwrap(),
        Err(RefusedManifest::SizeMismatch {
            kind: RefKind::Blob,
            digest: layers[580].digest.clone(),
            declared: 1,
            stored: 0,
        })
    );
    wide.blob_references[580].size = 0;
    assert_eq!(
        store.put_manifest(&wide, &[], false, 2).await.unwrap(),
        Ok(true)
    );
    for layer in [&layers[0], &layers[599]] {
        let kept = store.unlink_blob("many", &layer.digest, 3).await.unwrap();
        assert_eq!(kept, Removal::ReferencedBy(vec![wide.digest.clone()]));
    }
}

async fn run_metadata_suite(store: Arc<dyn MetadataStore>) {
    let state = Sha256Hasher::default().save();
    // Uploads: a chunk counts only where the upload ends, exactly once.
    store
        .create_upload("u1", "repo", &state, 1_000)
        .await
        .unwrap();
    let part = |offset, size, key: &str| UploadPart {
        offset,
        size,
        key: key.into(),
    };
    assert!(
        store
            .append_upload_part("u1", &part(0, 4, "k1"), b"s1", 2_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .append_upload_part("u1", &part(0, 4, "k2"), b"s2", 2_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .append_upload_part("u1", &part(4, 0, "k3"), b"s3", 2_000)
            .await
            .unwrap()
    );
    let upload = store.get_upload("u1").await.unwrap().unwrap();
    assert_eq!(
        (upload.size, upload.hash_state.as_slice()),
        (4, b"s3".as_slice())
    );
    assert_eq!(upload.parts, vec![part(0, 4, "k1"), part(4, 0, "k3")]);
    assert!(store.get_upload("nope").await.unwrap().is_none());
    store
        .create_upload("empty", "repo", &state, 1_000)
        .await
        .unwrap();
    let empty = store.get_upload("empty").await.unwrap().unwrap();
    assert_eq!((empty.size, empty.parts.len()), (0, 0));
    assert!(store.delete_upload("empty").await.unwrap());
    // An empty part (a finish without a body) and the chunk after it share an offset: the
    // empty one comes first, whatever their keys.
    store
        .create_upload("ties", "repo", &state, 1_000)
        .await
        .unwrap();
    for tied in [part(0, 5, "m"), part(5, 0, "z"), part(5, 2, "a")] {
        let appended = store.append_upload_part("ties", &tied, b"s", 1_000).await;
        assert!(appended.unwrap());
    }
    let ties = store.get_upload("ties").await.unwrap().unwrap();
    assert_eq!(
        ties.parts,
        vec![part(0, 5, "m"), part(5, 0, "z"), part(5, 2, "a")]
    );
    assert!(store.delete_upload("ties").await.unwrap());

    // Racing chunks at one offset: one winner.
    store
        .create_upload("race", "repo", &state, 1_000)
        .await
        .unwrap();
    let racers = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let key = format!("racer{i}");
            store
                .append_upload_part("race", &part(0, 9, &key), b"s", 3_000)
                .await
                .unwrap()
        })
    });
    let winners = futures::future::join_all(racers)
        .await
        .into_iter()
        .filter(|w| *w.as_ref().unwrap())
        .count();
    assert_eq!(winners, 1);

    assert_eq!(
        store.stale_uploads(1_500, 10).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        store.stale_uploads(2_500, 10).await.unwrap(),
        vec!["u1".to_string()]
    );

    // Completing links the blob to the upload's repository, once, and only at the size that
    // was verified.
    let blob = sha256(b"layer");
    assert!(!complete(&*store, "u1", &blob, 5, 4_000).await);
    assert!(store.get_upload("u1").await.unwrap().is_some());
    assert!(complete(&*store, "u1", &blob, 4, 4_000).await);
    assert!(!complete(&*store, "u1", &blob, 4, 4_000).await);
    // An upload into a repository deleted (or never made) before it finished: unless it may
    // create the repository, it goes and nothing is linked or created.
    store
        .create_upload("late", "deleted", &state, 1)
        .await
        .unwrap();
    let late = store
        .complete_upload("late", 0, under_digest(&blob, 0), false, 4_000)
        .await;
    assert!(late.unwrap().is_none());
    assert!(store.get_upload("late").await.unwrap().is_none());
    assert!(store.get_repository("deleted").await.unwrap().is_none());
    let linked = |size, linked_at| {
        Some(LinkedBlob {
            size,
            storage_key: None,
            linked_at,
        })
    };
    assert_eq!(
        store.linked_blob("repo", &blob).await.unwrap(),
        linked(4, 4_000)
    );
    // A final chunk staged but not recorded: the row's size is checked, the blob's recorded.
    // (Recorded after the collection checks' cutoffs, which it must not show up in.)
    store
        .create_upload("final", "repo", &state, 1)
        .await
        .unwrap();
    let finished = sha256(b"final chunk");
    for (recorded, outcome) in [(3, false), (0, true)] {
        let held = store
            .complete_upload(
                "final",
                recorded,
                under_digest(&finished, 11),
                false,
                20_000,
            )
            .await
            .unwrap();
        assert_eq!(held.is_some(), outcome, "recorded {recorded}");
        if let Some(held) = held {
            held.commit().await.unwrap();
        }
    }
    assert_eq!(
        store.linked_blob("repo", &finished).await.unwrap(),
        linked(11, 20_000)
    );
    assert_eq!(store.linked_blob("other", &blob).await.unwrap(), None);
    assert!(
        !store
            .mount_blob("other", "nowhere", &blob, true, 5_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .mount_blob("other", "repo", &blob, true, 5_000)
            .await
            .unwrap()
    );
    assert_eq!(
        store.linked_blob("other", &blob).await.unwrap(),
        linked(4, 5_000)
    );
    assert_eq!(
        store.unlink_blob("other", &blob, 5_000).await.unwrap(),
        Removal::Removed
    );
    assert_eq!(
        store.unlink_blob("other", &blob, 5_000).await.unwrap(),
        Removal::NotFound
    );
    assert!(store.delete_upload("race").await.unwrap());
    assert!(!store.delete_upload("race").await.unwrap());

    // Manifests, tags (bytewise order), referrers.
    let image = manifest("repo", "image", None, "config");
    let put = |manifest: NewManifest, tags: Vec<String>| {
        let store = store.clone();
        async move {
            store
                .put_manifest(&manifest, &tags, true, 6_000)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        put(image.clone(), vec!["b".into(), "C".into()]).await,
        Ok(true)
    );
    assert_eq!(put(image.clone(), vec!["a".into()]).await, Ok(true));
    assert_eq!(put(image.clone(), vec!["a".into()]).await, Ok(false));
    let page = |limit, after| Page { limit, after };
    assert_eq!(
        store
            .list_tags("repo", page(10, None))
            .await
            .unwrap()
            .unwrap(),
        ["C", "a", "b"]
    );
    assert_eq!(
        store
            .list_tags("repo", page(1, Some("C")))
            .await
            .unwrap()
            .unwrap(),
        ["a"]
    );
    assert!(
        store
            .list_tags("ghost", page(10, None))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.list_repositories(page(10, None)).await.unwrap(),
        ["other", "repo"]
    );
    let by_tag = store
        .get_manifest("repo", ManifestKey::Tag("a"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (by_tag.digest.as_str(), by_tag.content.as_slice()),
        (image.digest.as_str(), b"image".as_slice())
    );
    assert!(
        store
            .get_manifest("other", ManifestKey::Digest(&image.digest))
            .await
            .unwrap()
            .is_none()
    );

    let moved = manifest("repo", "image two", None, "config");
    assert_eq!(put(moved.clone(), vec!["a".into()]).await, Ok(true));
    // In an immutable repository a tag is created, and then stays where it is; a push into a
    // repository that does not exist is refused unless it may create it.
    let locked = Repository {
        name: "locked".into(),
        created_at: 6_400,
        settings: RepositorySettings {
            tag_mutability: TagMutability::Immutable,
            ..RepositorySettings::default()
        },
        policy: None,
    };
    assert!(store.create_repository(&locked, &[]).await.unwrap());
    let unlinked = |content: &str| NewManifest {
        blob_references: Vec::new(),
        ..manifest("locked", content, None, "config")
    };
    let (first, second) = (unlinked("first"), unlinked("second"));
    let keep = |manifest: &NewManifest| {
        let (store, manifest) = (store.clone(), manifest.clone());
        async move {
            let tags = ["v1".to_string()];
            store
                .put_manifest(&manifest, &tags, false, 6_500)
                .await
                .unwrap()
        }
    };
    assert_eq!(keep(&first).await, Ok(true));
    assert_eq!(keep(&first).await, Ok(false));
    assert_eq!(
        keep(&second).await,
        Err(RefusedManifest::TagProtected { tag: "v1".into() })
    );
    let elsewhere = NewManifest {
        repository: "uncreated".into(),
        ..first.clone()
    };
    assert_eq!(
        store
            .put_manifest(&elsewhere, &[], false, 6_600)
            .await
            .unwrap(),
        Err(RefusedManifest::RepositoryUnknown)
    );
    let protected = store.get_manifest("locked", ManifestKey::Tag("v1")).await;
    assert_eq!(protected.unwrap().unwrap().digest, first.digest);
    let by_tag = store
        .get_manifest("repo", ManifestKey::Tag("a"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_tag.digest, moved.digest);
    // Pull times only move forward: a batch from a node that gathered an older pull leaves
    // the newer time.
    let pulled = Pulls {
        repository: "repo",
        digest: &moved.digest,
        last: 8_000,
        count: 1,
    };
    store.record_pulls(&[pulled]).await.unwrap();
    let older = Pulls {
        last: 7_000,
        count: 2,
        ..pulled
    };
    store.record_pulls(&[older]).await.unwrap();
    let pulled_image = store
        .get_image("repo", ManifestKey::Digest(&moved.digest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pulled_image.last_pulled_at, Some(8_000));

    let sbom = manifest("repo", "sbom", Some(&image.digest), "sbom");
    let sig = manifest("repo", "sig", Some(&image.digest), "sig");
    assert_eq!(put(sbom.clone(), Vec::new()).await, Ok(true));
    assert_eq!(put(sig.clone(), Vec::new()).await, Ok(true));
    assert_eq!(
        store
            .referrers("repo", &image.digest, None)
            .await
            .unwrap()
            .len(),
        2
    );
    let only = store
        .referrers("repo", &image.digest, Some("sig"))
        .await
        .unwrap();
    assert_eq!(
        (only.len(), only[0].digest.as_str(), only[0].size),
        (1, sig.digest.as_str(), 3)
    );
    assert!(
        store
            .referrers("other", &image.digest, None)
            .await
            .unwrap()
            .is_empty()
    );

    // A manifest is stored only if the repository holds every reference at its size.
    let mut unknown_blob = manifest("repo", "unknown blob", None, "x");
    unknown_blob.blob_references[0].digest = sha256(b"no");
    assert_eq!(
        put(unknown_blob, Vec::new()).await,
        Err(RefusedManifest::Unknown {
            kind: RefKind::Blob,
            digest: sha256(b"no")
        })
    );
    let mut wrong_size = manifest("repo", "wrong size", None, "x");
    wrong_size.blob_references[0].size = 3;
    assert_eq!(
        put(wrong_size, Vec::new()).await,
        Err(RefusedManifest::SizeMismatch {
            kind: RefKind::Blob,
            digest: blob.clone(),
            declared: 3,
            stored: LAYER_SIZE
        })
    );
    let elsewhere = manifest("other", "not linked there", None, "x");
    assert!(put(elsewhere, Vec::new()).await.is_err());
    let index = |content: &str, child: &NewManifest, size: u64| NewManifest {
        blob_references: Vec::new(),
        manifest_references: vec![ContentRef {
            digest: child.digest.clone(),
            size,
        }],
        ..manifest("repo", content, None, "index")
    };
    let image_size = image.content.len() as u64;
    assert_eq!(
        put(index("bad index", &image, image_size + 1), Vec::new()).await,
        Err(RefusedManifest::SizeMismatch {
            kind: RefKind::Manifest,
            digest: image.digest.clone(),
            declared: image_size + 1,
            stored: image_size
        })
    );
    let orphan = manifest("repo", "never pushed", None, "x");
    assert!(matches!(
        put(index("orphan index", &orphan, 12), Vec::new()).await,
        Err(RefusedManifest::Unknown {
            kind: RefKind::Manifest,
            ..
        })
    ));
    let list = index("index", &image, image_size);
    assert_eq!(put(list.clone(), vec!["list".into()]).await, Ok(true));

    // Nothing an image needs can be deleted from under it.
    let Removal::ReferencedBy(users) = store.unlink_blob("repo", &blob, 10_000).await.unwrap()
    else {
        panic!("a referenced blob was unlinked");
    };
    assert!(users.contains(&image.digest), "{users:?}");
    assert_eq!(
        store
            .delete_manifest("repo", &image.digest, 10_000)
            .await
            .unwrap(),
        Removal::ReferencedBy(vec![list.digest.clone()])
    );
    assert_eq!(
        store
            .delete_manifest("repo", &list.digest, 10_000)
            .await
            .unwrap(),
        Removal::Removed
    );

    assert!(store.delete_tag("repo", "C", 10_000).await.unwrap());
    assert!(!store.delete_tag("repo", "C", 10_000).await.unwrap());
    assert_eq!(
        store
            .delete_manifest("repo", &image.digest, 10_000)
            .await
            .unwrap(),
        Removal::Removed
    );
    assert_eq!(
        store
            .delete_manifest("repo", &image.digest, 10_000)
            .await
            .unwrap(),
        Removal::NotFound
    );
    assert_eq!(
        store
            .list_tags("repo", page(10, None))
            .await
            .unwrap()
            .unwrap(),
        ["a"]
    );

    // Concurrent pushes to one tag leave one consistent winner.
    let contenders: Vec<NewManifest> = (0..6)
        .map(|i| manifest("repo", &format!("contender {i}"), None, "x"))
        .collect();
    let pushes = contenders.iter().cloned().map(|m| {
        let store = store.clone();
        tokio::spawn(async move { store.put_manifest(&m, &["race".into()], true, 11_000).await })
    });
    for push in futures::future::join_all(pushes).await {
        assert_eq!(push.unwrap().unwrap(), Ok(true));
    }
    let winner = store
        .get_manifest("repo", ManifestKey::Tag("race"))
        .await
        .unwrap()
        .unwrap();
    assert!(contenders.iter().any(|m| m.digest == winner.digest));
}

async fn run_identity_suite(store: Arc<dyn IdentityStore>) {
    let user = |name: &str| User {
        name: name.into(),
        password_hash: "hash".into(),
        policy: None,
    };
    // The first user is created only while there are none, whoever races for it.
    let firsts = (0..16).map(|i| {
        let store = store.clone();
        let user = user(&format!("first-{i}"));
        tokio::spawn(async move { store.create_first_user(&user, 1).await.unwrap() })
    });
    let created = futures::future::join_all(firsts).await;
    assert_eq!(created.iter().filter(|c| *c.as_ref().unwrap()).count(), 1);
    assert_eq!(store.list_users().await.unwrap().len(), 1);
    assert!(!store.create_first_user(&user("later"), 2).await.unwrap());

    // Attempts are counted atomically: concurrent attempts each see their own count.
    let counts = (0..20).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.count_login_attempt("k", 1_000, 60_000).await.unwrap() })
    });
    let mut seen: Vec<u32> = futures::future::join_all(counts)
        .await
        .into_iter()
        .map(|window| window.unwrap().attempts)
        .collect();
    seen.sort();
    assert_eq!(seen, (1..=20).collect::<Vec<u32>>());
    store.forgive_login_attempt("k").await.unwrap();
    let window = store.count_login_attempt("k", 2_000, 60_000).await.unwrap();
    assert_eq!((window.attempts, window.started_at), (20, 1_000));
    // A window ends `window` after it started; the next attempt starts a new one.
    let window = store
        .count_login_attempt("k", 61_000, 60_000)
        .await
        .unwrap();
    assert_eq!((window.attempts, window.started_at), (1, 61_000));
    store
        .count_login_attempt("old", 1_000, 60_000)
        .await
        .unwrap();
    assert_eq!(store.purge_login_attempts(50_000).await.unwrap(), 1);
    let window = store
        .count_login_attempt("k", 62_000, 60_000)
        .await
        .unwrap();
    assert_eq!(window.attempts, 2);
}

/// What garbage collection needs of a metadata store: leases, unneeded links, collectable
/// blobs, and claims that commit or roll back.
async fn run_collection_suite(store: Arc<dyn MetadataStore>) {
    // One holder at a time until the lease expires; the holder may extend it.
    assert!(store.acquire_lease("gc", "a", 1_000, 2_000).await.unwrap());
    assert!(!store.acquire_lease("gc", "b", 1_500, 2_500).await.unwrap());
    assert!(store.acquire_lease("gc", "a", 1_500, 3_000).await.unwrap());
    assert!(!store.acquire_lease("gc", "b", 2_999, 4_000).await.unwrap());
    assert!(store.acquire_lease("gc", "b", 3_000, 4_000).await.unwrap());
    assert!(
        store
            .acquire_lease("lifecycle", "a", 3_000, 4_000)
            .await
            .unwrap()
    );

    let state = Sha256Hasher::default().save();
    store.create_upload("c1", "kept", &state, 1).await.unwrap();
    let part = UploadPart {
        offset: 0,
        size: 3,
        key: "k".into(),
    };
    store
        .append_upload_part("c1", &part, &state, 1)
        .await
        .unwrap();
    let blob = sha256(b"gc1");
    assert!(complete(&*store, "c1", &blob, 3, 10_000).await);
    // Linked at 10 000 and referenced by nothing: unneeded only for a cutoff after that.
    assert_eq!(store.sweep_links("kept", 10_000, false).await.unwrap(), 0);
    assert!(
        store
            .collectable_blobs(10_000, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.sweep_links("kept", 10_001, true).await.unwrap(), 1);
    let collectable = store.collectable_blobs(10_001, None, 10).await.unwrap();
    assert_eq!(collectable.len(), 1);
    assert_eq!(
        (collectable[0].digest.as_str(), collectable[0].size),
        (blob.as_str(), 3)
    );
    // Still linked: no claim.
    assert!(
        store
            .claim_unlinked_blob(&blob, 10_001)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.sweep_links("kept", 10_001, false).await.unwrap(), 1);
    assert_eq!(store.linked_blob("kept", &blob).await.unwrap(), None);
    // Too recent for the cutoff: no claim.
    assert!(
        store
            .claim_unlinked_blob(&blob, 10_000)
            .await
            .unwrap()
            .is_none()
    );
    // A claim dropped rolls back; a claim committed removes the row.
    drop(
        store
            .claim_unlinked_blob(&blob, 10_001)
            .await
            .unwrap()
            .unwrap(),
    );
    let recorded = store.recorded_blobs(None, 10).await.unwrap();
    assert!(recorded.iter().any(|b| b.digest == blob && b.links == 0));
    let held = store
        .claim_unlinked_blob(&blob, 10_001)
        .await
        .unwrap()
        .unwrap();
    held.commit().await.unwrap();
    let recorded = store.recorded_blobs(None, 10).await.unwrap();
    assert!(recorded.iter().all(|b| b.digest != blob));

    // An orphan is claimed only while no row records it; its provisional row goes with the
    // commit.
    let recorded_digest = store.recorded_blobs(None, 1).await.unwrap()[0]
        .digest
        .clone();
    assert!(
        store
            .claim_orphan(&recorded_digest, 1)
            .await
            .unwrap()
            .is_none()
    );
    let orphan = sha256(b"orphan");
    let held = store.claim_orphan(&orphan, 1).await.unwrap().unwrap();
    held.commit().await.unwrap();
    let recorded = store.recorded_blobs(None, 100).await.unwrap();
    assert!(recorded.iter().all(|b| b.digest != orphan));
}

/// Remotes: recorded, replaced by id and region, listed in order, deleted once.
/// Rules and their credentials; a manifest cached from an upstream is stored before its
/// references arrive, and its tag carries the time it was checked until a push takes it over.
async fn run_pull_through_suite(store: &dyn MetadataStore) {
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub";
    let rule = |prefix: &str, credential: Option<&str>| PullThroughRule {
        prefix: prefix.into(),
        upstream_url: "https://registry-1.docker.io".into(),
        credential_arn: credential.map(str::to_string),
        created_at: 5,
        updated_at: 5,
    };
    let login = UpstreamCredential {
        arn: arn.into(),
        username: "robot".into(),
        password: "secret".into(),
        created_at: 5,
    };
    let hub = rule("ptc-hub", Some(arn));
    assert!(
        store
            .create_pull_through_rule(&hub, Some(&login))
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_pull_through_rule(&rule("ptc-hub", None), None)
            .await
            .unwrap()
    );
    let quay = rule("ptc-quay", Some(arn));
    assert!(store.create_pull_through_rule(&quay, None).await.unwrap());
    let listed = store.list_pull_through_rules().await.unwrap();
    let ours: Vec<_> = listed
        .iter()
        .filter(|r| r.prefix.starts_with("ptc-"))
        .collect();
    assert_eq!(ours, [&hub, &quay]);
    assert_eq!(store.upstream_credential(arn).await.unwrap(), Some(login));

    // The credential stays while a rule names it.
    let changed = store
        .set_pull_through_credential("ptc-hub", None, 9)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((changed.credential_arn, changed.updated_at), (None, 9));
    assert!(store.upstream_credential(arn).await.unwrap().is_some());
    assert_eq!(
        store.delete_pull_through_rule("ptc-quay").await.unwrap(),
        Some(quay)
    );
    assert_eq!(store.upstream_credential(arn).await.unwrap(), None);
    assert_eq!(
        store.delete_pull_through_rule("ptc-quay").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .set_pull_through_credential("ptc-none", None, 9)
            .await
            .unwrap(),
        None
    );
    store
        .delete_pull_through_rule("ptc-hub")
        .await
        .unwrap()
        .unwrap();

    // Cached: stored although the repository holds none of its references.
    let cached = NewManifest {
        upstream_checked_at: Some(100),
        ..manifest("ptc-hub/nginx", "{\"cached\": 1}", None, "cached")
    };
    let tags = ["latest".to_string()];
    assert_eq!(
        store.put_manifest(&cached, &tags, true, 100).await.unwrap(),
        Ok(true)
    );
    async fn found(store: &dyn MetadataStore) -> wharf::metadata::StoredManifest {
        let latest = ManifestKey::Tag("latest");
        let found = store.get_manifest("ptc-hub/nginx", latest).await;
        found.unwrap().unwrap()
    }
    assert_eq!(found(store).await.upstream_checked_at, Some(100));
    let by_digest = ManifestKey::Digest(&cached.digest);
    let stored = store
        .get_manifest("ptc-hub/nginx", by_digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.upstream_checked_at, None);
    store
        .mark_tag_checked("ptc-hub/nginx", "latest", &cached.digest, 200)
        .await
        .unwrap();
    assert_eq!(found(store).await.upstream_checked_at, Some(200));
    // Not when the tag has moved meanwhile.
    store
        .mark_tag_checked("ptc-hub/nginx", "latest", &sha256(b"other"), 300)
        .await
        .unwrap();
    assert_eq!(found(store).await.upstream_checked_at, Some(200));

    // A push takes the tag over: it is no longer checked against the upstream.
    let pushed = NewManifest {
        blob_references: Vec::new(),
        ..manifest("ptc-hub/nginx", "{\"pushed\": 1}", None, "pushed")
    };
    assert_eq!(
        store.put_manifest(&pushed, &tags, true, 400).await.unwrap(),
        Ok(true)
    );
    let now_pushed = found(store).await;
    assert_eq!(
        (now_pushed.digest, now_pushed.upstream_checked_at),
        (pushed.digest.clone(), None)
    );
    store
        .mark_tag_checked("ptc-hub/nginx", "latest", &pushed.digest, 500)
        .await
        .unwrap();
    assert_eq!(found(store).await.upstream_checked_at, None);
}

async fn run_remote_suite(store: Arc<dyn RemoteStore>) {
    let remote = |registry_id: &str, region: &str, url: &str| RemoteRecord {
        registry_id: registry_id.into(),
        region: region.into(),
        url: url.into(),
        username: Some("robot".into()),
        password: Some("secret".into()),
        created_at: 7,
    };
    let first = remote("222222222222", "eu-west-1", "https://a.example");
    assert!(!store.put_remote(&first).await.unwrap());
    let other = remote("111111111111", "us-east-1", "http://b.example:5000");
    assert!(!store.put_remote(&other).await.unwrap());
    let moved = RemoteRecord {
        username: None,
        password: None,
        ..remote("222222222222", "eu-west-1", "https://c.example")
    };
    assert!(store.put_remote(&moved).await.unwrap());
    assert_eq!(
        store.list_remotes().await.unwrap(),
        [other.clone(), moved.clone()]
    );
    assert_eq!(
        store.get_remote("111111111111", "us-east-1").await.unwrap(),
        Some(other)
    );
    assert_eq!(
        store.get_remote("111111111111", "eu-west-1").await.unwrap(),
        None
    );
    assert!(
        store
            .delete_remote("222222222222", "eu-west-1")
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_remote("222222222222", "eu-west-1")
            .await
            .unwrap()
    );
    assert_eq!(store.list_remotes().await.unwrap().len(), 1);
}

/// Starts upload `id` and finishes it as `blob`, kept in the object `key`. Returns the storage
/// key of the blob's row.
async fn complete_kept(
    store: &dyn MetadataStore,
    id: &str,
    blob: &str,
    key: &str,
    relocate: bool,
) -> Option<String> {
    let state = Sha256Hasher::default().save();
    store
        .create_upload(id, "kept-objects", &state, 1)
        .await
        .unwrap();
    let finished = FinishedBlob {
        digest: blob,
        size: 7,
        storage_key: Some(key),
        relocate,
    };
    let held = store
        .complete_upload(id, 0, finished, true, 2)
        .await
        .unwrap()
        .expect("the upload finishes");
    let recorded = held.storage_key().map(str::to_string);
    held.commit().await.unwrap();
    recorded
}

/// Blobs kept in the objects their uploads staged: the row names the object, a later upload of
/// the same content keeps the first one's unless told its bytes are missing, and kept blobs
/// are walked in key order apart from those stored under their digests.
async fn run_storage_key_suite(store: Arc<dyn MetadataStore>) {
    let blob = sha256(b"kept blob");
    let first = "objects/u1/b";
    assert_eq!(
        complete_kept(&*store, "k1", &blob, first, false).await,
        Some(first.to_string())
    );
    let linked = store.linked_blob("kept-objects", &blob).await.unwrap();
    assert_eq!(linked.unwrap().storage_key.as_deref(), Some(first));
    assert!(store.records_key(first).await.unwrap());
    // Pushed again: the row keeps its object, and the caller learns which one it is.
    assert_eq!(
        complete_kept(&*store, "k2", &blob, "objects/u2/a", false).await,
        Some(first.to_string())
    );
    assert!(!store.records_key("objects/u2/a").await.unwrap());
    // Found missing and written again: the row moves to the new object.
    assert_eq!(
        complete_kept(&*store, "k3", &blob, "objects/u3/c", true).await,
        Some("objects/u3/c".to_string())
    );
    assert!(!store.records_key(first).await.unwrap());

    // Kept blobs walk in key order (bytewise: `-` before `/`), apart from the rest.
    let other = sha256(b"another kept blob");
    complete_kept(&*store, "k4", &other, "objects/u3-a/d", false).await;
    let keys = |page: Vec<BlobRecord>| -> Vec<String> {
        page.into_iter().filter_map(|b| b.storage_key).collect()
    };
    let walked = store.recorded_kept_blobs(None, 10).await.unwrap();
    assert_eq!(keys(walked), ["objects/u3-a/d", "objects/u3/c"]);
    let rest = store
        .recorded_kept_blobs(Some("objects/u3-a/d"), 10)
        .await
        .unwrap();
    assert_eq!(keys(rest), ["objects/u3/c"]);
    let under_digests = store.recorded_blobs(None, 100).await.unwrap();
    assert!(
        under_digests
            .iter()
            .all(|b| b.digest != blob && b.digest != other)
    );

    // A collection learns where the bytes it removes are.
    assert_eq!(
        store.sweep_links("kept-objects", 3, false).await.unwrap(),
        2
    );
    let collectable = store.collectable_blobs(3, None, 10).await.unwrap();
    assert!(
        collectable
            .iter()
            .any(|b| b.storage_key.as_deref() == Some("objects/u3/c"))
    );
    let held = store.claim_unlinked_blob(&blob, 3).await.unwrap().unwrap();
    assert_eq!(held.storage_key(), Some("objects/u3/c"));
    held.commit().await.unwrap();
    assert!(!store.records_key("objects/u3/c").await.unwrap());
}

/// The scan queue and the vulnerability database: a push queues a scan when asked to, one
/// worker at a time claims a scan, a scan requested again while one runs is not lost to the
/// older run's end, and an import's advisories stay unseen until published, when they replace
/// their source's.
async fn run_scan_suite(store: &dyn MetadataStore) {
    let pushed = |content: &str, scan_on_push| NewManifest {
        upstream_checked_at: Some(1),
        scan_on_push,
        ..manifest(
            "scans/app",
            content,
            None,
            "application/vnd.oci.image.config.v1+json",
        )
    };
    let queued = pushed("{\"scan\": 1}", ScanOnPush::Always);
    let unqueued = pushed("{\"scan\": 2}", ScanOnPush::IfRepositoryAsks);
    for manifest in [&queued, &unqueued] {
        assert_eq!(
            store.put_manifest(manifest, &[], true, 10).await.unwrap(),
            Ok(true)
        );
    }
    let status = async |digest: &str| {
        store
            .image_scan("scans/app", digest, true)
            .await
            .unwrap()
            .map(|scan| scan.status)
    };
    assert_eq!(status(&queued.digest).await.as_deref(), Some("IN_PROGRESS"));
    assert_eq!(
        status(&unqueued.digest).await,
        None,
        "the repository does not ask"
    );

    // Two workers at once: only one gets the scan, until its claim runs out.
    let first = store.claim_scans(20, 1_000, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].digest, queued.digest);
    assert!(store.claim_scans(30, 1_000, 10).await.unwrap().is_empty());
    let missing = store
        .claim_scan("scans/app", &queued.digest, 30, 1_000)
        .await;
    assert_eq!(missing.unwrap(), None);
    let expired = store.claim_scans(1_000, 2_000, 10).await.unwrap();
    assert_eq!(expired, first, "a dead worker's claim runs out");

    // Requested again while the first run works: that run's end is dropped, the new request
    // stays queued and is claimed next.
    let again = [queued.digest.clone()];
    assert_eq!(
        store
            .request_scans("scans/app", &again, 1_500)
            .await
            .unwrap(),
        1
    );
    let done = ScanResult {
        status: "COMPLETE".into(),
        description: "done".into(),
        distribution: Some("Debian".into()),
        source_updated_at: Some(5),
        findings: Some("[]".into()),
        severity_counts: Some("{}".into()),
    };
    store.finish_scan(&first[0], &done, 1_600).await.unwrap();
    assert_eq!(status(&queued.digest).await.as_deref(), Some("IN_PROGRESS"));
    let second = store
        .claim_scan("scans/app", &queued.digest, 1_700, 9_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.requested_at, 1_500);
    store.retry_scan(&second, 3_000).await.unwrap();
    assert!(
        store
            .claim_scans(2_000, 9_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "not before the retry"
    );
    let retried = store.claim_scans(3_000, 9_000, 10).await.unwrap();
    assert_eq!(retried[0].attempts, 1);
    store.finish_scan(&retried[0], &done, 3_100).await.unwrap();
    let scan = store
        .image_scan("scans/app", &queued.digest, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            scan.status.as_str(),
            scan.completed_at,
            scan.distribution.as_deref(),
            scan.findings.as_deref()
        ),
        ("COMPLETE", Some(3_100), Some("Debian"), Some("[]"))
    );
    assert_eq!(store.request_rescans(4_000).await.unwrap(), 1);
    assert_eq!(status(&queued.digest).await.as_deref(), Some("IN_PROGRESS"));

    // Advisories: a generation is invisible until published, then replaces its source's.
    let advisory = |id: &str, source: &str, package: &str| NewAdvisory {
        source: source.into(),
        id: id.into(),
        record: format!("{{\"id\": \"{id}\"}}"),
        packages: vec![package.into()],
    };
    let packages = ["openssl".to_string(), "zlib".to_string()];
    store
        .store_advisories(
            1,
            &[
                advisory("A-1", "Debian", "openssl"),
                advisory("A-2", "Debian", "zlib"),
            ],
        )
        .await
        .unwrap();
    assert!(
        store
            .advisories_naming("Debian", &packages)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .publish_advisories(1, &[("Debian".into(), 2)], 100)
        .await
        .unwrap();
    let mut named = store.advisories_naming("Debian", &packages).await.unwrap();
    named.sort();
    assert_eq!(named, ["{\"id\": \"A-1\"}", "{\"id\": \"A-2\"}"]);
    store
        .store_advisories(2, &[advisory("A-3", "Debian", "zlib")])
        .await
        .unwrap();
    store
        .store_advisories(2, &[advisory("B-1", "Alpine", "zlib")])
        .await
        .unwrap();
    assert_eq!(
        store
            .advisories_naming("Debian", &packages)
            .await
            .unwrap()
            .len(),
        2
    );
    store
        .publish_advisories(2, &[("Debian".into(), 1), ("Alpine".into(), 1)], 200)
        .await
        .unwrap();
    assert_eq!(
        store.advisories_naming("Debian", &packages).await.unwrap(),
        ["{\"id\": \"A-3\"}"]
    );
    let sources: Vec<(String, i64, u64)> = store
        .advisory_sources()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.source, s.imported_at, s.advisories))
        .collect();
    assert_eq!(
        sources,
        [("Alpine".into(), 200, 1), ("Debian".into(), 200, 1)]
    );
}

#[tokio::test]
async fn sqlite_metadata_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("meta.db").display());
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    run_metadata_suite(store.clone()).await;
    run_collection_suite(store.clone()).await;
    run_storage_key_suite(store.clone()).await;
    run_remote_suite(store.clone()).await;
    run_pull_through_suite(&*store).await;
    run_scan_suite(&*store).await;
    run_identity_suite(store.clone()).await;
    check_many_references(&*store).await;
}

#[tokio::test]
async fn postgres_metadata_store() {
    let Some(backends) = ProductionBackends::from_env() else {
        return;
    };
    let url = backends.database().await;
    // Several nodes start at once: migrations must not race.
    let starts = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { SqlStore::connect(&url).await })
    });
    for started in futures::future::join_all(starts).await {
        started.unwrap().expect("concurrent migration");
    }
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    run_metadata_suite(store.clone()).await;
    run_collection_suite(store.clone()).await;
    run_storage_key_suite(store.clone()).await;
    run_remote_suite(store.clone()).await;
    run_pull_through_suite(&*store).await;
    run_scan_suite(&*store).await;
    run_identity_suite(store.clone()).await;
    check_many_references(&*store).await;
}

#[tokio::test]
async fn s3_blob_downloads_redirect_to_presigned_urls_when_configured() {
    let Some(backends) = ProductionBackends::from_env() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = backends.config(dir.path()).await;
    config.s3.as_mut().unwrap().redirect = Some(std::time::Duration::from_secs(60));
    let app = crate::common::TestApp::spawn_with(move |c| *c = config).await;
    let digest = app.push_blob("redirect", b"fetched from S3").await;

    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_follow
        .get(app.url(&format!("/v2/redirect/blobs/{digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        crate::common::header(&response, "docker-content-digest"),
        digest
    );
    let location = crate::common::header(&response, "location");
    let fetched = reqwest::get(location).await.unwrap();
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), b"fetched from S3");
}

/// Polls Postgres until some session of `url`'s database waits for a row lock, or `task`
/// finishes (it did not wait: the caller's assertion on it then shows what happened).
async fn until_waiting_for_a_lock<T>(url: &str, task: &tokio::task::JoinHandle<T>) {
    use sqlx::Connection as _;
    let mut watcher = sqlx::PgConnection::connect(url).await.unwrap();
    for _ in 0..1000 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting > 0 || task.is_finished() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("nothing waited for a lock within 10 seconds");
}

/// On Postgres a push and a delete of something it references run on separate connections.
/// Each order is forced here by holding the first one's transaction open on a connection of
/// the test's own: the second must wait for it and then see what it did. (SQLite's one
/// connection runs one transaction at a time, so it has nothing to interleave.)
#[tokio::test]
async fn postgres_pushes_and_deletes_of_what_they_reference_never_interleave() {
    use sqlx::Connection as _;
    let Some(backends) = ProductionBackends::from_env() else {
        return;
    };
    let url = backends.database().await;
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    let blob = sha256(b"layer");
    let state = Sha256Hasher::default().save();
    store.create_upload("u", "repo", &state, 1).await.unwrap();
    let part = UploadPart {
        offset: 0,
        size: LAYER_SIZE,
        key: "k".into(),
    };
    store
        .append_upload_part("u", &part, &state, 1)
        .await
        .unwrap();
    assert!(complete(&*store, "u", &blob, LAYER_SIZE, 1).await);
    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();

    // A blob delete holds the link when the push arrives: the push waits, then is refused.
    let mut deleting = other.begin().await.unwrap();
    sqlx::query(
        "SELECT 1 FROM repository_blobs WHERE repository = 'repo' AND digest = $1 FOR UPDATE",
    )
    .bind(&blob)
    .fetch_one(&mut *deleting)
    .await
    .unwrap();
    let image = manifest("repo", "image", None, "config");
    let push = tokio::spawn({
        let (store, image) = (store.clone(), image.clone());
        async move { store.put_manifest(&image, &[], true, 2).await.unwrap() }
    });
    until_waiting_for_a_lock(&url, &push).await;
    sqlx::query("DELETE FROM repository_blobs WHERE repository = 'repo' AND digest = $1")
        .bind(&blob)
        .execute(&mut *deleting)
        .await
        .unwrap();
    deleting.commit().await.unwrap();
    assert_eq!(
        push.await.unwrap(),
        Err(RefusedManifest::Unknown {
            kind: RefKind::Blob,
            digest: blob.clone()
        })
    );

    // A push holds the link when the blob delete arrives: the delete waits, then is refused.
    sqlx::query(
        "INSERT INTO repository_blobs (repository, digest, linked_at) VALUES ('repo', $1, 3)",
    )
    .bind(&blob)
    .execute(&mut other)
    .await
    .unwrap();
    let mut pushing = other.begin().await.unwrap();
    sqlx::query(
        "SELECT 1 FROM repository_blobs WHERE repository = 'repo' AND digest = $1 FOR SHARE",
    )
    .bind(&blob)
    .fetch_one(&mut *pushing)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO manifests (repository, digest, media_type, content, size, total_size, pushed_at) \
         VALUES ('repo', $1, 'application/vnd.oci.image.manifest.v1+json', $2, 5, 9, 3)",
    )
    .bind(&image.digest)
    .bind(image.content.clone())
    .execute(&mut *pushing)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO manifest_references (repository, manifest, target, kind) \
         VALUES ('repo', $1, $2, 'blob')",
    )
    .bind(&image.digest)
    .bind(&blob)
    .execute(&mut *pushing)
    .await
    .unwrap();
    let unlink = tokio::spawn({
        let (store, blob) = (store.clone(), blob.clone());
        async move { store.unlink_blob("repo", &blob, 4).await.unwrap() }
    });
    until_waiting_for_a_lock(&url, &unlink).await;
    pushing.commit().await.unwrap();
    assert_eq!(
        unlink.await.unwrap(),
        Removal::ReferencedBy(vec![image.digest.clone()])
    );

    // An index push holds its child when the child's delete arrives: likewise.
    let mut pushing = other.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM manifests WHERE repository = 'repo' AND digest = $1 FOR SHARE")
        .bind(&image.digest)
        .fetch_one(&mut *pushing)
        .await
        .unwrap();
    let index = sha256(b"index");
    sqlx::query(
        "INSERT INTO manifests (repository, digest, media_type, content, size, total_size, pushed_at) \
         VALUES ('repo', $1, 'application/vnd.oci.image.index.v1+json', $2, 5, 10, 5)",
    )
    .bind(&index)
    .bind(b"index".to_vec())
    .execute(&mut *pushing)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO manifest_references (repository, manifest, target, kind) \
         VALUES ('repo', $1, $2, 'manifest')",
    )
    .bind(&index)
    .bind(&image.digest)
    .execute(&mut *pushing)
    .await
    .unwrap();
    let delete = tokio::spawn({
        let (store, digest) = (store.clone(), image.digest.clone());
        async move { store.delete_manifest("repo", &digest, 6).await.unwrap() }
    });
    until_waiting_for_a_lock(&url, &delete).await;
    pushing.commit().await.unwrap();
    assert_eq!(
        delete.await.unwrap(),
        Removal::ReferencedBy(vec![index.clone()])
    );

    // A push of a manifest being deleted waits, then stores it again with its tag.
    sqlx::query("DELETE FROM manifests WHERE repository = 'repo' AND digest = $1")
        .bind(&index)
        .execute(&mut other)
        .await
        .unwrap();
    let mut deleting = other.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM manifests WHERE repository = 'repo' AND digest = $1 FOR UPDATE")
        .bind(&image.digest)
        .fetch_one(&mut *deleting)
        .await
        .unwrap();
    let push = tokio::spawn({
        let (store, image) = (store.clone(), image.clone());
        async move {
            store
                .put_manifest(&image, &["again".into()], true, 7)
                .await
                .unwrap()
        }
    });
    until_waiting_for_a_lock(&url, &push).await;
    sqlx::query("DELETE FROM manifests WHERE repository = 'repo' AND digest = $1")
        .bind(&image.digest)
        .execute(&mut *deleting)
        .await
        .unwrap();
    deleting.commit().await.unwrap();
    assert_eq!(push.await.unwrap(), Ok(true));
    let tagged = store
        .get_manifest("repo", ManifestKey::Tag("again"))
        .await
        .unwrap();
    assert_eq!(tagged.map(|m| m.digest), Some(image.digest.clone()));

    // Of two pushes creating one protected tag, the second waits for the first, then is
    // refused rather than moving the tag.
    let rival = NewManifest {
        blob_references: Vec::new(),
        ..manifest("repo", "rival", None, "config")
    };
    store
        .put_manifest(&rival, &[], true, 8)
        .await
        .unwrap()
        .unwrap();
    let immutable = store.set_tag_mutability("repo", TagMutability::Immutable, &[]);
    assert!(immutable.await.unwrap());
    let mut tagging = other.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO tags (repository, name, manifest, updated_at) VALUES ('repo', 'v9', $1, 9)",
    )
    .bind(&image.digest)
    .execute(&mut *tagging)
    .await
    .unwrap();
    let push = tokio::spawn({
        let (store, rival) = (store.clone(), rival.clone());
        let tags = vec!["v9".to_string()];
        async move { store.put_manifest(&rival, &tags, true, 10).await.unwrap() }
    });
    until_waiting_for_a_lock(&url, &push).await;
    tagging.commit().await.unwrap();
    assert_eq!(
        push.await.unwrap(),
        Err(RefusedManifest::TagProtected { tag: "v9".into() })
    );
    let v9 = store.get_manifest("repo", ManifestKey::Tag("v9")).await;
    assert_eq!(v9.unwrap().map(|m| m.digest), Some(image.digest));

    // A repository delete holds the repository when a push into it arrives: the push waits at
    // the repository (taken before anything it references), then is refused, rather than
    // holding a blob link the delete's cascade needs while waiting for the repository
    // (a deadlock, which Postgres would break by failing one of them).
    let doomed = NewManifest {
        repository: "doomed".into(),
        ..manifest("doomed", "doomed image", None, "config")
    };
    assert!(
        store
            .mount_blob("doomed", "repo", &blob, true, 12)
            .await
            .unwrap()
    );
    let mut deleting = other.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM repositories WHERE name = 'doomed' FOR UPDATE")
        .fetch_one(&mut *deleting)
        .await
        .unwrap();
    let push = tokio::spawn({
        let (store, doomed) = (store.clone(), doomed.clone());
        async move { store.put_manifest(&doomed, &[], true, 13).await }
    });
    until_waiting_for_a_lock(&url, &push).await;
    sqlx::query("DELETE FROM repositories WHERE name = 'doomed'")
        .execute(&mut *deleting)
        .await
        .unwrap();
    deleting.commit().await.unwrap();
    // Refused either way: the repository is gone, or was created afresh without the blob.
    let refused = push.await.unwrap().unwrap();
    assert!(
        matches!(
            refused,
            Err(RefusedManifest::RepositoryUnknown | RefusedManifest::Unknown { .. })
        ),
        "{refused:?}"
    );
    assert!(store.get_repository("doomed").await.unwrap().is_none());
}

/// On Postgres, finishing an upload of a blob a collection is removing waits for the claim,
/// then records the blob anew (and the registry, checking the bytes, writes them again).
#[tokio::test]
async fn postgres_an_upload_waits_for_a_claim_on_its_blob() {
    let Some(backends) = ProductionBackends::from_env() else {
        return;
    };
    let url = backends.database().await;
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    let state = Sha256Hasher::default().save();
    let part = UploadPart {
        offset: 0,
        size: 4,
        key: "k".into(),
    };
    let blob = sha256(b"claimed");
    for id in ["first", "second"] {
        store.create_upload(id, "repo", &state, 1).await.unwrap();
        store
            .append_upload_part(id, &part, &state, 1)
            .await
            .unwrap();
    }
    assert!(complete(&*store, "first", &blob, 4, 1).await);
    assert_eq!(store.sweep_links("repo", 2, false).await.unwrap(), 1);

    let claim = store.claim_unlinked_blob(&blob, 2).await.unwrap().unwrap();
    let upload = tokio::spawn({
        let store = store.clone();
        let blob = blob.clone();
        async move { complete(&*store, "second", &blob, 4, 3).await }
    });
    until_waiting_for_a_lock(&url, &upload).await;
    assert!(!upload.is_finished(), "the upload went ahead of the claim");
    claim.commit().await.unwrap();
    assert!(upload.await.unwrap());
    let linked = store.linked_blob("repo", &blob).await.unwrap();
    assert_eq!(
        linked,
        Some(LinkedBlob {
            size: 4,
            storage_key: None,
            linked_at: 3
        })
    );
    let recorded = store.recorded_blobs(None, 10).await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!((recorded[0].links, recorded[0].size), (1, 4));
}

/// On Postgres a delete of an image marks its blobs' links (for the collection's grace
/// period) before it locks the manifest, and in digest order: the order a push takes them in.
/// A push of the same image holding the first link can still take the second and the
/// manifest, and the delete waits for it, instead of each waiting for the other.
#[tokio::test]
async fn postgres_a_delete_takes_blob_links_in_the_order_a_push_does() {
    use sqlx::Connection as _;
    let Some(backends) = ProductionBackends::from_env() else {
        return;
    };
    let url = backends.database().await;
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    let state = Sha256Hasher::default().save();
    let mut blobs = vec![sha256(b"first layer"), sha256(b"second layer")];
    blobs.sort();
    for (id, blob) in ["u1", "u2"].iter().zip(&blobs) {
        store.create_upload(id, "repo", &state, 1).await.unwrap();
        let part = UploadPart {
            offset: 0,
            size: LAYER_SIZE,
            key: "k".into(),
        };
        store
            .append_upload_part(id, &part, &state, 1)
            .await
            .unwrap();
        assert!(complete(&*store, id, blob, LAYER_SIZE, 1).await);
    }
    let image = NewManifest {
        blob_references: blobs
            .iter()
            .rev()
            .map(|digest| ContentRef {
                digest: digest.clone(),
                size: LAYER_SIZE,
            })
            .collect(),
        ..manifest("repo", "two layers", None, "image")
    };
    let pushed = store.put_manifest(&image, &["v1".into()], true, 2).await;
    assert_eq!(pushed.unwrap(), Ok(true));

    // The same image pushed again has checked its first reference when the delete arrives.
    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut pushing = other.begin().await.unwrap();
    let lock_link = |digest: &str| {
        sqlx::query(
            "SELECT 1 FROM repository_blobs WHERE repository = 'repo' AND digest = $1 FOR SHARE",
        )
        .bind(digest.to_string())
    };
    lock_link(&blobs[0]).fetch_one(&mut *pushing).await.unwrap();
    let delete = tokio::spawn({
        let (store, digest) = (store.clone(), image.digest.clone());
        async move { store.delete_manifest("repo", &digest, 3).await }
    });
    until_waiting_for_a_lock(&url, &delete).await;
    let five_seconds = std::time::Duration::from_secs(5);
    tokio::time::timeout(five_seconds, lock_link(&blobs[1]).fetch_one(&mut *pushing))
        .await
        .expect("the push waited for the delete, which waits for the push")
        .expect("the push was chosen as a deadlock victim");
    let lock_manifest =
        sqlx::query("SELECT 1 FROM manifests WHERE repository = 'repo' AND digest = $1 FOR SHARE")
            .bind(&image.digest);
    tokio::time::timeout(five_seconds, lock_manifest.fetch_one(&mut *pushing))
        .await
        .expect("the push waited for the delete, which waits for the push")
        .expect("the push was chosen as a deadlock victim");
    pushing.commit().await.unwrap();
    assert_eq!(delete.await.unwrap().unwrap(), Removal::Removed);

    // The other way round: a delete has locked the first link when the push arrives, whose
    // manifest lists the layers in the other order. The push checks the first link first
    // and waits there, holding nothing the delete needs next.
    let mut deleting = other.begin().await.unwrap();
    let lock_link = |digest: &str| {
        sqlx::query(
            "SELECT 1 FROM repository_blobs WHERE repository = 'repo' AND digest = $1 \
             FOR UPDATE",
        )
        .bind(digest.to_string())
    };
    lock_link(&blobs[0])
        .fetch_one(&mut *deleting)
        .await
        .unwrap();
    let push = tokio::spawn({
        let (store, image) = (store.clone(), image.clone());
        async move { store.put_manifest(&image, &["v2".into()], true, 4).await }
    });
    until_waiting_for_a_lock(&url, &push).await;
    tokio::time::timeout(five_seconds, lock_link(&blobs[1]).fetch_one(&mut *deleting))
        .await
        .expect("the delete waited for the push, which waits for the delete")
        .expect("the delete was chosen as a deadlock victim");
    deleting.commit().await.unwrap();
    assert_eq!(push.await.unwrap().unwrap(), Ok(true));
}
