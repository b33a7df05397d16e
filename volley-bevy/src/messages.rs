//! Remote events as Bevy messages: read incoming ones with `MessageReader`,
//! fire outgoing ones with `MessageWriter`.

#[cfg(feature = "server")]
use bevy_ecs::prelude::Entity;
use bevy_ecs::prelude::{Event, Message};
#[cfg(feature = "server")]
use volley::PlayerId;

#[cfg(feature = "server")]
/// An event a client fired, on the server: read with
/// `MessageReader<FromClient<T>>`, or observe with `On<FromClient<T>>`.
#[derive(Message, Event, Debug, Clone)]
pub struct FromClient<T: Send + Sync + 'static> {
    /// The remote it came by (several remotes may carry one type).
    pub remote: &'static str,
    /// Who fired it.
    pub player: PlayerId,
    /// Its player entity, if it has been spawned (it has, unless the event
    /// came in the frame the player joined and left).
    pub entity: Option<Entity>,
    /// The event.
    pub event: T,
}

#[cfg(feature = "server")]
/// An event for clients, written on the server with
/// `MessageWriter<ToClients<T>>`; sent late in the frame.
#[derive(Message, Debug, Clone)]
pub struct ToClients<T: Send + Sync + 'static> {
    /// Who gets it.
    pub to: Target,
    /// The event.
    pub event: T,
}

#[cfg(feature = "server")]
/// Which players an event goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One player.
    Player(PlayerId),
    /// These players.
    Players(Vec<PlayerId>),
    /// The player of this entity (a [`NetPlayer`](crate::NetPlayer)'s).
    Entity(Entity),
    /// The players of these entities.
    Entities(Vec<Entity>),
    /// The members of a room.
    Room(String),
    /// The members of a room but one (the sender of a chat line).
    RoomExcept(String, PlayerId),
    /// Everyone.
    All,
    /// Everyone but one.
    AllExcept(PlayerId),
}

#[cfg(feature = "client")]
/// An event the server fired, on a client: read with
/// `MessageReader<FromServer<T>>`, or observe with `On<FromServer<T>>`.
#[derive(Message, Event, Debug, Clone)]
pub struct FromServer<T: Send + Sync + 'static> {
    /// The remote it came by (several remotes may carry one type).
    pub remote: &'static str,
    /// The event.
    pub event: T,
}

#[cfg(feature = "client")]
/// An event for the server, written on a client with
/// `MessageWriter<ToServer<T>>`; sent late in the frame. For a payload that
/// cannot derive Bevy's `Message` (registered with
/// [`send_wrapped_to_server`](crate::ClientAppExt::send_wrapped_to_server));
/// one that does is written as itself.
#[derive(Message, Debug, Clone)]
pub struct ToServer<T: Send + Sync + 'static> {
    /// The event.
    pub event: T,
}
