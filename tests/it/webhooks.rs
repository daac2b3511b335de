//! Webhooks, against a receiver in the test: the events of the repositories a webhook asks
//! for, in EventBridge's shape, signed with its secret; a receiver that is down gets the same
//! delivery again once it is back; `wharf webhook` adds, lists, tests and deletes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::common::TestApp;

/// What a receiver got, and whether it is down.
#[derive(Default)]
struct Receiver {
    received: Mutex<Vec<(HeaderMap, String)>>,
    down: AtomicBool,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    receiver.received.lock().unwrap().push((headers, body));
    if receiver.down.load(Ordering::SeqCst) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// A receiver on a loopback port, and its URL.
async fn receiver() -> (Arc<Receiver>, String) {
    let receiver = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, url)
}

async fn deliver(app: &TestApp) -> (u64, u64) {
    app.state
        .registry
        .deliver_notifications(&app.state.ecr)
        .await
        .unwrap()
}

/// The bodies received, checked against their signatures.
fn bodies(receiver: &Receiver, secret: &str) -> Vec<Value> {
    let received = receiver.received.lock().unwrap();
    received
        .iter()
        .map(|(headers, body)| {
            let signature = headers["x-wharf-signature"].to_str().unwrap();
            let expected = wharf::registry::webhook_signature(secret, body.as_bytes());
            assert_eq!(signature, expected, "signed with the webhook's secret");
            serde_json::from_str(body).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn events_of_matching_repositories_arrive_signed_and_are_retried_until_received() {
    let app = TestApp::spawn().await;
    let (receiver, url) = receiver().await;
    let webhook = wharf::registry::NewWebhook {
        url,
        events: vec!["push".into(), "delete".into(), "scan".into()],
        repository_prefix: "team/".into(),
    };
    let (id, secret) = app.state.registry.add_webhook(webhook).await.unwrap();

    let (_, digest, _) = app.push_image("team/app", "v1").await;
    app.push_image("other/app", "v1").await;
    let deleted = app
        .request(
            reqwest::Method::DELETE,
            &format!("/v2/team/app/manifests/{digest}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    assert!(
        receiver.received.lock().unwrap().is_empty(),
        "nothing sent by a request"
    );
    assert_eq!(deliver(&app).await, (2, 0));

    let events = bodies(&receiver, &secret);
    let registry_id = &app.state.ecr.registry_id;
    assert_eq!(events[0]["detail-type"], "ECR Image Action");
    assert_eq!(events[0]["source"], "aws.ecr");
    assert_eq!(events[0]["account"], registry_id.as_str());
    assert_eq!(
        events[0]["detail"],
        json!({"action-type": "PUSH", "result": "SUCCESS", "repository-name": "team/app",
               "image-digest": digest, "image-tag": "v1"})
    );
    assert_eq!(
        events[0]["resources"],
        json!([format!(
            "arn:aws:ecr:us-east-1:{registry_id}:repository/team/app"
        )])
    );
    assert_eq!(events[1]["detail"]["action-type"], "DELETE");
    assert_eq!(events[1]["detail"]["image-digest"], digest);

    // Down: the delivery waits for its backoff, then arrives once the receiver is back.
    receiver.down.store(true, Ordering::SeqCst);
    let (_, scanned, _) = app.push_image("team/app", "v2").await;
    assert_eq!(deliver(&app).await, (0, 1));
    let listed = app.state.registry.webhooks().await.unwrap();
    let (_, counts) = listed.iter().find(|(w, _)| w.id == id).unwrap();
    assert_eq!((counts.pending, counts.delivered), (1, 2));
    assert!(
        counts.last_error.as_deref().unwrap().contains("503"),
        "{counts:?}"
    );
    assert_eq!(deliver(&app).await, (0, 0), "not again before its backoff");
    receiver.down.store(false, Ordering::SeqCst);
    app.sql("UPDATE webhook_deliveries SET next_attempt = 0 WHERE status = 'PENDING'")
        .await;
    assert_eq!(deliver(&app).await, (1, 0));
    let received = receiver.received.lock().unwrap().clone();
    let ids: Vec<&str> = received[2..]
        .iter()
        .map(|(headers, _)| headers["x-wharf-delivery"].to_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "the same delivery, again");
    drop(received);

    // A finished scan.
    let image = wharf::registry::ImageRef::Digest(scanned.parse().unwrap());
    let repo = "team/app".parse().unwrap();
    app.state
        .registry
        .start_image_scan(&repo, &image)
        .await
        .unwrap();
    app.state.registry.run_scans(&|_| {}).await.unwrap();
    assert_eq!(deliver(&app).await, (1, 0));
    let events = bodies(&receiver, &secret);
    let scan = events.last().unwrap();
    assert_eq!(scan["detail-type"], "ECR Image Scan");
    // push_image's layer is no tar: the scan fails, and says so.
    assert_eq!(scan["detail"]["scan-status"], "FAILED");
    assert_eq!(scan["detail"]["image-digest"], scanned);
}

#[tokio::test]
async fn webhooks_are_added_listed_tested_and_deleted_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let app =
        TestApp::spawn_with(|config| *config = crate::common::config_for_dir(dir.path())).await;
    let (receiver, url) = receiver().await;
    let run = |args: Vec<String>| {
        let dir = dir.path().to_path_buf();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::cli::wharf_beside_a_server(&dir, &args).await
        }
    };
    let args = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    let added = run(args(&["webhook", "add", "--url", &url, "--events", "push"])).await;
    let id = added
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let secret = added
        .lines()
        .nth(1)
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(id.starts_with("wh-"), "{added}");
    let refused = crate::cli::wharf(
        dir.path(),
        &["webhook", "add", "--url", &url, "--events", "pull"],
    );
    assert!(
        !refused.0 && refused.2.contains("unknown event \"pull\""),
        "{}",
        refused.2
    );

    let tested = run(args(&["webhook", "test", &id])).await;
    assert_eq!(tested, format!("delivered a test event to {id}\n"));
    let events = bodies(&receiver, &secret);
    assert_eq!(events[0]["detail-type"], "Wharf Webhook Test");
    let listed = run(args(&["webhook", "list"])).await;
    assert!(
        listed.starts_with(&format!(
            "{id}\t{url}\tpush\tevery repository\tdelivered 1, pending 0"
        )),
        "{listed}"
    );
    assert_eq!(
        run(args(&["webhook", "delete", &id])).await,
        format!("deleted webhook {id}\n")
    );
    assert_eq!(run(args(&["webhook", "list"])).await, "(no webhooks)\n");
    drop(app);
}
