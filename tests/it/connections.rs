//! How connections are served, below HTTP's requests: a request followed by a half-close
//! is answered, HTTP/2 with prior knowledge (h2c) is served rather than left hanging, and an
//! answer given before the request's body was read closes the connection and says so.
//! These run the real binary: its features and runtime are what users get, and this test
//! binary's dependencies would otherwise switch on more of hyper than the server has.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::process::ServerProcess;

/// `wharf serve` on a fresh data directory.
fn server() -> (ServerProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("WHARF_LISTEN", "127.0.0.1:0".to_string()),
        ("WHARF_DATA_DIR", dir.path().display().to_string()),
        ("WHARF_LOG", "warn,wharf=info".into()),
    ];
    (ServerProcess::start(&env), dir)
}

/// Sends `bytes`, closes the sending side, and returns everything the server answers
/// before it closes the connection.
async fn exchange(server: &ServerProcess, bytes: &[u8]) -> Vec<u8> {
    let address = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes within 5 s")
        .unwrap();
    answer
}

#[tokio::test]
async fn a_request_followed_by_a_half_close_is_answered() {
    let (server, _dir) = server();
    let answer = exchange(&server, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let two = b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/_catalog HTTP/1.1\r\nHost: x\r\n\r\n";
    let answer = String::from_utf8_lossy(&exchange(&server, two).await).into_owned();
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served() {
    let (server, _dir) = server();
    let answer = exchange(&server, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    // The server's first frame is its SETTINGS: type 4 on stream 0.
    assert!(answer.len() >= 9, "{answer:?}");
    assert_eq!(answer[3], 4, "a SETTINGS frame first: {answer:?}");
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client.get(server.url("/v2/")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), reqwest::StatusCode::OK);
}

#[tokio::test]
async fn a_refusal_before_the_body_is_read_says_the_connection_closes() {
    let (server, _dir) = server();
    let body = vec![0u8; 32 * 1024];
    let mut request = b"POST /v2/refused/blobs/uploads/?digest=sha256:not-hex HTTP/1.1\r\n\
        Host: x\r\nContent-Length: 32768\r\n\r\n"
        .to_vec();
    request.extend_from_slice(&body);
    let answer = String::from_utf8_lossy(&exchange(&server, &request).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    // A request whose body was read keeps its connection.
    let data = b"kept";
    let digest = crate::common::sha256(data);
    let two = format!(
        "POST /v2/kept/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\n\
         Content-Length: 4\r\n\r\nkeptGET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    let answer = String::from_utf8_lossy(&exchange(&server, two.as_bytes()).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 201 "), "{answer}");
    assert!(!answer.contains("connection: close"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 2, "{answer}");
}
