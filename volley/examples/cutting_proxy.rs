//! A TCP relay that cuts every connection through it abruptly (a reset, no
//! goodbye) a while after it opens, as a phone switching networks or a load
//! balancer dropping a connection would: to watch the demo pair resume.
//!
//! ```text
//! cargo run --example server                                     # the demo server on 127.0.0.1:7777
//! cargo run --example cutting_proxy -- --to 127.0.0.1:7777 --listen 127.0.0.1:7778 --cut-after-ms 400
//! cargo run --example client -- --addr 127.0.0.1:7778 --rounds 8 # every check passes, cut after cut
//! ```
//!
//! Works for every transport on TCP (TCP, TLS, WebSocket): it relays bytes.

mod shared;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shared::arg;
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let to = arg("--to", "127.0.0.1:7777");
    let listener = TcpListener::bind(arg("--listen", "127.0.0.1:7778")).await?;
    let after = Duration::from_millis(arg("--cut-after-ms", "400").parse()?);
    println!(
        "cutting proxy on {} to {to}, cutting each connection after {after:?}",
        listener.local_addr()?
    );
    let cuts = Arc::new(AtomicU64::new(0));
    loop {
        let (mut front, peer) = listener.accept().await?;
        let (to, cuts) = (to.clone(), cuts.clone());
        tokio::spawn(async move {
            let Ok(mut back) = TcpStream::connect(&to).await else {
                eprintln!("could not reach {to}");
                return;
            };
            for socket in [&front, &back] {
                let _ = socket.set_nodelay(true);
                // Dropped with a reset, as a connection lost mid-flight.
                let _ = socket.set_zero_linger();
            }
            let relayed = tokio::io::copy_bidirectional(&mut front, &mut back);
            if tokio::time::timeout(after, relayed).await.is_err() {
                let n = cuts.fetch_add(1, Ordering::Relaxed) + 1;
                println!("cut {n}: the connection from {peer}");
            }
        });
    }
}
