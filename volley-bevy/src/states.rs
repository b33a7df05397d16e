//! The `bevy_state` feature: [`ClientState`](crate::ClientState) and
//! [`ServerState`](crate::ServerState) as Bevy `States` too, so a game can
//! use `OnEnter`, `in_state` and state-scoped entities.

use bevy_app::{App, PreUpdate};
use bevy_ecs::prelude::*;
use bevy_state::app::AppExtStates;
use bevy_state::state::{FreelyMutableState, NextState, StateTransition};

use crate::VolleySet;

/// Mirrors the resource `S` into the state `S`, after volley's systems set
/// it each frame; the transition runs in `StateTransition`, right after
/// `PreUpdate`. Needs Bevy's `StatesPlugin` (in `DefaultPlugins`); without
/// it, says so in the log and keeps only the resource.
pub(crate) fn mirror<S: FreelyMutableState + Resource + Copy + Default>(app: &mut App) {
    if app.get_schedule(StateTransition).is_none() {
        tracing::warn!(
            state = std::any::type_name::<S>(),
            "no StatesPlugin (add it, or DefaultPlugins, before volley's plugin): the state is a resource only"
        );
        return;
    }
    app.init_state::<S>()
        .add_systems(PreUpdate, follow::<S>.after(VolleySet::Receive));
}

fn follow<S: FreelyMutableState + Resource + Copy>(now: Res<S>, mut next: ResMut<NextState<S>>) {
    if now.is_changed() {
        NextState::set_if_neq(&mut *next, *now);
    }
}
