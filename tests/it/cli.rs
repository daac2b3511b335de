//! The administration commands, run as an operator would run them.

use std::process::Command;

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
