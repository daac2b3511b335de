//! Watches the server process through `/proc/<pid>/status` every 100 ms: its resident memory
//! (`VmRSS`, and the kernel's own peak `VmHWM`) against the bound, and whether it is still
//! alive. Going over the bound or dying is a finding, reported once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::Settings;
use super::report::{Finding, Report};

pub struct Monitor {
    pid: Option<u32>,
    bound_kib: u64,
    rss_kib: AtomicU64,
    peak_kib: AtomicU64,
    hwm_kib: AtomicU64,
    dead: AtomicBool,
    over: AtomicBool,
    stopped: AtomicBool,
}

/// `VmRSS` and `VmHWM` in KiB, or `None` if the process is gone (or a zombie).
fn sample(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
    };
    let zombie = status
        .lines()
        .filter_map(|line| line.strip_prefix("State:"))
        .any(|state| matches!(state.trim_start().chars().next(), Some('Z' | 'X')));
    if zombie {
        return None;
    }
    Some((field("VmRSS:")?, field("VmHWM:").unwrap_or(0)))
}

impl Monitor {
    /// Starts sampling `settings.pid` (if given) into `report`.
    pub fn start(settings: &Settings, report: Arc<Report>) -> Arc<Monitor> {
        let monitor = Arc::new(Monitor {
            pid: settings.pid,
            bound_kib: settings.max_rss_mib * 1024,
            rss_kib: AtomicU64::new(0),
            peak_kib: AtomicU64::new(0),
            hwm_kib: AtomicU64::new(0),
            dead: AtomicBool::new(false),
            over: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        });
        if settings.pid.is_none() {
            println!("WHARF_STRESS_PID is not set: crashes and memory are not watched");
            return monitor;
        }
        let watcher = monitor.clone();
        let replay = settings.replay(None);
        let run = settings.run;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while !watcher.stopped.load(Ordering::Relaxed) {
                tick.tick().await;
                watcher.check(&report, run, &replay);
            }
        });
        monitor.check(&Report::default(), settings.run, "");
        monitor
    }

    fn check(&self, report: &Report, run: &str, replay: &str) {
        let Some(pid) = self.pid else { return };
        let finding = |kind: &str, signature: String, problem: String| Finding {
            class: format!("({run})"),
            kind: kind.into(),
            signature,
            request: "(the whole run)".into(),
            problem,
            replay: replay.to_string(),
        };
        match sample(pid) {
            Some((rss, hwm)) => {
                self.rss_kib.store(rss, Ordering::Relaxed);
                self.peak_kib.fetch_max(rss, Ordering::Relaxed);
                self.hwm_kib.fetch_max(hwm, Ordering::Relaxed);
                if rss > self.bound_kib && !self.over.swap(true, Ordering::Relaxed) {
                    report.finding(finding(
                        "memory",
                        format!("RSS above {} MiB", self.bound_kib / 1024),
                        format!(
                            "VmRSS {} MiB exceeds the bound of {} MiB",
                            rss / 1024,
                            self.bound_kib / 1024
                        ),
                    ));
                }
            }
            None => {
                if !self.dead.swap(true, Ordering::Relaxed) {
                    report.finding(finding(
                        "crash",
                        "server process exited".into(),
                        format!("/proc/{pid} is gone (or a zombie): the server died"),
                    ));
                }
            }
        }
    }

    /// Whether the server is still alive, as of the last sample.
    pub fn alive(&self) -> bool {
        !self.dead.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Peak RSS in MiB (sampled peak, and the kernel's high-water mark).
    pub fn peak_mib(&self) -> (f64, f64) {
        let mib = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1024.0;
        (mib(&self.peak_kib), mib(&self.hwm_kib))
    }

    pub fn describe(&self) -> String {
        if self.pid.is_none() {
            return "not watched".into();
        }
        let (peak, hwm) = self.peak_mib();
        let rss = self.rss_kib.load(Ordering::Relaxed) as f64 / 1024.0;
        format!(
            "RSS {rss:.1} MiB, peak {peak:.1} MiB (VmHWM {hwm:.1} MiB, bound {} MiB){}",
            self.bound_kib / 1024,
            if self.alive() { "" } else { ", DEAD" }
        )
    }
}
