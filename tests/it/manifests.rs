//! Manifest push, pull, validation, tags and deletion.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{
    JsonBody, LAYER, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, TestApp, assert_error, header, sha256,
};

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[tokio::test]
async fn manifest_reads_back_by_tag_and_digest() {
    let app = TestApp::spawn().await;
    let (manifest, digest, _) = app.push_image("img", "v1").await;
    let bytes = serde_json::to_vec(&manifest).unwrap();
    assert_eq!(digest, sha256(&bytes));
    for reference in ["v1", digest.as_str()] {
        let path = format!("/v2/img/manifests/{reference}");
        let get = app
            .get(&path)
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), StatusCode::OK);
        assert_eq!(header(&get, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&get, "docker-content-digest"), digest);
        assert_eq!(get.bytes().await.unwrap(), bytes);
        let head = app.request(Method::HEAD, &path).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(header(&head, "content-length"), bytes.len().to_string());
        assert_eq!(header(&head, "docker-content-digest"), digest);
    }
}

#[tokio::test]
async fn put_answers_with_location_and_digest() {
    let app = TestApp::spawn().await;
    let config = app.push_blob("loc", b"{}").await;
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_EMPTY, "digest": config, "size": 2}, "layers": []});
    let response = app.put_manifest("loc", "latest", &manifest).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let digest = sha256(&serde_json::to_vec(&manifest).unwrap());
    assert_eq!(
        header(&response, "location"),
        format!("/v2/loc/manifests/{digest}")
    );
    assert_eq!(header(&response, "docker-content-digest"), digest);
}

#[tokio::test]
async fn manifest_with_a_blob_missing_from_the_repository_is_refused() {
    let app = TestApp::spawn().await;
    let elsewhere = app.push_blob("other", b"{}").await;
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_EMPTY, "digest": elsewhere, "size": 2}, "layers": []});
    let response = app.put_manifest("here", "v1", &manifest).await;
    let body = assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN").await;
    assert_eq!(body["errors"][0]["detail"]["digest"], elsewhere);
    let get = app.get("/v2/here/manifests/v1").send().await.unwrap();
    assert_eq!(get.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn invalid_manifests_are_manifest_invalid() {
    let app = TestApp::spawn().await;
    let config = app.push_blob("bad", b"{}").await;
    let good = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_EMPTY, "digest": config, "size": 2}, "layers": []});
    let put = |content_type: &'static str, body: Vec<u8>| {
        app.request(Method::PUT, "/v2/bad/manifests/v1")
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let mismatch = put(DOCKER_MANIFEST, serde_json::to_vec(&good).unwrap())
        .await
        .unwrap();
    assert_error(mismatch, 400, "MANIFEST_INVALID").await;
    let garbage = put(OCI_MANIFEST, b"{not json".to_vec()).await.unwrap();
    assert_error(garbage, 400, "MANIFEST_INVALID").await;
    let mut wrong_size = good.clone();
    wrong_size["config"]["size"] = json!(3);
    let response = put(OCI_MANIFEST, serde_json::to_vec(&wrong_size).unwrap())
        .await
        .unwrap();
    assert_error(response, 400, "MANIFEST_INVALID").await;
    let mut schema1 = good.clone();
    schema1["schemaVersion"] = json!(1);
    let response = put(OCI_MANIFEST, serde_json::to_vec(&schema1).unwrap())
        .await
        .unwrap();
    assert_error(response, 400, "MANIFEST_INVALID").await;
    let huge = vec![b' '; 4 * 1024 * 1024 + 1];
    let response = put(OCI_MANIFEST, huge).await.unwrap();
    assert_error(response, 413, "SIZE_INVALID").await;
}

#[tokio::test]
async fn put_by_digest_verifies_it_and_applies_every_tag_parameter() {
    let app = TestApp::spawn().await;
    let config = app.push_blob("multi", b"{}").await;
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_EMPTY, "digest": config, "size": 2}, "layers": []});
    let digest = sha256(&serde_json::to_vec(&manifest).unwrap());

    let wrong = app
        .put_manifest("multi", &sha256(b"other"), &manifest)
        .await;
    assert_error(wrong, 400, "DIGEST_INVALID").await;

    let response = app
        .put_manifest("multi", &format!("{digest}?tag=one&tag=two"), &manifest)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    for tag in ["one", "two"] {
        let get = app
            .get(&format!("/v2/multi/manifests/{tag}"))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&get, "docker-content-digest"), digest);
    }
    let bad_tag = app
        .put_manifest("multi", &format!("{digest}?tag=-bad"), &manifest)
        .await;
    assert_error(bad_tag, 400, "TAG_INVALID").await;
    let bad_reference = app.put_manifest("multi", ".bad", &manifest).await;
    assert_error(bad_reference, 400, "TAG_INVALID").await;
}

#[tokio::test]
async fn retagging_moves_the_tag() {
    let app = TestApp::spawn().await;
    let (_, first, _) = app.push_image("mv", "stable").await;
    let (_, second, _) = app.push_image("mv", "stable").await;
    assert_ne!(first, second);
    let get = app.get("/v2/mv/manifests/stable").send().await.unwrap();
    assert_eq!(header(&get, "docker-content-digest"), second);
    let old = app
        .get(&format!("/v2/mv/manifests/{first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::OK);
}

#[tokio::test]
async fn index_requires_its_child_manifests() {
    let app = TestApp::spawn().await;
    let (manifest, child, _) = app.push_image("multiarch", "amd64").await;
    let size = serde_json::to_vec(&manifest).unwrap().len();
    let platform = json!({"architecture": "amd64", "os": "linux"});
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child, "size": size, "platform": platform}]});
    let response = app.put_manifest("multiarch", "latest", &index).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let get = app
        .get("/v2/multiarch/manifests/latest")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&get, "content-type"), OCI_INDEX);

    let missing = sha256(b"no such manifest");
    let broken = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": missing, "size": 10}]});
    let response = app.put_manifest("multiarch", "broken", &broken).await;
    let body = assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN").await;
    assert_eq!(body["errors"][0]["detail"]["digest"], missing);
}

#[tokio::test]
async fn docker_schema2_manifest_and_list_are_accepted_and_negotiated() {
    let app = TestApp::spawn().await;
    let config = br#"{"os":"linux"}"#;
    let config_digest = app.push_blob("docker", config).await;
    let layer_digest = app.push_blob("docker", b"tar bytes").await;
    let manifest = json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": layer_digest, "size": 9}]});
    let response = app.put_manifest("docker", "v2", &manifest).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let child = header(&response, "docker-content-digest");
    let size = serde_json::to_vec(&manifest).unwrap().len();
    let list = json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": child, "size": size,
         "platform": {"architecture": "amd64", "os": "linux"}}]});
    assert_eq!(
        app.put_manifest("docker", "list", &list).await.status(),
        StatusCode::CREATED
    );

    let accepted = app
        .get("/v2/docker/manifests/list")
        .header("accept", format!("{DOCKER_MANIFEST}, {DOCKER_LIST}"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&accepted, "content-type"), DOCKER_LIST);
    let refused = app
        .get("/v2/docker/manifests/list")
        .header("accept", DOCKER_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_error(refused, 404, "MANIFEST_UNKNOWN").await;
    let wildcard = app
        .get("/v2/docker/manifests/list")
        .header("accept", "*/*")
        .send()
        .await
        .unwrap();
    assert_eq!(wildcard.status(), StatusCode::OK);
}

#[tokio::test]
async fn artifacts_with_a_subject_are_listed_as_referrers() {
    let app = TestApp::spawn().await;
    let (_, subject, _) = app.push_image("art", "base").await;
    let empty = app.push_blob("art", b"{}").await;
    let sbom_layer = app.push_blob("art", b"sbom contents").await;
    let artifact = |artifact_type: &str, layer: &str, layer_size: usize| {
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
            "layers": [{"mediaType": LAYER, "digest": layer, "size": layer_size}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
            "annotations": {"org.example.kind": artifact_type}})
    };
    let sbom = artifact("application/vnd.example.sbom", &sbom_layer, 13);
    let sig = artifact("application/vnd.example.signature", &empty, 2);
    let mut digests = Vec::new();
    for manifest in [&sbom, &sig] {
        let digest = sha256(&serde_json::to_vec(manifest).unwrap());
        let response = app.put_manifest("art", &digest, manifest).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(header(&response, "oci-subject"), subject);
        digests.push(digest);
    }

    let all = app
        .get(&format!("/v2/art/referrers/{subject}"))
        .send()
        .await
        .unwrap();
    assert_eq!(all.status(), StatusCode::OK);
    assert_eq!(header(&all, "content-type"), OCI_INDEX);
    assert!(all.headers().get("oci-filters-applied").is_none());
    let index: serde_json::Value = all.json_body().await;
    assert_eq!(index["mediaType"], OCI_INDEX);
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    for descriptor in listed {
        assert!(digests.contains(&descriptor["digest"].as_str().unwrap().to_string()));
        assert_eq!(descriptor["mediaType"], OCI_MANIFEST);
        assert!(descriptor["size"].as_u64().unwrap() > 0);
        assert_eq!(
            descriptor["annotations"]["org.example.kind"],
            descriptor["artifactType"]
        );
    }

    let filtered = app
        .get(&format!(
            "/v2/art/referrers/{subject}?artifactType=application/vnd.example.sbom"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&filtered, "oci-filters-applied"), "artifactType");
    let index = filtered.json_body().await;
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["manifests"][0]["digest"], digests[0]);

    let none = app
        .get(&format!("/v2/art/referrers/{}", sha256(b"lonely")))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::OK);
    assert_eq!(none.json_body().await["manifests"], json!([]));
    let bad = app
        .get("/v2/art/referrers/sha256:nope")
        .send()
        .await
        .unwrap();
    assert_error(bad, 400, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn deleting_by_tag_keeps_the_manifest_and_by_digest_removes_it_and_its_tags() {
    let app = TestApp::spawn().await;
    let (manifest, digest, _) = app.push_image("del", "a").await;
    assert_eq!(
        app.put_manifest("del", "b", &manifest).await.status(),
        StatusCode::CREATED
    );
    app.push_image("del", "other").await;

    let untag = app
        .request(Method::DELETE, "/v2/del/manifests/a")
        .send()
        .await
        .unwrap();
    assert_eq!(untag.status(), StatusCode::ACCEPTED);
    let untagged = app.get("/v2/del/manifests/a").send().await.unwrap();
    assert_error(untagged, 404, "MANIFEST_UNKNOWN").await;
    let by_digest = format!("/v2/del/manifests/{digest}");
    assert_eq!(
        app.get(&by_digest).send().await.unwrap().status(),
        StatusCode::OK
    );

    let delete = app
        .request(Method::DELETE, &by_digest)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::ACCEPTED);
    assert_error(
        app.get(&by_digest).send().await.unwrap(),
        404,
        "MANIFEST_UNKNOWN",
    )
    .await;
    let tag_b = app.get("/v2/del/manifests/b").send().await.unwrap();
    assert_error(tag_b, 404, "MANIFEST_UNKNOWN").await;
    let tags = app
        .get("/v2/del/tags/list")
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    assert_eq!(tags["tags"], json!(["other"]));

    let again = app
        .request(Method::DELETE, &by_digest)
        .send()
        .await
        .unwrap();
    assert_error(again, 404, "MANIFEST_UNKNOWN").await;
    let unknown_tag = app
        .request(Method::DELETE, "/v2/del/manifests/nope")
        .send()
        .await
        .unwrap();
    assert_error(unknown_tag, 404, "MANIFEST_UNKNOWN").await;
}

#[tokio::test]
async fn a_reference_that_is_neither_tag_nor_digest_names_no_manifest() {
    let app = TestApp::spawn().await;
    app.push_image("refs", "v1").await;
    for reference in [".INVALID_MANIFEST_NAME", "sha256:short", "-dash"] {
        let path = format!("/v2/refs/manifests/{reference}");
        for method in [Method::GET, Method::DELETE] {
            let response = app.request(method, &path).send().await.unwrap();
            assert_error(response, 404, "MANIFEST_UNKNOWN").await;
        }
        let head = app.request(Method::HEAD, &path).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::NOT_FOUND, "{reference}");
    }
}

/// Pushes an index of `child` (an image manifest of `repo`) under `tag`.
async fn push_index(app: &TestApp, repo: &str, tag: &str, child: &str, size: usize) -> String {
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child, "size": size,
         "platform": {"architecture": "amd64", "os": "linux"}}]});
    let response = app.put_manifest(repo, tag, &index).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    header(&response, "docker-content-digest")
}

#[tokio::test]
async fn an_index_must_give_its_children_their_true_size() {
    let app = TestApp::spawn().await;
    let (manifest, child, _) = app.push_image("sizes", "amd64").await;
    let size = serde_json::to_vec(&manifest).unwrap().len();
    let wrong = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": child, "size": size + 1}]});
    let response = app.put_manifest("sizes", "latest", &wrong).await;
    let body = assert_error(response, 400, "MANIFEST_INVALID").await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&child), "{message}");
    push_index(&app, "sizes", "latest", &child, size).await;
}

#[tokio::test]
async fn a_manifest_an_index_lists_cannot_be_deleted_before_the_index() {
    let app = TestApp::spawn().await;
    let (manifest, child, _) = app.push_image("multi", "amd64").await;
    let size = serde_json::to_vec(&manifest).unwrap().len();
    let index = push_index(&app, "multi", "latest", &child, size).await;

    let child_path = format!("/v2/multi/manifests/{child}");
    let refused = app
        .request(Method::DELETE, &child_path)
        .send()
        .await
        .unwrap();
    let body = assert_error(refused, 409, "DENIED").await;
    assert_eq!(body["errors"][0]["detail"]["indexes"], json!([index]));
    let pulled = app.get("/v2/multi/manifests/latest").send().await.unwrap();
    assert_eq!(pulled.status(), StatusCode::OK);
    let child_pulled = app.get(&child_path).send().await.unwrap();
    assert_eq!(child_pulled.status(), StatusCode::OK);

    // Untagging the child is fine: the index still reaches it by digest.
    let untag = app
        .request(Method::DELETE, "/v2/multi/manifests/amd64")
        .send()
        .await
        .unwrap();
    assert_eq!(untag.status(), StatusCode::ACCEPTED);
    for path in [format!("/v2/multi/manifests/{index}"), child_path] {
        let delete = app.request(Method::DELETE, &path).send().await.unwrap();
        assert_eq!(delete.status(), StatusCode::ACCEPTED, "{path}");
    }
}

/// Pulls are gathered in memory and written in batches (`registry::pulls`): one event per
/// manifest and batch, carrying how many pulls it stands for. None is lost when the server
/// stops, and a HEAD is no pull.
#[tokio::test]
async fn pulls_gathered_in_memory_are_written_when_the_server_stops() {
    use sqlx::{Connection as _, Row as _};
    let mut app = TestApp::spawn().await;
    let (_, digest, _) = app.push_image("img", "v1").await;
    for method in [Method::GET, Method::HEAD, Method::GET, Method::GET] {
        let response = app
            .request(method, "/v2/img/manifests/v1")
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    app.restart().await;

    sqlx::any::install_default_drivers();
    let mut connection = sqlx::AnyConnection::connect(app.database_url())
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT digest, detail FROM events WHERE repository = 'img' AND action = 'PULL'",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    let mut pulls = 0;
    for row in &rows {
        assert_eq!(row.get::<String, _>("digest"), digest);
        let detail: String = row.get("detail");
        let count = detail.strip_suffix(" pulls").expect("a count of pulls");
        pulls += count.parse::<u32>().unwrap();
    }
    assert_eq!(pulls, 3, "{} events", rows.len());
}
