//! volley for Bevy: a Bevy game's systems receive, fire, answer and call
//! volley remotes, on the server and on clients.
//!
//! - Incoming events are messages: `MessageReader<FromClient<T>>` on the
//!   server (with the sending player), `MessageReader<FromServer<T>>` on a
//!   client.
//! - Outgoing events are messages too: `MessageWriter<ToClients<T>>` (to a
//!   player, a list, a room, everyone, everyone but one) and
//!   `MessageWriter<ToServer<T>>`, sent late in the frame.
//! - An incoming call is a [`Request`] message with a copyable
//!   [`RequestKey`]; any system answers it through [`Responder`], this frame
//!   or later. No answer before the caller's deadline: the caller gets
//!   `Timeout`; the caller cancels: the key becomes a no-op.
//! - An outgoing call is an entity with an [`Invoke`] component; its result
//!   arrives as a [`CallDone`] message. Despawning the entity cancels the
//!   call across the wire.
//! - Server: players are entities ([`NetPlayer`], [`Rtt`]), spawned on join
//!   and despawned on leave. Client: [`ConnectionState`] and
//!   [`Connected`] / [`Disconnected`] / [`Reconnected`] messages.
//! - Everything volley hands the app is delivered in [`VolleySet::Receive`]
//!   (in `PreUpdate`); everything systems write is sent in
//!   [`VolleySet::Send`] (in `PostUpdate`). Order the game's systems in
//!   `Update` and they see this frame's input and send this frame's output.
//!
//! volley runs on tokio, beside Bevy's schedule: on the game's runtime if it
//! inserted a [`VolleyRuntime`] first (or the plugin is added inside one),
//! else on a runtime the plugin makes. Each remote is used through its
//! payload types, so one app registers at most one remote per message type
//! (a second one is refused at start-up, naming both).
//!
//! Bevy 0.19 (the sub-crates `bevy_app` and `bevy_ecs`); Bevy 0.20 needs
//! rustc 1.97.

mod calls;
mod client;
mod inbox;
mod messages;
mod runtime;
mod server;

use std::any::TypeId;
use std::collections::HashMap;

use bevy_app::App;
use bevy_ecs::prelude::{Resource, SystemSet};

pub use calls::{CallDone, Invoke, Request, RequestKey, Responder};
pub use client::{
    ClientAppExt, Connected, ConnectionState, Disconnected, Reconnected, VolleyClient, VolleyClientPlugin,
};
pub use messages::{FromClient, FromServer, Target, ToClients, ToServer};
pub use runtime::VolleyRuntime;
pub use server::{
    NetPlayer, PlayerEntities, PlayerJoined, PlayerLeft, Rtt, ServerAppExt, VolleyServer, VolleyServerPlugin,
};

/// Where volley's systems run in the frame.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub enum VolleySet {
    /// In `PreUpdate`: what arrived since the last frame becomes messages
    /// (players spawned and despawned first).
    Receive,
    /// In `PostUpdate`: what systems wrote this frame is sent.
    Send,
}

/// Which remote each message type was registered for.
#[derive(Resource, Default)]
struct Registered(HashMap<TypeId, &'static str>);

/// Refuses a second remote for the same message type `M`.
fn register_once<M: 'static>(app: &mut App, remote: &'static str) {
    let mut registered = app.world_mut().get_resource_or_insert_with(Registered::default);
    if let Some(earlier) = registered.0.insert(TypeId::of::<M>(), remote) {
        panic!(
            "remotes {earlier:?} and {remote:?} would share the message type {}: \
             give one of them a payload type of its own",
            std::any::type_name::<M>()
        );
    }
}
