//! The audit records of ECR API calls: every call, named by its operation, with its input as
//! `requestParameters` (less layer bytes and manifests, which are large and say nothing of who
//! did what) and, on failure, the exception's `__type` and message. Part of `ecr`.

use axum::http::HeaderMap;
use serde_json::Value;

use super::EcrError;
use super::operations::action_of;
use crate::App;
use crate::http::audit::header_text;
use crate::http::forwarded::Client;
use crate::metadata::AuditRecord;
use crate::registry::audit_record;

/// Input members left out of the record.
const LEFT_OUT: &[&str] = &["layerPartBlob", "imageManifest"];

/// The input as recorded: every member but those [`LEFT_OUT`], copied without them.
pub fn recorded(input: &Value) -> Value {
    match input {
        Value::Object(members) => Value::Object(
            members
                .iter()
                .filter(|(name, _)| !LEFT_OUT.contains(&name.as_str()))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What is known of a call before it is served.
pub struct Call {
    /// The operation, if it is one Wharf implements (a label chosen by Wharf, not the caller).
    operation: &'static str,
    access_key_id: Option<String>,
    source_ip: String,
    user_agent: Option<String>,
    request_id: Option<String>,
}

/// What serving a call learned: who signed it and what it asked.
#[derive(Default)]
pub struct Seen {
    pub user: Option<String>,
    pub input: Option<Value>,
    /// What the operation said of itself for the record (a push's tag moves).
    pub response_elements: Option<Value>,
}

impl Call {
    pub fn of(headers: &HeaderMap, client: &Client) -> Call {
        let text = |name: &str| header_text(headers, name);
        let operation = text("x-amz-target")
            .and_then(|target| target.rsplit_once('.').map(|(_, op)| op.to_string()))
            .and_then(|op| action_of(&op))
            .and_then(|action| action.strip_prefix("ecr:"))
            .unwrap_or("UnknownOperation");
        // `AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/ecr/aws4_request, …`
        let access_key_id = text("authorization").and_then(|value| {
            let credential = value.split("Credential=").nth(1)?;
            Some(credential.split('/').next()?.to_string())
        });
        Call {
            operation,
            access_key_id,
            source_ip: client.origin.address.to_string(),
            user_agent: text("user-agent"),
            request_id: text("x-request-id"),
        }
    }

    pub fn record(self, app: &App, seen: Seen, outcome: &Result<Value, EcrError>) {
        let input = seen.input;
        let repository = input
            .as_ref()
            .and_then(|input| input.get("repositoryName"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let response_elements = match outcome {
            Ok(_) => seen.response_elements.map(|elements| elements.to_string()),
            Err(_) => None,
        };
        let error = outcome.as_ref().err();
        app.registry.audit(AuditRecord {
            user_type: if seen.user.is_some() || self.access_key_id.is_some() {
                "IAMUser".into()
            } else {
                "Anonymous".into()
            },
            user_name: seen.user,
            access_key_id: self.access_key_id,
            source_ip: Some(self.source_ip),
            user_agent: self.user_agent,
            request_id: self.request_id,
            repository,
            request_parameters: input.map(|input| input.to_string()),
            response_elements,
            error_code: error.map(|e| e.kind().to_string()),
            error_message: error.map(|e| e.message().to_string()),
            ..audit_record(self.operation)
        });
    }
}
