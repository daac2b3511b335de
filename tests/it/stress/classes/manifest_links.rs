//! Classes for what manifests point at: subjects (the manifest itself as it was, a blob, a
//! manifest that does not exist, no digest), indexes nested several deep, missing blobs and
//! children (which must be 400 MANIFEST_BLOB_UNKNOWN), valid manifests read back byte for
//! byte, and digests in the reference that do not match.

use serde_json::{Value, json};

use super::manifests::{put, put_pool, read_back};
use super::races::fresh_image;
use super::{Case, Class, class, one_of, unique, unknown_digest};
use crate::common::{OCI_INDEX, OCI_MANIFEST, sha256};
use crate::stress::http::Req;
use crate::stress::pool::image_manifest;

pub fn classes() -> Vec<Class> {
    vec![
        class!("manifest_subject", 2, subject),
        class!("manifest_nested_index", 2, nested_index),
        class!("manifest_missing_blobs", 3, missing_blobs),
        class!("manifest_valid_read_back", 4, valid_read_back),
        class!("manifest_wrong_digest", 2, wrong_digest),
    ]
}

/// A subject that is the manifest itself (as it was before it got the subject), a config
/// blob, a manifest that does not exist, or no digest at all.
async fn subject(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let Some(bytes) = fresh_image(cx, &repo).await else {
        return;
    };
    let mut manifest: Value = serde_json::from_slice(&bytes).unwrap();
    let variant = cx.rng.u8(..4);
    let digest = match variant {
        0 => sha256(&bytes),
        1 => cx.fx.pool.config.digest.clone(),
        2 => unknown_digest(&mut cx.rng),
        _ => "sha256:nothex".into(),
    };
    manifest["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": bytes.len()});
    let body = serde_json::to_vec(&manifest).unwrap();
    let req = put(&repo, &sha256(&body), OCI_MANIFEST, body);
    let Some(resp) = cx.send(&req).await else {
        return;
    };
    if variant == 3 {
        return cx.code(&req, &resp, 400, "MANIFEST_INVALID");
    }
    cx.expect(&req, &resp, resp.status == 201, "201");
    read_back(cx, &req, &resp).await;
    let referrers = Req::new("GET", format!("/v2/{repo}/referrers/{digest}"));
    let Some(listed) = cx.send(&referrers).await else {
        return;
    };
    let found = listed.json().is_some_and(|b| {
        b["manifests"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["digest"] == sha256(&req.body).as_str()))
    });
    cx.expect(&referrers, &listed, found, "200 listing the new referrer");
}

async fn nested_index(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let Some(image) = fresh_image(cx, &repo).await else {
        return;
    };
    let mut child = (OCI_MANIFEST, image);
    let depth = cx.rng.usize(1..5);
    for level in 0..=depth {
        let req = put(&repo, &sha256(&child.1), child.0, child.1.clone());
        let Some(resp) = cx.send(&req).await else {
            return;
        };
        cx.expect(&req, &resp, resp.status == 201, "201");
        read_back(cx, &req, &resp).await;
        let missing = level == depth;
        let entry = |media_type: &str, digest: String, size: usize| json!({"mediaType": media_type, "digest": digest, "size": size});
        let mut manifests = vec![entry(child.0, sha256(&child.1), child.1.len())];
        if missing {
            manifests.push(entry(OCI_MANIFEST, unknown_digest(&mut cx.rng), 100));
        }
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        child = (OCI_INDEX, serde_json::to_vec(&index).unwrap());
        if missing {
            let req = put(&repo, &format!("nested-{}", unique(cx)), OCI_INDEX, child.1);
            if let Some(resp) = cx.send(&req).await {
                cx.code(&req, &resp, 400, "MANIFEST_BLOB_UNKNOWN");
            }
            return;
        }
    }
}

async fn missing_blobs(cx: &mut Case<'_>) {
    let pool = &cx.fx.pool;
    let (config, layer) = (pool.config.clone(), pool.blob(&mut cx.rng).clone());
    let mut ghost = layer.clone();
    ghost.digest = unknown_digest(&mut cx.rng);
    let (repo, body) = match cx.rng.u8(..3) {
        // A layer nobody pushed.
        0 => (
            pool.repo(&mut cx.rng).to_string(),
            image_manifest(&config, &[&ghost], json!({})),
        ),
        // A config nobody pushed.
        1 => (
            pool.repo(&mut cx.rng).to_string(),
            image_manifest(&ghost, &[&layer], json!({})),
        ),
        // Blobs that exist, but not in this repository.
        _ => (
            format!("{}/isolated", pool.prefix),
            image_manifest(&config, &[&layer], json!({})),
        ),
    };
    let req = put(
        &repo,
        &format!("missing-{}", unique(cx)),
        OCI_MANIFEST,
        body,
    );
    if let Some(resp) = cx.send(&req).await {
        cx.code(&req, &resp, 400, "MANIFEST_BLOB_UNKNOWN");
    }
}

async fn valid_read_back(cx: &mut Case<'_>) {
    let pool = &cx.fx.pool;
    let layers: Vec<_> = (0..cx.rng.usize(0..4))
        .map(|_| pool.blob(&mut cx.rng).clone())
        .collect();
    let config = pool.config.clone();
    let odd = one_of(
        &mut cx.rng,
        &["", "\u{e9}\u{1f433}", "\\\"", "\n\t", "\u{2028}"],
    );
    let annotations = json!({"annotations": {"stress": format!("{}{odd}", unique(cx))}});
    let mut body = image_manifest(&config, &layers.iter().collect::<Vec<_>>(), annotations);
    if cx.rng.bool() {
        let pretty: Value = serde_json::from_slice(&body).unwrap();
        body = serde_json::to_vec_pretty(&pretty).unwrap();
    }
    let Some((req, resp)) = put_pool(cx, OCI_MANIFEST, body).await else {
        return;
    };
    cx.expect(&req, &resp, resp.status == 201, "201");
    read_back(cx, &req, &resp).await;
}

async fn wrong_digest(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.repo(&mut cx.rng).to_string();
    let body = cx.fx.pool.manifest.bytes.clone();
    let reference = match cx.rng.u8(..3) {
        0 => unknown_digest(&mut cx.rng),
        1 => format!("sha512:{}", super::hex(&mut cx.rng, 128..=128)),
        _ => format!("sha256:{}", &sha256(&body)[7..].to_uppercase()),
    };
    let req = put(&repo, &reference, OCI_MANIFEST, body);
    if let Some(resp) = cx.send(&req).await {
        cx.code(&req, &resp, 400, "DIGEST_INVALID");
    }
}
