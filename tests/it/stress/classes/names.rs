//! Classes for repository names and references: empty, too long, uppercase, `..` and its
//! encodings, `%2F`, unicode, control bytes, stray slashes and separators, one-character
//! components, mutations of valid names (checked against the grammar), bad tags and digests,
//! and the pool read back exactly.

use super::{Case, Class, bad_reference, class, component, hex, one_of, unknown_digest};
use crate::stress::http::Req;

pub fn classes() -> Vec<Class> {
    vec![
        class!("name_empty", 2, empty),
        class!("name_too_long", 2, too_long),
        class!("name_uppercase", 2, uppercase),
        class!("name_dot_dot", 3, dot_dot),
        class!("name_encoded", 3, encoded),
        class!("name_unicode", 2, unicode),
        class!("name_control_bytes", 2, control_bytes),
        class!("name_slashes", 2, slashes),
        class!("name_separators", 3, separators),
        class!("name_short_components", 2, short_components),
        class!("name_mutated", 4, mutated),
        class!("ref_invalid_manifest", 4, invalid_manifest_reference),
        class!("ref_invalid_blob", 3, invalid_blob_reference),
        class!("ref_tag_length", 2, tag_length),
        class!("ref_sha512", 2, sha512),
        class!("ref_pool_read_back", 3, pool_read_back),
    ]
}

/// Whether `name` is a valid repository name, by the distribution spec's grammar.
pub fn valid_name(name: &str) -> bool {
    let component = |c: &str| {
        let b = c.as_bytes();
        let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return false;
        }
        c.split(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            .filter(|sep| !sep.is_empty())
            .all(|sep| matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-'))
    };
    !name.is_empty() && name.len() <= 255 && name.split('/').all(component)
}

/// A method and endpoint suffix for reading (or starting an upload on) some repository.
fn endpoint(cx: &mut Case<'_>) -> (&'static str, String) {
    let digest = cx.fx.pool.blob(&mut cx.rng).digest.clone();
    match cx.rng.u8(..6) {
        0 => ("GET", "tags/list".into()),
        1 => ("GET", "manifests/v1".into()),
        2 => ("HEAD", "manifests/v1".into()),
        3 => ("GET", format!("blobs/{digest}")),
        4 => ("POST", "blobs/uploads/".into()),
        _ => ("GET", format!("referrers/{}", cx.fx.pool.manifest.digest)),
    }
}

/// Sends `method /v2/<name>/<suffix>`, which must be refused.
async fn must_refuse(cx: &mut Case<'_>, name: &[u8]) {
    let (method, suffix) = endpoint(cx);
    let mut target = b"/v2/".to_vec();
    target.extend_from_slice(name);
    target.push(b'/');
    target.extend_from_slice(suffix.as_bytes());
    let req = Req::new(method, target);
    if let Some(resp) = cx.send(&req).await {
        cx.refused(&req, &resp);
    }
}

async fn empty(cx: &mut Case<'_>) {
    let target = one_of(
        &mut cx.rng,
        &[
            "/v2//tags/list",
            "/v2//manifests/v1",
            "/v2//blobs/uploads/",
            "/v2/tags/list",
            "/v2/manifests/v1",
            "/v2/blobs/uploads/",
            "/v2//referrers/sha256:0",
        ],
    );
    let method = if target.ends_with("uploads/") {
        "POST"
    } else {
        "GET"
    };
    let req = Req::new(method, target);
    if let Some(resp) = cx.send(&req).await {
        cx.refused(&req, &resp);
    }
}

async fn too_long(cx: &mut Case<'_>) {
    let mut name = cx.fx.pool.prefix.clone();
    let target = cx.rng.usize(256..1200);
    while name.len() < target {
        name.push('/');
        name.push_str(&component(&mut cx.rng));
    }
    must_refuse(cx, name.as_bytes()).await;
}

async fn uppercase(cx: &mut Case<'_>) {
    let mut name: Vec<u8> = cx.fx.pool.repo(&mut cx.rng).as_bytes().to_vec();
    let i = cx.rng.usize(..name.len());
    name[i] = cx.rng.uppercase() as u8;
    must_refuse(cx, &name).await;
}

async fn dot_dot(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.repos[1].clone();
    let name = match cx.rng.u8(..5) {
        0 => format!("{repo}/../.."),
        1 => format!("{repo}/.."),
        2 => format!("../{repo}"),
        3 => format!("{repo}/./x"),
        _ => format!("{}/../../../../etc", cx.fx.pool.prefix),
    };
    must_refuse(cx, name.as_bytes()).await;
}

async fn encoded(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.repo(&mut cx.rng).to_string();
    let (head, tail) = repo.split_once('/').unwrap_or((&repo, "x"));
    let escape = one_of(
        &mut cx.rng,
        &[
            "%2F", "%2f", "%2e%2e", "%2E%2E", "%2e", "%00", "%20", "%5C", "%252F", "%c0%af",
        ],
    );
    let name = match cx.rng.u8(..3) {
        0 => format!("{head}{escape}{tail}"),
        1 => format!("{head}/{escape}/{tail}"),
        _ => format!("{repo}{escape}"),
    };
    must_refuse(cx, name.as_bytes()).await;
}

async fn unicode(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.repo(&mut cx.rng).to_string();
    let odd = one_of(
        &mut cx.rng,
        &[
            "é",
            "Ä",
            "ﬁ",
            "𝔞",
            "🐳",
            "\u{202e}",
            "\u{200b}",
            "ｐｏｏｌ",
            "İ",
            "ß",
        ],
    );
    let at = cx.rng.usize(..=repo.len());
    let at = (0..=at).rev().find(|i| repo.is_char_boundary(*i)).unwrap();
    let name = format!("{}{odd}{}", &repo[..at], &repo[at..]);
    must_refuse(cx, name.as_bytes()).await;
}

async fn control_bytes(cx: &mut Case<'_>) {
    let mut name = cx.fx.pool.repo(&mut cx.rng).as_bytes().to_vec();
    let byte = one_of(&mut cx.rng, &[&0u8, &1, &7, &8, &0x1b, &0x7f, &0xff, &0x80]);
    let at = cx.rng.usize(..=name.len());
    name.insert(at, *byte);
    must_refuse(cx, &name).await;
}

async fn slashes(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.repos[1].clone();
    let name = match cx.rng.u8(..4) {
        0 => format!("{repo}/"),
        1 => format!("/{repo}"),
        2 => repo.replacen('/', "//", 1),
        _ => format!("{repo}///"),
    };
    must_refuse(cx, name.as_bytes()).await;
}

async fn separators(cx: &mut Case<'_>) {
    let prefix = cx.fx.pool.prefix.clone();
    let tail = one_of(
        &mut cx.rng,
        &[
            "-a", ".a", "_a", "a-", "a.", "a_", "a..b", "a___b", "a.-b", "a-.b", "--", "._", "-",
            ".", "_", "__", "a/-", "a/./b",
        ],
    );
    let name = if cx.rng.bool() {
        format!("{prefix}/{tail}")
    } else {
        tail.to_string()
    };
    must_refuse(cx, name.as_bytes()).await;
}

async fn short_components(cx: &mut Case<'_>) {
    let depth = cx.rng.usize(1..20);
    let mut name = cx.fx.pool.prefix.clone();
    for _ in 0..depth {
        name.push('/');
        name.push(cx.rng.alphanumeric().to_ascii_lowercase());
    }
    let req = Req::new("GET", format!("/v2/{name}/tags/list"));
    if let Some(resp) = cx.send(&req).await {
        cx.code(&req, &resp, 404, "NAME_UNKNOWN");
    }
}

/// A pool name with one byte changed: valid names are looked up (not found), invalid ones
/// refused as NAME_INVALID.
async fn mutated(cx: &mut Case<'_>) {
    let mut name: Vec<u8> = cx.fx.pool.repo(&mut cx.rng).as_bytes().to_vec();
    let charset = b"abcz09-._/_-..__A!~:;@=+,*'()$&";
    for _ in 0..cx.rng.usize(1..4) {
        let i = cx.rng.usize(..name.len());
        let byte = charset[cx.rng.usize(..charset.len())];
        match cx.rng.u8(..3) {
            0 => name[i] = byte,
            1 => name.insert(i, byte),
            _ => {
                name.remove(i);
            }
        }
    }
    let text = String::from_utf8(name).expect("ASCII");
    let req = Req::new("GET", format!("/v2/{text}/tags/list"));
    let Some(resp) = cx.send(&req).await else {
        return;
    };
    if text == cx.fx.pool.repos[0] || text == cx.fx.pool.repos[1] {
        cx.expect(&req, &resp, resp.status == 200, "200");
    } else if valid_name(&text) {
        cx.code(&req, &resp, 404, "NAME_UNKNOWN");
    } else if text.ends_with("/tags") || text.contains("/manifests/") || text.contains("/blobs/") {
        // The name now ends in another endpoint's path: any refusal will do.
        cx.refused(&req, &resp);
    } else {
        cx.code(&req, &resp, 400, "NAME_INVALID");
    }
}

async fn invalid_manifest_reference(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.repo(&mut cx.rng).to_string();
    let reference = bad_reference(&mut cx.rng);
    let method = one_of(&mut cx.rng, &["GET", "HEAD", "PUT"]);
    let mut req = Req::new(method, format!("/v2/{repo}/manifests/{reference}"));
    if method == "PUT" {
        req = req
            .header("content-type", crate::common::OCI_MANIFEST)
            .body(cx.fx.pool.manifest.bytes.clone());
    }
    if let Some(resp) = cx.send(&req).await {
        cx.refused(&req, &resp);
    }
}

async fn invalid_blob_reference(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.repo(&mut cx.rng).to_string();
    let mut reference = bad_reference(&mut cx.rng);
    if cx.rng.u8(..4) == 0 {
        reference = "latest".into();
    }
    let method = one_of(&mut cx.rng, &["GET", "HEAD"]);
    let req = Req::new(method, format!("/v2/{repo}/blobs/{reference}"));
    if let Some(resp) = cx.send(&req).await {
        cx.refused(&req, &resp);
    }
}

async fn tag_length(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.repo(&mut cx.rng).to_string();
    let long = cx.rng.bool();
    // `fuzz-` tags are the only ones cases may add to pool repositories.
    let length = if long { 129 } else { 128 };
    let tag: String = "fuzz-"
        .chars()
        .chain((5..length).map(|_| cx.rng.alphanumeric()))
        .collect();
    let put = cx.rng.bool();
    let req = if put {
        Req::new("PUT", format!("/v2/{repo}/manifests/{tag}"))
            .header("content-type", crate::common::OCI_MANIFEST)
            .body(cx.fx.pool.manifest.bytes.clone())
    } else {
        Req::new("GET", format!("/v2/{repo}/manifests/{tag}"))
    };
    let Some(resp) = cx.send(&req).await else {
        return;
    };
    match (long, put) {
        (true, true) => cx.code(&req, &resp, 400, "TAG_INVALID"),
        // Reads of what cannot be a tag may say it is invalid, or that there is no such
        // manifest (Wharf's choice).
        (true, false) => invalid_or_unknown(cx, &req, &resp, "TAG_INVALID"),
        (false, true) => cx.expect(
            &req,
            &resp,
            resp.status == 201,
            "201 for a 128-character tag",
        ),
        (false, false) => cx.code(&req, &resp, 404, "MANIFEST_UNKNOWN"),
    }
}

async fn sha512(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.repo(&mut cx.rng).to_string();
    let good_length = cx.rng.bool();
    let length = if good_length { 128 } else { 64 };
    let digest = format!("sha512:{}", hex(&mut cx.rng, length..=length));
    let manifest = cx.rng.bool();
    let kind = if manifest { "manifests" } else { "blobs" };
    let req = Req::new("GET", format!("/v2/{repo}/{kind}/{digest}"));
    let Some(resp) = cx.send(&req).await else {
        return;
    };
    match (good_length, manifest) {
        (true, true) => cx.code(&req, &resp, 404, "MANIFEST_UNKNOWN"),
        (true, false) => cx.code(&req, &resp, 404, "BLOB_UNKNOWN"),
        (false, true) => invalid_or_unknown(cx, &req, &resp, "DIGEST_INVALID"),
        (false, false) => cx.code(&req, &resp, 400, "DIGEST_INVALID"),
    }
    // And a sha256 digest of nothing stored, for comparison.
    let digest = unknown_digest(&mut cx.rng);
    let req = Req::new("HEAD", format!("/v2/{repo}/{kind}/{digest}"));
    if let Some(resp) = cx.send(&req).await {
        cx.expect(&req, &resp, resp.status == 404, "404");
    }
}

/// A read of a manifest reference that is invalid: 400 `code`, or 404 MANIFEST_UNKNOWN.
fn invalid_or_unknown(cx: &Case<'_>, req: &Req, resp: &crate::stress::http::Resp, code: &str) {
    let got = resp.oci_code().unwrap_or_default();
    let ok =
        (resp.status == 400 && got == code) || (resp.status == 404 && got == "MANIFEST_UNKNOWN");
    cx.expect(
        req,
        resp,
        ok,
        &format!("400 {code} or 404 MANIFEST_UNKNOWN"),
    );
}

/// The pool's manifests by tag and by digest, byte for byte, with and without `Accept`.
async fn pool_read_back(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.repo(&mut cx.rng).to_string();
    let (stored, tag) = if cx.rng.bool() {
        (cx.fx.pool.manifest.clone(), "v1")
    } else {
        (cx.fx.pool.index.clone(), "multi")
    };
    let reference = if cx.rng.bool() { tag } else { &stored.digest };
    let accept = one_of(
        &mut cx.rng,
        &[
            "",
            "*/*",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
            "application/json;q=0.5, */*;q=0.1",
        ],
    );
    let mut req = Req::new("GET", format!("/v2/{repo}/manifests/{reference}"));
    if !accept.is_empty() {
        req = req.header("accept", accept);
    }
    let Some(resp) = cx.send(&req).await else {
        return;
    };
    cx.expect(&req, &resp, resp.status == 200, "200");
    if resp.status == 200 {
        let digest = resp.header("docker-content-digest").unwrap_or_default();
        if resp.body != stored.bytes || digest != stored.digest {
            let problem = format!(
                "read {} bytes with digest {digest:?}, stored {} bytes {}",
                resp.body.len(),
                stored.bytes.len(),
                stored.digest
            );
            cx.finding(
                &req,
                "corrupt read",
                "manifest differs from what was pushed",
                &problem,
            );
        }
    }
}
