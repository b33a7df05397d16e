//! volley for Bevy: a Bevy game's systems and observers receive, fire,
//! answer and call volley remotes, on the server and on clients.
//!
//! - Each remote is registered once, in code both sides share:
//!   `app.add_remote(MOVE)` (see [`VolleyAppExt`]); or side by side with
//!   [`ServerAppExt`] and [`ClientAppExt`].
//! - Networking starts and stops with commands: `commands.trigger(Connect::tcp(addr))`,
//!   [`Disconnect`], [`StartServer::tcp`], [`StopServer`]. Nothing dials or
//!   binds while plugins are added; failures arrive as [`ConnectFailed`]
//!   (volley's [`ConnectError`](volley::ConnectError)) and
//!   [`ServerFailed`] messages.
//! - Where the connection stands is a resource, [`ClientState`] /
//!   [`ServerState`] (Bevy `States` too, with the `bevy_state` feature),
//!   with run conditions: [`client_connected`], [`client_just_connected`],
//!   [`client_just_disconnected`], [`server_running`].
//! - Incoming events are messages: `MessageReader<FromClient<T>>` on the
//!   server (with the sending player and its entity),
//!   `MessageReader<FromServer<T>>` on a client. Outgoing events are
//!   messages too: `MessageWriter<ToClients<T>>` on the server (to
//!   players by id or by entity, a room, everyone, everyone but one) and a
//!   plain `MessageWriter<T>` on a client (`T` derives Bevy's `Message`;
//!   [`ToServer<T>`] for a payload that cannot), sent late in the frame.
//! - An incoming call is a [`Request`], as a message and as an observer
//!   event, answered through [`Responder`] within the message's lifetime,
//!   or kept as a [`DeferredAnswer`] (a component if need be); a call that
//!   nobody answers or keeps is answered `Unprocessed` at once.
//! - An outgoing call is an entity with an [`Invoke`] naming its remote; its
//!   result reaches observers of the entity and readers of [`CallDone`],
//!   then the entity is despawned. Despawning it first cancels the call
//!   across the wire.
//! - Server: players are entities ([`NetPlayer`], [`Rtt`]), spawned on join
//!   and despawned on leave; despawning one kicks the player.
//! - Bounded: an incoming event type's queue into the ECS holds at most
//!   [`DEFAULT_EVENT_QUEUE`] events (or `with_event_queue`); past that the
//!   sending connection is not read until the app catches up, so a stalled
//!   app holds its peers back rather than grow memory.
//! - Everything volley hands the app is delivered in [`VolleySet::Receive`]
//!   (in `PreUpdate`); everything systems write is sent in
//!   [`VolleySet::Send`] (in `PostUpdate`).
//!
//! volley runs on tokio, beside Bevy's schedule: on the game's runtime if it
//! inserted a [`VolleyRuntime`] first (or the plugin is added inside one),
//! else on a runtime the plugin makes.
//!
//! [`testing`] steps a server app and client apps connected in memory, for
//! a game's own tests.
//!
//! Bevy 0.19 (the sub-crates `bevy_app` and `bevy_ecs`, and `bevy_state`
//! with the feature of that name); Bevy 0.20 needs rustc 1.97.

#[cfg(not(any(feature = "client", feature = "server")))]
compile_error!("volley-net-bevy needs the `client` feature, the `server` feature or both");

mod calls;
#[cfg(feature = "client")]
mod client;
mod conditions;
mod flow;
mod inbox;
mod messages;
mod registry;
mod remotes;
mod rtt;
mod runtime;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "bevy_state")]
mod states;
#[cfg(all(feature = "client", feature = "server"))]
pub mod testing;

use bevy_ecs::prelude::SystemSet;

#[cfg(feature = "server")]
pub use calls::{CallAnswer, GroupDone};
pub use calls::{CallDone, DeferredAnswer, Invoke, Request, RequestKey, Responder};
#[cfg(feature = "client")]
pub use client::{
    ClientAppExt, ClientState, Connect, ConnectFailed, Connected, Disconnect, Disconnected, Reconnected, ServerRtt,
    VolleyClient, VolleyClientPlugin,
};
#[cfg(feature = "server")]
pub use conditions::server_running;
#[cfg(feature = "client")]
pub use conditions::{client_connected, client_just_connected, client_just_disconnected};
pub use flow::DEFAULT_EVENT_QUEUE;
#[cfg(feature = "server")]
pub use messages::{FromClient, Target, ToClients};
#[cfg(feature = "client")]
pub use messages::{FromServer, ToServer};
pub use remotes::{AppRemote, VolleyAppExt};
pub use runtime::VolleyRuntime;
#[cfg(feature = "server")]
pub use server::{
    NetPlayer, PlayerEntities, PlayerJoined, PlayerLeft, Rooms, Rtt, ServerAppExt, ServerFailed, ServerStarted,
    ServerState, ServerStopped, StartServer, StopServer, VolleyServer, VolleyServerPlugin,
};

/// What a Bevy game using volley imports: the plugins, messages, events,
/// states and conditions of the sides built (features `client`, `server`),
/// and volley's declaration and error types.
pub mod prelude {
    #[cfg(feature = "client")]
    pub use crate::{
        client_connected, client_just_connected, client_just_disconnected, ClientAppExt, ClientState, Connect,
        ConnectFailed, Connected, Disconnect, Disconnected, FromServer, Reconnected, ServerRtt, ToServer, VolleyClient,
        VolleyClientPlugin,
    };
    #[cfg(feature = "server")]
    pub use crate::{
        server_running, CallAnswer, FromClient, GroupDone, NetPlayer, PlayerEntities, PlayerJoined, PlayerLeft, Rooms,
        Rtt, ServerAppExt, ServerFailed, ServerStarted, ServerState, ServerStopped, StartServer, StopServer, Target,
        ToClients, VolleyServer, VolleyServerPlugin,
    };
    pub use crate::{
        AppRemote, CallDone, DeferredAnswer, Invoke, Request, RequestKey, Responder, VolleyAppExt, VolleyRuntime,
        VolleySet,
    };
    pub use volley::{
        ClientConfig, ClientEvent, ClientFn, CloseReason, ConnectError, FunctionError, PlayerId, Protocol, Reject,
        ServerConfig, ServerEvent, ServerFn,
    };
}

/// Where volley's systems run in the frame.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub enum VolleySet {
    /// In `PreUpdate`: what arrived since the last frame becomes messages
    /// and observer events (players spawned and despawned first).
    Receive,
    /// In `PostUpdate`: what systems wrote this frame is sent.
    Send,
}
