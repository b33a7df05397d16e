//! Headless tests of a game's apps: a server `App` and client `App`s
//! connected in memory, stepped frame by frame.
//!
//! [`Stepper`] steps them deterministically (feature `testing`): volley's
//! tasks run on a current-thread runtime of the stepper's own with a paused
//! clock, only between frames, until everything sent has arrived; the clock
//! moves one frame per step. A message written in the server's frame is
//! read in the client's frame of the same step, a call with a 100 ms
//! deadline fails in the same frame of every run, and a test never sleeps.
//!
//! ```
//! # use volley_bevy::prelude::*;
//! use volley_bevy::testing::Stepper;
//!
//! let mut stepper = Stepper::new();
//! let mut server = stepper.app(); // App::new() on the stepper's runtime
//! let mut client = stepper.app();
//! # let protocol = Protocol::builder().build();
//! server.add_plugins(VolleyServerPlugin::new(protocol.clone(), ServerConfig::default()));
//! client.add_plugins(VolleyClientPlugin::new(protocol, ClientConfig::default()));
//! stepper.connect(&mut server, &mut client);
//! let frames = stepper
//!     .step_until(&mut [&mut server, &mut client], "connected", 10, |apps| {
//!         *apps[1].world().resource::<ClientState>() == ClientState::Connected
//!     })
//!     .unwrap();
//! assert_eq!(frames, 1); // the same in every run
//! ```
//!
//! [`connect_in_memory`] and [`update_until`] do the same on any runtime,
//! in real time: for apps that also talk over real sockets.

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

/// Steps apps deterministically; see the [module](self) docs.
#[cfg(feature = "testing")]
#[derive(Debug)]
pub struct Stepper {
    runtime: VolleyRuntime,
    frame: Duration,
    frames: u64,
}

/// How long a [`Stepper`]'s frame is by default: 16 ms (60 frames a
/// second, rounded down).
#[cfg(feature = "testing")]
pub const DEFAULT_FRAME: Duration = Duration::from_millis(16);

/// How many times a [`Stepper`] hands its thread to volley's tasks after a
/// frame. In each round the runtime runs the tasks that are ready, those
/// they wake included, up to tokio's event interval (61 polls), then polls
/// its I/O and timers; a message's hops (the sending connection, the pipe,
/// the receiving connection, a handler, the app's inbox) take one round
/// between them unless many connections are busy. Fixed, so that every run
/// does the same; 64 rounds allow some 3,900 polls a frame.
#[cfg(feature = "testing")]
const SETTLE_ROUNDS: usize = 64;

#[cfg(feature = "testing")]
impl Stepper {
    /// A stepper with frames of [`DEFAULT_FRAME`].
    pub fn new() -> Self {
        Self::with_frame(DEFAULT_FRAME)
    }

    /// A stepper whose clock moves `frame` each step.
    pub fn with_frame(frame: Duration) -> Self {
        Self {
            runtime: VolleyRuntime::stepped(),
            frame,
            frames: 0,
        }
    }

    /// The runtime its apps run volley on: insert it into an app before
    /// adding a volley plugin ([`app`](Self::app) does).
    pub fn runtime(&self) -> VolleyRuntime {
        self.runtime.clone()
    }

    /// A new `App` on the stepper's runtime.
    pub fn app(&self) -> App {
        let mut app = App::new();
        app.insert_resource(self.runtime());
        app
    }

    /// [`connect_in_memory`]: the client connects in its next frame.
    pub fn connect(&self, server: &mut App, client: &mut App) {
        connect_in_memory(server, client);
    }

    /// Steps taken so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// One step: each app updates in turn, and after each, volley's tasks
    /// run until what that frame sent has arrived; then the clock moves
    /// one frame, and the timers that came due run.
    pub fn step(&mut self, apps: &mut [&mut App]) {
        for app in apps.iter_mut() {
            {
                // Systems read the runtime's (paused) clock too.
                let _inside = self.runtime.handle().enter();
                app.update();
            }
            self.settle();
        }
        let frame = self.frame;
        self.runtime.drive(tokio::time::advance(frame));
        self.settle();
        self.frames += 1;
    }

    /// Steps until `done` holds (checked after each step), at most
    /// `max_frames` steps. Returns the steps it took, or `Err` naming
    /// `what` it waited for.
    pub fn step_until(
        &mut self,
        apps: &mut [&mut App],
        what: &str,
        max_frames: u64,
        mut done: impl FnMut(&mut [&mut App]) -> bool,
    ) -> Result<u64, String> {
        for frames in 1..=max_frames {
            self.step(apps);
            if done(apps) {
                return Ok(frames);
            }
        }
        Err(format!("{max_frames} frames went by without: {what}"))
    }

    fn settle(&self) {
        self.runtime.drive(async {
            for _ in 0..SETTLE_ROUNDS {
                tokio::task::yield_now().await;
            }
        });
    }
}

#[cfg(feature = "testing")]
impl Default for Stepper {
    fn default() -> Self {
        Self::new()
    }
}
