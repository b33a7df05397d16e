//! The table of declared remotes both peers agree on.
//!
//! Remotes are named in code, but the wire carries a small integer: the remote's
//! index in the table sorted by name, so the declaration order does not matter.
//! The table's [`hash`](RemoteTable::hash) travels in the handshake; peers built
//! from different declarations refuse each other instead of misreading ids.

use std::fmt;

/// What a remote does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemoteKind {
    /// Request → response.
    Function,
    /// One-way message, delivered in order.
    Event,
    /// One-way message that may be dropped rather than wait: sent as a
    /// datagram where the transport has them; on a stream, dropped when the
    /// connection's output is backed up. Size-limited at send time.
    UnreliableEvent,
}

impl RemoteKind {
    /// Whether this is one of the two event kinds.
    pub fn is_event(self) -> bool {
        matches!(self, Self::Event | Self::UnreliableEvent)
    }
}

/// Which peer handles a remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Called or fired by a client, handled by the server.
    ToServer,
    /// Called or fired by the server, handled by a client.
    ToClient,
}

/// One declared remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    /// The declared name; unique in a table.
    pub name: &'static str,
    /// Function or event.
    pub kind: RemoteKind,
    /// Who handles it.
    pub direction: Direction,
    /// A [`stable_hash`] of the shape of its payload types, so that peers
    /// built with other types refuse each other; 0 when not known.
    pub shape: u64,
}

/// The id a remote has on the wire: its index in a [`RemoteTable`].
pub type RemoteId = u32;

/// A [`RemoteTable`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// Two remotes share a name.
    #[error("remote {0:?} is declared twice")]
    DuplicateName(&'static str),
}

/// Every remote of an application, sorted by name, with its wire id.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteTable {
    specs: Vec<RemoteSpec>,
    hash: u64,
}

impl RemoteTable {
    /// Builds the table; remote ids follow the names' sort order.
    pub fn new(mut specs: Vec<RemoteSpec>) -> Result<Self, TableError> {
        specs.sort_by(|a, b| a.name.cmp(b.name));
        if let Some(pair) = specs.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(TableError::DuplicateName(pair[0].name));
        }
        let mut hash = Fnv1a::new();
        for spec in &specs {
            hash.write(spec.name.as_bytes());
            hash.write(&[0xff, spec.kind as u8, spec.direction as u8]);
            if spec.shape != 0 {
                hash.write(&spec.shape.to_le_bytes());
            }
        }
        Ok(Self {
            hash: hash.finish(),
            specs,
        })
    }

    /// The wire id of the remote called `name`.
    pub fn id(&self, name: &str) -> Option<RemoteId> {
        self.specs
            .binary_search_by(|s| s.name.cmp(name))
            .ok()
            .map(|i| i as RemoteId)
    }

    /// The remote with wire id `id`.
    pub fn spec(&self, id: RemoteId) -> Option<&RemoteSpec> {
        self.specs.get(id as usize)
    }

    /// Number of remotes.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether no remote is declared.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// A hash of every name, kind, direction and shape, stable across builds
    /// and platforms.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

impl fmt::Debug for RemoteTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteTable")
            .field("remotes", &self.specs.len())
            .field("hash", &format_args!("{:016x}", self.hash))
            .finish()
    }
}

/// A 64-bit hash of `bytes` that every build and platform computes alike
/// (FNV-1a), for values both peers compare.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash = Fnv1a::new();
    hash.write(bytes);
    hash.finish()
}

/// 64-bit FNV-1a: a fixed, documented function, so a hash computed by one build
/// equals the one computed by another (std's hasher promises no such thing).
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &'static str, kind: RemoteKind, direction: Direction) -> RemoteSpec {
        RemoteSpec {
            name,
            kind,
            direction,
            shape: 0,
        }
    }

    #[test]
    fn ids_follow_names_not_declaration_order() {
        let a = RemoteTable::new(vec![
            spec("b", RemoteKind::Event, Direction::ToServer),
            spec("a", RemoteKind::Function, Direction::ToClient),
        ])
        .unwrap();
        let b = RemoteTable::new(vec![
            spec("a", RemoteKind::Function, Direction::ToClient),
            spec("b", RemoteKind::Event, Direction::ToServer),
        ])
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.id("a"), Some(0));
        assert_eq!(a.id("b"), Some(1));
        assert_eq!(a.id("c"), None);
    }

    #[test]
    fn hash_changes_with_direction_kind_and_name() {
        let base = RemoteTable::new(vec![spec("a", RemoteKind::Function, Direction::ToServer)]).unwrap();
        for other in [
            spec("a", RemoteKind::Function, Direction::ToClient),
            spec("a", RemoteKind::Event, Direction::ToServer),
            spec("b", RemoteKind::Function, Direction::ToServer),
            RemoteSpec {
                shape: 1,
                ..spec("a", RemoteKind::Function, Direction::ToServer)
            },
        ] {
            assert_ne!(RemoteTable::new(vec![other]).unwrap().hash(), base.hash());
        }
        // Known value: the hash must not change between builds.
        assert_eq!(base.hash(), 0xd3f3_4881_93a8_0ad1);
    }

    #[test]
    fn duplicate_names_are_refused() {
        let err = RemoteTable::new(vec![
            spec("a", RemoteKind::Function, Direction::ToServer),
            spec("a", RemoteKind::Event, Direction::ToServer),
        ])
        .unwrap_err();
        assert_eq!(err, TableError::DuplicateName("a"));
    }
}
