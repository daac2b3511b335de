//! Identity and repository policies as clients meet them: who `"*"` is, per-operation
//! decisions, Denies on public repositories, stored documents that no longer parse, case,
//! principals and conditions, and which resources reach registry-wide operations.

use reqwest::{Method, StatusCode};
use serde_json::json;
use wharf::admin::{self, PolicyTarget};
use wharf::metadata::{IdentityStore, RepositoryAccess, UserPolicy};

use super::{
    PULL_ONLY, access_of, bearer, now_millis, push_blob_as, push_image_as, secured, send,
    set_repository_policy, set_user_policy, token, user_with_policy,
};
use crate::common::{ADMIN_PASSWORD, JsonBody, assert_error, assert_oauth_error, basic, header};

const ALLOW_ANY_USER: &str =
    r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"}]}"#;

/// A repository policy allowing any authenticated user everything, under `condition`.
fn allow_any_user_if(condition: &str) -> String {
    format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{condition}}}]}}"#
    )
}

#[tokio::test]
async fn star_principal_admits_any_user_but_no_anonymous_caller() {
    let app = secured().await;
    set_repository_policy(&app, "open/app", Some(ALLOW_ANY_USER)).await;

    let anonymous = bearer(&app, None, &["repository:open/app:push,pull"]).await;
    assert_eq!(
        access_of(&anonymous),
        json!([{"type": "repository", "name": "open/app", "actions": []}])
    );
    for authorization in [None, Some(anonymous.as_str())] {
        let push = send(
            &app,
            Method::POST,
            "/v2/open/app/blobs/uploads/",
            authorization,
        )
        .await;
        assert!(
            header(&push, "www-authenticate").starts_with("Bearer realm="),
            "a challenge to log in"
        );
        assert_error(push, 401, "UNAUTHORIZED").await;
        let tags = send(&app, Method::GET, "/v2/open/app/tags/list", authorization).await;
        assert_error(tags, 401, "UNAUTHORIZED").await;
    }

    // Any authenticated user, even one without an identity policy, may.
    let password = user_with_policy(&app, "someone", None).await;
    let someone = basic("someone", &password);
    assert_eq!(
        push_blob_as(&app, &someone, "open/app", b"direct")
            .await
            .status(),
        StatusCode::CREATED
    );
    let granted = bearer(&app, Some(&someone), &["repository:open/app:push,pull"]).await;
    assert_eq!(access_of(&granted)[0]["actions"], json!(["pull", "push"]));
    assert_eq!(
        push_blob_as(&app, &granted, "open/app", b"with a token")
            .await
            .status(),
        StatusCode::CREATED
    );
    // …on that repository only.
    assert_error(
        push_blob_as(&app, &someone, "closed/app", b"no").await,
        403,
        "DENIED",
    )
    .await;
}

#[tokio::test]
async fn each_operation_is_decided_on_its_own_action_whatever_the_credentials() {
    let app = secured().await;
    let admin = basic("admin", ADMIN_PASSWORD);
    let team = push_image_as(&app, &admin, "team/app", "v1").await;
    let other = push_image_as(&app, &admin, "other/app", "v1").await;
    let no_listing_of_team = r#"{"Statement":[
        {"Effect":"Allow","Resource":"*","Action":["ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability","ecr:ListImages"]},
        {"Effect":"Deny","Action":"ecr:ListImages",
            "Resource":"arn:aws:ecr:*:*:repository/team/app"}]}"#;
    let password = user_with_policy(&app, "lister", Some(no_listing_of_team)).await;
    let lister = basic("lister", &password);

    let tags = send(&app, Method::GET, &team.tags_path(), Some(&lister)).await;
    assert_error(tags, 403, "DENIED").await;
    let allowed = send(&app, Method::GET, &other.tags_path(), Some(&lister)).await;
    assert_eq!(allowed.json_body().await["tags"], json!(["v1"]));

    // A pull token covers tag listing in Docker's terms, but not against the policy.
    let pull = bearer(&app, Some(&lister), &["repository:team/app:pull"]).await;
    assert_eq!(access_of(&pull)[0]["actions"], json!(["pull"]));
    let tags = send(&app, Method::GET, &team.tags_path(), Some(&pull)).await;
    assert_error(tags, 403, "DENIED").await;
    assert_eq!(team.pull_statuses(&app, Some(&pull)).await, [200, 200]);
    assert_eq!(team.pull_statuses(&app, Some(&lister)).await, [200, 200]);
}

#[tokio::test]
async fn policy_changes_and_deleted_users_apply_to_tokens_already_issued() {
    let app = secured().await;
    let admin = basic("admin", ADMIN_PASSWORD);
    let image = push_image_as(&app, &admin, "shared/app", "v1").await;
    let password = user_with_policy(&app, "reader", Some(PULL_ONLY)).await;
    let issued = bearer(
        &app,
        Some(&basic("reader", &password)),
        &["repository:shared/app:pull"],
    )
    .await;
    assert_eq!(image.pull_statuses(&app, Some(&issued)).await, [200, 200]);

    set_user_policy(&app, "reader", None).await;
    assert_eq!(image.pull_statuses(&app, Some(&issued)).await, [403, 403]);
    set_user_policy(&app, "reader", Some(PULL_ONLY)).await;
    assert_eq!(image.pull_statuses(&app, Some(&issued)).await, [200, 200]);

    let deny_reader = r#"{"Statement":[{"Effect":"Deny","Principal":{"AWS":"reader"},
        "Action":"ecr:GetDownloadUrlForLayer"}]}"#;
    set_repository_policy(&app, "shared/app", Some(deny_reader)).await;
    assert_eq!(image.pull_statuses(&app, Some(&issued)).await, [200, 403]);
    set_repository_policy(&app, "shared/app", None).await;
    assert_eq!(image.pull_statuses(&app, Some(&issued)).await, [200, 200]);

    let offline = app
        .request(Method::POST, "/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&username=reader&password={password}&access_type=offline"
        ))
        .send()
        .await
        .unwrap();
    let refresh_token = offline.json_body().await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();

    admin::delete_user(&*app.store().await, "reader")
        .await
        .unwrap();
    let layer = send(&app, Method::GET, &image.layer_path(), Some(&issued)).await;
    assert_error(layer, 403, "DENIED").await;
    assert_eq!(image.pull_statuses(&app, Some(&issued)).await, [403, 403]);
    let refreshed = app
        .request(Method::POST, "/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&refresh_token={refresh_token}&scope=repository:shared/app:pull"
        ))
        .send()
        .await
        .unwrap();
    assert_oauth_error(refreshed, 400, "invalid_grant").await;
}

#[tokio::test]
async fn public_repositories_keep_their_explicit_denies() {
    let app = secured().await;
    let admin = basic("admin", ADMIN_PASSWORD);
    let image = push_image_as(&app, &admin, "pub/app", "v1").await;
    let store = app.store().await;
    admin::set_public(&*store, &"pub/app".parse().unwrap(), true)
        .await
        .unwrap();
    let deny_from = |cidr: &str| {
        format!(
            r#"{{"Statement":[{{"Effect":"Deny","Principal":"*","Action":"ecr:*",
                "Condition":{{"IpAddress":{{"aws:SourceIp":"{cidr}"}}}}}}]}}"#
        )
    };
    let anonymous_push = || send(&app, Method::POST, "/v2/pub/app/blobs/uploads/", None);

    let early_token = bearer(&app, None, &["repository:pub/app:pull,push"]).await;
    assert_eq!(access_of(&early_token)[0]["actions"], json!(["pull"]));
    assert_eq!(image.pull_statuses(&app, None).await, [200, 200]);
    assert_eq!(
        image.pull_statuses(&app, Some(&early_token)).await,
        [200, 200]
    );
    assert_error(anonymous_push().await, 401, "UNAUTHORIZED").await;
    // A Deny whose condition does not hold changes nothing.
    set_repository_policy(&app, "pub/app", Some(&deny_from("203.0.113.0/24"))).await;
    assert_eq!(image.pull_statuses(&app, None).await, [200, 200]);

    set_repository_policy(&app, "pub/app", Some(&deny_from("127.0.0.0/8"))).await;
    assert_eq!(image.pull_statuses(&app, None).await, [401, 401]);
    let manifest = send(&app, Method::GET, &image.manifest_path(), None).await;
    assert_error(manifest, 401, "UNAUTHORIZED").await;
    let late_token = bearer(&app, None, &["repository:pub/app:pull"]).await;
    assert_eq!(access_of(&late_token)[0]["actions"], json!([]));
    assert_eq!(
        image.pull_statuses(&app, Some(&late_token)).await,
        [401, 401]
    );
    assert_eq!(
        image.pull_statuses(&app, Some(&early_token)).await,
        [401, 401],
        "a token issued before the Deny"
    );
    assert_error(anonymous_push().await, 401, "UNAUTHORIZED").await;
    // The Deny names everyone, the admin included.
    assert_eq!(image.pull_statuses(&app, Some(&admin)).await, [403, 403]);

    set_repository_policy(&app, "pub/app", None).await;
    assert_eq!(image.pull_statuses(&app, None).await, [200, 200]);
    assert_eq!(
        image.pull_statuses(&app, Some(&early_token)).await,
        [200, 200]
    );
}

#[tokio::test]
async fn a_repository_policy_that_no_longer_parses_refuses_even_the_admin() {
    let app = secured().await;
    let admin = basic("admin", ADMIN_PASSWORD);
    let broken = push_image_as(&app, &admin, "broken/app", "v1").await;
    let fine = push_image_as(&app, &admin, "fine/app", "v1").await;
    let store = app.store().await;
    store
        .set_repository_policy("broken/app", Some("{\"Statement\": [tru"), now_millis())
        .await
        .unwrap();
    // Valid JSON, but a repository statement without a Principal.
    let no_principal = r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*"}]}"#;
    store
        .set_repository_policy("invalid/app", Some(no_principal), now_millis())
        .await
        .unwrap();

    assert_eq!(broken.pull_statuses(&app, Some(&admin)).await, [403, 403]);
    assert_error(
        push_blob_as(&app, &admin, "broken/app", b"more").await,
        403,
        "DENIED",
    )
    .await;
    assert_error(
        push_blob_as(&app, &admin, "invalid/app", b"more").await,
        403,
        "DENIED",
    )
    .await;
    let granted = bearer(
        &app,
        Some(&admin),
        &["repository:broken/app:pull,push,delete"],
    )
    .await;
    assert_eq!(access_of(&granted)[0]["actions"], json!([]));

    // Other repositories are unaffected.
    assert_eq!(fine.pull_statuses(&app, Some(&admin)).await, [200, 200]);
    assert_eq!(
        push_blob_as(&app, &admin, "fine/app", b"more")
            .await
            .status(),
        StatusCode::CREATED
    );
    // Nor does making it public let anyone in.
    admin::set_public(&*store, &"broken/app".parse().unwrap(), true)
        .await
        .unwrap();
    assert_eq!(broken.pull_statuses(&app, None).await, [401, 401]);
}

#[tokio::test]
async fn a_user_whose_stored_policy_no_longer_parses_is_refused_everything() {
    let app = secured().await;
    let admin = basic("admin", ADMIN_PASSWORD);
    let image = push_image_as(&app, &admin, "team/app", "v1").await;
    set_repository_policy(&app, "open/app", Some(ALLOW_ANY_USER)).await;
    let everything = r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}"#;
    let password = user_with_policy(&app, "mangled", Some(everything)).await;
    let mangled = basic("mangled", &password);
    assert_eq!(image.pull_statuses(&app, Some(&mangled)).await, [200, 200]);

    let store = app.store().await;
    assert!(
        store
            .set_user_policy("mangled", Some("Allow everything, please"))
            .await
            .unwrap()
    );
    assert_eq!(image.pull_statuses(&app, Some(&mangled)).await, [403, 403]);
    for repo in ["team/app", "open/app"] {
        assert_error(
            push_blob_as(&app, &mangled, repo, b"x").await,
            403,
            "DENIED",
        )
        .await;
    }
    let catalog = send(&app, Method::GET, "/v2/_catalog", Some(&mangled)).await;
    assert_error(catalog, 403, "DENIED").await;
    let granted = bearer(
        &app,
        Some(&mangled),
        &[
            "repository:team/app:pull,push",
            "repository:open/app:pull,push",
            "registry:catalog:*",
        ],
    )
    .await;
    for entry in access_of(&granted).as_array().unwrap() {
        assert_eq!(entry["actions"], json!([]), "{entry}");
    }

    // Valid JSON that is not a valid user policy (it names a Principal) fails closed too.
    let with_principal =
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*"}]}"#;
    store
        .set_user_policy("mangled", Some(with_principal))
        .await
        .unwrap();
    assert_eq!(image.pull_statuses(&app, Some(&mangled)).await, [403, 403]);
    assert_error(
        push_blob_as(&app, &mangled, "open/app", b"x").await,
        403,
        "DENIED",
    )
    .await;
}

#[tokio::test]
async fn string_like_conditions_are_case_sensitive_but_action_names_are_not() {
    let app = secured().await;
    let starts_with_dev = allow_any_user_if(r#"{"StringLike":{"aws:username":"Dev*"}}"#);
    set_repository_policy(&app, "cs/app", Some(&starts_with_dev)).await;
    let dev = basic("dev", &user_with_policy(&app, "dev", None).await);
    let devon = basic("Devon", &user_with_policy(&app, "Devon", None).await);
    assert_error(
        push_blob_as(&app, &dev, "cs/app", b"lower").await,
        403,
        "DENIED",
    )
    .await;
    let image = push_image_as(&app, &devon, "cs/app", "v1").await;

    let shouting = r#"{"Statement":[{"Effect":"Allow","Resource":"*","Action":[
        "ecr:batchgetimage","ECR:GETDOWNLOADURLFORLAYER","Ecr:BatchCheckLayerAvailability"]}]}"#;
    let password = user_with_policy(&app, "puller", Some(shouting)).await;
    let puller = basic("puller", &password);
    assert_eq!(image.pull_statuses(&app, Some(&puller)).await, [200, 200]);
    let granted = bearer(&app, Some(&puller), &["repository:cs/app:pull,push"]).await;
    assert_eq!(access_of(&granted)[0]["actions"], json!(["pull"]));
    assert_eq!(image.pull_statuses(&app, Some(&granted)).await, [200, 200]);
}

#[tokio::test]
async fn only_user_principals_are_accepted_and_a_user_arn_path_is_ignored() {
    let app = secured().await;
    let store = app.store().await;
    let target = PolicyTarget::Repository("team/app".parse().unwrap());
    let naming = |principal: &str| {
        format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"ecr:*"}}]}}"#
        )
    };
    for (principal, why) in [
        ("arn:aws:iam::123456789012:root", "account"),
        ("123456789012", "account"),
        (
            "arn:aws:iam::123456789012:role/deployer",
            "not an IAM user ARN",
        ),
        (
            "arn:aws:sts::123456789012:assumed-role/deployer/session",
            "not an IAM user ARN",
        ),
        (
            "arn:aws:iam::123456789012:group/developers",
            "not an IAM user ARN",
        ),
    ] {
        let error = admin::set_policy(&*store, &target, Some(&naming(principal)))
            .await
            .unwrap_err();
        assert!(
            error.contains(principal) && error.contains(why),
            "{principal}: {error}"
        );
    }
    let service = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"ecr.amazonaws.com"},"Action":"ecr:*"}]}"#;
    let error = admin::set_policy(&*store, &target, Some(service))
        .await
        .unwrap_err();
    assert!(error.contains("Service"), "{error}");
    assert_eq!(admin::get_policy(&*store, &target).await.unwrap(), None);

    set_repository_policy(
        &app,
        "team/app",
        Some(&naming("arn:aws:iam::1:user/team/dev")),
    )
    .await;
    let dev = basic("dev", &user_with_policy(&app, "dev", None).await);
    let team = basic("team", &user_with_policy(&app, "team", None).await);
    assert_eq!(
        push_blob_as(&app, &dev, "team/app", b"dev's")
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_error(
        push_blob_as(&app, &team, "team/app", b"team's").await,
        403,
        "DENIED",
    )
    .await;
}

#[tokio::test]
async fn conditions_on_address_transport_time_and_user_name_hold_over_http() {
    let app = secured().await;
    let password = user_with_policy(&app, "tester", None).await;
    let tester = basic("tester", &password);
    // Tests connect over plain HTTP from 127.0.0.1.
    let cases = [
        (r#"{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}"#, true),
        (
            r#"{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","127.0.0.1"]}}"#,
            true,
        ),
        (r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#, false),
        (
            r#"{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
            true,
        ),
        (r#"{"NotIpAddress":{"aws:SourceIp":"127.0.0.1/32"}}"#, false),
        (r#"{"Bool":{"aws:SecureTransport":"true"}}"#, false),
        (r#"{"Bool":{"aws:SecureTransport":"false"}}"#, true),
        (
            r#"{"DateLessThan":{"aws:CurrentTime":"2000-01-01T00:00:00Z"}}"#,
            false,
        ),
        (
            r#"{"DateLessThan":{"aws:CurrentTime":"2999-01-01T00:00:00Z"}}"#,
            true,
        ),
        (
            r#"{"DateGreaterThan":{"aws:CurrentTime":"2000-01-01"}}"#,
            true,
        ),
        (r#"{"Null":{"aws:username":"false"}}"#, true),
        (r#"{"Null":{"aws:username":"true"}}"#, false),
    ];
    for (i, (condition, allowed)) in cases.into_iter().enumerate() {
        let repo = format!("cond/{i}");
        set_repository_policy(&app, &repo, Some(&allow_any_user_if(condition))).await;
        let response = push_blob_as(&app, &tester, &repo, condition.as_bytes()).await;
        if allowed {
            assert_eq!(response.status(), StatusCode::CREATED, "{condition}");
        } else {
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{condition}");
            assert_error(response, 403, "DENIED").await;
        }
    }

    // `Null` tells anonymous callers apart: a Deny for callers without a user name.
    let admin = basic("admin", ADMIN_PASSWORD);
    let image = push_image_as(&app, &admin, "cond/public", "v1").await;
    admin::set_public(&*app.store().await, &"cond/public".parse().unwrap(), true)
        .await
        .unwrap();
    assert_eq!(image.pull_statuses(&app, None).await, [200, 200]);
    let deny_anonymous = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:*",
        "Condition":{"Null":{"aws:username":"true"}}}]}"#;
    set_repository_policy(&app, "cond/public", Some(deny_anonymous)).await;
    assert_eq!(image.pull_statuses(&app, None).await, [401, 401]);
    assert_eq!(image.pull_statuses(&app, Some(&tester)).await, [200, 200]);
    let anonymous = token(&app, None, &["repository:cond/public:pull"]).await;
    assert_eq!(
        access_of(anonymous.json_body().await["token"].as_str().unwrap())[0]["actions"],
        json!([])
    );
}

#[tokio::test]
async fn a_mount_needs_read_access_to_its_source() {
    let app = secured().await;
    let admin = basic("admin", ADMIN_PASSWORD);
    let only_a = r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"a/*"}]}"#;
    let alice = basic(
        "alice",
        &user_with_policy(&app, "alice", Some(only_a)).await,
    );
    let secret = push_image_as(&app, &admin, "secret/app", "v1").await;
    let own = push_image_as(&app, &alice, "a/source", "v1").await;
    let mount = |digest: &str, from: &str, authorization: &str| {
        let path = format!("/v2/a/copy/blobs/uploads/?mount={digest}&from={from}");
        let request = app
            .request(Method::POST, &path)
            .header("authorization", authorization);
        async move { request.send().await.unwrap() }
    };

    // Not readable: an upload starts instead, as if the source did not have the blob.
    let response = mount(&secret.layer, "secret/app", &alice).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let copied = format!("/v2/a/copy/blobs/{}", secret.layer);
    let response = send(&app, Method::GET, &copied, Some(&alice)).await;
    assert_error(response, 404, "BLOB_UNKNOWN").await;
    let scoped = bearer(
        &app,
        Some(&alice),
        &[
            "repository:a/copy:pull,push",
            "repository:secret/app:pull",
            "repository:a/source:pull",
        ],
    )
    .await;
    assert_eq!(access_of(&scoped)[1]["actions"], json!([]));
    let response = mount(&secret.layer, "secret/app", &scoped).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    let response = mount(&own.layer, "a/source", &scoped).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // The admin may read the source, so the same request mounts.
    let response = mount(&secret.layer, "secret/app", &admin).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn every_repository_is_not_the_registry_itself() {
    let app = secured().await;
    let every_repository = r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:ecr:*:*:repository/*"}]}"#;
    let everything =
        r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:ecr:*:*:*"}]}"#;
    let repos = basic(
        "repos",
        &user_with_policy(&app, "repos", Some(every_repository)).await,
    );
    let all = basic(
        "all",
        &user_with_policy(&app, "all", Some(everything)).await,
    );
    for user in [&repos, &all] {
        push_image_as(&app, user, "any/app", "v1").await;
    }

    // The catalog is registry-wide: `repository/*` names repositories, not the registry.
    let catalog = send(&app, Method::GET, "/v2/_catalog", Some(&repos)).await;
    assert_error(catalog, 403, "DENIED").await;
    let scoped = bearer(&app, Some(&repos), &["registry:catalog:*"]).await;
    assert_eq!(
        access_of(&scoped)[0]["actions"],
        json!([]),
        "the token grants nothing"
    );
    let catalog = send(&app, Method::GET, "/v2/_catalog", Some(&scoped)).await;
    assert_error(catalog, 403, "DENIED").await;

    let catalog = send(&app, Method::GET, "/v2/_catalog", Some(&all)).await;
    assert_eq!(catalog.status(), StatusCode::OK);
    let scoped = bearer(&app, Some(&all), &["registry:catalog:*"]).await;
    assert_eq!(access_of(&scoped)[0]["actions"], json!(["*"]));
    let catalog = send(&app, Method::GET, "/v2/_catalog", Some(&scoped)).await;
    assert_eq!(catalog.status(), StatusCode::OK);
}

#[tokio::test]
async fn one_query_reads_a_repository_with_the_registry_and_user_policies() {
    let app = secured().await;
    let store = app.store().await;
    let registry_policy =
        r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:PutImage"}]}"#;
    store
        .set_registry_policy(Some(registry_policy))
        .await
        .unwrap();
    set_repository_policy(&app, "team/app", Some(ALLOW_ANY_USER)).await;
    admin::set_public(&*store, &"team/app".parse().unwrap(), true)
        .await
        .unwrap();
    user_with_policy(&app, "reader", Some(PULL_ONLY)).await;
    let access = |public, policy: Option<&str>, registry: Option<&str>| RepositoryAccess {
        login: None,
        user: None,
        public,
        policy: policy.map(str::to_string),
        registry_policy: registry.map(str::to_string),
    };
    let read = |repository: Option<&'static str>, user: Option<&'static str>| {
        let store = store.clone();
        async move {
            store
                .repository_access(repository, user, None)
                .await
                .unwrap()
        }
    };
    let registry = Some(registry_policy);
    assert_eq!(
        read(Some("team/app"), None).await,
        access(true, Some(ALLOW_ANY_USER), registry)
    );
    assert_eq!(
        read(Some("ghost/app"), Some("ghost")).await,
        access(false, None, registry)
    );
    assert_eq!(read(None, None).await, access(false, None, registry));
    let reader = Some(UserPolicy {
        name: "reader".into(),
        policy: Some(PULL_ONLY.into()),
    });
    assert_eq!(
        read(Some("team/app"), Some("reader")).await,
        RepositoryAccess {
            user: reader.clone(),
            ..access(true, Some(ALLOW_ANY_USER), registry)
        }
    );
    assert_eq!(read(None, Some("reader")).await.user, reader);

    // Without the registry's row (a database no node has started on), the repository still
    // reads, and the registry policy cannot be set until a start (or the CLI) makes the row.
    app.sql("DELETE FROM registry").await;
    assert_eq!(
        read(Some("team/app"), None).await,
        access(true, Some(ALLOW_ANY_USER), None)
    );
    assert_eq!(read(None, None).await, access(false, None, None));
    assert!(
        store
            .set_registry_policy(Some(registry_policy))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn one_query_finds_what_a_login_name_stands_for_with_its_standing() {
    let app = secured().await;
    let store = app.store().await;
    user_with_policy(&app, "reader", Some(PULL_ONLY)).await;
    let (key, _) = admin::create_key(&*store, "reader").await.unwrap();
    let read = |login: String| {
        let store = store.clone();
        async move {
            let access = store.repository_access(Some("team/app"), None, Some(&login));
            access.await.unwrap()
        }
    };
    let by_name = read("reader".into()).await;
    let login = by_name.login.expect("a user");
    assert_eq!(login.user, "reader");
    assert!(login.secret_hash.starts_with("$argon2"));
    let reader = Some(UserPolicy {
        name: "reader".into(),
        policy: Some(PULL_ONLY.into()),
    });
    assert_eq!(by_name.user, reader);
    // A key id stands for its user, with the key's own secret.
    let by_key = read(key).await;
    let key_login = by_key.login.expect("a key");
    assert_eq!(key_login.user, "reader");
    assert_ne!(key_login.secret_hash, login.secret_hash);
    assert_eq!(by_key.user, reader);
    let nobody = read("nobody".into()).await;
    assert_eq!((nobody.login, nobody.user), (None, None));
    // A named user is the caller, whatever the login.
    let named = store.repository_access(None, Some("admin"), Some("reader"));
    let named = named.await.unwrap();
    assert_eq!(named.user.unwrap().name, "admin");
    assert_eq!(named.login.unwrap().user, "reader");
}
