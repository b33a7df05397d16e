//! The tokio runtime volley runs on, beside Bevy's own schedule: the game's,
//! if it inserted one ([`VolleyRuntime::from_handle`]) before adding a
//! volley plugin, or one of the plugin's own.

use std::future::Future;
use std::sync::Arc;

use bevy_app::App;
use bevy_ecs::prelude::Resource;
use tokio::runtime::{Handle, Runtime};

/// Where volley's connections run.
#[derive(Resource, Clone, Debug)]
pub struct VolleyRuntime {
    handle: Handle,
    _owned: Option<Arc<OwnedRuntime>>,
}

/// A runtime the plugin made; shut down without waiting when the last app
/// holding it goes (a runtime dropped inside async code would panic).
#[derive(Debug)]
struct OwnedRuntime(Option<Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl VolleyRuntime {
    /// A runtime of its own: two worker threads.
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("volley")
            .enable_all()
            .build()
            .expect("a tokio runtime starts");
        Self::owning(runtime)
    }

    /// A current-thread runtime with its clock paused: its tasks run, and
    /// its time moves, only when [`drive`](Self::drive)n ([`Stepper`](crate::testing::Stepper)).
    #[cfg(feature = "testing")]
    pub(crate) fn stepped() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a tokio runtime starts");
        Self::owning(runtime)
    }

    /// Runs the runtime's tasks on this thread until `future` ends: the
    /// only way a [`stepped`](Self::stepped) runtime runs anything.
    #[cfg(feature = "testing")]
    pub(crate) fn drive<F: Future>(&self, future: F) -> F::Output {
        let runtime = self._owned.as_ref().and_then(|owned| owned.0.as_ref());
        runtime.expect("a runtime of the plugin's own").block_on(future)
    }

    /// A runtime it holds (and shuts down when the last clone goes).
    fn owning(runtime: Runtime) -> Self {
        Self {
            handle: runtime.handle().clone(),
            _owned: Some(Arc::new(OwnedRuntime(Some(runtime)))),
        }
    }

    /// The game's own runtime.
    pub fn from_handle(handle: Handle) -> Self {
        Self { handle, _owned: None }
    }

    /// The runtime this thread is in, if it has worker threads; else one of
    /// its own. A current-thread runtime runs its tasks only while its
    /// thread waits on it, which a thread running the app's frames never
    /// does: volley's connections would stall.
    pub fn current_or_new() -> Self {
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                Self::from_handle(handle)
            }
            Ok(_) => {
                tracing::info!("the current tokio runtime is current-thread: volley runs on one of its own");
                Self::new()
            }
            Err(_) => Self::new(),
        }
    }

    /// Its handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `future` on it in the background.
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(&self, future: F) -> tokio::task::JoinHandle<()> {
        self.handle.spawn(future)
    }

    /// Runs `future` to its end, blocking this thread (for a test, or a
    /// game's start-up outside any system). Inside a runtime already (a
    /// `#[tokio::main]` game, of either flavour) it waits on a thread of its
    /// own rather than block that runtime.
    pub fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        if Handle::try_current().is_err() {
            return self.handle.block_on(future);
        }
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| self.handle.block_on(future));
            match waiting.join() {
                Ok(output) => output,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

impl Default for VolleyRuntime {
    fn default() -> Self {
        Self::current_or_new()
    }
}

/// The app's runtime, inserted if it has none.
pub(crate) fn runtime_of(app: &mut App) -> VolleyRuntime {
    if let Some(runtime) = app.world().get_resource::<VolleyRuntime>() {
        return runtime.clone();
    }
    let runtime = VolleyRuntime::current_or_new();
    app.insert_resource(runtime.clone());
    runtime
}
