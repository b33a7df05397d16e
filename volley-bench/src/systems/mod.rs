//! The systems under test. Each RPC system serves one function (a `u32` in,
//! the `u32` plus one out) and hands out callers; raw TCP has its own loops.

pub mod grpc;
pub mod raw;
pub mod rpc_tarpc;
pub mod rpc_volley;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{FuturesUnordered, StreamExt};

/// One connection's way to make the small call; cheap to share across tasks.
pub trait Caller: Send + Sync + 'static {
    /// `n` calls (of `x` → `x + 1`) one after another, each timed. Each
    /// system runs the loop on its own call, as its users write it: a boxed
    /// future per call (and a clone of the client to move into it) would add
    /// an allocation per call that raw TCP's loop does not pay, to every
    /// figure compared with it.
    fn sequential(&self, n: usize) -> BoxFuture<'_, Vec<Duration>>;

    /// `n` calls with `inflight` of them in flight at all times, on the
    /// system's own call (unboxed, as for [`sequential`](Self::sequential)).
    fn pipelined(&self, n: usize, inflight: usize) -> BoxFuture<'_, ()>;
}

/// `n` calls of `call` (with 0, 1, 2, …), `inflight` of them in flight at
/// all times, each checked.
pub async fn keep_in_flight<F: Future<Output = u32>>(n: usize, inflight: usize, mut call: impl FnMut(u32) -> F) {
    let mut start = |x: u32| call(x).map(move |answer| assert_eq!(answer, x + 1));
    let mut running = FuturesUnordered::new();
    let mut sent = 0;
    while sent < n.min(inflight) {
        running.push(start(sent as u32));
        sent += 1;
    }
    while running.next().await.is_some() {
        if sent < n {
            running.push(start(sent as u32));
            sent += 1;
        }
    }
}

/// `n` calls of `call` one after another (with 0, 1, 2, …), each timed and
/// checked.
pub async fn time_calls<F: Future<Output = u32>>(n: usize, mut call: impl FnMut(u32) -> F) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n as u32 {
        let start = Instant::now();
        assert_eq!(call(i).await, i + 1);
        times.push(start.elapsed());
    }
    times
}

/// The request/response systems (raw is measured by its own loops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    Volley,
    /// volley over WebSocket (on TCP) and over QUIC: rows of their own,
    /// compared with nothing (the ratios are volley over TCP against its
    /// peers on TCP).
    VolleyWs,
    VolleyQuic,
    /// volley over WebTransport (HTTP/3 over the same QUIC).
    VolleyWt,
    /// volley over TCP with resume on: what keeping frames for a resume costs.
    VolleyResume,
    Tarpc,
    Tonic,
}

impl Rpc {
    pub fn name(self) -> &'static str {
        match self {
            Rpc::Volley => "volley",
            Rpc::VolleyWs => "volley-ws",
            Rpc::VolleyQuic => "volley-quic",
            Rpc::VolleyWt => "volley-wt",
            Rpc::VolleyResume => "volley-resume",
            Rpc::Tarpc => "tarpc",
            Rpc::Tonic => "tonic",
        }
    }

    /// Starts a server on loopback; returns its address.
    pub async fn serve(self) -> SocketAddr {
        match self {
            Rpc::Volley => rpc_volley::serve().await.1,
            Rpc::VolleyWs => rpc_volley::serve_on(rpc_volley::Wire::WebSocket).await,
            Rpc::VolleyQuic => rpc_volley::serve_on(rpc_volley::Wire::Quic).await,
            Rpc::VolleyWt => rpc_volley::serve_on(rpc_volley::Wire::WebTransport).await,
            Rpc::VolleyResume => rpc_volley::serve_on(rpc_volley::Wire::ResumableTcp).await,
            Rpc::Tarpc => rpc_tarpc::serve().await,
            Rpc::Tonic => grpc::serve().await,
        }
    }

    /// Opens one connection.
    pub async fn connect(self, addr: SocketAddr) -> Arc<dyn Caller> {
        match self {
            Rpc::Volley => rpc_volley::connect(addr).await,
            Rpc::VolleyWs => rpc_volley::connect_on(rpc_volley::Wire::WebSocket, addr).await,
            Rpc::VolleyQuic => rpc_volley::connect_on(rpc_volley::Wire::Quic, addr).await,
            Rpc::VolleyWt => rpc_volley::connect_on(rpc_volley::Wire::WebTransport, addr).await,
            Rpc::VolleyResume => rpc_volley::connect_on(rpc_volley::Wire::ResumableTcp, addr).await,
            Rpc::Tarpc => rpc_tarpc::connect(addr).await,
            Rpc::Tonic => grpc::connect(addr).await,
        }
    }
}
