//! Sequences of session operations from both peers, driven by the fuzzer's
//! bytes, with hostile bytes mixed into the link: nothing panics, and when the
//! link drops both sides' call tables are empty.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use volley_proto::*;

fn table() -> Arc<RemoteTable> {
    let spec = |name, kind, direction| RemoteSpec {
        name,
        kind,
        direction,
        shape: 0,
    };
    Arc::new(
        RemoteTable::new(vec![
            spec("a", RemoteKind::Function, Direction::ToServer),
            spec("b", RemoteKind::Function, Direction::ToClient),
            spec("c", RemoteKind::Event, Direction::ToServer),
            spec("d", RemoteKind::Event, Direction::ToClient),
        ])
        .unwrap(),
    )
}

fn deliver(from: &mut Session, to: &mut Session, now: Instant) {
    let mut wire = Vec::new();
    from.take_transmit(&mut wire);
    to.handle_input(&mut BytesMut::from(&wire[..]), now);
}

fn drain(s: &mut Session, incoming: &mut Vec<CallId>) {
    while let Some(e) = s.poll_event() {
        match e {
            SessionEvent::Request { id, .. } => incoming.push(id),
            SessionEvent::RequestCancelled { id } => incoming.retain(|i| *i != id),
            SessionEvent::Hello { .. } => {}
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let config = SessionConfig::default().with_max_incoming_calls(8).with_max_outgoing_calls(8);
    let mut now = Instant::now();
    let mut client = Session::client(config.clone(), table(), b"t", now);
    let mut server = Session::server(config, table(), now);
    let (mut ci, mut si) = (Vec::new(), Vec::new());
    let mut bytes = data.iter().copied();
    while let Some(op) = bytes.next() {
        let arg = bytes.next().unwrap_or(0);
        match op % 12 {
            0 => {
                let _ = client.call(0, &[arg], Duration::from_millis(u64::from(arg) * 10), now);
            }
            1 => {
                let _ = server.call(1, &[arg], Duration::from_millis(u64::from(arg) * 10), now);
            }
            2 => {
                let _ = client.send_event(2, &[arg]);
            }
            3 => {
                let _ = server.send_event(3, &[arg]);
            }
            4 if !si.is_empty() => {
                let id = si.remove(arg as usize % si.len());
                server.respond(id, Status::Ok, &[arg]);
            }
            5 if !ci.is_empty() => {
                let id = ci.remove(arg as usize % ci.len());
                client.respond(id, Status::Rejected, b"no");
            }
            6 => {
                client.cancel(u32::from(arg % 16));
            }
            7 => {
                now += Duration::from_millis(u64::from(arg) * 20);
                client.handle_timeout(now);
                server.handle_timeout(now);
            }
            8 => {
                // Hostile bytes: up to `arg % 16` raw bytes into one side.
                let n = (arg % 16) as usize;
                let junk: Vec<u8> = bytes.by_ref().take(n).collect();
                let target = if arg & 0x80 != 0 { &mut server } else { &mut client };
                target.handle_input(&mut BytesMut::from(&junk[..]), now);
            }
            9 => server.accept(1),
            _ => {
                deliver(&mut client, &mut server, now);
                deliver(&mut server, &mut client, now);
            }
        }
        drain(&mut client, &mut ci);
        drain(&mut server, &mut si);
    }
    client.handle_transport_closed(None);
    server.handle_transport_closed(None);
    drain(&mut client, &mut ci);
    drain(&mut server, &mut si);
    assert_eq!(client.pending_calls() + server.pending_calls(), 0);
    assert_eq!(client.incoming_calls() + server.incoming_calls(), 0);
    assert!(client.is_closed() && server.is_closed());
});
