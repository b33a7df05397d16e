//! Transport-level properties: coalesced writes, no added latency, TCP_NODELAY.

mod common;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use volley::transport::{memory, Transport};
use volley::*;

/// A memory transport that counts its writes (each would be one syscall on a socket).
struct Counting {
    inner: memory::MemoryTransport,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for Counting {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counting {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if r.is_ready() {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Transport for Counting {}

#[tokio::test(start_paused = true)]
async fn a_burst_is_coalesced_and_a_lone_message_is_not_delayed() {
    let (server, _, _) = server_with(ServerConfig::default());
    let (client_end, server_end) = memory::pair();
    let writes = Arc::new(AtomicUsize::new(0));
    server.serve(Counting {
        inner: server_end,
        writes: writes.clone(),
    });
    let (client, mut probe) = client_with(ClientConfig::default());
    client.connect(client_end).await.unwrap();
    let player = server.players().pop().unwrap();

    // A lone call: answered without the clock moving, so nothing waited on a timer.
    let before = tokio::time::Instant::now();
    let writes_before = writes.load(Ordering::Relaxed);
    assert_eq!(server.invoke(&player, PROMPT, "now?".into()).await, Ok(true));
    assert_eq!(tokio::time::Instant::now(), before, "a lone message must not wait");
    assert_eq!(writes.load(Ordering::Relaxed) - writes_before, 1);

    // A burst of 500 events fired in one go leaves in a handful of writes.
    let writes_before = writes.load(Ordering::Relaxed);
    for i in 0..500 {
        server.fire(&player, ANNOUNCE, format!("event {i}")).unwrap();
    }
    for i in 0..500 {
        assert_eq!(recv(&mut probe.announcements).await, format!("event {i}"));
    }
    let burst_writes = writes.load(Ordering::Relaxed) - writes_before;
    assert!(burst_writes <= 5, "500 events took {burst_writes} writes");
}

#[tokio::test]
async fn tcp_sockets_have_nodelay_on_both_ends() {
    let listener = volley::transport::tcp::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = tokio::join!(
        volley::transport::tcp::connect(addr),
        volley::transport::tcp::accept(&listener)
    );
    assert!(client.unwrap().nodelay().unwrap());
    assert!(accepted.unwrap().0.nodelay().unwrap());
}

#[tokio::test]
async fn many_calls_in_flight_on_one_connection_all_complete() {
    let (_server, addr, _, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    for _round in 0..20 {
        let calls = (0..64u32).map(|i| {
            client.invoke(
                BUY,
                Purchase {
                    item: "x".into(),
                    gold: 10 + i,
                },
            )
        });
        let results = futures_util::future::join_all(calls).await;
        for (i, r) in results.into_iter().enumerate() {
            assert_eq!(r, Ok(i as u32));
        }
    }
}

#[tokio::test]
async fn unreliable_events_over_tcp_arrive_and_are_size_limited() {
    const POSITION: ClientEvent<(f32, f32)> = ClientEvent::new("Position").unreliable();
    const BLOB: ClientEvent<Vec<u8>> = ClientEvent::new("Blob").unreliable();
    let protocol = Protocol::builder().remote(POSITION).remote(BLOB).build();
    let server = Server::new(protocol.clone(), ServerConfig::default());
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();
    let client = Client::new(protocol, ClientConfig::default());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    client.on_event(POSITION, move |_, p| {
        let _ = tx.send(p);
    });
    client.connect_tcp(addr).await.unwrap();
    let player = wait_players(&server, 1).await.pop().unwrap();

    server.fire(&player, POSITION, (1.0, 2.0)).unwrap();
    assert_eq!(recv(&mut rx).await, (1.0, 2.0));
    // Refused at send time, whatever the transport: over one datagram's worth.
    let err = server.fire(&player, BLOB, vec![0; 2000]).unwrap_err();
    assert!(matches!(err, EventError::TooLarge { max: 1200, .. }), "{err}");
}

#[test]
fn an_unreliable_declaration_is_part_of_the_protocol_hash() {
    const RELIABLE: ClientEvent<u8> = ClientEvent::new("E");
    const UNRELIABLE: ClientEvent<u8> = ClientEvent::new("E").unreliable();
    let a = Protocol::builder().remote(RELIABLE).build();
    let b = Protocol::builder().remote(UNRELIABLE).build();
    assert_ne!(a.hash(), b.hash());
}

/// Calls started together leave in one write, the first of each burst
/// included (it finds no call pending, as a lone call does, but it is not
/// written on its own once the caller is seen to make calls in bursts); a
/// lone call is still written at once by its caller.
#[tokio::test(flavor = "current_thread")]
async fn calls_made_together_leave_in_one_write() {
    let (server, _, _) = server_with(ServerConfig::default());
    let (client, _probe) = client_with(ClientConfig::default());
    let writes = Arc::new(AtomicUsize::new(0));
    let transport = Counting {
        inner: server.connect_memory(),
        writes: writes.clone(),
    };
    client.connect(transport).await.unwrap();
    // The opening ping and its pong settle.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // (NUMBER's answers must be even.)
    let burst = || futures_util::future::join_all((0..16u32).map(|n| client.invoke(NUMBER, 2 * n)));
    assert_eq!(burst().await, (0..16u32).map(|n| Ok(2 * n)).collect::<Vec<_>>());
    for round in 0..3 {
        let before = writes.load(Ordering::SeqCst);
        assert_eq!(burst().await.len(), 16);
        assert_eq!(writes.load(Ordering::SeqCst) - before, 1, "writes for burst {round}");
    }
    // Sequential again: the first call goes with the driver once, then each
    // is written by its caller.
    assert_eq!(client.invoke(NUMBER, 2).await, Ok(2));
    let before = writes.load(Ordering::SeqCst);
    assert_eq!(client.invoke(NUMBER, 4).await, Ok(4));
    assert_eq!(writes.load(Ordering::SeqCst) - before, 1);
}
