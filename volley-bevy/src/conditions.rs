//! Run conditions on the connection, as other Bevy networking crates offer:
//! `my_system.run_if(client_connected)`.

#[cfg(feature = "client")]
use bevy_ecs::prelude::MessageReader;
use bevy_ecs::prelude::Res;

#[cfg(feature = "client")]
use crate::client::{ClientState, Connected, Disconnected};
#[cfg(feature = "server")]
use crate::server::ServerState;

#[cfg(feature = "client")]
/// The client is connected. False in an app without the client plugin.
pub fn client_connected(state: Option<Res<ClientState>>) -> bool {
    state.is_some_and(|state| *state == ClientState::Connected)
}

#[cfg(feature = "client")]
/// The client connected (first, or again) since this condition last ran:
/// a [`Connected`] message is there to read.
pub fn client_just_connected(mut connected: Option<MessageReader<Connected>>) -> bool {
    connected.as_mut().is_some_and(|messages| messages.read().count() > 0)
}

#[cfg(feature = "client")]
/// An open connection closed since this condition last ran: a
/// [`Disconnected`] message is there to read.
pub fn client_just_disconnected(mut disconnected: Option<MessageReader<Disconnected>>) -> bool {
    disconnected
        .as_mut()
        .is_some_and(|messages| messages.read().count() > 0)
}

#[cfg(feature = "server")]
/// The server is running (listening, or built by the game). False in an
/// app without the server plugin.
pub fn server_running(state: Option<Res<ServerState>>) -> bool {
    state.is_some_and(|state| *state == ServerState::Running)
}
