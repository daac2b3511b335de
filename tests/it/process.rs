//! A real `wharf serve` process, for tests that need the binary users run rather than a
//! server inside the test: its address, its log lines, its warnings on the test's output, and
//! a kill.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

pub struct ServerProcess {
    child: Child,
    pub base: String,
    /// Every line it has logged so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `wharf serve` with these environment variables (which must include
    /// `WHARF_LISTEN` and `WHARF_LOG` at `info` for wharf, so that it prints its address) and
    /// waits until it listens. Its standard error is a pipe, as under a service manager.
    pub fn start(env: &[(&str, String)]) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wharf");
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = lines
                .next()
                .expect("wharf exited before listening")
                .unwrap();
            log.lock().unwrap().push(line.clone());
            // `address=…` in text, `"address":"…"` in JSON.
            let found =
                (line.split("address=").nth(1)).or_else(|| line.split("\"address\":\"").nth(1));
            if let Some(rest) = found {
                let end = rest.find(|c: char| c.is_whitespace() || c == '"');
                break rest[..end.unwrap_or(rest.len())].to_string();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe; show its problems.
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if line.contains("WARN") || line.contains("ERROR") {
                    eprintln!("wharf process: {line}");
                }
                kept.lock().unwrap().push(line);
            }
        });
        ServerProcess {
            child,
            base: format!("http://{address}"),
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: no graceful shutdown.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
