//! Postgres stopped and started again while clients push and pull: during the outage every
//! request answers 503 `UNAVAILABLE` with `Retry-After` within seconds (never a 500, never a
//! hang) and `/readyz` answers 503 naming the database, nothing half-written shows afterwards,
//! and the node serves (and is ready) again by itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::common::{LAYER, OCI_MANIFEST, TestApp, sha256};

/// A Postgres server of the test's own, in a temporary directory, that the test may stop and
/// start. Its binaries come from `WHARF_TEST_PG_BIN` (scripts/services.sh sets it).
struct OwnPostgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
}

impl OwnPostgres {
    /// A running server, or `None` (with a message) where Postgres is not installed and this
    /// is not CI.
    fn start() -> Option<OwnPostgres> {
        let bin = PathBuf::from(
            std::env::var("WHARF_TEST_PG_BIN")
                .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
        );
        if !bin.join("initdb").exists() {
            assert!(
                std::env::var("CI").is_err(),
                "CI=true but there is no initdb in {}",
                bin.display()
            );
            eprintln!("skipped: no Postgres binaries in {}", bin.display());
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let server = OwnPostgres { dir, bin, port };
        let data = server.data();
        std::fs::create_dir(&data).expect("data dir");
        if is_root() {
            // initdb refuses to run as root; the server runs as `postgres`, which must reach
            // the directory.
            use std::os::unix::fs::PermissionsExt as _;
            let open = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(server.dir.path(), open).expect("chmod");
            run(Command::new("chown").arg("postgres").arg(&data));
        }
        server.run_as_owner(
            "initdb",
            &["-D", path(&data), "-U", "wharf", "--auth=trust", "-N"],
        );
        server.start_again();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://wharf@127.0.0.1:{}/postgres", self.port)
    }

    fn start_again(&self) {
        let data = self.data();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            path(&data)
        );
        let log = data.join("server.log");
        self.run_as_owner(
            "pg_ctl",
            &[
                "-D",
                path(&data),
                "-l",
                path(&log),
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
    }

    /// Stops the server at once, as a crash would: no client is told.
    fn kill(&self) {
        let data = self.data();
        self.run_as_owner("pg_ctl", &["-D", path(&data), "-m", "immediate", "stop"]);
    }

    fn run_as_owner(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        run(command.args(args));
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            self.kill();
        }
    }
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|process| process.uid() == 0)
}

fn path(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

fn run(command: &mut Command) {
    let output = command.output().expect("run command");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    /// Images whose manifest was accepted: tag, digest, layer bytes.
    accepted: Vec<(String, String, Vec<u8>)>,
    /// Tags whose manifest push answered 503: the outcome is unknown to the client.
    uncertain: Vec<(String, String)>,
    unavailable: usize,
    /// Whether this client's last full push-and-pull went through.
    last_round_ok: bool,
    /// Anything a client must never see.
    wrong: Vec<String>,
}

/// Checks one response: a success, or a 503 that says when to retry. Returns whether it was
/// a success.
async fn judge(seen: &mut Seen, what: &str, response: reqwest::Response, took: Duration) -> bool {
    if took > Duration::from_secs(6) {
        seen.wrong.push(format!("{what} took {took:?}"));
    }
    let status = response.status();
    if status.is_success() {
        return true;
    }
    let retry_after = response.headers().contains_key("retry-after");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status == StatusCode::SERVICE_UNAVAILABLE
        && retry_after
        && body["errors"][0]["code"] == "UNAVAILABLE"
    {
        seen.unavailable += 1;
    } else {
        seen.wrong.push(format!(
            "{what}: {status} (retry-after: {retry_after}) {body}"
        ));
    }
    false
}

/// Pushes and pulls images until `stop`, judging every answer.
async fn client(app: Arc<TestApp>, number: usize, stop: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let repo = format!("restart/client{number}");
    let mut round = 0;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        seen.last_round_ok = false;
        let tag = format!("r{round}");
        let layer = format!("layer {number} {round} {}", uuid::Uuid::new_v4()).into_bytes();
        let digest = sha256(&layer);
        let started = Instant::now();
        let upload = format!("{}/v2/{repo}/blobs/uploads/?digest={digest}", app.base);
        let Ok(response) = client.post(upload).body(layer.clone()).send().await else {
            seen.wrong.push("blob push got no answer".into());
            continue;
        };
        if !judge(&mut seen, "blob push", response, started.elapsed()).await {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let manifest = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": LAYER, "digest": digest, "size": layer.len()},
            "layers": [{"mediaType": LAYER, "digest": digest, "size": layer.len()}],
        });
        let body = serde_json::to_vec(&manifest).unwrap();
        let manifest_digest = sha256(&body);
        let started = Instant::now();
        let response = client
            .put(format!("{}/v2/{repo}/manifests/{tag}", app.base))
            .header("content-type", OCI_MANIFEST)
            .body(body)
            .send()
            .await;
        let Ok(response) = response else {
            seen.wrong.push("manifest push got no answer".into());
            continue;
        };
        if !judge(&mut seen, "manifest push", response, started.elapsed()).await {
            seen.uncertain.push((tag, manifest_digest));
            continue;
        }
        seen.accepted.push((tag.clone(), manifest_digest, layer));
        let started = Instant::now();
        let pulled = client
            .get(format!("{}/v2/{repo}/manifests/{tag}", app.base))
            .header("accept", OCI_MANIFEST)
            .send()
            .await;
        let Ok(pulled) = pulled else {
            seen.wrong.push("manifest pull got no answer".into());
            continue;
        };
        seen.last_round_ok = judge(&mut seen, "manifest pull", pulled, started.elapsed()).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_under_load_answers_503_then_recovers_with_nothing_half_written() {
    let Some(postgres) = OwnPostgres::start() else {
        return;
    };
    let url = postgres.url();
    let app = Arc::new(TestApp::spawn_with(|config| config.database_url = url).await);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|number| tokio::spawn(client(app.clone(), number, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let postgres = tokio::task::spawn_blocking(move || {
        postgres.kill();
        postgres
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    // A load balancer drains the node: it is alive, but not ready, and says why.
    let probe = async |path: &str| {
        let answer = app.get(path).send().await.unwrap();
        (answer.status(), answer.text().await.unwrap())
    };
    assert_eq!(probe("/healthz").await.0, StatusCode::OK);
    let (status, why) = probe("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{why}");
    assert!(
        why.contains("database") && !why.contains("storage"),
        "{why}"
    );
    let postgres = tokio::task::spawn_blocking(move || {
        postgres.start_again();
        postgres
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    // ...and adds it back once the database answers, with no restart of Wharf.
    assert_eq!(
        probe("/readyz").await,
        (StatusCode::OK, "ready\n".to_string())
    );
    stop.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    for client in clients {
        all.push(client.await.unwrap());
    }

    let accepted: usize = all.iter().map(|seen| seen.accepted.len()).sum();
    let unavailable: usize = all.iter().map(|seen| seen.unavailable).sum();
    eprintln!("{accepted} images accepted, {unavailable} answers 503 during the outage");
    let wrong: Vec<_> = all.iter().flat_map(|seen| &seen.wrong).collect();
    assert!(wrong.is_empty(), "clients saw {wrong:#?}");
    assert!(unavailable > 0, "the outage was seen as 503s");
    assert!(
        all.iter().all(|seen| seen.last_round_ok),
        "every client pushes and pulls again after the restart"
    );
    // Every accepted image is whole; a push that met the outage landed whole or not at all.
    for (number, seen) in all.iter().enumerate() {
        let repo = format!("restart/client{number}");
        for (tag, digest, layer) in &seen.accepted {
            let manifest = app
                .get(&format!("/v2/{repo}/manifests/{tag}"))
                .header("accept", OCI_MANIFEST)
                .send()
                .await
                .unwrap();
            assert_eq!(manifest.status(), StatusCode::OK, "{repo}:{tag}");
            assert_eq!(
                crate::common::header(&manifest, "docker-content-digest"),
                *digest
            );
            let blob = app
                .get(&format!("/v2/{repo}/blobs/{}", sha256(layer)))
                .send()
                .await
                .unwrap();
            assert_eq!(blob.bytes().await.unwrap(), *layer, "{repo}:{tag} layer");
        }
        for (tag, digest) in &seen.uncertain {
            let manifest = app
                .request(Method::HEAD, &format!("/v2/{repo}/manifests/{tag}"))
                .header("accept", OCI_MANIFEST)
                .send()
                .await
                .unwrap();
            match manifest.status() {
                StatusCode::NOT_FOUND => {}
                StatusCode::OK => assert_eq!(
                    crate::common::header(&manifest, "docker-content-digest"),
                    *digest
                ),
                other => panic!("{repo}:{tag} answered {other}"),
            }
        }
    }
    drop(postgres);
}
