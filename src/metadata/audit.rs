//! The audit trail: who did what, from where, and how it ended, in CloudTrail's terms.

use async_trait::async_trait;

use super::{MetaResult, Millis};

/// One recorded action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRecord {
    pub event_id: String,
    pub event_time: Millis,
    /// The ECR action (`PutImage`, `BatchGetImage`, …) or the registry's own (`ExpireImage`, …).
    pub event_name: String,
    /// `IAMUser`, `Anonymous` or `AWSService` (the registry itself).
    pub user_type: String,
    pub user_name: Option<String>,
    pub access_key_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub repository: Option<String>,
    /// JSON objects.
    pub request_parameters: Option<String>,
    pub response_elements: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// Which records a query wants; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// From this time on, inclusive.
    pub since: Option<Millis>,
    /// Before this time.
    pub until: Option<Millis>,
    pub user: Option<String>,
    pub repository: Option<String>,
    pub event_name: Option<String>,
    /// Only those that ended in an error.
    pub failed: bool,
}

/// Where a page of records, newest first, ended: the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCursor {
    pub event_time: Millis,
    pub event_id: String,
}

#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    async fn append_audit(&self, records: &[AuditRecord]) -> MetaResult<()>;

    /// Up to `limit` records `filter` wants, newest first, after `after`.
    async fn audit_events(
        &self,
        filter: &AuditFilter,
        after: Option<&AuditCursor>,
        limit: u32,
    ) -> MetaResult<Vec<AuditRecord>>;

    /// Deletes the records older than `before`; returns how many.
    async fn purge_audit(&self, before: Millis) -> MetaResult<u64>;
}
