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
