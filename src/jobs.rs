//! Background work of a running server. Every node writes the pulls and audit records it
//! gathered each second,
//! and frees stale uploads and forgets old login-attempt windows each minute (any node may,
//! and doing it twice is harmless);
//! lifecycle policies and garbage collection run every `--lifecycle-interval` and
//! `--gc-interval`, the replication queue every `--replication-interval`, the scan queue
//! every `--scan-interval`, webhook deliveries every `--webhook-interval` and the audit
//! trail's purge with each collection, across the cluster,
//! by whichever node takes the job's lease in the database. A node holds the lease for one whole interval and does not give it back, so the
//! job runs once per interval however many nodes there are. A run longer than the interval
//! may overlap the next one on another node, which both jobs tolerate. Depends on `registry`
//! and `auth`.

use std::time::Duration;

use crate::http::AppState;
use crate::metadata::{Millis, now_millis as now};
use crate::registry::{AUDIT_FLUSH_INTERVAL, PULL_FLUSH_INTERVAL};

/// How often each node looks whether a job's lease is free.
const LEASE_CHECK: Duration = Duration::from_secs(60);

/// Runs every background job until the task is aborted.
pub async fn run(app: AppState) {
    let holder = uuid::Uuid::new_v4().to_string();
    let settings = app.registry.settings().clone();
    tokio::join!(
        write_pulls_periodically(&app),
        clean_up_periodically(app.clone()),
        under_lease(
            &app,
            &holder,
            "lifecycle",
            settings.lifecycle_interval,
            apply_lifecycles
        ),
        under_lease(&app, &holder, "gc", settings.gc_interval, collect_garbage),
        under_lease(
            &app,
            &holder,
            "replication",
            settings.replication_interval,
            replicate
        ),
        under_lease(&app, &holder, "scan", settings.scan_interval, scan),
        under_lease(&app, &holder, "webhooks", settings.webhook_interval, notify),
        // Cleaning up too: records past the retention go as often as garbage.
        under_lease(&app, &holder, "audit", settings.gc_interval, purge_audit),
    );
}

/// Writes the pulls and audit records this node gathered, every `PULL_FLUSH_INTERVAL`
/// (which is `AUDIT_FLUSH_INTERVAL` too).
async fn write_pulls_periodically(app: &AppState) {
    let mut tick = tokio::time::interval(PULL_FLUSH_INTERVAL.min(AUDIT_FLUSH_INTERVAL));
    loop {
        tick.tick().await;
        if let Err(e) = app.registry.flush_pulls().await {
            tracing::warn!(error = %e, "cannot write pull times; keeping them for the next try");
        }
        if let Err(e) = app.registry.flush_audit().await {
            tracing::warn!(error = %e, "cannot write audit records; keeping them for the next try");
        }
    }
}

/// Every minute: aborts stale uploads and frees orphaned staged bytes, and forgets ended
/// login-attempt windows.
async fn clean_up_periodically(app: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        match app.registry.purge_stale_uploads().await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "freed stale and orphaned uploads"),
            Err(e) => tracing::warn!(error = %e, "stale upload purge failed"),
        }
        if let Some(auth) = &app.auth
            && let Err(e) = auth.purge_login_attempts().await
        {
            tracing::warn!(error = %e, "login attempt purge failed");
        }
    }
}

/// Runs `job` whenever this node takes the lease `name` for one `interval`; never, if the
/// interval is zero.
async fn under_lease(
    app: &AppState,
    holder: &str,
    name: &str,
    interval: Duration,
    job: impl AsyncFn(&AppState) -> bool,
) {
    if interval.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(interval.min(LEASE_CHECK));
    let period = Millis::try_from(interval.as_millis()).unwrap_or(Millis::MAX);
    loop {
        tick.tick().await;
        let now = now();
        match app
            .registry
            .take_lease(name, holder, now, now.saturating_add(period))
            .await
        {
            Ok(true) => {
                let result = if job(app).await { "ok" } else { "failed" };
                app.metrics.job_run(kind_label(name), result);
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(job = name, error = %e, "cannot take the job's lease"),
        }
    }
}

/// The job's name as a metric label.
fn kind_label(name: &str) -> &'static str {
    match name {
        "lifecycle" => "lifecycle",
        "gc" => "gc",
        "replication" => "replication",
        "scan" => "scan",
        "audit" => "audit",
        "webhooks" => "webhooks",
        _ => "other",
    }
}

/// Each job says whether its run succeeded.
async fn apply_lifecycles(app: &AppState) -> bool {
    let logged = |repository: &str, expired: &[crate::registry::PreviewResult]| {
        for image in expired {
            tracing::info!(
                repository,
                digest = image.digest,
                rule = image.rule_priority,
                "lifecycle policy expired an image"
            );
        }
    };
    match app.registry.apply_all_lifecycles(now(), &logged).await {
        Ok(run) => {
            tracing::info!(
                repositories = run.repositories,
                expired = run.expired,
                "lifecycle policies applied"
            );
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "lifecycle run failed");
            false
        }
    }
}

async fn collect_garbage(app: &AppState) -> bool {
    match app.registry.collect_garbage(now(), false, &|_| {}).await {
        Ok(done) => {
            tracing::info!(
                links = done.links,
                blobs = done.blobs,
                bytes = done.bytes,
                uploads = done.uploads,
                "garbage collected"
            );
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "garbage collection failed");
            false
        }
    }
}

async fn replicate(app: &AppState) -> bool {
    match app.registry.replicate_due().await {
        Ok((0, 0)) => true,
        Ok((copied, failed)) => {
            tracing::info!(copied, failed, "replication queue worked");
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "replication run failed");
            false
        }
    }
}

async fn scan(app: &AppState) -> bool {
    match app.registry.run_scans(&|_| {}).await {
        Ok(run) if run.ended.is_empty() && run.retried == 0 => true,
        Ok(run) => {
            tracing::info!(ended = ?run.ended, retried = run.retried, "scan queue worked");
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "scan run failed");
            false
        }
    }
}

async fn purge_audit(app: &AppState) -> bool {
    let retention = app.registry.settings().audit_retention;
    match app.registry.purge_audit(retention).await {
        Ok(0) => true,
        Ok(purged) => {
            tracing::info!(purged, "audit records past their retention deleted");
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "audit purge failed");
            false
        }
    }
}

async fn notify(app: &AppState) -> bool {
    match app.registry.deliver_notifications(&app.ecr).await {
        Ok((0, 0)) => true,
        Ok((delivered, failed)) => {
            tracing::info!(delivered, failed, "webhook deliveries sent");
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "webhook deliveries failed");
            false
        }
    }
}
