//! Classes for the ECR API (`POST /` with `X-Amz-Target`): unknown targets, bodies that are
//! not JSON or not the operation's shape, garbage SigV4 `Authorization` and `X-Amz-Date`,
//! bodies over the limit, and operations with garbage members. Unsigned, so with auth on
//! they test the signature gate; with auth off they reach the operations. Operations that
//! change things only touch repositories the class creates for itself.

use serde_json::{Value, json};

use super::{Case, Class, ascii, bad_reference, bytes, class, one_of, unique, unknown_digest};
use crate::stress::http::Req;

const PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";
const JSON_1_1: &str = "application/x-amz-json-1.1";

pub fn classes() -> Vec<Class> {
    vec![
        class!("ecr_unknown_target", 2, unknown_target),
        class!("ecr_bad_json", 3, bad_json),
        class!("ecr_sigv4_garbage", 3, sigv4_garbage),
        class!("ecr_body_over_limit", 1, over_limit),
        class!("ecr_operation_members", 5, operation_members),
    ]
}

fn call(target: &str, body: Vec<u8>) -> Req {
    Req::new("POST", "/")
        .no_auth()
        .header("x-amz-target", target)
        .header("content-type", JSON_1_1)
        .body(body)
}

/// Any ECR error must be a 4xx (the shape is checked for every answer).
fn refused_or_ok(cx: &Case<'_>, req: &Req, resp: &crate::stress::http::Resp) {
    let ok = resp.status == 200 || (400..500).contains(&resp.status);
    cx.expect(req, resp, ok, "200 or 4xx");
    if cx.auth_on() {
        cx.expect(req, resp, resp.status != 200, "4xx for an unsigned call");
    }
}

async fn unknown_target(cx: &mut Case<'_>) {
    let long = "X".repeat(cx.rng.usize(1000..8000));
    let target = one_of(
        &mut cx.rng,
        &[
            "",
            PREFIX,
            "AmazonEC2ContainerRegistry_V20150921.Nope",
            "AmazonEC2ContainerRegistry_V20150921.listImages",
            "DynamoDB_20120810.ListTables",
            "AmazonEC2ContainerRegistry_V20150921.ListImages.Extra",
            "AmazonEC2ContainerRegistry_V20150921.ecr:ListImages",
            long.as_str(),
        ],
    )
    .to_string();
    let req = call(&target, b"{}".to_vec());
    if let Some(resp) = cx.send(&req).await {
        let kind = resp
            .json()
            .and_then(|b| b["__type"].as_str().map(str::to_string));
        let ok = resp.status == 400 && kind.as_deref() == Some("UnknownOperationException");
        cx.expect(&req, &resp, ok, "400 UnknownOperationException");
    }
}

fn read_operation(cx: &mut Case<'_>) -> &'static str {
    one_of(
        &mut cx.rng,
        &[
            "DescribeRepositories",
            "ListImages",
            "DescribeImages",
            "BatchGetImage",
            "BatchCheckLayerAvailability",
            "GetDownloadUrlForLayer",
            "GetRepositoryPolicy",
            "GetLifecyclePolicy",
            "GetLifecyclePolicyPreview",
            "ListTagsForResource",
            "DescribeRegistry",
            "GetRegistryPolicy",
            "GetAuthorizationToken",
            "ListImageReferrers",
        ],
    )
}

async fn bad_json(cx: &mut Case<'_>) {
    let mut operation = read_operation(cx);
    let variant = cx.rng.u8(..8);
    if variant == 7 {
        // An operation that reads `repositoryName` (others ignore members they do not take).
        operation = "ListImages";
    }
    let body = match variant {
        0 => b"{".to_vec(),
        1 => b"[]".to_vec(),
        2 => b"null".to_vec(),
        3 => b"\"x\"".to_vec(),
        4 => bytes(&mut cx.rng, 1..300),
        5 => "[".repeat(100_000).into_bytes(),
        6 => br#"{"maxResults": 1e400}"#.to_vec(),
        _ => br#"{"repositoryName": {"nested": true}, "repositoryName": 5}"#.to_vec(),
    };
    let req = call(&format!("{PREFIX}{operation}"), body);
    if let Some(resp) = cx.send(&req).await {
        cx.refused(&req, &resp);
    }
}

async fn sigv4_garbage(cx: &mut Case<'_>) {
    let operation = read_operation(cx);
    let authorization = match cx.rng.u8(..6) {
        0 => ascii(&mut cx.rng, 40..=40),
        1 => "AWS4-HMAC-SHA256".into(),
        2 => "AWS4-HMAC-SHA256 Credential=AKIAFAKEFAKEFAKE/20200101/us-east-1/ecr/aws4_request, \
              SignedHeaders=host;x-amz-date;x-amz-target, Signature=00ff"
            .into(),
        3 => format!(
            "AWS4-HMAC-SHA256 Credential={}, SignedHeaders={}, Signature={}",
            ascii(&mut cx.rng, 30..=30),
            ascii(&mut cx.rng, 10..=10),
            ascii(&mut cx.rng, 64..=64)
        ),
        4 => "AWS3-HMAC-SHA1 Credential=x".into(),
        _ => format!(
            "AWS4-HMAC-SHA256 Credential=admin/{}/us-east-1/ecr/aws4_request, \
             SignedHeaders=host, Signature={}",
            "99991231",
            super::hex(&mut cx.rng, 64..=64)
        ),
    };
    let date = one_of(
        &mut cx.rng,
        &[
            "20200101T000000Z",
            "99991231T235959Z",
            "garbage",
            "",
            "20260101T000000",
        ],
    );
    let req = call(&format!("{PREFIX}{operation}"), b"{}".to_vec())
        .header("authorization", authorization)
        .header("x-amz-date", date);
    if let Some(resp) = cx.send(&req).await {
        refused_or_ok(cx, &req, &resp);
    }
}

async fn over_limit(cx: &mut Case<'_>) {
    let operation = read_operation(cx);
    let size = 1024 * 1024 + cx.rng.usize(1..100_000);
    let body = format!("{{\"nextToken\":\"{}\"}}", "n".repeat(size)).into_bytes();
    let req = call(&format!("{PREFIX}{operation}"), body);
    if let Some(resp) = cx.send(&req).await {
        cx.refused(&req, &resp);
    }
}

/// A value for a member: of the right type or not, valid or not.
fn member(cx: &mut Case<'_>) -> Value {
    let pool = cx.fx.pool.repo(&mut cx.rng).to_string();
    match cx.rng.u8(..14) {
        0 => json!(pool),
        1 => json!(bad_reference(&mut cx.rng)),
        2 => json!(-1),
        3 => json!(1e300),
        4 => json!(u64::MAX),
        5 => json!(null),
        6 => json!([]),
        7 => json!({"a": [1, {"b": null}]}),
        8 => json!(ascii(&mut cx.rng, 0..3000)),
        9 => json!([{"imageTag": bad_reference(&mut cx.rng)}, {"imageDigest": "sha256:"}]),
        10 => json!([{"imageDigest": unknown_digest(&mut cx.rng)}, {"imageTag": "v1"}]),
        11 => json!(unknown_digest(&mut cx.rng)),
        12 => json!("\u{0}\u{202e}\u{1f433}"),
        _ => json!(true),
    }
}

async fn operation_members(cx: &mut Case<'_>) {
    let own = format!("{}/ecr-{}", cx.fx.pool.prefix, unique(cx));
    let create = call(
        &format!("{PREFIX}CreateRepository"),
        serde_json::to_vec(&json!({"repositoryName": own})).unwrap(),
    );
    let mutating = cx.rng.bool();
    if mutating && let Some(resp) = cx.send(&create).await {
        refused_or_ok(cx, &create, &resp);
    }
    let operation = if mutating {
        one_of(
            &mut cx.rng,
            &[
                "PutImage",
                "BatchDeleteImage",
                "InitiateLayerUpload",
                "UploadLayerPart",
                "CompleteLayerUpload",
                "SetRepositoryPolicy",
                "DeleteRepositoryPolicy",
                "PutLifecyclePolicy",
                "DeleteLifecyclePolicy",
                "StartLifecyclePolicyPreview",
                "PutImageTagMutability",
                "PutImageScanningConfiguration",
                "TagResource",
                "UntagResource",
            ],
        )
    } else {
        read_operation(cx)
    };
    let keys = [
        "repositoryName",
        "registryId",
        "imageIds",
        "layerDigests",
        "layerDigest",
        "maxResults",
        "nextToken",
        "filter",
        "imageManifest",
        "imageTag",
        "uploadId",
        "partFirstByte",
        "partLastByte",
        "layerPartBlob",
        "policyText",
        "lifecyclePolicyText",
        "resourceArn",
        "tags",
        "tagKeys",
        "repositoryNames",
        "acceptedMediaTypes",
        "subjectId",
        "imageTagMutability",
    ];
    let mut input = serde_json::Map::new();
    if mutating {
        input.insert("repositoryName".into(), json!(own));
    }
    for _ in 0..cx.rng.usize(1..6) {
        let key = keys[cx.rng.usize(..keys.len())];
        if mutating && key == "repositoryName" {
            continue;
        }
        let value = member(cx);
        input.insert(key.into(), value);
    }
    let req = call(
        &format!("{PREFIX}{operation}"),
        serde_json::to_vec(&Value::Object(input)).unwrap(),
    );
    if let Some(resp) = cx.send(&req).await {
        refused_or_ok(cx, &req, &resp);
    }
    if mutating {
        let delete = call(
            &format!("{PREFIX}DeleteRepository"),
            serde_json::to_vec(&json!({"repositoryName": own, "force": true})).unwrap(),
        );
        if let Some(resp) = cx.send(&delete).await {
            refused_or_ok(cx, &delete, &resp);
        }
    }
}
