//! What volley counts, always on: per remote (calls, events, bytes, outcomes
//! by kind, latency), per connection (calls, events, errors by kind), and
//! the plain-data snapshots the API returns. Counting is a few relaxed
//! atomic adds per call; latencies go into fixed-size histograms.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use volley_proto::{RemoteId, Status};

use crate::error::FunctionError;

/// Outcome kinds, by index: success, then each `FunctionError` kind.
const KINDS: [&str; 11] = [
    "ok",
    "timeout",
    "cancelled",
    "bad_request",
    "invalid_result",
    "unprocessed",
    "rejected",
    "disconnected",
    "overloaded",
    "rate_limited",
    "too_large",
];

/// A call's `tracing` span, if a subscriber may want `debug`: its outcome
/// and duration are recorded when it ends ([`record_end`]).
///
/// `None` rather than a disabled span when no subscriber takes `debug` at
/// all: making and dropping a disabled span cost about 80 instructions per
/// call (two spans, one at each end), a cheap part of a call but paid on
/// every one.
///
/// The remote's name is looked up only for a span: with a thousand
/// connections, the protocol's table is a cache miss away on every call.
pub(crate) fn call_span(remote: impl FnOnce() -> &'static str, direction: &'static str) -> Option<tracing::Span> {
    if !tracing::level_enabled!(tracing::Level::DEBUG) {
        return None;
    }
    let remote = remote();
    let span = tracing::debug_span!(
        "call",
        remote,
        direction,
        outcome = tracing::field::Empty,
        duration_us = tracing::field::Empty,
    );
    (!span.is_disabled()).then_some(span)
}

/// Records how a call ended, kind `kind`, after `took` if it was timed.
pub(crate) fn record_end(span: Option<&tracing::Span>, kind: usize, took: Option<Duration>) {
    if let Some(span) = span {
        span.record("outcome", kind_name(kind));
        if let Some(took) = took {
            span.record("duration_us", took.as_micros() as u64);
        }
    }
}

/// The name of outcome kind `kind` (`ok`, `timeout`, …).
pub(crate) fn kind_name(kind: usize) -> &'static str {
    KINDS.get(kind).copied().unwrap_or("unprocessed")
}

/// The kind of a call's end, as an index into `KINDS`.
pub(crate) fn kind_of<T>(result: &Result<T, FunctionError>) -> usize {
    match result {
        Ok(_) => 0,
        Err(FunctionError::Timeout) => 1,
        Err(FunctionError::Cancelled) => 2,
        Err(FunctionError::BadRequest) => 3,
        Err(FunctionError::InvalidResult) => 4,
        Err(FunctionError::Rejected(_)) => 6,
        Err(FunctionError::Disconnected) => 7,
        Err(FunctionError::Overloaded) => 8,
        Err(FunctionError::RateLimited) => 9,
        Err(FunctionError::TooLarge) => 10,
        Err(_) => 5,
    }
}

/// The kind of an answer this side sent.
pub(crate) fn kind_of_status(status: Status) -> usize {
    match status {
        Status::Ok => 0,
        Status::BadRequest => 3,
        Status::Rejected => 6,
        Status::Overloaded => 8,
        Status::RateLimited => 9,
        Status::TooLarge => 10,
        Status::Cancelled => 2,
        _ => 5,
    }
}

fn by_kind(counts: &[AtomicU64; KINDS.len()]) -> BTreeMap<String, u64> {
    KINDS
        .iter()
        .zip(counts)
        .map(|(name, n)| (name.to_string(), n.load(Relaxed)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Calls timed, one in this many per connection each way (the first
/// included, [`is_timed`]): reading the clock twice per call cost more
/// than all the counting (pipelined calls, `volley-bench`), and a sample
/// keeps the percentiles.
const TIMED_ONE_IN: u64 = 8;

/// Whether a connection's call number `n` (counting from 0, each way) is
/// one of those timed.
pub(crate) fn is_timed(n: u64) -> bool {
    n % TIMED_ONE_IN == 0
}

/// Sub-buckets per power of two: latencies are kept to within 1/8 (12.5 %).
const SUB: usize = 8;
/// Powers of two of microseconds covered: up to 2^32 µs (71 minutes).
const OCTAVES: usize = 32;

/// A latency histogram of fixed size: log-linear buckets of microseconds,
/// made on the first value (2 KiB: a remote never called costs nothing).
#[derive(Default)]
struct Histogram {
    buckets: std::sync::OnceLock<Box<[AtomicU64]>>,
    max: AtomicU64,
}

impl Histogram {
    fn bucket(micros: u64) -> usize {
        if micros < SUB as u64 {
            return micros as usize;
        }
        let octave = 63 - micros.leading_zeros() as usize; // >= 3
        let sub = (micros >> (octave - 3)) as usize & (SUB - 1);
        ((octave - 2) * SUB + sub).min(SUB * (OCTAVES + 1) - 1)
    }

    /// The largest value a bucket holds.
    fn upper(bucket: usize) -> u64 {
        if bucket < SUB {
            return bucket as u64;
        }
        let octave = bucket / SUB + 2;
        let sub = (bucket % SUB) as u64;
        ((SUB as u64 + sub + 1) << (octave - 3)) - 1
    }

    fn record(&self, elapsed: Duration) {
        let micros = elapsed.as_micros().min(u128::from(u64::MAX)) as u64;
        let buckets = self
            .buckets
            .get_or_init(|| (0..SUB * (OCTAVES + 1)).map(|_| AtomicU64::new(0)).collect());
        buckets[Self::bucket(micros)].fetch_add(1, Relaxed);
        self.max.fetch_max(micros, Relaxed);
    }

    fn snapshot(&self) -> Latency {
        let Some(buckets) = self.buckets.get() else {
            return Latency::default();
        };
        let counts: Vec<u64> = buckets.iter().map(|b| b.load(Relaxed)).collect();
        let count: u64 = counts.iter().sum();
        // A bucket's bound can pass the largest value in it: a percentile
        // is capped at the maximum seen, so it never reads above it.
        let max = self.max.load(Relaxed);
        let at = |q: f64| {
            let rank = ((count as f64 * q).ceil() as u64).max(1);
            let mut seen = 0;
            for (bucket, n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return Self::upper(bucket).min(max);
                }
            }
            0
        };
        if count == 0 {
            return Latency::default();
        }
        Latency {
            count,
            p50_us: at(0.5),
            p90_us: at(0.9),
            p99_us: at(0.99),
            max_us: max,
        }
    }
}

/// One remote's counters, for every connection of a server (or a client).
#[derive(Default)]
struct RemoteCounters {
    calls_in: AtomicU64,
    calls_out: AtomicU64,
    events_in: AtomicU64,
    events_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    bad_input: AtomicU64,
    /// Calls this side handled, by how they ended.
    answered: [AtomicU64; KINDS.len()],
    /// Calls this side made, by how they ended.
    ended: [AtomicU64; KINDS.len()],
    handled: Histogram,
    round_trip: Histogram,
}

/// Every remote's counters, by wire id.
pub(crate) struct Figures {
    remotes: Box<[(Declared, RemoteCounters)]>,
}

/// What the figures say of a remote besides its counters.
#[derive(Clone, Copy)]
struct Declared {
    name: &'static str,
    event: bool,
    handled_here: bool,
}

impl Figures {
    /// Counters for each remote: its name, whether it is an event, and
    /// whether this side handles it.
    pub(crate) fn new(remotes: impl IntoIterator<Item = (&'static str, bool, bool)>) -> Self {
        Self {
            remotes: remotes
                .into_iter()
                .map(|(name, event, handled_here)| {
                    let declared = Declared {
                        name,
                        event,
                        handled_here,
                    };
                    (declared, RemoteCounters::default())
                })
                .collect(),
        }
    }

    /// The declared name of wire id `id`, for logs.
    pub(crate) fn name(&self, id: RemoteId) -> &'static str {
        self.remotes
            .get(id as usize)
            .map_or("<unknown>", |(declared, _)| declared.name)
    }

    fn remote(&self, id: RemoteId) -> Option<&RemoteCounters> {
        self.remotes.get(id as usize).map(|(_, c)| c)
    }

    /// A call this side handled was answered `status`; `took`, if it was
    /// timed.
    pub(crate) fn request_answered(&self, id: RemoteId, status: Status, took: Option<Duration>) {
        if let Some(r) = self.remote(id) {
            r.answered[kind_of_status(status)].fetch_add(1, Relaxed);
            if let Some(took) = took {
                r.handled.record(took);
            }
        }
    }

    /// A call this side made ended; `took`, if it was timed.
    pub(crate) fn call_ended<T>(&self, id: RemoteId, result: &Result<T, FunctionError>, took: Option<Duration>) {
        if let Some(r) = self.remote(id) {
            r.ended[kind_of(result)].fetch_add(1, Relaxed);
            if let Some(took) = took {
                r.round_trip.record(took);
            }
        }
    }

    pub(crate) fn event_received(&self, id: RemoteId, bytes: usize) {
        if let Some(r) = self.remote(id) {
            r.events_in.fetch_add(1, Relaxed);
            r.bytes_in.fetch_add(bytes as u64, Relaxed);
        }
    }

    pub(crate) fn event_sent(&self, id: RemoteId, bytes: usize) {
        if let Some(r) = self.remote(id) {
            r.events_out.fetch_add(1, Relaxed);
            r.bytes_out.fetch_add(bytes as u64, Relaxed);
        }
    }

    pub(crate) fn bad_input(&self, id: RemoteId) {
        if let Some(r) = self.remote(id) {
            r.bad_input.fetch_add(1, Relaxed);
        }
    }

    /// Every remote's figures, in declaration order of the wire table.
    pub(crate) fn snapshot(&self) -> Vec<RemoteFigures> {
        self.remotes
            .iter()
            .map(|(declared, r)| RemoteFigures {
                name: declared.name.to_string(),
                event: declared.event,
                handled_here: declared.handled_here,
                calls_in: r.calls_in.load(Relaxed),
                calls_out: r.calls_out.load(Relaxed),
                events_in: r.events_in.load(Relaxed),
                events_out: r.events_out.load(Relaxed),
                bytes_in: r.bytes_in.load(Relaxed),
                bytes_out: r.bytes_out.load(Relaxed),
                bad_input: r.bad_input.load(Relaxed),
                answered: by_kind(&r.answered),
                ended: by_kind(&r.ended),
                handled: r.handled.snapshot(),
                round_trip: r.round_trip.snapshot(),
            })
            .collect()
    }
}

/// Counts of one connection's calls, gathered by the one task that sees
/// them in a batch (its driver, for the peer's calls it reads in a round
/// and the calls it takes from the outbox) and added to the shared counters
/// once per batch and remote.
///
/// Counted one by one, a call added to five shared counters at each end
/// (the remote's calls and bytes, the connection's per remote and in all,
/// the answer's kind): ten atomic additions a call, about 5% of a
/// pipelined call's CPU time (`volley-bench --profile pipelined`, medians
/// of eight 3-s runs: 917 → 870 ns a call with counting turned off in a
/// scratch build; 905 → 887 with this tally).
///
/// Lives on its task's stack for one batch: [`flush`](Self::flush) before
/// it goes (the figures are read by other tasks at any time, and a count
/// must be in before the answer it counts leaves).
#[derive(Default)]
pub(crate) struct Tally {
    remote: RemoteId,
    calls_in: u64,
    bytes_in: u64,
    /// Calls in answered `Ok` right away (any other end, or one timed, is
    /// counted as it happens).
    answered_ok: u64,
    calls_out: u64,
    bytes_out: u64,
}

impl Tally {
    /// Counts a call of `remote` received, `bytes` long; whether to time it
    /// ([`is_timed`]).
    pub(crate) fn call_in(
        &mut self,
        figures: &Figures,
        counters: &ConnCounters,
        remote: RemoteId,
        bytes: usize,
    ) -> bool {
        self.switch_to(figures, counters, remote);
        // Only the driver counts calls in: the count it last added is
        // current.
        let n = counters.calls_in.load(Relaxed) + self.calls_in;
        self.calls_in += 1;
        self.bytes_in += bytes as u64;
        is_timed(n)
    }

    /// A call of `remote` received was answered `Ok`, untimed.
    pub(crate) fn answered_ok(&mut self, figures: &Figures, counters: &ConnCounters, remote: RemoteId) {
        self.switch_to(figures, counters, remote);
        self.answered_ok += 1;
    }

    /// Counts a call of `remote` made, `bytes` long.
    pub(crate) fn call_out(&mut self, figures: &Figures, counters: &ConnCounters, remote: RemoteId, bytes: usize) {
        self.switch_to(figures, counters, remote);
        self.calls_out += 1;
        self.bytes_out += bytes as u64;
    }

    /// Counts for another remote: the last one's are added first.
    fn switch_to(&mut self, figures: &Figures, counters: &ConnCounters, remote: RemoteId) {
        if remote != self.remote {
            self.flush(figures, counters);
            self.remote = remote;
        }
    }

    /// Adds what it counted to the shared counters, and starts again.
    pub(crate) fn flush(&mut self, figures: &Figures, counters: &ConnCounters) {
        // Nothing counted (a tally's first switch to a remote): the shared
        // figures, a cache miss away on a client, are left alone.
        if self.calls_in + self.calls_out + self.answered_ok == 0 {
            return;
        }
        let remote = self.remote;
        let Self {
            calls_in,
            bytes_in,
            answered_ok,
            calls_out,
            bytes_out,
            ..
        } = std::mem::replace(
            self,
            Self {
                remote,
                ..Self::default()
            },
        );
        let r = figures.remote(remote);
        // Calls one way: the remote's calls and bytes, the connection's
        // count of the remote (`what`) and its total.
        let add = |calls: u64, bytes: u64, what: usize, of_remote: Option<[&AtomicU64; 2]>, total: &AtomicU64| {
            if calls == 0 {
                return;
            }
            if let Some([remote_calls, remote_bytes]) = of_remote {
                remote_calls.fetch_add(calls, Relaxed);
                remote_bytes.fetch_add(bytes, Relaxed);
            }
            counters.add(figures, remote, what, calls);
            total.fetch_add(calls, Relaxed);
        };
        add(
            calls_in,
            bytes_in,
            CALLS_IN,
            r.map(|r| [&r.calls_in, &r.bytes_in]),
            &counters.calls_in,
        );
        add(
            calls_out,
            bytes_out,
            CALLS_OUT,
            r.map(|r| [&r.calls_out, &r.bytes_out]),
            &counters.calls_out,
        );
        if let Some(r) = r.filter(|_| answered_ok > 0) {
            r.answered[0].fetch_add(answered_ok, Relaxed);
        }
    }
}

/// One connection's counters.
// In declaration order (`repr(C)`): what every call adds to first.
#[derive(Default)]
#[repr(C)]
pub(crate) struct ConnCounters {
    calls_in: AtomicU64,
    calls_out: AtomicU64,
    /// Calls and events in and out, by remote: made on the first one, so an
    /// idle connection carries none.
    per_remote: std::sync::OnceLock<Box<[[AtomicU64; 4]]>>,
    events_in: AtomicU64,
    events_out: AtomicU64,
    /// Calls either way that ended in an error, by kind.
    errors: [AtomicU64; KINDS.len()],
}

impl ConnCounters {
    /// Bytes at the start of the counters that every call adds to (the
    /// connection keeps them on a cache line with its own hot fields).
    #[cfg(test)]
    pub(crate) const HOT_LEN: usize = std::mem::offset_of!(ConnCounters, events_in);
}

/// Places in a `per_remote` entry.
const CALLS_IN: usize = 0;
const CALLS_OUT: usize = 1;
const EVENTS_IN: usize = 2;
const EVENTS_OUT: usize = 3;

impl ConnCounters {
    fn count(&self, figures: &Figures, remote: RemoteId, what: usize) {
        self.add(figures, remote, what, 1);
    }

    fn add(&self, figures: &Figures, remote: RemoteId, what: usize, n: u64) {
        let per_remote = self
            .per_remote
            .get_or_init(|| (0..figures.remotes.len()).map(|_| Default::default()).collect());
        if let Some(counts) = per_remote.get(remote as usize) {
            counts[what].fetch_add(n, Relaxed);
        }
    }
    pub(crate) fn event_in(&self, figures: &Figures, remote: RemoteId) {
        self.count(figures, remote, EVENTS_IN);
        self.events_in.fetch_add(1, Relaxed);
    }
    pub(crate) fn event_out(&self, figures: &Figures, remote: RemoteId) {
        self.count(figures, remote, EVENTS_OUT);
        self.events_out.fetch_add(1, Relaxed);
    }
    /// A call either way ended as kind `kind` (0 is success, not counted).
    pub(crate) fn ended(&self, kind: usize) {
        if kind != 0 {
            self.errors[kind].fetch_add(1, Relaxed);
        }
    }

    /// Fills the counted part of `figures`; `remotes` names the remotes.
    pub(crate) fn fill(&self, remotes: &Figures, figures: &mut ConnectionFigures) {
        figures.calls_in = self.calls_in.load(Relaxed);
        figures.calls_out = self.calls_out.load(Relaxed);
        figures.events_in = self.events_in.load(Relaxed);
        figures.events_out = self.events_out.load(Relaxed);
        figures.errors = by_kind(&self.errors);
        if let Some(per_remote) = self.per_remote.get() {
            for (id, counts) in per_remote.iter().enumerate() {
                let [calls_in, calls_out, events_in, events_out] = counts.each_ref().map(|c| c.load(Relaxed));
                if calls_in + calls_out + events_in + events_out > 0 {
                    let name = remotes.name(id as RemoteId).to_string();
                    figures.remotes.insert(
                        name,
                        RemoteCounts {
                            calls_in,
                            calls_out,
                            events_in,
                            events_out,
                        },
                    );
                }
            }
        }
    }
}

/// One remote's calls and events on one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RemoteCounts {
    /// Calls received.
    pub calls_in: u64,
    /// Calls made.
    pub calls_out: u64,
    /// Events received.
    pub events_in: u64,
    /// Events sent.
    pub events_out: u64,
}

/// Latency of calls: percentiles (each within 12.5 %) and the largest, in
/// microseconds, over the calls timed (one in eight per connection, the
/// first included).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Latency {
    /// Calls measured.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// One remote's figures over every connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RemoteFigures {
    /// Its declared name.
    pub name: String,
    /// An event (reliable or not), not a function: it has no calls.
    pub event: bool,
    /// This side handles it (receives its calls or events); otherwise this
    /// side makes or fires it.
    pub handled_here: bool,
    /// Calls received (this side handles it).
    pub calls_in: u64,
    /// Calls made (the peer handles it).
    pub calls_out: u64,
    /// Events received.
    pub events_in: u64,
    /// Events sent (each player a broadcast reached counts).
    pub events_out: u64,
    /// Payload bytes of calls and events received.
    pub bytes_in: u64,
    /// Payload bytes of calls and events sent.
    pub bytes_out: u64,
    /// Requests and events dropped as not decoding or failing their checks,
    /// and answers to our calls that did not.
    pub bad_input: u64,
    /// Calls handled here, by how they were answered (`ok`, `rejected`,
    /// `bad_request`, …).
    pub answered: BTreeMap<String, u64>,
    /// Calls made from here, by how they ended (`ok`, `timeout`,
    /// `disconnected`, …).
    pub ended: BTreeMap<String, u64>,
    /// Time from a request's arrival to its answer.
    pub handled: Latency,
    /// Time from a call's start to its end, at the caller.
    pub round_trip: Latency,
}

/// One connection's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConnectionFigures {
    /// The player's id (on the server).
    pub player: Option<u64>,
    /// The player's identity, from the authenticator (on the server).
    pub identity: Option<String>,
    /// Since the connection was made.
    pub connected_ms: u64,
    /// Smoothed round-trip time, from keep-alive pings.
    pub rtt_us: Option<u64>,
    /// How much the round-trip time varies.
    pub rtt_jitter_us: Option<u64>,
    /// Frames received (datagrams included).
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Of the frames received, those that came as datagrams (unreliable
    /// events over QUIC and WebTransport).
    pub datagrams_in: u64,
    /// Of the frames sent, those sent as datagrams.
    pub datagrams_out: u64,
    /// Bytes received, framing included.
    pub bytes_in: u64,
    /// Bytes sent, framing included.
    pub bytes_out: u64,
    /// The peer's calls being handled here now.
    pub calls_in_flight_in: usize,
    /// Our calls to the peer awaiting an answer now.
    pub calls_in_flight_out: usize,
    /// Calls received.
    pub calls_in: u64,
    /// Calls made.
    pub calls_out: u64,
    /// Events received.
    pub events_in: u64,
    /// Events sent.
    pub events_out: u64,
    /// Calls either way that ended in an error, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Calls and events by remote (those used on this connection).
    pub remotes: BTreeMap<String, RemoteCounts>,
}

/// A server's figures: who is connected and how, every remote's counters,
/// and why connections were refused or ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServerFigures {
    /// Players connected.
    pub players: usize,
    /// Connections accepted and not yet joined.
    pub handshakes: usize,
    /// Connections refused before joining, by reason (`server is full`,
    /// `unauthorized`, `too many handshakes`, `remotes mismatch`, …).
    pub refused: BTreeMap<String, u64>,
    /// Players that left, by the kind of reason (`TransportClosed`,
    /// `IdleTimeout`, `Remote` for a goodbye from the client, `Kicked`,
    /// `ShuttingDown`, `Local` for another close by the server, …).
    pub disconnects: BTreeMap<String, u64>,
    /// Every remote's counters over every connection.
    pub remotes: Vec<RemoteFigures>,
    /// Each connected player's figures.
    pub connections: Vec<ConnectionFigures>,
}

/// The kind of a close reason, for counting: its variant's name.
pub(crate) fn reason_kind(reason: &impl std::fmt::Debug) -> String {
    let text = format!("{reason:?}");
    text.split(['(', ' ', '{']).next().unwrap_or_default().to_string()
}

/// The kind of a player's departure, for counting: the reason's kind, with
/// the server's own closes told apart (a kick is not a shutdown).
pub(crate) fn departure_kind(reason: &volley_proto::CloseReason) -> String {
    use volley_proto::{CloseReason, GoodbyeCode};
    match reason {
        CloseReason::Local {
            code: GoodbyeCode::Kicked,
            ..
        } => "Kicked".into(),
        CloseReason::Local {
            code: GoodbyeCode::ShuttingDown,
            ..
        } => "ShuttingDown".into(),
        other => reason_kind(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_keeps_latencies_within_an_eighth() {
        for micros in [0u64, 1, 7, 8, 9, 15, 16, 100, 1_000, 12_345, 1_000_000, 60_000_000] {
            let upper = Histogram::upper(Histogram::bucket(micros));
            assert!(upper >= micros, "{micros} -> {upper}");
            assert!(upper <= micros + micros / 8 + 1, "{micros} -> {upper}");
        }
        let h = Histogram::default();
        for micros in 1..=1000 {
            h.record(Duration::from_micros(micros));
        }
        let l = h.snapshot();
        assert_eq!((l.count, l.max_us), (1000, 1000));
        assert!((500..=563).contains(&l.p50_us), "{l:?}");
        assert!((990..=1_114).contains(&l.p99_us), "{l:?}");
        assert_eq!(Histogram::default().snapshot(), Latency::default());
    }

    #[test]
    fn a_tally_adds_every_remote_s_counts_once_and_times_one_call_in_eight() {
        let figures = Figures::new([("a", false, true), ("b", false, true)]);
        let counters = ConnCounters::default();
        let mut tally = Tally::default();
        let mut timed = Vec::new();
        for (n, remote) in [0, 0, 1, 0, 0, 0, 0, 0, 0, 1].into_iter().enumerate() {
            timed.push(tally.call_in(&figures, &counters, remote, 10 + n));
            tally.answered_ok(&figures, &counters, remote);
        }
        tally.call_out(&figures, &counters, 1, 4);
        // Another remote's calls added the first's: not yet the last's.
        let snapshot = figures.snapshot();
        assert_eq!((snapshot[0].calls_in, snapshot[1].calls_in), (8, 1));
        tally.flush(&figures, &counters);
        let snapshot = figures.snapshot();
        assert_eq!((snapshot[0].calls_in, snapshot[1].calls_in), (8, 2));
        assert_eq!(snapshot[0].bytes_in, 10 + 11 + 13 + 14 + 15 + 16 + 17 + 18);
        assert_eq!((snapshot[1].calls_out, snapshot[1].bytes_out), (1, 4));
        assert_eq!(snapshot[0].answered.get("ok"), Some(&8));
        assert_eq!(snapshot[1].answered.get("ok"), Some(&2));
        let mut each = ConnectionFigures::default();
        counters.fill(&figures, &mut each);
        assert_eq!((each.calls_in, each.calls_out), (10, 1));
        assert_eq!((each.remotes["a"].calls_in, each.remotes["b"].calls_in), (8, 2));
        // The connection's first call in, and its ninth.
        let expected: Vec<bool> = (0..10).map(|n| n % 8 == 0).collect();
        assert_eq!(timed, expected);
        // Flushed, it adds nothing more.
        tally.flush(&figures, &counters);
        assert_eq!(figures.snapshot()[1].calls_in, 2);
    }

    #[test]
    fn percentiles_never_pass_the_maximum() {
        let h = Histogram::default();
        for _ in 0..100 {
            h.record(Duration::from_micros(1_174));
        }
        let l = h.snapshot();
        assert_eq!((l.p50_us, l.p90_us, l.p99_us, l.max_us), (1_174, 1_174, 1_174, 1_174));
    }
}
