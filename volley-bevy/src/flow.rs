//! Backpressure from the app to its peers: an event queue into the ECS holds
//! at most its limit; past it, the connection that sent the event stops
//! being read (volley's `pause_reading`) until the app has drained the
//! queue to half. A stalled app (a long frame, a breakpoint, a loading
//! screen) thus holds its peers back instead of growing memory.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bevy_app::App;
use bevy_ecs::prelude::Resource;
use tokio::sync::mpsc::UnboundedSender;

use crate::inbox::inbox;

/// Events one queue holds before its senders are paused, unless set with
/// `with_event_queue`: a few frames of a busy game's events.
pub const DEFAULT_EVENT_QUEUE: usize = 4096;

/// How to read a paused connection again.
pub(crate) type Resume = Box<dyn FnOnce() + Send>;

/// The fill of one queue into the ECS, and the connections paused for it.
pub(crate) struct Flow {
    queued: AtomicUsize,
    limit: usize,
    /// Set while `paused` is not empty: the frame's check takes no lock
    /// otherwise.
    any_paused: AtomicBool,
    paused: Mutex<Vec<Resume>>,
}

impl Flow {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            queued: AtomicUsize::new(0),
            limit: limit.max(1),
            any_paused: AtomicBool::new(false),
            paused: Mutex::new(Vec::new()),
        })
    }

    /// One more event queued; past the limit, `pause` stops reading its
    /// sender and gives how to resume it (`None` if it was paused already).
    pub(crate) fn arrived(&self, pause: impl FnOnce() -> Option<Resume>) {
        if self.queued.fetch_add(1, Ordering::AcqRel) + 1 < self.limit {
            return;
        }
        if let Some(resume) = pause() {
            tracing::debug!(limit = self.limit, "event queue full: pausing a sender");
            let mut paused = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
            paused.push(resume);
            self.any_paused.store(true, Ordering::Release);
        }
    }

    /// `n` events taken into the ECS; at half the limit, paused senders are
    /// read again.
    pub(crate) fn taken(&self, n: usize) {
        if n > 0 {
            self.queued.fetch_sub(n, Ordering::AcqRel);
        }
        if !self.any_paused.load(Ordering::Acquire) || self.queued.load(Ordering::Acquire) > self.limit / 2 {
            return;
        }
        let resumes = {
            let mut paused = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
            self.any_paused.store(false, Ordering::Release);
            std::mem::take(&mut *paused)
        };
        for resume in resumes {
            resume();
        }
    }
}

/// How many events of one type wait for the app before their senders are
/// paused: the plugin's `with_event_queue`.
#[derive(Resource, Clone, Copy, Debug)]
pub(crate) struct QueueLimit(pub(crate) usize);

/// Where the events of message type `M` go, shared by every remote that
/// carries it, and how full that queue is.
#[derive(Resource)]
pub(crate) struct EventQueue<M: Send + 'static> {
    pub(crate) tx: UnboundedSender<M>,
    pub(crate) flow: Arc<Flow>,
}

/// The queue of `M` (made with its inbox the first time `M` is registered,
/// for `remote`), and whether it was made now: then add the system that
/// drains it.
pub(crate) fn event_queue<M: Send + Sync + 'static>(
    app: &mut App,
    remote: &'static str,
) -> (UnboundedSender<M>, Arc<Flow>, bool) {
    let first = crate::registry::first_for::<M>(app, remote);
    if first {
        let (tx, events) = inbox::<M>();
        let limit = app
            .world()
            .get_resource::<QueueLimit>()
            .map_or(DEFAULT_EVENT_QUEUE, |q| q.0);
        app.insert_resource(EventQueue {
            tx,
            flow: Flow::new(limit),
        })
        .insert_resource(events);
    }
    let queue = app.world().resource::<EventQueue<M>>();
    (queue.tx.clone(), queue.flow.clone(), first)
}

/// How a connection is paused for a full queue: `pause_reading` on it, and
/// (if that paused it now) how to resume it.
pub(crate) fn pause_with<C: Clone + Send + 'static>(
    connection: &C,
    pause: impl FnOnce(&C) -> bool,
    resume: fn(&C) -> bool,
) -> Option<Resume> {
    pause(connection).then(|| {
        let connection = connection.clone();
        Box::new(move || {
            resume(&connection);
        }) as Resume
    })
}
