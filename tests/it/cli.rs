//! The administration commands, run as an operator would run them.

use std::process::Command;

use reqwest::{Method, StatusCode};

use crate::common::{ADMIN_PASSWORD, TestApp, auth_on, basic, config_for_dir};

pub fn wharf(data_dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(args)
        .env("WHARF_DATA_DIR", data_dir)
        .env("WHARF_LOG", "error")
        .output()
        .expect("run wharf");
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (
        output.status.success(),
        text(output.stdout),
        text(output.stderr),
    )
}

#[test]
fn users_keys_policies_and_login_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let (ok, stdout, stderr) = wharf(dir.path(), args);
        assert!(ok, "wharf {args:?} failed: {stderr}");
        stdout
    };
    let created = run(&["user", "create", "alice"]);
    assert!(
        created.starts_with("created user alice with password "),
        "{created}"
    );
    run(&["user", "create", "bob", "--password", "bob-secret"]);
    assert_eq!(run(&["user", "list"]), "alice\nbob\n");
    let (ok, _, stderr) = wharf(dir.path(), &["user", "create", "alice"]);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    for reserved in ["AWS", "123456789012"] {
        let (ok, _, stderr) = wharf(dir.path(), &["user", "create", reserved]);
        assert!(!ok && stderr.contains("invalid user name"), "{stderr}");
    }

    let key = run(&["key", "create", "--user", "alice"]);
    let id = key
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(id.starts_with("WKA"), "{key}");
    assert_eq!(run(&["key", "list", "--user", "alice"]), format!("{id}\n"));
    run(&["key", "delete", &id]);
    assert_eq!(run(&["key", "list", "--user", "alice"]), "");

    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"Statement":[{"Effect":"Allow","Action":"ecr:ListImages","Resource":"*"}]}"#,
    )
    .unwrap();
    run(&["policy", "set", "--user", "alice", policy.to_str().unwrap()]);
    assert!(run(&["policy", "get", "--user", "alice"]).contains("ecr:ListImages"));
    let (ok, _, stderr) = wharf(
        dir.path(),
        &[
            "policy",
            "set",
            "--repository",
            "team/app",
            policy.to_str().unwrap(),
        ],
    );
    assert!(
        !ok && stderr.contains("Principal"),
        "a repository policy names principals: {stderr}"
    );
    run(&["policy", "delete", "--user", "alice"]);
    assert_eq!(run(&["policy", "get", "--user", "alice"]), "(no policy)\n");
    run(&["repository", "set-public", "team/app", "true"]);

    let password = run(&["login-password", "--user", "bob"]);
    assert_eq!(password.trim().split('.').count(), 3, "a JWT: {password}");
    let (ok, _, stderr) = wharf(dir.path(), &["login-password", "--user", "nobody"]);
    assert!(!ok && stderr.contains("no user"), "{stderr}");
    run(&["user", "delete", "bob"]);
    assert_eq!(run(&["user", "list"]), "alice\n");
}

#[test]
fn repositories_are_created_listed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let (ok, stdout, stderr) = wharf(dir.path(), args);
        assert!(ok, "wharf {args:?} failed: {stderr}");
        stdout
    };
    run(&[
        "repository",
        "create",
        "team/app",
        "--tag-mutability",
        "IMMUTABLE",
    ]);
    run(&["repository", "create", "plain"]);
    let listed = run(&["repository", "list"]);
    let rows: Vec<Vec<&str>> = listed.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{listed}");
    assert_eq!((rows[0][0], rows[0][2]), ("plain", "MUTABLE"));
    assert_eq!((rows[1][0], rows[1][2]), ("team/app", "IMMUTABLE"));
    assert!(rows[0][1].starts_with("20"), "an RFC 3339 time: {listed}");

    let (ok, _, stderr) = wharf(dir.path(), &["repository", "create", "plain"]);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    let (ok, _, stderr) = wharf(
        dir.path(),
        &[
            "repository",
            "create",
            "x/y",
            "--tag-mutability",
            "SOMETIMES",
        ],
    );
    assert!(!ok && stderr.contains("MUTABLE or IMMUTABLE"), "{stderr}");
    run(&["repository", "delete", "plain"]);
    let (ok, _, stderr) = wharf(dir.path(), &["repository", "delete", "plain"]);
    assert!(!ok && stderr.contains("not known"), "{stderr}");
    assert_eq!(run(&["repository", "list"]).lines().count(), 1);
}

#[test]
fn repository_names_are_at_least_two_characters_as_in_ecr() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = wharf(dir.path(), &["repository", "create", "a"]);
    assert!(!ok && stderr.contains("at least 2 characters"), "{stderr}");
    let (ok, _, stderr) = wharf(dir.path(), &["repository", "create", "ab"]);
    assert!(ok, "{stderr}");
}

/// `wharf` in a blocking task, leaving the runtime free to serve while it runs.
pub async fn wharf_beside_a_server(data_dir: &std::path::Path, args: &[&str]) -> String {
    let data_dir = data_dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        wharf(&data_dir, &args)
    })
    .await
    .unwrap();
    assert!(ok, "wharf failed: {stderr}");
    stdout
}

#[tokio::test]
async fn a_registry_policy_that_locks_everyone_out_is_undone_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let (ok, stdout, stderr) = wharf(dir.path(), args);
        assert!(ok, "wharf {args:?} failed: {stderr}");
        stdout
    };
    let deny_all = dir.path().join("deny-all.json");
    let document = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:*"}]}"#;
    std::fs::write(&deny_all, document).unwrap();
    let deny_all = deny_all.to_str().unwrap();

    // No server has started on this database yet: it has no registry row.
    assert_eq!(run(&["policy", "get", "--registry"]), "(no policy)\n");
    run(&["policy", "set", "--registry", deny_all]);
    assert_eq!(
        run(&["policy", "get", "--registry"]),
        format!("{document}\n")
    );
    let user_policy = dir.path().join("user-policy.json");
    std::fs::write(
        &user_policy,
        r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}"#,
    )
    .unwrap();
    let (ok, _, stderr) = wharf(
        dir.path(),
        &["policy", "set", "--registry", user_policy.to_str().unwrap()],
    );
    assert!(
        !ok && stderr.contains("Principal"),
        "a registry policy is a resource policy: {stderr}"
    );
    let (ok, _, _) = wharf(dir.path(), &["policy", "get", "--registry", "--user", "x"]);
    assert!(!ok, "one target at a time");

    // The server shares the CLI's SQLite database, whatever WHARF_TEST_BACKEND says.
    let app = TestApp::spawn_with(|config| {
        *config = config_for_dir(dir.path());
        auth_on(config);
    })
    .await;
    let admin = basic("admin", ADMIN_PASSWORD);
    let push = || {
        app.request(Method::POST, "/v2/team/app/blobs/uploads/")
            .header("authorization", &admin)
            .send()
    };
    let catalog = || {
        app.get("/v2/_catalog")
            .header("authorization", &admin)
            .send()
    };
    assert_eq!(push().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(catalog().await.unwrap().status(), StatusCode::FORBIDDEN);

    wharf_beside_a_server(dir.path(), &["policy", "delete", "--registry"]).await;
    assert_eq!(
        wharf_beside_a_server(dir.path(), &["policy", "get", "--registry"]).await,
        "(no policy)\n"
    );
    assert_eq!(push().await.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(catalog().await.unwrap().status(), StatusCode::OK);
}

/// Pushes one image per tag, a few milliseconds apart so that their push times differ.
async fn push_images(app: &TestApp, repo: &str, tags: &[&str]) {
    for tag in tags {
        app.push_image(repo, tag).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn lifecycle_policies_are_set_previewed_run_and_deleted_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(|config| *config = config_for_dir(dir.path())).await;
    push_images(
        &app,
        "team/app",
        &["release-1", "release-2", "release-3", "dev"],
    )
    .await;
    let policy = dir.path().join("policy.json");
    let document = r#"{"rules":[{"rulePriority":1,"description":"keep the last release",
        "selection":{"tagStatus":"tagged","tagPrefixList":["release-"],
        "countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
    std::fs::write(&policy, document).unwrap();
    let policy = policy.to_str().unwrap();

    let set = wharf_beside_a_server(dir.path(), &["lifecycle", "set", "team/app", policy]).await;
    assert_eq!(set, "set the lifecycle policy of team/app\n");
    let shown = wharf_beside_a_server(dir.path(), &["lifecycle", "get", "team/app"]).await;
    assert_eq!(shown, format!("{document}\n"));
    let preview = wharf_beside_a_server(dir.path(), &["lifecycle", "preview", "team/app"]).await;
    let lines: Vec<&str> = preview.lines().collect();
    assert_eq!(lines.len(), 4, "{preview}");
    assert!(lines[1].contains("\trelease-1\t") && lines[1].ends_with("rule 1"));
    assert!(lines[2].contains("\trelease-2\t"), "{preview}");
    assert_eq!(lines[3], "2 images would expire");

    let run = wharf_beside_a_server(dir.path(), &["lifecycle", "run"]).await;
    assert!(
        run.ends_with("applied the lifecycle policies of 1 repositories: 2 images expired\n"),
        "{run}"
    );
    for (tag, status) in [
        ("release-1", 404),
        ("release-2", 404),
        ("release-3", 200),
        ("dev", 200),
    ] {
        let response = app
            .get(&format!("/v2/team/app/manifests/{tag}"))
            .header("accept", crate::common::OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{tag}");
    }

    wharf_beside_a_server(dir.path(), &["lifecycle", "delete", "team/app"]).await;
    let (ok, _, stderr) = wharf(dir.path(), &["lifecycle", "get", "team/app"]);
    assert!(!ok && stderr.contains("no lifecycle policy"), "{stderr}");
    std::fs::write(dir.path().join("bad.json"), r#"{"rules":[]}"#).unwrap();
    let bad = dir.path().join("bad.json");
    let (ok, _, stderr) = wharf(
        dir.path(),
        &["lifecycle", "set", "team/app", bad.to_str().unwrap()],
    );
    assert!(
        !ok && stderr.contains("invalid lifecycle policy"),
        "{stderr}"
    );
}

#[tokio::test]
async fn gc_and_storage_check_run_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(|config| *config = config_for_dir(dir.path())).await;
    let (_, digest, _) = app.push_image("team/app", "gone").await;
    app.push_image("team/app", "kept").await;
    let deleted = app
        .request(Method::DELETE, &format!("/v2/team/app/manifests/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);

    // The layer of the deleted image; the config is shared with the kept one.
    let dry = wharf_beside_a_server(dir.path(), &["--gc-grace", "0", "gc", "--dry-run"]).await;
    assert!(
        dry.contains("would remove 1 links in 1 repositories, 1 blobs"),
        "{dry}"
    );
    let done = wharf_beside_a_server(dir.path(), &["--gc-grace", "0", "gc"]).await;
    assert!(
        done.contains(" removed 1 links in 1 repositories, 1 blobs"),
        "{done}"
    );
    let again = wharf_beside_a_server(dir.path(), &["--gc-grace", "0", "gc"]).await;
    assert!(
        again.contains(" removed 0 links in 1 repositories, 0 blobs"),
        "{again}"
    );

    let json = wharf_beside_a_server(dir.path(), &["storage", "check", "--json"]).await;
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON report");
    assert_eq!(report["recorded_blobs"], 2, "{report}");
    assert_eq!(report["stored_blobs"], 2);
    assert_eq!(report["missing"], serde_json::json!([]));
    assert_eq!(report["orphans"], serde_json::json!([]));
    assert_eq!(report["repositories"][0]["repository"], "team/app");
    let text = wharf_beside_a_server(dir.path(), &["storage", "check"]).await;
    assert!(text.contains("\n2 blobs recorded, 2 stored"), "{text}");
}

/// `kill -9` of `wharf gc` while it removes thousands of blobs: whatever it had done stays
/// consistent (every linked blob has its bytes), and the next run finishes the job.
#[tokio::test]
async fn a_gc_killed_half_way_leaves_nothing_broken_and_the_next_finishes() {
    const GARBAGE: usize = 2000;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(|config| *config = config_for_dir(dir.path())).await;
    let (_, kept, _) = app.push_image("team/app", "kept").await;
    // Garbage made fast: bytes written straight into storage, rows inserted alike.
    let store = app.blob_store().await;
    let mut rows = Vec::new();
    for i in 0..GARBAGE {
        let data = format!("garbage {i}").into_bytes();
        let upload = uuid::Uuid::new_v4().to_string();
        let body = futures::stream::iter([Ok(bytes::Bytes::from(data.clone()))]);
        let part = store
            .write_part(&upload, &[], Box::pin(body))
            .await
            .unwrap();
        let digest = crate::common::sha256(&data);
        store
            .commit(&upload, &[part], &digest.parse().unwrap())
            .await
            .unwrap();
        store.delete_upload(&upload, None).await.unwrap();
        rows.push(format!("('{digest}', {}, 0)", data.len()));
    }
    app.sql(&format!(
        "INSERT INTO blobs (digest, size, created_at) VALUES {}",
        rows.join(", ")
    ))
    .await;
    let blob_files = || walk_files(&dir.path().join("blobs").join("blobs"));
    assert_eq!(blob_files(), GARBAGE + 2);

    let mut gc = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["--gc-grace", "0", "gc"])
        .env("WHARF_DATA_DIR", dir.path())
        .env("WHARF_LOG", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start wharf gc");
    // Kill it once it is under way, before it is done.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while blob_files() > GARBAGE / 2 + 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    gc.kill().expect("kill -9");
    gc.wait().unwrap();
    let left = blob_files();
    assert!(
        left > 2 && left < GARBAGE + 2,
        "{left} files left: not killed half way"
    );

    // Every image still pulls, storage holds everything that is linked.
    let report = app
        .state
        .registry
        .check_storage(false, &|_| {})
        .await
        .unwrap();
    assert!(report.missing.iter().all(|m| m.links == 0), "{report:?}");
    let response = app
        .get(&format!("/v2/team/app/manifests/{kept}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let done = wharf_beside_a_server(dir.path(), &["--gc-grace", "0", "gc"]).await;
    assert!(
        done.contains(" removed 0 links in 1 repositories, "),
        "{done}"
    );
    assert_eq!(blob_files(), 2);
    let report = app
        .state
        .registry
        .check_storage(false, &|_| {})
        .await
        .unwrap();
    assert_eq!(
        (report.recorded_blobs, report.stored_blobs),
        (2, 2),
        "{report:?}"
    );
    assert!(report.missing.is_empty() && report.orphans.is_empty());
}

/// How many files are under `dir`, recursively.
fn walk_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => walk_files(&entry.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

/// Runs `wharf ARGS` on `data_dir` with `input` on standard input.
fn wharf_with_input(data_dir: &std::path::Path, args: &[&str], input: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(args)
        .env("WHARF_DATA_DIR", data_dir)
        .env("WHARF_LOG", "error")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run wharf");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), format!("{stdout}{stderr}"))
}

#[tokio::test]
async fn remotes_are_checked_when_added_listed_without_passwords_and_deleted() {
    let remote = TestApp::spawn_with(auth_on).await;
    let url = remote.url("");
    let dir = tempfile::tempdir().unwrap();
    let name = ["--registry-id", "123456789012", "--region", "eu-west-1"];
    let add = |password: &'static str, extra: &'static [&'static str]| {
        let (dir, url) = (dir.path().to_path_buf(), url.clone());
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["remote", "add", "--url", &url];
            args.extend(name);
            args.extend(["--username", "admin", "--password-stdin"]);
            args.extend(extra);
            wharf_with_input(&dir, &args, &format!("{password}\n"))
        })
    };
    let run = |args: &[&str]| wharf(dir.path(), args);

    // Refused credentials: nothing is stored.
    let (ok, said) = add("wrong", &[]).await.unwrap();
    assert!(!ok && said.contains("authentication failed"), "{said}");
    assert_eq!(run(&["remote", "list"]).1, "(no remotes)\n");
    // Unless asked to store it unchecked; then replaced by a checked one.
    let (ok, said) = add("wrong", &["--skip-check"]).await.unwrap();
    assert!(ok && said.starts_with("added remote"), "{said}");
    let (ok, said) = add(ADMIN_PASSWORD, &[]).await.unwrap();
    assert!(ok && said.starts_with("replaced remote"), "{said}");

    let (ok, listed, _) = run(&["remote", "list"]);
    assert!(ok);
    assert_eq!(listed, format!("123456789012  eu-west-1  {url}  admin\n"));
    assert!(!listed.contains(ADMIN_PASSWORD));

    let (ok, _, stderr) = run(&[
        "remote",
        "add",
        "--url",
        &url,
        "--registry-id",
        "12",
        "--region",
        "x",
    ]);
    assert!(!ok && stderr.contains("twelve digits"), "{stderr}");
    // Replication to it, set from standard input and read back.
    let rules =
        r#"{"rules":[{"destinations":[{"region":"eu-west-1","registryId":"123456789012"}]}]}"#;
    let (ok, said) = wharf_with_input(dir.path(), &["replication", "set", "-"], rules);
    assert!(ok && said.contains("1 rules"), "{said}");
    let (ok, shown, _) = run(&["replication", "get"]);
    assert!(
        ok && shown.contains("\"registryId\": \"123456789012\""),
        "{shown}"
    );
    let (ok, said, _) = run(&["replication", "backfill", "--repository", "prod/"]);
    assert!(
        ok && said.starts_with("queued 0 copies of 0 images"),
        "{said}"
    );
    let elsewhere =
        r#"{"rules":[{"destinations":[{"region":"us-east-1","registryId":"123456789012"}]}]}"#;
    let (ok, said) = wharf_with_input(dir.path(), &["replication", "set", "-"], elsewhere);
    assert!(!ok && said.contains("not a known remote"), "{said}");
    let (ok, stdout, _) = run(&["remote", "delete", name[0], name[1], name[2], name[3]]);
    assert!(ok && stdout.starts_with("deleted remote"), "{stdout}");
    let (ok, _, stderr) = run(&["remote", "delete", name[0], name[1], name[2], name[3]]);
    assert!(!ok && stderr.contains("no remote"), "{stderr}");
}

#[tokio::test]
async fn pull_through_rules_are_checked_when_created_listed_without_passwords_and_deleted() {
    let upstream = TestApp::spawn_with(auth_on).await;
    let url = upstream.url("");
    let dir = tempfile::tempdir().unwrap();
    let create = |password: &'static str, extra: &'static [&'static str]| {
        let (dir, url) = (dir.path().to_path_buf(), url.clone());
        tokio::task::spawn_blocking(move || {
            let mut args = vec![
                "pull-through",
                "create",
                "--prefix",
                "hub",
                "--upstream",
                &url,
            ];
            args.extend(["--username", "admin", "--password-stdin"]);
            args.extend(extra);
            wharf_with_input(&dir, &args, &format!("{password}\n"))
        })
    };
    let run = |args: &[&str]| wharf(dir.path(), args);

    let (ok, said) = create("wrong", &[]).await.unwrap();
    assert!(!ok && said.contains("authentication failed"), "{said}");
    assert_eq!(
        run(&["pull-through", "list"]).1,
        "(no pull-through cache rules)\n"
    );
    let (ok, said) = create(ADMIN_PASSWORD, &[]).await.unwrap();
    assert_eq!(
        (ok, said),
        (
            true,
            format!("created pull-through cache rule hub -> {url}\n")
        )
    );
    let (ok, said) = create(ADMIN_PASSWORD, &[]).await.unwrap();
    assert!(!ok && said.contains("already exists"), "{said}");

    let (ok, listed, _) = run(&["pull-through", "list"]);
    assert!(ok && listed.starts_with(&format!("hub  {url}  arn:aws:secretsmanager:")));
    assert!(
        listed.ends_with(":secret:ecr-pullthroughcache/hub\n"),
        "{listed}"
    );
    assert!(!listed.contains(ADMIN_PASSWORD));

    let unchecked = [
        "pull-through",
        "create",
        "--skip-check",
        "--upstream",
        "ghcr.io",
    ];
    let (ok, _, stderr) = run(&[&unchecked[..], &["--prefix", "ROOT"]].concat());
    assert!(!ok && stderr.contains("ROOT"), "{stderr}");
    let (ok, said, _) = run(&[&unchecked[..], &["--prefix", "ghcr/"]].concat());
    assert_eq!(
        (ok, said.as_str()),
        (
            true,
            "created pull-through cache rule ghcr -> https://ghcr.io\n"
        )
    );

    let (ok, said, _) = run(&["pull-through", "delete", "--prefix", "hub"]);
    assert!(
        ok && said.starts_with("deleted pull-through cache rule hub"),
        "{said}"
    );
    let (ok, _, stderr) = run(&["pull-through", "delete", "--prefix", "hub"]);
    assert!(
        !ok && stderr.contains("no pull-through cache rule"),
        "{stderr}"
    );
    assert_eq!(
        run(&["pull-through", "list"]).1,
        "ghcr  https://ghcr.io  -\n"
    );
}
