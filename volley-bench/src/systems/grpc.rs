//! tonic unary gRPC over loopback h2c, with TCP_NODELAY on both ends
//! (`serve_with_incoming` does not set it on accepted sockets).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};

use super::Caller;

#[allow(clippy::all, unreachable_pub, missing_docs, missing_debug_implementations)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/bench.Bench.rs"));
}

use generated::bench_client::BenchClient;
use generated::bench_server::{Bench, BenchServer};

/// The one message: a `u32`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Num {
    #[prost(uint32, tag = "1")]
    pub v: u32,
}

struct Service;

#[tonic::async_trait]
impl Bench for Service {
    async fn call(&self, request: Request<Num>) -> Result<Response<Num>, Status> {
        Ok(Response::new(Num {
            v: request.into_inner().v.wrapping_add(1),
        }))
    }
}

pub async fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = async_stream_of(listener);
    tokio::spawn(async move {
        Server::builder()
            .tcp_nodelay(true)
            .add_service(BenchServer::new(Service))
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    addr
}

/// Accepted sockets with TCP_NODELAY set.
fn async_stream_of(listener: TcpListener) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((accepted, listener))
    })
}

struct TonicCaller(BenchClient<Channel>);

impl TonicCaller {
    fn add_one(&self, x: u32) -> impl Future<Output = u32> {
        // tonic's calls take the client mutably: a clone for each.
        let mut client = self.0.clone();
        async move { client.call(Num { v: x }).await.unwrap().into_inner().v }
    }
}

impl Caller for TonicCaller {
    fn sequential(&self, n: usize) -> BoxFuture<'_, Vec<Duration>> {
        Box::pin(super::time_calls(n, |x| self.add_one(x)))
    }

    fn pipelined(&self, n: usize, inflight: usize) -> BoxFuture<'_, ()> {
        Box::pin(super::keep_in_flight(n, inflight, |x| self.add_one(x)))
    }
}

pub async fn connect(addr: SocketAddr) -> Arc<dyn Caller> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .tcp_nodelay(true)
        .connect()
        .await
        .unwrap();
    Arc::new(TonicCaller(BenchClient::new(channel)))
}
