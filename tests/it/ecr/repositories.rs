//! Repositories as resources through the ECR API, tag immutability on both planes, and
//! create-on-push.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, assert_error, header};

#[tokio::test]
async fn created_repositories_carry_their_settings_and_names() {
    let app = TestApp::spawn().await;
    let created = app
        .create_repository(
            "team/app",
            json!({
                "tags": [{"Key": "team", "Value": "core"}],
                "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters": [
                    {"filterType": "WILDCARD", "filter": "latest*"}
                ],
                "imageScanningConfiguration": {"scanOnPush": true},
                "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "alias/k"},
            }),
        )
        .await;
    let registry_id = created["registryId"].as_str().unwrap().to_string();
    assert_eq!(registry_id.len(), 12);
    assert!(registry_id.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(
        created["repositoryArn"],
        format!("arn:aws:ecr:us-east-1:{registry_id}:repository/team/app")
    );
    let host = app.base.trim_start_matches("http://");
    assert_eq!(created["repositoryUri"], format!("{host}/team/app"));
    assert_eq!(created["imageTagMutability"], "IMMUTABLE_WITH_EXCLUSION");
    assert_eq!(
        created["imageTagMutabilityExclusionFilters"][0]["filter"],
        "latest*"
    );
    assert_eq!(created["imageScanningConfiguration"]["scanOnPush"], true);
    assert_eq!(created["encryptionConfiguration"]["kmsKey"], "alias/k");
    assert!(created["createdAt"].as_f64().unwrap() > 1.7e9);

    let described = app
        .ecr(
            "DescribeRepositories",
            json!({"repositoryNames": ["team/app"]}),
        )
        .await
        .ok();
    assert_eq!(described["repositories"][0], created);
    let again = app
        .ecr("CreateRepository", json!({"repositoryName": "team/app"}))
        .await;
    again.error("RepositoryAlreadyExistsException");
    let registry = app.ecr("DescribeRegistry", json!({})).await.ok();
    assert_eq!(registry["registryId"], registry_id.as_str());
    assert_eq!(registry["replicationConfiguration"]["rules"], json!([]));

    // Defaults, and the id every restart keeps.
    let plain = app.create_repository("plain", json!({})).await;
    assert_eq!(plain["imageTagMutability"], "MUTABLE");
    assert_eq!(plain["encryptionConfiguration"]["encryptionType"], "AES256");
    assert_eq!(plain["registryId"], registry_id.as_str());
}

#[tokio::test]
async fn invalid_settings_and_names_are_invalid_parameters() {
    let app = TestApp::spawn().await;
    let invalid = [
        json!({"repositoryName": "Upper/Case"}),
        json!({"repositoryName": "a"}),
        json!({"repositoryName": "a//b"}),
        json!({"repositoryName": 7}),
        json!({"repositoryName": "ok", "imageTagMutability": "SOMETIMES"}),
        json!({"repositoryName": "ok", "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"}),
        json!({"repositoryName": "ok", "imageTagMutability": "MUTABLE",
               "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "x"}]}),
        json!({"repositoryName": "ok", "imageTagMutability": "MUTABLE_WITH_EXCLUSION",
               "imageTagMutabilityExclusionFilters": [{"filterType": "REGEX", "filter": "x"}]}),
        json!({"repositoryName": "ok", "imageTagMutability": "MUTABLE_WITH_EXCLUSION",
               "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "a?"}]}),
        json!({"repositoryName": "ok", "encryptionConfiguration": {"encryptionType": "ROT13"}}),
        json!({"repositoryName": "ok", "registryId": "999999999999"}),
    ];
    for input in invalid {
        app.ecr("CreateRepository", input.clone())
            .await
            .error("InvalidParameterException");
    }
    let tags: Vec<Value> = (0..51)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    app.ecr(
        "CreateRepository",
        json!({"repositoryName": "ok", "tags": tags}),
    )
    .await
    .error("TooManyTagsException");
    app.ecr(
        "CreateRepository",
        json!({"repositoryName": "ok", "tags": [{"Key": "", "Value": "v"}]}),
    )
    .await
    .error("InvalidTagParameterException");
    // Nothing was created by any of them.
    let all = app.ecr("DescribeRepositories", json!({})).await.ok();
    assert_eq!(all["repositories"], json!([]));
}

#[tokio::test]
async fn repositories_are_described_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    let mut names: Vec<String> = (0..7).map(|i| format!("page/r{i}")).collect();
    for name in &names {
        app.create_repository(name, json!({})).await;
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut input = json!({"maxResults": 3});
        if let Some(token) = &token {
            input["nextToken"] = json!(token);
        }
        let page = app.ecr("DescribeRepositories", input).await.ok();
        let repositories = page["repositories"].as_array().unwrap();
        assert!(repositories.len() <= 3);
        seen.extend(
            repositories
                .iter()
                .map(|r| r["repositoryName"].as_str().unwrap().to_string()),
        );
        match page["nextToken"].as_str() {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    names.sort();
    assert_eq!(seen, names);

    app.ecr("DescribeRepositories", json!({"maxResults": 0}))
        .await
        .error("InvalidParameterException");
    app.ecr("DescribeRepositories", json!({"nextToken": "not a token!"}))
        .await
        .error("InvalidParameterException");
    app.ecr(
        "DescribeRepositories",
        json!({"repositoryNames": ["page/r0", "page/ghost"]}),
    )
    .await
    .error("RepositoryNotFoundException");
}

#[tokio::test]
async fn a_repository_with_images_is_deleted_only_by_force() {
    let app = TestApp::spawn().await;
    app.create_repository("doomed", json!({})).await;
    app.push_image("doomed", "v1").await;
    app.ecr("DeleteRepository", json!({"repositoryName": "doomed"}))
        .await
        .error("RepositoryNotEmptyException");
    let deleted = app
        .ecr(
            "DeleteRepository",
            json!({"repositoryName": "doomed", "force": true}),
        )
        .await
        .ok();
    assert_eq!(deleted["repository"]["repositoryName"], "doomed");
    app.ecr("DeleteRepository", json!({"repositoryName": "doomed"}))
        .await
        .error("RepositoryNotFoundException");
    let gone = app.get("/v2/doomed/manifests/v1").send().await.unwrap();
    assert_error(gone, 404, "MANIFEST_UNKNOWN").await;

    // An empty one goes without force.
    app.create_repository("empty", json!({})).await;
    app.ecr("DeleteRepository", json!({"repositoryName": "empty"}))
        .await
        .ok();
}

#[tokio::test]
async fn mutability_and_scanning_settings_change_in_place() {
    let app = TestApp::spawn().await;
    app.create_repository("settings", json!({})).await;
    let changed = app
        .ecr(
            "PutImageTagMutability",
            json!({"repositoryName": "settings", "imageTagMutability": "IMMUTABLE"}),
        )
        .await
        .ok();
    assert_eq!(changed["imageTagMutability"], "IMMUTABLE");
    let scanning = app
        .ecr(
            "PutImageScanningConfiguration",
            json!({"repositoryName": "settings",
                   "imageScanningConfiguration": {"scanOnPush": true}}),
        )
        .await
        .ok();
    assert_eq!(scanning["imageScanningConfiguration"]["scanOnPush"], true);
    let described = app
        .ecr(
            "DescribeRepositories",
            json!({"repositoryNames": ["settings"]}),
        )
        .await
        .ok();
    let repository = &described["repositories"][0];
    assert_eq!(repository["imageTagMutability"], "IMMUTABLE");
    assert_eq!(repository["imageScanningConfiguration"]["scanOnPush"], true);
    app.ecr(
        "PutImageTagMutability",
        json!({"repositoryName": "ghost", "imageTagMutability": "IMMUTABLE"}),
    )
    .await
    .error("RepositoryNotFoundException");
}

/// Pushes `manifest` under `tag` over /v2.
async fn put(app: &TestApp, repo: &str, tag: &str, manifest: &Value) -> reqwest::Response {
    app.put_manifest(repo, tag, manifest).await
}

#[tokio::test]
async fn immutable_tags_do_not_move_on_v2_but_the_same_push_succeeds_again() {
    let app = TestApp::spawn().await;
    app.create_repository("team/app", json!({"imageTagMutability": "IMMUTABLE"}))
        .await;
    let (first, first_digest, _) = app.push_image("team/app", "v1").await;
    assert_eq!(
        put(&app, "team/app", "v1", &first).await.status(),
        StatusCode::CREATED,
        "a re-run of the same push"
    );
    let (second, second_digest, _) = app.push_image("team/app", "v2").await;
    let refused = put(&app, "team/app", "v1", &second).await;
    let body = assert_error(refused, 400, "TAG_INVALID").await;
    assert_eq!(
        body["errors"][0]["message"],
        "The image tag 'v1' already exists in the 'team/app' repository and cannot be \
         overwritten because the repository is immutable."
    );
    let v1 = app.get("/v2/team/app/manifests/v1").send().await.unwrap();
    assert_eq!(header(&v1, "docker-content-digest"), first_digest);
    assert_ne!(first_digest, second_digest);
}

#[tokio::test]
async fn exclusion_filters_pick_the_tags_that_may_move() {
    let app = TestApp::spawn().await;
    let filters = json!([{"filterType": "WILDCARD", "filter": "latest*"}]);
    app.create_repository(
        "keep",
        json!({"imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
               "imageTagMutabilityExclusionFilters": filters}),
    )
    .await;
    app.create_repository(
        "lock",
        json!({"imageTagMutability": "MUTABLE_WITH_EXCLUSION",
               "imageTagMutabilityExclusionFilters": filters}),
    )
    .await;
    for repo in ["keep", "lock"] {
        for tag in ["latest", "v1"] {
            app.push_image(repo, tag).await;
        }
    }
    let (other, ..) = app.push_image("keep", "other").await;
    assert_eq!(put(&app, "keep", "latest", &other).await.status(), 201);
    assert_eq!(put(&app, "keep", "v1", &other).await.status(), 400);
    let (other, ..) = app.push_image("lock", "other").await;
    assert_eq!(put(&app, "lock", "latest", &other).await.status(), 400);
    assert_eq!(put(&app, "lock", "v1", &other).await.status(), 201);
}

#[tokio::test]
async fn without_create_on_push_only_created_repositories_take_pushes() {
    let app = TestApp::spawn_with(|config| config.create_on_push = false).await;
    let start = app
        .request(reqwest::Method::POST, "/v2/uncreated/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_error(start, 404, "NAME_UNKNOWN").await;
    let manifest = json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                   "size": 2},
        "layers": []});
    assert_error(
        put(&app, "uncreated", "v1", &manifest).await,
        404,
        "NAME_UNKNOWN",
    )
    .await;
    app.create_repository("uncreated", json!({})).await;
    app.push_image("uncreated", "v1").await;
}
