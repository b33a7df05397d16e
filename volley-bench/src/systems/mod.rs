//! The systems under test. Each RPC system serves one function (a `u32` in,
//! the `u32` plus one out) and hands out callers; raw TCP has its own loops.

pub mod grpc;
pub mod raw;
pub mod rpc_tarpc;
pub mod rpc_volley;

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::future::BoxFuture;

/// One connection's way to make the small call; cheap to share across tasks.
pub trait Caller: Send + Sync + 'static {
    /// Calls with `x`; resolves to `x + 1`.
    fn call(&self, x: u32) -> BoxFuture<'static, u32>;
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
