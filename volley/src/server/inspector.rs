//! The inspector (feature `inspector`): one page over HTTP that shows the
//! server live — players with their ping and bytes/s, every remote's calls/s,
//! latency, bytes/s and errors, a chart of the last minutes, the most recent
//! bad input and refusals — plus the JSON it is drawn from. The page is
//! served by volley itself (no outside asset) and updates itself from a
//! server-sent event stream, one snapshot a second.
//!
//! | path | what |
//! |---|---|
//! | `/` | the page |
//! | `/snapshot` | one snapshot, JSON ([`InspectorSnapshot`]) |
//! | `/events` | a snapshot every second, as server-sent events |
//!
//! It binds to loopback ([`Server::inspector`]); anywhere else only with an
//! access token ([`Server::inspector_public`]), which every request must
//! carry as `?token=`.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, ToSocketAddrs};

use super::{Incident, Server, ServerInner};
use crate::figures::ServerFigures;
use crate::locks::lock;

const PAGE: &str = include_str!("inspector.html");

/// What the inspector's `/snapshot` and `/events` carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InspectorSnapshot {
    /// Since the server was made, in milliseconds.
    pub uptime_ms: u64,
    /// Everything counted.
    pub figures: ServerFigures,
    /// The most recent bad input and refusals (at most 50), oldest first.
    pub recent: Vec<Incident>,
    /// Calls/s and bytes/s, one point a second over the last five minutes
    /// (since the inspector started), oldest first.
    pub history: Vec<TrafficPoint>,
}

/// One second of traffic, for the inspector's chart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrafficPoint {
    /// When, in milliseconds since the server was made.
    pub at_ms: u64,
    /// Calls per second, both directions.
    pub calls_per_s: f64,
    /// Payload bytes per second, both directions.
    pub bytes_per_s: f64,
}

/// Points of history kept: five minutes of one a second.
const HISTORY: usize = 300;

type Body = BoxBody<Bytes, Infallible>;

impl Server {
    /// Serves the inspector on `addr`, which must be a loopback address
    /// (`127.0.0.1:0` picks a port); returns where it listens. Needs a Tokio
    /// runtime; stops when the server is dropped.
    pub async fn inspector(&self, addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        if !bound.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the inspector binds to loopback only; use inspector_public with a token to expose it",
            ));
        }
        Ok(self.serve_inspector(listener, bound, None))
    }

    /// Serves the inspector on any address, for requests that carry
    /// `?token=<token>` (others get 401). The token must not be empty.
    pub async fn inspector_public(&self, addr: impl ToSocketAddrs, token: impl Into<String>) -> io::Result<SocketAddr> {
        let token = token.into();
        if token.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "an empty inspector token"));
        }
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        Ok(self.serve_inspector(listener, bound, Some(Arc::from(token))))
    }

    fn serve_inspector(&self, listener: TcpListener, bound: SocketAddr, token: Option<Arc<str>>) -> SocketAddr {
        let server = Arc::downgrade(&self.inner);
        tokio::spawn(keep_history(server.clone()));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                if server.strong_count() == 0 {
                    return;
                }
                let (server, token) = (server.clone(), token.clone());
                let service = hyper::service::service_fn(move |req| {
                    let (server, token) = (server.clone(), token.clone());
                    async move { Ok::<_, Infallible>(respond(&server, token.as_deref(), &req)) }
                });
                tokio::spawn(async move {
                    let http = hyper::server::conn::http1::Builder::new();
                    if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                        tracing::debug!(error = %e, "inspector connection ended");
                    }
                });
            }
        });
        tracing::info!(%bound, "inspector serving");
        bound
    }

    /// What the inspector shows now.
    pub fn inspector_snapshot(&self) -> InspectorSnapshot {
        let tallies = lock(&self.inner.tallies);
        let recent = tallies.recent.iter().cloned().collect();
        let history = tallies.history.iter().copied().collect();
        drop(tallies);
        InspectorSnapshot {
            uptime_ms: self.inner.started.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
            figures: self.figures(),
            recent,
            history,
        }
    }
}

/// Samples the traffic once a second while the server lives.
async fn keep_history(server: Weak<ServerInner>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last: Option<(std::time::Instant, u64, u64)> = None;
    loop {
        tick.tick().await;
        let Some(inner) = server.upgrade() else { return };
        let remotes = inner.endpoint.figures.snapshot();
        let calls = remotes.iter().map(|r| r.calls_in + r.calls_out).sum::<u64>();
        let bytes = remotes.iter().map(|r| r.bytes_in + r.bytes_out).sum::<u64>();
        let now = std::time::Instant::now();
        if let Some((then, calls_then, bytes_then)) = last {
            let seconds = now.duration_since(then).as_secs_f64().max(1e-3);
            let point = TrafficPoint {
                at_ms: inner.started.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
                calls_per_s: calls.saturating_sub(calls_then) as f64 / seconds,
                bytes_per_s: bytes.saturating_sub(bytes_then) as f64 / seconds,
            };
            let mut tallies = lock(&inner.tallies);
            if tallies.history.len() == HISTORY {
                tallies.history.pop_front();
            }
            tallies.history.push_back(point);
        }
        last = Some((now, calls, bytes));
    }
}

fn respond(server: &Weak<ServerInner>, token: Option<&str>, req: &Request<Incoming>) -> Response<Body> {
    if let Some(token) = token {
        let given = req
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="));
        if given != Some(token) {
            return plain(StatusCode::UNAUTHORIZED, "a token is needed: ?token=…");
        }
    }
    let Some(inner) = server.upgrade() else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "the server is gone");
    };
    let server = Server { inner };
    match req.uri().path() {
        "/" => with_type(
            Full::new(Bytes::from_static(PAGE.as_bytes())).boxed(),
            "text/html; charset=utf-8",
        ),
        "/snapshot" => with_type(Full::new(json(&server)).boxed(), "application/json"),
        "/events" => with_type(events(Arc::downgrade(&server.inner)), "text/event-stream"),
        _ => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

/// A snapshot every second, as server-sent events, while the page listens.
fn events(server: Weak<ServerInner>) -> Body {
    let stream = futures_util::stream::unfold((server, true), |(server, first)| async move {
        if !first {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let inner = server.upgrade()?;
        let mut event = b"data: ".to_vec();
        event.extend_from_slice(&json(&Server { inner }));
        event.extend_from_slice(b"\n\n");
        Some((Ok::<_, Infallible>(Frame::data(Bytes::from(event))), (server, false)))
    });
    StreamBody::new(stream).boxed()
}

fn json(server: &Server) -> Bytes {
    // Plain data of our own: it always serializes.
    Bytes::from(serde_json::to_vec(&server.inspector_snapshot()).unwrap_or_default())
}

fn with_type(body: Body, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = with_type(Full::new(Bytes::from_static(text.as_bytes())).boxed(), "text/plain");
    *response.status_mut() = status;
    response
}
