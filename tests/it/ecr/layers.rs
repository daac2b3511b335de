//! ECR's layer operations: a blob pushed in parts and pulled over `/v2`, layer checks, download
//! URLs (on Wharf with auth off and on, and presigned S3 URLs), and each documented error.

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use wharf::auth::token::{AccessEntry, Claims, SigningKey, TokenUse, claims};
use wharf::metadata::IdentityStore as _;

use super::{Answer, Key};
use crate::common::{ProductionBackends, TestApp, assert_error, auth_on, sha256, uuid_like};

/// Calls `operation` signed with `key` if given, else unsigned (auth off).
async fn call(app: &TestApp, key: Option<&Key>, operation: &str, input: Value) -> Answer {
    match key {
        Some(key) => app.ecr_signed(key, operation, input).await,
        None => app.ecr(operation, input).await,
    }
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Bytes unique to this run, `len` long.
fn layer_bytes(len: usize) -> Vec<u8> {
    let seed = uuid_like().into_bytes();
    (0..len)
        .map(|i| seed[i % seed.len()] ^ (i / 7) as u8)
        .collect()
}

async fn initiate(app: &TestApp, key: Option<&Key>, repo: &str) -> String {
    let output = call(
        app,
        key,
        "InitiateLayerUpload",
        json!({"repositoryName": repo}),
    )
    .await
    .ok();
    assert_eq!(output["partSize"], 20_971_520);
    let id = output["uploadId"].as_str().unwrap().to_string();
    uuid::Uuid::parse_str(&id).expect("upload ids are UUIDs");
    id
}

/// Sends `part` of upload `id` starting at byte `first`.
async fn upload_part(
    app: &TestApp,
    key: Option<&Key>,
    repo: &str,
    id: &str,
    first: usize,
    part: &[u8],
) -> Answer {
    let input = json!({
        "repositoryName": repo,
        "uploadId": id,
        "partFirstByte": first,
        "partLastByte": first + part.len() - 1,
        "layerPartBlob": base64(part),
    });
    call(app, key, "UploadLayerPart", input).await
}

async fn complete(app: &TestApp, key: Option<&Key>, repo: &str, id: &str, digest: &str) -> Answer {
    let input = json!({"repositoryName": repo, "uploadId": id, "layerDigests": [digest]});
    call(app, key, "CompleteLayerUpload", input).await
}

/// Pushes `data` through the API in `parts` parts and returns its digest.
async fn push_layer(
    app: &TestApp,
    key: Option<&Key>,
    repo: &str,
    data: &[u8],
    parts: usize,
) -> String {
    let id = initiate(app, key, repo).await;
    let size = data.len().div_ceil(parts);
    for (i, part) in data.chunks(size).enumerate() {
        let first = i * size;
        let output = upload_part(app, key, repo, &id, first, part).await.ok();
        assert_eq!(output["lastByteReceived"], first + part.len() - 1);
        assert_eq!(output["uploadId"], id.as_str());
        assert_eq!(output["repositoryName"], repo);
        assert!(output["registryId"].is_string());
    }
    let digest = sha256(data);
    let output = complete(app, key, repo, &id, &digest).await.ok();
    assert_eq!(output["layerDigest"], digest.as_str());
    assert_eq!(output["uploadId"], id.as_str());
    assert_eq!(output["repositoryName"], repo);
    digest
}

async fn check(app: &TestApp, repo: &str, digests: &[&str]) -> Value {
    let input = json!({"repositoryName": repo, "layerDigests": digests});
    app.ecr("BatchCheckLayerAvailability", input).await.ok()
}

async fn download_url(app: &TestApp, key: Option<&Key>, repo: &str, digest: &str) -> String {
    let input = json!({"repositoryName": repo, "layerDigest": digest});
    let output = call(app, key, "GetDownloadUrlForLayer", input).await.ok();
    assert_eq!(output["layerDigest"], digest);
    output["downloadUrl"].as_str().unwrap().to_string()
}

/// Fetches `url` with a client that holds no credentials.
async fn fetch(url: &str) -> reqwest::Response {
    reqwest::Client::new().get(url).send().await.unwrap()
}

#[tokio::test]
async fn a_layer_pushed_in_parts_is_pulled_byte_identical() {
    let app = TestApp::spawn().await;
    app.create_repository("team/app", json!({})).await;
    let data = layer_bytes(300_001);
    let digest = sha256(&data);
    assert_eq!(
        check(&app, "team/app", &[&digest]).await["failures"][0]["failureCode"],
        "MissingLayerDigest"
    );

    assert_eq!(push_layer(&app, None, "team/app", &data, 3).await, digest);

    let pulled = app
        .get(&format!("/v2/team/app/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), StatusCode::OK);
    assert_eq!(pulled.bytes().await.unwrap().as_ref(), data.as_slice());
    let checked = check(&app, "team/app", &[&digest]).await;
    assert_eq!(
        checked["layers"],
        json!([{"layerDigest": digest, "layerAvailability": "AVAILABLE", "layerSize": data.len()}])
    );
    assert_eq!(checked["failures"], json!([]));
}

#[tokio::test]
async fn parts_that_do_not_fit_the_upload_are_refused_and_it_carries_on() {
    let app = TestApp::spawn().await;
    app.create_repository("team/app", json!({})).await;
    app.create_repository("team/other", json!({})).await;
    let id = initiate(&app, None, "team/app").await;
    let part = |first: usize, last: i64, blob: &str| {
        json!({"repositoryName": "team/app", "uploadId": id, "partFirstByte": first,
               "partLastByte": last, "layerPartBlob": blob})
    };

    let not_base64 = part(0, 3, "not base64!");
    app.ecr("UploadLayerPart", not_base64)
        .await
        .error("InvalidParameterException");
    let negative = part(0, -1, &base64(b"abcd"));
    app.ecr("UploadLayerPart", negative)
        .await
        .error("InvalidParameterException");
    for (first, last) in [(0, 2), (0, 4), (3, 0)] {
        app.ecr("UploadLayerPart", part(first, last, &base64(b"abcd")))
            .await
            .error("InvalidLayerPartException");
    }
    // An inclusive byte span cannot describe nothing: empty parts are refused, as is the
    // span of every byte there could be.
    app.ecr("UploadLayerPart", part(0, 0, ""))
        .await
        .error("InvalidLayerPartException");
    let everything = json!({"repositoryName": "team/app", "uploadId": id, "partFirstByte": 0,
                            "partLastByte": u64::MAX, "layerPartBlob": ""});
    app.ecr("UploadLayerPart", everything)
        .await
        .error("InvalidLayerPartException");

    upload_part(&app, None, "team/app", &id, 0, b"abcd")
        .await
        .ok();
    for first in [0, 2, 5] {
        let out_of_order = upload_part(&app, None, "team/app", &id, first, b"efgh").await;
        let error = out_of_order.error("InvalidLayerPartException");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("lastValidByteReceived: 3"), "{message}");
    }

    let elsewhere = upload_part(&app, None, "team/other", &id, 4, b"efgh").await;
    elsewhere.error("UploadNotFoundException");
    for unknown in [uuid_like(), "not-an-upload".to_string()] {
        let answer = upload_part(&app, None, "team/app", &unknown, 0, b"abcd").await;
        answer.error("UploadNotFoundException");
    }

    let output = upload_part(&app, None, "team/app", &id, 4, b"efgh")
        .await
        .ok();
    assert_eq!(output["lastByteReceived"], 7);
    let digest = sha256(b"abcdefgh");
    complete(&app, None, "team/app", &id, &digest).await.ok();
}

#[tokio::test]
async fn parts_larger_than_ecr_takes_are_refused() {
    let app = TestApp::spawn().await;
    app.create_repository("team/app", json!({})).await;
    let id = initiate(&app, None, "team/app").await;
    let oversized = vec![0; 20 * 1024 * 1024 + 1];
    upload_part(&app, None, "team/app", &id, 0, &oversized)
        .await
        .error("InvalidParameterException");
}

#[tokio::test]
async fn completing_checks_the_upload_and_the_digest() {
    let app = TestApp::spawn().await;
    app.create_repository("team/app", json!({})).await;
    let data = layer_bytes(1000);
    let digest = sha256(&data);
    let id = initiate(&app, None, "team/app").await;

    complete(&app, None, "team/app", &id, &digest)
        .await
        .error("EmptyUploadException");
    upload_part(&app, None, "team/app", &id, 0, &data)
        .await
        .ok();
    for digests in [json!(["sha256:xyz"]), json!([]), json!([digest, digest])] {
        let input = json!({"repositoryName": "team/app", "uploadId": id, "layerDigests": digests});
        app.ecr("CompleteLayerUpload", input)
            .await
            .error("InvalidParameterException");
    }
    complete(&app, None, "team/app", &uuid_like(), &digest)
        .await
        .error("UploadNotFoundException");
    complete(&app, None, "team/other", &id, &digest)
        .await
        .error("RepositoryNotFoundException");

    // A wrong digest ends the upload, as on /v2.
    complete(&app, None, "team/app", &id, &sha256(b"something else"))
        .await
        .error("InvalidLayerException");
    complete(&app, None, "team/app", &id, &digest)
        .await
        .error("UploadNotFoundException");

    // A layer the repository has already is refused, and its upload discarded.
    push_layer(&app, None, "team/app", &data, 1).await;
    let again = initiate(&app, None, "team/app").await;
    upload_part(&app, None, "team/app", &again, 0, &data)
        .await
        .ok();
    complete(&app, None, "team/app", &again, &digest)
        .await
        .error("LayerAlreadyExistsException");
    upload_part(&app, None, "team/app", &again, data.len(), b"more")
        .await
        .error("UploadNotFoundException");
}

#[tokio::test]
async fn layer_checks_report_each_digest() {
    let app = TestApp::spawn().await;
    app.create_repository("team/app", json!({})).await;
    app.create_repository("team/other", json!({})).await;
    let here = app.push_blob("team/app", b"linked here").await;
    let elsewhere = app.push_blob("team/other", b"linked elsewhere").await;
    let missing = sha256(b"never pushed");

    let checked = check(
        &app,
        "team/app",
        &[&here, &missing, "sha256:nope", &elsewhere],
    )
    .await;
    assert_eq!(
        checked["layers"],
        json!([{"layerDigest": here, "layerAvailability": "AVAILABLE", "layerSize": 11}])
    );
    let failures: Vec<(&str, &str)> = checked["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(f["failureReason"].is_string());
            (
                f["layerDigest"].as_str().unwrap(),
                f["failureCode"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        failures,
        [
            (missing.as_str(), "MissingLayerDigest"),
            ("sha256:nope", "InvalidLayerDigest"),
            (elsewhere.as_str(), "MissingLayerDigest"),
        ]
    );

    let none = json!({"repositoryName": "team/app", "layerDigests": []});
    app.ecr("BatchCheckLayerAvailability", none)
        .await
        .error("InvalidParameterException");
    let unknown_repo = json!({"repositoryName": "team/nope", "layerDigests": [here]});
    app.ecr("BatchCheckLayerAvailability", unknown_repo)
        .await
        .error("RepositoryNotFoundException");
}

#[tokio::test]
async fn download_urls_without_auth_are_plain_blob_urls() {
    let app = TestApp::spawn().await;
    app.create_repository("team/app", json!({})).await;
    let digest = app.push_blob("team/app", b"downloaded without auth").await;

    let url = download_url(&app, None, "team/app", &digest).await;
    assert_eq!(url, app.url(&format!("/v2/team/app/blobs/{digest}")));
    let fetched = fetch(&url).await;
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(
        fetched.bytes().await.unwrap().as_ref(),
        b"downloaded without auth"
    );

    let unknown = json!({"repositoryName": "team/app", "layerDigest": sha256(b"nothing")});
    app.ecr("GetDownloadUrlForLayer", unknown)
        .await
        .error("LayersNotFoundException");
    let malformed = json!({"repositoryName": "team/app", "layerDigest": "sha256:xyz"});
    app.ecr("GetDownloadUrlForLayer", malformed)
        .await
        .error("InvalidParameterException");
    // No download tokens are issued, so their endpoint has nothing to serve.
    let response = fetch(&app.url("/layers?token=anything")).await;
    assert_error(response, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn download_urls_with_auth_carry_their_own_short_lived_credential() {
    let app = TestApp::spawn_with(auth_on).await;
    let key = app.access_key("admin").await;
    let repo = json!({"repositoryName": "team/app"});
    app.ecr_signed(&key, "CreateRepository", repo).await.ok();
    let data = layer_bytes(70_000);
    let digest = push_layer(&app, Some(&key), "team/app", &data, 3).await;

    let url = download_url(&app, Some(&key), "team/app", &digest).await;
    let on_wharf = app.url("/layers?token=");
    assert!(url.starts_with(&on_wharf), "{url}");
    let fetched = fetch(&url).await;
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), data.as_slice());
    let ranged = reqwest::Client::new()
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.bytes().await.unwrap().as_ref(), &data[10..20]);

    // A token altered anywhere is refused.
    let token = url.strip_prefix(&on_wharf).unwrap();
    let (unsigned, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{unsigned}.{flipped}{}", &signature[1..]);
    for bad in [tampered.as_str(), "", "not.a.token"] {
        let response = fetch(&format!("{on_wharf}{bad}")).await;
        assert_error(response, 403, "DENIED").await;
    }

    // The token opens this one download, nothing on /v2.
    let blob_path = format!("/v2/team/app/blobs/{digest}");
    let as_bearer = app
        .request(Method::GET, &blob_path)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_error(as_bearer, 401, "UNAUTHORIZED").await;
    let as_login = app
        .request(Method::GET, &blob_path)
        .header("authorization", crate::common::basic("AWS", token))
        .send()
        .await
        .unwrap();
    assert_error(as_login, 401, "UNAUTHORIZED").await;

    // Tokens end, and so does their user's say: an expired token, or one whose user is gone,
    // opens nothing (the same forgery, unexpired and for a user who exists, does).
    let blob = format!("team/app@{digest}");
    let current = forge_download(&app, &blob, |_| {}).await;
    assert_eq!(
        fetch(&format!("{on_wharf}{current}")).await.status(),
        StatusCode::OK
    );
    let expired = forge_download(&app, &blob, |c| {
        c.exp = 1_000;
        c.nbf = 0;
        c.iat = 0;
    })
    .await;
    let orphaned = forge_download(&app, &blob, |c| c.sub = "deleted-user".into()).await;
    for bad in [expired, orphaned] {
        let response = fetch(&format!("{on_wharf}{bad}")).await;
        assert_error(response, 403, "DENIED").await;
    }
}

/// A download token for `blob` (`<repository>@<digest>`) as the registry issues them, signed
/// with its own key (read from its database) after `edit`.
async fn forge_download(app: &TestApp, blob: &str, edit: impl FnOnce(&mut Claims)) -> String {
    let der = app
        .store()
        .await
        .signing_key(b"unused: a key exists", 0)
        .await;
    let key = SigningKey::from_pkcs8(&der.unwrap()).unwrap();
    let access = vec![AccessEntry {
        kind: "blob".into(),
        name: blob.into(),
        actions: vec!["pull".into()],
    }];
    let lifetime = std::time::Duration::from_secs(600);
    let mut claims = claims(
        "wharf",
        "wharf",
        "admin",
        TokenUse::Download,
        lifetime,
        access,
    );
    edit(&mut claims);
    key.sign(&claims)
}

#[tokio::test]
async fn download_urls_are_presigned_s3_urls_when_s3_redirects() {
    let Some(backends) = ProductionBackends::from_env() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = backends.config(dir.path()).await;
    config.s3.as_mut().unwrap().redirect = Some(std::time::Duration::from_secs(60));
    let app = TestApp::spawn_with(move |c| *c = config).await;
    app.create_repository("team/app", json!({})).await;
    let data = layer_bytes(10_000);
    let digest = push_layer(&app, None, "team/app", &data, 2).await;

    let url = download_url(&app, None, "team/app", &digest).await;
    assert!(!url.starts_with(&app.base), "{url}");
    let fetched = fetch(&url).await;
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), data.as_slice());
}
