//! Blob reads, ranges, links and deletes.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestApp, assert_error, header, sha256};

#[tokio::test]
async fn base_endpoint_announces_the_api_version() {
    let app = TestApp::spawn().await;
    for method in [Method::GET, Method::HEAD] {
        let response = app.request(method, "/v2/").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "docker-distribution-api-version"),
            "registry/2.0"
        );
    }
}

#[tokio::test]
async fn pushed_blob_reads_back_with_digest_and_length() {
    let app = TestApp::spawn().await;
    let data = b"some layer bytes".to_vec();
    let digest = app.push_blob("a/b/c/d/e/f/g/h", &data).await;

    let head = app
        .request(Method::HEAD, &format!("/v2/a/b/c/d/e/f/g/h/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length"), data.len().to_string());
    assert_eq!(header(&head, "docker-content-digest"), digest);

    let get = app
        .get(&format!("/v2/a/b/c/d/e/f/g/h/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(header(&get, "docker-content-digest"), digest);
    assert_eq!(get.bytes().await.unwrap(), data);
}

#[tokio::test]
async fn single_ranges_are_served_and_unsatisfiable_ones_refused() {
    let app = TestApp::spawn().await;
    let digest = app.push_blob("r", b"0123456789").await;
    let path = format!("/v2/r/blobs/{digest}");
    for (range, body, content_range) in [
        ("bytes=2-5", "2345", "bytes 2-5/10"),
        ("bytes=7-", "789", "bytes 7-9/10"),
        ("bytes=-2", "89", "bytes 8-9/10"),
        ("bytes=8-100", "89", "bytes 8-9/10"),
    ] {
        let response = app.get(&path).header("range", range).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(header(&response, "content-range"), content_range);
        assert_eq!(response.text().await.unwrap(), body);
    }
    let response = app
        .get(&path)
        .header("range", "bytes=10-12")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "content-range"), "bytes */10");
    assert_error(response, 416, "SIZE_INVALID").await;
}

#[tokio::test]
async fn unknown_blob_is_blob_unknown_with_the_oci_error_body() {
    let app = TestApp::spawn().await;
    let digest = sha256(b"never pushed");
    let response = app
        .get(&format!("/v2/r/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    let body = assert_error(response, 404, "BLOB_UNKNOWN").await;
    assert_eq!(
        body,
        serde_json::json!({"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry"}]})
    );
    let head = app
        .request(Method::HEAD, &format!("/v2/r/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_blob_is_visible_only_in_repositories_linked_to_it() {
    let app = TestApp::spawn().await;
    let digest = app.push_blob("one", b"private to one").await;
    let response = app
        .get(&format!("/v2/two/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn malformed_digests_and_names_are_rejected_before_storage() {
    let app = TestApp::spawn().await;
    for digest in [
        "sha256:xyz",
        "nocolon",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
    ] {
        let response = app
            .get(&format!("/v2/r/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_error(response, 400, "DIGEST_INVALID").await;
    }
    let long = "a".repeat(256);
    for name in ["UPPER", "a//b", "-a", long.as_str(), "a%2Fb", "a/b%00"] {
        let response = app
            .get(&format!("/v2/{name}/tags/list"))
            .send()
            .await
            .unwrap();
        assert_error(response, 400, "NAME_INVALID").await;
    }
    let ok = "a".repeat(255);
    let response = app
        .get(&format!("/v2/{ok}/tags/list"))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "NAME_UNKNOWN").await;
}

#[tokio::test]
async fn deleting_a_blob_unlinks_it_from_that_repository_only() {
    let app = TestApp::spawn().await;
    let digest = app.push_blob("keep", b"shared bytes").await;
    app.push_blob("drop", b"shared bytes").await;

    let delete = app
        .request(Method::DELETE, &format!("/v2/drop/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::ACCEPTED);
    let gone = app
        .get(&format!("/v2/drop/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_error(gone, 404, "BLOB_UNKNOWN").await;
    let again = app
        .request(Method::DELETE, &format!("/v2/drop/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_error(again, 404, "BLOB_UNKNOWN").await;
    let kept = app
        .get(&format!("/v2/keep/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(kept.bytes().await.unwrap().as_ref(), b"shared bytes");
}

#[tokio::test]
async fn unsupported_methods_and_paths_get_oci_errors() {
    let app = TestApp::spawn().await;
    let response = app
        .request(Method::POST, "/v2/r/tags/list")
        .send()
        .await
        .unwrap();
    assert_error(response, 405, "UNSUPPORTED").await;
    for elsewhere in ["/v2/r/nothing-here", "/foo/v2", "/foo/v2/", "/v2x"] {
        let response = app.get(elsewhere).send().await.unwrap();
        assert_error(response, 404, "NOT_FOUND").await;
    }
}

#[tokio::test]
async fn a_blob_a_manifest_references_cannot_be_deleted_from_under_it() {
    let app = TestApp::spawn().await;
    let (manifest, digest, layer) = app.push_image("image", "v1").await;
    let layer_digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let layer_path = format!("/v2/image/blobs/{layer_digest}");

    let refused = app
        .request(Method::DELETE, &layer_path)
        .send()
        .await
        .unwrap();
    let body = assert_error(refused, 409, "DENIED").await;
    assert_eq!(body["errors"][0]["detail"]["manifests"], json!([digest]));
    let pulled = app.get("/v2/image/manifests/v1").send().await.unwrap();
    assert_eq!(pulled.status(), StatusCode::OK);
    let blob = app.get(&layer_path).send().await.unwrap();
    assert_eq!(blob.bytes().await.unwrap(), layer);

    let delete_manifest = app
        .request(Method::DELETE, &format!("/v2/image/manifests/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(delete_manifest.status(), StatusCode::ACCEPTED);
    let delete_blob = app
        .request(Method::DELETE, &layer_path)
        .send()
        .await
        .unwrap();
    assert_eq!(delete_blob.status(), StatusCode::ACCEPTED);
}
