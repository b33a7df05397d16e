//! Server memory per idle client: the clients live in a separate process (this
//! binary, re-run with `--idle-clients`), so only the server's memory is in
//! the figure. Kernel socket memory is reported apart, from /proc/net/sockstat.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::systems::{raw, rpc_volley};
use crate::{Better, Results};

/// Resident memory of this process, in bytes.
pub(crate) fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Pages of memory the kernel's TCP sockets hold, machine-wide.
fn tcp_kernel_pages() -> u64 {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    sockstat
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| {
            let words: Vec<_> = l.split_whitespace().collect();
            words
                .iter()
                .position(|w| *w == "mem")
                .and_then(|i| words.get(i + 1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The child: opens `n` idle connections, says "ready", waits for stdin to close.
pub fn client_process(args: &[String]) {
    let (system, addr, n) = (
        args[0].clone(),
        args[1].parse::<SocketAddr>().unwrap(),
        args[2].parse::<usize>().unwrap(),
    );
    let runtime = crate::runtime(2);
    runtime.block_on(async move {
        let mut volley_clients = Vec::new();
        let mut raw_streams = Vec::new();
        for _ in 0..n {
            match system.as_str() {
                "volley" => volley_clients.push(rpc_volley::client(addr).await),
                _ => raw_streams.push(raw::connect(addr).await),
            }
        }
        println!("ready");
        std::io::stdout().flush().unwrap();
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await
        .unwrap();
        drop((volley_clients, raw_streams));
    });
}

/// Per idle client: live heap (bytes allocated and not freed, counted by the
/// allocator), resident-set growth, and kernel socket memory.
async fn measure(system: &str, addr: SocketAddr, n: usize) -> (f64, f64, f64) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    crate::alloc::counting(true);
    let live0 = crate::alloc::live_bytes();
    let sizes0 = crate::alloc::live_by_size();
    let (rss0, kernel0) = (rss_bytes(), tcp_kernel_pages());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--idle-clients", system, &addr.to_string(), &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .await
        .unwrap();
    assert_eq!(line.trim(), "ready");
    // Let the server finish the handshakes and go idle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss1, kernel1) = (rss_bytes(), tcp_kernel_pages());
    let live = (crate::alloc::live_bytes() - live0) as f64 / n as f64;
    let sizes = crate::alloc::live_by_size();
    crate::alloc::counting(false);
    // Where the bytes go: each allocation size that at least every tenth
    // client holds, with how many per client.
    let mut by_size: Vec<(usize, f64)> = (sizes.iter().zip(&sizes0).enumerate())
        .map(|(size, (after, before))| (size, (after - before) as f64 / n as f64))
        .filter(|(_, per)| *per >= 0.1)
        .collect();
    by_size.sort_by(|a, b| (b.0 as f64 * b.1).partial_cmp(&(a.0 as f64 * a.1)).unwrap());
    let listed: Vec<String> = by_size
        .iter()
        .map(|(size, per)| format!("{size} B x {per:.2} = {:.0}", *size as f64 * per))
        .collect();
    eprintln!(
        "{system}: {live:.0} bytes per idle client, by allocation size: {}",
        listed.join("; ")
    );
    drop(child.stdin.take());
    child.wait().await.unwrap();
    // RSS after the warm-up round mostly reuses memory freed by it, so it
    // under-counts; the live heap is exact.
    let rss = rss1.saturating_sub(rss0) as f64 / n as f64;
    // Both ends' sockets are on this machine: halve for the server's share.
    let kernel = kernel1.saturating_sub(kernel0) as f64 * 4096.0 / n as f64 / 2.0;
    (live, rss, kernel)
}

pub async fn scenario(results: &mut Results, n: usize) {
    eprintln!("idle_memory: {n} idle clients from a separate process");
    let raw_addr = raw::serve().await;
    let (server, volley_addr) = rpc_volley::serve().await;
    // A first, discarded round grows the runtime's and the allocator's own
    // structures, which would otherwise be charged to whichever system runs first.
    measure("raw", raw_addr, n).await;
    measure("volley", volley_addr, n).await;
    let (raw_heap, raw_rss, raw_kernel) = measure("raw", raw_addr, n).await;
    let (volley_heap, volley_rss, volley_kernel) = measure("volley", volley_addr, n).await;
    assert!(server.player_count() <= n);
    for (system, heap, rss) in [("raw", raw_heap, raw_rss), ("volley", volley_heap, volley_rss)] {
        results.add("idle_memory", system, heap, "bytes/client", Some(Better::Lower));
        results.add("idle_rss", system, rss, "bytes/client", None);
    }
    results.add("idle_kernel_socket_memory", "raw", raw_kernel, "bytes/client", None);
    results.add(
        "idle_kernel_socket_memory",
        "volley",
        volley_kernel,
        "bytes/client",
        None,
    );
}
