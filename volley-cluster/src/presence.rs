//! Which nodes are alive, from their heartbeats. A node not heard from for
//! `dead_after` is gone; callers waiting on it are told at once (their
//! calls end `Disconnected`), and it is alive again as soon as it is heard
//! again (after a broker outage every node is).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

#[derive(Debug)]
pub(crate) struct Presence {
    state: Mutex<State>,
    /// Bumped on every change of the live set.
    changed: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct State {
    /// Live nodes: when last heard, and their player count then.
    live: BTreeMap<u32, (Instant, u32)>,
    /// Nodes that were alive and are not (until heard again).
    gone: BTreeSet<u32>,
}

impl Presence {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            changed: watch::channel(0).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A heartbeat from `node`; `leaving` says it is stopping.
    pub(crate) fn heard(&self, node: u32, players: u32, leaving: bool) {
        let mut state = self.lock();
        let changed = if leaving {
            let was = state.live.remove(&node).is_some();
            state.gone.insert(node);
            was
        } else {
            let new = state.live.insert(node, (Instant::now(), players)).is_none();
            state.gone.remove(&node);
            new
        };
        drop(state);
        if changed {
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// Declares gone the nodes silent for `dead_after`; returns them.
    pub(crate) fn sweep(&self, dead_after: Duration) -> Vec<u32> {
        let mut state = self.lock();
        let now = Instant::now();
        let dead: Vec<u32> = state
            .live
            .iter()
            .filter(|(_, (at, _))| now.duration_since(*at) > dead_after)
            .map(|(node, _)| *node)
            .collect();
        for node in &dead {
            state.live.remove(node);
            state.gone.insert(*node);
        }
        drop(state);
        if !dead.is_empty() {
            self.changed.send_modify(|n| *n += 1);
        }
        dead
    }

    /// Whether `node` was heard from within the last `within`.
    pub(crate) fn heard_within(&self, node: u32, within: Duration) -> bool {
        self.lock()
            .live
            .get(&node)
            .is_some_and(|(at, _)| at.elapsed() <= within)
    }

    pub(crate) fn is_live(&self, node: u32) -> bool {
        self.lock().live.contains_key(&node)
    }

    pub(crate) fn is_gone(&self, node: u32) -> bool {
        self.lock().gone.contains(&node)
    }

    /// The live nodes, by number.
    pub(crate) fn live(&self) -> Vec<u32> {
        self.lock().live.keys().copied().collect()
    }

    /// Each live node's player count, as its last heartbeat said.
    pub(crate) fn players(&self) -> BTreeMap<u32, u32> {
        self.lock().live.iter().map(|(node, (_, n))| (*node, *n)).collect()
    }

    /// Told of every change of the live set.
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Resolves once `node` is gone (at once if it is).
    pub(crate) async fn gone(&self, node: u32) {
        let mut changes = self.watch();
        while !self.is_gone(node) {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }
}
