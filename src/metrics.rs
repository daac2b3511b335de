//! The metrics Wharf exports at `/metrics`, in Prometheus' text format: what each part of the
//! server counts and times, kept in one registry per process. Labels are bounded by
//! construction: routes are endpoint kinds (never repository names), statuses are HTTP codes,
//! and the rest are fixed words. Depends on nothing else in Wharf.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of what [`Metrics::render`] writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StorageLabels {
    backend: &'static str,
    operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: &'static str,
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    kind: &'static str,
    result: &'static str,
}

type Timings<L> = Family<L, Histogram, fn() -> Histogram>;

/// Request and storage timings: from 0.5 ms to about 16 s.
fn timing() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric of this process.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Timings<RequestLabels>,
    bytes_received: Counter,
    bytes_sent: Counter,
    uploads_in_progress: Gauge,
    storage_seconds: Timings<StorageLabels>,
    db_connections: Family<StateLabels, Gauge>,
    jobs: Family<JobLabels, Gauge>,
    job_runs: Family<RunLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wharf");
        let requests = Family::default();
        let request_seconds = Timings::new_with_constructor(timing as fn() -> Histogram);
        let bytes_received = Counter::default();
        let bytes_sent = Counter::default();
        let uploads_in_progress = Gauge::default();
        let storage_seconds = Timings::new_with_constructor(timing as fn() -> Histogram);
        let db_connections = Family::default();
        let jobs = Family::default();
        let job_runs = Family::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route (endpoint kind) and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response's headers",
            request_seconds.clone(),
        );
        registry.register(
            "blob_bytes_received",
            "Blob bytes received in uploads",
            bytes_received.clone(),
        );
        registry.register(
            "blob_bytes_sent",
            "Blob bytes sent to clients",
            bytes_sent.clone(),
        );
        registry.register(
            "uploads_in_progress",
            "Uploads started and not yet finished or cancelled, across the cluster",
            uploads_in_progress.clone(),
        );
        registry.register(
            "storage_operation_duration_seconds",
            "Time blob storage operations take, by backend and operation",
            storage_seconds.clone(),
        );
        registry.register(
            "db_pool_connections",
            "This node's database connections, by state (idle, in_use, max)",
            db_connections.clone(),
        );
        registry.register(
            "jobs",
            "Background work queued across the cluster, by kind and state",
            jobs.clone(),
        );
        registry.register(
            "job_runs",
            "Background job runs on this node, by kind and result",
            job_runs.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            bytes_received,
            bytes_sent,
            uploads_in_progress,
            storage_seconds,
            db_connections,
            jobs,
            job_runs,
        }
    }
}

impl Metrics {
    pub fn request(&self, method: &'static str, route: &'static str, status: u16, took: Duration) {
        let labels = RequestLabels {
            method,
            route,
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.request_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub fn blob_bytes_received(&self, bytes: u64) {
        self.bytes_received.inc_by(bytes);
    }

    pub fn blob_bytes_sent(&self, bytes: u64) {
        self.bytes_sent.inc_by(bytes);
    }

    pub fn storage_operation(
        &self,
        backend: &'static str,
        operation: &'static str,
        took: Duration,
    ) {
        self.storage_seconds
            .get_or_create(&StorageLabels { backend, operation })
            .observe(took.as_secs_f64());
    }

    pub fn job_run(&self, kind: &'static str, result: &'static str) {
        self.job_runs
            .get_or_create(&RunLabels { kind, result })
            .inc();
    }

    /// Sets what is read when a scrape arrives: uploads, connections and queued work.
    pub fn set_state(&self, state: &StateSample) {
        self.uploads_in_progress.set(state.uploads_in_progress);
        for (name, count) in &state.db_connections {
            self.db_connections
                .get_or_create(&StateLabels { state: name })
                .set(*count);
        }
        for (kind, job_state, count) in &state.jobs {
            self.jobs
                .get_or_create(&JobLabels {
                    kind,
                    state: job_state,
                })
                .set(*count);
        }
    }

    /// Every metric in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// What a scrape reads from the database and pools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateSample {
    pub uploads_in_progress: i64,
    /// `idle`, `in_use`, `max`.
    pub db_connections: Vec<(&'static str, i64)>,
    /// Kind (`replication`, `scan`), state (`queued`, `failed`, …), count.
    pub jobs: Vec<(&'static str, &'static str, i64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_in_prometheus_text_with_bounded_labels() {
        let metrics = Metrics::default();
        metrics.request("GET", "manifest", 200, Duration::from_millis(3));
        metrics.request("GET", "manifest", 200, Duration::from_millis(5));
        metrics.blob_bytes_sent(1024);
        metrics.storage_operation("fs", "get", Duration::from_millis(1));
        metrics.job_run("gc", "ok");
        metrics.set_state(&StateSample {
            uploads_in_progress: 2,
            db_connections: vec![("idle", 3), ("in_use", 1)],
            jobs: vec![("scan", "queued", 4)],
        });
        let text = metrics.render();
        for line in [
            "wharf_http_requests_total{method=\"GET\",route=\"manifest\",status=\"200\"} 2",
            "wharf_http_request_duration_seconds_count{method=\"GET\",route=\"manifest\",status=\"200\"} 2",
            "wharf_blob_bytes_sent_total 1024",
            "wharf_blob_bytes_received_total 0",
            "wharf_uploads_in_progress 2",
            "wharf_storage_operation_duration_seconds_count{backend=\"fs\",operation=\"get\"} 1",
            "wharf_db_pool_connections{state=\"in_use\"} 1",
            "wharf_jobs{kind=\"scan\",state=\"queued\"} 4",
            "wharf_job_runs_total{kind=\"gc\",result=\"ok\"} 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
