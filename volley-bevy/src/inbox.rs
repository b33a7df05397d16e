//! What volley's tasks hand to Bevy's systems: a channel per kind of
//! message, drained into Bevy messages early in each frame.

use std::sync::Mutex;

use bevy_ecs::prelude::{Message, MessageWriter, Res, Resource};
use tokio::sync::mpsc;

/// The receiving end, a resource; the sending end lives in volley's
/// handlers and listeners.
#[derive(Resource)]
pub(crate) struct Inbox<M: Send + 'static> {
    rx: Mutex<mpsc::UnboundedReceiver<M>>,
}

/// A channel into the ECS.
pub(crate) fn inbox<M: Send + 'static>() -> (mpsc::UnboundedSender<M>, Inbox<M>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, Inbox { rx: Mutex::new(rx) })
}

impl<M: Send + 'static> Inbox<M> {
    /// Everything that arrived since the last frame.
    pub(crate) fn drain(&self) -> Vec<M> {
        let mut rx = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }
}

/// A system: what arrived becomes Bevy messages.
pub(crate) fn deliver<M: Message>(inbox: Res<Inbox<M>>, mut messages: MessageWriter<M>) {
    messages.write_batch(inbox.drain());
}
