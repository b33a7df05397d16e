//! Registering what runs when the peer calls or fires, written once for both
//! ends. A server's handlers are given the calling [`Player`](crate::Player),
//! a client's the [`Client`](crate::Client); middleware sees the end's own
//! context (`Player`, or `()` on a client); everything else is the same.
//!
//! An end provides `fn peer_of(&self) -> impl Fn(Ctx) -> Peer` (how a
//! handler's first argument is made from the context the connection
//! dispatches with) and invokes [`registration_methods!`] inside its `impl`.

/// The registration methods of one end, inside its `impl` block: middleware
/// and admission checks, handlers, listeners and bad-input hooks.
macro_rules! registration_methods {
    (
        end: $end:literal,
        peer: $peer:ty,
        ctx: $ctx:ty,
        handles: $dir:ty,
        function: $function:ident,
        event: $event:ident $(,)?
    ) => {
        // ---- middleware ----

        #[doc = concat!("Adds middleware that wraps the handler of every remote the ", $end, " receives")]
        /// (and per-remote middleware). See [`middleware`](crate::middleware).
        pub fn middleware(&self, middleware: impl $crate::middleware::Middleware<$ctx>) {
            self.inner
                .endpoint
                .chains
                .add($crate::chains::Layer::Wrap(std::sync::Arc::new(middleware)));
        }

        #[doc = concat!("Adds middleware for one function or event the ", $end, " handles.")]
        ///
        /// # Panics
        ///
        #[doc = concat!("If `remote` is not in the ", $end, "'s [`Protocol`](crate::Protocol).")]
        #[track_caller]
        pub fn middleware_for<R: $crate::remote::Remote<Direction = $dir>>(
            &self,
            remote: R,
            middleware: impl $crate::middleware::Middleware<$ctx>,
        ) {
            let layer = $crate::chains::Layer::Wrap(std::sync::Arc::new(middleware));
            self.inner.endpoint.add_middleware_for(remote.name(), layer);
        }

        #[doc = concat!("Adds an admission check (a rate limit, say) for every remote the ", $end, " receives,")]
        /// run before the payload is decoded. See [`middleware`](crate::middleware).
        pub fn admit(&self, admit: impl $crate::middleware::Admit<$ctx>) {
            self.inner
                .endpoint
                .chains
                .add($crate::chains::Layer::Admit(std::sync::Arc::new(admit)));
        }

        #[doc = concat!("Adds an admission check for one function or event the ", $end, " handles.")]
        ///
        /// # Panics
        ///
        #[doc = concat!("If `remote` is not in the ", $end, "'s [`Protocol`](crate::Protocol).")]
        #[track_caller]
        pub fn admit_for<R: $crate::remote::Remote<Direction = $dir>>(
            &self,
            remote: R,
            admit: impl $crate::middleware::Admit<$ctx>,
        ) {
            let layer = $crate::chains::Layer::Admit(std::sync::Arc::new(admit));
            self.inner.endpoint.add_middleware_for(remote.name(), layer);
        }

        #[doc = concat!("Adds an admission check that runs before the ", $end, " sends: it sees")]
        /// each call or event about to leave and may refuse it; a refused call
        /// fails at once with the error the refusal names, a refused event is not
        /// sent ([`EventError::Refused`](crate::EventError::Refused)).
        pub fn admit_outgoing(&self, admit: impl $crate::middleware::Admit<$ctx>) {
            self.inner
                .endpoint
                .chains
                .add_outgoing(std::sync::Arc::new(admit));
        }

        // ---- handlers ----
        //
        // Register them before the peer can call: what arrives before its
        // handler is registered is answered `Unprocessed` (a call) or dropped
        // (an event).

        #[doc = concat!("Handles `remote` with an async handler, given the ", stringify!($peer), " (on a server")]
        /// the calling player, on a client the client itself). Each call runs as
        /// its own task; it is aborted if the caller cancels, times out or
        /// disconnects. Registering again replaces the handler and logs a
        /// warning. A call that arrives before its handler is registered is
        /// answered [`FunctionError::Unprocessed`](crate::FunctionError::Unprocessed).
        ///
        /// # Panics
        ///
        #[doc = concat!("If `remote` is not in the ", $end, "'s [`Protocol`](crate::Protocol).")]
        #[track_caller]
        pub fn on_request<Req, Resp, F, Fut>(&self, remote: $function<Req, Resp>, handler: F)
        where
            Req: $crate::remote::Payload,
            Resp: $crate::remote::Payload,
            F: Fn($peer, Req) -> Fut + Send + Sync + 'static,
            Fut: std::future::Future<Output = Result<Resp, $crate::Reject>> + Send + 'static,
        {
            let peer = self.peer_of();
            self.inner
                .endpoint
                .on_request(remote, move |ctx, req| handler(peer(ctx), req));
        }

        /// Handles `remote` with a synchronous handler, run inline on the
        /// connection's task: the fastest path, for handlers that never wait.
        ///
        /// # Panics
        ///
        #[doc = concat!("If `remote` is not in the ", $end, "'s [`Protocol`](crate::Protocol).")]
        #[track_caller]
        pub fn on_request_sync<Req, Resp, F>(&self, remote: $function<Req, Resp>, handler: F)
        where
            Req: $crate::remote::Payload,
            Resp: $crate::remote::Payload,
            F: Fn($peer, Req) -> Result<Resp, $crate::Reject> + Send + Sync + 'static,
        {
            let peer = self.peer_of();
            self.inner
                .endpoint
                .on_request_sync(remote, move |ctx, req| handler(peer(ctx), req));
        }

        #[doc = concat!("Adds a listener for `remote`, given the ", stringify!($peer), "; every listener sees every")]
        /// valid event. An event that arrives with no listener is dropped.
        ///
        /// # Panics
        ///
        #[doc = concat!("If `remote` is not in the ", $end, "'s [`Protocol`](crate::Protocol).")]
        #[track_caller]
        pub fn on_event<T, F>(&self, remote: $event<T>, listener: F)
        where
            T: $crate::remote::Payload + Clone,
            F: Fn($peer, T) + Send + Sync + 'static,
        {
            let peer = self.peer_of();
            self.inner
                .endpoint
                .on_event(remote, move |ctx, value| listener(peer(ctx), value));
        }

        /// Calls `hook` when the peer's request or event is dropped because it
        /// did not decode or failed validation.
        pub fn on_bad_request(&self, hook: impl Fn(&$peer, &$crate::BadInput) + Send + Sync + 'static) {
            let peer = self.peer_of();
            self.inner
                .endpoint
                .on_bad_request(move |ctx: &$ctx, bad| hook(&peer(ctx.clone()), bad));
        }

        /// Calls `hook` when the peer's answer to [`invoke`](Self::invoke) did
        /// not decode or failed validation.
        pub fn on_bad_response(&self, hook: impl Fn(&$peer, &$crate::BadInput) + Send + Sync + 'static) {
            let peer = self.peer_of();
            self.inner
                .endpoint
                .on_bad_response(move |ctx: &$ctx, bad| hook(&peer(ctx.clone()), bad));
        }
    };
}

pub(crate) use registration_methods;
