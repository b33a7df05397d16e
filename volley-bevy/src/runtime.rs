//! The tokio runtime volley runs on, beside Bevy's own schedule: the game's,
//! if it inserted one ([`VolleyRuntime::from_handle`]) before adding a
//! volley plugin, or one of the plugin's own.

use std::future::Future;
use std::sync::Arc;

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
        Self {
            handle: runtime.handle().clone(),
            _owned: Some(Arc::new(OwnedRuntime(Some(runtime)))),
        }
    }

    /// The game's own runtime.
    pub fn from_handle(handle: Handle) -> Self {
        Self { handle, _owned: None }
    }

    /// The runtime this thread is in, if any; else one of its own.
    pub fn current_or_new() -> Self {
        Handle::try_current().map_or_else(|_| Self::new(), Self::from_handle)
    }

    /// Its handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `future` on it in the background.
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(&self, future: F) -> tokio::task::JoinHandle<()> {
        self.handle.spawn(future)
    }

    /// Runs `future` to its end, blocking this thread (for start-up: binding
    /// a listener, connecting). Not from inside the runtime's own tasks.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match Handle::try_current() {
            // Inside a runtime already (a `#[tokio::main]` game): wait on a
            // thread of its own.
            Ok(_) => tokio::task::block_in_place(|| self.handle.block_on(future)),
            Err(_) => self.handle.block_on(future),
        }
    }
}

impl Default for VolleyRuntime {
    fn default() -> Self {
        Self::current_or_new()
    }
}
