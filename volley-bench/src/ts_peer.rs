//! The Rust end of the TypeScript client's benchmark
//! (`clients/typescript/bench/bench.ts`, which starts this process with
//! `--ts-peer`): a volley server and a bare WebSocket echo server on
//! loopback, the Rust client's figures over the same WebSocket transport,
//! then the addresses and the protocol's hash and ids for the Node side.
//! Runs until its standard input closes.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;

use crate::systems::rpc_volley::{self, Wire};
use crate::systems::Caller;
use crate::{micros_at, pipelined};

/// Echoes every binary message back, one connection per task.
async fn echo_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Binary(bytes) = message {
                        if ws.send(Message::Binary(bytes)).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

pub async fn run(calls: usize) {
    let volley_addr = rpc_volley::serve_on(Wire::WebSocket).await;
    let echo_addr = echo_server().await;
    let caller: Arc<dyn Caller> = rpc_volley::connect_on(Wire::WebSocket, volley_addr).await;
    // Warm-up, then the Rust client's own figures over WebSocket.
    caller.sequential(1_000).await;
    let mut times = caller.sequential(calls).await;
    times.sort();
    println!("RESULT ts_rtt_p50 rust {:.3} us", micros_at(&times, 0.5));
    println!("RESULT ts_rtt_p99 rust {:.3} us", micros_at(&times, 0.99));
    let rate = pipelined(std::slice::from_ref(&caller), calls * 5, 256).await;
    println!("RESULT ts_pipelined rust {rate:.3} calls/s");
    let protocol = rpc_volley::protocol();
    println!("HASH {:016x}", protocol.hash());
    for remote in protocol.remotes() {
        println!("REMOTE {} {}", remote.name, remote.id);
    }
    println!("READY ws://{volley_addr}/volley ws://{echo_addr}/");
    // Until the Node side is done (it closes our standard input).
    let mut rest = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut rest).await;
}
