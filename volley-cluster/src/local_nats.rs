//! A nats-server process of one's own on a free loopback port, for tests,
//! examples and benchmarks: started from the `nats-server` binary on the
//! PATH (Debian: `apt-get install -y nats-server`), killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A nats-server child process on `127.0.0.1:<port>`.
#[derive(Debug)]
pub struct LocalNats {
    port: u16,
    binary: String,
    child: Option<Child>,
}

impl LocalNats {
    /// Starts one on a port the server picks itself, and waits (up to 10 s)
    /// until it says it is ready. Fails, saying how to install it, if there
    /// is no `nats-server` on the PATH (or in `/usr/sbin`).
    ///
    /// The server picks the port: a port found free here and handed over
    /// could meanwhile become the local end of an outgoing connection, and a
    /// connection to it would then reach itself, not the broker.
    pub fn start() -> Result<Self, String> {
        let mut nats = Self {
            port: 0,
            binary: binary()?,
            child: None,
        };
        nats.launch("-1")?;
        Ok(nats)
    }

    /// Its URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port, after [`stop`](Self::stop).
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.launch(&self.port.to_string())
    }

    /// Runs nats-server on `port` (`-1`: its choice) and reads, from its
    /// log, where it listens once it is ready.
    fn launch(&mut self, port: &str) -> Result<(), String> {
        let mut child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", port])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary))?;
        let log = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the log to its end, so the server never blocks on it.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(log).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("Listening for client connections on ").nth(1) {
                    let port = addr.rsplit(':').next().and_then(|p| p.trim().parse::<u16>().ok());
                    if let (Some(tx), Some(port)) = (tx.take(), port) {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(port) => {
                self.port = port;
                Ok(())
            }
            Err(_) => {
                self.stop();
                Err(format!(
                    "nats-server did not start listening on port {port} within 10 s"
                ))
            }
        }
    }

    /// Kills it, as a crash would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The nats-server binary, or how to get one.
fn binary() -> Result<String, String> {
    for candidate in ["nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server"] {
        let runs = Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if runs {
            return Ok(candidate.to_string());
        }
    }
    Err(
        "nats-server not found: install it with `apt-get install -y nats-server` \
         (Debian's package) or put it on the PATH"
            .into(),
    )
}
