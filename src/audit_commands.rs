//! The `wharf audit` command: the audit trail, newest first, filtered, as a table or as
//! CloudTrail-shaped JSON lines. Depends on `registry` and `config` only.

use crate::config::AuditArgs;
use crate::housekeeping::rfc3339;
use crate::metadata::{AuditCursor, AuditFilter};
use crate::registry::{MAX_AUDIT_PAGE, Registry, cloudtrail, parse_time};

/// `wharf audit [filters] [--json]`.
pub async fn audit(registry: &Registry, region: &str, args: AuditArgs) -> Result<(), String> {
    let filter = AuditFilter {
        since: args.since.as_deref().map(parse_time).transpose()?,
        until: args.until.as_deref().map(parse_time).transpose()?,
        user: args.user,
        repository: args.repository,
        event_name: args.event,
        failed: args.failed,
    };
    let mut left = args.limit;
    let mut after: Option<AuditCursor> = None;
    let mut shown = 0;
    while left > 0 {
        let (records, next) = registry
            .audit_events(&filter, after.as_ref(), left.min(MAX_AUDIT_PAGE))
            .await
            .map_err(|e| e.to_string())?;
        for record in &records {
            if args.json {
                println!("{}", cloudtrail(record, region));
                continue;
            }
            let who = match (&record.user_name, &record.access_key_id) {
                (Some(user), Some(key)) => format!("{user} ({key})"),
                (Some(user), None) => user.clone(),
                (None, Some(key)) => key.clone(),
                (None, None) => record.user_type.to_lowercase(),
            };
            println!(
                "{}  {:<24} {:<28} {:<15} {:<30} {}",
                rfc3339(record.event_time),
                record.event_name,
                who,
                record.source_ip.as_deref().unwrap_or("-"),
                record.repository.as_deref().unwrap_or("-"),
                record.error_code.as_deref().unwrap_or("ok"),
            );
        }
        shown += records.len();
        left -= records.len() as u32;
        match next {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    if !args.json {
        println!("{shown} records");
    }
    Ok(())
}
