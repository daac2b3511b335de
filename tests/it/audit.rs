//! The audit trail: each kind of record produced by what a user (or the registry itself) does,
//! read back with its user, access key, source address (behind a trusted proxy) and request
//! id; filters and pages through the registry, `GET /audit` and `wharf audit`; retention.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wharf::admin::{self, PolicyTarget};
use wharf::metadata::{AuditFilter, AuditRecord, AuditStore};

use crate::common::{ADMIN_PASSWORD, TestApp, auth_on, basic};

const PROXY_CLIENT: &str = "203.0.113.9";

async fn records(app: &TestApp, filter: AuditFilter) -> Vec<AuditRecord> {
    let (records, _) = app
        .state
        .registry
        .audit_events(&filter, None, 1000)
        .await
        .unwrap();
    records
}

async fn of_event(app: &TestApp, event: &str) -> Vec<AuditRecord> {
    let filter = AuditFilter {
        event_name: Some(event.into()),
        ..AuditFilter::default()
    };
    records(app, filter).await
}

fn parameters(record: &AuditRecord) -> Value {
    serde_json::from_str(record.request_parameters.as_deref().unwrap_or("{}")).unwrap()
}

#[tokio::test]
async fn every_kind_of_action_is_recorded_with_who_and_from_where() {
    let app = TestApp::spawn_with(|config| {
        auth_on(config);
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let store = app.store().await;
    admin::create_user(&*store, "ci", Some("ci-secret".into()))
        .await
        .unwrap();
    let policy = r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*",
        "Resource":"arn:aws:ecr:*:*:repository/team/*"}]}"#;
    admin::set_policy(&*store, &PolicyTarget::User("ci".into()), Some(policy))
        .await
        .unwrap();
    let (key_id, secret) = app.access_key("ci").await;
    let ci = basic(&key_id, &secret);
    let through_proxy = |method: Method, path: &str| {
        app.request(method, path)
            .header("authorization", &ci)
            .header("x-forwarded-for", PROXY_CLIENT)
            .header("user-agent", "audit-test/1.0")
    };

    // A push and a pull, with an access key, through the proxy.
    let layer = b"layer bytes".to_vec();
    let layer_digest = crate::common::sha256(&layer);
    let uploaded = through_proxy(
        Method::POST,
        &format!("/v2/team/app/blobs/uploads/?digest={layer_digest}"),
    )
    .body(layer.clone())
    .send()
    .await
    .unwrap();
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let config = br#"{}"#.to_vec();
    let config_digest = crate::common::sha256(&config);
    through_proxy(
        Method::POST,
        &format!("/v2/team/app/blobs/uploads/?digest={config_digest}"),
    )
    .body(config.clone())
    .send()
    .await
    .unwrap();
    let manifest = json!({
        "schemaVersion": 2, "mediaType": crate::common::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": crate::common::LAYER, "digest": layer_digest, "size": layer.len()}],
    });
    let pushed = through_proxy(Method::PUT, "/v2/team/app/manifests/v1")
        .header("content-type", crate::common::OCI_MANIFEST)
        .body(manifest.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), StatusCode::CREATED);
    let push_request_id = crate::common::header(&pushed, "x-request-id");
    let digest = crate::common::header(&pushed, "docker-content-digest");
    // A newer image beside it, for a lifecycle rule to keep.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut newer = manifest.clone();
    newer["annotations"] = json!({"build": "2"});
    for tag in ["v2", "v1"] {
        // v1 moves from the first image to the newer one.
        let pushed = through_proxy(Method::PUT, &format!("/v2/team/app/manifests/{tag}"))
            .header("content-type", crate::common::OCI_MANIFEST)
            .body(newer.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(pushed.status(), StatusCode::CREATED);
    }
    let pulled = through_proxy(Method::GET, "/v2/team/app/manifests/v1")
        .header("accept", crate::common::OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), StatusCode::OK);
    // Blob reads are folded into the manifest pull: not recorded apart.
    through_proxy(Method::GET, &format!("/v2/team/app/blobs/{layer_digest}"))
        .send()
        .await
        .unwrap();

    // Refused: ci may not read another team's repository; nobody may read without creds.
    let refused = through_proxy(Method::GET, "/v2/other/app/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let anonymous = app.get("/v2/team/app/tags/list").send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // The ECR API, signed with the key; a token for docker, with the key.
    app.ecr_signed(
        &(key_id.clone(), secret.clone()),
        "DescribeImages",
        json!({"repositoryName": "team/app"}),
    )
    .await
    .ok();
    // Through the ECR API too: v2 moves back to the first image.
    app.ecr_signed(
        &(key_id.clone(), secret.clone()),
        "PutImage",
        json!({"repositoryName": "team/app", "imageTag": "v2",
               "imageManifest": manifest.to_string()}),
    )
    .await
    .ok();
    let token = app
        .get("/token?service=wharf&scope=repository:team/app:pull")
        .header("authorization", &ci)
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::OK);

    // The registry's own: a lifecycle expiry, a collection.
    let keep_newest = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any",
        "countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
    let repo = "team/app".parse().unwrap();
    app.state
        .registry
        .put_lifecycle_policy(&repo, keep_newest)
        .await
        .unwrap();
    let expired = app
        .state
        .registry
        .apply_lifecycle(&repo, wharf::metadata::now_millis())
        .await
        .unwrap();
    assert_eq!(expired.len(), 1);
    app.state
        .registry
        .collect_garbage(wharf::metadata::now_millis(), false, &|_| {})
        .await
        .unwrap();

    // What the trail says.
    let pushes = of_event(&app, "PutImage").await;
    assert_eq!(pushes.len(), 4, "{pushes:#?}");
    let elements = |record: &AuditRecord| -> Value {
        serde_json::from_str(record.response_elements.as_deref().unwrap()).unwrap()
    };
    let newer_digest = crate::common::sha256(newer.to_string().as_bytes());
    assert_eq!(
        elements(&pushes[0])["tagMoves"],
        json!([{"imageTag": "v2", "previousImageDigest": newer_digest}]),
        "the ECR push's tag move with the digest it left"
    );
    assert_eq!(pushes[0].access_key_id.as_deref(), Some(key_id.as_str()));
    assert_eq!(
        elements(&pushes[1])["tagMoves"],
        json!([{"imageTag": "v1", "previousImageDigest": digest}]),
        "the tag move with the digest it left"
    );
    let push = &pushes[3];
    assert_eq!(push.user_type, "IAMUser");
    assert_eq!(push.user_name.as_deref(), Some("ci"));
    assert_eq!(push.access_key_id.as_deref(), Some(key_id.as_str()));
    assert_eq!(push.source_ip.as_deref(), Some(PROXY_CLIENT));
    assert_eq!(push.user_agent.as_deref(), Some("audit-test/1.0"));
    assert_eq!(push.request_id.as_deref(), Some(push_request_id.as_str()));
    assert_eq!(push.repository.as_deref(), Some("team/app"));
    assert_eq!(
        parameters(push),
        json!({"repositoryName": "team/app", "imageTag": "v1"})
    );
    let elements: Value = serde_json::from_str(push.response_elements.as_deref().unwrap()).unwrap();
    assert_eq!(elements["imageDigest"], digest);
    assert_eq!(push.error_code, None);

    let uploads = of_event(&app, "InitiateLayerUpload").await;
    assert_eq!(uploads.len(), 2);
    let uploaded: Value =
        serde_json::from_str(uploads[1].response_elements.as_deref().unwrap()).unwrap();
    assert_eq!(uploaded, json!({"layerDigest": layer_digest}));
    // One pull, its blob reads folded in; one pull refused, recorded with its error.
    let pulls = of_event(&app, "BatchGetImage").await;
    assert_eq!(pulls.len(), 2, "{pulls:#?}");
    let forbidden = &pulls[0];
    assert_eq!(forbidden.repository.as_deref(), Some("other/app"));
    assert_eq!(forbidden.error_code.as_deref(), Some("DENIED"));
    assert_eq!(forbidden.access_key_id.as_deref(), Some(key_id.as_str()));
    assert_eq!(pulls[1].error_code, None);
    assert_eq!(pulls[1].user_name.as_deref(), Some("ci"));
    let blind = app
        .get(&format!("/v2/team/app/blobs/{layer_digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(blind.status(), StatusCode::UNAUTHORIZED);
    let denied = of_event(&app, "AccessDenied").await;
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert_eq!(
        parameters(&denied[0]),
        json!({"repositoryName": "team/app", "layerDigest": layer_digest, "httpMethod": "GET"})
    );
    let unauthenticated = of_event(&app, "ListImages").await;
    assert_eq!(unauthenticated.len(), 1);
    assert_eq!(unauthenticated[0].user_type, "Anonymous");
    assert_eq!(
        unauthenticated[0].error_code.as_deref(),
        Some("UNAUTHORIZED")
    );

    let described = of_event(&app, "DescribeImages").await;
    assert_eq!(described.len(), 1);
    assert_eq!(described[0].user_name.as_deref(), Some("ci"));
    assert_eq!(described[0].access_key_id.as_deref(), Some(key_id.as_str()));
    assert_eq!(parameters(&described[0])["repositoryName"], "team/app");
    let tokens = of_event(&app, "GetAuthorizationToken").await;
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].access_key_id.as_deref(), Some(key_id.as_str()));
    assert_eq!(
        parameters(&tokens[0]),
        json!({"scope": ["repository:team/app:pull"]})
    );

    let expiry = of_event(&app, "PolicyExecutionEvent").await;
    assert_eq!(expiry.len(), 1);
    assert_eq!(expiry[0].user_type, "AWSService");
    assert_eq!(parameters(&expiry[0])["imageDigest"], digest);
    assert_eq!(parameters(&expiry[0])["rulePriority"], 1);
    let collected = of_event(&app, "CollectGarbage").await;
    assert_eq!(collected.len(), 1);

    // Filters: by user, by repository, failures only.
    let by_ci = records(
        &app,
        AuditFilter {
            user: Some("ci".into()),
            ..AuditFilter::default()
        },
    )
    .await;
    assert!(by_ci.iter().all(|r| r.user_name.as_deref() == Some("ci")));
    assert!(by_ci.len() >= 6, "{by_ci:#?}");
    let failed = records(
        &app,
        AuditFilter {
            failed: true,
            ..AuditFilter::default()
        },
    )
    .await;
    assert_eq!(failed.len(), 3, "{failed:#?}");
    // Newest first.
    let all = records(&app, AuditFilter::default()).await;
    assert!(all.windows(2).all(|w| w[0].event_time >= w[1].event_time));
    assert_eq!(all[0].event_name, "AccessDenied", "the last request");
}

#[tokio::test]
async fn the_trail_is_read_by_admins_over_http_and_from_the_cli_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(|config| {
        *config = crate::common::config_for_dir(dir.path());
        auth_on(config);
    })
    .await;
    let admin = basic("admin", ADMIN_PASSWORD);
    for tag in ["a", "b", "c"] {
        app.get(&format!("/v2/team/app/manifests/{tag}"))
            .header("authorization", &admin)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(
        app.get("/audit").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let page = |query: String| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let answer = app
                .get(&format!("/audit?{query}"))
                .header("authorization", admin)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::OK);
            answer.json::<Value>().await.unwrap()
        }
    };
    let first = page("event=BatchGetImage&limit=2&since=1h".into()).await;
    let records = first["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["requestParameters"]["imageTag"], "c");
    assert_eq!(records[0]["eventSource"], "ecr.amazonaws.com");
    assert_eq!(records[0]["userIdentity"]["userName"], "admin");
    assert_eq!(records[0]["errorCode"], "MANIFEST_UNKNOWN");
    let next = first["nextToken"].as_str().unwrap();
    let second = page(format!("event=BatchGetImage&limit=2&next={next}")).await;
    assert_eq!(second["records"].as_array().unwrap().len(), 1);
    assert_eq!(second["records"][0]["requestParameters"]["imageTag"], "a");
    assert!(second.get("nextToken").is_none());
    let bad = app
        .get("/audit?since=yesterday")
        .header("authorization", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    let json = crate::cli::wharf_beside_a_server(
        dir.path(),
        &["audit", "--event", "BatchGetImage", "--failed", "--json"],
    )
    .await;
    let lines: Vec<Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["requestParameters"]["imageTag"], "a");
    // A command's own actions are written before it exits.
    crate::cli::wharf_beside_a_server(dir.path(), &["gc"]).await;
    let collected =
        crate::cli::wharf_beside_a_server(dir.path(), &["audit", "--event", "CollectGarbage"])
            .await;
    assert!(collected.ends_with("\n1 record\n"), "{collected}");
    let table = crate::cli::wharf_beside_a_server(
        dir.path(),
        &["audit", "--repository", "team/app", "--limit", "2"],
    )
    .await;
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows[0].contains("BatchGetImage") && rows[0].contains("admin"),
        "{table}"
    );
    assert_eq!(rows[2], "2 records");
}

#[tokio::test]
async fn records_past_their_retention_are_purged() {
    let app = TestApp::spawn().await;
    let store = app.store().await;
    let now = wharf::metadata::now_millis();
    let day = 86_400_000;
    let record = |id: &str, age: i64| AuditRecord {
        event_id: id.into(),
        event_time: now - age,
        event_name: "PutImage".into(),
        user_type: "IAMUser".into(),
        ..AuditRecord::default()
    };
    store
        .append_audit(&[record("old", 91 * day), record("recent", 89 * day)])
        .await
        .unwrap();
    let retention = std::time::Duration::from_secs(90 * 86_400);
    assert_eq!(app.state.registry.purge_audit(retention).await.unwrap(), 1);
    let left = records(&app, AuditFilter::default()).await;
    let ids: Vec<&str> = left.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids, ["recent"]);
}

#[tokio::test]
async fn pulls_in_a_loop_are_one_record_that_counts_them() {
    let app = TestApp::spawn().await;
    app.push_image("team/app", "v1").await;
    for _ in 0..5 {
        let pulled = app
            .get("/v2/team/app/manifests/v1")
            .header("accept", crate::common::OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(pulled.status(), StatusCode::OK);
    }
    // Another caller's pull stays a record of its own.
    app.get("/v2/team/app/manifests/v1")
        .header("accept", crate::common::OCI_MANIFEST)
        .header("user-agent", "another-client")
        .send()
        .await
        .unwrap();
    let pulls = of_event(&app, "BatchGetImage").await;
    let mut requests: Vec<Value> = pulls
        .iter()
        .map(|record| {
            let elements: Value =
                serde_json::from_str(record.response_elements.as_deref().unwrap()).unwrap();
            elements["requests"].clone()
        })
        .collect();
    requests.sort_by_key(|count| count.as_u64());
    assert_eq!(requests, [Value::Null, json!(5)], "{pulls:#?}");
}
