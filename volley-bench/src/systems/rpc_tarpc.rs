//! tarpc over TCP, set up as its documentation recommends (length-delimited
//! frames, bincode), with TCP_NODELAY on both ends: tarpc's own TCP listener
//! does not set it on accepted sockets, which costs tens of milliseconds at p99.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt};
use futures_util::StreamExt;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::Caller;

#[tarpc::service]
pub trait Bench {
    async fn add_one(x: u32) -> u32;
}

#[derive(Clone)]
struct BenchServer;

impl Bench for BenchServer {
    async fn add_one(self, _: tarpc::context::Context, x: u32) -> u32 {
        x.wrapping_add(1)
    }
}

pub async fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            let framed = Framed::new(stream, LengthDelimitedCodec::new());
            let transport = tarpc::serde_transport::new(framed, Bincode::default());
            let channel = BaseChannel::with_defaults(transport);
            tokio::spawn(
                channel
                    .execute(BenchServer.serve())
                    .for_each_concurrent(None, |response| async move {
                        tokio::spawn(response);
                    }),
            );
        }
    });
    addr
}

struct TarpcCaller(BenchClient);

impl TarpcCaller {
    fn add_one(&self, x: u32) -> impl Future<Output = u32> + '_ {
        self.0.add_one(tarpc::context::current(), x).map(Result::unwrap)
    }
}

impl Caller for TarpcCaller {
    fn sequential(&self, n: usize) -> BoxFuture<'_, Vec<Duration>> {
        Box::pin(super::time_calls(n, |x| self.add_one(x)))
    }

    fn pipelined(&self, n: usize, inflight: usize) -> BoxFuture<'_, ()> {
        Box::pin(super::keep_in_flight(n, inflight, |x| self.add_one(x)))
    }
}

pub async fn connect(addr: SocketAddr) -> Arc<dyn Caller> {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let framed = Framed::new(stream, LengthDelimitedCodec::new());
    let transport = tarpc::serde_transport::new(framed, Bincode::default());
    let client = BenchClient::new(tarpc::client::Config::default(), transport).spawn();
    Arc::new(TarpcCaller(client))
}
