//! Access control: the Docker token flow, policies, public repositories, login passwords,
//! access keys, and the attacks a registry must shrug off.
//!
//! Policies and conditions are in `policies`, the password limiter and the admin bootstrap in
//! `logins`, forwarded headers and challenge realms in `proxies`, the token endpoint's
//! limits in `tokens`; this file has the token flow and the helpers the others share.

mod logins;
mod policies;
mod proxies;
mod tokens;

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wharf::admin::{self, PolicyTarget};
use wharf::auth::token::{AccessEntry, SigningKey, TokenUse, claims};
use wharf::metadata::{IdentityStore, now_millis};

use crate::common::{
    ADMIN_PASSWORD, JsonBody, LAYER, OCI_MANIFEST, TestApp, assert_error, assert_oauth_error,
    auth_on, basic, header, sha256, uuid_like,
};

const PULL_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
    "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability","ecr:ListImages"],
    "Resource":"*"}]}"#;

async fn secured() -> TestApp {
    TestApp::spawn_with(auth_on).await
}

async fn user_with_policy(app: &TestApp, name: &str, policy: Option<&str>) -> String {
    let store = app.store().await;
    let password = admin::create_user(&*store, name, None).await.unwrap();
    if let Some(policy) = policy {
        admin::set_policy(&*store, &PolicyTarget::User(name.into()), Some(policy))
            .await
            .unwrap();
    }
    password
}

/// `GET /token` with these credentials and scopes.
async fn token(app: &TestApp, authorization: Option<&str>, scopes: &[&str]) -> reqwest::Response {
    let query: String = scopes.iter().map(|s| format!("&scope={s}")).collect();
    let mut request = app.get(&format!("/token?service=wharf{query}"));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    request.send().await.unwrap()
}

async fn bearer(app: &TestApp, authorization: Option<&str>, scopes: &[&str]) -> String {
    let response = token(app, authorization, scopes).await;
    assert_eq!(response.status(), StatusCode::OK);
    format!(
        "Bearer {}",
        response.json_body().await["token"].as_str().unwrap()
    )
}

fn access_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token
        .trim_start_matches("Bearer ")
        .split('.')
        .nth(1)
        .unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["access"].clone()
}

async fn push_blob_as(
    app: &TestApp,
    authorization: &str,
    repo: &str,
    data: &[u8],
) -> reqwest::Response {
    app.request(
        Method::POST,
        &format!(
            "/v2/{repo}/blobs/uploads/?digest={}",
            crate::common::sha256(data)
        ),
    )
    .header("authorization", authorization)
    .body(data.to_vec())
    .send()
    .await
    .unwrap()
}

/// A registry with auth on, configured by `configure` too, and the configuration it runs
/// on (for starting a second node, or reading its data directory).
async fn secured_with(
    configure: impl FnOnce(&mut wharf::config::Config),
) -> (TestApp, wharf::config::Config) {
    let mut used = None;
    let app = TestApp::spawn_with(|config| {
        auth_on(config);
        configure(config);
        used = Some(config.clone());
    })
    .await;
    (app, used.expect("configured"))
}

/// Validates and stores a repository policy (`None` removes it).
async fn set_repository_policy(app: &TestApp, repo: &str, policy: Option<&str>) {
    admin::set_policy(
        &*app.store().await,
        &PolicyTarget::Repository(repo.parse().unwrap()),
        policy,
    )
    .await
    .unwrap();
}

/// Validates and stores a user's identity policy (`None` removes it).
async fn set_user_policy(app: &TestApp, user: &str, policy: Option<&str>) {
    admin::set_policy(
        &*app.store().await,
        &PolicyTarget::User(user.into()),
        policy,
    )
    .await
    .unwrap();
}

/// `method path`, with these credentials (or none).
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    authorization: Option<&str>,
) -> reqwest::Response {
    let mut request = app.request(method, path);
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    request.send().await.unwrap()
}

/// An image pushed with these credentials: one layer, a config and a manifest tagged `tag`.
pub(crate) struct Pushed {
    repo: String,
    tag: String,
    layer: String,
}

impl Pushed {
    fn manifest_path(&self) -> String {
        format!("/v2/{}/manifests/{}", self.repo, self.tag)
    }

    fn layer_path(&self) -> String {
        format!("/v2/{}/blobs/{}", self.repo, self.layer)
    }

    fn tags_path(&self) -> String {
        format!("/v2/{}/tags/list", self.repo)
    }

    /// The statuses of a manifest pull and a layer pull with these credentials.
    async fn pull_statuses(&self, app: &TestApp, authorization: Option<&str>) -> [u16; 2] {
        let mut manifest = app
            .get(&self.manifest_path())
            .header("accept", OCI_MANIFEST);
        if let Some(authorization) = authorization {
            manifest = manifest.header("authorization", authorization);
        }
        let manifest = manifest.send().await.unwrap().status().as_u16();
        let layer = send(app, Method::GET, &self.layer_path(), authorization).await;
        [manifest, layer.status().as_u16()]
    }
}

pub(crate) async fn push_image_as(
    app: &TestApp,
    authorization: &str,
    repo: &str,
    tag: &str,
) -> Pushed {
    let layer = format!("layer of {repo}:{tag} {}", uuid_like()).into_bytes();
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    for blob in [&layer[..], &config[..]] {
        let response = push_blob_as(app, authorization, repo, blob).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "push a blob to {repo}"
        );
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": config.len()},
        "layers": [{"mediaType": LAYER, "digest": sha256(&layer), "size": layer.len()}],
    });
    let response = app
        .request(Method::PUT, &format!("/v2/{repo}/manifests/{tag}"))
        .header("authorization", authorization)
        .header("content-type", OCI_MANIFEST)
        .body(serde_json::to_vec(&manifest).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "push {repo}:{tag}");
    Pushed {
        repo: repo.into(),
        tag: tag.into(),
        layer: sha256(&layer),
    }
}

#[tokio::test]
async fn unauthenticated_requests_get_a_bearer_challenge_with_the_needed_scope() {
    let app = secured().await;
    let realm = format!("{}/token", app.base);
    let base = app.get("/v2/").send().await.unwrap();
    assert_eq!(
        header(&base, "www-authenticate"),
        format!("Bearer realm=\"{realm}\",service=\"wharf\"")
    );
    assert_error(base, 401, "UNAUTHORIZED").await;

    let pull = app.get("/v2/team/app/manifests/v1").send().await.unwrap();
    assert_eq!(
        header(&pull, "www-authenticate"),
        format!("Bearer realm=\"{realm}\",service=\"wharf\",scope=\"repository:team/app:pull\"")
    );
    let push = app
        .request(Method::POST, "/v2/team/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert!(header(&push, "www-authenticate").ends_with("scope=\"repository:team/app:pull,push\""));
    let catalog = app.get("/v2/_catalog").send().await.unwrap();
    assert!(header(&catalog, "www-authenticate").ends_with("scope=\"registry:catalog:*\""));
    assert_error(catalog, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn token_flow_pushes_and_pulls() {
    let app = secured().await;
    let admin = basic("admin", ADMIN_PASSWORD);
    let response = token(&app, Some(&admin), &["repository:team/app:pull,push"]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.json_body().await;
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    let bearer = format!("Bearer {}", body["token"].as_str().unwrap());
    assert_eq!(
        access_of(&bearer),
        json!([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}])
    );

    assert_eq!(
        push_blob_as(&app, &bearer, "team/app", b"layer")
            .await
            .status(),
        StatusCode::CREATED
    );
    let digest = crate::common::sha256(b"layer");
    let pulled = app
        .get(&format!("/v2/team/app/blobs/{digest}"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.bytes().await.unwrap().as_ref(), b"layer");
    let base = app
        .get("/v2/")
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(base.status(), StatusCode::OK);

    // Basic credentials straight to /v2/, for simple clients.
    let direct = app
        .get(&format!("/v2/team/app/blobs/{digest}"))
        .header("authorization", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), StatusCode::OK);
    let catalog = app
        .get("/v2/_catalog")
        .header("authorization", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        catalog.json_body().await["repositories"],
        json!(["team/app"])
    );

    let wrong = basic("admin", "wrong");
    let refused = token(&app, Some(&wrong), &["repository:team/app:pull"]).await;
    assert_eq!(
        header(&refused, "www-authenticate"),
        "Basic realm=\"wharf\""
    );
    assert_oauth_error(refused, 401, "invalid_client").await;
    let response = app
        .get("/v2/")
        .header("authorization", &wrong)
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn a_pull_only_user_gets_less_than_asked_and_is_denied_pushes() {
    let app = secured().await;
    let password = user_with_policy(&app, "reader", Some(PULL_ONLY)).await;
    let reader = basic("reader", &password);
    let admin = basic("admin", ADMIN_PASSWORD);
    assert_eq!(
        push_blob_as(&app, &admin, "shared", b"bits").await.status(),
        StatusCode::CREATED
    );

    let bearer = bearer(&app, Some(&reader), &["repository:shared:pull,push,delete"]).await;
    assert_eq!(access_of(&bearer)[0]["actions"], json!(["pull"]));
    let digest = crate::common::sha256(b"bits");
    let pull = app
        .get(&format!("/v2/shared/blobs/{digest}"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(pull.status(), StatusCode::OK);
    assert_error(
        push_blob_as(&app, &bearer, "shared", b"new").await,
        403,
        "DENIED",
    )
    .await;
    assert_error(
        push_blob_as(&app, &reader, "shared", b"new").await,
        403,
        "DENIED",
    )
    .await;
    let delete = app
        .request(Method::DELETE, &format!("/v2/shared/blobs/{digest}"))
        .header("authorization", &reader)
        .send()
        .await
        .unwrap();
    assert_error(delete, 403, "DENIED").await;
    let catalog = app
        .get("/v2/_catalog")
        .header("authorization", &reader)
        .send()
        .await
        .unwrap();
    assert_error(catalog, 403, "DENIED").await;
    let catalog_token = bearer_for(&app, &reader, "registry:catalog:*").await;
    assert_eq!(access_of(&catalog_token)[0]["actions"], json!([]));
}

async fn bearer_for(app: &TestApp, authorization: &str, scope: &str) -> String {
    bearer(app, Some(authorization), &[scope]).await
}

#[tokio::test]
async fn repository_policies_and_explicit_denies() {
    let app = secured().await;
    let password = user_with_policy(&app, "dev", None).await;
    let dev = basic("dev", &password);
    let store = app.store().await;
    let allow_dev = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:user/dev"},"Action":"ecr:*"}]}"#;
    admin::set_policy(
        &*store,
        &PolicyTarget::Repository("dev/app".parse().unwrap()),
        Some(allow_dev),
    )
    .await
    .unwrap();
    assert_eq!(
        push_blob_as(&app, &dev, "dev/app", b"ok").await.status(),
        StatusCode::CREATED
    );
    assert_error(
        push_blob_as(&app, &dev, "prod/app", b"no").await,
        403,
        "DENIED",
    )
    .await;

    let deny_delete =
        r#"{"Statement":[{"Effect":"Deny","Action":"ecr:BatchDeleteImage","Resource":"*"}]}"#;
    admin::set_policy(
        &*store,
        &PolicyTarget::User("dev".into()),
        Some(deny_delete),
    )
    .await
    .unwrap();
    let digest = crate::common::sha256(b"ok");
    let delete = app
        .request(Method::DELETE, &format!("/v2/dev/app/blobs/{digest}"))
        .header("authorization", &dev)
        .send()
        .await
        .unwrap();
    assert_error(delete, 403, "DENIED").await;
    let bad = admin::set_policy(
        &*store,
        &PolicyTarget::Repository("dev/app".parse().unwrap()),
        Some("{}"),
    )
    .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn public_repositories_allow_anonymous_pulls_only() {
    let app = secured().await;
    let admin = basic("admin", ADMIN_PASSWORD);
    assert_eq!(
        push_blob_as(&app, &admin, "pub/app", b"open")
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        push_blob_as(&app, &admin, "private", b"closed")
            .await
            .status(),
        StatusCode::CREATED
    );
    admin::set_public(&*app.store().await, &"pub/app".parse().unwrap(), true)
        .await
        .unwrap();

    let digest = crate::common::sha256(b"open");
    let anonymous = app
        .get(&format!("/v2/pub/app/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.bytes().await.unwrap().as_ref(), b"open");
    let push = app
        .request(Method::POST, "/v2/pub/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_error(push, 401, "UNAUTHORIZED").await;

    let public_token = bearer(&app, None, &["repository:pub/app:pull,push"]).await;
    assert_eq!(access_of(&public_token)[0]["actions"], json!(["pull"]));
    let private_token = bearer(&app, None, &["repository:private:pull"]).await;
    assert_eq!(access_of(&private_token)[0]["actions"], json!([]));
    let closed = crate::common::sha256(b"closed");
    let response = app
        .get(&format!("/v2/private/blobs/{closed}"))
        .header("authorization", &private_token)
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn login_passwords_and_access_keys_authenticate() {
    let app = secured().await;
    let store = app.store().await;
    user_with_policy(&app, "ci", Some(PULL_ONLY)).await;
    let auth_settings = wharf::auth::AuthSettings {
        issuer: "wharf".into(),
        service: "wharf".into(),
        token_lifetime: std::time::Duration::from_secs(300),
        login_password_lifetime: std::time::Duration::from_secs(12 * 3600),
    };
    let registry = app.state.ecr.clone();
    let login = admin::login_password(store.clone(), "ci", auth_settings, None, registry)
        .await
        .unwrap();
    let aws = basic("AWS", &login);
    assert_eq!(
        app.get("/v2/")
            .header("authorization", &aws)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let bearer = bearer(&app, Some(&aws), &["repository:x:pull"]).await;
    assert_eq!(access_of(&bearer)[0]["actions"], json!(["pull"]));
    let as_bearer = app
        .get("/v2/")
        .header("authorization", format!("Bearer {login}"))
        .send()
        .await
        .unwrap();
    assert_error(as_bearer, 401, "UNAUTHORIZED").await;
    assert_error(
        app.get("/v2/")
            .header("authorization", basic("ci", &login))
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;

    let (id, secret) = admin::create_key(&*store, "ci").await.unwrap();
    let key = basic(&id, &secret);
    assert_eq!(
        app.get("/v2/")
            .header("authorization", &key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    admin::delete_key(&*store, &id).await.unwrap();
    assert_error(
        app.get("/v2/")
            .header("authorization", &key)
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;

    // Deleting the user ends its login password too.
    admin::delete_user(&*store, "ci").await.unwrap();
    assert_error(
        app.get("/v2/")
            .header("authorization", &aws)
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn oauth2_password_and_refresh_grants() {
    let app = secured().await;
    let form = |body: String| {
        app.request(Method::POST, "/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let response = form(format!(
        "grant_type=password&username=admin&password={ADMIN_PASSWORD}&service=wharf&scope=repository:a:pull&access_type=offline&client_id=test"
    ))
    .await
    .unwrap();
    let body = response.json_body().await;
    assert_eq!(
        access_of(body["access_token"].as_str().unwrap())[0]["actions"],
        json!(["pull"])
    );
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    let refreshed = form(format!(
        "grant_type=refresh_token&refresh_token={refresh}&service=wharf&scope=repository:a:push"
    ))
    .await
    .unwrap();
    assert_eq!(
        access_of(refreshed.json_body().await["token"].as_str().unwrap())[0]["actions"],
        json!(["push"])
    );
    let bad = form("grant_type=refresh_token&refresh_token=forged&service=wharf".into())
        .await
        .unwrap();
    assert_oauth_error(bad, 400, "invalid_grant").await;
    let wrong = form("grant_type=password&username=admin&password=nope".into())
        .await
        .unwrap();
    assert_oauth_error(wrong, 400, "invalid_grant").await;
    let unknown = form("grant_type=client_credentials".into()).await.unwrap();
    assert_oauth_error(unknown, 400, "unsupported_grant_type").await;
    let incomplete = form("grant_type=password&username=admin".into())
        .await
        .unwrap();
    assert_oauth_error(incomplete, 400, "invalid_request").await;
}

/// Signs arbitrary claims with the registry's own key, read from its database.
async fn forge(app: &TestApp, edit: impl FnOnce(&mut wharf::auth::token::Claims)) -> String {
    let store = app.store().await;
    let der = store.signing_key(b"unused: a key exists", 0).await.unwrap();
    let key = SigningKey::from_pkcs8(&der).unwrap();
    let access = vec![AccessEntry {
        kind: "repository".into(),
        name: "a/x".into(),
        actions: vec!["pull".into(), "push".into()],
    }];
    let mut claims = claims(
        "wharf",
        "wharf",
        "admin",
        TokenUse::Access,
        std::time::Duration::from_secs(300),
        access,
    );
    edit(&mut claims);
    format!("Bearer {}", key.sign(&claims))
}

#[tokio::test]
async fn forged_expired_and_misdirected_tokens_are_rejected() {
    use base64::Engine as _;
    let app = secured().await;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let payload = json!({"iss":"wharf","sub":"admin","aud":"wharf","exp":4_000_000_000u64,"nbf":0,"iat":0,"jti":"x","use":"access",
        "access":[{"type":"repository","name":"a/x","actions":["pull","push"]}]});
    let none = format!(
        "Bearer {}.{}.",
        b64(&json!({"alg":"none","typ":"JWT"})),
        b64(&payload)
    );
    let hs256 = format!(
        "Bearer {}.{}.c2lnbmF0dXJl",
        b64(&json!({"alg":"HS256","typ":"JWT"})),
        b64(&payload)
    );
    let valid = forge(&app, |_| {}).await;
    let expired = forge(&app, |c| {
        c.exp = 1_000;
        c.nbf = 0;
        c.iat = 0
    })
    .await;
    let not_yet = forge(&app, |c| c.nbf = c.exp - 1).await;
    let other_service = forge(&app, |c| c.aud = "another-registry".into()).await;
    let other_issuer = forge(&app, |c| c.iss = "someone-else".into()).await;
    let refresh = forge(&app, |c| c.token_use = TokenUse::Refresh).await;
    let path = "/v2/a/x/blobs/uploads/";
    let ok = app
        .request(Method::POST, path)
        .header("authorization", &valid)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::ACCEPTED);
    for token in [
        none,
        hs256,
        expired,
        not_yet,
        other_service,
        other_issuer,
        refresh,
        "Bearer garbage".into(),
    ] {
        let response = app
            .request(Method::POST, path)
            .header("authorization", &token)
            .send()
            .await
            .unwrap();
        assert!(header(&response, "www-authenticate").contains("error=\"invalid_token\""));
        assert_error(response, 401, "UNAUTHORIZED").await;
    }
}

#[tokio::test]
async fn a_token_for_one_repository_does_not_open_another() {
    let app = secured().await;
    let only_a = r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:ecr:*:*:repository/a/*"}]}"#;
    let password = user_with_policy(&app, "alice", Some(only_a)).await;
    let alice = basic("alice", &password);
    let token_a = bearer(&app, Some(&alice), &["repository:a/x:pull,push"]).await;
    assert_eq!(
        push_blob_as(&app, &token_a, "a/x", b"mine").await.status(),
        StatusCode::CREATED
    );
    assert_error(
        push_blob_as(&app, &token_a, "b/x", b"theirs").await,
        403,
        "DENIED",
    )
    .await;
    let token_b = bearer(&app, Some(&alice), &["repository:b/x:pull,push"]).await;
    assert_eq!(access_of(&token_b)[0]["actions"], json!([]));

    // The admin may, so a token that merely lacks the scope gets a challenge to fetch more.
    let admin_a = bearer(
        &app,
        Some(&basic("admin", ADMIN_PASSWORD)),
        &["repository:a/x:pull"],
    )
    .await;
    let response = push_blob_as(&app, &admin_a, "b/x", b"x").await;
    assert!(header(&response, "www-authenticate").contains("error=\"insufficient_scope\""));
    assert_error(response, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn scope_tricks_are_refused() {
    let app = secured().await;
    let admin = basic("admin", ADMIN_PASSWORD);
    for scope in [
        "repository:A/x:pull",
        "repository:a/../b:pull",
        "repository:a//b:pull",
        "repository:a%252Fb:pull",
        "nonsense",
    ] {
        assert_oauth_error(
            token(&app, Some(&admin), &[scope]).await,
            400,
            "invalid_scope",
        )
        .await;
    }
    let wrong_service = app
        .get("/token?service=evil&scope=repository:a:pull")
        .header("authorization", &admin)
        .send()
        .await
        .unwrap();
    assert_oauth_error(wrong_service, 400, "invalid_request").await;
    let encoded = app
        .get("/v2/a%2Fb/manifests/x")
        .header("authorization", &admin)
        .send()
        .await
        .unwrap();
    assert_error(encoded, 400, "NAME_INVALID").await;
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled() {
    let app = secured().await;
    let password = user_with_policy(&app, "target", None).await;
    for _ in 0..5 {
        let guess = token(&app, Some(&basic("target", "guess")), &[]).await;
        assert_oauth_error(guess, 401, "invalid_client").await;
    }
    let locked = token(&app, Some(&basic("target", &password)), &[]).await;
    assert!(header(&locked, "retry-after").parse::<u64>().unwrap() > 0);
    assert_oauth_error(locked, 429, "slow_down").await;
    let direct = app
        .get("/v2/")
        .header("authorization", basic("target", &password))
        .send()
        .await
        .unwrap();
    assert_error(direct, 429, "TOOMANYREQUESTS").await;
    let others = token(&app, Some(&basic("admin", ADMIN_PASSWORD)), &[]).await;
    assert_eq!(others.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_node_shares_one_signing_key() {
    let app = secured().await;
    let store: Arc<wharf::metadata::sql::SqlStore> = app.store().await;
    let first = store.signing_key(b"candidate one", 0).await.unwrap();
    let second = store.signing_key(b"candidate two", 0).await.unwrap();
    assert_eq!(first, second);
    assert!(SigningKey::from_pkcs8(&first).is_ok());
}
