//! A transport handed to a connection that resumed on it: the connection's
//! driver drops the one it lost (or the one a resume replaced) and takes
//! this one, read side, write side and datagrams.

use bytes::BytesMut;

use crate::transport::{Datagrams, ReadSide, Transport};

use super::Writer;

pub(crate) struct Handoff {
    pub(crate) read: ReadSide,
    pub(crate) writer: Writer,
    pub(crate) datagrams: Option<Datagrams>,
    /// Bytes already read from it, to be read first.
    pub(crate) leftover: BytesMut,
}

impl Handoff {
    /// A transport just opened, nothing read from it yet.
    pub(crate) fn new<T: Transport>(mut transport: T) -> Self {
        let datagrams = transport.take_datagrams();
        let (read, writer) = transport.split();
        Self {
            read,
            writer,
            datagrams,
            leftover: BytesMut::new(),
        }
    }
}
