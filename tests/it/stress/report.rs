//! What a run saw: requests per input class (or soak operation) with their status histograms,
//! latencies, and findings. Workers record into one shared [`Report`]; it prints a progress
//! line every ten seconds and the final report, findings grouped by what went wrong with the
//! first examples of each printed whole.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::monitor::Monitor;

/// Examples printed per kind of finding; the rest are counted.
const EXAMPLES: usize = 3;

/// Something wrong the run found.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The input class or soak operation.
    pub class: String,
    /// `5xx`, `hang`, `no answer`, `crash`, `memory`, `corrupt read`, `unexpected status`, …
    pub kind: String,
    /// What groups findings of one kind: the status and error code, say.
    pub signature: String,
    /// The request, as sent.
    pub request: String,
    /// What was wrong, in full.
    pub problem: String,
    /// How to run it again.
    pub replay: String,
}

#[derive(Default)]
struct ClassStats {
    cases: u64,
    requests: u64,
    statuses: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Inner {
    classes: BTreeMap<String, ClassStats>,
    requests: u64,
    latencies_us: Vec<u32>,
    findings: BTreeMap<(String, String, String), Vec<Finding>>,
    finding_count: u64,
}

pub struct Report {
    started: Instant,
    inner: Mutex<Inner>,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            started: Instant::now(),
            inner: Mutex::default(),
        }
    }
}

impl Report {
    /// One request of `class` answered `status` (`timeout`, `error` when there was no answer).
    pub fn request(&self, class: &str, status: &str, latency: Duration) {
        let mut inner = self.inner.lock().unwrap();
        inner.requests += 1;
        let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        inner.latencies_us.push(micros);
        let stats = inner.classes.entry(class.to_string()).or_default();
        stats.requests += 1;
        *stats.statuses.entry(status.to_string()).or_default() += 1;
    }

    /// One case of `class` (or one soak operation) done.
    pub fn case(&self, class: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner.classes.entry(class.to_string()).or_default().cases += 1;
    }

    pub fn finding(&self, finding: Finding) {
        let mut inner = self.inner.lock().unwrap();
        inner.finding_count += 1;
        let key = (
            finding.kind.clone(),
            finding.class.clone(),
            finding.signature.clone(),
        );
        // The first of each kind is shown as it happens; the report has them all.
        if !inner.findings.contains_key(&key) {
            println!(
                "!! {} in {}: {} — {}",
                finding.kind, finding.class, finding.signature, finding.request
            );
        }
        let examples = inner.findings.entry(key).or_default();
        // Past the examples, only the count matters; keep the vector small.
        if examples.len() < EXAMPLES {
            examples.push(finding);
        } else {
            examples.push(Finding {
                request: String::new(),
                problem: String::new(),
                ..finding
            });
        }
    }

    pub fn finding_count(&self) -> u64 {
        self.inner.lock().unwrap().finding_count
    }

    pub fn progress(&self, run: &str, monitor: &Monitor) {
        let inner = self.inner.lock().unwrap();
        let elapsed = self.started.elapsed().as_secs_f64();
        let cases: u64 = inner.classes.values().map(|c| c.cases).sum();
        println!(
            "[{run} {:>4.0} s] requests {} ({:.0}/s), cases {}, findings {}, {}",
            elapsed,
            inner.requests,
            inner.requests as f64 / elapsed.max(0.001),
            cases,
            inner.finding_count,
            monitor.describe(),
        );
    }

    /// The final report; `label` names the column of classes (`class` or `operation`).
    pub fn print(&self, run: &str, label: &str, monitor: &Monitor) {
        let mut inner = self.inner.lock().unwrap();
        let elapsed = self.started.elapsed().as_secs_f64();
        inner.latencies_us.sort_unstable();
        let latencies = &inner.latencies_us;
        let at = |q: f64| {
            let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
            latencies.get(i).map_or(0.0, |us| *us as f64 / 1000.0)
        };
        let mut out = String::new();
        let _ = writeln!(out, "\n== {run} report");
        let cases: u64 = inner.classes.values().map(|c| c.cases).sum();
        let _ = writeln!(
            out,
            "requests {} in {:.1} s ({:.1}/s); {} {}s in {} {}",
            inner.requests,
            elapsed,
            inner.requests as f64 / elapsed.max(0.001),
            cases,
            if label == "class" { "case" } else { "run" },
            inner.classes.len(),
            if label == "class" {
                "classes"
            } else {
                "operations"
            },
        );
        let _ = writeln!(
            out,
            "latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            at(0.5),
            at(0.99),
            at(1.0)
        );
        let _ = writeln!(out, "server: {}", monitor.describe());
        let _ = writeln!(out, "{label:<28} {:>7} {:>8}  statuses", "runs", "requests");
        for (name, stats) in &inner.classes {
            let statuses: Vec<String> = stats
                .statuses
                .iter()
                .map(|(status, n)| format!("{status}×{n}"))
                .collect();
            let _ = writeln!(
                out,
                "{name:<28} {:>7} {:>8}  {}",
                stats.cases,
                stats.requests,
                statuses.join(" ")
            );
        }
        let _ = writeln!(
            out,
            "findings: {} in {} kinds",
            inner.finding_count,
            inner.findings.len()
        );
        for (n, ((kind, class, signature), examples)) in inner.findings.iter().enumerate() {
            let _ = writeln!(
                out,
                "[{}] {kind} in {class}: {signature} (×{})",
                n + 1,
                examples.len()
            );
            for example in examples.iter().take(EXAMPLES) {
                let _ = writeln!(out, "    request: {}", example.request);
                let _ = writeln!(out, "    problem: {}", example.problem);
                let _ = writeln!(out, "    replay:  {}", example.replay);
            }
        }
        println!("{out}");
    }
}
