//! Hostile clients on real loopback sockets. Each attack runs beside an honest
//! client whose calls must keep succeeding; each checks the server is still
//! up and its memory stayed under a stated bound, and prints one `ATTACK` line
//! with the honest client's latency before and during the attack and the
//! process's peak memory growth (`cargo test --test attacks -- --nocapture`).
//!
//! The attacks run one at a time (memory is measured for the whole process).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use volley::proto::{Message, PROTOCOL_VERSION};
use volley::*;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Samples RSS every 10 ms until stopped; reports the peak.
struct MemoryWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MemoryWatch {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss()));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Self {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.peak.load(Ordering::Relaxed)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Latency of sequential honest calls; every call must succeed.
async fn honest_calls(client: &Client, n: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        let r = client
            .invoke(
                BUY,
                Purchase {
                    item: "apple".into(),
                    gold: 10 + i as u32,
                },
            )
            .await;
        assert_eq!(r, Ok(i as u32), "an honest call failed during the attack");
        times.push(start.elapsed());
    }
    times.sort();
    times
}

/// Runs an attack beside an honest client and reports.
///
/// `attack` runs to completion while the honest client calls in a loop.
async fn under_attack<F, Fut>(name: &str, config: ServerConfig, max_growth_mib: u64, attack: F) -> (Server, SocketAddr)
where
    F: FnOnce(Server, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (server, addr, _, _) = tcp_server(config).await;
    let (honest, _probe) = tcp_client(addr).await;
    honest_calls(&honest, 50).await; // warm up
    let before = honest_calls(&honest, 300).await;
    let base_rss = rss();
    let watch = MemoryWatch::start();
    let attack = tokio::spawn(attack(server.clone(), addr));
    let mut during = Vec::new();
    while !attack.is_finished() {
        during.extend(honest_calls(&honest, 20).await);
    }
    attack.await.expect("the attack task itself failed");
    during.extend(honest_calls(&honest, 20).await);
    during.sort();
    let peak = watch.finish();
    let growth = peak.saturating_sub(base_rss);
    println!(
        "ATTACK {name:<28} honest p50/p99 before {:>6.0}/{:>6.0} µs, during {:>6.0}/{:>6.0} µs ({} calls); peak memory +{:.1} MiB",
        percentile(&before, 0.5).as_secs_f64() * 1e6,
        percentile(&before, 0.99).as_secs_f64() * 1e6,
        percentile(&during, 0.5).as_secs_f64() * 1e6,
        percentile(&during, 0.99).as_secs_f64() * 1e6,
        during.len(),
        growth as f64 / (1 << 20) as f64,
    );
    assert!(
        growth < max_growth_mib << 20,
        "{name}: memory grew by {} MiB, bound {max_growth_mib} MiB",
        growth >> 20
    );
    assert!(honest.is_connected(), "{name}: the honest client was disconnected");
    (server, addr)
}

/// A hand-written protocol peer: speaks raw frames.
struct Raw {
    stream: TcpStream,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.unwrap(),
        }
    }

    /// Connects and completes the handshake.
    async fn joined(addr: SocketAddr) -> Self {
        let mut raw = Self::connect(addr).await;
        raw.send(&Message::Hello {
            version: PROTOCOL_VERSION,
            remotes_hash: protocol().hash(),
            token: &b""[..],
        })
        .await;
        // A welcome frame: its length (one byte here), tag 1, the player id.
        let mut len = [0u8; 1];
        raw.stream.read_exact(&mut len).await.unwrap();
        let mut welcome = vec![0u8; usize::from(len[0])];
        raw.stream.read_exact(&mut welcome).await.unwrap();
        assert_eq!(welcome.first(), Some(&1), "expected a welcome frame, got {welcome:?}");
        raw
    }

    async fn send(&mut self, msg: &Message<&[u8]>) {
        let mut buf = Vec::new();
        msg.encode(&mut buf);
        let _ = self.stream.write_all(&buf).await;
    }

    /// Reads whatever arrives for `duration`.
    async fn read_for(&mut self, duration: Duration) -> Vec<u8> {
        let mut got = Vec::new();
        let _ = tokio::time::timeout(duration, async {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = self.stream.read(&mut buf).await {
                got.extend_from_slice(&buf[..n]);
            }
        })
        .await;
        got
    }

    /// Reads until the server closes; returns what it sent. Fails after `limit`.
    async fn closed_within(&mut self, limit: Duration) -> Vec<u8> {
        let mut got = Vec::new();
        tokio::time::timeout(limit, async {
            let mut buf = [0u8; 4096];
            loop {
                match self.stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await
        .expect("the server did not close the connection");
        got
    }
}

fn remote_id(name: &str) -> u32 {
    // Ids follow the names' sort order.
    let mut names = [
        "Buy",
        "Echo",
        "Slow",
        "QuickTimeout",
        "Unhandled",
        "Panics",
        "Number",
        "Chat",
        "Prompt",
        "ClientSlow",
        "ClientUnhandled",
        "ClientPanics",
        "Announce",
    ];
    names.sort();
    names.iter().position(|n| *n == name).unwrap() as u32
}

#[tokio::test]
async fn raw_garbage_bytes() {
    let _serial = ONE_AT_A_TIME.lock().await;
    // Junk that starts like a long frame waits for the handshake deadline.
    let config =
        ServerConfig::default().with_session(SessionConfig::default().with_handshake_timeout(Duration::from_secs(1)));
    under_attack("raw garbage", config, 64, |_, addr| async move {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..50 {
            let mut raw = Raw::connect(addr).await;
            let junk: Vec<u8> = (0..65_536)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = raw.stream.write_all(&junk).await;
            raw.closed_within(Duration::from_secs(3)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn truncated_frame_then_silence() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let session = SessionConfig::default()
        .with_handshake_timeout(Duration::from_millis(500))
        .with_idle_timeout(Duration::from_secs(1))
        .with_keep_alive_interval(Duration::from_millis(300));
    let config = ServerConfig::default().with_session(session);
    under_attack("truncated frame, silence", config, 64, |_, addr| async move {
        // Before the handshake: half a hello, then nothing.
        let mut early = Raw::connect(addr).await;
        early.stream.write_all(&[40, 0, 1, 2]).await.unwrap();
        // After the handshake: half a request, then nothing. Partial frames are
        // not traffic, so the idle timeout still applies.
        let mut late = Raw::joined(addr).await;
        late.stream.write_all(&[100, 4, 0, 0]).await.unwrap();
        let start = Instant::now();
        early.closed_within(Duration::from_secs(3)).await;
        assert!(start.elapsed() < Duration::from_secs(2));
        late.closed_within(Duration::from_secs(4)).await;
    })
    .await;
}

#[tokio::test]
async fn length_prefix_of_two_to_the_sixty() {
    let _serial = ONE_AT_A_TIME.lock().await;
    under_attack(
        "length prefix 2^60",
        ServerConfig::default(),
        64,
        |_, addr| async move {
            for _ in 0..100 {
                let mut raw = Raw::joined(addr).await;
                // varint of 2^60: nine bytes
                raw.stream
                    .write_all(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10])
                    .await
                    .unwrap();
                let said = raw.closed_within(Duration::from_secs(2)).await;
                assert!(String::from_utf8_lossy(&said).contains("exceeds the limit"), "{said:?}");
            }
        },
    )
    .await;
}

#[tokio::test]
async fn frame_just_over_the_max_size() {
    let _serial = ONE_AT_A_TIME.lock().await;
    under_attack(
        "frame of max + 1 bytes",
        ServerConfig::default(),
        64,
        |_, addr| async move {
            for _ in 0..20 {
                let mut raw = Raw::joined(addr).await;
                let mut frame = Vec::new();
                let body = vec![3u8; (1 << 20) + 1]; // an event body one byte too long
                Message::Event {
                    remote: 0,
                    payload: &body[1..],
                }
                .encode(&mut frame);
                let _ = raw.stream.write_all(&frame).await;
                raw.closed_within(Duration::from_secs(2)).await;
            }
        },
    )
    .await;
}

#[tokio::test]
async fn slowloris_500_handshakes_that_never_finish() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let config =
        ServerConfig::default().with_session(SessionConfig::default().with_handshake_timeout(Duration::from_secs(1)));
    under_attack("slowloris x500", config, 96, |server, addr| async move {
        let mut sockets = Vec::new();
        for _ in 0..500 {
            let mut raw = Raw::connect(addr).await;
            raw.stream.write_all(&[30, 0]).await.unwrap(); // the start of a hello, never the rest
            sockets.push(raw);
        }
        let start = Instant::now();
        for raw in &mut sockets {
            raw.closed_within(Duration::from_secs(5)).await;
        }
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "all closed near the 1 s deadline"
        );
        assert_eq!(server.player_count(), 1, "only the honest client joined");
    })
    .await;
}

#[tokio::test]
async fn request_flood_beyond_in_flight_and_rate_limits() {
    let _serial = ONE_AT_A_TIME.lock().await;
    under_attack(
        "request flood x100k",
        ServerConfig::default(),
        64,
        |server, addr| async move {
            server.admit_for(SLOW, volley::middleware::RateLimit::per_second(100.0));
            // One hostile client sends 100,000 slow calls without waiting for answers.
            let mut raw = Raw::joined(addr).await;
            let slow = remote_id("Slow");
            let payload = postcard::to_allocvec(&5_000u64).unwrap();
            let mut batch = Vec::new();
            for id in 0..100_000u32 {
                Message::Request {
                    id,
                    remote: slow,
                    payload: &payload[..],
                }
                .encode(&mut batch);
                if batch.len() > 64 * 1024 {
                    if raw.stream.write_all(&batch).await.is_err() {
                        break;
                    }
                    batch.clear();
                }
            }
            // Read what came back: the answers are Overloaded or RateLimited, at once.
            let said = raw.read_for(Duration::from_secs(2)).await;
            let mut buf = bytes::BytesMut::from(&said[..]);
            let mut refused = 0;
            while let Ok(Some(msg)) = volley::proto::codec::decode_frame(&mut buf, 1 << 20) {
                if let Message::Response { status, .. } = msg {
                    assert!(
                        matches!(
                            status,
                            volley::proto::Status::Overloaded
                                | volley::proto::Status::RateLimited
                                | volley::proto::Status::Cancelled
                        ),
                        "{status:?}"
                    );
                    refused += 1;
                }
            }
            assert!(refused > 1000, "only {refused} refusals seen");
        },
    )
    .await;
}

#[tokio::test]
async fn maximal_payloads_at_a_high_rate_hit_the_byte_budget() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let budget = volley::ByteBudget::per_second(1 << 20).with_burst(2 << 20);
    let config = ServerConfig::default().with_receive_budget(budget);
    under_attack("1 MiB frames, byte budget", config, 96, |_, addr| async move {
        let mut raw = Raw::joined(addr).await;
        let body = vec![0u8; (1 << 20) - 16];
        let mut frame = Vec::new();
        Message::Event {
            remote: remote_id("Chat"),
            payload: &body[..],
        }
        .encode(&mut frame);
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < Duration::from_secs(3) {
            match tokio::time::timeout(Duration::from_millis(200), raw.stream.write_all(&frame)).await {
                Ok(Ok(())) => sent += frame.len() as u64,
                Ok(Err(_)) => break,
                Err(_) => {} // blocked: the server stopped reading, as it should
            }
        }
        // 3 s at 1 MiB/s + 2 MiB burst, plus what the two socket buffers hold.
        let allowed = (5u64 << 20) + (40 << 20);
        assert!(sent < allowed, "attacker pushed {} MiB in 3 s", sent >> 20);
        println!(
            "  attacker got {} MiB through in 3 s against a 1 MiB/s budget",
            sent >> 20
        );
    })
    .await;
}

#[tokio::test]
async fn a_hundred_thousand_calls_to_a_client_that_never_answers() {
    let _serial = ONE_AT_A_TIME.lock().await;
    under_attack(
        "100k calls, silent client",
        ServerConfig::default(),
        64,
        |server, addr| async move {
            let mut raw = Raw::joined(addr).await;
            // It reads everything (so it is not "too slow") and answers nothing.
            let reader = tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while matches!(raw.stream.read(&mut buf).await, Ok(n) if n > 0) {}
            });
            let player = loop {
                if let Some(p) = server.players().into_iter().max_by_key(|p| p.id()) {
                    break p;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            let (mut timeouts, mut overloaded) = (0, 0);
            for _ in 0..100 {
                let calls = (0..1000).map(|_| {
                    server.invoke_with_timeout(&player, PROMPT, "answer me".into(), Duration::from_millis(20))
                });
                for r in futures_util::future::join_all(calls).await {
                    match r {
                        Err(FunctionError::Timeout) => timeouts += 1,
                        Err(FunctionError::Overloaded) => overloaded += 1,
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
            assert_eq!(timeouts + overloaded, 100_000, "every call ended");
            assert!(
                timeouts <= 64,
                "timed-out calls keep their slot until answered: {timeouts}"
            );
            reader.abort();
        },
    )
    .await;
}

#[tokio::test]
async fn a_client_that_never_reads_while_events_pour_in() {
    let _serial = ONE_AT_A_TIME.lock().await;
    under_attack(
        "client never reads",
        ServerConfig::default(),
        96,
        |server, addr| async move {
            let raw = Raw::joined(addr).await; // never reads again
            let player = loop {
                if let Some(p) = server.players().into_iter().max_by_key(|p| p.id()) {
                    break p;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            let line = "x".repeat(1000);
            let start = Instant::now();
            let mut fired = 0u64;
            while player.is_connected() {
                assert!(start.elapsed() < Duration::from_secs(20), "never disconnected");
                for _ in 0..100 {
                    if server.fire(&player, ANNOUNCE, line.clone()).is_ok() {
                        fired += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            println!(
                "  disconnected as too slow after {fired} events ({} MiB)",
                (fired * 1000) >> 20
            );
            drop(raw);
        },
    )
    .await;
}

#[tokio::test]
async fn connect_disconnect_churn() {
    let _serial = ONE_AT_A_TIME.lock().await;
    under_attack("churn x2000", ServerConfig::default(), 64, |server, addr| async move {
        for _ in 0..40 {
            let wave = (0..50).map(|_| async move {
                let client = Client::new(protocol(), ClientConfig::default());
                client.connect_tcp(addr).await.unwrap();
                client.disconnect();
            });
            futures_util::future::join_all(wave).await;
        }
        eventually("churned players gone", || server.player_count() == 1).await;
    })
    .await;
}

/// Sends `prefix` on a joined connection, then writes `frame` over and over
/// without ever reading, for `seconds` at most. Returns the bytes the server
/// took and whether it stopped the attacker: its writes block for a second
/// (the server stopped reading) or the connection closed.
async fn flood_without_reading(addr: SocketAddr, prefix: &[u8], frame: &[u8], seconds: u64) -> (u64, bool) {
    let mut raw = Raw::joined(addr).await;
    raw.stream.write_all(prefix).await.unwrap();
    let batch = frame.repeat((16_384 / frame.len()).max(1));
    let start = Instant::now();
    let mut sent = 0u64;
    let mut blocked_since: Option<Instant> = None;
    while start.elapsed() < Duration::from_secs(seconds) {
        match tokio::time::timeout(Duration::from_millis(100), raw.stream.write_all(&batch)).await {
            Ok(Ok(())) => {
                sent += batch.len() as u64;
                blocked_since = None;
            }
            Ok(Err(_)) => return (sent, true),
            Err(_) => {
                if blocked_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(1) {
                    return (sent, true);
                }
            }
        }
    }
    (sent, false)
}

/// Runs [`flood_without_reading`] beside an honest client: the server's
/// memory may not follow the flood (12 MiB at most, socket buffers are the
/// kernel's), and the attacker must be stopped or disconnected.
async fn flood_attack(name: &'static str, prefix: Vec<u8>, frame: Vec<u8>) {
    let _serial = ONE_AT_A_TIME.lock().await;
    under_attack(name, ServerConfig::default(), 12, move |_, addr| async move {
        let (sent, stopped) = flood_without_reading(addr, &prefix, &frame, 10).await;
        println!(
            "  {name}: the server read {} MiB, then stopped the attacker: {stopped}",
            sent >> 20
        );
        assert!(
            stopped,
            "{name}: the attacker was neither stopped nor disconnected in 10 s"
        );
        // What the server reads before it stops: its output limit's worth of
        // input plus the kernel's buffers, not the flood (a closing
        // connection drains at most 64 KiB from a peer still sending).
        assert!(
            sent < 64 << 20,
            "{name}: the server read {} MiB before stopping",
            sent >> 20
        );
    })
    .await;
}

fn encoded(msg: Message<&[u8]>) -> Vec<u8> {
    let mut frame = Vec::new();
    msg.encode(&mut frame);
    frame
}

#[tokio::test]
async fn ping_flood_that_never_reads() {
    flood_attack("ping flood, never reads", Vec::new(), encoded(Message::Ping { seq: 1 })).await;
}

#[tokio::test]
async fn request_flood_past_the_in_flight_limit_that_never_reads() {
    // 64 slow calls fill the in-flight limit; every call after is answered
    // Overloaded at once (so its id is free again at once).
    let payload = postcard::to_allocvec(&60_000u64).unwrap();
    let slow = remote_id("Slow");
    let prefix: Vec<u8> = (0..64u32)
        .flat_map(|id| {
            encoded(Message::Request {
                id,
                remote: slow,
                payload: &payload,
            })
        })
        .collect();
    let frame = encoded(Message::Request {
        id: 1_000,
        remote: slow,
        payload: &payload,
    });
    flood_attack("overloaded flood, never reads", prefix, frame).await;
}

#[tokio::test]
async fn unhandled_remote_flood_that_never_reads() {
    let frame = encoded(Message::Request {
        id: 7,
        remote: remote_id("Unhandled"),
        payload: &[],
    });
    flood_attack("unhandled flood, never reads", Vec::new(), frame).await;
}

#[tokio::test]
async fn more_handshakes_than_the_cap() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let session = SessionConfig::default().with_handshake_timeout(Duration::from_secs(1));
    let config = ServerConfig::default().with_session(session).with_max_handshakes(100);
    under_attack("300 handshakes, cap 100", config, 32, |server, addr| async move {
        // Each sends the start of a hello and stops there.
        let mut sockets = Vec::new();
        for _ in 0..300 {
            let mut raw = Raw::connect(addr).await;
            let _ = raw.stream.write_all(&[30, 0]).await;
            sockets.push(raw);
        }
        // Those past the cap are closed at once, long before the 1 s deadline.
        let start = Instant::now();
        let mut closed_at_once = 0;
        for raw in &mut sockets {
            let mut byte = [0u8; 1];
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(20), raw.stream.read(&mut byte)).await
            {
                closed_at_once += 1;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(1) + Duration::from_millis(500));
        println!("  {closed_at_once} of 300 closed at once");
        assert!(closed_at_once >= 150, "only {closed_at_once} of 300 closed at once");
        // Once the capped ones time out, a new honest client gets in.
        drop(sockets);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let newcomer = Client::new(protocol(), ClientConfig::default());
        newcomer
            .connect_tcp(addr)
            .await
            .expect("an honest client gets in after the attack");
        assert_eq!(server.player_count(), 2);
    })
    .await;
}

/// A TLS peer that stops reading is dropped as too slow, and its
/// connection's task ends within the linger: closing TLS (its close_notify)
/// into a socket that never drains must not wait forever.
#[tokio::test]
async fn a_tls_peer_that_stops_reading_does_not_keep_its_task() {
    let (server_tls, client_tls) = tls_configs(true);
    let (server, _, _) = server_with(ServerConfig::default());
    let addr = server.listen_tls("127.0.0.1:0", server_tls).await.unwrap();
    let alive = || tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let before = alive();
    let mut stream = volley::transport::tls::connect(addr, "localhost", client_tls)
        .await
        .unwrap();
    stream.write_all(&hello_frame(&protocol())).await.unwrap();
    stream.flush().await.unwrap();
    let player = wait_players(&server, 1).await.pop().unwrap();
    // The server pours events at it; it reads nothing from now on.
    let line = "x".repeat(60_000);
    for _ in 0..2_000 {
        if server.fire(&player, ANNOUNCE, line.clone()).is_err() {
            break;
        }
        tokio::task::yield_now().await;
    }
    eventually("dropped as too slow", || server.player_count() == 0).await;
    let began = Instant::now();
    while alive() > before && began.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        alive() <= before,
        "{} tasks still alive after 5 s ({before} before the peer came)",
        alive()
    );
    drop(stream);
}
