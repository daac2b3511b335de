//! The administration commands, run as an operator would run them.

use std::process::Command;

use reqwest::{Method, StatusCode};
use wharf::config::Config;

use crate::common::{ADMIN_PASSWORD, TestApp, auth_on, basic};

fn wharf(data_dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
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
async fn wharf_beside_a_server(data_dir: &std::path::Path, args: &[&str]) -> String {
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
        *config = Config::for_dir(dir.path());
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
