//! Middleware as registered on one side: global and per-remote lists of both
//! kinds, what applies to each remote (rebuilt on registration, read on
//! every message), and the outgoing admission checks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use volley_proto::RemoteId;

use crate::error::Reject;
use crate::guard::catch_user;
use crate::locks::{read, write};
use crate::middleware::{Admit, Middleware};

pub(crate) type Chain<C> = Arc<[Arc<dyn Middleware<C>>]>;

/// A registered middleware of either kind.
pub(crate) enum Layer<C> {
    Admit(Arc<dyn Admit<C>>),
    Wrap(Arc<dyn Middleware<C>>),
}

impl<C> Clone for Layer<C> {
    fn clone(&self) -> Self {
        match self {
            Self::Admit(admit) => Self::Admit(admit.clone()),
            Self::Wrap(wrap) => Self::Wrap(wrap.clone()),
        }
    }
}

/// The middleware that applies to one remote: global ones, then its own.
pub(crate) struct Applied<C> {
    pub(crate) admit: Arc<[Arc<dyn Admit<C>>]>,
    /// Empty keeps the handler on the fast path.
    pub(crate) chain: Chain<C>,
}

impl<C> Clone for Applied<C> {
    fn clone(&self) -> Self {
        Self {
            admit: self.admit.clone(),
            chain: self.chain.clone(),
        }
    }
}

pub(crate) struct Chains<C> {
    global: RwLock<Vec<Layer<C>>>,
    per_remote: RwLock<Vec<Vec<Layer<C>>>>,
    /// `global` + `per_remote[id]` for each remote, rebuilt when either changes.
    applied: RwLock<Vec<Applied<C>>>,
    /// Whether any incoming middleware is registered at all.
    has_middleware: AtomicBool,
    /// Run before this side sends a call or event.
    outgoing: RwLock<Vec<Arc<dyn Admit<C>>>>,
    /// Whether `outgoing` is empty, read without a lock on every send.
    has_outgoing: AtomicBool,
}

impl<C: 'static> Chains<C> {
    /// No middleware yet, for `remotes` remotes.
    pub(crate) fn new(remotes: usize) -> Self {
        let empty = Applied {
            admit: Arc::from(Vec::new()),
            chain: Arc::from(Vec::new()),
        };
        Self {
            global: RwLock::new(Vec::new()),
            per_remote: RwLock::new(vec![Vec::new(); remotes]),
            applied: RwLock::new(vec![empty; remotes]),
            has_middleware: AtomicBool::new(false),
            outgoing: RwLock::new(Vec::new()),
            has_outgoing: AtomicBool::new(false),
        }
    }

    /// Adds middleware for every remote this side receives.
    pub(crate) fn add(&self, middleware: Layer<C>) {
        write(&self.global).push(middleware);
        self.rebuild(None);
    }

    /// Adds middleware for remote `id`.
    pub(crate) fn add_for(&self, id: RemoteId, middleware: Layer<C>) {
        write(&self.per_remote)[id as usize].push(middleware);
        self.rebuild(Some(id));
    }

    fn rebuild(&self, only: Option<RemoteId>) {
        let global = read(&self.global).clone();
        let per_remote = read(&self.per_remote);
        let mut applied = write(&self.applied);
        for (id, own) in per_remote.iter().enumerate() {
            if only.is_some_and(|o| o as usize != id) {
                continue;
            }
            let (mut admit, mut chain) = (Vec::new(), Vec::new());
            for layer in global.iter().chain(own) {
                match layer {
                    Layer::Admit(a) => admit.push(a.clone()),
                    Layer::Wrap(w) => chain.push(w.clone()),
                }
            }
            if !admit.is_empty() || !chain.is_empty() {
                self.has_middleware.store(true, Ordering::Release);
            }
            applied[id] = Applied {
                admit: admit.into(),
                chain: chain.into(),
            };
        }
    }

    /// The peer left: every admission check forgets it.
    pub(crate) fn peer_left(&self, ctx: &C) {
        let mut seen: Vec<Layer<C>> = read(&self.global).clone();
        for own in read(&self.per_remote).iter() {
            seen.extend(own.iter().cloned());
        }
        for layer in seen {
            if let Layer::Admit(admit) = layer {
                catch_user("Admit::disconnected", None, || admit.disconnected(ctx));
            }
        }
    }

    /// Adds an admission check for what this side sends.
    pub(crate) fn add_outgoing(&self, middleware: Arc<dyn Admit<C>>) {
        write(&self.outgoing).push(middleware);
        self.has_outgoing.store(true, Ordering::Release);
    }

    /// Runs the outgoing middleware's `admit` for a call or event to `peer`.
    pub(crate) fn admit_outgoing(&self, peer: &C, remote: &'static str, size: usize) -> Result<(), Reject> {
        if !self.has_outgoing.load(Ordering::Acquire) {
            return Ok(());
        }
        for middleware in read(&self.outgoing).iter() {
            admit_guarded(&**middleware, peer, remote, size)?;
        }
        Ok(())
    }

    /// Runs the admit hooks of the middleware applying to `remote`, whose
    /// name `name` gives. `None` when no middleware is registered at all:
    /// the common case costs one atomic load instead of a lock and a
    /// reference count (and no look-up of the name).
    pub(crate) fn admit(
        &self,
        ctx: &C,
        remote: RemoteId,
        name: impl FnOnce() -> &'static str,
        size: usize,
    ) -> Result<Option<Applied<C>>, Reject> {
        if !self.has_middleware.load(Ordering::Acquire) {
            return Ok(None);
        }
        let name = name();
        let applied = read(&self.applied)[remote as usize].clone();
        for admit in applied.admit.iter() {
            admit_guarded(&**admit, ctx, name, size)?;
        }
        Ok(Some(applied))
    }
}

/// A middleware's `admit`; one that panics refuses (the caller sees
/// `Unprocessed`, as for a handler that panics).
fn admit_guarded<C: 'static>(
    middleware: &dyn Admit<C>,
    peer: &C,
    remote: &'static str,
    size: usize,
) -> Result<(), Reject> {
    catch_user("Admit::admit", Some(remote), || middleware.admit(peer, remote, size))
        .unwrap_or_else(|| Err(Reject::internal("middleware panicked")))
}
