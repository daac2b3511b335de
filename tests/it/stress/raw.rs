//! Fuzz classes below HTTP, on a bare TCP socket: invalid request lines, a 100 KB header,
//! 10,000 headers, pipelined requests, a request followed by a half-close (which must still be
//! answered), the HTTP/2 prior-knowledge preface (answered or closed quickly), and random
//! methods on random paths; `raw_bodies` has the ones about request bodies. The server may
//! refuse what is not HTTP, or close the connection, but not answer 5xx, hang, or leave a
//! valid request unanswered.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};

use super::HANG;
use super::classes::{Case, Class, bytes, class, one_of};
use super::http::{Req, Resp, connect, read_response};

pub fn classes() -> Vec<Class> {
    vec![
        class!("raw_invalid_request_line", 3, invalid_request_line),
        class!("raw_huge_header", 1, huge_header),
        class!("raw_many_headers", 1, many_headers),
        class!("raw_pipelined", 3, pipelined),
        class!("raw_half_close", 2, half_close),
        class!("raw_h2_preface", 1, h2_preface),
        class!("raw_random_method_path", 6, random_method_path),
    ]
}

/// What came back on a raw connection.
pub struct Raw {
    pub answers: Vec<Resp>,
    /// Closed (or reset) before all the answers wanted came.
    pub closed: bool,
    pub hung: bool,
}

/// Writes `pieces` (pausing `pause` between them), half-closes if asked, and reads up to
/// `wanted` answers. Records each answer (or the lack of one) in the report.
pub async fn exchange(
    cx: &Case<'_>,
    pieces: &[&[u8]],
    pause: Duration,
    half_close: bool,
    wanted: usize,
    head: bool,
) -> Raw {
    let started = Instant::now();
    let mut raw = Raw {
        answers: Vec::new(),
        closed: false,
        hung: false,
    };
    let Ok(mut stream) = connect(cx.fx.settings.addr, None).await else {
        raw.closed = true;
        return raw;
    };
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(pause).await;
        }
        if stream.write_all(piece).await.is_err() {
            break;
        }
    }
    if half_close {
        let _ = stream.shutdown().await;
    }
    let mut reader = BufReader::new(stream);
    let read = async {
        while raw.answers.len() < wanted {
            match read_response(&mut reader, head).await {
                Ok((resp, _)) => raw.answers.push(resp),
                Err(_) => {
                    raw.closed = true;
                    break;
                }
            }
        }
    };
    raw.hung = tokio::time::timeout(HANG, read).await.is_err();
    let elapsed = started.elapsed();
    let report = &cx.fx.report;
    for resp in &raw.answers {
        report.request(cx.class, &resp.status.to_string(), elapsed);
    }
    if raw.hung {
        report.request(cx.class, "timeout", elapsed);
    } else if raw.closed {
        report.request(cx.class, "closed", elapsed);
    }
    raw
}

/// No 5xx and no hang; a connection closed without an answer is acceptable.
pub fn tolerated(cx: &Case<'_>, req: &Req, raw: &Raw) {
    if raw.hung {
        cx.finding(
            req,
            "hang",
            "no answer or close in 5 s",
            "neither an answer nor a close within 5 s",
        );
    }
    for resp in &raw.answers {
        if resp.status >= 500 {
            cx.finding(
                req,
                "5xx",
                &format!("{}", resp.status),
                &super::fuzz::answer(resp),
            );
        }
    }
}

/// A request for reports, from raw bytes.
pub fn as_req(bytes: &[u8]) -> Req {
    let line_end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    Req::new("(raw)", bytes[..line_end.min(300)].to_vec()).body(bytes.to_vec())
}

fn get(cx: &Case<'_>, target: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nhost: {}\r\n\r\n",
        cx.fx.settings.host
    )
    .into_bytes()
}

async fn invalid_request_line(cx: &mut Case<'_>) {
    let host = cx.fx.settings.host.clone();
    let choice = cx.rng.u8(..12);
    let line: Vec<u8> = match choice {
        0 => b"GARBAGE\r\n\r\n".to_vec(),
        1 => b"GET\r\n\r\n".to_vec(),
        2 => b"GET /v2/ HTTP/9.9\r\n\r\n".to_vec(),
        3 => b"GET /v2/ HTTP/1.1 extra\r\n\r\n".to_vec(),
        4 => format!("\r\n\r\nGET /v2/ HTTP/1.1\r\nhost: {host}\r\n\r\n").into_bytes(),
        5 => b"GET  /v2/  HTTP/1.1\r\n\r\n".to_vec(),
        6 => bytes(&mut cx.rng, 1..500),
        7 => format!("GET http://{host}/v2/ HTTP/1.1\r\nhost: {host}\r\n\r\n").into_bytes(),
        8 => b"GET * HTTP/1.1\r\n\r\n".to_vec(),
        9 => b"GET /v2/ HTTP/1.1\n\n".to_vec(),
        10 => format!(
            "GET /{} HTTP/1.1\r\n\r\n",
            "a".repeat(cx.rng.usize(10_000..70_000))
        )
        .into_bytes(),
        _ => b"GET /v2/ HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(),
    };
    // Random bytes may be the start of a request that is still coming ("I", "GET /v"), which
    // a server rightly waits for (until its header timeout): the client ends its side, so that
    // the request is as complete as it will ever be.
    let half_close = choice == 6;
    let raw = exchange(cx, &[line.as_slice()], Duration::ZERO, half_close, 1, false).await;
    tolerated(cx, &as_req(&line), &raw);
}

async fn huge_header(cx: &mut Case<'_>) {
    let size = cx.rng.usize(100_000..120_000);
    let request = format!(
        "GET /v2/ HTTP/1.1\r\nhost: {}\r\nx-huge: {}\r\n\r\n",
        cx.fx.settings.host,
        "h".repeat(size)
    );
    let raw = exchange(cx, &[request.as_bytes()], Duration::ZERO, false, 1, false).await;
    tolerated(cx, &as_req(request.as_bytes()), &raw);
}

async fn many_headers(cx: &mut Case<'_>) {
    let mut request = format!("GET /v2/ HTTP/1.1\r\nhost: {}\r\n", cx.fx.settings.host);
    for i in 0..10_000 {
        request.push_str(&format!("x-h{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    let raw = exchange(cx, &[request.as_bytes()], Duration::ZERO, false, 1, false).await;
    tolerated(cx, &as_req(request.as_bytes()), &raw);
}

async fn pipelined(cx: &mut Case<'_>) {
    let pool = &cx.fx.pool;
    let repo = pool.repo(&mut cx.rng).to_string();
    let blob = pool.blob(&mut cx.rng).clone();
    let auth = cx
        .fx
        .basic
        .as_ref()
        .map_or(String::new(), |b| format!("authorization: {b}\r\n"));
    let host = cx.fx.settings.host.clone();
    let count = cx.rng.usize(2..6);
    let mut request = Vec::new();
    for _ in 0..count {
        request.extend_from_slice(
            format!(
                "GET /v2/{repo}/blobs/{} HTTP/1.1\r\nhost: {host}\r\n{auth}\r\n",
                blob.digest
            )
            .as_bytes(),
        );
    }
    let raw = exchange(
        cx,
        &[request.as_slice()],
        Duration::ZERO,
        false,
        count,
        false,
    )
    .await;
    let req = as_req(&request);
    tolerated(cx, &req, &raw);
    if raw.answers.len() < count && !raw.hung {
        let problem = format!(
            "{} answers to {count} pipelined requests",
            raw.answers.len()
        );
        cx.finding(&req, "no answer", "pipelined requests unanswered", &problem);
    }
    for resp in &raw.answers {
        if resp.status != 200 || resp.body != blob.data {
            cx.finding(
                &req,
                "corrupt read",
                "pipelined answer differs from the blob",
                &super::fuzz::answer(resp),
            );
        }
    }
}

async fn half_close(cx: &mut Case<'_>) {
    let request = match cx.fx.basic.clone() {
        Some(basic) => format!(
            "GET /v2/ HTTP/1.1\r\nhost: {}\r\nauthorization: {basic}\r\n\r\n",
            cx.fx.settings.host
        )
        .into_bytes(),
        None => get(cx, "/v2/"),
    };
    let raw = exchange(cx, &[request.as_slice()], Duration::ZERO, true, 1, false).await;
    let req = as_req(&request);
    tolerated(cx, &req, &raw);
    if raw.answers.is_empty() && !raw.hung {
        let problem = "the server closed the connection without answering a complete request \
                       sent before the client's half-close (shutdown(SHUT_WR))";
        cx.finding(
            &req,
            "no answer",
            "request then half-close: no answer",
            problem,
        );
    }
}

async fn h2_preface(cx: &mut Case<'_>) {
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    if cx.rng.bool() {
        preface.extend_from_slice(&bytes(&mut cx.rng, 40..=40));
    }
    let req = as_req(&preface);
    let started = Instant::now();
    let Ok(mut stream) = connect(cx.fx.settings.addr, None).await else {
        return;
    };
    let _ = stream.write_all(&preface).await;
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(HANG, stream.read(&mut buffer)).await;
    let label = match read {
        Err(_) => "timeout",
        Ok(Ok(0)) | Ok(Err(_)) => "closed",
        Ok(Ok(_)) => "answered",
    };
    cx.fx.report.request(cx.class, label, started.elapsed());
    if read.is_err() {
        cx.finding(
            &req,
            "hang",
            "HTTP/2 preface: nothing in 5 s",
            "neither an answer nor a close within 5 s",
        );
    }
}

async fn random_method_path(cx: &mut Case<'_>) {
    let method = one_of(
        &mut cx.rng,
        &[
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "FOO",
            "get", "M-SEARCH",
        ],
    );
    let mutating = !["GET", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "get"].contains(&method);
    let repo = if mutating {
        cx.fx.pool.scratch(&mut cx.rng)
    } else {
        cx.fx.pool.repo(&mut cx.rng).to_string()
    };
    // Mutating methods never name pool content.
    let digest = if mutating {
        super::classes::unknown_digest(&mut cx.rng)
    } else {
        cx.fx.pool.blob(&mut cx.rng).digest.clone()
    };
    let segments = [
        "v2",
        "",
        "_catalog",
        repo.as_str(),
        repo.as_str(),
        "blobs",
        "uploads",
        "manifests",
        "tags",
        "list",
        "referrers",
        digest.as_str(),
        "v1",
        "..",
        ".",
        "%2F",
        "token",
        "layers",
        "?n=1",
        "x?last=a&n=-2",
    ];
    let mut target = String::new();
    if cx.rng.bool() {
        // A real endpoint, for a method it may not take.
        let suffix = ["tags/list", "manifests/v1", "blobs/uploads/", "referrers/"];
        let suffix = suffix[cx.rng.usize(..suffix.len())];
        target = format!("/v2/{repo}/{suffix}");
        if suffix.starts_with("referrers") || cx.rng.bool() {
            target = format!("/v2/{repo}/blobs/{digest}");
        }
    } else {
        for _ in 0..cx.rng.usize(1..7) {
            target.push('/');
            target.push_str(segments[cx.rng.usize(..segments.len())]);
        }
    }
    let mut req = Req::new(method, target);
    if cx.rng.bool() {
        req = req.body(bytes(&mut cx.rng, 0..100));
    }
    cx.send(&req).await;
}
