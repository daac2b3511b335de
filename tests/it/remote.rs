//! Wharf as a client of other registries (`wharf::remote`), against real Wharf servers: one
//! with auth off, one with auth on and the Docker token flow, and a stub that asks for Basic.

use bytes::Bytes;
use serde_json::json;
use wharf::oci::Digest;
use wharf::remote::{Credentials, Remote, RemoteError};
use wharf::storage::ByteStream;

use crate::common::{ADMIN_PASSWORD, LAYER, OCI_MANIFEST, TestApp, auth_on};

/// `data` as a body arriving in pieces, as blob bytes stream from storage.
fn pieces(data: &[u8]) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

async fn read_all(mut stream: ByteStream) -> Vec<u8> {
    use futures::StreamExt;
    let mut all = Vec::new();
    while let Some(chunk) = stream.next().await {
        all.extend_from_slice(&chunk.unwrap());
    }
    all
}

fn admin() -> Option<Credentials> {
    Some(Credentials {
        username: "admin".into(),
        password: ADMIN_PASSWORD.into(),
    })
}

/// Pushes a config, a layer and an image manifest of them through `remote` as `repo:tag`,
/// then reads everything back through it.
async fn push_and_read_back(remote: &Remote, repo: &str, tag: &str) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    for blob in [&config, &layer] {
        let digest = Digest::sha256(blob);
        assert!(!remote.has_blob(repo, &digest).await.unwrap());
        let size = blob.len() as u64;
        remote
            .push_blob(repo, &digest, size, pieces(blob))
            .await
            .unwrap();
        assert!(remote.has_blob(repo, &digest).await.unwrap());
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": Digest::sha256(&config).to_string(), "size": config.len()},
        "layers": [{"mediaType": LAYER, "digest": Digest::sha256(&layer).to_string(),
                    "size": layer.len()}],
    });
    let content = Bytes::from(serde_json::to_vec(&manifest).unwrap());
    let digest = Digest::sha256(&content);
    assert!(!remote.has_manifest(repo, &digest).await.unwrap());
    remote
        .put_manifest(repo, tag, OCI_MANIFEST, content.clone())
        .await
        .unwrap();
    assert!(remote.has_manifest(repo, &digest).await.unwrap());

    let fetched = remote.get_manifest(repo, tag).await.unwrap().unwrap();
    assert_eq!(
        (
            fetched.media_type.as_str(),
            &fetched.digest,
            &fetched.content
        ),
        (OCI_MANIFEST, &digest, &content)
    );
    let (size, bytes) = remote
        .get_blob(repo, &Digest::sha256(&layer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(size, layer.len() as u64);
    assert_eq!(read_all(bytes).await, layer);
    assert!(remote.get_manifest(repo, "absent").await.unwrap().is_none());
    let absent = Digest::sha256(b"absent");
    assert!(remote.get_blob(repo, &absent).await.unwrap().is_none());
}

#[tokio::test]
async fn a_registry_without_auth_takes_and_serves_blobs_and_manifests() {
    let app = TestApp::spawn().await;
    let remote = Remote::new(&app.url(""), None).unwrap();
    remote.check().await.unwrap();
    push_and_read_back(&remote, "remote/plain", "v1").await;

    // Bytes that do not match their digest are refused by the remote, and said so.
    let claimed = Digest::sha256(b"claimed");
    let wrong = remote
        .push_blob("remote/plain", &claimed, 5, pieces(b"other"))
        .await;
    assert!(
        matches!(wrong, Err(RemoteError::Refused { .. })),
        "{wrong:?}"
    );
}

#[tokio::test]
async fn a_registry_with_the_token_flow_is_logged_into_per_repository() {
    let app = TestApp::spawn_with(auth_on).await;
    let remote = Remote::new(&app.url(""), admin()).unwrap();
    remote.check().await.unwrap();
    push_and_read_back(&remote, "remote/tokens", "v1").await;
    // A second repository needs a token of its own; the client fetches it by itself.
    push_and_read_back(&remote, "remote/other", "v2").await;

    let wrong = Remote::new(
        &app.url(""),
        Some(Credentials {
            username: "admin".into(),
            password: "not the password".into(),
        }),
    )
    .unwrap();
    let refused = wrong.check().await;
    assert!(
        matches!(refused, Err(RemoteError::Unauthorized { .. })),
        "{refused:?}"
    );
    let anonymous = Remote::new(&app.url(""), None).unwrap();
    let digest = Digest::sha256(b"anything");
    let denied = anonymous.has_blob("remote/tokens", &digest).await;
    assert!(
        matches!(denied, Err(RemoteError::Unauthorized { .. })),
        "{denied:?}"
    );
}

/// A registry that asks for Basic: `GET /v2/` answers 200 to `user:pass` only.
async fn basic_stub() -> String {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    let expected = crate::common::basic("user", "pass");
    let app = axum::Router::new().route(
        "/v2/",
        axum::routing::get(move |headers: HeaderMap| {
            let expected = expected.clone();
            async move {
                let given = headers.get(header::AUTHORIZATION);
                if given.is_some_and(|given| given.as_bytes() == expected.as_bytes()) {
                    StatusCode::OK.into_response()
                } else {
                    let challenge = [(header::WWW_AUTHENTICATE, r#"Basic realm="stub""#)];
                    (StatusCode::UNAUTHORIZED, challenge).into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

#[tokio::test]
async fn a_registry_that_asks_for_basic_gets_the_stored_credentials() {
    let url = basic_stub().await;
    let credentials = |password: &str| {
        Some(Credentials {
            username: "user".into(),
            password: password.into(),
        })
    };
    Remote::new(&url, credentials("pass"))
        .unwrap()
        .check()
        .await
        .unwrap();
    let refused = Remote::new(&url, credentials("wrong"))
        .unwrap()
        .check()
        .await;
    assert!(
        matches!(refused, Err(RemoteError::Unauthorized { .. })),
        "{refused:?}"
    );
    let none = Remote::new(&url, None).unwrap().check().await;
    assert!(
        matches!(none, Err(RemoteError::Unauthorized { .. })),
        "{none:?}"
    );
}

#[tokio::test]
async fn a_remote_that_is_down_or_not_a_url_is_said_to_be_so() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let down = Remote::new(&format!("http://{closed}"), None).unwrap();
    let answer = down.check().await;
    assert!(
        matches!(answer, Err(RemoteError::Unavailable { .. })),
        "{answer:?}"
    );
    assert!(Remote::new("ftp://example.com", None).is_err());
    assert!(Remote::new("example.com", None).is_err());
}
