//! The figures through the `metrics` facade (feature `metrics`), for
//! Prometheus and the like: a task copies them into the installed recorder
//! at a fixed interval, so the call path pays nothing for it. Names start
//! with `volley_`; labels are low-cardinality only (remote name, direction,
//! outcome, reason, quantile), never a player.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `volley_players` | gauge | |
//! | `volley_handshakes` | gauge | |
//! | `volley_refused_total` | counter | `reason` |
//! | `volley_disconnects_total` | counter | `reason` |
//! | `volley_calls_total` | counter | `remote`, `direction` (`in`: handled here, `out`: made from here) |
//! | `volley_call_outcomes_total` | counter | `remote`, `direction`, `outcome` (`ok`, `timeout`, `rejected`, …) |
//! | `volley_events_total` | counter | `remote`, `direction` |
//! | `volley_bytes_total` | counter | `remote`, `direction` (payload bytes) |
//!
//! Only the series a remote can have exist: a function's calls, outcomes
//! and latency in the one direction it goes (`in` for a client → server
//! function, `out` for a server → client one) and its bytes both ways
//! (requests and answers); an event's events and bytes in its direction.
//! | `volley_bad_input_total` | counter | `remote` |
//! | `volley_call_latency_us` | gauge | `remote`, `direction`, `quantile` (`0.5`, `0.9`, `0.99`, `1`) |

use std::time::Duration;

use metrics::{counter, gauge};

use super::Server;
use crate::figures::{Latency, RemoteFigures};

impl Server {
    /// Reports this server's figures through the `metrics` facade every
    /// `every` (1 s is plenty), until the server is dropped. Install a
    /// recorder (an exporter) first. Needs a Tokio runtime.
    pub fn report_metrics(&self, every: Duration) {
        let server = std::sync::Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(inner) = server.upgrade() else { return };
                Server { inner }.publish_metrics();
            }
        });
    }

    /// Copies the figures into the recorder once.
    pub fn publish_metrics(&self) {
        let inner = &self.inner;
        gauge!("volley_players").set(self.player_count() as f64);
        gauge!("volley_handshakes").set(inner.handshakes_in_progress() as f64);
        let tallies = crate::locks::lock(&inner.tallies);
        for (reason, n) in &tallies.refused {
            counter!("volley_refused_total", "reason" => reason.clone()).absolute(*n);
        }
        for (reason, n) in &tallies.disconnects {
            counter!("volley_disconnects_total", "reason" => reason.clone()).absolute(*n);
        }
        drop(tallies);
        for remote in inner.endpoint.figures.snapshot() {
            publish_remote(&remote);
        }
    }
}

/// One remote's series: only those it can have. A function has calls (in
/// if handled here, out if made from here) and bytes both ways (requests
/// and answers); an event has events and bytes in its one direction.
fn publish_remote(r: &RemoteFigures) {
    let name = r.name.clone();
    let labels = |direction: &'static str| [("remote", name.clone()), ("direction", direction.to_string())];
    let (direction, calls, events, outcomes, latency) = if r.handled_here {
        ("in", r.calls_in, r.events_in, &r.answered, &r.handled)
    } else {
        ("out", r.calls_out, r.events_out, &r.ended, &r.round_trip)
    };
    if r.event {
        counter!("volley_events_total", &labels(direction)).absolute(events);
        let bytes = if r.handled_here { r.bytes_in } else { r.bytes_out };
        counter!("volley_bytes_total", &labels(direction)).absolute(bytes);
    } else {
        counter!("volley_calls_total", &labels(direction)).absolute(calls);
        for (outcome, n) in outcomes {
            let labels = [
                ("remote", name.clone()),
                ("direction", direction.to_string()),
                ("outcome", outcome.clone()),
            ];
            counter!("volley_call_outcomes_total", &labels).absolute(*n);
        }
        publish_latency(&name, direction, latency);
        counter!("volley_bytes_total", &labels("in")).absolute(r.bytes_in);
        counter!("volley_bytes_total", &labels("out")).absolute(r.bytes_out);
    }
    counter!("volley_bad_input_total", "remote" => name).absolute(r.bad_input);
}

fn publish_latency(remote: &str, direction: &'static str, latency: &Latency) {
    if latency.count == 0 {
        return;
    }
    for (quantile, value) in [
        ("0.5", latency.p50_us),
        ("0.9", latency.p90_us),
        ("0.99", latency.p99_us),
        ("1", latency.max_us),
    ] {
        let labels = [
            ("remote", remote.to_string()),
            ("direction", direction.to_string()),
            ("quantile", quantile.to_string()),
        ];
        gauge!("volley_call_latency_us", &labels).set(value as f64);
    }
}
