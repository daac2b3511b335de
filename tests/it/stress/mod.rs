//! Stress runs against a live `wharf serve` (started by `scripts/stress.sh`): a seeded black-box
//! HTTP fuzzer (`fuzz`) and a soak of concurrent pushes and pulls that checks every byte
//! (`soak`). Both are `#[ignore]`d and read their target from the environment:
//!
//! - `WHARF_STRESS_URL`: the server's base URL (unset: skipped, or a failure under `CI=true`)
//! - `WHARF_STRESS_PID`: its process, watched for crashes and memory (`VmRSS`, `VmHWM`)
//! - `WHARF_STRESS_SECONDS` (60), `WHARF_STRESS_SEED` (random, printed first),
//!   `WHARF_STRESS_MAX_RSS_MIB` (256)
//! - `WHARF_STRESS_USER` / `WHARF_STRESS_PASSWORD`: auth is on when set
//! - `WHARF_STRESS_BASIC_EVERY_REQUEST=1`: the soak sends Basic credentials on every request
//!   instead of following the token flow
//! - `WHARF_STRESS_CASE=<class>:<seed>`: the fuzzer replays this one case (printed with each
//!   finding)
//!
//! This file reads those settings. `report` counts requests and findings and prints them,
//! `monitor` watches the server process, `http` is the fuzzer's raw HTTP/1.1 client, `pool`
//! the valid content the fuzzer pushes first, `classes` its input classes (`raw` and
//! `raw_bodies` the ones on a bare TCP socket), `soak`, `soak_ops` and `soak_push`
//! the soak and its operations.

mod classes;
mod fuzz;
mod http;
mod monitor;
mod pool;
mod raw;
mod raw_bodies;
mod report;
mod soak;
mod soak_ops;
mod soak_push;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// A request that has no answer after this long is a hang.
pub const HANG: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Settings {
    /// Which run this is: `fuzz` or `soak`.
    pub run: &'static str,
    /// The base URL, without a trailing slash.
    pub url: String,
    pub addr: SocketAddr,
    /// `host:port`, for the `Host` header.
    pub host: String,
    pub pid: Option<u32>,
    pub duration: Duration,
    pub seed: u64,
    pub credentials: Option<(String, String)>,
    pub max_rss_mib: u64,
    pub basic_every_request: bool,
    /// A fuzz case to replay alone: its class and seed.
    pub case: Option<(String, u64)>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A number in decimal or `0x` hexadecimal.
pub fn parse_number(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

impl Settings {
    /// The settings of `run`, or `None` (after saying so) when no server is given. Under
    /// `CI=true` a missing server fails the test instead.
    pub fn from_env(run: &'static str) -> Option<Settings> {
        let Some(url) = var("WHARF_STRESS_URL") else {
            assert!(
                var("CI").is_none_or(|ci| ci != "true"),
                "CI=true but WHARF_STRESS_URL is not set (run scripts/stress.sh)"
            );
            eprintln!("skipped: WHARF_STRESS_URL is not set (see scripts/stress.sh)");
            return None;
        };
        let url = url.trim_end_matches('/').to_string();
        let host = url
            .split_once("://")
            .map_or(url.as_str(), |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let addr = host
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .unwrap_or_else(|| panic!("WHARF_STRESS_URL {url:?} names no reachable host:port"));
        let number = |name: &str, default: u64| {
            var(name).map_or(default, |v| {
                parse_number(&v).unwrap_or_else(|| panic!("{name}={v:?} is not a number"))
            })
        };
        let seed = var("WHARF_STRESS_SEED").map_or_else(
            || fastrand::u64(..),
            |v| parse_number(&v).unwrap_or_else(|| panic!("WHARF_STRESS_SEED={v:?}")),
        );
        let credentials = match (var("WHARF_STRESS_USER"), var("WHARF_STRESS_PASSWORD")) {
            (Some(user), Some(password)) => Some((user, password)),
            (None, None) => None,
            _ => panic!("set both WHARF_STRESS_USER and WHARF_STRESS_PASSWORD, or neither"),
        };
        Some(Settings {
            run,
            url,
            addr,
            host,
            pid: var("WHARF_STRESS_PID").map(|v| v.parse().expect("WHARF_STRESS_PID")),
            duration: Duration::from_secs(number("WHARF_STRESS_SECONDS", 60)),
            seed,
            credentials,
            max_rss_mib: number("WHARF_STRESS_MAX_RSS_MIB", 256),
            basic_every_request: var("WHARF_STRESS_BASIC_EVERY_REQUEST").is_some_and(|v| v == "1"),
            case: var("WHARF_STRESS_CASE").map(|v| {
                let (class, seed) = v.split_once(':').expect("WHARF_STRESS_CASE=<class>:<seed>");
                let seed = parse_number(seed).expect("WHARF_STRESS_CASE=<class>:<seed>");
                (class.to_string(), seed)
            }),
        })
    }

    pub fn auth_on(&self) -> bool {
        self.credentials.is_some()
    }

    /// `Basic …` for the configured user.
    pub fn basic(&self) -> Option<String> {
        let (user, password) = self.credentials.as_ref()?;
        Some(crate::common::basic(user, password))
    }

    /// The environment that reruns this run, for replay lines.
    pub fn replay(&self, case: Option<(&str, u64)>) -> String {
        let mut line = format!("WHARF_STRESS_SEED={:#x}", self.seed);
        if let Some((class, seed)) = case {
            line.push_str(&format!(" WHARF_STRESS_CASE={class}:{seed:#x}"));
        }
        if self.auth_on() {
            line.push_str(" WHARF_STRESS_USER=… WHARF_STRESS_PASSWORD=…");
        }
        if self.basic_every_request {
            line.push_str(" WHARF_STRESS_BASIC_EVERY_REQUEST=1");
        }
        format!(
            "{line} WHARF_STRESS_URL=… cargo test --test it -- --ignored --nocapture stress::{0}::{0}",
            self.run
        )
    }

    /// A short name for this run's content, so runs with other seeds do not collide.
    pub fn tag(&self) -> String {
        format!("s{:08x}", self.seed as u32)
    }

    /// The first line of a run: what it targets and how to replay it.
    pub fn announce(&self) {
        println!(
            "stress {}: seed {:#x}, {} s against {} (auth {}{}), pid {}, RSS bound {} MiB",
            self.run,
            self.seed,
            self.duration.as_secs(),
            self.url,
            if self.auth_on() { "on" } else { "off" },
            if self.basic_every_request {
                ", Basic on every request"
            } else {
                ""
            },
            self.pid.map_or("unknown".into(), |p| p.to_string()),
            self.max_rss_mib,
        );
        let case = self
            .case
            .as_ref()
            .map(|(class, seed)| (class.as_str(), *seed));
        println!("replay: {}", self.replay(case));
    }
}

/// SplitMix64: a well-mixed 64-bit value from another, for deriving per-worker and per-case
/// seeds from the run's seed.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `data` as text for a report: printable, at most `max` bytes, with the length when cut.
pub fn preview(data: &[u8], max: usize) -> String {
    let shown = String::from_utf8_lossy(&data[..data.len().min(max)]);
    let escaped: String = shown.chars().flat_map(char::escape_debug).collect();
    if data.len() > max {
        format!("\"{escaped}\"… ({} bytes)", data.len())
    } else {
        format!("\"{escaped}\"")
    }
}
