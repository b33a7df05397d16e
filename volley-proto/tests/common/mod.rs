//! What the session tests share: the remotes both of their peers know.

use std::sync::Arc;

use volley_proto::{Direction, RemoteKind, RemoteSpec, RemoteTable};

/// Four remotes, one of each kind and direction: ids 0 (a function the
/// client calls), 1 (one the server calls), 2 (an event to the server),
/// 3 (an event to the client).
pub(crate) fn table() -> Arc<RemoteTable> {
    let spec = |name, kind, direction| RemoteSpec {
        name,
        kind,
        direction,
        shape: 0,
    };
    Arc::new(
        RemoteTable::new(vec![
            spec("a", RemoteKind::Function, Direction::ToServer),
            spec("b", RemoteKind::Function, Direction::ToClient),
            spec("c", RemoteKind::Event, Direction::ToServer),
            spec("d", RemoteKind::Event, Direction::ToClient),
        ])
        .unwrap(),
    )
}
