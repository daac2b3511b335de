//! Third-party clients against a running Wharf: the `oci-client` crate and skopeo.

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::json;

use crate::common::{OCI_EMPTY, OCI_MANIFEST, TestApp, header, sha256};

fn oci_client() -> Client {
    Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    })
}

pub fn host(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

#[tokio::test]
async fn oci_client_pushes_and_pulls_an_image_and_an_artifact() {
    let app = TestApp::spawn().await;
    let client = oci_client();
    let auth = RegistryAuth::Anonymous;
    let image: Reference = format!("{}/clients/oci:v1", host(&app)).parse().unwrap();
    let layer = ImageLayer::oci_v1(Bytes::from_static(b"layer from oci-client"), None);
    let config = Config::oci_v1(
        Bytes::from_static(br#"{"os":"linux","architecture":"amd64"}"#),
        None,
    );
    client
        .push(&image, std::slice::from_ref(&layer), config, &auth, None)
        .await
        .expect("oci-client push");

    let pulled = client
        .pull(
            &image,
            &auth,
            vec![oci_client::manifest::IMAGE_LAYER_MEDIA_TYPE],
        )
        .await
        .expect("oci-client pull");
    assert_eq!(pulled.layers.len(), 1);
    assert_eq!(pulled.layers[0].data, layer.data);
    let digest = pulled.digest.expect("pulled digest");
    let served = app
        .get("/v2/clients/oci/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&served, "docker-content-digest"), digest);

    // An artifact whose subject is the image, found again through the referrers API.
    let artifact: Reference = format!("{}/clients/oci:sig", host(&app)).parse().unwrap();
    let signature = ImageLayer::new(
        Bytes::from_static(b"signature"),
        "application/vnd.example.sig".into(),
        None,
    );
    let empty = Config::new(Bytes::from_static(b"{}"), OCI_EMPTY.into(), None);
    let mut manifest = oci_client::manifest::OciImageManifest::build(
        std::slice::from_ref(&signature),
        &empty,
        None,
    );
    manifest.artifact_type = Some("application/vnd.example.sig".into());
    let subject_size = served.bytes().await.unwrap().len() as i64;
    manifest.subject = Some(oci_client::manifest::OciDescriptor {
        media_type: OCI_MANIFEST.into(),
        digest: digest.clone(),
        size: subject_size,
        ..Default::default()
    });
    client
        .push(&artifact, &[signature], empty, &auth, Some(manifest))
        .await
        .expect("push artifact");
    let referrers = app
        .get(&format!("/v2/clients/oci/referrers/{digest}"))
        .send()
        .await
        .unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&referrers.bytes().await.unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/vnd.example.sig"
    );
}

/// skopeo comes from Debian; under CI it must be installed (`.ci/run` does), elsewhere the
/// test says it was skipped.
pub fn skopeo_available() -> bool {
    let found = Command::new("skopeo").arg("--version").output().is_ok();
    if !found {
        assert!(std::env::var("CI").is_err(), "skopeo is required under CI");
        eprintln!("skipped: skopeo is not installed");
    }
    found
}

/// Writes a one-layer OCI image layout under `dir` and returns the manifest digest and layer.
fn write_oci_layout(dir: &Path) -> (String, Vec<u8>) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let write_blob = |data: &[u8]| {
        let digest = sha256(data);
        std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), data).unwrap();
        digest
    };
    let layer: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": write_blob(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": write_blob(&layer), "size": layer.len()}],
    }))
    .unwrap();
    let digest = write_blob(&manifest);
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST,
        "digest": digest, "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    (digest, layer)
}

pub fn skopeo(args: &[&str]) {
    let output = Command::new("skopeo")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn skopeo_copies_an_image_in_and_out() {
    if !skopeo_available() {
        return;
    }
    let app = TestApp::spawn().await;
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source");
    let (digest, layer) = write_oci_layout(&source);
    let remote = format!("docker://{}/clients/skopeo:v1", host(&app));
    let source_ref = format!("oci:{}:v1", source.display());
    let back = work.path().join("back");
    let back_ref = format!("oci:{}:v1", back.display());
    tokio::task::spawn_blocking(move || {
        skopeo(&[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &source_ref,
            &remote,
        ]);
        skopeo(&[
            "copy",
            "--preserve-digests",
            "--dest-oci-accept-uncompressed-layers",
            "--src-tls-verify=false",
            &remote,
            &back_ref,
        ]);
    })
    .await
    .unwrap();

    let served = app
        .get("/v2/clients/skopeo/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&served, "docker-content-digest"), digest);
    let pulled_layer = back
        .join("blobs/sha256")
        .join(sha256(&layer).trim_start_matches("sha256:"));
    assert_eq!(std::fs::read(pulled_layer).unwrap(), layer);
    let pulled_manifest = back
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    assert_eq!(sha256(&std::fs::read(pulled_manifest).unwrap()), digest);
}

/// A podman with storage and credentials of its own, as a separate user's machine would have.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    /// `None` (with a message) when podman is missing outside CI; under CI it is required.
    fn new() -> Option<Podman> {
        let found = Command::new("podman").arg("--version").output().is_ok();
        if !found {
            assert!(std::env::var("CI").is_err(), "podman is required under CI");
            eprintln!("skipped: podman is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("auth.json"), r#"{"auths":{}}"#).unwrap();
        Some(Podman { dir })
    }

    /// Runs podman; returns whether it succeeded and what it printed on stderr.
    fn run(&self, args: &[&str]) -> (bool, String) {
        let path = |name: &str| self.dir.path().join(name).display().to_string();
        let output = Command::new("podman")
            .args(["--root", &path("root"), "--runroot", &path("run")])
            .args([
                "--storage-driver",
                "vfs",
                "--events-backend",
                "none",
                "--cgroup-manager",
                "cgroupfs",
            ])
            .args(args)
            .env("REGISTRY_AUTH_FILE", path("auth.json"))
            .output()
            .expect("run podman");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) {
        let (ok, stderr) = self.run(args);
        assert!(ok, "podman {args:?} failed: {stderr}");
    }

    fn fails(&self, args: &[&str]) -> String {
        let (ok, stderr) = self.run(args);
        assert!(!ok, "podman {args:?} should have failed");
        stderr
    }
}

#[tokio::test]
async fn podman_and_skopeo_go_through_the_token_flow() {
    let (Some(admin_podman), Some(reader_podman), Some(anonymous_podman)) =
        (Podman::new(), Podman::new(), Podman::new())
    else {
        return;
    };
    if !skopeo_available() {
        return;
    }
    let app = TestApp::spawn_with(crate::common::auth_on).await;
    let store = app.store().await;
    let reader_password = wharf::admin::create_user(&*store, "reader", None)
        .await
        .unwrap();
    let pull_only = r#"{"Statement":[{"Effect":"Allow","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"],"Resource":"*"}]}"#;
    wharf::admin::set_policy(
        &*store,
        &wharf::admin::PolicyTarget::User("reader".into()),
        Some(pull_only),
    )
    .await
    .unwrap();

    let host = host(&app);
    let image = format!("{host}/team/app:v1");
    let rootfs = admin_podman.dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/motd"), "built for the podman test\n").unwrap();
    let tarball = admin_podman.dir.path().join("rootfs.tar");
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());
    let tarball = tarball.display().to_string();
    let reader_password2 = reader_password.clone();
    let (admin_password, image2, host2) =
        (crate::common::ADMIN_PASSWORD, image.clone(), host.clone());
    tokio::task::spawn_blocking(move || {
        let tls = "--tls-verify=false";
        let stderr = admin_podman.fails(&["login", tls, "-u", "admin", "-p", "wrong", &host2]);
        assert!(stderr.contains("invalid username/password"), "{stderr}");
        admin_podman.ok(&["login", tls, "-u", "admin", "-p", admin_password, &host2]);
        admin_podman.ok(&["import", &tarball, &image2]);
        admin_podman.ok(&["push", tls, &image2]);

        reader_podman.ok(&[
            "login",
            tls,
            "-u",
            "reader",
            "-p",
            &reader_password2,
            &host2,
        ]);
        reader_podman.ok(&["pull", tls, &image2]);
        let v2 = format!("{host2}/team/app:v2");
        reader_podman.ok(&["tag", &image2, &v2]);
        let stderr = reader_podman.fails(&["push", tls, &v2]);
        assert!(stderr.to_lowercase().contains("denied"), "{stderr}");

        let stderr = anonymous_podman.fails(&["pull", tls, &image2]);
        assert!(stderr.to_lowercase().contains("unauthorized"), "{stderr}");
    })
    .await
    .unwrap();

    // Public: anyone pulls, nobody pushes without credentials.
    wharf::admin::set_public(&*store, &"team/app".parse().unwrap(), true)
        .await
        .unwrap();
    let (image3, host3) = (image.clone(), host.clone());
    let anonymous = Podman::new().unwrap();
    tokio::task::spawn_blocking(move || {
        anonymous.ok(&["pull", "--tls-verify=false", &image3]);
        let v3 = format!("{host3}/team/app:v3");
        anonymous.ok(&["tag", &image3, &v3]);
        anonymous.fails(&["push", "--tls-verify=false", &v3]);

        let creds = format!("reader:{reader_password}");
        skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--creds",
            &creds,
            &format!("docker://{image3}"),
        ]);
        let denied = Command::new("skopeo")
            .args([
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                "--dest-creds",
                &creds,
            ])
            .arg(format!("docker://{image3}"))
            .arg(format!("docker://{host3}/team/copy:v1"))
            .output()
            .unwrap();
        assert!(!denied.status.success());
    })
    .await
    .unwrap();
    let served = app
        .get("/v2/team/app/manifests/v1")
        .header(
            "authorization",
            crate::common::basic("admin", crate::common::ADMIN_PASSWORD),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), reqwest::StatusCode::OK);
}
