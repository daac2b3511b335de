//! Classes that read: blob `Range` garbage (answers checked against the bytes), HEAD against
//! GET, unknown and unlinked blobs, tag and catalog pages with garbage `n` and `last`, and
//! referrers with garbage `artifactType`.

use super::{Case, Class, bad_reference, class, one_of, unknown_digest};
use crate::common::OCI_INDEX;
use crate::stress::http::{Req, Resp};
use crate::stress::pool::ARTIFACT_TYPE;

pub fn classes() -> Vec<Class> {
    vec![
        class!("blob_range", 5, range),
        class!("blob_head_vs_get", 4, head_vs_get),
        class!("blob_unknown_or_unlinked", 3, unknown_or_unlinked),
        class!("list_tags_paging", 4, tags_paging),
        class!("list_catalog_paging", 3, catalog_paging),
        class!("list_referrers", 4, referrers),
    ]
}

async fn range(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.repo(&mut cx.rng).to_string();
    let blob = cx.fx.pool.blob(&mut cx.rng).clone();
    let size = blob.data.len() as u64;
    let a = cx.rng.u64(..=size + 2);
    let b = cx.rng.u64(..=size + 2);
    let spec = match cx.rng.u8(..16) {
        0 => format!("bytes={a}-{b}"),
        1 => format!("bytes={}-{}", a.max(b), a.min(b)),
        2 => format!("bytes=-{a}"),
        3 => format!("bytes={a}-"),
        4 => "bytes=0-1,3-4".into(),
        5 => "bytes=99999999999999999999-".into(),
        6 => format!("bytes=0-{}", u64::MAX),
        7 => "items=0-1".into(),
        8 => "bytes=a-b".into(),
        9 => "bytes= 1 - 2".into(),
        10 => "bytes=-0".into(),
        11 => format!("bytes={size}-"),
        12 => format!("bytes={size}-{}", size + 10),
        13 => "bytes=5-2".into(),
        14 => "bytes=--1".into(),
        _ => format!("bytes={}-{}", u64::MAX, u64::MAX),
    };
    let req = Req::new("GET", format!("/v2/{repo}/blobs/{}", blob.digest)).header("range", spec);
    let Some(resp) = cx.send(&req).await else {
        return;
    };
    let ok = match resp.status {
        200 => resp.body == blob.data,
        206 => partial_matches(&resp, &blob.data),
        416 => true,
        _ => false,
    };
    cx.expect(
        &req,
        &resp,
        [200, 206, 416].contains(&resp.status),
        "200, 206 or 416",
    );
    if [200, 206].contains(&resp.status) && !ok {
        let problem = format!(
            "{} with content-range {:?} and {} bytes, blob of {size} bytes",
            resp.status,
            resp.header("content-range"),
            resp.body.len()
        );
        cx.finding(
            &req,
            "corrupt read",
            "range answer differs from the blob",
            &problem,
        );
    }
}

/// Whether a 206 says `bytes first-last/size` of `data` and carries exactly those bytes.
fn partial_matches(resp: &Resp, data: &[u8]) -> bool {
    let Some(range) = resp.header("content-range") else {
        return false;
    };
    let parse = || -> Option<(usize, usize, usize)> {
        let (span, size) = range.strip_prefix("bytes ")?.split_once('/')?;
        let (first, last) = span.split_once('-')?;
        Some((first.parse().ok()?, last.parse().ok()?, size.parse().ok()?))
    };
    match parse() {
        Some((first, last, size)) => {
            size == data.len() && first <= last && last < size && resp.body == data[first..=last]
        }
        None => false,
    }
}

async fn head_vs_get(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.repo(&mut cx.rng).to_string();
    let known = cx.rng.u8(..4) != 0;
    let (digest, data) = if known {
        let blob = cx.fx.pool.blob(&mut cx.rng);
        (blob.digest.clone(), Some(blob.data.clone()))
    } else {
        (unknown_digest(&mut cx.rng), None)
    };
    let path = format!("/v2/{repo}/blobs/{digest}");
    let head = Req::new("HEAD", path.as_str());
    let get = Req::new("GET", path.as_str());
    let (Some(h), Some(g)) = (cx.send(&head).await, cx.send(&get).await) else {
        return;
    };
    cx.expect(
        &get,
        &g,
        h.status == g.status,
        &format!("the HEAD's {}", h.status),
    );
    let length = h
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    match data {
        Some(data) => {
            cx.expect(&head, &h, h.status == 200, "200");
            cx.expect(
                &head,
                &h,
                length == Some(data.len()),
                "the blob's Content-Length",
            );
            if g.status == 200 && g.body != data {
                let problem = format!("{} bytes, blob of {}", g.body.len(), data.len());
                cx.finding(
                    &get,
                    "corrupt read",
                    "blob differs from the pool's",
                    &problem,
                );
            }
            let same = h.header("docker-content-digest") == Some(digest.as_str())
                && g.header("docker-content-digest") == Some(digest.as_str());
            cx.expect(
                &get,
                &g,
                same,
                "Docker-Content-Digest of the blob on HEAD and GET",
            );
        }
        None => cx.code(&get, &g, 404, "BLOB_UNKNOWN"),
    }
}

async fn unknown_or_unlinked(cx: &mut Case<'_>) {
    let pool = &cx.fx.pool;
    let blob = pool.blob(&mut cx.rng).digest.clone();
    // Never pushed to: a pool blob must not be readable through it.
    let isolated = format!("{}/isolated", pool.prefix);
    let (repo, digest) = match cx.rng.u8(..3) {
        0 => (
            pool.repo(&mut cx.rng).to_string(),
            unknown_digest(&mut cx.rng),
        ),
        1 => (isolated, blob),
        _ => (isolated, unknown_digest(&mut cx.rng)),
    };
    let method = one_of(&mut cx.rng, &["GET", "HEAD", "DELETE"]);
    let req = Req::new(method, format!("/v2/{repo}/blobs/{digest}"));
    if let Some(resp) = cx.send(&req).await {
        cx.expect(&req, &resp, resp.status == 404, "404");
    }
}

fn garbage_n(cx: &mut Case<'_>) -> String {
    one_of(
        &mut cx.rng,
        &[
            "-1",
            "0",
            "1",
            "2",
            "1000",
            "1001",
            "4294967296",
            "99999999999999999999",
            "abc",
            "",
            "1e3",
            "+5",
            "%205",
            "0x10",
            "%00",
            "1.5",
        ],
    )
    .to_string()
}

fn garbage_last(cx: &mut Case<'_>) -> Option<String> {
    let long = "a".repeat(cx.rng.usize(100..5000));
    let last = one_of(
        &mut cx.rng,
        &[
            "",
            "v1",
            "zzzz",
            "%ff%fe",
            "-",
            "multi",
            "%00",
            "..",
            "a/b",
            long.as_str(),
        ],
    );
    cx.rng.bool().then(|| last.to_string())
}

/// Checks a 200 listing: `key` is a sorted array of at most `n` strings.
fn check_page(cx: &Case<'_>, req: &Req, resp: &Resp, key: &str, n: &str) {
    let Some(items) = resp.json().and_then(|b| b[key].as_array().cloned()) else {
        cx.expect(req, resp, false, &format!("a JSON body with {key}"));
        return;
    };
    let names: Vec<&str> = items.iter().filter_map(|v| v.as_str()).collect();
    let sorted = names.windows(2).all(|w| w[0] < w[1]) && names.len() == items.len();
    cx.expect(req, resp, sorted, &format!("{key} sorted, unique strings"));
    if let Ok(n) = n.parse::<usize>() {
        cx.expect(req, resp, names.len() <= n, "at most n entries");
    }
}

async fn tags_paging(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.repo(&mut cx.rng).to_string();
    let n = garbage_n(cx);
    let mut target = format!("/v2/{repo}/tags/list?n={n}");
    if let Some(last) = garbage_last(cx) {
        target.push_str(&format!("&last={last}"));
    }
    let plain = cx.rng.u8(..4) == 0;
    if plain {
        target = format!("/v2/{repo}/tags/list");
    }
    let req = Req::new("GET", target);
    let Some(resp) = cx.send(&req).await else {
        return;
    };
    if plain {
        // The pool's tags, and those of valid manifests fuzz cases pushed.
        let tags: Vec<String> = resp
            .json()
            .and_then(|b| serde_json::from_value(b["tags"].clone()).ok())
            .unwrap_or_default();
        let ours = tags.iter().filter(|t| !t.starts_with("fuzz-"));
        let ok = resp.status == 200 && ours.map(String::as_str).eq(["multi", "v1"]);
        cx.expect(&req, &resp, ok, "200 with tags multi, v1 and fuzz-…");
    } else if resp.status == 200 {
        check_page(cx, &req, &resp, "tags", &n);
    } else {
        let code = resp.oci_code().unwrap_or_default();
        let ok = resp.status == 400
            && ["PAGINATION_NUMBER_INVALID", "TAG_INVALID"].contains(&code.as_str());
        cx.expect(
            &req,
            &resp,
            ok,
            "200 or 400 PAGINATION_NUMBER_INVALID/TAG_INVALID",
        );
    }
}

async fn catalog_paging(cx: &mut Case<'_>) {
    let n = garbage_n(cx);
    let mut target = format!("/v2/_catalog?n={n}");
    if let Some(last) = garbage_last(cx) {
        target.push_str(&format!("&last={last}"));
    }
    let req = Req::new("GET", target);
    let Some(resp) = cx.send(&req).await else {
        return;
    };
    if resp.status != 200 {
        let code = resp.oci_code().unwrap_or_default();
        let ok = resp.status == 400
            && ["PAGINATION_NUMBER_INVALID", "NAME_INVALID"].contains(&code.as_str());
        cx.expect(
            &req,
            &resp,
            ok,
            "200 or 400 PAGINATION_NUMBER_INVALID/NAME_INVALID",
        );
        return;
    }
    check_page(cx, &req, &resp, "repositories", &n);
    // The next page, as the Link header gives it.
    let next = resp.header("link").and_then(|link| {
        let url = link.strip_prefix('<')?.split_once('>')?.0;
        Some(url.to_string())
    });
    if let Some(next) = next {
        let req = Req::new("GET", next);
        if let Some(resp) = cx.send(&req).await {
            cx.expect(
                &req,
                &resp,
                resp.status == 200,
                "200 for the Link header's page",
            );
        }
    }
}

async fn referrers(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.repo(&mut cx.rng).to_string();
    let long = "x".repeat(cx.rng.usize(100..5000));
    let filter = one_of(
        &mut cx.rng,
        &[
            "",
            ARTIFACT_TYPE,
            "application/x;y=z",
            "*",
            "%00",
            "%ff",
            "a%2Fb",
            "\u{e9}",
            long.as_str(),
        ],
    )
    .to_string();
    let variant = cx.rng.u8(..4);
    let subject = match variant {
        0 => unknown_digest(&mut cx.rng),
        1 => bad_reference(&mut cx.rng),
        _ => cx.fx.pool.manifest.digest.clone(),
    };
    let mut target = format!("/v2/{repo}/referrers/{subject}");
    if cx.rng.u8(..4) != 0 {
        target.push_str(&format!("?artifactType={filter}"));
    }
    let req = Req::new("GET", target.as_str());
    let Some(resp) = cx.send(&req).await else {
        return;
    };
    if variant == 1 {
        return cx.refused(&req, &resp);
    }
    cx.expect(&req, &resp, resp.status == 200, "200");
    let Some(body) = resp.json().filter(|_| resp.status == 200) else {
        return;
    };
    let manifests = body["manifests"].as_array().cloned().unwrap_or_default();
    cx.expect(&req, &resp, body["mediaType"] == OCI_INDEX, "an OCI index");
    let mine = manifests
        .iter()
        .any(|m| m["digest"] == cx.fx.pool.referrer.digest.as_str());
    let filtered = target.contains("artifactType=");
    let wanted = subject == cx.fx.pool.manifest.digest && (!filtered || filter == ARTIFACT_TYPE);
    // An empty artifactType may filter for nothing or for everything.
    let either = filtered && filter.is_empty();
    cx.expect(
        &req,
        &resp,
        either || mine == wanted,
        "the pool's referrer exactly when it matches",
    );
}
