//! The token endpoint's limits: how many resources one token may name, how repeated scopes
//! merge, and what it answers when access control is off.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{access_of, bearer, push_blob_as, secured, token};
use crate::common::{ADMIN_PASSWORD, TestApp, assert_error, assert_oauth_error, basic, header};

#[tokio::test]
async fn a_token_request_may_name_at_most_sixteen_repositories() {
    let app = secured().await;
    let admin = basic("admin", ADMIN_PASSWORD);
    let scopes: Vec<String> = (0..17).map(|i| format!("repository:r{i}:pull")).collect();
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let refused = token(&app, Some(&admin), &scopes).await;
    let body = assert_oauth_error(refused, 400, "invalid_request").await;
    assert!(
        body["error_description"].as_str().unwrap().contains("16"),
        "{body}"
    );
    // Also when they come space-separated in one parameter, as the spec allows.
    let joined = scopes.join("%20");
    let refused = token(&app, Some(&admin), &[&joined]).await;
    assert_oauth_error(refused, 400, "invalid_request").await;
    let refused = token(&app, None, &scopes).await;
    assert_oauth_error(refused, 400, "invalid_request").await;

    // Sixteen resources are fine, however often each is named.
    let mut sixteen = scopes[..16].to_vec();
    sixteen.extend_from_slice(&scopes[..16]);
    let granted = bearer(&app, Some(&admin), &sixteen).await;
    let access = access_of(&granted);
    assert_eq!(access.as_array().unwrap().len(), 16, "{access}");
    assert_eq!(
        access[15],
        json!({"type": "repository", "name": "r15", "actions": ["pull"]})
    );
}

#[tokio::test]
async fn repeated_scopes_and_actions_merge_and_unknown_actions_are_dropped() {
    let app = secured().await;
    let admin = basic("admin", ADMIN_PASSWORD);
    let merged = bearer(
        &app,
        Some(&admin),
        &[
            "repository:a:pull",
            "repository:a:push,pull,pull",
            "repository:b:frobnicate",
            "repository:c:pull,frobnicate,PUSH",
        ],
    )
    .await;
    assert_eq!(
        access_of(&merged),
        json!([
            {"type": "repository", "name": "a", "actions": ["pull", "push"]},
            {"type": "repository", "name": "b", "actions": []},
            {"type": "repository", "name": "c", "actions": ["pull"]},
        ])
    );
    // A dropped action grants nothing when the token is used.
    let unknown = bearer(&app, Some(&admin), &["repository:b:frobnicate"]).await;
    let response = push_blob_as(&app, &unknown, "b", b"x").await;
    assert!(header(&response, "www-authenticate").contains("error=\"insufficient_scope\""));
    assert_error(response, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn the_token_endpoint_of_a_registry_without_auth_is_an_oauth2_not_found() {
    let app = TestApp::spawn().await;
    let get = app
        .get("/token?service=wharf&scope=repository:a:pull")
        .send()
        .await
        .unwrap();
    assert_oauth_error(get, 404, "invalid_request").await;
    let post = app
        .request(Method::POST, "/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&username=admin&password={ADMIN_PASSWORD}"
        ))
        .send()
        .await
        .unwrap();
    assert_oauth_error(post, 404, "invalid_request").await;
    // The registry itself is open.
    assert_eq!(
        app.get("/v2/").send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_token_carries_each_docker_action_any_of_whose_ecr_actions_is_allowed() {
    let app = secured().await;
    let admin = basic("admin", ADMIN_PASSWORD);
    let pushed = super::push_image_as(&app, &admin, "team/app", "v1").await;
    // A tag-watching bot, and ECR's usual retagging policy.
    let lister = super::user_with_policy(
        &app,
        "lister",
        Some(r#"{"Statement":[{"Effect":"Allow","Action":"ecr:ListImages","Resource":"*"}]}"#),
    )
    .await;
    let retagger = super::user_with_policy(
        &app,
        "retagger",
        Some(
            r#"{"Statement":[{"Effect":"Allow","Action":["ecr:BatchGetImage","ecr:PutImage"],"Resource":"*"}]}"#,
        ),
    )
    .await;
    let lister = basic("lister", &lister);
    let token = bearer(&app, Some(&lister), &["repository:team/app:pull,push"]).await;
    assert_eq!(access_of(&token)[0]["actions"], json!(["pull"]));
    let tags = super::send(&app, Method::GET, &pushed.tags_path(), Some(&token)).await;
    assert_eq!(tags.status(), StatusCode::OK);
    // The token does not stand in for the actions the policy lacks.
    let manifest = super::send(&app, Method::GET, &pushed.manifest_path(), Some(&token)).await;
    assert_error(manifest, 403, "DENIED").await;

    let retagger = basic("retagger", &retagger);
    let token = bearer(&app, Some(&retagger), &["repository:team/app:pull,push"]).await;
    assert_eq!(access_of(&token)[0]["actions"], json!(["pull", "push"]));
    let manifest = app
        .get(&pushed.manifest_path())
        .header("authorization", &token)
        .header("accept", crate::common::OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    let content = manifest.bytes().await.unwrap();
    let retag = app
        .request(Method::PUT, "/v2/team/app/manifests/release")
        .header("authorization", &token)
        .header("content-type", crate::common::OCI_MANIFEST)
        .body(content)
        .send()
        .await
        .unwrap();
    assert_eq!(retag.status(), StatusCode::CREATED);
    // Uploading blobs needs the upload actions, which it lacks.
    let upload = push_blob_as(&app, &token, "team/app", b"new layer").await;
    assert_error(upload, 403, "DENIED").await;
}

#[tokio::test]
async fn the_base_endpoint_wants_a_user_not_just_any_token() {
    let app = secured().await;
    let anonymous = bearer(&app, None, &[]).await;
    let base = super::send(&app, Method::GET, "/v2/", Some(&anonymous)).await;
    assert_error(base, 401, "UNAUTHORIZED").await;

    let password = super::user_with_policy(&app, "leaving", None).await;
    let token = bearer(&app, Some(&basic("leaving", &password)), &[]).await;
    let base = super::send(&app, Method::GET, "/v2/", Some(&token)).await;
    assert_eq!(base.status(), StatusCode::OK);
    wharf::admin::delete_user(&*app.store().await, "leaving")
        .await
        .unwrap();
    let base = super::send(&app, Method::GET, "/v2/", Some(&token)).await;
    assert_error(base, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn a_monolithic_upload_needs_every_upload_action() {
    let app = secured().await;
    let password = super::user_with_policy(
        &app,
        "starter",
        Some(
            r#"{"Statement":[{"Effect":"Allow","Action":"ecr:InitiateLayerUpload","Resource":"*"}]}"#,
        ),
    )
    .await;
    let starter = basic("starter", &password);
    let monolithic = push_blob_as(&app, &starter, "team/app", b"all at once").await;
    assert_error(monolithic, 403, "DENIED").await;
    let session = super::send(
        &app,
        Method::POST,
        "/v2/team/app/blobs/uploads/",
        Some(&starter),
    )
    .await;
    assert_eq!(session.status(), StatusCode::ACCEPTED);
    let location = header(&session, "location");
    let finish = app
        .request(
            Method::PUT,
            &format!("{location}?digest={}", crate::common::sha256(b"x")),
        )
        .header("authorization", &starter)
        .body(b"x".to_vec())
        .send()
        .await
        .unwrap();
    assert_error(finish, 403, "DENIED").await;
}
