//! Image scanning, whole: images built here layer by layer (`images`: package databases of
//! Debian, distroless, Alpine and an RPM distribution, whiteouts, later layers replacing
//! earlier ones), a small OSV fixture (`advisories`) imported from a directory and a zip,
//! scans run from the queue, and the exact findings read back through the ECR API and the
//! CLI. Runs on every backend pair.

mod advisories;
mod images;

use std::path::Path;

use serde_json::{Value, json};
use wharf::registry::ImportSummary;

use crate::cli::{wharf, wharf_beside_a_server};
use crate::common::TestApp;
use advisories::*;
use images::*;

async fn import(app: &TestApp, paths: &[&Path]) -> ImportSummary {
    let paths = paths.iter().map(|p| p.to_path_buf()).collect();
    app.state
        .registry
        .import_advisories(paths, &|_| {})
        .await
        .expect("import advisories")
}

/// Works the scan queue as a node's background job would.
async fn run_scans(app: &TestApp) {
    app.state
        .registry
        .run_scans(&|_| {})
        .await
        .expect("scan run");
}

/// The findings as (name, package, version, severity), in the order the API gives them,
/// reading every page of `page_size`.
async fn findings(
    app: &TestApp,
    repo: &str,
    digest: &str,
    page_size: u32,
) -> (Value, Vec<(String, String, String, String)>) {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    let mut first = None;
    loop {
        let mut input = json!({"repositoryName": repo, "imageId": {"imageDigest": digest},
                               "maxResults": page_size});
        if let Some(token) = &token {
            input["nextToken"] = json!(token);
        }
        let page = app.ecr("DescribeImageScanFindings", input).await.ok();
        for finding in page["imageScanFindings"]["findings"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let attribute = |key: &str| {
                finding["attributes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|a| a["key"] == key)
                    .map(|a| a["value"].as_str().unwrap().to_string())
                    .unwrap_or_default()
            };
            all.push((
                finding["name"].as_str().unwrap().to_string(),
                attribute("package_name"),
                attribute("package_version"),
                finding["severity"].as_str().unwrap().to_string(),
            ));
        }
        token = page["nextToken"].as_str().map(str::to_string);
        first.get_or_insert(page);
        if token.is_none() {
            return (first.unwrap(), all);
        }
    }
}

fn expected(rows: &[(&str, &str, &str, &str)]) -> Vec<(String, String, String, String)> {
    rows.iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect()
}

async fn start_scan(app: &TestApp, repo: &str, digest: &str) {
    let started = app
        .ecr(
            "StartImageScan",
            json!({"repositoryName": repo, "imageId": {"imageDigest": digest}}),
        )
        .await
        .ok();
    assert_eq!(started["imageScanStatus"]["status"], "IN_PROGRESS");
    assert_eq!(started["imageId"]["imageDigest"], digest);
}

#[tokio::test]
async fn images_of_each_distribution_get_exactly_their_findings() {
    let app = TestApp::spawn().await;
    let fixtures = tempfile::tempdir().unwrap();
    let debian_dir = fixtures.path().join("debian");
    write_records(&debian_dir, &debian_advisories());
    let alpine_zip = fixtures.path().join("alpine.zip");
    write_zip(&alpine_zip, &alpine_advisories());
    let alma_dir = fixtures.path().join("alma");
    write_records(&alma_dir, &alma_advisories());
    let summary = import(&app, &[&debian_dir, &alpine_zip, &alma_dir]).await;
    assert_eq!(summary.records, 15 + 5 + 3);
    assert_eq!(summary.withdrawn, 1);
    assert_eq!(summary.unrelated, 1, "the PyPI advisory");
    assert_eq!(summary.advisories["Debian"], 12);
    assert_eq!(summary.advisories["Ubuntu"], 1);
    assert_eq!(summary.advisories["Alpine"], 5);
    assert_eq!(summary.advisories["AlmaLinux"], 3);

    app.create_repository("scan/debian", json!({})).await;
    // Debian: the second layer's status drops vim, gzip layers.
    let debian = push(
        &app,
        "scan/debian",
        "12",
        &[
            layer(
                &[
                    os_release("debian", "12"),
                    file("var/lib/dpkg/status", &format!("{DEBIAN_STATUS}{VIM}")),
                ],
                true,
            ),
            layer(&[file("var/lib/dpkg/status", DEBIAN_STATUS)], true),
        ],
    )
    .await;
    // Distroless: one status.d file per package, a later layer's whiteout removes one, and
    // os-release in usr/lib behind a symlink; the whiteout layer is zstd.
    let distroless = push(
        &app,
        "scan/debian",
        "distroless",
        &[
            layer(
                &[
                    file("usr/lib/os-release", "ID=debian\nVERSION_ID=\"12\"\n"),
                    Entry::Symlink("etc/os-release", "../usr/lib/os-release"),
                    file(
                        "var/lib/dpkg/status.d/libssl3",
                        "Package: libssl3\nVersion: 3.0.11-1~deb12u1\nSource: openssl\n",
                    ),
                    file(
                        "var/lib/dpkg/status.d/zlib1g",
                        "Package: zlib1g\nVersion: 1:1.2.13.dfsg-1\nSource: zlib\n",
                    ),
                ],
                true,
            ),
            zstd_layer(&[Entry::Whiteout("var/lib/dpkg/status.d/libssl3")]),
        ],
    )
    .await;
    // Alpine, an uncompressed layer.
    let alpine = push(
        &app,
        "scan/debian",
        "alpine",
        &[layer(
            &[
                os_release("alpine", "3.19.1"),
                file("lib/apk/db/installed", APK_INSTALLED),
            ],
            false,
        )],
    )
    .await;
    // AlmaLinux 9: the SQLite rpmdb in a zstd layer; its advisories name binary packages.
    let database = rpmdb(&[
        rpm_header(
            "openssl-libs",
            Some(1),
            "3.0.7",
            "24.el9",
            "openssl-3.0.7-24.el9.src.rpm",
        ),
        rpm_header("bash", None, "5.1.8", "6.el9", "bash-5.1.8-6.el9.src.rpm"),
    ])
    .await;
    let alma = push(
        &app,
        "scan/debian",
        "alma",
        &[zstd_layer(&[
            os_release("almalinux", "9.3"),
            Entry::File("var/lib/rpm/rpmdb.sqlite", database),
        ])],
    )
    .await;

    for digest in [&debian, &distroless, &alpine, &alma] {
        start_scan(&app, "scan/debian", digest).await;
    }
    run_scans(&app).await;

    let scans = crate::common::audited(&app, "ImageScan").await;
    assert_eq!(
        scans.len(),
        4,
        "each scan is in the audit trail: {scans:#?}"
    );
    let (page, debian_findings) = findings(&app, "scan/debian", &debian, 2).await;
    assert_eq!(page["imageScanStatus"]["status"], "COMPLETE", "{page}");
    assert_eq!(
        debian_findings,
        expected(&[
            ("CVE-2023-1001", "zlib1g", "1:1.2.13.dfsg-1", "CRITICAL"),
            ("CVE-2023-5363", "libssl3", "3.0.11-1~deb12u1", "HIGH"),
            ("CVE-2023-1008", "helper", "1.0-1", "MEDIUM"),
            ("CVE-2023-1009", "libexample1", "1.5-2+b1", "LOW"),
            ("CVE-2023-1004", "libtasn1-6", "4.19.0-2", "UNDEFINED"),
        ])
    );
    let summary = &page["imageScanFindings"];
    assert_eq!(
        summary["findingSeverityCounts"],
        json!({"CRITICAL": 1, "HIGH": 1, "MEDIUM": 1, "LOW": 1, "UNDEFINED": 1})
    );
    assert!(summary["imageScanCompletedAt"].is_number());
    assert!(summary["vulnerabilitySourceUpdatedAt"].is_number());
    let high = &summary["findings"][1];
    assert_eq!(high["uri"], "https://example.org/DSA-5532-1");
    assert_eq!(high["description"], "DSA-5532-1 summary");
    let attributes = high["attributes"].as_array().unwrap();
    assert!(
        attributes.contains(&json!({"key": "CVSS3_SCORE", "value": "7.5"})),
        "{high}"
    );
    assert!(
        attributes.contains(&json!({"key": "CVSS3_VECTOR", "value": V3_HIGH.1})),
        "{high}"
    );

    let (_, distroless_findings) = findings(&app, "scan/debian", &distroless, 100).await;
    assert_eq!(
        distroless_findings,
        expected(&[("CVE-2023-1001", "zlib1g", "1:1.2.13.dfsg-1", "CRITICAL")])
    );
    let (_, alpine_findings) = findings(&app, "scan/debian", &alpine, 100).await;
    assert_eq!(
        alpine_findings,
        expected(&[
            ("ALPINE-CVE-2023-2002", "foo", "2.0_rc1-r0", "HIGH"),
            ("ALPINE-CVE-2023-5678", "libcrypto3", "3.1.4-r1", "MEDIUM"),
        ])
    );
    let (_, alma_findings) = findings(&app, "scan/debian", &alma, 100).await;
    assert_eq!(
        alma_findings,
        expected(&[("CVE-2024-3001", "openssl-libs", "1:3.0.7-24.el9", "HIGH")])
    );

    // An index scans each platform image, findings merged.
    let size = |digest: String| {
        let app = &app;
        async move {
            let path = format!("/v2/scan/debian/manifests/{digest}");
            let manifest = app
                .get(&path)
                .header("accept", OCI_MANIFEST)
                .send()
                .await
                .unwrap();
            manifest.bytes().await.unwrap().len()
        }
    };
    let index = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": distroless, "size": size(distroless.clone()).await,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": alpine, "size": size(alpine.clone()).await,
             "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    });
    let response = app.put_manifest("scan/debian", "multi", &index).await;
    assert_eq!(response.status(), 201);
    let index_digest = crate::common::header(&response, "docker-content-digest");
    start_scan(&app, "scan/debian", &index_digest).await;
    run_scans(&app).await;
    let (_, index_findings) = findings(&app, "scan/debian", &index_digest, 100).await;
    assert_eq!(
        index_findings,
        expected(&[
            ("CVE-2023-1001", "zlib1g", "1:1.2.13.dfsg-1", "CRITICAL"),
            ("ALPINE-CVE-2023-2002", "foo", "2.0_rc1-r0", "HIGH"),
            ("ALPINE-CVE-2023-5678", "libcrypto3", "3.1.4-r1", "MEDIUM"),
        ])
    );
}

#[tokio::test]
async fn images_that_cannot_be_scanned_say_why() {
    let app = TestApp::spawn().await;
    let fixtures = tempfile::tempdir().unwrap();
    write_records(fixtures.path(), &debian_advisories());
    import(&app, &[fixtures.path()]).await;
    app.create_repository("odd", json!({})).await;
    let images = [
        ("fedora", layer(&[os_release("fedora", "40")], true)),
        ("scratch", layer(&[file("app", "#!/bin/true")], true)),
        ("amazon", layer(&[os_release("amzn", "2023")], true)),
        ("corrupt", b"\x1f\x8b\x08\x00 not really gzip".to_vec()),
    ];
    let mut digests = Vec::new();
    for (tag, layer) in images {
        let digest = push(&app, "odd", tag, &[layer]).await;
        start_scan(&app, "odd", &digest).await;
        digests.push(digest);
    }
    let [fedora, scratch, amazon, corrupt] = &digests[..] else {
        unreachable!("four images")
    };
    run_scans(&app).await;
    let status = |page: Value| {
        let status = &page["imageScanStatus"];
        assert!(
            status["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{page}"
        );
        assert!(page.get("imageScanFindings").is_none(), "{page}");
        status["status"].as_str().unwrap().to_string()
    };
    assert_eq!(
        status(findings(&app, "odd", fedora, 10).await.0),
        "UNSUPPORTED_IMAGE"
    );
    assert_eq!(
        status(findings(&app, "odd", scratch, 10).await.0),
        "UNSUPPORTED_IMAGE"
    );
    // No Amazon Linux advisories were imported: the scan cannot say the image is clean.
    assert_eq!(
        status(findings(&app, "odd", amazon, 10).await.0),
        "FINDINGS_UNAVAILABLE"
    );
    assert_eq!(status(findings(&app, "odd", corrupt, 10).await.0), "FAILED");

    // An artifact is no image to scan; an image never scanned has no scan.
    let (_, digest, _) = app.push_image("odd", "never").await;
    let never = app
        .ecr(
            "DescribeImageScanFindings",
            json!({"repositoryName": "odd", "imageId": {"imageTag": "never"}}),
        )
        .await;
    never.error("ScanNotFoundException");
    let missing = app
        .ecr(
            "StartImageScan",
            json!({"repositoryName": "odd", "imageId": {"imageTag": "nope"}}),
        )
        .await;
    missing.error("ImageNotFoundException");
    let no_repository = app
        .ecr(
            "StartImageScan",
            json!({"repositoryName": "nope", "imageId": {"imageDigest": digest}}),
        )
        .await;
    no_repository.error("RepositoryNotFoundException");
    let artifact = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": app.push_blob("odd", b"{}").await, "size": 2},
        "layers": [],
    });
    assert_eq!(
        app.put_manifest("odd", "artifact", &artifact)
            .await
            .status(),
        201
    );
    let refused = app
        .ecr(
            "StartImageScan",
            json!({"repositoryName": "odd", "imageId": {"imageTag": "artifact"}}),
        )
        .await;
    refused.error("UnsupportedImageTypeException");
}

#[tokio::test]
async fn pushes_are_scanned_when_the_repository_or_a_registry_rule_asks() {
    let app = TestApp::spawn().await;
    let fixtures = tempfile::tempdir().unwrap();
    write_records(fixtures.path(), &debian_advisories());
    import(&app, &[fixtures.path()]).await;
    let configuration = json!({"scanType": "BASIC", "rules": [
        {"scanFrequency": "SCAN_ON_PUSH",
         "repositoryFilters": [{"filter": "prod/*", "filterType": "WILDCARD"}]}]});
    let put = app
        .ecr("PutRegistryScanningConfiguration", configuration.clone())
        .await
        .ok();
    assert_eq!(put["registryScanningConfiguration"], configuration);
    let got = app
        .ecr("GetRegistryScanningConfiguration", json!({}))
        .await
        .ok();
    assert_eq!(got["scanningConfiguration"], configuration);
    app.ecr(
        "PutRegistryScanningConfiguration",
        json!({"scanType": "ENHANCED", "rules": []}),
    )
    .await
    .error("InvalidParameterException");

    app.create_repository("prod/web", json!({})).await;
    app.create_repository("dev/web", json!({})).await;
    app.create_repository(
        "dev/own",
        json!({"imageScanningConfiguration": {"scanOnPush": true}}),
    )
    .await;
    let batch = app
        .ecr(
            "BatchGetRepositoryScanningConfiguration",
            json!({"repositoryNames": ["prod/web", "dev/web", "dev/own", "gone"]}),
        )
        .await
        .ok();
    let frequencies: Vec<(&str, &str, bool)> = batch["scanningConfigurations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["repositoryName"].as_str().unwrap(),
                c["scanFrequency"].as_str().unwrap(),
                c["scanOnPush"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        frequencies,
        [
            ("prod/web", "SCAN_ON_PUSH", true),
            ("dev/web", "MANUAL", false),
            ("dev/own", "SCAN_ON_PUSH", true)
        ]
    );
    assert_eq!(
        batch["scanningConfigurations"][0]["appliedScanFilters"],
        configuration["rules"][0]["repositoryFilters"]
    );
    assert_eq!(
        batch["failures"],
        json!([{"repositoryName": "gone", "failureCode": "REPOSITORY_NOT_FOUND",
                                          "failureReason": "REPOSITORY_NOT_FOUND"}])
    );

    let image = || {
        [layer(
            &[
                os_release("debian", "12"),
                file("var/lib/dpkg/status", DEBIAN_STATUS),
            ],
            true,
        )]
    };
    let prod = push(&app, "prod/web", "1", &image()).await;
    let dev = push(&app, "dev/web", "1", &image()).await;
    let own = push(&app, "dev/own", "1", &image()).await;
    let scan_status = |repo: &'static str, digest: String| {
        let app = &app;
        async move {
            let described = app
                .ecr(
                    "DescribeImages",
                    json!({"repositoryName": repo, "imageIds": [{"imageDigest": digest}]}),
                )
                .await
                .ok();
            described["imageDetails"][0].clone()
        }
    };
    assert_eq!(
        scan_status("prod/web", prod.clone()).await["imageScanStatus"]["status"],
        "IN_PROGRESS"
    );
    assert!(
        scan_status("dev/web", dev.clone())
            .await
            .get("imageScanStatus")
            .is_none()
    );
    run_scans(&app).await;
    for (repo, digest) in [("prod/web", prod), ("dev/own", own)] {
        let detail = scan_status(repo, digest).await;
        assert_eq!(detail["imageScanStatus"]["status"], "COMPLETE", "{detail}");
        assert_eq!(
            detail["imageScanFindingsSummary"]["findingSeverityCounts"],
            json!({"CRITICAL": 1, "HIGH": 1, "MEDIUM": 1, "LOW": 1, "UNDEFINED": 1})
        );
    }
    assert!(
        scan_status("dev/web", dev)
            .await
            .get("imageScanStatus")
            .is_none()
    );
}

#[tokio::test]
async fn a_new_import_replaces_its_source_and_marks_findings_stale_until_rescanned() {
    let app = TestApp::spawn().await;
    let fixtures = tempfile::tempdir().unwrap();
    let debian_dir = fixtures.path().join("debian");
    write_records(&debian_dir, &debian_advisories());
    let alpine_zip = fixtures.path().join("alpine.zip");
    write_zip(&alpine_zip, &alpine_advisories());
    import(&app, &[&debian_dir, &alpine_zip]).await;
    app.create_repository("app", json!({})).await;
    let debian = push(
        &app,
        "app",
        "debian",
        &[layer(
            &[
                os_release("debian", "12"),
                file("var/lib/dpkg/status", DEBIAN_STATUS),
            ],
            true,
        )],
    )
    .await;
    let alpine = push(
        &app,
        "app",
        "alpine",
        &[layer(
            &[
                os_release("alpine", "3.19.1"),
                file("lib/apk/db/installed", APK_INSTALLED),
            ],
            true,
        )],
    )
    .await;
    start_scan(&app, "app", &debian).await;
    start_scan(&app, "app", &alpine).await;
    run_scans(&app).await;
    assert_eq!(findings(&app, "app", &debian, 100).await.1.len(), 5);

    // A newer Debian database holding only the openssl advisory, fixed later.
    let newer = fixtures.path().join("debian-newer");
    write_records(
        &newer,
        &[advisory(
            "DSA-5532-2",
            &["CVE-2023-5363"],
            Some(V3_HIGH),
            vec![range("Debian:12", "openssl", fixed("3.0.11-1~deb12u3"))],
        )],
    );
    let summary = import(&app, &[&newer]).await;
    assert_eq!(summary.advisories.len(), 1);
    let sources = app.state.registry.advisory_sources().await.unwrap();
    let counts: Vec<(&str, u64)> = sources
        .iter()
        .map(|s| (s.source.as_str(), s.advisories))
        .collect();
    assert_eq!(counts, [("Alpine", 5), ("Debian", 1), ("Ubuntu", 1)]);

    let (page, stale) = findings(&app, "app", &debian, 100).await;
    assert_eq!(stale.len(), 5, "the old findings stand until a rescan");
    let description = page["imageScanStatus"]["description"].as_str().unwrap();
    assert!(description.contains("stale"), "{description}");
    let (page, _) = findings(&app, "app", &alpine, 100).await;
    let description = page["imageScanStatus"]["description"].as_str().unwrap();
    assert!(
        !description.contains("stale"),
        "Alpine was not imported again: {description}"
    );

    assert_eq!(app.state.registry.rescan_all().await.unwrap(), 2);
    run_scans(&app).await;
    let (page, fresh) = findings(&app, "app", &debian, 100).await;
    assert_eq!(
        fresh,
        expected(&[("CVE-2023-5363", "libssl3", "3.0.11-1~deb12u1", "HIGH")])
    );
    assert!(
        !page["imageScanStatus"]["description"]
            .as_str()
            .unwrap()
            .contains("stale")
    );

    // An import that cannot be read changes nothing.
    let broken = fixtures.path().join("broken");
    write_records(
        &broken,
        &[json!({"id": "X-1", "affected": [
        {"package": {"ecosystem": "Debian:12", "name": "x"}}]})],
    );
    std::fs::write(broken.join("zz.json"), "{ not json").unwrap();
    let failed = app
        .state
        .registry
        .import_advisories(vec![broken], &|_| {})
        .await
        .unwrap_err();
    assert!(failed.to_string().contains("zz.json"), "{failed}");
    let sources = app.state.registry.advisory_sources().await.unwrap();
    assert_eq!(
        sources
            .iter()
            .find(|s| s.source == "Debian")
            .unwrap()
            .advisories,
        1
    );
}

#[tokio::test]
async fn images_are_scanned_and_advisories_imported_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let app =
        TestApp::spawn_with(|config| *config = crate::common::config_for_dir(dir.path())).await;
    let fixtures = dir.path().join("osv");
    write_records(&fixtures.join("debian"), &debian_advisories());
    write_zip(&fixtures.join("alpine.zip"), &alpine_advisories());
    let debian = push(
        &app,
        "team/app",
        "12",
        &[layer(
            &[
                os_release("debian", "12"),
                file("var/lib/dpkg/status", DEBIAN_STATUS),
            ],
            true,
        )],
    )
    .await;

    let imported = wharf_beside_a_server(
        dir.path(),
        &[
            "vulndb",
            "import",
            fixtures.join("debian").to_str().unwrap(),
            fixtures.join("alpine.zip").to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(imported, "\
Alpine: 5 advisories (replacing earlier imports)
Debian: 12 advisories (replacing earlier imports)
Ubuntu: 1 advisory (replacing earlier imports)
imported 20 records: 18 kept, 1 withdrawn, 1 about no distribution scanned
findings of earlier scans are stale until `wharf scan --rescan-all` (or StartImageScan) scans their images again
");
    let listed = wharf_beside_a_server(dir.path(), &["vulndb", "list"]).await;
    let sources: Vec<&str> = listed
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(sources, ["Alpine", "Debian", "Ubuntu"], "{listed}");

    let table = wharf_beside_a_server(dir.path(), &["scan", "team/app:12"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], format!("team/app@{debian}: COMPLETE"));
    assert!(
        lines[1].starts_with("SEVERITY ") && lines[1].ends_with("CVSS"),
        "{table}"
    );
    let first: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        first,
        [
            "CRITICAL",
            "CVE-2023-1001",
            "zlib1g",
            "1:1.2.13.dfsg-1",
            "9.3"
        ],
        "{table}"
    );
    assert_eq!(lines.len(), 2 + 5 + 1, "{table}");
    assert_eq!(
        lines[7],
        "5 findings: CRITICAL 1, HIGH 1, LOW 1, MEDIUM 1, UNDEFINED 1"
    );

    let json = wharf_beside_a_server(
        dir.path(),
        &["scan", &format!("team/app@{debian}"), "--json"],
    )
    .await;
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["imageScanStatus"]["status"], "COMPLETE");
    assert_eq!(
        json["imageScanFindings"]["findings"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        json["imageScanFindings"]["findings"][0]["name"],
        "CVE-2023-1001"
    );

    let rescanned = wharf_beside_a_server(dir.path(), &["scan", "--rescan-all"]).await;
    assert_eq!(
        rescanned,
        "queued 1 images for a new scan; scanned here: 1 COMPLETE\n"
    );

    // The setting rescans after every import, as `--rescan` does.
    let debian_dir = fixtures.join("debian");
    let again = wharf_beside_a_server(
        dir.path(),
        &[
            "--rescan-after-import",
            "true",
            "vulndb",
            "import",
            debian_dir.to_str().unwrap(),
        ],
    )
    .await;
    assert!(
        again.ends_with("queued 1 images for a new scan; scanned here: 1 COMPLETE\n"),
        "{again}"
    );

    for (args, error) in [
        (&["scan", "team/app:nope"][..], "manifest unknown"),
        (
            &["scan", "team/app"][..],
            "REPOSITORY:TAG or REPOSITORY@DIGEST",
        ),
        (&["vulndb", "import", "/nonexistent"][..], "/nonexistent"),
    ] {
        let (ok, _, stderr) = wharf(dir.path(), args);
        assert!(!ok && stderr.contains(error), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn a_scan_that_fails_here_is_left_queued_for_the_workers() {
    use wharf::metadata::{ContentStore, ScanStore};
    let app = TestApp::spawn().await;
    let layer = layer(&[os_release("debian", "12")], true);
    let digest = push(&app, "lost", "1", std::slice::from_ref(&layer)).await;
    let layer_digest = crate::common::sha256(&layer);
    let store = app.store().await;
    let linked = store
        .linked_blob("lost", &layer_digest)
        .await
        .unwrap()
        .unwrap();
    let location = wharf::storage::BlobLocation {
        digest: &layer_digest.parse().unwrap(),
        key: linked.storage_key.as_deref(),
    };
    app.blob_store().await.delete(location).await.unwrap();

    let image = wharf::registry::ImageRef::Tag("1".parse().unwrap());
    let repo = "lost".parse().unwrap();
    let failed = app.state.registry.scan_now(&repo, &image).await;
    assert!(failed.is_err(), "the layer's bytes are gone");
    let now = wharf::metadata::now_millis();
    let queued = store
        .claim_scan("lost", &digest, now, now + 1_000)
        .await
        .unwrap();
    assert_eq!(
        queued.map(|request| request.attempts),
        Some(1),
        "free for a worker at once"
    );
}
