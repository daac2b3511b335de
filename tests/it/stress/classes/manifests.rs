//! Classes for malformed manifests: invalid JSON, 100,000-deep nesting, huge numbers,
//! duplicate keys, wrong types, missing fields, a Content-Type that disagrees, bodies over
//! 4 MiB, unknown media types. `manifest_links` has the valid ones and what they point at.

use serde_json::{Value, json};

use super::{Case, Class, bytes, class, one_of, unique, unknown_digest};
use crate::common::{OCI_INDEX, OCI_MANIFEST, sha256};
use crate::stress::http::{Req, Resp};
use crate::stress::pool::CONFIG_TYPE;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub fn classes() -> Vec<Class> {
    vec![
        class!("manifest_invalid_json", 3, invalid_json),
        class!("manifest_deep_nesting", 2, deep_nesting),
        class!("manifest_huge_numbers", 3, huge_numbers),
        class!("manifest_duplicate_keys", 2, duplicate_keys),
        class!("manifest_wrong_types", 3, wrong_types),
        class!("manifest_missing_fields", 3, missing_fields),
        class!("manifest_content_type", 3, content_type),
        class!("manifest_huge_body", 1, huge_body),
        class!("manifest_unknown_media_type", 2, unknown_media_type),
    ]
}

/// `PUT /v2/<repo>/manifests/<reference>` with `content_type` (none when empty).
pub fn put(repo: &str, reference: &str, content_type: &str, body: Vec<u8>) -> Req {
    let req = Req::new("PUT", format!("/v2/{repo}/manifests/{reference}")).body(body);
    if content_type.is_empty() {
        req
    } else {
        req.header("content-type", content_type)
    }
}

/// A valid manifest over pool blobs, as JSON to be broken.
pub fn pool_manifest(cx: &Case<'_>) -> Value {
    serde_json::from_slice(&cx.fx.pool.manifest.bytes).unwrap()
}

/// PUTs `body` into a pool repository (which holds the pool's blobs) by its digest or under a
/// fresh `fuzz-` tag.
pub async fn put_pool(cx: &mut Case<'_>, content_type: &str, body: Vec<u8>) -> Option<(Req, Resp)> {
    let repo = cx.fx.pool.repo(&mut cx.rng).to_string();
    let reference = if cx.rng.bool() {
        sha256(&body)
    } else {
        format!("fuzz-{}", unique(cx))
    };
    let req = put(&repo, &reference, content_type, body);
    let resp = cx.send(&req).await?;
    Some((req, resp))
}

/// After a 201, the manifest must read back exactly by its digest.
pub async fn read_back(cx: &mut Case<'_>, req: &Req, resp: &Resp) {
    if resp.status != 201 {
        return;
    }
    let digest = sha256(&req.body);
    let said = resp.header("docker-content-digest").unwrap_or_default();
    cx.expect(
        req,
        resp,
        said == digest,
        "Docker-Content-Digest of the body",
    );
    let path = req.path();
    let repo = path
        .strip_prefix("/v2/")
        .and_then(|p| p.rsplit_once("/manifests/"))
        .map_or("", |(repo, _)| repo);
    let get = Req::new("GET", format!("/v2/{repo}/manifests/{digest}"));
    let Some(got) = cx.send(&get).await else {
        return;
    };
    cx.expect(
        &get,
        &got,
        got.status == 200,
        "200 for a manifest just pushed",
    );
    if got.status == 200 && got.body != req.body {
        let problem = format!("read {} bytes, pushed {}", got.body.len(), req.body.len());
        cx.finding(
            &get,
            "corrupt read",
            "manifest differs from what was pushed",
            &problem,
        );
    }
}

async fn invalid_json(cx: &mut Case<'_>) {
    let valid = cx.fx.pool.manifest.bytes.clone();
    let body = match cx.rng.u8(..9) {
        0 => Vec::new(),
        1 => b"{".to_vec(),
        2 => b"null".to_vec(),
        3 => b"[]".to_vec(),
        4 => b"\"manifest\"".to_vec(),
        5 => [&valid[..], b"trailing"].concat(),
        6 => [b"\xef\xbb\xbf", &valid[..]].concat(),
        7 => valid[..cx.rng.usize(..valid.len())].to_vec(),
        _ => bytes(&mut cx.rng, 1..500),
    };
    if let Some((req, resp)) = put_pool(cx, OCI_MANIFEST, body).await {
        cx.code(&req, &resp, 400, "MANIFEST_INVALID");
    }
}

async fn deep_nesting(cx: &mut Case<'_>) {
    let depth = cx.rng.usize(100_000..=150_000);
    let body = match cx.rng.u8(..3) {
        0 => "[".repeat(depth),
        1 => format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
        _ => format!(
            "{{\"schemaVersion\":2,\"annotations\":{}1{}}}",
            "{\"a\":".repeat(depth),
            "}".repeat(depth)
        ),
    };
    if let Some((req, resp)) = put_pool(cx, OCI_MANIFEST, body.into_bytes()).await {
        cx.code(&req, &resp, 400, "MANIFEST_INVALID");
    }
}

async fn huge_numbers(cx: &mut Case<'_>) {
    let number = one_of(
        &mut cx.rng,
        &[
            "1e400",
            "-1",
            "18446744073709551615",
            "18446744073709551616",
            "2.0",
            "-0",
            "99999999999999999999999999999999",
            "9223372036854775808",
            "1E2",
        ],
    );
    let mut text = String::from_utf8(cx.fx.pool.manifest.bytes.clone()).unwrap();
    let field = cx.rng.u8(..3);
    text = match field {
        0 => text.replacen(
            "\"schemaVersion\":2",
            &format!("\"schemaVersion\":{number}"),
            1,
        ),
        _ => {
            // The size of the config (1) or of every layer (2).
            let mut manifest = pool_manifest(cx);
            let sizes: Vec<&mut Value> = if field == 1 {
                vec![&mut manifest["config"]["size"]]
            } else {
                manifest["layers"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .map(|l| &mut l["size"])
                    .collect()
            };
            for size in sizes {
                *size = json!("SIZE");
            }
            serde_json::to_string(&manifest)
                .unwrap()
                .replace("\"SIZE\"", number)
        }
    };
    if let Some((req, resp)) = put_pool(cx, OCI_MANIFEST, text.into_bytes()).await {
        cx.refused(&req, &resp);
    }
}

async fn duplicate_keys(cx: &mut Case<'_>) {
    let text = String::from_utf8(cx.fx.pool.manifest.bytes.clone()).unwrap();
    let missing = unknown_digest(&mut cx.rng);
    let duplicate = one_of(
        &mut cx.rng,
        &[
            "\"schemaVersion\":2,",
            "\"schemaVersion\":1,",
            "\"mediaType\":\"application/vnd.oci.image.index.v1+json\",",
        ],
    )
    .to_string();
    let text = if cx.rng.bool() {
        text.replacen('{', &format!("{{{duplicate}"), 1)
    } else {
        let config = format!(
            "{{\"config\":{{\"mediaType\":\"{CONFIG_TYPE}\",\"digest\":\"{missing}\",\"size\":2}},"
        );
        text.replacen('{', &config, 1)
    };
    if let Some((req, resp)) = put_pool(cx, OCI_MANIFEST, text.into_bytes()).await {
        cx.expect(&req, &resp, [201, 400].contains(&resp.status), "201 or 400");
        read_back(cx, &req, &resp).await;
    }
}

async fn wrong_types(cx: &mut Case<'_>) {
    let mut manifest = pool_manifest(cx);
    let (path, value): (&[&str], Value) = match cx.rng.u8(..9) {
        0 => (&["config"], json!("a string")),
        1 => (&["layers"], json!({})),
        2 => (&["config", "size"], json!("12")),
        3 => (&["config", "digest"], json!(5)),
        4 => (&["mediaType"], json!(5)),
        5 => (&["annotations"], json!({"a": 1})),
        6 => (&["schemaVersion"], json!("2")),
        7 => (&["layers"], json!([1, 2, 3])),
        _ => (&["config"], json!(null)),
    };
    let mut at = &mut manifest;
    for key in path {
        at = &mut at[*key];
    }
    *at = value;
    let body = serde_json::to_vec(&manifest).unwrap();
    if let Some((req, resp)) = put_pool(cx, OCI_MANIFEST, body).await {
        cx.code(&req, &resp, 400, "MANIFEST_INVALID");
    }
}

async fn missing_fields(cx: &mut Case<'_>) {
    let mut manifest = pool_manifest(cx);
    let field = one_of(
        &mut cx.rng,
        &["schemaVersion", "config", "mediaType", "layers"],
    );
    manifest.as_object_mut().unwrap().remove(field);
    let header = if cx.rng.bool() { OCI_MANIFEST } else { "" };
    let body = serde_json::to_vec(&manifest).unwrap();
    let Some((req, resp)) = put_pool(cx, header, body).await else {
        return;
    };
    match (field, header) {
        ("schemaVersion" | "config", _) | ("mediaType", "") => {
            cx.code(&req, &resp, 400, "MANIFEST_INVALID")
        }
        _ => {
            cx.expect(&req, &resp, [201, 400].contains(&resp.status), "201 or 400");
            read_back(cx, &req, &resp).await;
        }
    }
}

async fn content_type(cx: &mut Case<'_>) {
    let header = one_of(
        &mut cx.rng,
        &[
            DOCKER_MANIFEST,
            OCI_INDEX,
            "text/plain",
            "garbage",
            "",
            "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
            "APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON",
            "application/vnd.oci.image.manifest.v1+json\u{0}",
        ],
    );
    let body = cx.fx.pool.manifest.bytes.clone();
    let Some((req, resp)) = put_pool(cx, header, body).await else {
        return;
    };
    let matches = header.is_empty() || header.starts_with(&format!("{OCI_MANIFEST};"));
    if matches {
        cx.expect(&req, &resp, resp.status == 201, "201");
    } else if header.eq_ignore_ascii_case(OCI_MANIFEST) {
        // Media types are case-insensitive: either answer will do.
        cx.expect(&req, &resp, [201, 400].contains(&resp.status), "201 or 400");
    } else if resp.header("x-request-id").is_some() {
        cx.code(&req, &resp, 400, "MANIFEST_INVALID");
    }
}

async fn huge_body(cx: &mut Case<'_>) {
    let mut manifest = pool_manifest(cx);
    let size = cx.rng.usize(4 * 1024 * 1024 + 1..6 * 1024 * 1024);
    manifest["annotations"] = json!({"padding": "p".repeat(size)});
    let body = serde_json::to_vec(&manifest).unwrap();
    if let Some((req, resp)) = put_pool(cx, OCI_MANIFEST, body).await {
        cx.expect(&req, &resp, [400, 413].contains(&resp.status), "413 or 400");
    }
}

async fn unknown_media_type(cx: &mut Case<'_>) {
    let mut manifest = pool_manifest(cx);
    let media_type = one_of(
        &mut cx.rng,
        &[
            "application/vnd.oci.image.manifest.v2+json",
            "application/json",
            "",
            "application/vnd.docker.distribution.manifest.v1+json",
            "application/vnd.oci.image.layer.v1.tar",
        ],
    );
    manifest["mediaType"] = json!(media_type);
    let body = serde_json::to_vec(&manifest).unwrap();
    let header = if cx.rng.bool() { media_type } else { "" };
    if let Some((req, resp)) = put_pool(cx, header, body).await {
        cx.code(&req, &resp, 400, "MANIFEST_INVALID");
    }
}
