//! What volley's tasks hand to Bevy's systems: a channel per kind of
//! message, drained into Bevy messages early in each frame.

use std::sync::{Mutex, PoisonError};

use bevy_ecs::prelude::Resource;
use tokio::sync::mpsc;

/// The receiving end, a resource; the sending end lives in volley's
/// handlers and hooks.
#[derive(Resource)]
pub(crate) struct Inbox<M: Send + 'static> {
    /// A `Mutex` only to make the receiver `Sync`, as resources must be:
    /// systems take the inbox mutably, which needs no locking.
    rx: Mutex<mpsc::UnboundedReceiver<M>>,
}

/// A channel into the ECS.
pub(crate) fn inbox<M: Send + 'static>() -> (mpsc::UnboundedSender<M>, Inbox<M>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, Inbox { rx: Mutex::new(rx) })
}

impl<M: Send + 'static> Inbox<M> {
    /// Everything that arrived since the last frame, taken one by one (no
    /// list is built).
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = M> + '_ {
        let rx = self.rx.get_mut().unwrap_or_else(PoisonError::into_inner);
        std::iter::from_fn(move || rx.try_recv().ok())
    }
}
