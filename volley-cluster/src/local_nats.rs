//! A nats-server process of one's own on a free loopback port, for tests,
//! examples and benchmarks: started from the `nats-server` binary on the
//! PATH (Debian: `apt-get install -y nats-server`), killed when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A nats-server child process on `127.0.0.1:<port>`.
#[derive(Debug)]
pub struct LocalNats {
    port: u16,
    binary: String,
    child: Option<Child>,
}

impl LocalNats {
    /// Starts one on a free port and waits (up to 10 s) until it accepts
    /// connections. Fails, saying how to install it, if there is no
    /// `nats-server` on the PATH (or in `/usr/sbin`).
    pub fn start() -> Result<Self, String> {
        let mut nats = Self {
            port: TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("no free port: {e}"))?
                .port(),
            binary: binary()?,
            child: None,
        };
        nats.restart()?;
        Ok(nats)
    }

    /// Its URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port, after [`stop`](Self::stop).
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary))?;
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err("nats-server did not accept connections within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
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
