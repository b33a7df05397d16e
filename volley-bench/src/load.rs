//! Load and soak: thousands of clients, in a separate process, calling the
//! server and receiving its events, while the server's memory is sampled.
//!
//! ```text
//! cargo run --release -p volley-net-bench -- --load 10000 --seconds 60
//! cargo run --release -p volley-net-bench -- --load 2000 --seconds 600 --sample 10   # soak
//! ```
//!
//! Each client makes one call a second (at a random phase) and the server
//! fires one event a second to everyone. The server raises its handshake
//! deadline for the connection storm at start; everything else is default.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::idle::rss_bytes;
use crate::systems::rpc_volley;

/// The client process: connects `n` clients, says "connected", waits for
/// "go" on stdin, calls for `seconds`, prints its figures.
pub fn client_process(args: &[String]) {
    let addr: SocketAddr = args[0].parse().unwrap();
    let n: usize = args[1].parse().unwrap();
    let seconds: u64 = args[2].parse().unwrap();
    let runtime = crate::runtime(2);
    runtime.block_on(async move {
        let events = Arc::new(AtomicU64::new(0));
        let mut clients = Vec::with_capacity(n);
        let connect_start = Instant::now();
        for chunk in 0..n.div_ceil(100) {
            let batch = (chunk * 100..n.min((chunk + 1) * 100)).map(|_| {
                let events = events.clone();
                async move {
                    let client = rpc_volley::client(addr).await;
                    client.on_event(rpc_volley::NEWS, move |_, _| {
                        events.fetch_add(1, Ordering::Relaxed);
                    });
                    client
                }
            });
            clients.extend(futures_util::future::join_all(batch).await);
        }
        println!(
            "connected {} in {:.1} s",
            clients.len(),
            connect_start.elapsed().as_secs_f64()
        );
        std::io::stdout().flush().unwrap();
        let mut line = String::new();
        BufReader::new(tokio::io::stdin()).read_line(&mut line).await.unwrap();

        let latencies = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(seconds);
        let tasks: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(i, client)| {
                let (client, latencies, failures) = (client.clone(), latencies.clone(), failures.clone());
                tokio::spawn(async move {
                    // Spread the clients over the second.
                    tokio::time::sleep(Duration::from_micros((i as u64 * 1_000_000 / n as u64) % 1_000_000)).await;
                    let mut tick = tokio::time::interval(Duration::from_secs(1));
                    let mut mine = Vec::new();
                    while Instant::now() < until {
                        tick.tick().await;
                        let start = Instant::now();
                        match client.invoke(rpc_volley::ADD_ONE, i as u32).await {
                            Ok(_) => mine.push(start.elapsed()),
                            Err(_) => {
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    latencies.lock().unwrap().extend(mine);
                })
            })
            .collect();
        let started = Instant::now();
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let mut all = latencies.lock().unwrap().clone();
        all.sort();
        let at = |p: f64| all[((all.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6;
        let connected = clients.iter().filter(|c| c.is_connected()).count();
        println!(
            "result connected={connected} calls={} failures={} calls_per_s={:.0} p50_us={:.0} p99_us={:.0} events={}",
            all.len(),
            failures.load(Ordering::Relaxed),
            all.len() as f64 / elapsed,
            at(0.5),
            at(0.99),
            events.load(Ordering::Relaxed)
        );
        std::io::stdout().flush().unwrap();
    });
}

/// The server side: runs the server, drives the client process, samples memory.
pub async fn run(n: usize, seconds: u64, sample: u64) {
    let session = volley::SessionConfig::default().with_handshake_timeout(Duration::from_secs(60));
    let server = volley::Server::new(
        rpc_volley::protocol(),
        volley::ServerConfig::default().with_session(session),
    );
    server.on_request_sync(rpc_volley::ADD_ONE, |_, x: u32| Ok(x.wrapping_add(1)));
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let base = rss_bytes();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--load-clients",
            &addr.to_string(),
            &n.to_string(),
            &seconds.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let connected = lines.next_line().await.unwrap().unwrap_or_default();
    println!("client process: {connected}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_bytes();
    println!(
        "server: {} players, idle memory {:.0} bytes/client ({:.1} MiB total over the empty server)",
        server.player_count(),
        idle.saturating_sub(base) as f64 / n as f64,
        idle.saturating_sub(base) as f64 / (1 << 20) as f64
    );
    // From here on, count the heap: net bytes allocated tell a leak from
    // allocator fragmentation.
    crate::alloc::counting(true);
    let live_base = crate::alloc::live_bytes();
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"go\n").await.unwrap();

    // Events once a second to everyone; memory sampled every `sample` seconds.
    let start = Instant::now();
    let mut peak = 0u64;
    let mut next_sample = Duration::from_secs(sample);
    let payload = vec![7u8; 100];
    while start.elapsed() < Duration::from_secs(seconds) {
        let _ = server.fire_all(rpc_volley::NEWS, payload.clone());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = rss_bytes();
        peak = peak.max(rss);
        if start.elapsed() >= next_sample {
            println!(
                "t={:>4.0}s players={} server_rss={:.1} MiB ({:.0} bytes/client over the empty server) heap_growth={:+.1} KiB",
                start.elapsed().as_secs_f64(),
                server.player_count(),
                rss as f64 / (1 << 20) as f64,
                rss.saturating_sub(base) as f64 / n as f64,
                (crate::alloc::live_bytes() - live_base) as f64 / 1024.0
            );
            next_sample += Duration::from_secs(sample);
        }
    }
    crate::alloc::counting(false);
    let result = lines.next_line().await.unwrap().unwrap_or_default();
    println!("client process: {result}");
    println!(
        "server: busy peak memory {:.0} bytes/client ({:.1} MiB over the empty server)",
        peak.saturating_sub(base) as f64 / n as f64,
        peak.saturating_sub(base) as f64 / (1 << 20) as f64
    );
    drop(stdin);
    let _ = child.wait().await;
}
