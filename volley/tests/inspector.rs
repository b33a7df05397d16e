//! The inspector over HTTP: the page, the JSON snapshot, the event stream,
//! loopback only, and the token.

mod common;

use std::net::SocketAddr;

use common::*;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use volley::*;

/// GETs `path` from `addr`: the status and, for a finite body, the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::get(path)
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let mut body = response.into_body();
    // The event stream never ends: its first event is enough.
    let mut text = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            text.extend_from_slice(&data);
            if path.starts_with("/events") {
                break;
            }
        }
    }
    (status, String::from_utf8(text).unwrap())
}

#[tokio::test]
async fn the_page_the_snapshot_and_the_stream() {
    let (server, addr, _observed, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    wait_players(&server, 1).await;
    client.invoke(ECHO, "hi".into()).await.unwrap();
    assert_eq!(
        client
            .invoke(
                BUY,
                Purchase {
                    item: "x".into(),
                    gold: 5_000
                }
            )
            .await,
        Err(FunctionError::BadRequest)
    );
    let at = server.inspector("127.0.0.1:0").await.unwrap();

    let (status, page) = get(at, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("volley inspector") && page.contains("EventSource"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no outside asset"
    );

    let (status, json) = get(at, "/snapshot").await;
    assert_eq!(status, 200);
    let snapshot: InspectorSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(snapshot.figures.players, 1);
    let echo = snapshot.figures.remotes.iter().find(|r| r.name == "Echo").unwrap();
    assert_eq!(echo.calls_in, 1);
    assert!(snapshot
        .recent
        .iter()
        .any(|i| i.kind == "bad_request" && i.detail.contains("Buy")));

    let (status, event) = get(at, "/events").await;
    assert_eq!(status, 200);
    let first: InspectorSnapshot = serde_json::from_str(event.strip_prefix("data: ").unwrap().trim_end()).unwrap();
    assert_eq!(first.figures.players, 1);
    assert_eq!(get(at, "/nothing").await.0, 404);

    // A point of history a second, for the chart.
    tokio::time::sleep(std::time::Duration::from_millis(2_300)).await;
    let (_, json) = get(at, "/snapshot").await;
    let snapshot: InspectorSnapshot = serde_json::from_str(&json).unwrap();
    assert!(!snapshot.history.is_empty(), "{:?}", snapshot.history);
}

#[tokio::test]
async fn loopback_unless_a_token_guards_it() {
    let server = Server::new(protocol(), ServerConfig::default());
    assert!(
        server.inspector("0.0.0.0:0").await.is_err(),
        "not on every interface without a token"
    );
    assert!(
        server.inspector_public("127.0.0.1:0", "").await.is_err(),
        "not with an empty token"
    );
    let at = server.inspector_public("127.0.0.1:0", "s3cret").await.unwrap();
    assert_eq!(get(at, "/snapshot").await.0, 401);
    assert_eq!(get(at, "/snapshot?token=wrong").await.0, 401);
    assert_eq!(get(at, "/snapshot?token=s3cret").await.0, 200);
}
