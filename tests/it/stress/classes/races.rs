//! Classes that race requests on one object: the three-way race on one upload (a PATCH, the
//! PUT that finishes it and the DELETE that cancels it, at once), concurrent pushes of one
//! blob, concurrent manifests for one tag, and a manifest deleted while it is read. Each
//! request of a race goes on its own connection.

use std::time::Duration;

use super::uploads::{read_back, start, with_query};
use super::{Case, Class, bytes, class, unique};
use crate::common::{OCI_MANIFEST, sha256};
use crate::stress::http::{Conn, Req, Resp};
use crate::stress::pool::{Blob, image_manifest};

pub fn classes() -> Vec<Class> {
    vec![
        class!("race_upload_three_way", 12, three_way),
        class!("race_same_blob", 3, same_blob),
        class!("race_tag_two_manifests", 3, tag_two_manifests),
        class!("race_delete_while_reading", 3, delete_while_reading),
    ]
}

/// Sends `req` on its own connection after `delay`.
async fn after(cx: &Case<'_>, delay: Duration, req: &Req) -> Option<Resp> {
    tokio::time::sleep(delay).await;
    let mut conn: Conn = cx.new_conn();
    cx.send_on(&mut conn, req).await
}

/// What a request racing on an upload may answer.
fn race_answer(resp: &Resp, put: bool) -> bool {
    let code = resp.oci_code().unwrap_or_default();
    resp.is_success()
        || (resp.status == 404 && code == "BLOB_UPLOAD_UNKNOWN")
        || resp.status == 416
        || (resp.status == 400 && code == "BLOB_UPLOAD_INVALID")
        // The PUT may come before the PATCH, and then its digest cannot match.
        || (put && resp.status == 400 && code == "DIGEST_INVALID")
}

async fn three_way(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let Some(location) = start(cx, &repo).await else {
        return;
    };
    let first = [unique(cx).as_bytes(), &bytes(&mut cx.rng, 0..2000)].concat();
    let second = bytes(&mut cx.rng, 1..5000);
    let mut offset = 0;
    if cx.rng.u8(..4) != 0 {
        let patch = Req::new("PATCH", location.as_str()).body(first.clone());
        let Some(resp) = cx.send(&patch).await else {
            return;
        };
        cx.expect(&patch, &resp, resp.status == 202, "202");
        offset = first.len();
    }
    let full = if offset > 0 {
        [first.as_slice(), &second].concat()
    } else {
        second.clone()
    };
    let digest = sha256(&full);
    let range = format!("{offset}-{}", offset + second.len() - 1);
    let patch = Req::new("PATCH", location.as_str())
        .header("content-range", range)
        .body(second.clone());
    let mut put = Req::new("PUT", with_query(&location, &format!("digest={digest}")));
    if cx.rng.bool() {
        put = put.body(second.clone());
    }
    let delete = Req::new("DELETE", location.as_str());
    let mut delay = || Duration::from_micros(cx.rng.u64(..3000));
    let delays = [delay(), delay(), delay()];
    let (patched, put_answer, deleted) = tokio::join!(
        after(cx, delays[0], &patch),
        after(cx, delays[1], &put),
        after(cx, delays[2], &delete),
    );
    for (req, resp, is_put) in [
        (&patch, &patched, false),
        (&put, &put_answer, true),
        (&delete, &deleted, false),
    ] {
        if let Some(resp) = resp {
            let wanted = "2xx, 404 BLOB_UPLOAD_UNKNOWN, 416 or 400 BLOB_UPLOAD_INVALID";
            cx.expect(req, resp, race_answer(resp, is_put), wanted);
        }
    }
    let created = put_answer.as_ref().is_some_and(|r| r.status == 201);
    if created {
        read_back(cx, &repo, &full).await;
    }
    let cancelled = deleted.as_ref().is_some_and(|r| r.status == 204);
    if created || cancelled {
        let status = Req::new("GET", location.as_str());
        if let Some(resp) = cx.send(&status).await {
            cx.code(&status, &resp, 404, "BLOB_UPLOAD_UNKNOWN");
        }
    }
}

async fn same_blob(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let data = [unique(cx).as_bytes(), &bytes(&mut cx.rng, 0..200_000)].concat();
    let digest = sha256(&data);
    let req =
        Req::new("POST", format!("/v2/{repo}/blobs/uploads/?digest={digest}")).body(data.clone());
    let zero = Duration::ZERO;
    let answers = futures::future::join_all((0..4).map(|_| after(cx, zero, &req))).await;
    for resp in answers.iter().flatten() {
        cx.expect(
            &req,
            resp,
            resp.status == 201,
            "201 for each of 4 identical pushes",
        );
    }
    read_back(cx, &repo, &data).await;
}

/// Pushes a one-layer image of fresh content into `repo` (blobs only) and returns its
/// manifest's bytes.
pub async fn fresh_image(cx: &mut Case<'_>, repo: &str) -> Option<Vec<u8>> {
    let layer = Blob::new([unique(cx).as_bytes(), &bytes(&mut cx.rng, 64..=64)].concat());
    let config = cx.fx.pool.config.clone();
    for blob in [&layer, &config] {
        let req = Req::new(
            "POST",
            format!("/v2/{repo}/blobs/uploads/?digest={}", blob.digest),
        )
        .body(blob.data.clone());
        let resp = cx.send(&req).await?;
        cx.expect(&req, &resp, resp.status == 201, "201");
    }
    Some(image_manifest(&config, &[&layer], serde_json::json!({})))
}

async fn tag_two_manifests(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let (Some(one), Some(two)) = (fresh_image(cx, &repo).await, fresh_image(cx, &repo).await)
    else {
        return;
    };
    let tag = format!("race-{}", unique(cx));
    let put = |bytes: &[u8]| {
        Req::new("PUT", format!("/v2/{repo}/manifests/{tag}"))
            .header("content-type", OCI_MANIFEST)
            .body(bytes.to_vec())
    };
    let (a, b) = (put(&one), put(&two));
    let (ra, rb) = tokio::join!(after(cx, Duration::ZERO, &a), after(cx, Duration::ZERO, &b));
    for (req, resp) in [(&a, &ra), (&b, &rb)] {
        if let Some(resp) = resp {
            cx.expect(req, resp, resp.status == 201, "201");
        }
    }
    let get = Req::new("GET", format!("/v2/{repo}/manifests/{tag}"));
    let Some(resp) = cx.send(&get).await else {
        return;
    };
    cx.expect(&get, &resp, resp.status == 200, "200");
    let digest = resp.header("docker-content-digest").unwrap_or_default();
    let consistent = (resp.body == one || resp.body == two) && digest == sha256(&resp.body);
    if resp.status == 200 && !consistent {
        let problem = format!(
            "tag {tag} reads {} bytes, digest {digest:?}",
            resp.body.len()
        );
        cx.finding(
            &get,
            "corrupt read",
            "tag points at neither manifest",
            &problem,
        );
    }
}

async fn delete_while_reading(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let Some(manifest) = fresh_image(cx, &repo).await else {
        return;
    };
    let digest = sha256(&manifest);
    let put = Req::new("PUT", format!("/v2/{repo}/manifests/{digest}"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone());
    let Some(resp) = cx.send(&put).await else {
        return;
    };
    cx.expect(&put, &resp, resp.status == 201, "201");
    let get = Req::new("GET", format!("/v2/{repo}/manifests/{digest}"));
    let delete = Req::new("DELETE", format!("/v2/{repo}/manifests/{digest}"));
    let mut delay = || Duration::from_micros(cx.rng.u64(..2000));
    let delays = [delay(), delay(), delay()];
    let (read, deleted, again) = tokio::join!(
        after(cx, delays[0], &get),
        after(cx, delays[1], &delete),
        after(cx, delays[2], &get),
    );
    if let Some(resp) = &deleted {
        cx.expect(&delete, resp, resp.status == 202, "202");
    }
    for resp in [read, again].iter().flatten() {
        let ok = (resp.status == 200 && resp.body == manifest)
            || resp.oci_code().as_deref() == Some("MANIFEST_UNKNOWN");
        cx.expect(&get, resp, ok, "the manifest, or 404 MANIFEST_UNKNOWN");
    }
    let Some(resp) = cx.send(&get).await else {
        return;
    };
    cx.code(&get, &resp, 404, "MANIFEST_UNKNOWN");
}
