//! Classes for blob uploads: unknown and malformed session ids, `Content-Range` garbage,
//! wrong and malformed `?digest=`, mounts with and without `from`, chunks out of order, PATCH
//! after PUT, and valid uploads of every kind read back byte for byte.

use super::{Case, Class, bad_reference, bytes, class, one_of, unique, unknown_digest};
use crate::common::sha256;
use crate::stress::http::{Req, Resp};

pub fn classes() -> Vec<Class> {
    vec![
        class!("upload_unknown_id", 3, unknown_id),
        class!("upload_malformed_id", 3, malformed_id),
        class!("upload_content_range", 5, content_range),
        class!("upload_digest_mismatch", 3, digest_mismatch),
        class!("upload_digest_malformed", 3, digest_malformed),
        class!("upload_mount", 4, mount),
        class!("upload_out_of_order", 3, out_of_order),
        class!("upload_patch_after_put", 3, patch_after_put),
        class!("upload_valid_read_back", 5, valid_read_back),
        class!("upload_put_without_digest", 2, put_without_digest),
    ]
}

/// `location` with `query` appended.
pub fn with_query(location: &str, query: &str) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}{query}")
}

/// Starts an upload session in `repo`; its Location, or `None` (a finding) if that failed.
pub async fn start(cx: &mut Case<'_>, repo: &str) -> Option<String> {
    let req = Req::new("POST", format!("/v2/{repo}/blobs/uploads/"));
    let resp = cx.send(&req).await?;
    cx.expect(&req, &resp, resp.status == 202, "202");
    let location = resp.header("location")?.to_string();
    Some(location)
}

/// Checks that `repo` holds `data` as the blob of its digest, exactly.
pub async fn read_back(cx: &mut Case<'_>, repo: &str, data: &[u8]) {
    let digest = sha256(data);
    let req = Req::new("GET", format!("/v2/{repo}/blobs/{digest}"));
    let Some(resp) = cx.send(&req).await else {
        return;
    };
    cx.expect(
        &req,
        &resp,
        resp.status == 200,
        "200 for a blob just pushed",
    );
    if resp.status == 200 && (resp.body != data || sha256(&resp.body) != digest) {
        let problem = format!(
            "read {} bytes (digest {}), pushed {} bytes ({digest})",
            resp.body.len(),
            sha256(&resp.body),
            data.len()
        );
        cx.finding(
            &req,
            "corrupt read",
            "blob differs from what was pushed",
            &problem,
        );
    }
}

async fn cancel(cx: &mut Case<'_>, location: &str) -> Option<Resp> {
    let req = Req::new("DELETE", location);
    let resp = cx.send(&req).await?;
    let ok = resp.status == 204 || resp.oci_code().as_deref() == Some("BLOB_UPLOAD_UNKNOWN");
    cx.expect(&req, &resp, ok, "204 or BLOB_UPLOAD_UNKNOWN");
    Some(resp)
}

async fn unknown_id(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let id = uuid::Builder::from_random_bytes(cx.rng.u128(..).to_le_bytes()).into_uuid();
    let location = format!("/v2/{repo}/blobs/uploads/{id}");
    let digest = unknown_digest(&mut cx.rng);
    let req = match cx.rng.u8(..4) {
        0 => Req::new("GET", location),
        1 => Req::new("PATCH", location).body(b"data".to_vec()),
        2 => Req::new("PUT", with_query(&location, &format!("digest={digest}"))),
        _ => Req::new("DELETE", location),
    };
    if let Some(resp) = cx.send(&req).await {
        cx.code(&req, &resp, 404, "BLOB_UPLOAD_UNKNOWN");
    }
}

async fn malformed_id(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let long = "a".repeat(cx.rng.usize(200..3000));
    let id = one_of(
        &mut cx.rng,
        &[
            "..",
            "%2e%2e",
            "%2F..%2F..%2Fetc%2Fpasswd",
            "%00",
            "id;rm",
            "00000000-0000-0000-0000-00000000000G",
            "00000000-0000-0000-0000-000000000000",
            "%20",
            "*",
            "-1",
            long.as_str(),
        ],
    )
    .to_string();
    let location = format!("/v2/{repo}/blobs/uploads/{id}");
    let method = one_of(&mut cx.rng, &["GET", "PATCH", "PUT", "DELETE"]);
    let target = if method == "PUT" {
        with_query(&location, &format!("digest={}", sha256(b"x")))
    } else {
        location
    };
    let req = Req::new(method, target).body(if method == "GET" || method == "DELETE" {
        Vec::new()
    } else {
        b"x".to_vec()
    });
    if let Some(resp) = cx.send(&req).await {
        cx.refused(&req, &resp);
    }
}

async fn content_range(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let Some(location) = start(cx, &repo).await else {
        return;
    };
    let data = bytes(&mut cx.rng, 1..64);
    let end = data.len() - 1;
    let range = match cx.rng.u8(..11) {
        0 => "garbage".to_string(),
        1 => "bytes=".into(),
        // Ends before it starts (a one-byte chunk's `{end}-0` would be the valid `0-0`).
        2 => format!("{}-0", end + 1),
        3 => format!("0-{}", u64::MAX),
        4 => format!("{}-{}", u64::MAX, u64::MAX),
        5 => "18446744073709551615-18446744073709551616".into(),
        6 => "-5".into(),
        7 => "0-".into(),
        8 => format!("1-{}", end + 1),
        9 => format!("0-{}", end + 7),
        _ => format!("0-{end}, 0-{end}"),
    };
    let req = Req::new("PATCH", location.as_str())
        .header("content-type", "application/octet-stream")
        .header("content-range", range)
        .body(data);
    if let Some(resp) = cx.send(&req).await {
        cx.refused(&req, &resp);
    }
    cancel(cx, &location).await;
}

async fn digest_mismatch(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let data = [unique(cx).as_bytes(), &bytes(&mut cx.rng, 0..5000)].concat();
    let wrong = unknown_digest(&mut cx.rng);
    let req = if cx.rng.bool() {
        Req::new("POST", format!("/v2/{repo}/blobs/uploads/?digest={wrong}")).body(data)
    } else {
        let Some(location) = start(cx, &repo).await else {
            return;
        };
        Req::new("PUT", with_query(&location, &format!("digest={wrong}"))).body(data)
    };
    if let Some(resp) = cx.send(&req).await {
        cx.code(&req, &resp, 400, "DIGEST_INVALID");
    }
    // Nothing may be stored under the digest the client claimed.
    let head = Req::new("HEAD", format!("/v2/{repo}/blobs/{wrong}"));
    if let Some(resp) = cx.send(&head).await {
        cx.expect(
            &head,
            &resp,
            resp.status == 404,
            "404 for a digest that did not match",
        );
    }
}

async fn digest_malformed(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let digest = match cx.rng.u8(..4) {
        0 => String::new(),
        1 => "%00".into(),
        2 => format!("{}&digest={}", sha256(b"a"), sha256(b"b")),
        _ => bad_reference(&mut cx.rng),
    };
    let req =
        Req::new("POST", format!("/v2/{repo}/blobs/uploads/?digest={digest}")).body(b"a".to_vec());
    if let Some(resp) = cx.send(&req).await {
        if digest.contains('&') {
            // Two digests: the first counts, and "a" matches it.
            cx.expect(
                &req,
                &resp,
                resp.status == 201 || resp.status == 400,
                "201 or 400",
            );
        } else {
            cx.refused(&req, &resp);
        }
    }
}

async fn mount(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let blob = cx.fx.pool.blob(&mut cx.rng).clone();
    let source = cx.fx.pool.repo(&mut cx.rng).to_string();
    let variant = cx.rng.u8(..6);
    let query = match variant {
        0 => format!("mount={}&from={source}", blob.digest),
        1 => format!("mount={}", blob.digest),
        2 => format!("mount={}&from={source}", unknown_digest(&mut cx.rng)),
        3 => {
            let name = one_of(
                &mut cx.rng,
                &["UPPER", "a/../b", "a%2F..%2Fb", "-a", "a//b", ""],
            );
            format!("mount={}&from={name}", blob.digest)
        }
        4 => format!("mount={}&from=Not/Valid", blob.digest),
        _ => format!("mount={}&from={source}", bad_reference(&mut cx.rng)),
    };
    let req = Req::new("POST", format!("/v2/{repo}/blobs/uploads/?{query}"));
    let Some(resp) = cx.send(&req).await else {
        return;
    };
    match variant {
        0 => cx.expect(
            &req,
            &resp,
            resp.status == 201,
            "201 for a mount from the pool",
        ),
        1 | 2 => cx.expect(&req, &resp, [201, 202].contains(&resp.status), "201 or 202"),
        _ => cx.refused(&req, &resp),
    }
    if resp.status == 201 {
        read_back(cx, &repo, &blob.data).await;
    } else if resp.status == 202
        && let Some(location) = resp.header("location").map(str::to_string)
    {
        cancel(cx, &location).await;
    }
}

async fn out_of_order(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let Some(location) = start(cx, &repo).await else {
        return;
    };
    let data = [unique(cx).as_bytes(), &bytes(&mut cx.rng, 20..=20)].concat();
    let (first, second) = data.split_at(10);
    let patch = |range: String, chunk: &[u8]| {
        Req::new("PATCH", location.as_str())
            .header("content-range", range)
            .body(chunk.to_vec())
    };
    let early = patch(format!("10-{}", data.len() - 1), second);
    if let Some(resp) = cx.send(&early).await {
        cx.expect(
            &early,
            &resp,
            resp.status == 416,
            "416 for a chunk past the end",
        );
    }
    let good = patch("0-9".into(), first);
    if let Some(resp) = cx.send(&good).await {
        cx.expect(&good, &resp, resp.status == 202, "202");
    }
    let again = patch("0-9".into(), first);
    if let Some(resp) = cx.send(&again).await {
        cx.expect(
            &again,
            &resp,
            resp.status == 416,
            "416 for a repeated chunk",
        );
    }
    let rest = patch(format!("10-{}", data.len() - 1), second);
    if let Some(resp) = cx.send(&rest).await {
        cx.expect(&rest, &resp, resp.status == 202, "202");
    }
    let put = Req::new(
        "PUT",
        with_query(&location, &format!("digest={}", sha256(&data))),
    );
    if let Some(resp) = cx.send(&put).await {
        cx.expect(&put, &resp, resp.status == 201, "201");
        read_back(cx, &repo, &data).await;
    }
}

async fn patch_after_put(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let Some(location) = start(cx, &repo).await else {
        return;
    };
    let data = [unique(cx).as_bytes(), &bytes(&mut cx.rng, 100..=100)].concat();
    let put = Req::new(
        "PUT",
        with_query(&location, &format!("digest={}", sha256(&data))),
    )
    .body(data.clone());
    let Some(resp) = cx.send(&put).await else {
        return;
    };
    cx.expect(&put, &resp, resp.status == 201, "201");
    let after = match cx.rng.u8(..4) {
        0 => Req::new("PATCH", location.as_str()).body(b"more".to_vec()),
        1 => Req::new(
            "PUT",
            with_query(&location, &format!("digest={}", sha256(&data))),
        ),
        2 => Req::new("GET", location.as_str()),
        _ => Req::new("DELETE", location.as_str()),
    };
    if let Some(resp) = cx.send(&after).await {
        cx.code(&after, &resp, 404, "BLOB_UPLOAD_UNKNOWN");
    }
    read_back(cx, &repo, &data).await;
}

/// A valid upload of one of the kinds clients use; it must be stored exactly.
async fn valid_read_back(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let size = one_of(&mut cx.rng, &[&0usize, &1, &100, &65_536, &300_000]);
    let data = [unique(cx).as_bytes(), &bytes(&mut cx.rng, *size..=*size)].concat();
    let digest = sha256(&data);
    let kind = cx.rng.u8(..4);
    if kind == 0 {
        let req = Req::new("POST", format!("/v2/{repo}/blobs/uploads/?digest={digest}"))
            .body(data.clone());
        if let Some(resp) = cx.send(&req).await {
            cx.expect(&req, &resp, resp.status == 201, "201");
        }
        return read_back(cx, &repo, &data).await;
    }
    let Some(mut location) = start(cx, &repo).await else {
        return;
    };
    let split = cx.rng.usize(1..=data.len());
    let (head, tail) = data.split_at(split);
    if kind >= 2 {
        let mut patch = Req::new("PATCH", location.as_str()).body(head.to_vec());
        if kind == 3 {
            patch = patch.header("content-range", format!("0-{}", head.len() - 1));
        }
        let Some(resp) = cx.send(&patch).await else {
            return;
        };
        cx.expect(&patch, &resp, resp.status == 202, "202");
        location = resp.header("location").unwrap_or(&location).to_string();
    }
    let last = if kind >= 2 {
        tail.to_vec()
    } else {
        data.clone()
    };
    let put = Req::new("PUT", with_query(&location, &format!("digest={digest}"))).body(last);
    if let Some(resp) = cx.send(&put).await {
        cx.expect(&put, &resp, resp.status == 201, "201");
        let at = resp.header("docker-content-digest").unwrap_or_default();
        cx.expect(
            &put,
            &resp,
            at == digest,
            "Docker-Content-Digest of the data",
        );
    }
    read_back(cx, &repo, &data).await;
}

async fn put_without_digest(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let Some(location) = start(cx, &repo).await else {
        return;
    };
    let req = Req::new("PUT", location.as_str()).body(b"data".to_vec());
    if let Some(resp) = cx.send(&req).await {
        cx.code(&req, &resp, 400, "DIGEST_INVALID");
    }
    cancel(cx, &location).await;
}
