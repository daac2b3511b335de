//! The `wharf audit` and `wharf webhook` commands: the audit trail, newest first, filtered, as
//! a table or as CloudTrail-shaped JSON lines; and the webhooks that receive events, with how
//! their deliveries went. Depends on `registry` and `config` only.

use crate::config::{AuditArgs, WebhookAction};
use crate::housekeeping::rfc3339;
use crate::metadata::{AuditCursor, AuditFilter, RegistryIdentity};
use crate::registry::{MAX_AUDIT_PAGE, NewWebhook, Registry, cloudtrail, parse_time};

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
        println!("{shown} {}", if shown == 1 { "record" } else { "records" });
    }
    Ok(())
}

/// `wharf webhook add|list|delete|test`.
pub async fn webhook(
    registry: &Registry,
    identity: &RegistryIdentity,
    action: WebhookAction,
) -> Result<(), String> {
    let failed = |e: crate::registry::Error| e.to_string();
    match action {
        WebhookAction::Add {
            url,
            events,
            repository,
        } => {
            let new = NewWebhook {
                url,
                events: events
                    .map(|events| events.split(',').map(|e| e.trim().to_string()).collect())
                    .unwrap_or_default(),
                repository_prefix: repository.unwrap_or_default(),
            };
            let (id, secret) = registry.add_webhook(new).await.map_err(failed)?;
            println!("added webhook {id}");
            println!("signing secret: {secret}");
            println!(
                "(shown once: deliveries carry X-Wharf-Signature: sha256=<HMAC-SHA256 of the body>)"
            );
        }
        WebhookAction::List => {
            let webhooks = registry.webhooks().await.map_err(failed)?;
            if webhooks.is_empty() {
                println!("(no webhooks)");
            }
            for (webhook, counts) in webhooks {
                let prefix = match webhook.repository_prefix.as_str() {
                    "" => "every repository".to_string(),
                    prefix => format!("repositories {prefix}*"),
                };
                println!(
                    "{}\t{}\t{}\t{prefix}\tdelivered {}, pending {}, failed {}{}",
                    webhook.id,
                    webhook.url,
                    webhook.events.join(","),
                    counts.delivered,
                    counts.pending,
                    counts.failed,
                    counts
                        .last_error
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default(),
                );
            }
        }
        WebhookAction::Delete { id } => {
            if !registry.delete_webhook(&id).await.map_err(failed)? {
                return Err(format!("no webhook {id}"));
            }
            println!("deleted webhook {id}");
        }
        WebhookAction::Test { id } => {
            if !registry.test_webhook(&id, identity).await.map_err(failed)? {
                return Err(format!("no webhook {id}"));
            }
            let webhooks = registry.webhooks().await.map_err(failed)?;
            let counts = webhooks
                .into_iter()
                .find(|(webhook, _)| webhook.id == id)
                .map(|(_, counts)| counts)
                .unwrap_or_default();
            match (counts.pending, counts.last_error) {
                (0, _) => println!("delivered a test event to {id}"),
                (_, error) => {
                    return Err(format!(
                        "the test event was not delivered{}; it will be tried again",
                        error.map(|e| format!(": {e}")).unwrap_or_default()
                    ));
                }
            }
        }
    }
    Ok(())
}
