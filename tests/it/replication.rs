//! Replication to remotes, with real Wharf servers as destinations: one with auth on (the
//! Docker token flow), one without. The queue is worked by calling the job's run directly,
//! except where the background job itself is under test.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wharf::admin::NewRemote;
use wharf::oci::Digest;
use wharf::registry::ReplicationConfiguration;
use wharf::remote::Credentials;

use wharf::metadata::ContentStore;
use wharf::storage::BlobLocation;

use crate::common::{
    ADMIN_PASSWORD, OCI_INDEX, TestApp, auth_on, basic, closed_port, header, sha256,
};

const SECURE: (&str, &str) = ("111111111111", "eu-west-1");
const PLAIN: (&str, &str) = ("222222222222", "us-east-1");

/// Makes `destination` a remote of `source` named `name`, with the admin's credentials if it
/// has auth on.
async fn add_remote(source: &TestApp, name: (&str, &str), url: &str, login: bool) {
    let credentials = login.then(|| Credentials {
        username: "admin".into(),
        password: ADMIN_PASSWORD.into(),
    });
    let remote = NewRemote {
        registry_id: name.0.into(),
        region: name.1.into(),
        url: url.into(),
        credentials,
        check: false,
    };
    let key = source.state.registry.settings().secrets_key.clone();
    wharf::admin::add_remote(&*source.store().await, key.as_deref(), remote)
        .await
        .unwrap();
}

async fn configure(source: &TestApp, configuration: Value) -> Result<(), String> {
    let configuration: ReplicationConfiguration = serde_json::from_value(configuration).unwrap();
    source
        .state
        .registry
        .put_replication_configuration(&configuration)
        .await
        .map_err(|e| e.to_string())
}

async fn work_queue(source: &TestApp) -> (u64, u64) {
    source.state.registry.replicate_due().await.unwrap()
}

/// What `app` answers for `repo:reference`, as the admin: the manifest's digest, if any.
async fn manifest_at(app: &TestApp, repo: &str, reference: &str) -> Option<String> {
    let response = app
        .request(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
        .header("authorization", basic("admin", ADMIN_PASSWORD))
        .header(
            "accept",
            format!("{OCI_INDEX}, application/vnd.oci.image.manifest.v1+json"),
        )
        .send()
        .await
        .unwrap();
    match response.status() {
        StatusCode::OK => Some(header(&response, "docker-content-digest")),
        StatusCode::NOT_FOUND => None,
        other => panic!("GET {repo}:{reference}: {other}"),
    }
}

async fn blob_at(app: &TestApp, repo: &str, digest: &str) -> Vec<u8> {
    let response = app
        .request(Method::GET, &format!("/v2/{repo}/blobs/{digest}"))
        .header("authorization", basic("admin", ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{repo}@{digest}");
    response.bytes().await.unwrap().to_vec()
}

async fn statuses(source: &TestApp, repo: &str, digest: &str) -> Vec<(String, String)> {
    let digest: Digest = digest.parse().unwrap();
    let statuses = source
        .state
        .registry
        .replication_statuses(repo, &digest)
        .await
        .unwrap();
    statuses
        .into_iter()
        .map(|s| (s.destination.registry_id, s.status))
        .collect()
}

#[tokio::test]
async fn pushes_into_matching_repositories_are_copied_with_their_tags() {
    let secure = TestApp::spawn_with(auth_on).await;
    let plain = TestApp::spawn().await;
    let source = TestApp::spawn().await;
    add_remote(&source, SECURE, &secure.url(""), true).await;
    add_remote(&source, PLAIN, &plain.url(""), false).await;
    let rules = json!({"rules": [
        {"destinations": [{"registryId": SECURE.0, "region": SECURE.1}],
         "repositoryFilters": [{"filter": "prod/", "filterType": "PREFIX_MATCH"}]},
        {"destinations": [{"registryId": PLAIN.0, "region": PLAIN.1}],
         "repositoryFilters": [{"filter": "prod/app", "filterType": "PREFIX_MATCH"}]},
    ]});
    configure(&source, rules.clone()).await.unwrap();

    let (_, digest, layer) = source.push_image("prod/app", "v1").await;
    let (_, elsewhere, _) = source.push_image("prod/web", "v1").await;
    source.push_image("dev/app", "v1").await;
    assert_eq!(work_queue(&source).await, (3, 0));
    let copies = crate::common::audited(&source, "ReplicateImage").await;
    assert_eq!(copies.len(), 3, "{copies:#?}");
    assert!(copies.iter().all(|r| {
        r.request_parameters
            .as_deref()
            .unwrap()
            .contains("\"SUCCESS\"")
    }));
    for destination in [&secure, &plain] {
        assert_eq!(
            manifest_at(destination, "prod/app", "v1").await,
            Some(digest.clone())
        );
        let layer_digest = crate::common::sha256(&layer);
        assert_eq!(blob_at(destination, "prod/app", &layer_digest).await, layer);
        assert_eq!(manifest_at(destination, "dev/app", "v1").await, None);
    }
    assert_eq!(
        manifest_at(&secure, "prod/web", "v1").await,
        Some(elsewhere)
    );
    assert_eq!(manifest_at(&plain, "prod/web", "v1").await, None);
    assert_eq!(
        statuses(&source, "prod/app", &digest).await,
        [
            (SECURE.0.to_string(), "COMPLETE".to_string()),
            (PLAIN.0.to_string(), "COMPLETE".to_string())
        ]
    );
    assert!(statuses(&source, "dev/app", &digest).await.is_empty());

    // A tag moved to a new image moves at the destinations; the old image stays there.
    let (_, moved, _) = source.push_image("prod/app", "v1").await;
    assert_eq!(work_queue(&source).await, (2, 0));
    assert_eq!(manifest_at(&secure, "prod/app", "v1").await, Some(moved));
    assert_eq!(
        manifest_at(&secure, "prod/app", &digest).await,
        Some(digest.clone())
    );
    // Nothing changed, nothing queued.
    assert_eq!(work_queue(&source).await, (0, 0));

    // An index whose images were pushed before replication was set up: they go first, then
    // the index under its tag.
    configure(&source, json!({"rules": []})).await.unwrap();
    let (amd_manifest, amd, _) = source.push_image("prod/multi", "amd").await;
    let (arm_manifest, arm, _) = source.push_image("prod/multi", "arm").await;
    configure(&source, rules).await.unwrap();
    let size = |manifest: &Value| serde_json::to_vec(manifest).unwrap().len();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd,
             "size": size(&amd_manifest), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm,
             "size": size(&arm_manifest), "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    });
    let response = source.put_manifest("prod/multi", "latest", &index).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let index_digest = header(&response, "docker-content-digest");
    assert_eq!(
        work_queue(&source).await,
        (1, 0),
        "prod/multi goes to one destination"
    );
    assert_eq!(
        manifest_at(&secure, "prod/multi", "latest").await,
        Some(index_digest)
    );
    assert_eq!(manifest_at(&secure, "prod/multi", &arm).await, Some(arm));
}

#[tokio::test]
async fn a_destination_that_is_down_is_retried_and_given_up_on_in_the_end() {
    let source = TestApp::spawn().await;
    let closed = closed_port();
    add_remote(&source, PLAIN, &closed, false).await;
    let rules = json!({"rules": [{"destinations": [{"registryId": PLAIN.0, "region": PLAIN.1}]}]});
    configure(&source, rules).await.unwrap();
    let (_, digest, _) = source.push_image("team/app", "v1").await;

    assert_eq!(work_queue(&source).await, (0, 1));
    assert_eq!(
        statuses(&source, "team/app", &digest).await,
        [(PLAIN.0.to_string(), "IN_PROGRESS".to_string())]
    );
    // Not due again until its backoff has passed.
    assert_eq!(work_queue(&source).await, (0, 0));

    // The destination comes back (at a new address); once due, the copy is made.
    let plain = TestApp::spawn().await;
    add_remote(&source, PLAIN, &plain.url(""), false).await;
    source.sql("UPDATE replications SET next_attempt = 0").await;
    assert_eq!(work_queue(&source).await, (1, 0));
    assert_eq!(
        manifest_at(&plain, "team/app", "v1").await,
        Some(digest.clone())
    );
    assert_eq!(
        statuses(&source, "team/app", &digest).await,
        [(PLAIN.0.to_string(), "COMPLETE".to_string())]
    );

    // Down for good: after the last attempt the copy is given up on, with the reason.
    add_remote(&source, PLAIN, &closed, false).await;
    let (_, lost, _) = source.push_image("team/app", "v2").await;
    source
        .sql("UPDATE replications SET attempts = 11 WHERE status = 'IN_PROGRESS'")
        .await;
    assert_eq!(work_queue(&source).await, (0, 1));
    let digest: Digest = lost.parse().unwrap();
    let given_up = source
        .state
        .registry
        .replication_statuses("team/app", &digest)
        .await
        .unwrap();
    assert_eq!(given_up[0].status, "FAILED");
    assert!(
        given_up[0]
            .failure
            .as_deref()
            .is_some_and(|f| f.contains("unavailable")),
        "{given_up:?}"
    );
}

#[tokio::test]
async fn destinations_must_be_known_remotes_and_filters_prefixes() {
    let source = TestApp::spawn().await;
    let unknown =
        json!({"rules": [{"destinations": [{"registryId": PLAIN.0, "region": PLAIN.1}]}]});
    let refused = configure(&source, unknown).await.unwrap_err();
    assert!(refused.contains("not a known remote"), "{refused}");
    add_remote(&source, PLAIN, "http://127.0.0.1:9", false).await;
    let wildcard = json!({"rules": [{
        "destinations": [{"registryId": PLAIN.0, "region": PLAIN.1}],
        "repositoryFilters": [{"filter": "prod/*", "filterType": "WILDCARD"}]}]});
    let refused = configure(&source, wildcard).await.unwrap_err();
    assert!(refused.contains("PREFIX_MATCH"), "{refused}");
    let empty = json!({"rules": [{"destinations": []}]});
    assert!(configure(&source, empty).await.is_err());
    let none = json!({"rules": []});
    configure(&source, none).await.unwrap();
}

/// The background job, as a server runs it: the time from push to visible at the destination.
#[tokio::test]
async fn a_server_replicates_on_its_own() {
    let plain = TestApp::spawn().await;
    let source = TestApp::spawn_with(|config| {
        config.replication_interval = std::time::Duration::from_secs(1);
    })
    .await;
    add_remote(&source, PLAIN, &plain.url(""), false).await;
    let rules = json!({"rules": [{"destinations": [{"registryId": PLAIN.0, "region": PLAIN.1}]}]});
    configure(&source, rules).await.unwrap();
    let started = std::time::Instant::now();
    let (_, digest, _) = source.push_image("auto/app", "v1").await;
    while manifest_at(&plain, "auto/app", "v1").await.as_deref() != Some(digest.as_str()) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "not replicated after 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    eprintln!("replicated in {:?} (push to visible)", started.elapsed());
}

#[tokio::test]
async fn the_ecr_api_sets_and_describes_replication() {
    let plain = TestApp::spawn().await;
    let source = TestApp::spawn().await;
    let configuration = json!({"rules": [{
        "destinations": [{"region": PLAIN.1, "registryId": PLAIN.0}],
        "repositoryFilters": [{"filter": "team", "filterType": "PREFIX_MATCH"}]}]});
    let put = json!({"replicationConfiguration": configuration});
    let refused = source.ecr("PutReplicationConfiguration", put.clone()).await;
    let refused = refused.error("InvalidParameterException");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("not a known remote")
    );
    add_remote(&source, PLAIN, &plain.url(""), false).await;
    let answered = source.ecr("PutReplicationConfiguration", put).await.ok();
    assert_eq!(answered["replicationConfiguration"], configuration);
    let described = source.ecr("DescribeRegistry", json!({})).await.ok();
    assert_eq!(described["replicationConfiguration"], configuration);
    let with_deletes = json!({"replicationConfiguration": {"rules": [{
        "destinations": [{"region": PLAIN.1, "registryId": PLAIN.0}],
        "deleteReplication": {"enabled": true}}]}});
    let refused = source
        .ecr("PutReplicationConfiguration", with_deletes)
        .await;
    refused.error("InvalidParameterException");

    let (_, digest, _) = source.push_image("team/app", "v1").await;
    let asked = json!({"repositoryName": "team/app", "imageId": {"imageTag": "v1"}});
    let status = source
        .ecr("DescribeImageReplicationStatus", asked.clone())
        .await
        .ok();
    let expected =
        |status: &str| json!([{"region": PLAIN.1, "registryId": PLAIN.0, "status": status}]);
    assert_eq!(status["replicationStatuses"], expected("IN_PROGRESS"));
    assert_eq!(status["imageId"]["imageDigest"], digest.as_str());
    work_queue(&source).await;
    let status = source
        .ecr("DescribeImageReplicationStatus", asked)
        .await
        .ok();
    assert_eq!(status["replicationStatuses"], expected("COMPLETE"));

    let absent = json!({"repositoryName": "team/app", "imageId": {"imageTag": "absent"}});
    let missing = source.ecr("DescribeImageReplicationStatus", absent).await;
    missing.error("ImageNotFoundException");
    let nowhere = json!({"repositoryName": "no/such", "imageId": {"imageTag": "v1"}});
    let missing = source.ecr("DescribeImageReplicationStatus", nowhere).await;
    missing.error("RepositoryNotFoundException");
}

#[tokio::test]
async fn a_backfill_queues_what_was_pushed_before_the_rules_once() {
    let plain = TestApp::spawn().await;
    let source = TestApp::spawn().await;
    let (_, old, _) = source.push_image("prod/old", "v1").await;
    let (_, untagged, _) = source.push_image("prod/old", "v2").await;
    let untag = source
        .request(Method::DELETE, "/v2/prod/old/manifests/v2")
        .send()
        .await
        .unwrap();
    assert!(untag.status().is_success(), "{}", untag.status());
    let (_, other, _) = source.push_image("dev/old", "v1").await;
    add_remote(&source, PLAIN, &plain.url(""), false).await;
    let rules = json!({"rules": [{"destinations": [{"registryId": PLAIN.0, "region": PLAIN.1}]}]});
    configure(&source, rules).await.unwrap();
    assert_eq!(work_queue(&source).await, (0, 0), "rules do not reach back");

    let registry = &source.state.registry;
    let done = registry
        .backfill_replication(Some("prod/"), &|_| {})
        .await
        .unwrap();
    // The tagged image under its tag, the untagged one by digest.
    assert_eq!(
        (done.repositories, done.images, done.queued),
        (1, 2, 2),
        "{done:?}"
    );
    assert_eq!(work_queue(&source).await, (2, 0));
    assert_eq!(manifest_at(&plain, "prod/old", "v1").await, Some(old));
    let by_digest = manifest_at(&plain, "prod/old", &untagged).await;
    assert_eq!(by_digest.as_deref(), Some(untagged.as_str()));
    assert_eq!(manifest_at(&plain, "prod/old", "v2").await, None);
    assert_eq!(manifest_at(&plain, "dev/old", "v1").await, None);

    // Everything: what was copied is not queued again.
    let done = registry.backfill_replication(None, &|_| {}).await.unwrap();
    assert_eq!((done.repositories, done.queued), (2, 1), "{done:?}");
    assert_eq!(work_queue(&source).await, (1, 0));
    assert_eq!(manifest_at(&plain, "dev/old", "v1").await, Some(other));
}

#[tokio::test]
async fn the_queue_outlives_a_restart() {
    let plain = TestApp::spawn().await;
    let mut source = TestApp::spawn().await;
    add_remote(&source, PLAIN, &plain.url(""), false).await;
    let rules = json!({"rules": [{"destinations": [{"registryId": PLAIN.0, "region": PLAIN.1}]}]});
    configure(&source, rules).await.unwrap();
    let (_, digest, _) = source.push_image("team/app", "v1").await;
    source.restart().await;
    assert_eq!(work_queue(&source).await, (1, 0));
    assert_eq!(manifest_at(&plain, "team/app", "v1").await, Some(digest));
}

/// A copy retried after its tag moved on sends its image by digest and leaves the tag where
/// the later push put it.
#[tokio::test]
async fn a_late_retry_never_moves_a_tag_back() {
    let source = TestApp::spawn().await;
    let closed = closed_port();
    add_remote(&source, PLAIN, &closed, false).await;
    let rules = json!({"rules": [{"destinations": [{"registryId": PLAIN.0, "region": PLAIN.1}]}]});
    configure(&source, rules).await.unwrap();
    let (_, first, _) = source.push_image("team/app", "v1").await;
    assert_eq!(work_queue(&source).await, (0, 1));

    let plain = TestApp::spawn().await;
    add_remote(&source, PLAIN, &plain.url(""), false).await;
    let (_, second, _) = source.push_image("team/app", "v1").await;
    assert_eq!(work_queue(&source).await, (1, 0));
    source.sql("UPDATE replications SET next_attempt = 0").await;
    assert_eq!(work_queue(&source).await, (1, 0));
    assert_eq!(manifest_at(&plain, "team/app", "v1").await, Some(second));
    assert_eq!(manifest_at(&plain, "team/app", &first).await, Some(first));
}

#[tokio::test]
async fn a_blob_the_destination_already_holds_is_mounted_there_not_sent_again() {
    let secure = TestApp::spawn_with(auth_on).await;
    let source = TestApp::spawn().await;
    add_remote(&source, SECURE, &secure.url(""), true).await;
    let rules =
        json!({"rules": [{"destinations": [{"registryId": SECURE.0, "region": SECURE.1}]}]});
    configure(&source, rules).await.unwrap();
    let (manifest, digest, layer) = source.push_image("team/one", "v1").await;
    assert_eq!(work_queue(&source).await, (1, 0));

    // The same image in a second repository, whose bytes the source then loses: only a mount
    // at the destination can copy it.
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    source.push_blob("team/two", &layer).await;
    source.push_blob("team/two", config).await;
    let response = source.put_manifest("team/two", "v1", &manifest).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let store = source.store().await;
    let blobs = source.blob_store().await;
    for content in [&layer[..], &config[..]] {
        let blob = sha256(content);
        let linked = store.linked_blob("team/two", &blob).await.unwrap().unwrap();
        let digest: Digest = blob.parse().unwrap();
        let location = BlobLocation {
            digest: &digest,
            key: linked.storage_key.as_deref(),
        };
        blobs.delete(location).await.unwrap();
    }
    assert_eq!(work_queue(&source).await, (1, 0));
    assert_eq!(manifest_at(&secure, "team/two", "v1").await, Some(digest));
    assert_eq!(blob_at(&secure, "team/two", &sha256(&layer)).await, layer);
}
