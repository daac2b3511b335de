//! Who is calling, through proxies: `X-Forwarded-For`/`-Proto`/`-Host` count only from
//! trusted peers (tests connect from 127.0.0.1), hosts are validated before they go into a
//! challenge's realm, and a configured public URL overrides all of them.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{
    JsonBody, access_of, now_millis, secured, secured_with, set_repository_policy, user_with_policy,
};
use crate::common::{ADMIN_PASSWORD, TestApp, assert_error, basic, header, sha256};

const ONLY_FROM_TEST_NET: &str = r#"{"Statement":[{"Effect":"Allow","Principal":"*",
    "Action":"ecr:*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}"#;
const ONLY_OVER_TLS: &str = r#"{"Statement":[{"Effect":"Allow","Principal":"*",
    "Action":"ecr:*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#;

fn trust_loopback(config: &mut wharf::config::Config) {
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

/// Adds `headers` (repeated names are sent as separate header lines).
fn with_headers(
    mut request: reqwest::RequestBuilder,
    headers: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
}

/// The status of a one-request blob push to `repo` with these credentials and headers.
async fn push_with(
    app: &TestApp,
    authorization: &str,
    repo: &str,
    headers: &[(&str, &str)],
) -> StatusCode {
    let data = format!("{repo} {headers:?} {}", now_millis()).into_bytes();
    let request = app
        .request(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(&data)),
        )
        .header("authorization", authorization)
        .body(data);
    with_headers(request, headers)
        .send()
        .await
        .unwrap()
        .status()
}

/// The anonymous challenge of `GET /v2/` with these headers.
async fn challenge_with(app: &TestApp, headers: &[(&str, &str)]) -> String {
    let response = with_headers(app.get("/v2/"), headers).send().await.unwrap();
    let challenge = header(&response, "www-authenticate");
    assert_error(response, 401, "UNAUTHORIZED").await;
    challenge
}

/// A user allowed everything on `far/app` from 203.0.113.0/24 only and on `tls/app` over
/// TLS only, and its Basic credentials.
async fn conditioned_user(app: &TestApp) -> String {
    set_repository_policy(app, "far/app", Some(ONLY_FROM_TEST_NET)).await;
    set_repository_policy(app, "tls/app", Some(ONLY_OVER_TLS)).await;
    basic("user", &user_with_policy(app, "user", None).await)
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
    let app = secured().await;
    let user = conditioned_user(&app).await;
    let claims_test_net = [("x-forwarded-for", "203.0.113.7")];
    assert_eq!(
        push_with(&app, &user, "far/app", &claims_test_net).await,
        StatusCode::FORBIDDEN
    );
    let claims_tls = [("x-forwarded-proto", "https")];
    assert_eq!(
        push_with(&app, &user, "tls/app", &claims_tls).await,
        StatusCode::FORBIDDEN
    );
    let forwarded = [
        ("host", "registry.internal:5000"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "registry.example.com"),
        ("x-forwarded-for", "203.0.113.7"),
    ];
    assert_eq!(
        challenge_with(&app, &forwarded).await,
        r#"Bearer realm="http://registry.internal:5000/token",service="wharf""#
    );
    // Nor do they change the source of a token request.
    let granted = with_headers(
        app.get("/token?service=wharf&scope=repository:far/app:pull,push")
            .header("authorization", &user),
        &claims_test_net,
    )
    .send()
    .await
    .unwrap();
    let body = granted.json_body().await;
    assert_eq!(
        access_of(body["token"].as_str().unwrap())[0]["actions"],
        json!([])
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_right_most_untrusted_forwarded_address_is_the_source() {
    let (app, _) = secured_with(trust_loopback).await;
    let user = conditioned_user(&app).await;
    let cases: [(&[(&str, &str)], bool); 9] = [
        (&[], false),
        (&[("x-forwarded-for", "203.0.113.7")], true),
        (&[("x-forwarded-for", "198.51.100.1, 203.0.113.7")], true),
        // The left-most entry is whatever the client claimed.
        (&[("x-forwarded-for", "203.0.113.7, 198.51.100.1")], false),
        // Trusted hops are skipped.
        (&[("x-forwarded-for", "203.0.113.7, 127.0.0.1")], true),
        (
            &[
                ("x-forwarded-for", "198.51.100.1"),
                ("x-forwarded-for", "203.0.113.7"),
            ],
            true,
        ),
        (
            &[
                ("x-forwarded-for", "203.0.113.7"),
                ("x-forwarded-for", "198.51.100.1"),
            ],
            false,
        ),
        // An IPv4-mapped IPv6 address is the IPv4 address.
        (&[("x-forwarded-for", "::ffff:203.0.113.7")], true),
        (&[("x-forwarded-for", "203.0.113.7:40000")], true),
    ];
    for (headers, allowed) in cases {
        let expected = if allowed {
            StatusCode::CREATED
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(
            push_with(&app, &user, "far/app", headers).await,
            expected,
            "{headers:?}"
        );
    }

    // Tokens are issued for the forwarded source, and checked against it on every use.
    let token_from = |headers: &'static [(&'static str, &'static str)]| {
        let request = app
            .get("/token?service=wharf&scope=repository:far/app:pull,push")
            .header("authorization", &user);
        async move {
            let response = with_headers(request, headers).send().await.unwrap();
            format!(
                "Bearer {}",
                response.json_body().await["token"].as_str().unwrap()
            )
        }
    };
    let local = token_from(&[]).await;
    assert_eq!(access_of(&local)[0]["actions"], json!([]));
    let far = token_from(&[("x-forwarded-for", "203.0.113.7")]).await;
    assert_eq!(access_of(&far)[0]["actions"], json!(["pull", "push"]));
    assert_eq!(
        push_with(&app, &far, "far/app", &[("x-forwarded-for", "203.0.113.8")]).await,
        StatusCode::CREATED
    );
    assert_eq!(
        push_with(&app, &far, "far/app", &[]).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_forwarded_proto_and_host_make_the_realm_and_secure_transport() {
    let (app, _) = secured_with(trust_loopback).await;
    let user = conditioned_user(&app).await;
    let proxied = [
        ("host", "wharf.internal:5000"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "registry.example.com"),
    ];
    assert_eq!(
        challenge_with(&app, &proxied).await,
        r#"Bearer realm="https://registry.example.com/token",service="wharf""#
    );
    assert_eq!(
        challenge_with(&app, &[("host", "wharf.internal:5000")]).await,
        r#"Bearer realm="http://wharf.internal:5000/token",service="wharf""#
    );
    // The nearest proxy's word counts: here the client reached the outer proxy over HTTP.
    let chained = [
        ("x-forwarded-proto", "http, https"),
        (
            "x-forwarded-host",
            "outer.example.com, registry.example.com",
        ),
    ];
    assert_eq!(
        challenge_with(&app, &chained).await,
        r#"Bearer realm="https://registry.example.com/token",service="wharf""#
    );

    assert_eq!(
        push_with(&app, &user, "tls/app", &proxied).await,
        StatusCode::CREATED
    );
    assert_eq!(
        push_with(
            &app,
            &user,
            "tls/app",
            &[("x-forwarded-proto", "https, http")]
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        push_with(&app, &user, "tls/app", &[]).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_malformed_host_is_never_written_into_the_challenge() {
    let app = secured().await;
    let (proxied, _) = secured_with(trust_loopback).await;
    let admin = basic("admin", ADMIN_PASSWORD);
    for host in ["evil\"x", "a b", "x/y", "x@y", "host:", "host:99999999"] {
        // No realm to send the client to: it is asked for Basic credentials instead.
        let direct = with_headers(app.get("/v2/"), &[("host", host)])
            .send()
            .await
            .unwrap();
        assert_eq!(
            header(&direct, "www-authenticate"),
            r#"Basic realm="wharf""#,
            "{host}"
        );
        assert_error(direct, 401, "UNAUTHORIZED").await;
        let forwarded = with_headers(
            proxied.get("/v2/team/app/manifests/v1"),
            &[("x-forwarded-host", host)],
        )
        .send()
        .await
        .unwrap();
        assert_eq!(
            header(&forwarded, "www-authenticate"),
            r#"Basic realm="wharf""#,
            "{host}"
        );
        assert_error(forwarded, 401, "UNAUTHORIZED").await;
        // A caller with credentials needs no challenge, whatever the Host.
        let authorized = with_headers(
            app.get("/v2/"),
            &[("host", host), ("authorization", &admin)],
        )
        .send()
        .await
        .unwrap();
        assert_eq!(authorized.status(), StatusCode::OK, "{host}");
    }
    assert_eq!(
        challenge_with(&app, &[("host", "my_registry:5000")]).await,
        r#"Bearer realm="http://my_registry:5000/token",service="wharf""#
    );
    // Forwarded headers from an untrusted peer are not even looked at.
    assert_eq!(
        challenge_with(&app, &[("x-forwarded-host", "evil\"x")]).await,
        format!("Bearer realm=\"{}/token\",service=\"wharf\"", app.base)
    );
    assert_eq!(
        challenge_with(&app, &[("host", "[::1]:5000")]).await,
        r#"Bearer realm="http://[::1]:5000/token",service="wharf""#
    );
}

#[tokio::test]
async fn a_public_url_overrides_host_and_forwarded_headers() {
    let (app, _) = secured_with(|config| {
        trust_loopback(config);
        config.public_url = Some("https://registry.example.org/".into());
    })
    .await;
    let expected = r#"Bearer realm="https://registry.example.org/token",service="wharf""#;
    for headers in [
        &[][..],
        &[("host", "wharf.internal:5000")],
        &[
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "other.example.com"),
        ],
        &[("host", "evil\"x")],
        &[("x-forwarded-host", "evil\"x")],
    ] {
        assert_eq!(challenge_with(&app, headers).await, expected, "{headers:?}");
    }
}

#[tokio::test]
async fn an_untrusted_peer_cannot_dodge_the_login_limiter_with_forwarded_addresses() {
    let app = secured().await;
    let password = user_with_policy(&app, "target", None).await;
    let base_as = |authorization: String, claimed: String| {
        app.get("/v2/")
            .header("authorization", authorization)
            .header("x-forwarded-for", claimed)
            .send()
    };
    for i in 0..5 {
        let response = base_as(basic("target", "guess"), format!("198.51.100.{i}"))
            .await
            .unwrap();
        assert_error(response, 401, "UNAUTHORIZED").await;
    }
    let response = base_as(basic("target", &password), "198.51.100.99".into())
        .await
        .unwrap();
    assert_error(response, 429, "TOOMANYREQUESTS").await;
    // Other names from this address still get their own budget.
    let response = base_as(basic("admin", ADMIN_PASSWORD), "198.51.100.99".into())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
