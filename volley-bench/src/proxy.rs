//! A byte-counting TCP proxy: what each system puts on the wire, counted at
//! the transport (TCP/IP headers excluded), the same way for every system.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
pub struct Counter {
    up: AtomicU64,
    down: AtomicU64,
}

impl Counter {
    pub fn snapshot(&self) -> (u64, u64) {
        (self.up.load(Ordering::SeqCst), self.down.load(Ordering::SeqCst))
    }

    /// Bytes client → server and server → client since `before`.
    pub fn since(&self, before: (u64, u64)) -> (u64, u64) {
        let now = self.snapshot();
        (now.0 - before.0, now.1 - before.1)
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: Arc<Counter>,
    up: bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        let c = if up { &count.up } else { &count.down };
        c.fetch_add(n as u64, Ordering::SeqCst);
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Listens on loopback and forwards every connection to `target`.
pub async fn counting(target: SocketAddr) -> (SocketAddr, Arc<Counter>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = Arc::new(Counter::default());
    let c = counter.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(target).await.unwrap();
            client.set_nodelay(true).unwrap();
            server.set_nodelay(true).unwrap();
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, c.clone(), true));
            tokio::spawn(pump(sr, cw, c.clone(), false));
        }
    });
    (addr, counter)
}
