//! Password logins under attack: the per-user and per-address budgets, shared by every node,
//! remembered successes, and the admin user's bootstrap.

use std::io::{BufRead as _, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use wharf::admin;
use wharf::config::Config;
use wharf::metadata::IdentityStore;

use super::{JsonBody, secured, secured_with, send, token, user_with_policy};
use crate::common::{
    ADMIN_PASSWORD, ProductionBackends, TestApp, assert_error, assert_oauth_error, basic, header,
};

/// Asserts a `Retry-After` within the limiter's one-minute window (whole seconds, rounded
/// up).
fn assert_retry_after(response: &reqwest::Response) {
    let seconds: u64 = header(response, "retry-after").parse().unwrap();
    assert!((1..=61).contains(&seconds), "Retry-After: {seconds}");
}

/// `GET /v2/` with Basic credentials, sent as from `address` (through a trusted proxy).
async fn base_from(app: &TestApp, authorization: &str, address: &str) -> reqwest::Response {
    app.get("/v2/")
        .header("authorization", authorization)
        .header("x-forwarded-for", address)
        .send()
        .await
        .unwrap()
}

/// `GET /token` with Basic credentials, sent as from `address` (through a trusted proxy).
async fn token_from(app: &TestApp, authorization: &str, address: &str) -> reqwest::Response {
    app.get("/token?service=wharf")
        .header("authorization", authorization)
        .header("x-forwarded-for", address)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn forty_concurrent_guesses_get_at_most_five_password_checks() {
    let app = secured().await;
    let password = user_with_policy(&app, "target", None).await;
    let guesses = (0..40).map(|i| {
        let guess = basic("target", &format!("guess-{i}"));
        let app = &app;
        async move {
            let response = if i % 2 == 0 {
                token(app, Some(&guess), &[]).await
            } else {
                send(app, Method::GET, "/v2/", Some(&guess)).await
            };
            (i % 2 == 0, response)
        }
    });
    let (mut checked, mut throttled) = (0, 0);
    for (at_token_endpoint, response) in futures::future::join_all(guesses).await {
        match (response.status().as_u16(), at_token_endpoint) {
            (401, true) => {
                assert_oauth_error(response, 401, "invalid_client").await;
                checked += 1;
            }
            (401, false) => {
                assert_error(response, 401, "UNAUTHORIZED").await;
                checked += 1;
            }
            // Over the budget, or (only on an overloaded machine) waited too long for a core
            // and turned away unchecked, its charge taken back.
            (429, true) => {
                assert_retry_after(&response);
                assert_oauth_error(response, 429, "slow_down").await;
                throttled += 1;
            }
            (429, false) => {
                assert_retry_after(&response);
                assert_error(response, 429, "TOOMANYREQUESTS").await;
                throttled += 1;
            }
            (status, _) => panic!("unexpected status {status}"),
        }
    }
    assert!(checked <= 5, "{checked} guesses were checked");
    assert_eq!(checked + throttled, 40);
    // The right password is throttled too until the window ends, by every way in.
    let locked = token(&app, Some(&basic("target", &password)), &[]).await;
    assert_oauth_error(locked, 429, "slow_down").await;
    let locked = app
        .request(Method::POST, "/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&username=target&password={password}"
        ))
        .send()
        .await
        .unwrap();
    assert_retry_after(&locked);
    assert_oauth_error(locked, 429, "slow_down").await;
}

#[tokio::test]
async fn spraying_many_user_names_from_one_address_spends_its_budget() {
    let (app, _) = secured_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let sprayer = "198.51.100.1";
    for i in 0..30 {
        let guess = basic(&format!("user{i}"), "Summer2026!");
        let response = token_from(&app, &guess, sprayer).await;
        assert_oauth_error(response, 401, "invalid_client").await;
    }
    let response = token_from(&app, &basic("user30", "Summer2026!"), sprayer).await;
    assert_retry_after(&response);
    assert_oauth_error(response, 429, "slow_down").await;
    // Every name is refused from that address now, even with the right password…
    let admin = basic("admin", ADMIN_PASSWORD);
    let response = base_from(&app, &admin, sprayer).await;
    assert_retry_after(&response);
    assert_error(response, 429, "TOOMANYREQUESTS").await;
    // …but not from others.
    assert_eq!(
        base_from(&app, &admin, "198.51.100.2").await.status(),
        StatusCode::OK
    );
    let body = token_from(&app, &admin, "198.51.100.2")
        .await
        .json_body()
        .await;
    assert!(body["token"].is_string(), "{body}");
}

/// A second node on `config`'s database and storage, stopped when dropped.
struct Node {
    base: String,
    _stop: oneshot::Sender<()>,
}

impl Node {
    async fn start(config: &Config) -> Node {
        let state = wharf::build_state(config).await.expect("second node");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(wharf::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Node { base, _stop: stop }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

#[tokio::test]
async fn every_node_counts_failed_logins_against_one_budget() {
    let (app, config) = secured_with(|_| {}).await;
    let second = Node::start(&config).await;
    let password = user_with_policy(&app, "target", None).await;
    let (right, wrong) = (basic("target", &password), basic("target", "guess"));
    let token_on = |url: String, authorization: &str| {
        app.client
            .get(url)
            .header("authorization", authorization)
            .send()
    };
    // The second node works, and shares the first one's users. (Not with `right`: a node
    // that verified it would remember it and skip the limiter.)
    let admin = basic("admin", ADMIN_PASSWORD);
    let response = token_on(second.url("/token?service=wharf"), &admin)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    for _ in 0..3 {
        let response = token_on(app.url("/token?service=wharf"), &wrong)
            .await
            .unwrap();
        assert_oauth_error(response, 401, "invalid_client").await;
    }
    for _ in 0..2 {
        let response = token_on(second.url("/token?service=wharf"), &wrong)
            .await
            .unwrap();
        assert_oauth_error(response, 401, "invalid_client").await;
    }
    for url in [app.url("/token?service=wharf"), second.url("/token")] {
        let response = token_on(url, &right).await.unwrap();
        assert_retry_after(&response);
        assert_oauth_error(response, 429, "slow_down").await;
    }
    let response = token_on(second.url("/v2/"), &right).await.unwrap();
    assert_error(response, 429, "TOOMANYREQUESTS").await;
}

#[tokio::test]
async fn a_remembered_login_outlasts_a_lockout_but_not_its_deletion() {
    let app = secured().await;
    let store = app.store().await;
    let password = user_with_policy(&app, "ci", None).await;
    let (key_id, secret) = admin::create_key(&*store, "ci").await.unwrap();
    let (by_password, by_key) = (basic("ci", &password), basic(&key_id, &secret));
    for client in [&by_password, &by_key] {
        let response = send(&app, Method::GET, "/v2/", Some(client)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    // Someone behind the same address guesses both until they are locked out.
    for name in ["ci", key_id.as_str()] {
        for _ in 0..5 {
            let guess = basic(name, "guess");
            let response = send(&app, Method::GET, "/v2/", Some(&guess)).await;
            assert_error(response, 401, "UNAUTHORIZED").await;
        }
        let guess = basic(name, "guess");
        let response = send(&app, Method::GET, "/v2/", Some(&guess)).await;
        assert_error(response, 429, "TOOMANYREQUESTS").await;
    }
    for client in [&by_password, &by_key] {
        let response = send(&app, Method::GET, "/v2/", Some(client)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let response = token(&app, Some(client), &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    // A deletion is seen at once. (The names are still locked out, so the refusal may be
    // the limiter's; either way the credentials no longer work.)
    let refused = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        assert!(matches!(status, 401 | 429), "status {status}");
        let code = if status == 401 {
            "UNAUTHORIZED"
        } else {
            "TOOMANYREQUESTS"
        };
        assert_error(response, status, code).await;
    };
    admin::delete_key(&*store, &key_id).await.unwrap();
    refused(send(&app, Method::GET, "/v2/", Some(&by_key)).await).await;
    let response = send(&app, Method::GET, "/v2/", Some(&by_password)).await;
    assert_eq!(response.status(), StatusCode::OK);
    admin::delete_user(&*store, "ci").await.unwrap();
    refused(send(&app, Method::GET, "/v2/", Some(&by_password)).await).await;
}

#[tokio::test]
async fn deleting_admin_is_not_undone_by_a_restart_unless_no_user_is_left() {
    let mut app = secured().await;
    let admin = basic("admin", ADMIN_PASSWORD);
    let store = app.store().await;
    user_with_policy(&app, "ops", None).await;
    admin::delete_user(&*store, "admin").await.unwrap();
    app.restart().await;
    assert_eq!(store.list_users().await.unwrap(), ["ops"]);
    let response = send(&app, Method::GET, "/v2/", Some(&admin)).await;
    assert_error(response, 401, "UNAUTHORIZED").await;

    admin::delete_user(&*store, "ops").await.unwrap();
    app.restart().await;
    assert_eq!(store.list_users().await.unwrap(), ["admin"]);
    let response = send(&app, Method::GET, "/v2/", Some(&admin)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_generated_admin_password_is_written_only_by_the_start_that_created_admin() {
    let (mut app, config) = secured_with(|config| {
        config.auth.as_mut().unwrap().admin_password = None;
    })
    .await;
    let file = config.data_dir.join(wharf::ADMIN_PASSWORD_FILE);
    let read = || std::fs::read_to_string(&file).unwrap().trim().to_string();
    let first = read();
    let status = |app: &TestApp, password: &str| {
        let request = app
            .get("/v2/")
            .header("authorization", basic("admin", password));
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(status(&app, &first).await, StatusCode::OK);

    // Another node on the same database, with a data directory of its own, creates nothing.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut other = config.clone();
    other.data_dir = elsewhere.path().to_path_buf();
    let second = Node::start(&other).await;
    let response = app
        .client
        .get(second.url("/v2/"))
        .header("authorization", basic("admin", &first))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!elsewhere.path().join(wharf::ADMIN_PASSWORD_FILE).exists());
    // Nor does a restart while users exist.
    app.restart().await;
    assert_eq!(read(), first);

    // With no users left, the next start creates admin again, with a new password.
    admin::delete_user(&*app.store().await, "admin")
        .await
        .unwrap();
    app.restart().await;
    let again = read();
    assert_ne!(again, first);
    assert_eq!(status(&app, &again).await, StatusCode::OK);
    assert_eq!(status(&app, &first).await, StatusCode::UNAUTHORIZED);
}

/// Removes ANSI colour sequences from log output.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Forwards each line of `stream` to `lines`, tagged, until it closes.
fn forward(stream: impl Read + Send + 'static, lines: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
}

#[tokio::test]
async fn a_generated_admin_password_goes_to_a_private_file_and_never_to_the_output() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--auth",
        "true",
        "--log",
        "debug",
        "--data-dir",
    ]
    .map(String::from)
    .into();
    args.push(dir.path().display().to_string());
    if std::env::var("WHARF_TEST_BACKEND").as_deref() == Ok("postgres-s3") {
        let backends = ProductionBackends::from_env().expect("Postgres and S3");
        let s3 = backends.s3();
        for (flag, value) in [
            ("--database-url", backends.database().await),
            ("--storage", "s3".into()),
            ("--s3-endpoint", s3.endpoint.unwrap()),
            ("--s3-region", s3.region),
            ("--s3-bucket", s3.bucket),
            ("--s3-prefix", s3.prefix),
            ("--s3-path-style", "true".into()),
        ] {
            args.extend([flag.to_string(), value]);
        }
    }
    // A file left from before, readable by others, is replaced and made private.
    let file = dir.path().join(wharf::ADMIN_PASSWORD_FILE);
    std::fs::write(&file, "an old password\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_wharf"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("WHARF_")) {
        command.env_remove(name);
    }
    let mut child = command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wharf serve");
    let (sender, lines) = mpsc::channel();
    forward(child.stdout.take().unwrap(), sender.clone());
    forward(child.stderr.take().unwrap(), sender);

    // The server logs its address once it listens (a generous bound, so a broken server
    // fails the test instead of hanging it).
    let mut output = Vec::new();
    let address = loop {
        let line = match lines.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => plain(&line),
            Err(e) => {
                let _ = child.kill();
                panic!("no address logged ({e}): {output:?}");
            }
        };
        let address = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("address="))
            .map(str::to_string);
        output.push(line);
        if let Some(address) = address {
            break address;
        }
    };

    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let password = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(
        password.len() >= 16 && password != "an old password",
        "a generated password: {password:?}"
    );
    let client = reqwest::Client::new();
    let base = format!("http://{address}/v2/");
    let login = |password: &str| {
        client
            .get(&base)
            .header("authorization", basic("admin", password))
            .send()
    };
    assert_eq!(login(&password).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        login("not-the-password").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let token = client
        .post(format!("http://{address}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&username=admin&password={password}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::OK);

    child.kill().unwrap();
    child.wait().unwrap();
    // The pipes close with the process; the forwarders end and drop their senders.
    output.extend(lines.iter().map(|line| plain(&line)));
    let output = output.join("\n");
    assert!(
        output.contains(wharf::ADMIN_PASSWORD_FILE),
        "the log names the file: {output}"
    );
    assert!(
        !output.contains(&password),
        "the password is in the output: {output}"
    );
}

#[tokio::test]
async fn names_no_user_could_have_are_refused_before_any_lookup() {
    let app = secured().await;
    for name in ["nul\0byte", "spaced name", "", "ü"] {
        let base = send(&app, Method::GET, "/v2/", Some(&basic(name, "pw"))).await;
        assert_error(base, 401, "UNAUTHORIZED").await;
        let form: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "password"),
                ("username", name),
                ("password", "pw"),
            ])
            .finish();
        let grant = app
            .request(Method::POST, "/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_oauth_error(grant, 400, "invalid_grant").await;
    }
}

#[tokio::test]
async fn admin_is_created_only_once_its_generated_password_is_safely_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_dir(dir.path());
    crate::common::auth_on(&mut config);
    config.auth.as_mut().unwrap().admin_password = None;
    if std::env::var("WHARF_TEST_BACKEND").as_deref() == Ok("postgres-s3") {
        let backends = ProductionBackends::from_env().expect("Postgres and S3");
        config.database_url = backends.database().await;
    }
    // Something in the way of the password file: the first start fails, creating nobody.
    let file = dir.path().join(wharf::ADMIN_PASSWORD_FILE);
    std::fs::create_dir_all(&file).unwrap();
    let refused = wharf::build_state(&config).await;
    assert!(refused.is_err(), "the start fails");
    let store = wharf::metadata::sql::SqlStore::connect(&config.database_url)
        .await
        .unwrap();
    assert!(store.list_users().await.unwrap().is_empty());

    std::fs::remove_dir(&file).unwrap();
    wharf::build_state(&config).await.expect("the next start");
    let password = std::fs::read_to_string(&file).unwrap();
    let admin = store.get_user("admin").await.unwrap().expect("admin");
    assert!(
        wharf::auth::passwords::Verifier::new(1)
            .verify(password.trim(), &admin.password_hash)
            .await
            .unwrap()
    );
}
