//! The session core driven with a fake clock and an in-memory pair of peers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use volley_proto::*;

const SERVER_FN: RemoteId = 0; // "a.fn" client → server
const CLIENT_FN: RemoteId = 1; // "b.fn" server → client
const SERVER_EVENT: RemoteId = 2; // "c.event" client → server
const CLIENT_EVENT: RemoteId = 3; // "d.event" server → client

fn table(extra: Option<&'static str>) -> Arc<RemoteTable> {
    let mut specs = vec![
        RemoteSpec {
            name: "a.fn",
            kind: RemoteKind::Function,
            direction: Direction::ToServer,
            shape: 0,
        },
        RemoteSpec {
            name: "b.fn",
            kind: RemoteKind::Function,
            direction: Direction::ToClient,
            shape: 0,
        },
        RemoteSpec {
            name: "c.event",
            kind: RemoteKind::Event,
            direction: Direction::ToServer,
            shape: 0,
        },
        RemoteSpec {
            name: "d.event",
            kind: RemoteKind::Event,
            direction: Direction::ToClient,
            shape: 0,
        },
    ];
    if let Some(name) = extra {
        specs.push(RemoteSpec {
            name,
            kind: RemoteKind::Event,
            direction: Direction::ToClient,
            shape: 0,
        });
    }
    Arc::new(RemoteTable::new(specs).unwrap())
}

/// Two sessions joined by a perfect in-memory link, with a shared fake clock.
struct Pair {
    now: Instant,
    client: Session,
    server: Session,
    client_events: Vec<SessionEvent>,
    server_events: Vec<SessionEvent>,
    /// Bytes each side wrote, for checking what crossed the wire.
    to_server: Vec<u8>,
    to_client: Vec<u8>,
}

impl Pair {
    fn new(config: SessionConfig) -> Self {
        Self::with_tables(config, table(None), table(None))
    }

    fn with_tables(config: SessionConfig, client_table: Arc<RemoteTable>, server_table: Arc<RemoteTable>) -> Self {
        let now = Instant::now();
        Self {
            now,
            client: Session::client(config.clone(), client_table, b"token", now),
            server: Session::server(config, server_table, now),
            client_events: Vec::new(),
            server_events: Vec::new(),
            to_server: Vec::new(),
            to_client: Vec::new(),
        }
    }

    /// A pair past the handshake, with its events cleared.
    fn connected() -> Self {
        Self::connected_with(SessionConfig::default())
    }

    fn connected_with(config: SessionConfig) -> Self {
        let mut pair = Self::new(config);
        pair.drive();
        assert_eq!(
            pair.server_events,
            [SessionEvent::Hello {
                token: Bytes::from_static(b"token")
            }]
        );
        pair.server.accept(1);
        pair.drive();
        assert!(pair.client.is_open() && pair.server.is_open());
        // Each side pings at once on opening (the round-trip time); the
        // driver fires that timer right away.
        assert_eq!(pair.server.poll_timeout(), Some(pair.now));
        pair.advance_to(pair.now);
        assert!(pair.server.rtt().is_some() && pair.client.rtt().is_some());
        pair.client_events.clear();
        pair.server_events.clear();
        pair
    }

    /// Moves bytes both ways until neither side has anything to send.
    fn drive(&mut self) {
        loop {
            let mut wire = Vec::new();
            self.client.take_transmit(&mut wire);
            let mut moved = !wire.is_empty();
            self.to_server.extend_from_slice(&wire);
            self.server.handle_input(&mut BytesMut::from(&wire[..]), self.now);
            let mut wire = Vec::new();
            self.server.take_transmit(&mut wire);
            moved |= !wire.is_empty();
            self.to_client.extend_from_slice(&wire);
            self.client.handle_input(&mut BytesMut::from(&wire[..]), self.now);
            while let Some(e) = self.client.poll_event() {
                self.client_events.push(e);
            }
            while let Some(e) = self.server.poll_event() {
                self.server_events.push(e);
            }
            if !moved {
                return;
            }
        }
    }

    /// Sets the clock and fires both sides' timers.
    fn advance_to(&mut self, now: Instant) {
        self.now = now;
        self.client.handle_timeout(now);
        self.server.handle_timeout(now);
        self.drive();
    }
}

fn ended(id: CallId, outcome: CallOutcome) -> SessionEvent {
    SessionEvent::CallEnded { id, outcome }
}

fn ok(payload: &'static [u8]) -> CallOutcome {
    CallOutcome::Response {
        status: Status::Ok,
        payload: Bytes::from_static(payload).into(),
    }
}

#[test]
fn call_round_trip_both_directions() {
    let mut p = Pair::connected();
    let id = p
        .client
        .call(SERVER_FN, b"ping", Duration::from_secs(10), p.now)
        .unwrap();
    p.drive();
    assert_eq!(
        p.server_events,
        [SessionEvent::Request {
            id,
            remote: SERVER_FN,
            payload: Bytes::from_static(b"ping").into()
        }]
    );
    assert!(p.server.respond(id, Status::Ok, b"pong"));
    p.drive();
    assert_eq!(p.client_events, [ended(id, ok(b"pong"))]);

    p.server_events.clear();
    let id = p
        .server
        .call(CLIENT_FN, b"prompt", Duration::from_secs(10), p.now)
        .unwrap();
    p.drive();
    assert!(matches!(
        p.client_events[1],
        SessionEvent::Request { remote: CLIENT_FN, .. }
    ));
    assert!(p.client.respond(id, Status::Rejected, b"no thanks"));
    p.drive();
    assert_eq!(
        p.server_events,
        [ended(
            id,
            CallOutcome::Response {
                status: Status::Rejected,
                payload: Bytes::from_static(b"no thanks").into()
            }
        )]
    );
    assert_eq!((p.client.pending_calls(), p.server.incoming_calls()), (0, 0));
    assert_eq!((p.server.pending_calls(), p.client.incoming_calls()), (0, 0));
}

#[test]
fn events_both_directions_and_direction_is_checked() {
    let mut p = Pair::connected();
    p.client.send_event(SERVER_EVENT, b"hi").unwrap();
    p.server.send_event(CLIENT_EVENT, b"all").unwrap();
    p.drive();
    assert_eq!(
        p.server_events,
        [SessionEvent::Event {
            remote: SERVER_EVENT,
            payload: Bytes::from_static(b"hi").into()
        }]
    );
    assert_eq!(
        p.client_events,
        [SessionEvent::Event {
            remote: CLIENT_EVENT,
            payload: Bytes::from_static(b"all").into()
        }]
    );
    // Neither side may send what the other side sends.
    assert_eq!(
        p.client.send_event(CLIENT_EVENT, b""),
        Err(SendError::WrongRemote(CLIENT_EVENT))
    );
    assert_eq!(
        p.server.call(SERVER_FN, b"", Duration::from_secs(1), p.now),
        Err(SendError::WrongRemote(SERVER_FN))
    );
    assert_eq!(p.client.send_event(99, b""), Err(SendError::WrongRemote(99)));
}

#[test]
fn timeout_fires_exactly_at_the_deadline_and_cancel_crosses_the_wire() {
    let mut p = Pair::connected();
    let timeout = Duration::from_millis(2500);
    let start = p.now;
    let id = p.client.call(SERVER_FN, b"slow", timeout, start).unwrap();
    p.drive();
    assert_eq!(p.client.poll_timeout(), Some(start + timeout));

    p.advance_to(start + timeout - Duration::from_nanos(1));
    assert!(p.client_events.is_empty(), "fired early: {:?}", p.client_events);

    p.advance_to(start + timeout);
    assert_eq!(p.client_events, [ended(id, CallOutcome::TimedOut)]);
    // The server was told, answered the cancel, and its handler must stop.
    assert_eq!(p.server_events.last(), Some(&SessionEvent::RequestCancelled { id }));
    assert_eq!(p.server.incoming_calls(), 0);
    // The cancel's answer freed the id on the client too.
    assert_eq!(p.client.pending_calls(), 0);
    // A handler finishing late sends nothing.
    assert!(!p.server.respond(id, Status::Ok, b"late"));
}

#[test]
fn late_answer_is_dropped_and_its_id_is_not_reused_until_then() {
    let mut p = Pair::connected();
    let start = p.now;
    let id = p.client.call(SERVER_FN, b"x", Duration::from_secs(1), start).unwrap();
    p.drive();
    // The server answers, but the answer is still on the wire when the call times out.
    assert!(p.server.respond(id, Status::Ok, b"late"));
    let mut in_flight = Vec::new();
    p.server.take_transmit(&mut in_flight);
    p.now = start + Duration::from_secs(1);
    p.client.handle_timeout(p.now);
    while let Some(e) = p.client.poll_event() {
        p.client_events.push(e);
    }
    assert_eq!(p.client_events, [ended(id, CallOutcome::TimedOut)]);
    // While the late answer is owed, a new call gets another id.
    let second = p.client.call(SERVER_FN, b"y", Duration::from_secs(10), p.now).unwrap();
    assert_ne!(second, id);
    // The late answer arrives and is dropped silently.
    p.client.handle_input(&mut BytesMut::from(&in_flight[..]), p.now);
    assert_eq!(p.client.poll_event(), None);
    assert!(p.client.is_open());
    assert_eq!(p.client.pending_calls(), 1);
}

#[test]
fn freed_call_ids_are_reused_last_freed_first() {
    let mut p = Pair::connected();
    let timeout = Duration::from_secs(10);
    let call = |p: &mut Pair| p.client.call(SERVER_FN, b"x", timeout, p.now).unwrap();
    let ids: Vec<CallId> = (0..3).map(|_| call(&mut p)).collect();
    assert_eq!(ids, [0, 1, 2]);
    p.drive();
    // The first and the last are answered; taking their ends frees their ids.
    for id in [ids[0], ids[2]] {
        assert!(p.server.respond(id, Status::Ok, b""));
    }
    p.drive();
    let next: Vec<CallId> = (0..3).map(|_| call(&mut p)).collect();
    assert_eq!(next, [ids[2], ids[0], 3], "the last freed first, then a new id");
    assert_eq!(p.client.pending_calls(), 4);
}

#[test]
fn dropping_interest_frees_both_tables() {
    let mut p = Pair::connected();
    let id = p.client.call(SERVER_FN, b"x", Duration::from_secs(10), p.now).unwrap();
    p.drive();
    assert_eq!(p.server.incoming_calls(), 1);
    assert!(p.client.cancel(id));
    p.drive();
    assert_eq!(p.server_events.last(), Some(&SessionEvent::RequestCancelled { id }));
    assert_eq!((p.client.pending_calls(), p.server.incoming_calls()), (0, 0));
    assert!(
        p.client_events.is_empty(),
        "a cancelled call reports nothing: {:?}",
        p.client_events
    );
    assert_eq!(
        p.client.poll_timeout(),
        Some(p.now + Duration::from_secs(10)),
        "the call deadline is gone"
    );
}

#[test]
fn losing_the_peer_resolves_every_pending_call_both_ways() {
    let mut p = Pair::connected();
    let a = p.client.call(SERVER_FN, b"1", Duration::from_secs(10), p.now).unwrap();
    let b = p.client.call(SERVER_FN, b"2", Duration::from_secs(10), p.now).unwrap();
    let c = p.server.call(CLIENT_FN, b"3", Duration::from_secs(10), p.now).unwrap();
    p.drive();
    p.client_events.clear();
    p.server_events.clear();

    p.server.handle_transport_closed(None);
    p.client.handle_transport_closed(Some("connection reset".into()));
    let server: Vec<_> = std::iter::from_fn(|| p.server.poll_event()).collect();
    let client: Vec<_> = std::iter::from_fn(|| p.client.poll_event()).collect();
    // Incoming calls are cancelled in no particular order.
    assert_eq!(server.len(), 4);
    assert_eq!(server[0], ended(c, CallOutcome::Disconnected));
    assert!(server[1..3].contains(&SessionEvent::RequestCancelled { id: a }));
    assert!(server[1..3].contains(&SessionEvent::RequestCancelled { id: b }));
    assert_eq!(
        server[3],
        SessionEvent::Closed {
            reason: CloseReason::TransportClosed
        }
    );
    assert_eq!(
        client,
        [
            ended(a, CallOutcome::Disconnected),
            ended(b, CallOutcome::Disconnected),
            SessionEvent::RequestCancelled { id: c },
            SessionEvent::Closed {
                reason: CloseReason::TransportError("connection reset".into())
            },
        ]
    );
    assert_eq!(p.client.pending_calls() + p.server.pending_calls(), 0);
    assert_eq!(p.client.poll_timeout(), None);
    assert_eq!(
        p.client.call(SERVER_FN, b"", Duration::from_secs(1), p.now),
        Err(SendError::NotOpen)
    );
}

#[test]
fn pending_ids_are_unique_and_small() {
    let mut p = Pair::connected();
    let ids: Vec<_> = (0..64)
        .map(|_| p.client.call(SERVER_FN, b"", Duration::from_secs(10), p.now).unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 64);
    assert!(
        ids.iter().all(|&id| id < 64),
        "ids stay under the pending limit: {ids:?}"
    );
    assert_eq!(
        p.client.call(SERVER_FN, b"", Duration::from_secs(10), p.now),
        Err(SendError::TooManyPending)
    );
}

#[test]
fn requests_beyond_the_in_flight_limit_are_answered_overloaded() {
    let config = SessionConfig::default()
        .with_max_incoming_calls(2)
        .with_max_outgoing_calls(10);
    let mut p = Pair::connected_with(config);
    let ids: Vec<_> = (0..3)
        .map(|_| p.client.call(SERVER_FN, b"", Duration::from_secs(10), p.now).unwrap())
        .collect();
    p.drive();
    assert_eq!(p.server.incoming_calls(), 2);
    assert_eq!(
        p.client_events,
        [ended(
            ids[2],
            CallOutcome::Response {
                status: Status::Overloaded,
                payload: Bytes::new().into()
            }
        )]
    );
    // Once one finishes there is room again.
    assert!(p.server.respond(ids[0], Status::Ok, b""));
    p.client.call(SERVER_FN, b"", Duration::from_secs(10), p.now).unwrap();
    p.drive();
    assert_eq!(p.server.incoming_calls(), 2);
}

#[test]
fn handshake_refuses_other_declarations_with_a_reason() {
    let mut p = Pair::with_tables(SessionConfig::default(), table(Some("e.extra")), table(None));
    p.drive();
    assert!(matches!(
        p.client_events.as_slice(),
        [SessionEvent::Closed {
            reason: CloseReason::Refused {
                code: RefuseCode::RemotesMismatch,
                ..
            }
        }]
    ));
    assert!(matches!(
        p.server_events.as_slice(),
        [SessionEvent::Closed {
            reason: CloseReason::RefusedPeer {
                code: RefuseCode::RemotesMismatch,
                ..
            }
        }]
    ));
}

#[test]
fn authenticator_refusal_reaches_the_client() {
    let mut p = Pair::new(SessionConfig::default());
    p.drive();
    p.server.refuse(RefuseCode::Unauthorized, "bad token");
    p.drive();
    assert_eq!(
        p.client_events,
        [SessionEvent::Closed {
            reason: CloseReason::Refused {
                code: RefuseCode::Unauthorized,
                message: "bad token".into()
            }
        }]
    );
}

#[test]
fn silent_client_is_dropped_at_the_handshake_deadline() {
    let now = Instant::now();
    let mut server = Session::server(SessionConfig::default(), table(None), now);
    assert_eq!(server.poll_timeout(), Some(now + Duration::from_secs(5)));
    server.handle_timeout(now + Duration::from_millis(4999));
    assert!(!server.is_closed());
    server.handle_timeout(now + Duration::from_secs(5));
    assert_eq!(
        server.poll_event(),
        Some(SessionEvent::Closed {
            reason: CloseReason::HandshakeTimeout
        })
    );
}

#[test]
fn keep_alive_holds_a_quiet_link_and_a_silent_peer_is_dropped() {
    let mut p = Pair::connected();
    let start = p.now;
    // Both sides quiet for two minutes, timers firing each second: pings keep it up.
    for s in 1..=120 {
        p.advance_to(start + Duration::from_secs(s));
    }
    assert!(p.client.is_open() && p.server.is_open());

    // Now the client goes silent: it is dropped exactly at the idle timeout.
    let last = p.now;
    p.server
        .handle_timeout(last + Duration::from_secs(30) - Duration::from_millis(1));
    assert!(p.server.is_open());
    p.server.handle_timeout(last + Duration::from_secs(30));
    let events: Vec<_> = std::iter::from_fn(|| p.server.poll_event()).collect();
    assert_eq!(
        events,
        [SessionEvent::Closed {
            reason: CloseReason::IdleTimeout
        }]
    );
}

#[test]
fn malformed_input_closes_with_a_goodbye_naming_the_violation() {
    let mut p = Pair::connected();
    // An event the client would have to send, arriving at the client.
    let mut frame = Vec::new();
    Message::Event {
        remote: SERVER_EVENT,
        payload: &b""[..],
    }
    .encode(&mut frame);
    p.client.handle_input(&mut BytesMut::from(&frame[..]), p.now);
    assert!(p.client.is_closed());
    p.drive();
    assert!(matches!(
        p.server_events.as_slice(),
        [SessionEvent::Closed {
            reason: CloseReason::Remote {
                code: GoodbyeCode::ProtocolViolation,
                ..
            }
        }]
    ));

    // Garbage: an unknown tag.
    let mut p = Pair::connected();
    p.server.handle_input(&mut BytesMut::from(&[2u8, 0xee, 0][..]), p.now);
    assert_eq!(
        p.server.poll_event(),
        Some(SessionEvent::Closed {
            reason: CloseReason::ProtocolViolation("unknown message tag 238".into())
        })
    );
}

#[test]
fn a_peer_that_does_not_read_is_dropped_as_too_slow() {
    let config = SessionConfig::default().with_max_transmit_queue(1000);
    let mut p = Pair::connected_with(config);
    let mut sent = 0;
    while p.server.send_event(CLIENT_EVENT, &[0; 100]).is_ok() {
        sent += 1;
        assert!(sent < 100, "queue never filled");
    }
    assert!(p.server.transmit_len() < 1000 + 200);
    assert_eq!(
        std::iter::from_fn(|| p.server.poll_event()).last(),
        Some(SessionEvent::Closed {
            reason: CloseReason::PeerTooSlow
        })
    );
}

mod sequences {
    //! Random operation sequences from both peers: nothing panics, every call
    //! ends exactly once (unless its caller gave up on it), and once the link
    //! drops both sides' tables are empty.

    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    enum Op {
        ClientCall { timeout_ms: u16 },
        ServerCall { timeout_ms: u16 },
        ClientEvent,
        ServerEvent,
        ServerRespond { pick: usize, status: u8 },
        ClientRespond { pick: usize },
        ClientCancel { pick: usize },
        Advance { ms: u16 },
        Deliver,
        Garbage { to_server: bool, bytes: Vec<u8> },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u16..3000).prop_map(|timeout_ms| Op::ClientCall { timeout_ms }),
            2 => (1u16..3000).prop_map(|timeout_ms| Op::ServerCall { timeout_ms }),
            1 => Just(Op::ClientEvent),
            1 => Just(Op::ServerEvent),
            3 => (any::<usize>(), 0u8..7).prop_map(|(pick, status)| Op::ServerRespond { pick, status }),
            2 => any::<usize>().prop_map(|pick| Op::ClientRespond { pick }),
            1 => any::<usize>().prop_map(|pick| Op::ClientCancel { pick }),
            2 => (0u16..2000).prop_map(|ms| Op::Advance { ms }),
            4 => Just(Op::Deliver),
            1 => (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..12))
                .prop_map(|(to_server, bytes)| Op::Garbage { to_server, bytes }),
        ]
    }

    const STATUSES: [Status; 7] = [
        Status::Ok,
        Status::Rejected,
        Status::BadRequest,
        Status::Unprocessed,
        Status::Cancelled,
        Status::Overloaded,
        Status::RateLimited,
    ];

    /// Collects events and checks each call ends once.
    #[derive(Default)]
    struct Ledger {
        /// Our calls: id → ended yet?
        calls: HashMap<CallId, bool>,
        /// Requests from the peer awaiting our answer.
        incoming: Vec<CallId>,
        closed: bool,
    }

    impl Ledger {
        fn absorb(&mut self, session: &mut Session) -> Result<(), TestCaseError> {
            while let Some(event) = session.poll_event() {
                match event {
                    SessionEvent::CallEnded { id, .. } => {
                        let ended = self.calls.get_mut(&id);
                        prop_assert!(ended.is_some(), "end of unknown call {}", id);
                        let ended = ended.unwrap();
                        prop_assert!(!*ended, "call {} ended twice", id);
                        *ended = true;
                    }
                    SessionEvent::Request { id, .. } => self.incoming.push(id),
                    SessionEvent::RequestCancelled { id } => self.incoming.retain(|i| *i != id),
                    SessionEvent::Closed { .. } => {
                        prop_assert!(!self.closed, "closed twice");
                        self.closed = true;
                    }
                    _ => {}
                }
            }
            Ok(())
        }

        fn started(&mut self, id: CallId) -> Result<(), TestCaseError> {
            // An id may be reused only once its previous call ended.
            if let Some(ended) = self.calls.insert(id, false) {
                prop_assert!(ended, "id {} reused while its call was pending", id);
            }
            Ok(())
        }
    }

    fn deliver(from: &mut Session, to: &mut Session, now: Instant) {
        let mut wire = Vec::new();
        from.take_transmit(&mut wire);
        to.handle_input(&mut BytesMut::from(&wire[..]), now);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn any_sequence_keeps_the_books_balanced(ops in proptest::collection::vec(op(), 1..80)) {
            let mut p = Pair::connected();
            let (mut c, mut s) = (Ledger::default(), Ledger::default());
            let mut given_up = Vec::new();
            for op in ops {
                match op {
                    Op::ClientCall { timeout_ms } => {
                        if let Ok(id) = p.client.call(SERVER_FN, b"x", Duration::from_millis(timeout_ms.into()), p.now) {
                            c.started(id)?;
                        }
                    }
                    Op::ServerCall { timeout_ms } => {
                        if let Ok(id) = p.server.call(CLIENT_FN, b"y", Duration::from_millis(timeout_ms.into()), p.now) {
                            s.started(id)?;
                        }
                    }
                    Op::ClientEvent => { let _ = p.client.send_event(SERVER_EVENT, b"e"); }
                    Op::ServerEvent => { let _ = p.server.send_event(CLIENT_EVENT, b"e"); }
                    Op::ServerRespond { pick, status } => {
                        if !s.incoming.is_empty() {
                            let id = s.incoming.remove(pick % s.incoming.len());
                            p.server.respond(id, STATUSES[status as usize], b"r");
                        }
                    }
                    Op::ClientRespond { pick } => {
                        if !c.incoming.is_empty() {
                            let id = c.incoming.remove(pick % c.incoming.len());
                            p.client.respond(id, Status::Ok, b"r");
                        }
                    }
                    Op::ClientCancel { pick } => {
                        let open: Vec<_> = c.calls.iter().filter(|(_, ended)| !**ended).map(|(id, _)| *id).collect();
                        if !open.is_empty() {
                            let id = open[pick % open.len()];
                            if p.client.cancel(id) {
                                // The caller gave up: no end is reported for it.
                                c.calls.insert(id, true);
                                given_up.push(id);
                            }
                        }
                    }
                    Op::Advance { ms } => {
                        p.now += Duration::from_millis(ms.into());
                        p.client.handle_timeout(p.now);
                        p.server.handle_timeout(p.now);
                    }
                    Op::Deliver => {
                        deliver(&mut p.client, &mut p.server, p.now);
                        deliver(&mut p.server, &mut p.client, p.now);
                    }
                    Op::Garbage { to_server, bytes } => {
                        let target = if to_server { &mut p.server } else { &mut p.client };
                        target.handle_input(&mut BytesMut::from(&bytes[..]), p.now);
                    }
                }
                c.absorb(&mut p.client)?;
                s.absorb(&mut p.server)?;
            }
            // The link drops: everything still pending ends, both tables empty.
            p.client.handle_transport_closed(None);
            p.server.handle_transport_closed(None);
            c.absorb(&mut p.client)?;
            s.absorb(&mut p.server)?;
            prop_assert!(c.calls.values().all(|ended| *ended), "client call never ended: {:?}", c.calls);
            prop_assert!(s.calls.values().all(|ended| *ended), "server call never ended: {:?}", s.calls);
            prop_assert_eq!(p.client.pending_calls() + p.server.pending_calls(), 0);
            prop_assert_eq!(p.client.incoming_calls() + p.server.incoming_calls(), 0);
            prop_assert!(c.closed && s.closed);
        }
    }
}

#[test]
fn unreliable_events_are_size_limited_and_dropped_when_backed_up() {
    let specs = vec![
        RemoteSpec {
            name: "pos",
            kind: RemoteKind::UnreliableEvent,
            direction: Direction::ToClient,
            shape: 0,
        },
        RemoteSpec {
            name: "news",
            kind: RemoteKind::Event,
            direction: Direction::ToClient,
            shape: 0,
        },
    ];
    let t = Arc::new(RemoteTable::new(specs).unwrap());
    let (news, pos) = (t.id("news").unwrap(), t.id("pos").unwrap());
    let config = SessionConfig::default()
        .with_unreliable_backlog(1000)
        .with_max_unreliable_len(100);
    let mut p = Pair::with_tables(config, t.clone(), t);
    p.drive();
    p.server.accept(1);
    p.drive();
    p.client_events.clear();

    assert_eq!(
        p.server.send_event(pos, &[0; 101]),
        Err(SendError::TooLarge { len: 101, max: 100 })
    );
    // While the output is not backed up, unreliable events go out like any other.
    p.server.send_event(pos, &[1; 100]).unwrap();
    p.drive();
    assert_eq!(p.client_events.len(), 1);
    // The peer stops reading: reliable events still queue, unreliable ones are dropped.
    for _ in 0..20 {
        p.server.send_event(news, &[2; 100]).unwrap();
    }
    assert_eq!(p.server.send_event(pos, &[3; 10]), Err(SendError::Dropped));
    assert_eq!(p.server.unreliable_dropped(), 1);
    // Once drained, they flow again.
    p.drive();
    p.server.send_event(pos, &[4; 10]).unwrap();
}

/// A peer that sends pings and never reads: every pong counts against the
/// output limit, and once it is reached the session takes no more input
/// (each frame could add an answer); still backed up at the idle timeout,
/// the peer is closed as too slow.
#[test]
fn input_stops_while_the_output_is_at_its_limit() {
    let config = SessionConfig::default().with_max_transmit_queue(100);
    let mut p = Pair::connected_with(config);
    // The opening ping's pong is in; the server's output is empty.
    let mut wire = Vec::new();
    p.server.take_transmit(&mut wire);
    let mut pings = Vec::new();
    for _ in 0..1000 {
        Message::<&[u8]>::Ping { seq: 1 }.encode(&mut pings);
    }
    let mut input = BytesMut::from(&pings[..]);
    p.server.handle_input(&mut input, p.now);
    // A pong is as long as a ping (3 bytes): input stopped once 100 were queued.
    assert!(p.server.is_backed_up());
    let unsent = p.server.unsent_len();
    assert!((100..103).contains(&unsent), "{unsent}");
    assert_eq!(pings.len() - input.len(), unsent);
    // The transport took them but wrote only 50 bytes: the rest still count.
    let mut wire = Vec::new();
    p.server.take_transmit(&mut wire);
    p.server.set_transport_backlog(unsent - 50);
    p.server.handle_input(&mut input, p.now);
    assert!(p.server.is_backed_up());
    assert_eq!(pings.len() - input.len(), p.server.unsent_len() + 50);
    // Never drained: at the idle timeout the peer is too slow, not idle.
    let idle = p.server.config().idle_timeout;
    p.server.handle_timeout(p.now + idle);
    let mut closed = None;
    while let Some(event) = p.server.poll_event() {
        if let SessionEvent::Closed { reason } = event {
            closed = Some(reason);
        }
    }
    assert_eq!(closed, Some(CloseReason::PeerTooSlow));
}

#[test]
fn input_taken_in_batches_leaves_the_rest_whole() {
    let mut p = Pair::connected();
    let mut wire = Vec::new();
    p.server.take_transmit(&mut wire);
    let mut pings = Vec::new();
    for seq in 0..10 {
        Message::<&[u8]>::Ping { seq }.encode(&mut pings);
    }
    // Half of the eleventh frame has arrived too.
    let mut input = BytesMut::from(&pings[..]);
    input.extend_from_slice(&pings[..1]);
    let frame = pings.len() / 10;
    for taken in [4, 8] {
        assert!(
            p.server.handle_input_up_to(&mut input, p.now, 4),
            "stopped at the limit"
        );
        assert_eq!(input.len(), pings.len() + 1 - taken * frame);
        let mut pongs = Vec::new();
        p.server.take_transmit(&mut pongs);
        assert_eq!(pongs.len(), 4 * frame, "one pong per frame taken");
    }
    // Two whole frames left, then the partial one: not at the limit.
    assert!(!p.server.handle_input_up_to(&mut input, p.now, 4));
    assert_eq!(&input[..], &pings[..1]);
    let mut pongs = Vec::new();
    p.server.take_transmit(&mut pongs);
    assert_eq!(pongs.len(), 2 * frame);
}

#[test]
fn traffic_counts_every_frame_and_byte_each_way() {
    let mut p = Pair::connected();
    let (client_before, server_before) = (p.client.traffic(), p.server.traffic());
    // The handshake crossed already, each side's out being the other's in.
    assert!(client_before.frames_out >= 1 && client_before.bytes_out > 0);
    assert_eq!(client_before.bytes_out, server_before.bytes_in);
    assert_eq!(server_before.frames_out, client_before.frames_in);
    let id = p
        .client
        .call(SERVER_FN, b"ping", Duration::from_secs(10), p.now)
        .unwrap();
    p.drive();
    assert!(p.server.respond(id, Status::Ok, b"pong"));
    p.drive();
    let (client, server) = (p.client.traffic(), p.server.traffic());
    assert_eq!(client.frames_out - client_before.frames_out, 1, "one request");
    assert_eq!(server.frames_in - server_before.frames_in, 1);
    assert_eq!(server.frames_out - server_before.frames_out, 1, "one response");
    // A request of 4 payload bytes: tag, id, remote and length prefix around it.
    let request_bytes = client.bytes_out - client_before.bytes_out;
    assert!((4 + 4..=4 + 12).contains(&request_bytes), "{request_bytes}");
    assert_eq!(client.bytes_out, server.bytes_in);
    assert_eq!(server.bytes_out, client.bytes_in);
}
