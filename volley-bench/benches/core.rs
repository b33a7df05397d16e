//! Micro-benchmarks of the layers below the network: the codec, the session
//! core on its own (a full call between two sessions, no I/O), and a full
//! typed call through the in-memory transport.
//!
//! ```text
//! cargo bench -p volley-net-bench --bench core
//! ```
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion};
use volley_proto::codec::decode_frame;
use volley_proto::{
    Direction, Message, RemoteKind, RemoteSpec, RemoteTable, Session, SessionConfig, SessionEvent, Status,
};

fn codec(c: &mut Criterion) {
    let payload = 7u32.to_le_bytes();
    let msg = Message::Request {
        id: 3,
        remote: 1,
        payload: &payload[..],
    };
    let mut out = Vec::with_capacity(64);
    c.bench_function("codec/encode_request", |b| {
        b.iter(|| {
            out.clear();
            msg.encode(&mut out);
            out.len()
        })
    });
    let mut frame = Vec::new();
    msg.encode(&mut frame);
    c.bench_function("codec/decode_request", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&frame[..]);
            decode_frame(&mut buf, 1 << 20).unwrap().unwrap()
        })
    });
}

fn session_pair() -> (Session, Session, Instant) {
    let table = Arc::new(
        RemoteTable::new(vec![RemoteSpec {
            name: "f",
            kind: RemoteKind::Function,
            direction: Direction::ToServer,
            shape: 0,
        }])
        .unwrap(),
    );
    let now = Instant::now();
    let mut client = Session::client(SessionConfig::default(), table.clone(), b"", now);
    let mut server = Session::server(SessionConfig::default(), table, now);
    let mut wire = Vec::new();
    client.take_transmit(&mut wire);
    server.handle_input(&mut BytesMut::from(&wire[..]), now);
    while server.poll_event().is_some() {}
    server.accept(1);
    wire.clear();
    server.take_transmit(&mut wire);
    client.handle_input(&mut BytesMut::from(&wire[..]), now);
    while client.poll_event().is_some() {}
    (client, server, now)
}

fn session(c: &mut Criterion) {
    let (mut client, mut server, now) = session_pair();
    let mut wire = Vec::new();
    let mut buf = BytesMut::new();
    c.bench_function("session/call_round_trip", |b| {
        b.iter(|| {
            let id = client.call(0, &[1, 2, 3, 4], Duration::from_secs(10), now).unwrap();
            wire.clear();
            client.take_transmit(&mut wire);
            buf.extend_from_slice(&wire);
            server.handle_input(&mut buf, now);
            while let Some(event) = server.poll_event() {
                if let SessionEvent::Request { id, .. } = event {
                    server.respond(id, Status::Ok, &[5, 6, 7, 8]);
                }
            }
            wire.clear();
            server.take_transmit(&mut wire);
            buf.extend_from_slice(&wire);
            client.handle_input(&mut buf, now);
            let ended = client.poll_event();
            assert!(matches!(ended, Some(SessionEvent::CallEnded { id: i, .. }) if i == id));
        })
    });
}

fn full_call(c: &mut Criterion) {
    use volley::{Client, ClientConfig, Protocol, Server, ServerConfig, ServerFn};
    const ADD_ONE: ServerFn<u32, u32> = ServerFn::new("AddOne");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(async {
        let protocol = Protocol::builder().remote(ADD_ONE).build();
        let server = Server::new(protocol.clone(), ServerConfig::default());
        server.on_request_sync(ADD_ONE, |_, x: u32| Ok(x + 1));
        let client = Client::new(protocol, ClientConfig::default());
        client.connect(server.connect_memory()).await.unwrap();
        client
    });
    c.bench_function("volley/call_over_memory_transport", |b| {
        b.iter(|| runtime.block_on(client.invoke(ADD_ONE, 41)).unwrap())
    });
}

/// A typical small game message.
#[derive(serde::Serialize, serde::Deserialize, Clone, PartialEq, Debug)]
struct Move {
    player: u32,
    x: f32,
    y: f32,
    facing: u16,
    action: String,
}

fn payload_codec(c: &mut Criterion) {
    c.bench_function("payload/bitcode_serde_u32_round_trip", |b| {
        b.iter(|| {
            let bytes = bitcode::serialize(&std::hint::black_box(41u32)).unwrap();
            bitcode::deserialize::<u32>(&bytes).unwrap()
        })
    });
    c.bench_function("payload/postcard_u32_round_trip", |b| {
        b.iter(|| {
            let bytes = postcard::to_allocvec(&std::hint::black_box(41u32)).unwrap();
            postcard::from_bytes::<u32>(&bytes).unwrap()
        })
    });
    let m = Move {
        player: 7,
        x: 1.5,
        y: -3.25,
        facing: 90,
        action: "jump".into(),
    };
    println!(
        "Move: bitcode {} bytes, postcard {} bytes",
        bitcode::serialize(&m).unwrap().len(),
        postcard::to_allocvec(&m).unwrap().len()
    );
    c.bench_function("payload/bitcode_serde_struct_round_trip", |b| {
        b.iter(|| {
            let bytes = bitcode::serialize(std::hint::black_box(&m)).unwrap();
            bitcode::deserialize::<Move>(&bytes).unwrap()
        })
    });
    c.bench_function("payload/postcard_struct_round_trip", |b| {
        b.iter(|| {
            let bytes = postcard::to_allocvec(std::hint::black_box(&m)).unwrap();
            postcard::from_bytes::<Move>(&bytes).unwrap()
        })
    });
}

criterion_group!(benches, codec, session, full_call, payload_codec);
criterion_main!(benches);
