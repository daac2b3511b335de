//! ECR's management API over HTTP: every operation against both backend pairs, errors in
//! `__type` shape, SigV4 with access keys. (The real aws CLI and boto3 drive the same API in
//! `tests/ecr/`.)

mod access;
mod repositories;
mod signatures;

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

impl TestApp {
    /// Calls `operation` unsigned (auth is off in these tests unless they turn it on).
    pub async fn ecr(&self, operation: &str, input: Value) -> Answer {
        let response = self
            .request(Method::POST, "/")
            .header("x-amz-target", format!("{TARGET}.{operation}"))
            .header("content-type", "application/x-amz-json-1.1")
            .body(input.to_string())
            .send()
            .await
            .unwrap();
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

    /// Creates a repository through the API and returns its `Repository` shape.
    pub async fn create_repository(&self, name: &str, extra: Value) -> Value {
        let mut input = serde_json::json!({ "repositoryName": name });
        if let (Value::Object(input), Value::Object(extra)) = (&mut input, extra) {
            input.extend(extra);
        }
        self.ecr("CreateRepository", input).await.ok()["repository"].clone()
    }
}
