//! The black-box fuzzer: 16 workers, each drawing cases from its own seeded generator until
//! the time is up. A case is one input class (`classes`) run once with a generator seeded from
//! the run's seed, the worker and the case's number, so the same seed replays the same
//! requests per worker, and `WHARF_STRESS_CASE` replays one case alone. Every answer passes
//! the oracles here (no 5xx, no hang, no dropped request, error bodies in their API's shape);
//! classes add what they know about their own inputs.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::classes::{self, Class};
use super::http::{Conn, Req, Resp};
use super::monitor::Monitor;
use super::pool::Pool;
use super::report::{Finding, Report};
use super::{HANG, Settings, mix, preview};

const WORKERS: u64 = 16;
/// A case (several requests, a race) that takes longer than this is a hang of its own.
const CASE_LIMIT: Duration = Duration::from_secs(60);

/// OCI error codes a `/v2` error body may carry.
const OCI_CODES: &[&str] = &[
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "TAG_INVALID",
    "PAGINATION_NUMBER_INVALID",
    "NOT_FOUND",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
    "UNAVAILABLE",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a running server: scripts/stress.sh"]
async fn fuzz() {
    let Some(settings) = Settings::from_env("fuzz") else {
        return;
    };
    settings.announce();
    let report = Arc::new(Report::default());
    let monitor = Monitor::start(&settings, report.clone());
    let basic = settings.basic();
    let pool = Pool::push(&settings, basic.as_deref()).await;
    let fx = Arc::new(Fuzzer {
        classes: classes::all(),
        settings,
        report,
        monitor,
        pool,
        basic,
    });
    println!("{} input classes", fx.classes.len());
    if let Some((class, seed)) = fx.settings.case.clone() {
        let conn = Conn::new(fx.settings.addr, None);
        run_case(&fx, seed, Some(&class), conn).await;
    } else {
        let deadline = Instant::now() + fx.settings.duration;
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| tokio::spawn(worker(fx.clone(), w, deadline)))
            .collect();
        let progress = tokio::spawn(progress(fx.clone(), deadline));
        for worker in workers {
            worker.await.expect("fuzz worker");
        }
        progress.abort();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    fx.monitor.stop();
    fx.report.print("fuzz", "class", &fx.monitor);
    let findings = fx.report.finding_count();
    assert_eq!(
        findings, 0,
        "the fuzzer found {findings} problems (see above)"
    );
}

async fn progress(fx: Arc<Fuzzer>, deadline: Instant) {
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(10)).await;
        fx.report.progress("fuzz", &fx.monitor);
    }
}

async fn worker(fx: Arc<Fuzzer>, w: u64, deadline: Instant) {
    let mut conn = Conn::new(fx.settings.addr, None);
    let mut i = 0u64;
    while Instant::now() < deadline && fx.monitor.alive() {
        let seed = mix(fx.settings.seed ^ mix((w << 40) | i));
        conn = run_case(&fx, seed, None, conn).await;
        i += 1;
    }
}

/// Runs the case `seed` picks (of class `forced` when replaying one), on `conn`, and hands the
/// connection back.
async fn run_case(fx: &Fuzzer, seed: u64, forced: Option<&str>, conn: Conn) -> Conn {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut class = classes::pick(&fx.classes, &mut rng);
    if let Some(name) = forced {
        class = fx
            .classes
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("WHARF_STRESS_CASE names no class {name:?}"));
    }
    let mut cx = Case {
        fx,
        rng,
        class: class.name,
        seed,
        conn,
    };
    if tokio::time::timeout(CASE_LIMIT, (class.run)(&mut cx))
        .await
        .is_err()
    {
        let req = Req::new("-", "(the whole case)");
        cx.finding(
            &req,
            "hang",
            "case over 60 s",
            "the case did not finish in 60 s",
        );
        cx.conn.reset();
    }
    fx.report.case(class.name);
    cx.conn
}

pub struct Fuzzer {
    pub settings: Settings,
    pub report: Arc<Report>,
    pub monitor: Arc<Monitor>,
    pub pool: Pool,
    classes: Vec<Class>,
    /// Valid credentials, when auth is on.
    pub basic: Option<String>,
}

/// One case in progress: its class, its generator, the worker's connection.
pub struct Case<'a> {
    pub fx: &'a Fuzzer,
    pub rng: fastrand::Rng,
    pub class: &'static str,
    pub seed: u64,
    pub conn: Conn,
}

/// A request for a report: method, target, headers, a prefix of the body.
pub fn describe(req: &Req) -> String {
    let mut out = format!("{} {}", req.method, preview(&req.target, 200));
    for (name, value) in req.headers.iter().take(8) {
        out.push_str(&format!(" | {name}: {}", preview(value, 80)));
    }
    if req.headers.len() > 8 {
        out.push_str(&format!(" | (+{} headers)", req.headers.len() - 8));
    }
    if !req.auth {
        out.push_str(" | (no credentials)");
    }
    if !req.body.is_empty() {
        out.push_str(&format!(" | body {}", preview(&req.body, 120)));
    }
    out
}

/// An answer for a report: status, error code or body prefix.
pub fn answer(resp: &Resp) -> String {
    format!("{} {}", resp.status, preview(&resp.body, 200))
}

impl Case<'_> {
    pub fn auth_on(&self) -> bool {
        self.fx.settings.auth_on()
    }

    /// A new connection from the usual address.
    pub fn new_conn(&self) -> Conn {
        Conn::new(self.fx.settings.addr, None)
    }

    /// A new connection from another loopback address when the server is on 127.0.0.1, so
    /// that floods of bad credentials spend the login limiter's budget of other addresses,
    /// not the one the soak and the fuzzer's own valid requests come from.
    pub fn spoofed_conn(&mut self) -> Conn {
        let addr = self.fx.settings.addr;
        let local = match addr.ip() {
            IpAddr::V4(v4) if v4.is_loopback() => Some(IpAddr::from([
                127,
                self.rng.u8(1..=250),
                self.rng.u8(..),
                self.rng.u8(2..=250),
            ])),
            _ => None,
        };
        Conn::new(addr, local)
    }

    /// Sends on the worker's connection.
    pub async fn send(&mut self, req: &Req) -> Option<Resp> {
        let mut conn = std::mem::replace(&mut self.conn, Conn::new(self.fx.settings.addr, None));
        let resp = self.send_on(&mut conn, req).await;
        self.conn = conn;
        resp
    }

    /// Sends on `conn` and checks the answer against the oracles every request has.
    pub async fn send_on(&self, conn: &mut Conn, req: &Req) -> Option<Resp> {
        let bytes = req.to_bytes(&self.fx.settings.host, self.fx.basic.as_deref());
        let started = Instant::now();
        let result = tokio::time::timeout(HANG, conn.exchange(&bytes, req.method == "HEAD")).await;
        let elapsed = started.elapsed();
        match result {
            Err(_) => {
                conn.reset();
                self.fx.report.request(self.class, "timeout", elapsed);
                self.finding(req, "hang", "no answer in 5 s", "no answer within 5 s");
                None
            }
            Ok(Err(e)) => {
                self.fx.report.request(self.class, "error", elapsed);
                let problem = format!("the connection ended without an answer: {e}");
                self.finding(req, "no answer", &format!("{:?}", e.kind()), &problem);
                None
            }
            Ok(Ok(resp)) => {
                self.fx
                    .report
                    .request(self.class, &resp.status.to_string(), elapsed);
                self.check_shape(req, &resp);
                Some(resp)
            }
        }
    }

    /// No 5xx; `/v2` errors in OCI's shape, token errors in OAuth2's, ECR errors with `__type`;
    /// a 401 says how to authenticate.
    fn check_shape(&self, req: &Req, resp: &Resp) {
        let status = resp.status;
        if status >= 500 {
            let code = resp
                .oci_code()
                .or_else(|| Some(resp.json()?["__type"].as_str()?.to_string()))
                .unwrap_or_default();
            self.finding(req, "5xx", &format!("{status} {code}"), &answer(resp));
            return;
        }
        // Refusals by the HTTP layer (malformed requests) carry no body and no request id.
        let http_layer =
            resp.header("x-request-id").is_none() && [400, 413, 414, 431].contains(&status);
        if status < 400 || req.method == "HEAD" || http_layer {
            return;
        }
        let path = req.path();
        let body = resp.json();
        let problem = if path == "/v2" || path.starts_with("/v2/") {
            let code = resp.oci_code();
            let message = body
                .as_ref()
                .and_then(|b| b["errors"][0]["message"].as_str());
            match code {
                Some(code) if OCI_CODES.contains(&code.as_str()) && message.is_some() => None,
                Some(code) => Some(format!("unknown OCI error code {code} or no message")),
                None => Some("the error body is not OCI error JSON".into()),
            }
        } else if path == "/token" {
            let error = body.as_ref().and_then(|b| b["error"].as_str());
            error
                .is_none()
                .then(|| "the token error is not OAuth2 JSON".to_string())
        } else if path == "/" && req.method == "POST" {
            let kind = body.as_ref().and_then(|b| b["__type"].as_str());
            kind.is_none()
                .then(|| "the ECR error has no __type".to_string())
        } else {
            None
        };
        if let Some(problem) = problem {
            let signature = format!("{status}: {problem}");
            self.finding(req, "error shape", &signature, &answer(resp));
        }
        if status == 401 && resp.header("www-authenticate").is_none() && path.starts_with("/v2") {
            self.finding(
                req,
                "error shape",
                "401 without WWW-Authenticate",
                &answer(resp),
            );
        }
    }

    /// Records a finding unless `ok`: the answer was not what `wanted` says.
    pub fn expect(&self, req: &Req, resp: &Resp, ok: bool, wanted: &str) {
        // A 5xx is a finding of its own already.
        if !ok && resp.status < 500 {
            let code = resp.oci_code().unwrap_or_default();
            let signature = format!("{} {code}, wanted {wanted}", resp.status);
            self.finding(req, "unexpected answer", &signature, &answer(resp));
        }
    }

    /// The request must be refused with a 4xx.
    pub fn refused(&self, req: &Req, resp: &Resp) {
        self.expect(req, resp, (400..500).contains(&resp.status), "4xx");
    }

    /// The answer must be `status` with OCI error `code`.
    pub fn code(&self, req: &Req, resp: &Resp, status: u16, code: &str) {
        let ok = resp.status == status && resp.oci_code().as_deref() == Some(code);
        self.expect(req, resp, ok, &format!("{status} {code}"));
    }

    pub fn finding(&self, req: &Req, kind: &str, signature: &str, problem: &str) {
        self.fx.report.finding(Finding {
            class: self.class.to_string(),
            kind: kind.to_string(),
            signature: signature.to_string(),
            request: describe(req),
            problem: problem.to_string(),
            replay: self.fx.settings.replay(Some((self.class, self.seed))),
        });
    }
}
