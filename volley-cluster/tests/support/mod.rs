//! What the cluster tests and the example share: a real nats-server on a
//! free loopback port, and a game protocol whose handlers reach players on
//! other nodes.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The nats-server binary, or why there is none.
pub fn nats_server_binary() -> Result<String, String> {
    for candidate in ["nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server"] {
        let found = Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if found {
            return Ok(candidate.to_string());
        }
    }
    Err(
        "nats-server not found: install it with `apt-get install -y nats-server` \
         (Debian's package) or put it on the PATH"
            .into(),
    )
}

/// A free loopback port (bound and released; nats-server takes it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A nats-server process of our own on loopback; killed when dropped.
pub struct Broker {
    pub port: u16,
    child: Option<Child>,
}

impl Broker {
    /// Starts one on a free port and waits until it accepts connections.
    pub fn start() -> Result<Self, String> {
        let mut broker = Self {
            port: free_port(),
            child: None,
        };
        broker.restart()?;
        Ok(broker)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port (after [`stop`](Self::stop)).
    pub fn restart(&mut self) -> Result<(), String> {
        let child = Command::new(nats_server_binary()?)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start nats-server: {e}"))?;
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err("nats-server did not start within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Kills it (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}
