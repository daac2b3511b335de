//! ECR's management API over HTTP: every operation against both backend pairs, errors in
//! `__type` shape, SigV4 with access keys. (The real aws CLI and boto3 drive the same API in
//! `tests/ecr/`.)

mod access;
mod authorization;
mod images;
mod layers;
mod lifecycle;
mod repositories;
mod signatures;

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use reqwest::Method;
use serde_json::Value;

use crate::common::{JsonBody, TestApp};

const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921";

/// The answer to one ECR call: its HTTP status and JSON body.
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// Asserts success and returns the output.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.status, 200, "ECR call failed: {}", self.body);
        self.body
    }

    /// Asserts an error of this `__type` with a message, as the SDKs read it.
    #[track_caller]
    pub fn error(self, kind: &str) -> Value {
        assert!(
            (400..500).contains(&self.status),
            "status {} for {}",
            self.status,
            self.body
        );
        assert_eq!(self.body["__type"], kind, "error body {}", self.body);
        assert!(self.body["message"].is_string(), "message in {}", self.body);
        self.body
    }
}

/// An access key to sign with, and the time to claim.
pub struct Signer<'a> {
    pub key_id: &'a str,
    pub secret: &'a str,
    pub at: SystemTime,
}

/// An access key id and its secret.
pub type Key = (String, String);

impl<'a> Signer<'a> {
    /// Signs with this key at the registry's time.
    pub fn now(key_id: &'a str, secret: &'a str) -> Signer<'a> {
        Signer {
            key_id,
            secret,
            at: SystemTime::now(),
        }
    }

    /// The `Authorization` header SigV4 gives a request with these headers and body.
    fn authorization(&self, url: &str, headers: &[(&str, String)], body: &[u8]) -> String {
        let identity: Identity =
            Credentials::new(self.key_id, self.secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("ecr")
            .time(self.at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            "POST",
            url,
            headers.iter().map(|(n, v)| (*n, v.as_str())),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let (headers, _) = instructions.into_parts();
        headers
            .iter()
            .find(|h| h.name() == "authorization")
            .map(|h| h.value().to_string())
            .unwrap()
    }
}

impl TestApp {
    /// Calls `operation` unsigned (auth is off in these tests unless they turn it on).
    pub async fn ecr(&self, operation: &str, input: Value) -> Answer {
        self.ecr_as(None, operation, input).await
    }

    /// Calls `operation` signed with `key`, now.
    pub async fn ecr_signed(
        &self,
        (key_id, secret): &Key,
        operation: &str,
        input: Value,
    ) -> Answer {
        self.ecr_as(Some(&Signer::now(key_id, secret)), operation, input)
            .await
    }

    /// A new access key of `user`.
    pub async fn access_key(&self, user: &str) -> Key {
        wharf::admin::create_key(&*self.store().await, user)
            .await
            .unwrap()
    }

    /// Calls `operation`, signed by `signer` if one is given.
    pub async fn ecr_as(
        &self,
        signer: Option<&Signer<'_>>,
        operation: &str,
        input: Value,
    ) -> Answer {
        let body = input.to_string();
        let request = match signer {
            Some(signer) => self.signed_request(signer, operation, &body),
            None => self.ecr_request(operation),
        };
        let response = request.body(body).send().await.unwrap();
        let status = response.status().as_u16();
        assert_eq!(
            crate::common::header(&response, "content-type"),
            "application/x-amz-json-1.1"
        );
        Answer {
            status,
            body: response.json_body().await,
        }
    }

    /// A request for `operation`, without a body yet.
    fn ecr_request(&self, operation: &str) -> reqwest::RequestBuilder {
        self.request(Method::POST, "/")
            .header("x-amz-target", format!("{TARGET}.{operation}"))
            .header("content-type", "application/x-amz-json-1.1")
    }

    /// A request for `operation` signed over `body` (which the caller then sends).
    pub fn signed_request(
        &self,
        signer: &Signer<'_>,
        operation: &str,
        body: &str,
    ) -> reqwest::RequestBuilder {
        let url = self.url("/");
        let host = url.trim_start_matches("http://").trim_end_matches('/');
        let date = time::OffsetDateTime::from(signer.at)
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap();
        let signed_headers = [
            ("x-amz-target", format!("{TARGET}.{operation}")),
            ("content-type", "application/x-amz-json-1.1".to_string()),
            ("host", host.to_string()),
            ("x-amz-date", date.clone()),
        ];
        let authorization = signer.authorization(&url, &signed_headers, body.as_bytes());
        self.ecr_request(operation)
            .header("x-amz-date", date)
            .header("authorization", authorization)
    }

    /// Creates a repository through the API and returns its `Repository` shape.
    pub async fn create_repository(&self, name: &str, extra: Value) -> Value {
        let mut input = serde_json::json!({ "repositoryName": name });
        if let (Value::Object(input), Value::Object(extra)) = (&mut input, extra) {
            input.extend(extra);
        }
        self.ecr("CreateRepository", input).await.ok()["repository"].clone()
    }
}
