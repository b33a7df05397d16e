//! Headless tests of a game's apps: a server `App` and client `App`s
//! connected in memory, stepped frame by frame until a condition holds.
//!
//! ```no_run
//! # use bevy_app::App;
//! # use volley_bevy::prelude::*;
//! # fn apps() -> (App, App) { unimplemented!() }
//! use std::time::Duration;
//! use volley_bevy::testing::{connect_in_memory, update_until};
//!
//! let (mut server, mut client) = apps(); // with VolleyServerPlugin / VolleyClientPlugin::new
//! connect_in_memory(&mut server, &mut client);
//! update_until(&mut [&mut server, &mut client], "connected", Duration::from_secs(10), |apps| {
//!     *apps[1].world().resource::<ClientState>() == ClientState::Connected
//! })
//! .unwrap();
//! ```

use std::time::{Duration, Instant};

use bevy_app::App;

use crate::client::Connect;
use crate::runtime::VolleyRuntime;
use crate::server::{ServerState, StartServer, VolleyServer};

/// How long [`update_until`] sleeps between rounds of frames: volley's
/// tasks run on other threads, and a round that finds nothing new gives
/// them this to catch up rather than spin.
pub const FRAME_PAUSE: Duration = Duration::from_millis(1);

/// Connects `client` (an app with a `VolleyClientPlugin`) to `server` (one
/// with a `VolleyServerPlugin`) over volley's in-memory transport: the
/// client connects in its next frame. A server not yet running is started
/// in memory ([`StartServer::memory`]), so it is
/// [`ServerState::Running`] from its next
/// frame.
///
/// # Panics
///
/// If either plugin is missing.
pub fn connect_in_memory(server: &mut App, client: &mut App) {
    let runtime = server.world().resource::<VolleyRuntime>().clone();
    let transport = {
        // The in-memory server end runs on the server app's runtime.
        let _inside = runtime.handle().enter();
        server.world().resource::<VolleyServer>().server.connect_memory()
    };
    if *server.world().resource::<ServerState>() == ServerState::Stopped {
        server.world_mut().trigger(StartServer::memory());
    }
    client.world_mut().trigger(Connect::memory(transport));
}

/// Updates every app in turn, one frame each, until `done` holds (checked
/// after each round); at most `timeout`. Returns the rounds it took, or
/// `Err` naming `what` it waited for.
pub fn update_until(
    apps: &mut [&mut App],
    what: &str,
    timeout: Duration,
    mut done: impl FnMut(&mut [&mut App]) -> bool,
) -> Result<usize, String> {
    let start = Instant::now();
    for rounds in 1.. {
        for app in apps.iter_mut() {
            app.update();
        }
        if done(apps) {
            return Ok(rounds);
        }
        if start.elapsed() >= timeout {
            return Err(format!("waited {timeout:?} ({rounds} frames) for: {what}"));
        }
        std::thread::sleep(FRAME_PAUSE);
    }
    unreachable!("the rounds end by success or timeout")
}
