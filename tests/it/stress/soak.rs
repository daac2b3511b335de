//! The soak: 32 clients, each looping over a weighted mix of registry operations
//! (`soak_ops`) for the run's duration, checking every byte they read back. This file runs
//! the workers and gives them a client that authenticates as Docker does: nothing when auth
//! is off, Basic on every request with `WHARF_STRESS_BASIC_EVERY_REQUEST=1`, else the token
//! flow (401 challenge, `GET` the realm with Basic, Bearer) with tokens cached per scope.
//! Any 5xx, hang, unexpected status or corrupt read is a finding.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use super::monitor::Monitor;
use super::report::{Finding, Report};
use super::soak_ops::Worker;
use super::{HANG, Settings, mix};

const WORKERS: u64 = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a running server: scripts/stress.sh"]
async fn soak() {
    let Some(settings) = Settings::from_env("soak") else {
        return;
    };
    settings.announce();
    let settings = Arc::new(settings);
    let report = Arc::new(Report::default());
    let monitor = Monitor::start(&settings, report.clone());
    // Base layers every client pushes now and then, into shared repositories at once.
    let mut rng = fastrand::Rng::with_seed(settings.seed);
    let bases: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..4)
            .map(|_| {
                let mut layer = vec![0; rng.usize(1..300_000)];
                rng.fill(&mut layer);
                layer
            })
            .collect(),
    );
    let deadline = Instant::now() + settings.duration;
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let client = Client::new(settings.clone(), report.clone(), w);
            let (monitor, bases) = (monitor.clone(), bases.clone());
            tokio::spawn(async move { Worker::new(client, w, bases).run(deadline, &monitor).await })
        })
        .collect();
    let progress = {
        let (report, monitor) = (report.clone(), monitor.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                report.progress("soak", &monitor);
            }
        })
    };
    for worker in workers {
        worker.await.expect("soak worker");
    }
    progress.abort();
    tokio::time::sleep(Duration::from_millis(200)).await;
    monitor.stop();
    report.print("soak", "operation", &monitor);
    let findings = report.finding_count();
    assert_eq!(
        findings, 0,
        "the soak found {findings} problems (see above)"
    );
}

/// An answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn code(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|b| b["errors"][0]["code"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// A request body: bytes (which can be sent again after a challenge) or a stream of chunks.
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    Stream(Vec<Vec<u8>>),
}

/// One soak client: its HTTP client, its cached tokens, the report.
pub struct Client {
    http: reqwest::Client,
    pub settings: Arc<Settings>,
    pub report: Arc<Report>,
    pub seed: u64,
    /// Bearer tokens by the scope they were fetched for.
    tokens: HashMap<String, (String, Instant)>,
    /// The realm and service of the last challenge.
    realm: Option<(String, String)>,
    /// The operation under way, for the report.
    pub op: &'static str,
}

/// The Docker scope a request needs, as the registry's challenges name it.
fn scope_of(method: &Method, path: &str) -> String {
    if path.starts_with("/v2/_catalog") {
        return "registry:catalog:*".into();
    }
    let rest = path.strip_prefix("/v2/").unwrap_or(path);
    let repo = ["/blobs/", "/manifests/", "/tags/"]
        .iter()
        .find_map(|marker| rest.split_once(marker).map(|(repo, _)| repo))
        .unwrap_or(rest);
    let actions = match *method {
        Method::GET | Method::HEAD => "pull",
        Method::DELETE => "delete",
        _ => "pull,push",
    };
    format!("repository:{repo}:{actions}")
}

/// `key="value"` pairs of a `WWW-Authenticate: Bearer …` challenge.
fn challenge_param(challenge: &str, key: &str) -> Option<String> {
    let start = challenge.find(&format!("{key}=\""))? + key.len() + 2;
    let end = challenge[start..].find('"')? + start;
    Some(challenge[start..end].to_string())
}

impl Client {
    fn new(settings: Arc<Settings>, report: Arc<Report>, worker: u64) -> Client {
        Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("HTTP client"),
            seed: mix(settings.seed ^ mix(worker)),
            settings,
            report,
            tokens: HashMap::new(),
            realm: None,
            op: "setup",
        }
    }

    /// Sends a request, authenticating as configured; `None` when there was no answer (a
    /// finding already).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Body,
    ) -> Option<Answer> {
        let tokens_on = self.settings.auth_on() && !self.settings.basic_every_request;
        let scope = scope_of(&method, path);
        if tokens_on && !matches!(body, Body::Empty) && !self.tokens.contains_key(&scope) {
            // As Docker does, a request with a body goes with a token for the scope it needs:
            // challenges come to requests without one.
            self.fetch_token(&scope, &scope).await;
        }
        let answer = self
            .send_once(&method, path, headers, &body, &scope)
            .await?;
        if !(tokens_on && answer.status == StatusCode::UNAUTHORIZED)
            || matches!(body, Body::Stream(_))
        {
            return Some(answer);
        }
        let challenge = answer.header("www-authenticate").to_string();
        let wanted = challenge_param(&challenge, "scope").unwrap_or_else(|| scope.clone());
        if let (Some(realm), Some(service)) = (
            challenge_param(&challenge, "realm"),
            challenge_param(&challenge, "service"),
        ) {
            self.realm = Some((realm, service));
        }
        self.fetch_token(&scope, &wanted).await?;
        self.send_once(&method, path, headers, &body, &scope).await
    }

    async fn send_once(
        &mut self,
        method: &Method,
        path: &str,
        headers: &[(&str, String)],
        body: &Body,
        scope: &str,
    ) -> Option<Answer> {
        let url = format!("{}{path}", self.settings.url);
        let mut request = self.http.request(method.clone(), &url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if self.settings.auth_on() {
            if self.settings.basic_every_request {
                request = request.header("authorization", self.settings.basic().unwrap());
            } else if let Some((token, fetched)) = self.tokens.get(scope)
                && fetched.elapsed() < Duration::from_secs(240)
            {
                request = request.header("authorization", format!("Bearer {token}"));
            }
        }
        request = match body {
            Body::Empty => request,
            Body::Bytes(bytes) => request.body(bytes.clone()),
            Body::Stream(chunks) => {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    chunks.iter().cloned().map(Ok).collect();
                request.body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            }
        };
        let described = format!(
            "{method} {path}{}",
            match body {
                Body::Empty => String::new(),
                Body::Bytes(b) => format!(" | body {} bytes", b.len()),
                Body::Stream(c) => format!(
                    " | streamed body {} bytes",
                    c.iter().map(Vec::len).sum::<usize>()
                ),
            }
        );
        let started = Instant::now();
        let result = tokio::time::timeout(HANG, async {
            let response = request.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>(Answer {
                status,
                headers,
                body,
            })
        })
        .await;
        let elapsed = started.elapsed();
        match result {
            Err(_) => {
                self.report.request(self.op, "timeout", elapsed);
                self.finding::<()>("hang", "no answer in 5 s", &described, "no complete answer");
                None
            }
            Ok(Err(e)) => {
                self.report.request(self.op, "error", elapsed);
                self.finding::<()>("no answer", "request failed", &described, &format!("{e:?}"));
                None
            }
            Ok(Ok(answer)) => {
                self.report
                    .request(self.op, answer.status.as_str(), elapsed);
                if answer.status.is_server_error() {
                    let signature = format!("{} {}", answer.status.as_u16(), answer.code());
                    let problem = super::preview(&answer.body, 300);
                    self.finding::<()>("5xx", &signature, &described, &problem);
                }
                Some(answer)
            }
        }
    }

    /// `GET /v2/` as Docker starts: with the token flow, it must be challenged, and the
    /// challenge says where tokens come from.
    pub async fn ping(&mut self) {
        if !self.settings.auth_on() || self.settings.basic_every_request {
            return;
        }
        let Some(answer) = self
            .send_once(&Method::GET, "/v2/", &[], &Body::Empty, "")
            .await
        else {
            return;
        };
        let challenge = answer.header("www-authenticate").to_string();
        match (
            challenge_param(&challenge, "realm"),
            challenge_param(&challenge, "service"),
        ) {
            (Some(realm), Some(service)) if answer.status == StatusCode::UNAUTHORIZED => {
                self.realm = Some((realm, service));
            }
            _ => {
                let signature = format!("{} without a Bearer challenge", answer.status.as_u16());
                self.finding::<()>("unexpected status", &signature, "GET /v2/", &challenge);
            }
        }
    }

    /// Fetches a token for `wanted` from the realm with Basic credentials, cached as `scope`.
    async fn fetch_token(&mut self, scope: &str, wanted: &str) -> Option<()> {
        let (realm, service) = self
            .realm
            .clone()
            .unwrap_or_else(|| (format!("{}/token", self.settings.url), "wharf".into()));
        let url = format!("{realm}?service={service}&scope={wanted}");
        let started = Instant::now();
        let request = self
            .http
            .get(&url)
            .header("authorization", self.settings.basic().unwrap());
        let result = tokio::time::timeout(HANG, async {
            let response = request.send().await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.bytes().await?))
        })
        .await;
        self.report.request(
            self.op,
            match &result {
                Ok(Ok((status, _))) => status.as_str(),
                Ok(Err(_)) => "error",
                Err(_) => "timeout",
            },
            started.elapsed(),
        );
        let described = format!("GET {url} (token)");
        let (status, body) = match result {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                return self.finding(
                    "no answer",
                    "token request failed",
                    &described,
                    &format!("{e:?}"),
                );
            }
            Err(_) => {
                return self.finding("hang", "token: no answer in 5 s", &described, "no answer");
            }
        };
        let token = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|b| b["token"].as_str().map(str::to_string));
        match token {
            Some(token) if status == StatusCode::OK => {
                self.tokens
                    .insert(scope.to_string(), (token, Instant::now()));
                Some(())
            }
            _ => {
                let signature = format!("token endpoint answered {}", status.as_u16());
                self.finding(
                    "unexpected status",
                    &signature,
                    &described,
                    &super::preview(&body, 300),
                )
            }
        }
    }

    pub fn finding<T>(
        &self,
        kind: &str,
        signature: &str,
        request: &str,
        problem: &str,
    ) -> Option<T> {
        self.report.finding(Finding {
            class: self.op.to_string(),
            kind: kind.to_string(),
            signature: signature.to_string(),
            request: request.to_string(),
            problem: problem.to_string(),
            replay: self.settings.replay(None),
        });
        None
    }
}
