//! Fuzz classes about request bodies, on a bare TCP socket: bad chunked encoding, slow
//! senders, `Content-Length` lies (more or less than is sent), and a connection reused after
//! the server refused a request before reading its body (unless the refusal says
//! `Connection: close`, the next request on that connection must be answered).

use std::time::{Duration, Instant};

use super::HANG;
use super::classes::uploads::{read_back, start};
use super::classes::{Case, Class, bytes, class, unique};
use super::http::Req;
use super::raw::{as_req, exchange, tolerated};
use crate::common::sha256;

pub fn classes() -> Vec<Class> {
    vec![
        class!("raw_bad_chunked", 3, bad_chunked),
        class!("raw_slow_sender", 1, slow_sender),
        class!("raw_length_lies", 3, length_lies),
        class!("raw_early_answer_reuse", 2, early_answer_reuse),
    ]
}

async fn bad_chunked(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let Some(location) = start(cx, &repo).await else {
        return;
    };
    let (body, incomplete): (&[u8], bool) = match cx.rng.u8(..7) {
        0 => (b"zz\r\nabc\r\n0\r\n\r\n", false),
        1 => (b"-1\r\nabc\r\n0\r\n\r\n", false),
        2 => (b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n", false),
        3 => (b"3\r\nabc\n0\r\n\r\n", false),
        4 => (b"3\r\nabcdef\r\n0\r\n\r\n", false),
        5 => (b"10\r\nabc", true),
        _ => (b"3\r\nabc\r\n", true),
    };
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nhost: {}\r\n{}transfer-encoding: chunked\r\n\r\n",
        cx.fx.settings.host,
        cx.fx
            .basic
            .as_ref()
            .map_or(String::new(), |b| format!("authorization: {b}\r\n")),
    );
    let request = [head.as_bytes(), body].concat();
    let raw = exchange(
        cx,
        &[request.as_slice()],
        Duration::ZERO,
        incomplete,
        1,
        false,
    )
    .await;
    let req = as_req(&request);
    tolerated(cx, &req, &raw);
    for resp in &raw.answers {
        cx.expect(
            &req,
            resp,
            !resp.is_success(),
            "not 2xx for a broken chunked body",
        );
    }
}

async fn slow_sender(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let data = [unique(cx).as_bytes(), &bytes(&mut cx.rng, 200..=200)].concat();
    let auth = cx
        .fx
        .basic
        .as_ref()
        .map_or(String::new(), |b| format!("authorization: {b}\r\n"));
    let mut request = format!(
        "POST /v2/{repo}/blobs/uploads/?digest={} HTTP/1.1\r\nhost: {}\r\n{auth}content-length: {}\r\n\r\n",
        sha256(&data),
        cx.fx.settings.host,
        data.len()
    )
    .into_bytes();
    request.extend_from_slice(&data);
    let pieces: Vec<&[u8]> = request.chunks(request.len().div_ceil(20)).collect();
    let pause = Duration::from_millis(cx.rng.u64(20..75));
    let raw = exchange(cx, &pieces, pause, false, 1, false).await;
    let req = as_req(&request);
    tolerated(cx, &req, &raw);
    match raw.answers.first() {
        Some(resp) => cx.expect(&req, resp, resp.status == 201, "201"),
        None if !raw.hung => cx.finding(
            &req,
            "no answer",
            "slow sender: closed unanswered",
            "closed without an answer",
        ),
        None => {}
    }
    if raw.answers.first().is_some_and(|r| r.status == 201) {
        read_back(cx, &repo, &data).await;
    }
}

async fn length_lies(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let data = [unique(cx).as_bytes(), &bytes(&mut cx.rng, 10..5000)].concat();
    let more = cx.rng.bool();
    let (declared, digest_of) = if more {
        (data.len() + cx.rng.usize(1..10_000), data.as_slice())
    } else {
        let declared = cx.rng.usize(1..data.len());
        let prefix_digest = cx.rng.bool();
        (
            declared,
            if prefix_digest {
                &data[..declared]
            } else {
                data.as_slice()
            },
        )
    };
    let digest = sha256(digest_of);
    let auth = cx
        .fx
        .basic
        .as_ref()
        .map_or(String::new(), |b| format!("authorization: {b}\r\n"));
    let head = format!(
        "POST /v2/{repo}/blobs/uploads/?digest={digest} HTTP/1.1\r\nhost: {}\r\n{auth}content-length: {declared}\r\n\r\n",
        cx.fx.settings.host
    );
    let request = [head.as_bytes(), &data].concat();
    // Declared more than sent: the client gives up on the rest by half-closing.
    let raw = exchange(cx, &[request.as_slice()], Duration::ZERO, more, 1, false).await;
    let req = as_req(&request);
    tolerated(cx, &req, &raw);
    let Some(resp) = raw.answers.first() else {
        return;
    };
    let honest = !more && digest_of.len() == declared;
    if honest {
        cx.expect(&req, resp, resp.status == 201, "201 for the declared bytes");
        if resp.status == 201 {
            read_back(cx, &repo, &data[..declared]).await;
        }
    } else {
        cx.expect(
            &req,
            resp,
            (400..500).contains(&resp.status),
            "4xx for a body that does not match",
        );
    }
}

/// A request refused before its (large) body is read: unless the answer says
/// `Connection: close`, the client may send its next request on the same connection, and
/// that request must be answered.
async fn early_answer_reuse(cx: &mut Case<'_>) {
    let repo = cx.fx.pool.scratch(&mut cx.rng);
    let body = bytes(&mut cx.rng, 256 * 1024..2 * 1024 * 1024);
    let first = Req::new(
        "POST",
        format!("/v2/{repo}/blobs/uploads/?digest=sha256:not-hex"),
    )
    .body(body);
    let host = cx.fx.settings.host.clone();
    let mut conn = cx.new_conn();
    let started = Instant::now();
    let bytes = first.to_bytes(&host, cx.fx.basic.as_deref());
    let answer = tokio::time::timeout(HANG, conn.exchange_once(&bytes, false)).await;
    let label = match &answer {
        Ok(Ok(resp)) => resp.status.to_string(),
        Ok(Err(_)) => "error".into(),
        Err(_) => "timeout".into(),
    };
    cx.fx.report.request(cx.class, &label, started.elapsed());
    let resp = match answer {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => {
            let problem = format!("the refusal itself was lost: {e}");
            return cx.finding(&first, "no answer", "early refusal lost", &problem);
        }
        Err(_) => return cx.finding(&first, "hang", "no answer in 5 s", "no answer within 5 s"),
    };
    cx.code(&first, &resp, 400, "DIGEST_INVALID");
    if resp
        .header("connection")
        .is_some_and(|c| c.eq_ignore_ascii_case("close"))
    {
        return;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = Req::new("GET", "/v2/");
    let bytes = second.to_bytes(&host, cx.fx.basic.as_deref());
    let started = Instant::now();
    let answer = tokio::time::timeout(HANG, conn.exchange_once(&bytes, false)).await;
    cx.fx.report.request(
        cx.class,
        if matches!(answer, Ok(Ok(_))) {
            "200"
        } else {
            "error"
        },
        started.elapsed(),
    );
    if let Ok(Err(e)) = answer {
        let problem = format!(
            "the server answered {} to this request without reading its {}-byte body and \
             without `Connection: close`, then dropped the connection: the next request on it \
             (GET /v2/) failed ({e})",
            resp.status,
            first.body.len()
        );
        cx.finding(
            &first,
            "no answer",
            "connection dropped after an early answer kept it open",
            &problem,
        );
    }
}
