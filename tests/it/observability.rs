//! What operators see: `/healthz` and `/readyz`, `/metrics` (open with auth off or
//! `--metrics-public`, else to `admin` only; counters that move with traffic, labels that stay
//! bounded however many repositories are touched), and the log lines of a real process (JSON
//! with the request id, user and route; no colour codes when standard error is no terminal).
//! `/readyz` during a database outage is checked in `faults::postgres`.

use std::collections::BTreeMap;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, TestApp, auth_on, basic};
use crate::process::ServerProcess;

/// `/metrics` as a map from series (name and labels) to value.
async fn scrape(app: &TestApp, authorization: Option<&str>) -> BTreeMap<String, f64> {
    let mut request = app.get("/metrics");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = crate::common::header(&response, "content-type");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

fn value(metrics: &BTreeMap<String, f64>, series: &str) -> f64 {
    *metrics.get(series).unwrap_or(&0.0)
}

#[tokio::test]
async fn metrics_follow_pushes_and_pulls_with_bounded_labels() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.get("/healthz").send().await.unwrap().status(),
        StatusCode::OK
    );
    let ready = app.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.text().await.unwrap(), "ready\n");

    let before = scrape(&app, None).await;
    let (_, _, layer) = app.push_image("team/app", "v1").await;
    let manifest = app
        .get("/v2/team/app/manifests/v1")
        .header("accept", crate::common::OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), StatusCode::OK);
    let layer_digest = crate::common::sha256(&layer);
    let pulled = app
        .get(&format!("/v2/team/app/blobs/{layer_digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.bytes().await.unwrap(), layer);

    let after = scrape(&app, None).await;
    let grew = |series: &str| value(&after, series) - value(&before, series);
    let requests = |method: &str, route: &str, status: u16| {
        format!(
            "wharf_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"
        )
    };
    assert_eq!(grew(&requests("PUT", "manifest", 201)), 1.0);
    assert_eq!(grew(&requests("GET", "manifest", 200)), 1.0);
    assert_eq!(grew(&requests("GET", "blob", 200)), 1.0);
    assert_eq!(
        grew(&requests("POST", "uploads", 201)),
        2.0,
        "config and layer"
    );
    let timed =
        "wharf_http_request_duration_seconds_count{method=\"GET\",route=\"blob\",status=\"200\"}";
    assert_eq!(grew(timed), 1.0);
    assert_eq!(grew("wharf_blob_bytes_sent_total"), layer.len() as f64);
    assert!(grew("wharf_blob_bytes_received_total") > layer.len() as f64);
    let backend = if app.on_s3() { "s3" } else { "fs" };
    let storage_get = format!(
        "wharf_storage_operation_duration_seconds_count{{backend=\"{backend}\",operation=\"get\"}}"
    );
    assert_eq!(grew(&storage_get), 1.0);
    assert!(value(&after, "wharf_db_pool_connections{state=\"max\"}") >= 1.0);
    assert_eq!(value(&after, "wharf_uploads_in_progress"), 0.0);
    assert!(after.contains_key("wharf_jobs{kind=\"scan\",state=\"queued\"}"));

    // A thousand repository names make no series of their own.
    let series_of = |metrics: &BTreeMap<String, f64>| metrics.len();
    futures::stream::iter(0..1000)
        .map(|n| {
            let app = &app;
            async move {
                let path = format!("/v2/many/repo{n}/manifests/latest");
                app.request(reqwest::Method::HEAD, &path)
                    .send()
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let many = scrape(&app, None).await;
    assert_eq!(
        grew_in(&many, &after, &requests("HEAD", "manifest", 404)),
        1000.0
    );
    // One new request series (HEAD manifest 404) with its histogram's buckets, sum and count.
    let new_series = series_of(&many) - series_of(&after);
    assert!(
        new_series <= 25,
        "{new_series} new series for 1000 repositories"
    );
}

fn grew_in(now: &BTreeMap<String, f64>, then: &BTreeMap<String, f64>, series: &str) -> f64 {
    value(now, series) - value(then, series)
}

#[tokio::test]
async fn metrics_are_for_admin_only_when_auth_is_on_unless_public() {
    let app = TestApp::spawn_with(auth_on).await;
    let refused = app.get("/metrics").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(crate::common::header(&refused, "www-authenticate").starts_with("Basic"));
    let admin = basic("admin", ADMIN_PASSWORD);
    scrape(&app, Some(&admin)).await;
    wharf::admin::create_user(&*app.store().await, "bob", Some("bob-secret".into()))
        .await
        .unwrap();
    let bob = app
        .get("/metrics")
        .header("authorization", basic("bob", "bob-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(bob.status(), StatusCode::FORBIDDEN);
    for open in ["/healthz", "/readyz"] {
        assert_eq!(
            app.get(open).send().await.unwrap().status(),
            StatusCode::OK,
            "{open}"
        );
    }

    let public = TestApp::spawn_with(|config| {
        auth_on(config);
        config.metrics_public = true;
    })
    .await;
    scrape(&public, None).await;
}

#[tokio::test]
async fn a_process_logs_request_lines_with_id_user_and_route() {
    let dir = tempfile::tempdir().unwrap();
    let env = |format: &str| {
        vec![
            ("WHARF_LISTEN", "127.0.0.1:0".to_string()),
            (
                "WHARF_DATA_DIR",
                dir.path().join(format).display().to_string(),
            ),
            // A line for every request's end comes from tower_http, at debug.
            ("WHARF_LOG", "info,tower_http=debug".to_string()),
            ("WHARF_LOG_FORMAT", format.to_string()),
        ]
    };
    let client = reqwest::Client::new();

    let json_server = ServerProcess::start(&env("json"));
    let answer = client
        .get(json_server.url("/v2/team/app/manifests/latest"))
        .send()
        .await
        .unwrap();
    let id = crate::common::header(&answer, "x-request-id");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let lines = json_server.log.lock().unwrap().clone();
    let parsed: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let request_line = parsed
        .iter()
        .find(|line| line["span"]["id"] == id.as_str() && line["status"].is_number())
        .unwrap_or_else(|| panic!("no line for request {id} in {lines:#?}"));
    assert_eq!(request_line["span"]["route"], "manifest", "{request_line}");
    assert_eq!(request_line["span"]["user"], "anonymous", "{request_line}");
    assert_eq!(request_line["status"], json!(404));

    let text_server = ServerProcess::start(&env("text"));
    client.get(text_server.url("/v2/")).send().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let lines = text_server.log.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|line| line.contains("route=base") && line.contains("user=anonymous")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().all(|line| !line.contains('\u{1b}')),
        "no colour codes on a pipe: {lines:#?}"
    );
}
