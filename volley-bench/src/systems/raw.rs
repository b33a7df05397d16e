//! The floor: length-prefixed frames (a 4-byte little-endian length, then the
//! payload) over tokio TCP with TCP_NODELAY, no ids, no framework. Every loop
//! reads and writes in batches, as a hand-tuned server would.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Answers each `u32` frame with the `u32` plus one, batching replies.
async fn echo_loop(mut stream: TcpStream) {
    // 4 KiB, like a typical hand-written server; it is also what an idle
    // connection costs in the idle-memory scenario.
    let mut buf = vec![0u8; 4096];
    let (mut filled, mut out) = (0usize, Vec::new());
    loop {
        let n = match stream.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        filled += n;
        let mut at = 0;
        while filled - at >= 8 {
            let x = u32::from_le_bytes(buf[at + 4..at + 8].try_into().unwrap());
            out.extend_from_slice(&4u32.to_le_bytes());
            out.extend_from_slice(&x.wrapping_add(1).to_le_bytes());
            at += 8;
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        if stream.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
}

pub async fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            stream.set_nodelay(true).unwrap();
            tokio::spawn(echo_loop(stream));
        }
    });
    addr
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// One call on `stream`: write a frame, read the answer.
async fn call(stream: &mut TcpStream, x: u32) -> u32 {
    let mut frame = [0u8; 8];
    frame[..4].copy_from_slice(&4u32.to_le_bytes());
    frame[4..].copy_from_slice(&x.to_le_bytes());
    stream.write_all(&frame).await.unwrap();
    stream.read_exact(&mut frame).await.unwrap();
    u32::from_le_bytes(frame[4..].try_into().unwrap())
}

/// Sequential round trips; returns each one's time.
pub async fn rtt(stream: &mut TcpStream, n: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n as u32 {
        let start = Instant::now();
        assert_eq!(call(stream, i).await, i + 1);
        times.push(start.elapsed());
    }
    times
}

/// `total` calls with `inflight` outstanding at all times.
pub async fn pipelined(stream: &mut TcpStream, total: usize, inflight: usize) {
    let (mut sent, mut done) = (0usize, 0usize);
    let mut out = Vec::with_capacity(inflight * 8);
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending_bytes = 0usize;
    while done < total {
        while sent < total && sent - done < inflight {
            out.extend_from_slice(&4u32.to_le_bytes());
            out.extend_from_slice(&(sent as u32).to_le_bytes());
            sent += 1;
        }
        if !out.is_empty() {
            stream.write_all(&out).await.unwrap();
            out.clear();
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "server closed");
        pending_bytes += n;
        done += pending_bytes / 8;
        pending_bytes %= 8;
    }
}

/// The server calls the client: here the accepting side sends the requests
/// and the connecting side answers them.
pub async fn server_to_client(n: usize) -> Vec<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answering = tokio::spawn(async move { echo_loop(connect(addr).await).await });
    let (mut stream, _) = listener.accept().await.unwrap();
    stream.set_nodelay(true).unwrap();
    let times = rtt(&mut stream, n).await;
    drop(stream);
    let _ = answering.await;
    times
}
