//! Image operations: `PutImage`, `BatchGetImage`, `ListImages`, `DescribeImages`,
//! `BatchDeleteImage`, `ListImageReferrers`, as a user of the API sees them, on the same
//! images `/v2` serves.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{LAYER, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, TestApp, sha256, uuid_like};

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const UNKNOWN_DIGEST: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// An image whose blobs are in a repository and whose manifest is not pushed yet.
#[derive(Clone)]
struct Image {
    manifest: String,
    digest: String,
    /// The manifest's bytes with the config and layer it references.
    total_size: u64,
}

impl Image {
    /// Uploads a config and a unique layer to `repo` and writes the manifest that lists them.
    async fn staged(app: &TestApp, repo: &str) -> Image {
        let layer = format!("layer {}", uuid_like()).into_bytes();
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let layer_digest = app.push_blob(repo, &layer).await;
        let config_digest = app.push_blob(repo, config).await;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": LAYER, "digest": layer_digest, "size": layer.len()}],
        })
        .to_string();
        Image {
            digest: sha256(manifest.as_bytes()),
            total_size: (manifest.len() + config.len() + layer.len()) as u64,
            manifest,
        }
    }

    /// An index of `children`, already pushed.
    fn index_of(children: &[&Image]) -> Image {
        let manifests: Vec<Value> = children
            .iter()
            .map(|child| {
                json!({"mediaType": OCI_MANIFEST, "digest": child.digest,
                       "size": child.manifest.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}})
            })
            .collect();
        let manifest =
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).to_string();
        Image {
            digest: sha256(manifest.as_bytes()),
            total_size: 0,
            manifest,
        }
    }
}

/// Pushes `image` through `PutImage`, tagged if `tag` is given, and returns the output.
async fn put_image(app: &TestApp, repo: &str, image: &Image, tag: Option<&str>) -> Value {
    let mut input = json!({"repositoryName": repo, "imageManifest": image.manifest});
    if let Some(tag) = tag {
        input["imageTag"] = json!(tag);
    }
    app.ecr("PutImage", input).await.ok()
}

/// A fresh repository with one image pushed through the API under `tag`.
async fn repository_with_image(app: &TestApp, repo: &str, tag: &str) -> Image {
    app.create_repository(repo, json!({})).await;
    let image = Image::staged(app, repo).await;
    put_image(app, repo, &image, Some(tag)).await;
    image
}

fn id(digest: &str, tag: Option<&str>) -> Value {
    match tag {
        Some(tag) => json!({"imageDigest": digest, "imageTag": tag}),
        None => json!({"imageDigest": digest}),
    }
}

async fn list_ids(app: &TestApp, repo: &str, tag_status: &str) -> Vec<Value> {
    let input = json!({"repositoryName": repo, "filter": {"tagStatus": tag_status}});
    let output = app.ecr("ListImages", input).await.ok();
    assert!(output.get("nextToken").is_none(), "{output}");
    output["imageIds"].as_array().unwrap().clone()
}

fn sorted(mut ids: Vec<Value>) -> Vec<Value> {
    ids.sort_by_key(|id| id.to_string());
    ids
}

/// Seconds since the epoch, as the API writes times.
fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn assert_recent(time: &Value) {
    let seconds = time.as_f64().unwrap_or_else(|| panic!("a time: {time}"));
    assert!((now_seconds() - seconds).abs() < 60.0, "{seconds}");
}

#[tokio::test]
async fn put_image_stores_the_exact_manifest_that_v2_and_batch_get_image_serve() {
    let app = TestApp::spawn().await;
    app.create_repository("team/app", json!({})).await;
    let image = Image::staged(&app, "team/app").await;
    let registry_id = app.ecr("DescribeRegistry", json!({})).await.ok()["registryId"].clone();

    let output = put_image(&app, "team/app", &image, Some("v1")).await;
    assert_eq!(
        output["image"],
        json!({
            "registryId": registry_id,
            "repositoryName": "team/app",
            "imageId": {"imageDigest": image.digest, "imageTag": "v1"},
            "imageManifest": image.manifest,
            "imageManifestMediaType": OCI_MANIFEST,
        })
    );
    let pulled = app.get("/v2/team/app/manifests/v1").send().await.unwrap();
    assert_eq!(pulled.status(), StatusCode::OK);
    assert_eq!(pulled.text().await.unwrap(), image.manifest);

    let fetched = app
        .ecr(
            "BatchGetImage",
            json!({"repositoryName": "team/app", "imageIds": [{"imageTag": "v1"}]}),
        )
        .await
        .ok();
    assert_eq!(fetched["failures"], json!([]));
    assert_eq!(fetched["images"], json!([output["image"]]));
}

#[tokio::test]
async fn a_manifest_from_batch_get_image_retags_the_image_through_put_image() {
    let app = TestApp::spawn().await;
    let image = repository_with_image(&app, "retag", "v1").await;
    let fetched = app
        .ecr(
            "BatchGetImage",
            json!({"repositoryName": "retag", "imageIds": [{"imageTag": "v1"}]}),
        )
        .await
        .ok();
    let manifest = fetched["images"][0]["imageManifest"].clone();

    // No media type given: it comes from the manifest.
    let retagged = app
        .ecr(
            "PutImage",
            json!({"repositoryName": "retag", "imageManifest": manifest, "imageTag": "v2"}),
        )
        .await
        .ok();
    assert_eq!(retagged["image"]["imageId"], id(&image.digest, Some("v2")));
    assert_eq!(retagged["image"]["imageManifestMediaType"], OCI_MANIFEST);
    assert_eq!(
        sorted(list_ids(&app, "retag", "ANY").await),
        vec![id(&image.digest, Some("v1")), id(&image.digest, Some("v2"))]
    );
    let details = app
        .ecr("DescribeImages", json!({"repositoryName": "retag"}))
        .await
        .ok()["imageDetails"]
        .clone();
    assert_eq!(details.as_array().unwrap().len(), 1);
    assert_eq!(details[0]["imageTags"], json!(["v1", "v2"]));
}

#[tokio::test]
async fn put_image_refuses_what_ecr_refuses() {
    let app = TestApp::spawn().await;
    let image = repository_with_image(&app, "refusals", "v1").await;
    let put = |input: Value| {
        let mut full = json!({"repositoryName": "refusals"});
        full.as_object_mut()
            .unwrap()
            .extend(input.as_object().unwrap().clone());
        app.ecr("PutImage", full)
    };

    // The same image under the same tag, or untagged, changes nothing.
    let again = put(json!({"imageManifest": image.manifest, "imageTag": "v1"}))
        .await
        .error("ImageAlreadyExistsException");
    let message = again["message"].as_str().unwrap();
    assert!(
        message.contains(&image.digest) && message.contains("'v1'"),
        "{message}"
    );
    put(json!({"imageManifest": image.manifest}))
        .await
        .error("ImageAlreadyExistsException");

    let wrong_digest = put(json!({"imageManifest": image.manifest, "imageTag": "v2",
                                  "imageDigest": UNKNOWN_DIGEST}))
    .await
    .error("ImageDigestDoesNotMatchException");
    assert!(
        wrong_digest["message"]
            .as_str()
            .unwrap()
            .contains(&image.digest)
    );
    let right_digest = put(json!({"imageManifest": image.manifest, "imageTag": "v2",
                                  "imageDigest": image.digest}))
    .await
    .ok();
    assert_eq!(
        right_digest["image"]["imageId"],
        id(&image.digest, Some("v2"))
    );

    put(json!({"imageManifest": image.manifest, "imageTag": "not a tag"}))
        .await
        .error("InvalidParameterException");
    put(json!({"imageManifest": "this is not a manifest", "imageTag": "v3"}))
        .await
        .error("InvalidParameterException");
    put(json!({"imageManifest": image.manifest, "imageTag": "v3",
               "imageManifestMediaType": DOCKER_MANIFEST}))
    .await
    .error("InvalidParameterException");

    let missing_layer = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": UNKNOWN_DIGEST, "size": 2},
        "layers": [],
    });
    put(json!({"imageManifest": missing_layer.to_string(), "imageTag": "v3"}))
        .await
        .error("LayersNotFoundException");
    let absent_child = Image::staged(&app, "refusals").await;
    let index = Image::index_of(&[&image, &absent_child]);
    put(json!({"imageManifest": index.manifest, "imageTag": "multi"}))
        .await
        .error("ReferencedImagesNotFoundException");

    app.ecr(
        "PutImage",
        json!({"repositoryName": "missing", "imageManifest": image.manifest}),
    )
    .await
    .error("RepositoryNotFoundException");
    assert_eq!(
        sorted(list_ids(&app, "refusals", "ANY").await),
        vec![id(&image.digest, Some("v1")), id(&image.digest, Some("v2"))]
    );
}

#[tokio::test]
async fn an_immutable_repository_keeps_its_tags_where_they_are() {
    let app = TestApp::spawn().await;
    app.create_repository("frozen", json!({"imageTagMutability": "IMMUTABLE"}))
        .await;
    let first = Image::staged(&app, "frozen").await;
    let second = Image::staged(&app, "frozen").await;
    put_image(&app, "frozen", &first, Some("v1")).await;

    let refused = app
        .ecr(
            "PutImage",
            json!({"repositoryName": "frozen", "imageManifest": second.manifest,
                   "imageTag": "v1"}),
        )
        .await
        .error("ImageTagAlreadyExistsException");
    assert!(refused["message"].as_str().unwrap().contains("'v1'"));
    // A new tag, and the same image again, are not moves.
    put_image(&app, "frozen", &second, Some("v2")).await;
    app.ecr(
        "PutImage",
        json!({"repositoryName": "frozen", "imageManifest": first.manifest, "imageTag": "v1"}),
    )
    .await
    .error("ImageAlreadyExistsException");
    assert_eq!(
        sorted(list_ids(&app, "frozen", "ANY").await),
        sorted(vec![
            id(&first.digest, Some("v1")),
            id(&second.digest, Some("v2"))
        ])
    );
}

#[tokio::test]
async fn moving_a_tag_leaves_the_old_image_untagged() {
    let app = TestApp::spawn().await;
    app.create_repository("moves", json!({})).await;
    let (_, old, _) = app.push_image("moves", "v1").await;
    let (_, new, _) = app.push_image("moves", "v1").await;

    assert_eq!(
        list_ids(&app, "moves", "TAGGED").await,
        vec![id(&new, Some("v1"))]
    );
    assert_eq!(
        list_ids(&app, "moves", "UNTAGGED").await,
        vec![id(&old, None)]
    );
    let every = sorted(vec![id(&new, Some("v1")), id(&old, None)]);
    assert_eq!(sorted(list_ids(&app, "moves", "ANY").await), every);
    let unfiltered = app
        .ecr("ListImages", json!({"repositoryName": "moves"}))
        .await
        .ok();
    assert_eq!(
        sorted(unfiltered["imageIds"].as_array().unwrap().clone()),
        every
    );

    let untagged = app
        .ecr(
            "DescribeImages",
            json!({"repositoryName": "moves", "filter": {"tagStatus": "UNTAGGED"}}),
        )
        .await
        .ok()["imageDetails"]
        .clone();
    assert_eq!(untagged.as_array().unwrap().len(), 1);
    assert_eq!(untagged[0]["imageDigest"], old);
    assert!(untagged[0].get("imageTags").is_none(), "{untagged}");
    let tagged = app
        .ecr(
            "DescribeImages",
            json!({"repositoryName": "moves", "filter": {"tagStatus": "TAGGED"}}),
        )
        .await
        .ok()["imageDetails"]
        .clone();
    assert_eq!(tagged[0]["imageDigest"], new);
    assert_eq!(tagged[0]["imageTags"], json!(["v1"]));

    for operation in ["ListImages", "DescribeImages"] {
        app.ecr(
            operation,
            json!({"repositoryName": "moves", "filter": {"tagStatus": "SOME"}}),
        )
        .await
        .error("InvalidParameterException");
        app.ecr(operation, json!({"repositoryName": "missing"}))
            .await
            .error("RepositoryNotFoundException");
    }
}

/// Every page of `operation` at `max_results`, following `nextToken` to the end.
async fn pages(app: &TestApp, operation: &str, input: Value, max_results: u32) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut token: Option<Value> = None;
    loop {
        let mut request = input.clone();
        request["maxResults"] = json!(max_results);
        if let Some(token) = token.take() {
            request["nextToken"] = token;
        }
        let page = app.ecr(operation, request).await.ok();
        token = page.get("nextToken").cloned();
        pages.push(page);
        if token.is_none() {
            return pages;
        }
        assert!(pages.len() < 100, "pagination does not end");
    }
}

#[tokio::test]
async fn listings_page_through_every_image_once() {
    let app = TestApp::spawn().await;
    app.create_repository("paged", json!({})).await;
    // Five pushes to one tag leave four untagged images; two more tags on the last.
    let mut digests = Vec::new();
    for _ in 0..5 {
        digests.push(app.push_image("paged", "latest").await.1);
    }
    let fetched = app
        .ecr(
            "BatchGetImage",
            json!({"repositoryName": "paged", "imageIds": [{"imageTag": "latest"}]}),
        )
        .await
        .ok();
    let last = Image {
        manifest: fetched["images"][0]["imageManifest"]
            .as_str()
            .unwrap()
            .to_string(),
        digest: digests[4].clone(),
        total_size: 0,
    };
    for tag in ["a", "b"] {
        put_image(&app, "paged", &last, Some(tag)).await;
    }
    let mut expected: Vec<Value> = digests[..4].iter().map(|d| id(d, None)).collect();
    expected.extend(["a", "b", "latest"].map(|tag| id(&digests[4], Some(tag))));
    let expected = sorted(expected);

    let input = json!({"repositoryName": "paged"});
    for max_results in [1, 2, 3, 7] {
        let pages = pages(&app, "ListImages", input.clone(), max_results).await;
        let ids: Vec<Value> = pages
            .iter()
            .flat_map(|page| page["imageIds"].as_array().unwrap().clone())
            .collect();
        assert_eq!(ids.len(), expected.len(), "no duplicates at {max_results}");
        assert_eq!(sorted(ids), expected, "no gaps at {max_results}");
        for page in &pages[..pages.len() - 1] {
            assert_eq!(
                page["imageIds"].as_array().unwrap().len(),
                max_results as usize
            );
        }
    }
    let untagged = pages(
        &app,
        "ListImages",
        json!({"repositoryName": "paged", "filter": {"tagStatus": "UNTAGGED"}}),
        3,
    )
    .await;
    assert_eq!(untagged.len(), 2);

    for max_results in [1, 2, 4] {
        let pages = pages(&app, "DescribeImages", input.clone(), max_results).await;
        let described: Vec<String> = pages
            .iter()
            .flat_map(|page| page["imageDetails"].as_array().unwrap().clone())
            .map(|detail| detail["imageDigest"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(described.len(), 5, "no duplicates at {max_results}");
        let unique: BTreeSet<&String> = described.iter().collect();
        assert_eq!(unique, digests.iter().collect(), "no gaps at {max_results}");
    }

    for operation in ["ListImages", "DescribeImages"] {
        for bad in [
            json!({"maxResults": 0}),
            json!({"maxResults": 1001}),
            json!({"nextToken": "%%%"}),
        ] {
            let mut request = bad.clone();
            request["repositoryName"] = json!("paged");
            app.ecr(operation, request)
                .await
                .error("InvalidParameterException");
        }
    }
}

#[tokio::test]
async fn describe_images_reports_each_image_as_ecr_does() {
    let app = TestApp::spawn().await;
    let image = repository_with_image(&app, "described", "v1").await;
    let registry_id = app.ecr("DescribeRegistry", json!({})).await.ok()["registryId"].clone();
    let describe = async |image_id: &Value| {
        let input = json!({"repositoryName": "described", "imageIds": [image_id, image_id]});
        let output = app.ecr("DescribeImages", input).await.ok();
        let details = output["imageDetails"].as_array().unwrap();
        assert_eq!(details.len(), 1, "one detail per image: {output}");
        details[0].clone()
    };
    let by_ids = [
        json!({"imageTag": "v1"}),
        json!({"imageDigest": image.digest}),
        id(&image.digest, Some("v1")),
    ];
    let detail = describe(&by_ids[0]).await;
    assert_recent(&detail["imagePushedAt"]);
    let mut expected = json!({
        "registryId": registry_id,
        "repositoryName": "described",
        "imageDigest": image.digest,
        "imageTags": ["v1"],
        "imageSizeInBytes": image.total_size,
        "imagePushedAt": detail["imagePushedAt"],
        "imageManifestMediaType": OCI_MANIFEST,
        "artifactMediaType": OCI_CONFIG,
    });
    for image_id in &by_ids {
        assert_eq!(describe(image_id).await, expected, "{image_id}");
    }

    // A pull through the API is recorded.
    let pull = json!({"repositoryName": "described", "imageIds": [{"imageTag": "v1"}]});
    app.ecr("BatchGetImage", pull).await.ok();
    let pulled = describe(&by_ids[1]).await;
    assert_recent(&pulled["lastRecordedPullTime"]);
    expected["lastRecordedPullTime"] = pulled["lastRecordedPullTime"].clone();
    assert_eq!(pulled, expected);

    for missing in [
        json!({"imageTag": "nope"}),
        json!({"imageDigest": UNKNOWN_DIGEST}),
    ] {
        let error = app
            .ecr(
                "DescribeImages",
                json!({"repositoryName": "described", "imageIds": [{"imageTag": "v1"}, missing]}),
            )
            .await
            .error("ImageNotFoundException");
        let message = error["message"].as_str().unwrap();
        let named = missing
            .get("imageTag")
            .or(missing.get("imageDigest"))
            .unwrap();
        assert!(message.contains(named.as_str().unwrap()), "{message}");
    }
    for invalid in [
        json!({"imageIds": [{"imageTag": "v1"}], "maxResults": 5}),
        json!({"imageIds": [{"imageTag": "v1"}], "nextToken": "x"}),
        json!({"imageIds": []}),
        json!({"imageIds": [{}]}),
        json!({"imageIds": [{"imageDigest": "sha256:short"}]}),
    ] {
        let mut request = invalid.clone();
        request["repositoryName"] = json!("described");
        app.ecr("DescribeImages", request)
            .await
            .error("InvalidParameterException");
    }
    app.ecr("DescribeImages", json!({"repositoryName": "missing"}))
        .await
        .error("RepositoryNotFoundException");
}

#[tokio::test]
async fn an_index_is_as_large_as_its_largest_child_and_goes_before_its_children() {
    let app = TestApp::spawn().await;
    app.create_repository("multi", json!({})).await;
    let amd = Image::staged(&app, "multi").await;
    let arm = Image::staged(&app, "multi").await;
    put_image(&app, "multi", &amd, None).await;
    put_image(&app, "multi", &arm, None).await;
    let index = Image::index_of(&[&amd, &arm]);
    let output = put_image(&app, "multi", &index, Some("latest")).await;
    assert_eq!(output["image"]["imageManifestMediaType"], OCI_INDEX);

    let detail = app
        .ecr(
            "DescribeImages",
            json!({"repositoryName": "multi", "imageIds": [{"imageTag": "latest"}]}),
        )
        .await
        .ok()["imageDetails"][0]
        .clone();
    assert_eq!(detail["imageManifestMediaType"], OCI_INDEX);
    assert_eq!(
        detail["imageSizeInBytes"],
        amd.total_size.max(arm.total_size)
    );
    assert!(detail.get("artifactMediaType").is_none(), "{detail}");

    let refused = app
        .ecr(
            "BatchDeleteImage",
            json!({"repositoryName": "multi", "imageIds": [{"imageDigest": amd.digest}]}),
        )
        .await
        .ok();
    assert_eq!(refused["imageIds"], json!([]));
    assert_eq!(refused["failures"][0]["imageId"], id(&amd.digest, None));
    assert_eq!(
        refused["failures"][0]["failureCode"],
        "ImageReferencedByManifestList"
    );
    assert!(
        refused["failures"][0]["failureReason"]
            .as_str()
            .unwrap()
            .contains(&index.digest)
    );

    // Children named first, the index last: the index still goes first.
    let deleted = app
        .ecr(
            "BatchDeleteImage",
            json!({"repositoryName": "multi", "imageIds": [
                {"imageDigest": amd.digest}, {"imageDigest": arm.digest}, {"imageTag": "latest"}]}),
        )
        .await
        .ok();
    assert_eq!(deleted["failures"], json!([]));
    assert_eq!(
        sorted(deleted["imageIds"].as_array().unwrap().clone()),
        sorted(vec![
            id(&index.digest, Some("latest")),
            id(&amd.digest, None),
            id(&arm.digest, None)
        ])
    );
    assert_eq!(list_ids(&app, "multi", "ANY").await, Vec::<Value>::new());
}

#[tokio::test]
async fn batch_get_image_reports_each_image_it_cannot_get() {
    let app = TestApp::spawn().await;
    let image = repository_with_image(&app, "getter", "v1").await;
    let other = Image::staged(&app, "getter").await;
    put_image(&app, "getter", &other, Some("other")).await;
    let output = app
        .ecr(
            "BatchGetImage",
            json!({"repositoryName": "getter", "imageIds": [
                {"imageDigest": image.digest},
                {"imageTag": "nope"},
                {"imageDigest": UNKNOWN_DIGEST},
                {"imageDigest": "sha256:short"},
                {"imageTag": "-bad"},
                {},
                {"imageDigest": image.digest, "imageTag": "other"},
                {"imageDigest": image.digest, "imageTag": "v1"},
            ]}),
        )
        .await
        .ok();
    let images = output["images"].as_array().unwrap();
    assert_eq!(
        images
            .iter()
            .map(|i| i["imageId"].clone())
            .collect::<Vec<_>>(),
        vec![id(&image.digest, None), id(&image.digest, Some("v1"))]
    );
    assert!(
        images
            .iter()
            .all(|i| i["imageManifest"] == image.manifest.as_str())
    );
    let failures: Vec<(Value, &str)> = output["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(!f["failureReason"].as_str().unwrap().is_empty(), "{f}");
            (f["imageId"].clone(), f["failureCode"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        failures,
        vec![
            (json!({"imageTag": "nope"}), "ImageNotFound"),
            (json!({"imageDigest": UNKNOWN_DIGEST}), "ImageNotFound"),
            (json!({"imageDigest": "sha256:short"}), "InvalidImageDigest"),
            (json!({"imageTag": "-bad"}), "InvalidImageTag"),
            (json!({}), "MissingDigestAndTag"),
            (
                id(&image.digest, Some("other")),
                "ImageTagDoesNotMatchDigest"
            ),
        ]
    );

    let only_indexes = app
        .ecr(
            "BatchGetImage",
            json!({"repositoryName": "getter", "imageIds": [{"imageTag": "v1"}],
                   "acceptedMediaTypes": [OCI_INDEX]}),
        )
        .await
        .ok();
    assert_eq!(only_indexes["images"], json!([]));
    assert_eq!(only_indexes["failures"][0]["failureCode"], "ImageNotFound");
    let reason = only_indexes["failures"][0]["failureReason"]
        .as_str()
        .unwrap();
    assert!(reason.contains(OCI_MANIFEST), "{reason}");
    let accepted = app
        .ecr(
            "BatchGetImage",
            json!({"repositoryName": "getter", "imageIds": [{"imageTag": "v1"}],
                   "acceptedMediaTypes": [DOCKER_MANIFEST, OCI_MANIFEST]}),
        )
        .await
        .ok();
    assert_eq!(
        accepted["images"][0]["imageId"],
        json!({"imageTag": "v1", "imageDigest": image.digest})
    );

    for invalid in [
        json!({"imageIds": []}),
        json!({"imageIds": [{"imageTag": "v1"}], "acceptedMediaTypes": []}),
    ] {
        let mut request = invalid.clone();
        request["repositoryName"] = json!("getter");
        app.ecr("BatchGetImage", request)
            .await
            .error("InvalidParameterException");
    }
    app.ecr(
        "BatchGetImage",
        json!({"repositoryName": "missing", "imageIds": [{"imageTag": "v1"}]}),
    )
    .await
    .error("RepositoryNotFoundException");
}

#[tokio::test]
async fn batch_delete_image_removes_tags_and_images_as_ecr_does() {
    let app = TestApp::spawn().await;
    let image = repository_with_image(&app, "deleter", "v1").await;
    put_image(&app, "deleter", &image, Some("v2")).await;
    let other = Image::staged(&app, "deleter").await;
    put_image(&app, "deleter", &other, Some("a")).await;
    put_image(&app, "deleter", &other, Some("b")).await;
    let delete = |ids: Value| {
        app.ecr(
            "BatchDeleteImage",
            json!({"repositoryName": "deleter", "imageIds": ids}),
        )
    };

    // A tag that is not the last: only the tag goes.
    let output = delete(json!([{"imageTag": "v1"}])).await.ok();
    assert_eq!(
        output,
        json!({"imageIds": [id(&image.digest, Some("v1"))], "failures": []})
    );
    let gone = app.get("/v2/deleter/manifests/v1").send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let kept = app
        .get(&format!("/v2/deleter/manifests/{}", image.digest))
        .send()
        .await
        .unwrap();
    assert_eq!(kept.status(), StatusCode::OK);

    // A digest and a tag that do not match: nothing goes.
    let output = delete(json!([{"imageDigest": image.digest, "imageTag": "a"}]))
        .await
        .ok();
    assert_eq!(output["imageIds"], json!([]));
    assert_eq!(
        output["failures"][0]["failureCode"],
        "ImageTagDoesNotMatchDigest"
    );
    assert_eq!(
        output["failures"][0]["imageId"],
        id(&image.digest, Some("a"))
    );

    // The last tag takes its image along.
    let output = delete(json!([{"imageDigest": image.digest, "imageTag": "v2"}]))
        .await
        .ok();
    assert_eq!(
        output,
        json!({"imageIds": [id(&image.digest, Some("v2"))], "failures": []})
    );
    let gone = app
        .get(&format!("/v2/deleter/manifests/{}", image.digest))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);

    // By digest: the image and every tag, reported by tag; failures echo what was asked.
    let output = delete(json!([
        {"imageTag": "nope"}, {"imageDigest": other.digest}, {"imageDigest": UNKNOWN_DIGEST},
        {"imageDigest": "md5:x"}, {"imageTag": "b@d"}, {}, {"imageTag": "a"},
    ]))
    .await
    .ok();
    assert_eq!(
        output["imageIds"],
        json!([id(&other.digest, Some("a")), id(&other.digest, Some("b"))])
    );
    let failures: Vec<(Value, &str)> = output["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["imageId"].clone(), f["failureCode"].as_str().unwrap()))
        .collect();
    assert_eq!(
        failures,
        vec![
            (json!({"imageTag": "nope"}), "ImageNotFound"),
            (json!({"imageDigest": UNKNOWN_DIGEST}), "ImageNotFound"),
            (json!({"imageDigest": "md5:x"}), "InvalidImageDigest"),
            (json!({"imageTag": "b@d"}), "InvalidImageTag"),
            (json!({}), "MissingDigestAndTag"),
            // Gone with its image, by the digest before it.
            (json!({"imageTag": "a"}), "ImageNotFound"),
        ]
    );
    assert_eq!(list_ids(&app, "deleter", "ANY").await, Vec::<Value>::new());

    let untagged = Image::staged(&app, "deleter").await;
    put_image(&app, "deleter", &untagged, None).await;
    let output = delete(json!([{"imageDigest": untagged.digest}])).await.ok();
    assert_eq!(output["imageIds"], json!([id(&untagged.digest, None)]));

    delete(json!([])).await.error("InvalidParameterException");
    app.ecr(
        "BatchDeleteImage",
        json!({"repositoryName": "missing", "imageIds": [{"imageTag": "v1"}]}),
    )
    .await
    .error("RepositoryNotFoundException");
}

#[tokio::test]
async fn removing_a_last_tag_never_loses_a_tag_pushed_meanwhile() {
    let app = TestApp::spawn().await;
    let image = repository_with_image(&app, "racing", "t0").await;
    for round in 0..10 {
        // The image has exactly one tag, `old`: remove it while another push adds `new`.
        let (old, new) = (format!("t{round}"), format!("t{}", round + 1));
        let (deleted, pushed) = tokio::join!(
            app.ecr(
                "BatchDeleteImage",
                json!({"repositoryName": "racing", "imageIds": [{"imageTag": old}]}),
            ),
            app.ecr(
                "PutImage",
                json!({"repositoryName": "racing", "imageManifest": image.manifest,
                       "imageTag": new}),
            ),
        );
        assert_eq!(deleted.ok()["failures"], json!([]));
        pushed.ok();
        assert_eq!(
            list_ids(&app, "racing", "ANY").await,
            vec![id(&image.digest, Some(&new))],
            "round {round}"
        );
        let pulled = app
            .get(&format!("/v2/racing/manifests/{new}"))
            .send()
            .await
            .unwrap();
        assert_eq!(pulled.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn list_image_referrers_pages_through_an_images_artifacts() {
    let app = TestApp::spawn().await;
    let subject = repository_with_image(&app, "arts", "v1").await;
    let empty = app.push_blob("arts", b"{}").await;
    let mut artifacts = Vec::new();
    for (n, artifact_type) in [
        "application/vnd.example.sbom",
        "application/vnd.example.sig",
        "application/vnd.example.sbom",
    ]
    .into_iter()
    .enumerate()
    {
        let manifest = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
            "layers": [{"mediaType": OCI_EMPTY, "digest": empty, "size": 2}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject.digest,
                        "size": subject.manifest.len()},
            "annotations": {"org.example.n": n.to_string()},
        })
        .to_string();
        let artifact = Image {
            digest: sha256(manifest.as_bytes()),
            total_size: manifest.len() as u64,
            manifest,
        };
        put_image(&app, "arts", &artifact, None).await;
        artifacts.push((artifact, artifact_type, n));
    }

    let input = json!({"repositoryName": "arts", "subjectId": {"imageDigest": subject.digest}});
    let all = app.ecr("ListImageReferrers", input.clone()).await.ok();
    assert!(all.get("nextToken").is_none());
    let mut expected: Vec<Value> = artifacts
        .iter()
        .map(|(artifact, artifact_type, n)| {
            json!({"digest": artifact.digest, "mediaType": OCI_MANIFEST,
                   "artifactType": artifact_type, "size": artifact.total_size,
                   "annotations": {"org.example.n": n.to_string()},
                   "artifactStatus": "ACTIVE"})
        })
        .collect();
    expected.sort_by_key(|r| r["digest"].as_str().unwrap().to_string());
    assert_eq!(all["referrers"], json!(expected));

    let pages = pages(&app, "ListImageReferrers", input.clone(), 1).await;
    let paged: Vec<Value> = pages
        .iter()
        .flat_map(|page| page["referrers"].as_array().unwrap().clone())
        .collect();
    assert_eq!(paged, expected);

    let mut sboms = input.clone();
    sboms["filter"] = json!({"artifactTypes": ["application/vnd.example.sbom"]});
    let listed = app.ecr("ListImageReferrers", sboms).await.ok()["referrers"].clone();
    let wanted: Vec<&Value> = expected
        .iter()
        .filter(|r| r["artifactType"] == "application/vnd.example.sbom")
        .collect();
    assert_eq!(listed, json!(wanted));

    let mut others = input.clone();
    others["filter"] = json!({"artifactTypes": ["application/vnd.example.other"]});
    assert_eq!(
        app.ecr("ListImageReferrers", others).await.ok()["referrers"],
        json!([])
    );

    let lonely = json!({"repositoryName": "arts", "subjectId": {"imageDigest": UNKNOWN_DIGEST}});
    assert_eq!(
        app.ecr("ListImageReferrers", lonely).await.ok()["referrers"],
        json!([])
    );
    for invalid in [
        json!({"subjectId": {"imageDigest": "sha256:short"}}),
        json!({"subjectId": {"imageDigest": subject.digest}, "maxResults": 51}),
        json!({"subjectId": {"imageDigest": subject.digest},
               "filter": {"artifactTypes": ["a", "b", "c", "d", "e", "f"]}}),
    ] {
        let mut request = invalid.clone();
        request["repositoryName"] = json!("arts");
        app.ecr("ListImageReferrers", request)
            .await
            .error("InvalidParameterException");
    }

    // The referrer's own detail names its subject.
    let detail = app
        .ecr(
            "DescribeImages",
            json!({"repositoryName": "arts", "imageIds": [{"imageDigest": expected[0]["digest"]}]}),
        )
        .await
        .ok()["imageDetails"][0]
        .clone();
    assert_eq!(detail["subjectManifestDigest"], subject.digest);
    assert_eq!(detail["artifactMediaType"], expected[0]["artifactType"]);
}

#[tokio::test]
async fn put_image_answers_the_media_type_it_stored() {
    let app = TestApp::spawn().await;
    app.create_repository("typed", json!({})).await;
    let (manifest, _, _) = app.push_image("typed", "v1").await;
    let media_type = manifest["mediaType"].clone();
    let mut untyped = manifest.clone();
    untyped.as_object_mut().unwrap().remove("mediaType");
    let put = |manifest: &serde_json::Value, tag: &str, extra: serde_json::Value| {
        let mut input = json!({"repositoryName": "typed", "imageManifest": manifest.to_string(),
                               "imageTag": tag});
        input
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        app.ecr("PutImage", input)
    };

    // Named by the manifest only, or by the request only.
    let mut renamed = manifest.clone();
    renamed["annotations"] = json!({"retagged": "yes"});
    let output = put(&renamed, "v2", json!({})).await.ok();
    assert_eq!(output["image"]["imageManifestMediaType"], media_type);
    let output = put(
        &untyped,
        "v3",
        json!({"imageManifestMediaType": media_type}),
    )
    .await
    .ok();
    assert_eq!(output["image"]["imageManifestMediaType"], media_type);
    let described = app
        .ecr(
            "DescribeImages",
            json!({"repositoryName": "typed", "imageIds": [{"imageTag": "v3"}]}),
        )
        .await
        .ok();
    assert_eq!(
        described["imageDetails"][0]["imageManifestMediaType"],
        media_type
    );
    // Named by neither, the manifest is refused rather than stored without a type.
    let mut bare = untyped.clone();
    bare["annotations"] = json!({"bare": "yes"});
    put(&bare, "v4", json!({}))
        .await
        .error("InvalidParameterException");
}
