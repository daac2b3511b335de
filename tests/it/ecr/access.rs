//! Login passwords, repository and registry policies, resource tags through the ECR API.

use base64::Engine as _;
use serde_json::json;

use crate::auth::push_image_as;
use crate::common::{ADMIN_PASSWORD, TestApp, auth_on, basic};
use crate::ecr::Signer;

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage"]}]}"#;

#[tokio::test]
async fn repository_policies_are_checked_stored_and_removed() {
    let app = TestApp::spawn().await;
    app.create_repository("guarded", json!({})).await;
    let name = json!({"repositoryName": "guarded"});
    app.ecr("GetRepositoryPolicy", name.clone())
        .await
        .error("RepositoryPolicyNotFoundException");
    let set = app
        .ecr(
            "SetRepositoryPolicy",
            json!({"repositoryName": "guarded", "policyText": POLICY}),
        )
        .await
        .ok();
    assert_eq!(set["policyText"], POLICY);
    let got = app.ecr("GetRepositoryPolicy", name.clone()).await.ok();
    assert_eq!(got["policyText"], POLICY);
    for bad in [
        "not json",
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#,
    ] {
        app.ecr(
            "SetRepositoryPolicy",
            json!({"repositoryName": "guarded", "policyText": bad}),
        )
        .await
        .error("InvalidParameterException");
    }
    let deleted = app.ecr("DeleteRepositoryPolicy", name.clone()).await.ok();
    assert_eq!(deleted["policyText"], POLICY);
    app.ecr("DeleteRepositoryPolicy", name)
        .await
        .error("RepositoryPolicyNotFoundException");
    app.ecr(
        "SetRepositoryPolicy",
        json!({"repositoryName": "ghost", "policyText": POLICY}),
    )
    .await
    .error("RepositoryNotFoundException");
}

#[tokio::test]
async fn resource_tags_are_added_replaced_listed_and_removed() {
    let app = TestApp::spawn().await;
    let arn = app
        .create_repository("tagged", json!({"tags": [{"Key": "a", "Value": "1"}]}))
        .await["repositoryArn"]
        .clone();
    app.ecr(
        "TagResource",
        json!({"resourceArn": arn, "tags": [{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "3"}]}),
    )
    .await
    .ok();
    let listed = app
        .ecr("ListTagsForResource", json!({"resourceArn": arn}))
        .await
        .ok();
    assert_eq!(
        listed["tags"],
        json!([{"Key": "a", "Value": "3"}, {"Key": "b", "Value": "2"}])
    );
    app.ecr(
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["a"]}),
    )
    .await
    .ok();
    let listed = app
        .ecr("ListTagsForResource", json!({"resourceArn": arn}))
        .await
        .ok();
    assert_eq!(listed["tags"], json!([{"Key": "b", "Value": "2"}]));

    let many: Vec<_> = (0..50)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    app.ecr("TagResource", json!({"resourceArn": arn, "tags": many}))
        .await
        .error("TooManyTagsException");
    let listed = app
        .ecr("ListTagsForResource", json!({"resourceArn": arn}))
        .await
        .ok();
    assert_eq!(listed["tags"].as_array().unwrap().len(), 1, "unchanged");

    let ghost = arn.as_str().unwrap().replace("tagged", "ghost");
    app.ecr("ListTagsForResource", json!({"resourceArn": ghost}))
        .await
        .error("RepositoryNotFoundException");
    app.ecr(
        "ListTagsForResource",
        json!({"resourceArn": "arn:aws:s3:::bucket"}),
    )
    .await
    .error("InvalidParameterException");
}

#[tokio::test]
async fn a_registry_policy_applies_to_every_repository() {
    let app = TestApp::spawn_with(auth_on).await;
    let store = app.store().await;
    wharf::admin::create_user(&*store, "reader", Some("reader-secret".into()))
        .await
        .unwrap();
    let (key_id, secret) = app.access_key("admin").await;
    let admin = Signer::now(&key_id, &secret);
    app.ecr_as(Some(&admin), "GetRegistryPolicy", json!({}))
        .await
        .error("RegistryPolicyNotFoundException");
    let reader_pull = basic("reader", "reader-secret");
    let admin_basic = basic("admin", ADMIN_PASSWORD);
    push_image_as(&app, &admin_basic, "shared/app", "v1").await;
    let pull = || {
        app.get("/v2/shared/app/manifests/v1")
            .header("authorization", reader_pull.clone())
            .send()
    };
    assert_eq!(pull().await.unwrap().status(), 403);

    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"reader"},"Action":"ecr:BatchGetImage","Resource":"*"}]}"#;
    app.ecr_as(
        Some(&admin),
        "PutRegistryPolicy",
        json!({"policyText": policy}),
    )
    .await
    .ok();
    assert_eq!(pull().await.unwrap().status(), 200);
    let got = app
        .ecr_as(Some(&admin), "GetRegistryPolicy", json!({}))
        .await
        .ok();
    assert_eq!(got["policyText"], policy);
    app.ecr_as(Some(&admin), "DeleteRegistryPolicy", json!({}))
        .await
        .ok();
    assert_eq!(pull().await.unwrap().status(), 403);
    app.ecr_as(
        Some(&admin),
        "PutRegistryPolicy",
        json!({"policyText": "{}"}),
    )
    .await
    .error("InvalidParameterException");
}

#[tokio::test]
async fn authorization_tokens_log_in_as_the_caller_for_twelve_hours() {
    let app = TestApp::spawn_with(auth_on).await;
    let (key_id, secret) = app.access_key("admin").await;
    let signer = Signer::now(&key_id, &secret);
    let answer = app
        .ecr_as(Some(&signer), "GetAuthorizationToken", json!({}))
        .await
        .ok();
    let data = &answer["authorizationData"][0];
    assert_eq!(data["proxyEndpoint"], app.base.as_str());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let lifetime = data["expiresAt"].as_f64().unwrap() - now;
    assert!((43_000.0..=43_200.0).contains(&lifetime), "{lifetime}");
    app.ecr_as(
        Some(&signer),
        "GetAuthorizationToken",
        json!({"registryIds": ["000000000000"]}),
    )
    .await
    .error("InvalidParameterException");
    let token = base64::engine::general_purpose::STANDARD
        .decode(data["authorizationToken"].as_str().unwrap())
        .unwrap();
    let token = String::from_utf8(token).unwrap();
    let (user, password) = token.split_once(':').unwrap();
    assert_eq!(user, "AWS");
    let login = app
        .get("/v2/")
        .header("authorization", basic(user, password))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
}

#[tokio::test]
async fn a_configured_registry_id_names_the_registry_and_keeps_its_policy() {
    let app = TestApp::spawn_with(|config| config.registry_id = Some("123456789012".into())).await;
    let created = app.create_repository("named", json!({})).await;
    assert_eq!(
        created["repositoryArn"],
        "arn:aws:ecr:us-east-1:123456789012:repository/named"
    );
    app.ecr("PutRegistryPolicy", json!({"policyText": POLICY}))
        .await
        .ok();
    let got = app.ecr("GetRegistryPolicy", json!({})).await.ok();
    assert_eq!(
        (got["registryId"].as_str(), got["policyText"].as_str()),
        (Some("123456789012"), Some(POLICY))
    );
    // The same name in another registry or region is not this repository.
    for arn in [
        "arn:aws:ecr:us-east-1:000000000000:repository/named",
        "arn:aws:ecr:eu-west-1:123456789012:repository/named",
    ] {
        app.ecr("ListTagsForResource", json!({"resourceArn": arn}))
            .await
            .error("InvalidParameterException");
    }
}
