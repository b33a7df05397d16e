//! Resume in the session core: connections cut at random points (mid-frame,
//! either way, with calls and events in flight and more sent while away),
//! then resumed on a new connection. Every call ends once with its answer,
//! every handler runs once, every event arrives once and in order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use volley_proto::*;

mod common;
use common::table;

const SERVER_FN: RemoteId = 0; // client → server
const CLIENT_FN: RemoteId = 1; // server → client
const SERVER_EVENT: RemoteId = 2; // client → server
const CLIENT_EVENT: RemoteId = 3; // server → client

fn config() -> SessionConfig {
    SessionConfig::default().with_resume_grace(Duration::from_secs(5))
}

const LONG: Duration = Duration::from_secs(60);

/// A small, seeded generator: each seed is one repeatable run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn n(payload: &[u8]) -> u32 {
    u32::from_le_bytes(payload.try_into().expect("4 bytes"))
}

/// What each side saw, to be checked once everything settled.
#[derive(Default)]
struct Seen {
    /// Requests handled, by their number (must each be 1).
    handled: BTreeMap<u32, u32>,
    /// Answers to our calls, by call number: the answer's number.
    answers: BTreeMap<u32, Vec<u32>>,
    /// Events received, in order.
    events: Vec<u32>,
    /// Our calls in flight: call id → number.
    calls: BTreeMap<CallId, u32>,
    away: u32,
    resumed: u32,
}

/// A client and a server session over a link that can be cut.
struct World {
    now: Instant,
    client: Session,
    server: Session,
    client_seen: Seen,
    server_seen: Seen,
    /// Bytes in flight each way on the current connection.
    to_server: BytesMut,
    to_client: BytesMut,
    next_token: u8,
}

fn token(byte: u8) -> ResumeToken {
    ResumeToken([byte; RESUME_TOKEN_LEN])
}

impl World {
    fn connected() -> Self {
        let now = Instant::now();
        let mut world = Self {
            now,
            client: Session::client(config(), table(), b"t", now),
            server: Session::server(config(), table(), now),
            client_seen: Seen::default(),
            server_seen: Seen::default(),
            to_server: BytesMut::new(),
            to_client: BytesMut::new(),
            next_token: 1,
        };
        world.move_bytes();
        assert!(matches!(world.server.poll_event(), Some(SessionEvent::Hello { .. })));
        assert!(
            world.server.accept_resumable(7, token(1)),
            "the client asked to be resumable"
        );
        world.settle();
        assert!(world.client.is_resumable() && world.server.is_resumable());
        world
    }

    /// Moves what both sides queued into the link, and what is in the link
    /// into both sides.
    fn move_bytes(&mut self) -> bool {
        self.fill_the_link();
        let moved = !self.to_server.is_empty() || !self.to_client.is_empty();
        self.server.handle_input(&mut self.to_server, self.now);
        self.client.handle_input(&mut self.to_client, self.now);
        moved
    }

    /// What both sides queued goes into the link.
    fn fill_the_link(&mut self) {
        let mut out = Vec::new();
        self.client.take_transmit(&mut out);
        self.to_server.extend_from_slice(&out);
        let mut out = Vec::new();
        self.server.take_transmit(&mut out);
        self.to_client.extend_from_slice(&out);
    }

    /// Each side acts on its events: requests are answered with their number
    /// plus one, at once.
    fn act(&mut self) {
        act(&mut self.client, &mut self.client_seen);
        act(&mut self.server, &mut self.server_seen);
    }

    fn settle(&mut self) {
        for _ in 0..1000 {
            self.act();
            if !self.move_bytes() {
                self.act();
                return;
            }
        }
        panic!("never settled");
    }

    /// The connection drops: each side has received only a prefix of what
    /// was in flight to it (cut anywhere, mid-frame too).
    fn cut(&mut self, rng: &mut Rng) {
        self.fill_the_link();
        let keep = rng.below(self.to_server.len() + 1);
        self.to_server.truncate(keep);
        let keep = rng.below(self.to_client.len() + 1);
        self.to_client.truncate(keep);
        self.server.handle_input(&mut self.to_server, self.now);
        self.client.handle_input(&mut self.to_client, self.now);
        // A partial frame left in either buffer is lost with the connection.
        self.to_server.clear();
        self.to_client.clear();
        self.server.handle_transport_closed(None);
        self.client.handle_transport_closed(None);
        self.act();
    }

    /// The client comes back on a new connection: a fresh server session
    /// reads its resume, and the server's session for the token takes it.
    fn resume(&mut self) {
        assert!(self.client.start_resume(self.now));
        let mut fresh = Session::server(config(), table(), self.now);
        let mut out = Vec::new();
        self.client.take_transmit(&mut out);
        fresh.handle_input(&mut BytesMut::from(&out[..]), self.now);
        let Some(SessionEvent::ResumeAsked { token: given, received }) = fresh.poll_event() else {
            panic!("no resume asked");
        };
        assert_eq!(given, token(self.next_token));
        self.next_token += 1;
        self.server
            .resume(received, token(self.next_token), self.now)
            .expect("resumed");
        let mut rest = Vec::new();
        fresh.take_transmit(&mut rest);
        assert!(rest.is_empty(), "the fresh session says nothing");
        self.settle();
    }
}

fn act(session: &mut Session, seen: &mut Seen) {
    while let Some(event) = session.poll_event() {
        match event {
            SessionEvent::Request { id, payload, .. } => {
                let x = n(&payload);
                *seen.handled.entry(x).or_default() += 1;
                session.respond(id, Status::Ok, &(x + 1).to_le_bytes());
            }
            SessionEvent::CallEnded { id, outcome } => {
                let x = seen.calls.remove(&id).expect("a call of ours");
                let answer = match outcome {
                    CallOutcome::Response {
                        status: Status::Ok,
                        payload,
                    } => n(&payload),
                    other => panic!("call {x} ended {other:?}"),
                };
                seen.answers.entry(x).or_default().push(answer);
            }
            SessionEvent::Event { payload, .. } => seen.events.push(n(&payload)),
            SessionEvent::Away => seen.away += 1,
            SessionEvent::Resumed => seen.resumed += 1,
            SessionEvent::Connected | SessionEvent::RequestCancelled { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Calls and events from both sides: `k` of each, numbered from `from`.
fn traffic(world: &mut World, from: u32, k: u32) {
    for x in from..from + k {
        let id = world.client.call(SERVER_FN, &x.to_le_bytes(), LONG, world.now).unwrap();
        world.client_seen.calls.insert(id, x);
        let id = world.server.call(CLIENT_FN, &x.to_le_bytes(), LONG, world.now).unwrap();
        world.server_seen.calls.insert(id, x);
        world.client.send_event(SERVER_EVENT, &x.to_le_bytes()).unwrap();
        world.server.send_event(CLIENT_EVENT, &x.to_le_bytes()).unwrap();
    }
}

fn check(seen: &Seen, total: u32, side: &str) {
    assert!(seen.calls.is_empty(), "{side}: calls never ended: {:?}", seen.calls);
    assert!(
        seen.handled.len() == total as usize && seen.handled.values().all(|&runs| runs == 1),
        "{side}: handler runs {:?}",
        seen.handled
    );
    for x in 0..total {
        assert_eq!(seen.answers.get(&x), Some(&vec![x + 1]), "{side}: answers to call {x}");
    }
    assert_eq!(seen.events, (0..total).collect::<Vec<_>>(), "{side}: events");
}

#[test]
fn cut_anywhere_and_resumed_nothing_is_lost_or_done_twice() {
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut world = World::connected();
        let mut next = 0;
        let cuts = 1 + rng.below(3) as u32;
        for _ in 0..cuts {
            // Some traffic settles, some is in flight when the cut comes.
            let k = 1 + rng.below(20) as u32;
            traffic(&mut world, next, k);
            next += k;
            for _ in 0..rng.below(4) {
                world.act();
                world.move_bytes();
            }
            let k = rng.below(10) as u32;
            traffic(&mut world, next, k);
            next += k;
            world.cut(&mut rng);
            // While away, both sides go on sending.
            let k = rng.below(10) as u32;
            traffic(&mut world, next, k);
            next += k;
            world.act();
            world.now += Duration::from_millis(rng.below(4_000) as u64);
            world.client.handle_timeout(world.now);
            world.server.handle_timeout(world.now);
            world.resume();
        }
        world.settle();
        check(&world.server_seen, next, &format!("seed {seed}, server"));
        check(&world.client_seen, next, &format!("seed {seed}, client"));
        assert_eq!((world.client_seen.away, world.client_seen.resumed), (cuts, cuts));
        assert_eq!((world.server_seen.away, world.server_seen.resumed), (cuts, cuts));
    }
}

/// Each side's calls ended once each, whatever the outcome; no request was
/// handed out twice.
fn every_call_ended_once(session: &mut Session, seen: &mut Seen, side: &str) {
    let mut ended = 0;
    while let Some(event) = session.poll_event() {
        match event {
            SessionEvent::CallEnded { id, .. } => {
                assert!(seen.calls.remove(&id).is_some(), "{side}: call {id} ended twice");
                ended += 1;
            }
            SessionEvent::Request { payload, .. } => *seen.handled.entry(n(&payload)).or_default() += 1,
            _ => {}
        }
    }
    assert!(
        seen.calls.is_empty(),
        "{side}: calls never ended: {:?} ({ended} ended)",
        seen.calls
    );
    assert!(
        seen.handled.values().all(|&runs| runs == 1),
        "{side}: {:?}",
        seen.handled
    );
}

#[test]
fn cut_and_never_resumed_every_call_still_ends_once() {
    for seed in 1..=200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
        let mut world = World::connected();
        let k = 1 + rng.below(20) as u32;
        traffic(&mut world, 0, k);
        for _ in 0..rng.below(4) {
            world.act();
            world.move_bytes();
        }
        world.cut(&mut rng);
        traffic(&mut world, k, rng.below(5) as u32);
        // The grace period passes on both sides, at different moments.
        for step in [4_000, 1_500] {
            world.now += Duration::from_millis(step);
            world.client.handle_timeout(world.now);
            world.server.handle_timeout(world.now);
        }
        let side = format!("seed {seed}");
        every_call_ended_once(&mut world.client, &mut world.client_seen, &format!("{side}, client"));
        every_call_ended_once(&mut world.server, &mut world.server_seen, &format!("{side}, server"));
        assert!(world.client.is_closed() && world.server.is_closed(), "{side}");
        assert!(!world.client.start_resume(world.now), "{side}: nothing left to resume");
    }
}

#[test]
fn acknowledged_frames_are_let_go() {
    let mut world = World::connected();
    for round in 0..4 {
        traffic(&mut world, round * 50, 50);
        world.settle();
    }
    // Acks ride with traffic every 32 frames (alone past 256): what is kept
    // is a few dozen frames' worth, not 200 calls'.
    assert!(world.client.resume_kept() < 600, "{}", world.client.resume_kept());
    assert!(world.server.resume_kept() < 600, "{}", world.server.resume_kept());
    // And at the next keep-alive, nothing.
    world.now += config().keep_alive_interval;
    world.client.handle_timeout(world.now);
    world.server.handle_timeout(world.now);
    world.settle();
    assert_eq!((world.client.resume_kept(), world.server.resume_kept()), (0, 0));
}

#[test]
fn a_deadline_passing_while_away_ends_the_call_and_its_cancel_arrives_after_the_resume() {
    let mut world = World::connected();
    let id = world
        .client
        .call(SERVER_FN, &1u32.to_le_bytes(), Duration::from_secs(1), world.now)
        .unwrap();
    // The request reaches the server; its answer is held back (a slow handler).
    world.move_bytes();
    let Some(SessionEvent::Request { id: theirs, .. }) = world.server.poll_event() else {
        panic!("no request");
    };
    world.cut(&mut Rng(1));
    world.now += Duration::from_secs(2);
    world.client.handle_timeout(world.now);
    assert_eq!(
        world.client.poll_event(),
        Some(SessionEvent::CallEnded {
            id,
            outcome: CallOutcome::TimedOut
        })
    );
    world.resume();
    assert!(
        world.server_seen.handled.is_empty(),
        "the request was not handed out twice"
    );
    let cancelled =
        std::iter::from_fn(|| world.server.poll_event()).any(|e| e == SessionEvent::RequestCancelled { id: theirs });
    assert!(
        cancelled || !world.server.respond(theirs, Status::Ok, &[]),
        "the cancel arrived"
    );
}

#[test]
fn the_grace_period_ends_the_session() {
    let mut world = World::connected();
    traffic(&mut world, 0, 3);
    world.cut(&mut Rng(5));
    world.now += Duration::from_secs(5);
    world.server.handle_timeout(world.now);
    let reasons: Vec<_> = std::iter::from_fn(|| world.server.poll_event())
        .filter_map(|e| match e {
            SessionEvent::Closed { reason } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, [CloseReason::NotResumed("the grace period passed".into())]);
    assert!(world.server.resume(0, token(9), world.now).is_err());
}

#[test]
fn a_full_buffer_while_away_ends_the_session() {
    let small = config().with_resume_buffer(256);
    let now = Instant::now();
    let mut client = Session::client(small.clone(), table(), b"t", now);
    let mut server = Session::server(small, table(), now);
    let mut out = Vec::new();
    client.take_transmit(&mut out);
    server.handle_input(&mut BytesMut::from(&out[..]), now);
    server.poll_event();
    assert!(server.accept_resumable(1, token(1)));
    server.handle_transport_closed(None);
    assert_eq!(server.poll_event(), Some(SessionEvent::Connected));
    assert_eq!(server.poll_event(), Some(SessionEvent::Away));
    for x in 0..100u32 {
        if server.send_event(CLIENT_EVENT, &x.to_le_bytes()).is_err() {
            break;
        }
    }
    assert!(server.is_closed(), "memory stays bounded: the session let go");
    let closed = std::iter::from_fn(|| server.poll_event()).any(|e| {
        matches!(
            e,
            SessionEvent::Closed {
                reason: CloseReason::NotResumed(_)
            }
        )
    });
    assert!(closed);
}

#[test]
fn a_resume_that_claims_frames_never_sent_is_refused() {
    let mut world = World::connected();
    traffic(&mut world, 0, 2);
    world.settle();
    world.cut(&mut Rng(3));
    let err = world.server.resume(1_000, token(2), world.now).unwrap_err();
    assert!(err.contains("1000"), "{err}");
    // The session is still away, and a right resume still works.
    assert!(world.server.is_away());
    world.resume();
}

#[test]
fn without_resume_on_either_side_nothing_changes() {
    let now = Instant::now();
    // A client without resume: the server's accept_resumable says no.
    let mut client = Session::client(SessionConfig::default(), table(), b"t", now);
    let mut server = Session::server(config(), table(), now);
    let mut out = Vec::new();
    client.take_transmit(&mut out);
    server.handle_input(&mut BytesMut::from(&out[..]), now);
    server.poll_event();
    assert!(!server.accept_resumable(1, token(1)));
    server.handle_transport_closed(None);
    assert!(server.is_closed(), "a lost connection closes as before");
    // A server without resume: the client learns it from the frame after the welcome.
    let mut client = Session::client(config(), table(), b"t", now);
    let mut server = Session::server(SessionConfig::default(), table(), now);
    let mut out = Vec::new();
    client.take_transmit(&mut out);
    server.handle_input(&mut BytesMut::from(&out[..]), now);
    server.poll_event();
    assert!(!server.accept_resumable(1, token(1)));
    server.send_event(CLIENT_EVENT, &5u32.to_le_bytes()).unwrap();
    let mut out = Vec::new();
    server.take_transmit(&mut out);
    client.handle_input(&mut BytesMut::from(&out[..]), now);
    assert!(!client.is_resumable());
    let events: Vec<_> = std::iter::from_fn(|| client.poll_event()).collect();
    assert!(
        events.iter().any(|e| matches!(e, SessionEvent::Event { .. })),
        "{events:?}"
    );
}

/// A lost connection is often reported twice, a write failing and then the
/// read ending: the session stays away, resumable (it closed, and the
/// client joined as a new player).
#[test]
fn a_loss_told_twice_leaves_the_session_away() {
    let mut world = World::connected();
    world.client.handle_transport_closed(Some("connection reset".into()));
    world.client.handle_transport_closed(None);
    world.server.handle_transport_closed(None);
    world.server.handle_transport_closed(Some("broken pipe".into()));
    world.act();
    assert!(!world.client.is_closed() && !world.server.is_closed());
    assert_eq!((world.client_seen.away, world.server_seen.away), (1, 1));
    world.resume();
    assert_eq!(world.client_seen.resumed, 1);
}
