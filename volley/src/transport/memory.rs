//! An in-process transport: a pair of connected in-memory pipes.
//!
//! For tests, and for a game that runs its server in the same process as a
//! client (single-player, listen servers) without touching the network.

use tokio::io::DuplexStream;

use super::Transport;

/// One end of an in-memory connection; see [`pair`].
pub type MemoryTransport = DuplexStream;

/// How many bytes each direction buffers before the writer waits: 64 KiB.
pub const BUFFER_SIZE: usize = 64 * 1024;

impl Transport for DuplexStream {}

/// Two connected ends.
pub fn pair() -> (MemoryTransport, MemoryTransport) {
    tokio::io::duplex(BUFFER_SIZE)
}
