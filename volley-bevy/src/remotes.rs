//! One registration for a remote, in code both sides share: the direction
//! comes from the remote's type, the role from which plugin the app has.

use bevy_app::App;
use volley::remote::{Event, Function, Payload, ToClient, ToServer};

#[cfg(feature = "client")]
use crate::client::{ClientAppExt, VolleyClient};
#[cfg(feature = "server")]
use crate::server::{ServerAppExt, VolleyServer};

/// A remote the app's systems use, whichever side the app is.
pub trait AppRemote {
    /// Registers it with the server plugin and the client plugin, whichever
    /// the app has (both, for a listen server).
    fn register(self, app: &mut App);
}

/// [`add_remote`](VolleyAppExt::add_remote) on an `App`.
pub trait VolleyAppExt {
    /// Registers `remote` for this app's side, added after the plugin: a
    /// client's event is received on the server ([`FromClient`](crate::FromClient))
    /// and sent by a client's systems with a plain `MessageWriter<T>` (its
    /// type derives Bevy's `Message`; for one that cannot, register it
    /// with [`ClientAppExt::send_wrapped_to_server`] and write
    /// [`ToServer`](crate::ToServer)); a server's event the other way; a
    /// server's function is answered on the server
    /// ([`Request`](crate::Request)) and called by a client
    /// ([`Invoke::server`](crate::Invoke::server)); a client's function
    /// the other way.
    ///
    /// # Panics
    ///
    /// If the app has neither plugin.
    fn add_remote(&mut self, remote: impl AppRemote) -> &mut Self;
}

impl VolleyAppExt for App {
    fn add_remote(&mut self, remote: impl AppRemote) -> &mut Self {
        remote.register(self);
        self
    }
}

/// Which plugins the app has: (server, client). A side left out of the
/// build (cargo features `server`, `client`) is never there.
fn sides(app: &App) -> (bool, bool) {
    let world = app.world();
    #[cfg(feature = "server")]
    let server = world.contains_resource::<VolleyServer>();
    #[cfg(not(feature = "server"))]
    let server = false;
    #[cfg(feature = "client")]
    let client = world.contains_resource::<VolleyClient>();
    #[cfg(not(feature = "client"))]
    let client = false;
    assert!(
        server || client,
        "add VolleyServerPlugin or VolleyClientPlugin before add_remote"
    );
    (server, client)
}

impl<T: bevy_ecs::message::Message + Payload + Clone + Sync> AppRemote for Event<ToServer, T> {
    fn register(self, app: &mut App) {
        #[allow(unused_variables)] // a side left out of the build
        let (server, client) = sides(app);
        #[cfg(feature = "server")]
        if server {
            app.receive_from_clients(self);
        }
        #[cfg(feature = "client")]
        if client {
            app.send_to_server(self);
        }
    }
}

impl<T: Payload + Clone + Sync> AppRemote for Event<ToClient, T> {
    fn register(self, app: &mut App) {
        #[allow(unused_variables)] // a side left out of the build
        let (server, client) = sides(app);
        #[cfg(feature = "server")]
        if server {
            app.send_to_clients(self);
        }
        #[cfg(feature = "client")]
        if client {
            app.receive_from_server(self);
        }
    }
}

impl<Req: Payload + Clone + Sync, Resp: Payload + Clone + Sync> AppRemote for Function<ToServer, Req, Resp> {
    fn register(self, app: &mut App) {
        #[allow(unused_variables)] // a side left out of the build
        let (server, client) = sides(app);
        #[cfg(feature = "server")]
        if server {
            app.answer_clients(self);
        }
        #[cfg(feature = "client")]
        if client {
            app.call_server(self);
        }
    }
}

impl<Req: Payload + Clone + Sync, Resp: Payload + Clone + Sync> AppRemote for Function<ToClient, Req, Resp> {
    fn register(self, app: &mut App) {
        #[allow(unused_variables)] // a side left out of the build
        let (server, client) = sides(app);
        #[cfg(feature = "server")]
        if server {
            app.call_clients(self);
        }
        #[cfg(feature = "client")]
        if client {
            app.answer_server(self);
        }
    }
}
