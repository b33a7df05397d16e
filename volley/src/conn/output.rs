//! The transport's write side and the bytes it has yet to take: written
//! outside the connection's lock, flushed until done.

use std::task::{Context, Poll};

use volley_proto::Session;

/// The write side of the transport, shared so that a caller can write a lone
/// call itself instead of handing it to the driver (one task hop less).
pub(crate) type Writer = crate::transport::WriteSide;

/// Largest read or write buffer kept once empty; a bigger one is dropped, so
/// a connection does not keep the memory of its largest burst.
pub(crate) const KEEP_BUFFER: usize = 16 * 1024;

/// What [`Conn::flush`](super::Conn::flush) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// Everything queued is written.
    Done { wrote: bool },
    /// The transport takes no more for now; `cx` will be woken.
    Blocked { wrote: bool },
    /// The transport failed; the session is closed.
    Failed,
}

/// The transport's write side, with the bytes taken from the session that
/// it has not taken yet.
pub(crate) struct Output {
    pub(super) writer: Writer,
    pub(super) buf: Vec<u8>,
    pub(super) written: usize,
    /// Bytes went to the writer since its last completed flush. Transports
    /// with buffers of their own (TLS, WebSocket) hold them back until
    /// flushed, so a flush that is pending must be driven again.
    pub(super) unflushed: bool,
}

impl Output {
    /// Whether everything taken from the session was written.
    pub(super) fn idle(&self) -> bool {
        self.written == self.buf.len()
    }

    /// Whether everything taken from the session reached the transport
    /// (written and flushed).
    pub(super) fn done(&self) -> bool {
        self.idle() && !self.unflushed
    }

    /// Once everything is written, takes what the session queued since:
    /// everything queued between two writes goes out in one. Returns whether
    /// there is anything to write or flush.
    pub(super) fn refill(&mut self, session: &mut Session) -> bool {
        if self.idle() {
            self.written = 0;
            self.buf.clear();
            if self.buf.capacity() > KEEP_BUFFER {
                self.buf = Vec::new();
            }
            session.take_transmit(&mut self.buf);
            session.set_transport_backlog(self.buf.len());
        }
        !self.done()
    }

    /// Writes as far as the transport takes it, then flushes it. `Pending`
    /// (with `cx` registered) until both are done.
    pub(super) fn write(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while !self.idle() {
            match self.writer.as_mut().poll_write(cx, &self.buf[self.written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        "transport accepted no bytes",
                    )))
                }
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    self.unflushed = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        // For TCP this is free; TLS and WebSocket send what they buffered.
        if self.unflushed {
            std::task::ready!(self.writer.as_mut().poll_flush(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }
}
