//! SigV4 on the ECR API with auth on: access keys sign, everything else is refused with AWS's
//! error types, before the body is read; each operation is authorized by its IAM action;
//! bodies are limited per operation; protocol errors keep their shape.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt as _;
use serde_json::json;

use crate::common::{TestApp, auth_on};
use crate::ecr::Signer;

/// A registry with auth on and an access key of `admin`.
async fn signed_app() -> (TestApp, String, String) {
    let app = TestApp::spawn_with(auth_on).await;
    let (key_id, secret) = app.access_key("admin").await;
    (app, key_id, secret)
}

#[tokio::test]
async fn access_keys_sign_and_bad_signatures_are_refused() {
    let (app, key_id, secret) = signed_app().await;
    let now = SystemTime::now();
    let signer = |key_id, secret, at| Signer { key_id, secret, at };
    let good = signer(&key_id, &secret, now);
    app.ecr_as(
        Some(&good),
        "CreateRepository",
        json!({"repositoryName": "signed"}),
    )
    .await
    .ok();

    let cases = [
        (
            signer(&key_id, "wrong-secret", now),
            "InvalidSignatureException",
        ),
        (
            signer("WKAUNKNOWNKEY", &secret, now),
            "UnrecognizedClientException",
        ),
        (
            signer(&key_id, &secret, now - Duration::from_secs(16 * 60)),
            "InvalidSignatureException",
        ),
        (
            signer(&key_id, &secret, now + Duration::from_secs(16 * 60)),
            "InvalidSignatureException",
        ),
    ];
    for (signer, kind) in &cases {
        app.ecr_as(Some(signer), "DescribeRepositories", json!({}))
            .await
            .error(kind);
    }
    // Within the allowed skew, a slow clock is fine.
    let slow = signer(&key_id, &secret, now - Duration::from_secs(10 * 60));
    app.ecr_as(Some(&slow), "DescribeRepositories", json!({}))
        .await
        .ok();
    app.ecr("DescribeRepositories", json!({}))
        .await
        .error("MissingAuthenticationTokenException");
    let header_only = app
        .request(reqwest::Method::POST, "/")
        .header("x-amz-target", "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories")
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential={key_id}/20261130/us-east-1/ecr/aws4_request, SignedHeaders=content-type, Signature=00"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        header_only.status(),
        400,
        "host and x-amz-date must be signed"
    );
}

#[tokio::test]
async fn a_signed_body_cannot_be_swapped() {
    let (app, key_id, secret) = signed_app().await;
    let signer = Signer::now(&key_id, &secret);
    // Sign one body, send another: the payload hash is part of the signature.
    let signed = app.signed_request(&signer, "CreateRepository", r#"{"repositoryName":"one"}"#);
    let response = signed
        .body(r#"{"repositoryName":"two"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["__type"], "InvalidSignatureException");
}

#[tokio::test]
async fn each_operation_is_authorized_by_its_own_action() {
    let (app, admin_key, admin_secret) = signed_app().await;
    let store = app.store().await;
    wharf::admin::create_user(&*store, "dev", None)
        .await
        .unwrap();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:DescribeRepositories","Resource":"arn:aws:ecr:*:*:repository/team/*"}]}"#;
    wharf::admin::set_policy(
        &*store,
        &wharf::admin::PolicyTarget::User("dev".into()),
        Some(policy),
    )
    .await
    .unwrap();
    let (dev_key, dev_secret) = app.access_key("dev").await;
    let now = SystemTime::now();
    let admin = Signer {
        key_id: &admin_key,
        secret: &admin_secret,
        at: now,
    };
    let dev = Signer {
        key_id: &dev_key,
        secret: &dev_secret,
        at: now,
    };
    for name in ["team/app", "other/app"] {
        app.ecr_as(
            Some(&admin),
            "CreateRepository",
            json!({"repositoryName": name}),
        )
        .await
        .ok();
    }
    let described = app
        .ecr_as(
            Some(&dev),
            "DescribeRepositories",
            json!({"repositoryNames": ["team/app"]}),
        )
        .await
        .ok();
    assert_eq!(described["repositories"][0]["repositoryName"], "team/app");
    for (operation, input) in [
        (
            "DescribeRepositories",
            json!({"repositoryNames": ["other/app"]}),
        ),
        ("DescribeRepositories", json!({})),
        ("DeleteRepository", json!({"repositoryName": "team/app"})),
        ("CreateRepository", json!({"repositoryName": "team/new"})),
        ("GetAuthorizationToken", json!({})),
    ] {
        let denied = app
            .ecr_as(Some(&dev), operation, input)
            .await
            .error("AccessDeniedException");
        let message = denied["message"].as_str().unwrap();
        assert!(message.contains(&format!("ecr:{operation}")), "{message}");
        assert!(message.contains("user/dev"), "{message}");
    }
}

#[tokio::test]
async fn protocol_errors_keep_the_aws_shape() {
    let app = TestApp::spawn().await;
    app.ecr("NoSuchOperation", json!({}))
        .await
        .error("UnknownOperationException");
    let no_target = app
        .request(reqwest::Method::POST, "/")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(no_target.status(), 400);
    let body: serde_json::Value = no_target.json().await.unwrap();
    assert_eq!(body["__type"], "UnknownOperationException");
    for bad_body in ["not json", "[1,2]", r#"{"repositoryName": "x""#] {
        let response = app
            .request(reqwest::Method::POST, "/")
            .header(
                "x-amz-target",
                "AmazonEC2ContainerRegistry_V20150921.CreateRepository",
            )
            .body(bad_body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad_body}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["__type"], "SerializationException", "{bad_body}");
    }
    // A member of the wrong type is the caller's mistake, named.
    app.ecr("DescribeRepositories", json!({"maxResults": "ten"}))
        .await
        .error("InvalidParameterException");
}

#[tokio::test]
async fn requests_nobody_could_have_signed_are_refused_before_their_body_is_read() {
    let (app, _, _) = signed_app().await;
    let now = time::OffsetDateTime::now_utc();
    let date = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap();
    let unknown_key = format!(
        "AWS4-HMAC-SHA256 Credential=WKAUNKNOWNKEY/{}/us-east-1/ecr/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=00",
        &date[..8]
    );
    for (authorization, status, kind) in [
        (None, 403, "MissingAuthenticationTokenException"),
        (
            Some("AWS4-HMAC-SHA256 Credential=nonsense".to_string()),
            400,
            "InvalidSignatureException",
        ),
        (Some(unknown_key), 400, "UnrecognizedClientException"),
    ] {
        // A body that starts and never ends: only an answer before it is read can arrive.
        let first = Bytes::from(vec![b' '; 64 * 1024]);
        let endless = futures::stream::once(async move { Ok::<_, std::io::Error>(first) })
            .chain(futures::stream::pending());
        let mut request = app
            .request(reqwest::Method::POST, "/")
            .header(
                "x-amz-target",
                "AmazonEC2ContainerRegistry_V20150921.UploadLayerPart",
            )
            .header("x-amz-date", &date)
            .body(reqwest::Body::wrap_stream(endless));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = tokio::time::timeout(Duration::from_secs(10), request.send())
            .await
            .unwrap_or_else(|_| panic!("no answer to {kind} while the body was being sent"))
            .unwrap();
        assert_eq!(response.status(), status, "{kind}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["__type"], kind);
    }
}

#[tokio::test]
async fn bodies_are_limited_by_their_operation() {
    let (app, key_id, secret) = signed_app().await;
    let signer = Signer::now(&key_id, &secret);
    let padding = "x".repeat(2 * 1024 * 1024);
    let oversized = app
        .ecr_as(
            Some(&signer),
            "CreateRepository",
            json!({"repositoryName": "padded", "padding": padding}),
        )
        .await
        .error("InvalidParameterException");
    let message = oversized["message"].as_str().unwrap();
    assert!(message.contains("larger than"), "{message}");
    app.ecr_as(
        Some(&signer),
        "DescribeRepositories",
        json!({"repositoryNames": ["padded"]}),
    )
    .await
    .error("RepositoryNotFoundException");

    // A manifest takes more than the other operations' limit; this one is read, then refused
    // for what it is.
    app.ecr_as(
        Some(&signer),
        "CreateRepository",
        json!({"repositoryName": "large"}),
    )
    .await
    .ok();
    let manifest = json!({"schemaVersion": 2, "padding": padding}).to_string();
    let refused = app
        .ecr_as(
            Some(&signer),
            "PutImage",
            json!({"repositoryName": "large", "imageManifest": manifest}),
        )
        .await
        .error("InvalidParameterException");
    let message = refused["message"].as_str().unwrap();
    assert!(!message.contains("larger than"), "{message}");
}
