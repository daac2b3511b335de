//! Event notifications: webhooks that receive, in EventBridge's shape for ECR, the pushes,
//! deletes, lifecycle expiries, finished scans and finished replications of the repositories
//! they ask for. An event queues its deliveries in its own transaction (see
//! `metadata::Notification`), so a request never waits for a receiver; the background job
//! (`jobs`) sends them, signed with `X-Wharf-Signature: sha256=<hex HMAC-SHA256 of the body>`,
//! and tries a failed one again with backoff, up to `MAX_ATTEMPTS`.

use std::time::Duration;

use aws_lc_rs::hmac;
use serde_json::{Value, json};

use super::{Error, Registry, Result, now};
use crate::metadata::{
    Delivery, DeliveryAttempt, DeliveryCounts, Millis, Notification, RegistryIdentity, Webhook,
};
use crate::secrets::{seal, unseal};

/// The kinds of event a webhook may ask for.
pub const EVENT_KINDS: &[&str] = &["push", "delete", "scan", "replication", "lifecycle"];
/// Deliveries sent at a time.
const BATCH: u32 = 32;
/// Attempts before a delivery is given up on; with the backoff below, about 20 minutes.
const MAX_ATTEMPTS: u32 = 8;
const FIRST_BACKOFF: Millis = 5_000;
const MAX_BACKOFF: Millis = 10 * 60 * 1000;
/// How long a receiver has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A webhook to add.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub repository_prefix: String,
}

/// What sealing a webhook's secret is bound to.
fn secret_purpose(id: &str) -> String {
    format!("webhook {id}")
}

/// `sha256=<hex HMAC-SHA256 of body with secret>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

/// The delivery's body: an EventBridge event as ECR sends them.
fn body(delivery: &Delivery, identity: &RegistryIdentity) -> Value {
    let detail_extra: Value = delivery
        .detail
        .as_deref()
        .and_then(|detail| serde_json::from_str(detail).ok())
        .unwrap_or(json!({}));
    let mut detail = json!({
        "repository-name": delivery.repository,
    });
    if let Some(digest) = &delivery.digest {
        detail["image-digest"] = json!(digest);
    }
    if let Some(tag) = &delivery.tag {
        detail["image-tag"] = json!(tag);
    }
    let detail_type = match delivery.kind.as_str() {
        "push" | "delete" => {
            detail["action-type"] = json!(delivery.kind.to_uppercase());
            detail["result"] = json!("SUCCESS");
            "ECR Image Action"
        }
        "lifecycle" => {
            detail["action-type"] = json!("EXPIRE");
            detail["result"] = json!("SUCCESS");
            detail["reason"] = detail_extra["reason"].clone();
            "ECR Lifecycle Policy Action"
        }
        "scan" => {
            detail["scan-status"] = detail_extra["scanStatus"].clone();
            detail["finding-severity-counts"] = detail_extra["findingSeverityCounts"].clone();
            "ECR Image Scan"
        }
        "replication" => {
            detail["action-type"] = json!("REPLICATE");
            detail["result"] = detail_extra["result"].clone();
            detail["destination-registry-id"] = detail_extra["destinationRegistryId"].clone();
            detail["destination-region"] = detail_extra["destinationRegion"].clone();
            "ECR Replication Action"
        }
        _ => "Wharf Webhook Test",
    };
    let time = time::OffsetDateTime::from_unix_timestamp(delivery.event_time / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    json!({
        "version": "0",
        "id": delivery.id,
        "detail-type": detail_type,
        "source": "aws.ecr",
        "account": identity.registry_id,
        "time": time,
        "region": identity.region,
        "resources": [format!(
            "arn:aws:ecr:{}:{}:repository/{}",
            identity.region, identity.registry_id, delivery.repository
        )],
        "detail": detail,
    })
}

impl Registry {
    /// Adds a webhook; returns its id and its signing secret, which is not shown again.
    pub async fn add_webhook(&self, new: NewWebhook) -> Result<(String, String)> {
        let invalid = |message: String| Err(Error::InvalidWebhook(message));
        let url = reqwest::Url::parse(&new.url).map_err(|e| Error::InvalidWebhook(e.to_string()));
        if !url.is_ok_and(|url| matches!(url.scheme(), "http" | "https")) {
            return invalid(format!("{:?} is not an http(s) URL", new.url));
        }
        let mut events = new.events;
        if events.is_empty() {
            events = EVENT_KINDS.iter().map(|kind| kind.to_string()).collect();
        }
        if let Some(unknown) = events.iter().find(|e| !EVENT_KINDS.contains(&e.as_str())) {
            return invalid(format!(
                "unknown event {unknown:?}: choose from {}",
                EVENT_KINDS.join(", ")
            ));
        }
        let id = format!("wh-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let secret = hex::encode(uuid::Uuid::new_v4().as_bytes())
            + &hex::encode(uuid::Uuid::new_v4().as_bytes());
        let key = self.settings.secrets_key.as_deref();
        let webhook = Webhook {
            id: id.clone(),
            url: new.url,
            events,
            repository_prefix: new.repository_prefix,
            secret: seal(key, &secret_purpose(&id), &secret),
            created_at: now(),
        };
        self.meta.add_webhook(&webhook).await?;
        Ok((id, secret))
    }

    pub async fn webhooks(&self) -> Result<Vec<(Webhook, DeliveryCounts)>> {
        Ok(self.meta.list_webhooks().await?)
    }

    /// Deletes the webhook and what it had not received; false if there was none.
    pub async fn delete_webhook(&self, id: &str) -> Result<bool> {
        Ok(self.meta.delete_webhook(id).await?)
    }

    /// Queues a test event for the webhook `id` and sends what is due; false if there is no
    /// such webhook.
    pub async fn test_webhook(&self, id: &str, identity: &RegistryIdentity) -> Result<bool> {
        let test = Notification {
            kind: "test",
            repository: "wharf/webhook-test",
            digest: None,
            tag: None,
            detail: None,
        };
        if !self.meta.queue_test_notification(id, &test, now()).await? {
            return Ok(false);
        }
        self.deliver_notifications(identity).await?;
        Ok(true)
    }

    /// Sends the deliveries due; returns how many were delivered and how many failed.
    pub async fn deliver_notifications(&self, identity: &RegistryIdentity) -> Result<(u64, u64)> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| Error::InvalidWebhook(e.to_string()))?;
        let (mut delivered, mut failed) = (0, 0);
        loop {
            let due = self.meta.due_deliveries(now(), BATCH).await?;
            if due.is_empty() {
                return Ok((delivered, failed));
            }
            for delivery in &due {
                let attempt = match self.send(&client, delivery, identity).await {
                    Ok(()) => {
                        delivered += 1;
                        DeliveryAttempt::Delivered
                    }
                    Err(error) => {
                        failed += 1;
                        tracing::warn!(
                            webhook = delivery.webhook_id,
                            delivery = delivery.id,
                            error,
                            "webhook delivery failed"
                        );
                        let retry_at = (delivery.attempts + 1 < MAX_ATTEMPTS).then(|| {
                            let backoff = FIRST_BACKOFF.saturating_mul(1 << delivery.attempts);
                            now() + backoff.min(MAX_BACKOFF)
                        });
                        DeliveryAttempt::Failed { error, retry_at }
                    }
                };
                self.meta.finish_delivery(delivery, &attempt, now()).await?;
            }
        }
    }

    async fn send(
        &self,
        client: &reqwest::Client,
        delivery: &Delivery,
        identity: &RegistryIdentity,
    ) -> std::result::Result<(), String> {
        let key = self.settings.secrets_key.as_deref();
        let secret = unseal(key, &secret_purpose(&delivery.webhook_id), &delivery.secret)?;
        let body = body(delivery, identity).to_string();
        let answer = client
            .post(&delivery.url)
            .header("content-type", "application/json")
            .header("x-wharf-signature", signature(&secret, body.as_bytes()))
            .header("x-wharf-delivery", &delivery.id)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {e}", delivery.url))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(format!("{} answered {}", delivery.url, answer.status()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hex_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
