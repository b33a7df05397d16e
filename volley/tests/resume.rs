//! Resume with real faults: a loopback relay between client and server cuts
//! every connection abruptly (mid-call, mid-burst, mid-frame) while calls run
//! both ways and events pour both ways. The client comes back as the same
//! player, with its rooms and data; every call started before the cut ends
//! once with its answer, every handler runs once, every event arrives once,
//! in order.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use volley::*;

/// A TCP relay that can cut every connection through it at once, and
/// refuse new ones for a while.
struct Relay {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    refusing: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<AtomicUsize>,
}

impl Relay {
    async fn to(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let refusing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let (kept, off, count) = (links.clone(), refusing.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut front, _)) = listener.accept().await {
                if off.load(Ordering::SeqCst) {
                    continue; // dropped at once
                }
                count.fetch_add(1, Ordering::SeqCst);
                let task = tokio::spawn(async move {
                    let Ok(mut back) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = front.set_nodelay(true);
                    let _ = back.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut front, &mut back).await;
                });
                kept.lock().unwrap().push(task.abort_handle());
            }
        });
        Self {
            addr,
            links,
            refusing,
            connections,
        }
    }

    /// A relay to `target` that holds what the server sends on each
    /// connection after the first for `delay` (a slow path back).
    async fn slow_back(target: SocketAddr, delay: Duration) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let (kept, count) = (links.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((front, _)) = listener.accept().await {
                let slow = count.fetch_add(1, Ordering::SeqCst) > 0;
                let task = tokio::spawn(async move {
                    let Ok(back) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut front_read, mut front_write) = front.into_split();
                    let (mut back_read, mut back_write) = back.into_split();
                    let there = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut front_read, &mut back_write).await;
                    });
                    let mut chunk = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = back_read.read(&mut chunk).await {
                        if slow {
                            tokio::time::sleep(delay).await;
                        }
                        if front_write.write_all(&chunk[..n]).await.is_err() {
                            break;
                        }
                    }
                    there.abort();
                });
                kept.lock().unwrap().push(task.abort_handle());
            }
        });
        Self {
            addr,
            links,
            refusing: Arc::default(),
            connections,
        }
    }

    /// Every connection through the relay ends now, whatever was in flight.
    fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

fn resuming_client() -> (Client, ClientProbe) {
    let policy = ReconnectPolicy::default()
        .with_initial_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(200));
    client_with(ClientConfig::default().with_reconnect(policy))
}

/// Hooks counted: away, back, removed.
fn count_hooks(server: &Server) -> Arc<[AtomicUsize; 3]> {
    let counts: Arc<[AtomicUsize; 3]> = Arc::default();
    let c = counts.clone();
    server.on_player_away(move |_| {
        c[0].fetch_add(1, Ordering::SeqCst);
    });
    let c = counts.clone();
    server.on_player_back(move |_| {
        c[1].fetch_add(1, Ordering::SeqCst);
    });
    let c = counts.clone();
    server.on_player_removed(move |_, _| {
        c[2].fetch_add(1, Ordering::SeqCst);
    });
    counts
}

/// The transports that run over TCP, which the relay can cut.
#[derive(Clone, Copy, Debug)]
enum Net {
    Tcp,
    Tls,
    WebSocket,
}

type ClientTls = Option<Arc<volley::transport::tls::rustls::ClientConfig>>;

/// `server` listening over `net`: its address, and what a client needs.
async fn listen(server: &Server, net: Net) -> (SocketAddr, ClientTls) {
    match net {
        Net::Tcp => (server.listen_tcp("127.0.0.1:0").await.unwrap(), None),
        Net::Tls => {
            let (server_tls, client_tls) = tls_configs(true);
            let addr = server.listen_tls("127.0.0.1:0", server_tls).await.unwrap();
            (addr, Some(client_tls))
        }
        Net::WebSocket => (server.listen_ws("127.0.0.1:0", "/volley").await.unwrap(), None),
    }
}

async fn connect(client: &Client, net: Net, addr: SocketAddr, tls: ClientTls) {
    match net {
        Net::Tcp => client.connect_tcp(addr).await.unwrap(),
        Net::Tls => client.connect_tls(addr, "localhost", tls.unwrap()).await.unwrap(),
        Net::WebSocket => client.connect_ws(addr, "/volley").await.unwrap(),
    }
}

#[tokio::test]
async fn over_tcp_cut_mid_call_and_mid_burst_the_player_resumes_with_nothing_lost_or_done_twice() {
    cut_three_times(Net::Tcp).await;
}

#[tokio::test]
async fn over_tls_the_same() {
    cut_three_times(Net::Tls).await;
}

#[tokio::test]
async fn over_websocket_the_same() {
    cut_three_times(Net::WebSocket).await;
}

async fn cut_three_times(net: Net) {
    let server = Server::new(protocol(), ServerConfig::default());
    let chat: Arc<Mutex<Vec<String>>> = Arc::default();
    let said = chat.clone();
    server.on_event(CHAT, move |_, line: String| said.lock().unwrap().push(line));
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    server.on_request(ECHO, move |_, s: String| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok(format!("{s}!"))
        }
    });
    let hooks = count_hooks(&server);
    let (addr, tls) = listen(&server, net).await;
    let relay = Relay::to(addr).await;
    let (client, mut probe) = resuming_client();
    let resumed = Arc::new(AtomicUsize::new(0));
    let r = resumed.clone();
    client.on_resumed(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    connect(&client, net, relay.addr, tls).await;
    let player = wait_players(&server, 1).await.pop().unwrap();
    server.join(player.id(), "lobby").await.unwrap();
    player.set_data(42u32);
    let first_addr = player.remote_addr();

    for round in 0..3u32 {
        // Calls in flight both ways, and events both ways, when the cut comes.
        let calls: Vec<_> = (0..5)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move { client.invoke(ECHO, format!("{round}.{i}")).await })
            })
            .collect();
        let (to_client, p) = (server.clone(), player.clone());
        let asked = tokio::spawn(async move { to_client.invoke(&p, CLIENT_SLOW, 80).await });
        for i in 0..200 {
            client.fire(CHAT, format!("c{round}.{i}")).unwrap();
            server.fire(&player, ANNOUNCE, format!("s{round}.{i}")).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        relay.cut();
        // Both sides go on while the connection is down.
        for i in 200..300 {
            let _ = client.fire(CHAT, format!("c{round}.{i}"));
            let _ = server.fire(&player, ANNOUNCE, format!("s{round}.{i}"));
        }
        for (i, call) in calls.into_iter().enumerate() {
            assert_eq!(
                call.await.unwrap(),
                Ok(format!("{round}.{i}!")),
                "{net:?}, round {round}, call {i}"
            );
        }
        assert_eq!(asked.await.unwrap(), Ok(80), "round {round}: the server's call");
    }
    eventually("every chat line arrived", || chat.lock().unwrap().len() >= 900).await;
    let expected: Vec<String> = (0..3u32)
        .flat_map(|r| (0..300).map(move |i| format!("c{r}.{i}")))
        .collect();
    assert_eq!(*chat.lock().unwrap(), expected);
    let mut heard = Vec::new();
    while heard.len() < 900 {
        heard.push(recv(&mut probe.announcements).await);
    }
    let expected: Vec<String> = (0..3u32)
        .flat_map(|r| (0..300).map(move |i| format!("s{r}.{i}")))
        .collect();
    assert_eq!(heard, expected);
    assert_eq!(runs.load(Ordering::SeqCst), 15, "each handler ran once");

    // The same player, its rooms and data kept.
    let players = server.players();
    assert_eq!(players.len(), 1);
    assert_eq!(players[0].id(), player.id());
    assert_eq!(server.room_members("lobby").await.players, vec![player.id()]);
    assert_eq!(players[0].data::<u32>().as_deref(), Some(&42));
    // Each connection through the relay comes from a port of its own.
    assert_ne!(player.remote_addr(), first_addr, "the address is the new connection's");
    assert!(relay.connections.load(Ordering::SeqCst) >= 4, "it did reconnect");
    let [away, back, removed] = &*hooks;
    assert_eq!(
        (back.load(Ordering::SeqCst), removed.load(Ordering::SeqCst)),
        (3, 0),
        "back thrice, never removed (away {})",
        away.load(Ordering::SeqCst)
    );
    assert_eq!(resumed.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn past_the_grace_period_the_player_is_removed_and_the_client_joins_anew() {
    let config = ServerConfig::default().with_resume_grace(Duration::from_millis(300));
    let (server, _, _) = server_with(config);
    let hooks = count_hooks(&server);
    let _ = &hooks;
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();
    let relay = Relay::to(addr).await;
    let (client, _probe) = resuming_client();
    let reasons: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = reasons.clone();
    client.on_disconnect(move |reason| seen.lock().unwrap().push(reason.to_string()));
    client.connect_tcp(relay.addr).await.unwrap();
    let first = wait_players(&server, 1).await.pop().unwrap();
    relay.refusing.store(true, Ordering::SeqCst);
    relay.cut();
    eventually("the player is away", || first.is_away()).await;
    assert_eq!(server.player_count(), 1, "kept while away");
    eventually("removed after the grace period", || server.player_count() == 0).await;
    relay.refusing.store(false, Ordering::SeqCst);
    let second = wait_players(&server, 1).await.pop().unwrap();
    assert_ne!(second.id(), first.id(), "a new player");
    eventually("the client is connected again", || client.is_connected()).await;
    // The standard echo says who answered: the new player.
    let echoed = client.invoke(ECHO, "hi".into()).await.unwrap();
    assert_eq!(echoed, format!("{}:hi", second.id().0));
    let [away, back, removed] = &*hooks;
    assert_eq!(
        (
            away.load(Ordering::SeqCst),
            back.load(Ordering::SeqCst),
            removed.load(Ordering::SeqCst)
        ),
        (1, 0, 1)
    );
    let reasons = reasons.lock().unwrap().clone();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("not resumed") || r.contains("ResumeRefused")),
        "the game is told it lost its state: {reasons:?}"
    );
}

#[tokio::test]
async fn a_resume_with_an_unknown_token_is_refused_and_counted() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use volley::proto::{Message, ResumeToken, PROTOCOL_VERSION};
    let (server, _, _) = server_with(ServerConfig::default());
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();
    for guess in 0..3u8 {
        let mut raw = TcpStream::connect(addr).await.unwrap();
        let mut frame = Vec::new();
        Message::<&[u8]>::Resume {
            version: PROTOCOL_VERSION,
            remotes_hash: protocol().hash(),
            token: ResumeToken([guess; 16]),
            received: 0,
        }
        .encode(&mut frame);
        raw.write_all(&frame).await.unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(2), async {
            while let Ok(n @ 1..) = raw.read(&mut buf).await {
                answer.extend_from_slice(&buf[..n]);
            }
        })
        .await;
        assert!(read.is_ok(), "the server did not close; it sent {answer:?}");
        // Refuse (tag 2), code 4: ResumeRefused.
        assert_eq!(answer.get(1..3), Some(&[2u8, 4][..]), "{answer:?}");
    }
    eventually("counted", || server.figures().refused.get("resume refused") == Some(&3)).await;
    assert_eq!(server.player_count(), 0);
}

/// A token resumes once: the one it was replaced with works, the used one
/// is refused once the client has said anything on the resumed connection,
/// as is a late one. A resume whose answer never reached the client (the
/// connection cut first) can be made again with the same token.
#[tokio::test]
async fn a_used_token_is_refused_and_its_replacement_resumes() {
    use bytes::BytesMut;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use volley::proto::codec::decode_frame;
    use volley::proto::{Message, ResumeToken, PROTOCOL_VERSION};
    let (server, _, _) = server_with(ServerConfig::default().with_resume_grace(Duration::from_millis(600)));
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();
    // Writes `first`, then reads frames until one that `pick` takes.
    async fn exchange<T>(raw: &mut TcpStream, first: Message<&[u8]>, mut pick: impl FnMut(Message) -> Option<T>) -> T {
        let mut frame = Vec::new();
        first.encode(&mut frame);
        raw.write_all(&frame).await.unwrap();
        let mut buf = BytesMut::new();
        tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                while let Some(message) = decode_frame(&mut buf, 1 << 20).unwrap() {
                    if let Some(found) = pick(message) {
                        return found;
                    }
                }
                assert!(raw.read_buf(&mut buf).await.unwrap() > 0, "closed");
            }
        })
        .await
        .expect("the frame came")
    }
    let resume = |token| Message::<&[u8]>::Resume {
        version: PROTOCOL_VERSION,
        remotes_hash: protocol().hash(),
        token,
        received: 0,
    };
    let resumed = |m: Message| match m {
        Message::Resumed { token, .. } => Some(Ok(token)),
        Message::Refuse { code, .. } => Some(Err(code)),
        _ => None,
    };
    // A hello that asks to be resumable: Ack 0 in the same write.
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut hello = Vec::new();
    Message::<&[u8]>::Hello {
        version: PROTOCOL_VERSION,
        remotes_hash: protocol().hash(),
        token: b"",
    }
    .encode(&mut hello);
    Message::<&[u8]>::Ack { received: 0 }.encode(&mut hello);
    first.write_all(&hello).await.unwrap();
    let mut buf = BytesMut::new();
    let original: ResumeToken = loop {
        first.read_buf(&mut buf).await.unwrap();
        if let Some(Message::ResumeToken { token }) = {
            let _welcome = decode_frame(&mut buf, 1 << 20).unwrap();
            decode_frame(&mut buf, 1 << 20).unwrap()
        } {
            break token;
        }
    };
    drop(first);
    eventually("away", || server.players().first().is_some_and(|p| p.is_away())).await;
    let player = server.players()[0].id();
    // Resumed, but cut before the client read the answer (it said nothing
    // more): the token it still holds resumes again.
    let mut lost = TcpStream::connect(addr).await.unwrap();
    let unseen = exchange(&mut lost, resume(original), resumed).await.expect("resumed");
    assert_ne!(unseen, original, "a new token at every resume");
    drop(lost);
    eventually("away again", || server.players().first().is_some_and(|p| p.is_away())).await;
    let mut second = TcpStream::connect(addr).await.unwrap();
    let next = exchange(&mut second, resume(original), resumed)
        .await
        .expect("resumed again");
    assert_ne!(next, unseen);
    assert_eq!(server.players()[0].id(), player, "the same player");
    // The client speaks on the resumed connection (it pings at once): it
    // has the new token, and the used one finds nobody, even while the
    // player is there; nor does the one whose answer was lost.
    let _pong = exchange(&mut second, Message::<&[u8]>::Ping { seq: 1 }, |m| {
        matches!(m, Message::Pong { .. }).then_some(())
    })
    .await;
    for used in [original, unseen] {
        let mut third = TcpStream::connect(addr).await.unwrap();
        let refused = exchange(&mut third, resume(used), resumed).await;
        assert_eq!(refused, Err(volley::proto::RefuseCode::ResumeRefused));
    }
    // Its replacement, past the grace period, neither.
    drop(second);
    eventually("gone", || server.player_count() == 0).await;
    let mut late = TcpStream::connect(addr).await.unwrap();
    let refused = exchange(&mut late, resume(next), resumed).await;
    assert_eq!(refused, Err(volley::proto::RefuseCode::ResumeRefused));
}

/// The server's answer to a resume is slow to come back while the client
/// keeps calling: the client keeps the new connection. (Each call woke the
/// client's connection task, which took the session, still away until the
/// answer, for one whose transport was lost, and let the new one go: the
/// resume failed and the player was lost.)
#[tokio::test]
async fn a_resume_answered_slowly_while_the_client_keeps_calling_is_kept() {
    let (server, _, _) = server_with(ServerConfig::default());
    let hooks = count_hooks(&server);
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();
    let relay = Relay::slow_back(addr, Duration::from_millis(200)).await;
    let (client, _probe) = resuming_client();
    client.connect_tcp(relay.addr).await.unwrap();
    wait_players(&server, 1).await;
    relay.cut();
    // Calls every few milliseconds while the resume is under way.
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5 * i)).await;
                client.invoke(ECHO, format!("{i}")).await
            })
        })
        .collect();
    for call in calls {
        let _ = call.await;
    }
    eventually("resumed", || {
        hooks[1].load(Ordering::SeqCst) == 1 && client.is_connected()
    })
    .await;
    assert_eq!(client.invoke(ECHO, "after".into()).await.unwrap(), "1:after");
    assert_eq!(hooks[0].load(Ordering::SeqCst), 1, "away once");
    assert_eq!(hooks[2].load(Ordering::SeqCst), 0, "never removed");
}

#[tokio::test]
async fn a_client_that_never_returns_costs_at_most_the_resume_buffer() {
    // A long grace period: what ends the wait here is the buffer.
    let config = ServerConfig::default().with_resume_grace(Duration::from_secs(60));
    let (server, _, _) = server_with(config);
    let reasons: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = reasons.clone();
    server.on_player_removed(move |_, reason| seen.lock().unwrap().push(reason.to_string()));
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();
    let relay = Relay::to(addr).await;
    let (client, _probe) = resuming_client();
    client.connect_tcp(relay.addr).await.unwrap();
    let player = wait_players(&server, 1).await.pop().unwrap();
    relay.refusing.store(true, Ordering::SeqCst);
    relay.cut();
    eventually("the player is away", || player.is_away()).await;
    // 2 MiB of events for a player that is not coming back (1 MiB kept at most).
    let line = "x".repeat(1024);
    let mut sent = 0;
    while sent < 2048 && server.fire(&player, ANNOUNCE, line.clone()).is_ok() {
        sent += 1;
    }
    eventually("let go before its grace period", || server.player_count() == 0).await;
    let reasons = reasons.lock().unwrap().clone();
    assert!(
        reasons.iter().any(|r| r.contains("resume buffer filled up")),
        "{reasons:?}"
    );
    assert!(sent > 900, "events were kept while there was room: {sent}");
}

/// A UDP relay whose `cut` silences every path through it for good (a dead
/// network path: nothing arrives, nothing says so); a client that comes back
/// from a new port gets a new path.
struct UdpRelay {
    addr: SocketAddr,
    dead: Arc<Mutex<std::collections::HashSet<SocketAddr>>>,
    clients: Arc<Mutex<std::collections::HashMap<SocketAddr, Arc<tokio::net::UdpSocket>>>>,
}

impl UdpRelay {
    async fn to(target: SocketAddr) -> Self {
        use tokio::net::UdpSocket;
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = front.local_addr().unwrap();
        let dead: Arc<Mutex<std::collections::HashSet<SocketAddr>>> = Arc::default();
        let clients: Arc<Mutex<std::collections::HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
        let (silenced, paths) = (dead.clone(), clients.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, from)) = front.recv_from(&mut buf).await {
                if silenced.lock().unwrap().contains(&from) {
                    continue;
                }
                let known = paths.lock().unwrap().get(&from).cloned();
                let back = match known {
                    Some(back) => back,
                    None => {
                        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
                        back.connect(target).await.unwrap();
                        paths.lock().unwrap().insert(from, back.clone());
                        let (front, back2, silenced) = (front.clone(), back.clone(), silenced.clone());
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 65_536];
                            while let Ok(n) = back2.recv(&mut buf).await {
                                if silenced.lock().unwrap().contains(&from) {
                                    return;
                                }
                                let _ = front.send_to(&buf[..n], from).await;
                            }
                        });
                        back
                    }
                };
                let _ = back.send(&buf[..n]).await;
            }
        });
        Self { addr, dead, clients }
    }

    fn cut(&self) {
        let paths: Vec<SocketAddr> = self.clients.lock().unwrap().keys().copied().collect();
        self.dead.lock().unwrap().extend(paths);
    }
}

/// Over QUIC a path that goes silent shows only as silence: the session's
/// idle timeout finds it, and the client resumes from a new socket.
#[tokio::test]
async fn over_quic_a_dead_path_is_found_by_silence_and_resumed_from_a_new_socket() {
    let quick = |config: volley::SessionConfig| {
        config
            .with_idle_timeout(Duration::from_millis(800))
            .with_keep_alive_interval(Duration::from_millis(200))
    };
    let (server_tls, client_tls) = tls_configs(true);
    let config = ServerConfig::default();
    let session = quick(config.session.clone());
    let server = Server::new(protocol(), config.with_session(session));
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    server.on_request(ECHO, move |_, s: String| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(s)
        }
    });
    let hooks = count_hooks(&server);
    let addr = server.listen_quic("127.0.0.1:0", server_tls).await.unwrap();
    let relay = UdpRelay::to(addr).await;
    let policy = ReconnectPolicy::default().with_initial_delay(Duration::from_millis(20));
    let client_config = ClientConfig::default().with_reconnect(policy);
    let session = quick(client_config.session.clone());
    let (client, mut probe) = client_with(client_config.with_session(session));
    client.connect_quic(relay.addr, "localhost", client_tls).await.unwrap();
    let player = wait_players(&server, 1).await.pop().unwrap();
    let call = {
        let client = client.clone();
        tokio::spawn(async move { client.invoke(ECHO, "through the silence".into()).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    relay.cut();
    server.fire(&player, ANNOUNCE, "while silent".into()).unwrap();
    assert_eq!(call.await.unwrap(), Ok("through the silence".into()));
    assert_eq!(recv(&mut probe.announcements).await, "while silent");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(server.players().len(), 1);
    assert_eq!(server.players()[0].id(), player.id());
    let [_, back, removed] = &*hooks;
    assert_eq!((back.load(Ordering::SeqCst), removed.load(Ordering::SeqCst)), (1, 0));
}
