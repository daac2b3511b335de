//! The audit trail's writer and reader. Every node gathers records in memory and writes them in
//! one batch each `FLUSH_INTERVAL` (the `jobs` module calls [`Registry::flush_audit`]), so
//! that recording puts no database write, let alone an fsync, on a request's path: a node that
//! dies loses at most the records of its last second. When the database refuses a batch it is
//! kept for the next try, up to `MAX_PENDING` records, beyond which the oldest are dropped
//! with a warning. Identical pulls within one flush are folded into one record (see
//! [`AuditLog`]). Records older than the retention are purged by a background job.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Registry, Result, now};
use crate::metadata::{AuditCursor, AuditFilter, AuditRecord, Millis};

/// How often each node writes what it gathered.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Records a node keeps while the database refuses them.
const MAX_PENDING: usize = 100_000;

/// Records written per transaction.
const WRITE_CHUNK: usize = 64;

/// Largest page a query returns.
pub const MAX_AUDIT_PAGE: u32 = 1000;

/// Who the registry is when it acts on its own (lifecycle, collection, replication, caches,
/// scans): CloudTrail's `AWSService`, invoked by `ecr.amazonaws.com`.
pub const SERVICE: &str = "AWSService";

/// This node's records not yet written. Pulls of the same image by the same caller from the
/// same place with the same outcome, within one flush, are one record whose
/// `responseElements.requests` counts them: a client pulling in a loop is one line a second,
/// not thousands.
#[derive(Default)]
pub struct AuditLog {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    records: VecDeque<AuditRecord>,
    /// Pulls by what makes them alike, with how many there were.
    pulls: HashMap<PullKey, (AuditRecord, u64)>,
}

type PullKey = [Option<String>; 7];

/// What two pulls must share to be folded into one record.
fn pull_key(record: &AuditRecord) -> Option<PullKey> {
    (record.event_name == "BatchGetImage").then(|| {
        [
            record.user_name.clone(),
            record.access_key_id.clone(),
            record.source_ip.clone(),
            record.user_agent.clone(),
            record.request_parameters.clone(),
            record.response_elements.clone(),
            record.error_code.clone(),
        ]
    })
}

impl Pending {
    fn len(&self) -> usize {
        self.records.len() + self.pulls.len()
    }

    /// Everything pending, folded pulls with their counts, oldest first.
    fn drain(&mut self) -> Vec<AuditRecord> {
        let mut all: Vec<AuditRecord> = self.records.drain(..).collect();
        for (_, (mut record, count)) in self.pulls.drain() {
            if count > 1 {
                let mut elements: serde_json::Map<String, Value> = record
                    .response_elements
                    .as_deref()
                    .and_then(|text| serde_json::from_str(text).ok())
                    .unwrap_or_default();
                elements.insert("requests".into(), json!(count));
                record.response_elements = Some(Value::Object(elements).to_string());
            }
            all.push(record);
        }
        all.sort_by_key(|record| record.event_time);
        all
    }
}

/// A new record of `event_name`, now, with a fresh id; the caller fills in the rest.
pub fn audit_record(event_name: &str) -> AuditRecord {
    AuditRecord {
        event_id: uuid::Uuid::new_v4().to_string(),
        event_time: now(),
        event_name: event_name.to_string(),
        ..AuditRecord::default()
    }
}

impl AuditLog {
    fn push(&self, record: AuditRecord) {
        let mut pending = self.pending.lock().expect("audit log lock");
        if let Some(key) = pull_key(&record)
            && let Some((_, count)) = pending.pulls.get_mut(&key)
        {
            *count += 1;
            return;
        }
        if pending.len() >= MAX_PENDING {
            pending.records.pop_front();
            tracing::warn!("audit records pile up unwritten; dropping the oldest");
        }
        match pull_key(&record) {
            Some(key) => {
                pending.pulls.insert(key, (record, 1));
            }
            None => pending.records.push_back(record),
        }
    }
}

impl Registry {
    /// Records `record` in the audit trail (within a second, see the module).
    pub fn audit(&self, record: AuditRecord) {
        self.audit.push(record);
    }

    /// Records an action the registry took on its own.
    pub(super) fn audit_own(&self, event_name: &str, repository: Option<&str>, details: Value) {
        self.audit(AuditRecord {
            user_type: SERVICE.into(),
            user_name: Some("ecr.amazonaws.com".into()),
            repository: repository.map(str::to_string),
            request_parameters: Some(details.to_string()),
            ..audit_record(event_name)
        });
    }

    /// Writes what this node gathered; on failure keeps it for the next try. Returns how many
    /// records were written.
    pub async fn flush_audit(&self) -> Result<usize> {
        let batch = self.audit.pending.lock().expect("audit log lock").drain();
        // In short transactions, so that on SQLite pushes get the one writer in between.
        let mut written = 0;
        for chunk in batch.chunks(WRITE_CHUNK) {
            if let Err(e) = self.meta.append_audit(chunk).await {
                let mut pending = self.audit.pending.lock().expect("audit log lock");
                for record in batch[written..].iter().rev() {
                    pending.records.push_front(record.clone());
                }
                pending.records.truncate(MAX_PENDING);
                return Err(e.into());
            }
            written += chunk.len();
        }
        Ok(written)
    }

    /// A page of the records `filter` wants, newest first, after `after`; and where the next
    /// page starts, if there is one. This node's records are written first, so that a query
    /// sees what was just done.
    pub async fn audit_events(
        &self,
        filter: &AuditFilter,
        after: Option<&AuditCursor>,
        limit: u32,
    ) -> Result<(Vec<AuditRecord>, Option<AuditCursor>)> {
        self.flush_audit().await?;
        let limit = limit.clamp(1, MAX_AUDIT_PAGE);
        let mut records = self.meta.audit_events(filter, after, limit + 1).await?;
        let more = records.len() > limit as usize;
        records.truncate(limit as usize);
        let next = more
            .then(|| records.last())
            .flatten()
            .map(|last| AuditCursor {
                event_time: last.event_time,
                event_id: last.event_id.clone(),
            });
        Ok((records, next))
    }

    /// Deletes the records older than `retention`; returns how many.
    pub async fn purge_audit(&self, retention: Duration) -> Result<u64> {
        let kept = Millis::try_from(retention.as_millis()).unwrap_or(Millis::MAX);
        Ok(self.meta.purge_audit(now().saturating_sub(kept)).await?)
    }
}

/// A record in CloudTrail's shape, as `wharf audit --json` and `GET /audit` give it.
pub fn cloudtrail(record: &AuditRecord, region: &str) -> Value {
    let parsed = |text: &Option<String>| {
        text.as_deref()
            .map(|text| serde_json::from_str(text).unwrap_or(Value::String(text.to_string())))
    };
    let time =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(record.event_time) * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
    let service = record.user_type == SERVICE;
    let mut identity = json!({ "type": record.user_type });
    if let Some(user) = &record.user_name {
        identity[if service { "invokedBy" } else { "userName" }] = json!(user);
    }
    if let Some(key) = &record.access_key_id {
        identity["accessKeyId"] = json!(key);
    }
    let mut shaped = json!({
        "eventVersion": "1.08",
        "eventTime": time,
        "eventSource": "ecr.amazonaws.com",
        "eventName": record.event_name,
        "awsRegion": region,
        "userIdentity": identity,
        "eventType": if service { "AwsServiceEvent" } else { "AwsApiCall" },
        "eventID": record.event_id,
    });
    let optional = [
        (
            "sourceIPAddress",
            record.source_ip.clone().map(Value::String),
        ),
        ("userAgent", record.user_agent.clone().map(Value::String)),
        ("requestID", record.request_id.clone().map(Value::String)),
        ("requestParameters", parsed(&record.request_parameters)),
        ("responseElements", parsed(&record.response_elements)),
        ("errorCode", record.error_code.clone().map(Value::String)),
        (
            "errorMessage",
            record.error_message.clone().map(Value::String),
        ),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            shaped[name] = value;
        }
    }
    shaped
}

/// A time a query names: RFC 3339 (`2026-12-01T10:00:00Z`), or a time ago (`90s`, `15m`,
/// `2h`, `7d`).
pub fn parse_time(text: &str) -> std::result::Result<Millis, String> {
    let invalid =
        || format!("invalid time {text:?}: give RFC 3339 or a time ago such as 15m, 2h, 7d");
    if let Ok(at) =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Millis::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| invalid());
    }
    let split = text.len().checked_sub(1).ok_or_else(invalid)?;
    let (count, unit) = text.split_at(split);
    let count: i64 = count.parse().map_err(|_| invalid())?;
    let unit = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid()),
    };
    Ok(now().saturating_sub(count.saturating_mul(unit)))
}

/// The token of the page after `cursor`, and back.
pub fn cursor_token(cursor: &AuditCursor) -> String {
    format!("{}.{}", cursor.event_time, cursor.event_id)
}

pub fn parse_cursor_token(token: &str) -> std::result::Result<AuditCursor, String> {
    let (time, id) = token
        .split_once('.')
        .ok_or_else(|| format!("invalid page token {token:?}"))?;
    Ok(AuditCursor {
        event_time: time
            .parse()
            .map_err(|_| format!("invalid page token {token:?}"))?,
        event_id: id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_a_time_ago() {
        assert_eq!(parse_time("2026-12-01T00:00:00Z"), Ok(1_796_083_200_000));
        let ago = now() - parse_time("2h").unwrap();
        assert!((7_200_000..7_210_000).contains(&ago), "{ago}");
        for bad in ["", "h", "2w", "yesterday", "-"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn records_take_cloudtrails_shape() {
        let record = AuditRecord {
            user_type: "IAMUser".into(),
            user_name: Some("ci".into()),
            access_key_id: Some("WKA0123456789ABCDEFGH".into()),
            source_ip: Some("10.0.0.7".into()),
            request_parameters: Some(r#"{"repositoryName":"team/app"}"#.into()),
            error_code: Some("DENIED".into()),
            ..audit_record("PutImage")
        };
        let shaped = cloudtrail(&record, "eu-west-1");
        assert_eq!(shaped["eventName"], "PutImage");
        assert_eq!(shaped["eventSource"], "ecr.amazonaws.com");
        assert_eq!(shaped["awsRegion"], "eu-west-1");
        assert_eq!(
            shaped["userIdentity"],
            json!({"type": "IAMUser", "userName": "ci",
            "accessKeyId": "WKA0123456789ABCDEFGH"})
        );
        assert_eq!(shaped["requestParameters"]["repositoryName"], "team/app");
        assert_eq!(shaped["errorCode"], "DENIED");
        assert_eq!(shaped["eventID"], record.event_id);
        assert!(shaped.get("responseElements").is_none());
    }
}
