//! Which remotes an app registered: several remotes may share message
//! types where each message names its remote (calls, incoming events); an
//! outgoing event's message type picks its remote, so it has one.

use std::any::TypeId;
use std::collections::HashMap;

use bevy_app::App;
use bevy_ecs::prelude::Resource;

/// Which remote (or remotes) each message type was registered for.
#[derive(Resource, Default)]
struct Registered(HashMap<TypeId, &'static str>);

/// Notes `remote` for the message type `M`; `true` the first time `M` is
/// seen (its systems are to be added then, and only then).
pub(crate) fn first_for<M: 'static>(app: &mut App, remote: &'static str) -> bool {
    let mut registered = app.world_mut().get_resource_or_insert_with(Registered::default);
    registered.0.insert(TypeId::of::<M>(), remote).is_none()
}

/// Refuses a second remote for the outgoing message type `M`: a message of
/// that type could not say which remote it goes by.
///
/// # Panics
///
/// If `M` was registered for another remote, naming both.
pub(crate) fn only_for<M: 'static>(app: &mut App, remote: &'static str) -> bool {
    let mut registered = app.world_mut().get_resource_or_insert_with(Registered::default);
    match registered.0.insert(TypeId::of::<M>(), remote) {
        None => true,
        Some(earlier) if earlier == remote => false,
        Some(earlier) => panic!(
            "remotes {earlier:?} and {remote:?} would be sent by the same message type {}: \
             give one of them a payload type of its own",
            std::any::type_name::<M>()
        ),
    }
}
