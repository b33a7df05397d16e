//! The wire: frames and the messages inside them.
//!
//! A frame is a varint body length followed by the body; the body is a one-byte
//! tag and the message's fields. Decoding is check-then-parse: [`check_frame`]
//! says whether a whole frame is buffered without copying anything, and only then
//! is it parsed and taken off the buffer ([`decode_frame`]). A partial frame is a
//! normal state, not an error.
//!
//! ```text
//! tag  message    fields after the tag
//! 0    Hello      version (varint) · remotes hash (8 bytes LE) · token (rest)
//! 1    Welcome    player id (varint)
//! 2    Refuse     code (u8) · message (UTF-8, rest)
//! 3    Event      remote (varint) · payload (rest)
//! 4    Request    id (varint) · remote (varint) · payload (rest)
//! 5    Response   id (varint) · payload (rest)               status Ok
//! 6    Response   id (varint) · status (u8) · payload (rest) any other status
//! 7    Cancel     id (varint)
//! 8    Ping       seq (varint)
//! 9    Pong       seq (varint), echoing the ping's
//! 10   Goodbye    code (u8) · message (UTF-8, rest)
//! ```
//!
//! A small call with a 4-byte payload costs 4 bytes of framing for the request
//! (length, tag, id, remote) and 3 for a successful response (length, tag, id).

use bytes::{Buf, BytesMut};

use crate::frame_bytes::FrameBytes;
use crate::varint::{self, Varint};

/// Version of the wire protocol; peers with different versions refuse each other.
pub const PROTOCOL_VERSION: u32 = 3;

/// Largest frame body accepted unless configured otherwise: 1 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1 << 20;

const TAG_HELLO: u8 = 0;
const TAG_WELCOME: u8 = 1;
const TAG_REFUSE: u8 = 2;
const TAG_EVENT: u8 = 3;
const TAG_REQUEST: u8 = 4;
const TAG_RESPONSE_OK: u8 = 5;
const TAG_RESPONSE_ERR: u8 = 6;
const TAG_CANCEL: u8 = 7;
const TAG_PING: u8 = 8;
const TAG_PONG: u8 = 9;
const TAG_GOODBYE: u8 = 10;
const TAG_ACK: u8 = 11;
const TAG_RESUME_TOKEN: u8 = 12;
const TAG_RESUME: u8 = 13;
const TAG_RESUMED: u8 = 14;

/// The bytes of a resume token: 128 bits, unguessable, chosen by the server.
pub const RESUME_TOKEN_LEN: usize = 16;

/// A server's proof that a client may take its player back after a lost
/// connection ([`Message::ResumeToken`]). Never printed: `Debug` hides it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResumeToken(pub [u8; RESUME_TOKEN_LEN]);

impl std::fmt::Debug for ResumeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResumeToken(..)")
    }
}

/// One message on the wire.
///
/// `P` is the payload type: [`FrameBytes`] for decoded messages (a small
/// payload copied, a large one sharing the read buffer), `&[u8]` when
/// encoding from borrowed data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message<P = FrameBytes> {
    /// First message of a client: who it is and what it was built with.
    Hello {
        /// The client's [`PROTOCOL_VERSION`].
        version: u32,
        /// Hash of the client's declared remotes ([`crate::RemoteTable::hash`]).
        remotes_hash: u64,
        /// Opaque credentials for the server's authenticator.
        token: P,
    },
    /// The server accepted the hello; the session is open.
    Welcome {
        /// The id the server gave this client's player.
        player: u64,
    },
    /// The server refused the hello; the connection closes.
    Refuse {
        /// Why, for programs.
        code: RefuseCode,
        /// Why, for people.
        message: String,
    },
    /// A one-way event.
    Event {
        /// Which remote.
        remote: u32,
        /// The encoded argument.
        payload: P,
    },
    /// A call that expects exactly one [`Message::Response`] with the same id.
    Request {
        /// Chosen by the caller, unique among its pending calls.
        id: u32,
        /// Which remote.
        remote: u32,
        /// The encoded argument.
        payload: P,
    },
    /// The answer to a request.
    Response {
        /// The request's id.
        id: u32,
        /// How the call ended.
        status: Status,
        /// The encoded result when `status` is [`Status::Ok`]; the message when
        /// it is [`Status::Rejected`]; empty otherwise.
        payload: P,
    },
    /// The caller no longer wants the answer to this request.
    Cancel {
        /// The request's id.
        id: u32,
    },
    /// Keep-alive and round-trip probe.
    Ping {
        /// Chosen by the sender; the pong echoes it.
        seq: u32,
    },
    /// Answer to a ping.
    Pong {
        /// The ping's `seq`.
        seq: u32,
    },
    /// The sender is closing the connection.
    Goodbye {
        /// Why, for programs.
        code: GoodbyeCode,
        /// Why, for people.
        message: String,
    },
    /// How many of the peer's numbered frames (requests, responses, events
    /// and cancels since the welcome) the sender has processed; the peer may
    /// forget them. A client that sends one right after its hello asks the
    /// server to make its player resumable.
    Ack {
        /// Count of numbered frames received, from the welcome on.
        received: u64,
    },
    /// Server: the token that resumes this player after a lost connection;
    /// follows the welcome, and replaces the last one after a resume.
    ResumeToken {
        /// Single use.
        token: ResumeToken,
    },
    /// A client's first message on a new connection that takes its player
    /// back, instead of a hello.
    Resume {
        /// The client's [`PROTOCOL_VERSION`].
        version: u32,
        /// Hash of the client's declared remotes.
        remotes_hash: u64,
        /// The last token the server gave.
        token: ResumeToken,
        /// How many of the server's numbered frames the client processed.
        received: u64,
    },
    /// Server: the player is back. The server's unacknowledged frames after
    /// the client's `received` follow; the client then sends its own after
    /// the server's `received`.
    Resumed {
        /// How many of the client's numbered frames the server processed.
        received: u64,
        /// The token for the next resume.
        token: ResumeToken,
    },
}

/// How a call ended, as carried by [`Message::Response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// The handler returned a result.
    Ok = 0,
    /// The handler rejected the call on purpose; the payload holds its message.
    Rejected = 1,
    /// The request did not decode or failed validation.
    BadRequest = 2,
    /// No handler ran to completion: none registered, or it failed internally.
    Unprocessed = 3,
    /// The call was cancelled before it finished.
    Cancelled = 4,
    /// The receiver is at its limit of calls in flight for this peer.
    Overloaded = 5,
    /// The receiver's rate limit for this peer and remote is exhausted.
    RateLimited = 6,
    /// The handler's result was too large for one frame (the receiver's
    /// `max_frame_len`); it was not sent.
    TooLarge = 7,
    /// A status this version does not know, from a newer peer. Never sent;
    /// the call ends as if the handler could not process it.
    Unknown = 255,
}

impl Status {
    fn from_u8(byte: u8) -> Self {
        match byte {
            0 => Self::Ok,
            1 => Self::Rejected,
            2 => Self::BadRequest,
            3 => Self::Unprocessed,
            4 => Self::Cancelled,
            5 => Self::Overloaded,
            6 => Self::RateLimited,
            7 => Self::TooLarge,
            _ => Self::Unknown,
        }
    }
}

/// Why a server refused a client's hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefuseCode {
    /// The client speaks another [`PROTOCOL_VERSION`].
    VersionMismatch = 0,
    /// The client was built with different remote declarations.
    RemotesMismatch = 1,
    /// The authenticator turned the client away.
    Unauthorized = 2,
    /// The server is not taking players now (full, shutting down).
    Unavailable = 3,
    /// A resume was refused (unknown, used or expired token, another
    /// build); the client may join anew with a hello.
    ResumeRefused = 4,
    /// A code this version does not know, from a newer server. Never sent;
    /// the message still says why.
    Unknown = 255,
}

impl RefuseCode {
    fn from_u8(byte: u8) -> Self {
        match byte {
            0 => Self::VersionMismatch,
            1 => Self::RemotesMismatch,
            2 => Self::Unauthorized,
            3 => Self::Unavailable,
            4 => Self::ResumeRefused,
            _ => Self::Unknown,
        }
    }
}

/// Why a peer said goodbye.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GoodbyeCode {
    /// An orderly close by the application.
    Normal = 0,
    /// The server removed this player.
    Kicked = 1,
    /// The sender is shutting down.
    ShuttingDown = 2,
    /// The receiver of this goodbye broke the protocol.
    ProtocolViolation = 3,
    /// The receiver of this goodbye went silent for too long.
    IdleTimeout = 4,
    /// The receiver of this goodbye did not read fast enough.
    TooSlow = 5,
    /// A code this version does not know, from a newer peer. Never sent;
    /// the connection closes as for any goodbye.
    Unknown = 255,
}

impl GoodbyeCode {
    fn from_u8(byte: u8) -> Self {
        match byte {
            0 => Self::Normal,
            1 => Self::Kicked,
            2 => Self::ShuttingDown,
            3 => Self::ProtocolViolation,
            4 => Self::IdleTimeout,
            5 => Self::TooSlow,
            _ => Self::Unknown,
        }
    }
}

/// Why bytes from a peer could not be decoded. Any of these closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The length prefix announces a frame larger than allowed.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// Announced length.
        len: u64,
        /// Configured maximum.
        max: usize,
    },
    /// A varint ran over ten bytes or past 64 bits.
    #[error("malformed varint")]
    BadVarint,
    /// A frame with no tag byte.
    #[error("empty frame")]
    EmptyFrame,
    /// A tag no message has.
    #[error("unknown message tag {0}")]
    UnknownTag(u8),
    /// The frame ended before the message's fields did.
    #[error("truncated {0} message")]
    Truncated(&'static str),
    /// A fixed-size message carried extra bytes.
    #[error("trailing bytes after {0} message")]
    TrailingBytes(&'static str),
    /// A number field exceeds its type's range.
    #[error("{0} out of range")]
    OutOfRange(&'static str),
    /// A status, refuse or goodbye code no version of the protocol defines.
    #[error("unknown {what} code {code}")]
    UnknownCode {
        /// Which field.
        what: &'static str,
        /// The byte found.
        code: u8,
    },
    /// A text field is not UTF-8.
    #[error("text in {0} message is not UTF-8")]
    BadText(&'static str),
}

/// Where a whole frame sits at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameBounds {
    /// Bytes of the length prefix.
    pub header_len: usize,
    /// Bytes of the body after it.
    pub body_len: usize,
}

/// Says whether `buf` starts with a whole frame, without consuming anything.
///
/// `Ok(None)` means more bytes are needed. A length over `max_frame_len` is an
/// error as soon as the prefix is readable, so a peer cannot make the reader
/// buffer a huge frame before being refused.
pub fn check_frame(buf: &[u8], max_frame_len: usize) -> Result<Option<FrameBounds>, DecodeError> {
    let (len, header_len) = match varint::get(buf) {
        Varint::Done(len, n) => (len, n),
        Varint::Incomplete => return Ok(None),
        Varint::Overflow => return Err(DecodeError::BadVarint),
    };
    if len > max_frame_len as u64 {
        return Err(DecodeError::FrameTooLarge {
            len,
            max: max_frame_len,
        });
    }
    let body_len = len as usize;
    if buf.len() - header_len < body_len {
        return Ok(None);
    }
    Ok(Some(FrameBounds { header_len, body_len }))
}

/// Takes the first whole frame off `buf` and parses it; `Ok(None)` if the
/// frame is not complete yet (nothing is consumed then).
///
/// A frame whose body fits in [`FrameBytes::INLINE`] bytes is parsed where it
/// lies and its payload copied; a larger one is split off the buffer and its
/// payload shares it.
pub fn decode_frame(buf: &mut BytesMut, max_frame_len: usize) -> Result<Option<Message>, DecodeError> {
    let Some(FrameBounds { header_len, body_len }) = check_frame(buf, max_frame_len)? else {
        return Ok(None);
    };
    let frame_len = header_len + body_len;
    if body_len <= FrameBytes::INLINE {
        let parsed = Message::parse(&buf[header_len..frame_len]).map(|msg| {
            // A payload no longer than its body fits inline.
            msg.map_payload(|payload| FrameBytes::inline(payload).unwrap_or_default())
        });
        buf.advance(frame_len);
        return parsed.map(Some);
    }
    // One split for prefix and body, then the prefix is stepped over in the
    // frozen frame: a `Bytes` advances by moving a pointer, where advancing
    // the shared read buffer costs as much as the split itself.
    let mut body = buf.split_to(frame_len).freeze();
    body.advance(header_len);
    Message::parse(body).map(|msg| Some(msg.map_payload(FrameBytes::from)))
}

/// Reads the fields of one body, front to back.
struct Fields<B> {
    body: B,
    what: &'static str,
}

impl<B: Buf + AsRef<[u8]>> Fields<B> {
    fn varint_u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        u32::try_from(self.varint_u64()?).map_err(|_| DecodeError::OutOfRange(field))
    }

    fn varint_u64(&mut self) -> Result<u64, DecodeError> {
        match varint::get(self.body.as_ref()) {
            Varint::Done(value, n) => {
                self.body.advance(n);
                Ok(value)
            }
            Varint::Incomplete => Err(DecodeError::Truncated(self.what)),
            Varint::Overflow => Err(DecodeError::BadVarint),
        }
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        if !self.body.has_remaining() {
            return Err(DecodeError::Truncated(self.what));
        }
        Ok(self.body.get_u8())
    }

    fn u64_le(&mut self) -> Result<u64, DecodeError> {
        if self.body.remaining() < 8 {
            return Err(DecodeError::Truncated(self.what));
        }
        Ok(self.body.get_u64_le())
    }

    fn token(&mut self) -> Result<ResumeToken, DecodeError> {
        if self.body.remaining() < RESUME_TOKEN_LEN {
            return Err(DecodeError::Truncated(self.what));
        }
        let mut token = [0; RESUME_TOKEN_LEN];
        self.body.copy_to_slice(&mut token);
        Ok(ResumeToken(token))
    }

    fn rest(self) -> B {
        self.body
    }

    fn text(self) -> Result<String, DecodeError> {
        String::from_utf8(self.body.as_ref().to_vec()).map_err(|_| DecodeError::BadText(self.what))
    }

    fn end(self) -> Result<(), DecodeError> {
        if !self.body.has_remaining() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.what))
        }
    }
}

impl<P: Buf + AsRef<[u8]>> Message<P> {
    /// Parses one frame body (the bytes after the length prefix): from a
    /// [`Bytes`](bytes::Bytes), whose payload then shares it, or from a `&[u8]`, whose
    /// payload then borrows it.
    pub fn parse(mut body: P) -> Result<Self, DecodeError> {
        if !body.has_remaining() {
            return Err(DecodeError::EmptyFrame);
        }
        let tag = body.get_u8();
        let fields = |what| Fields { body, what };
        Ok(match tag {
            TAG_HELLO => {
                let mut f = fields("hello");
                let version = f.varint_u32("version")?;
                let remotes_hash = f.u64_le()?;
                Message::Hello {
                    version,
                    remotes_hash,
                    token: f.rest(),
                }
            }
            TAG_WELCOME => {
                let mut f = fields("welcome");
                let player = f.varint_u64()?;
                f.end()?;
                Message::Welcome { player }
            }
            TAG_REFUSE => {
                let mut f = fields("refuse");
                let byte = f.u8()?;
                let code = RefuseCode::from_u8(byte);
                Message::Refuse {
                    code,
                    message: f.text()?,
                }
            }
            TAG_EVENT => {
                let mut f = fields("event");
                let remote = f.varint_u32("remote")?;
                Message::Event {
                    remote,
                    payload: f.rest(),
                }
            }
            TAG_REQUEST => {
                let mut f = fields("request");
                let id = f.varint_u32("call id")?;
                let remote = f.varint_u32("remote")?;
                Message::Request {
                    id,
                    remote,
                    payload: f.rest(),
                }
            }
            TAG_RESPONSE_OK => {
                let mut f = fields("response");
                let id = f.varint_u32("call id")?;
                Message::Response {
                    id,
                    status: Status::Ok,
                    payload: f.rest(),
                }
            }
            TAG_RESPONSE_ERR => {
                let mut f = fields("response");
                let id = f.varint_u32("call id")?;
                let byte = f.u8()?;
                // `Ok` has its own tag; accepting it here would give one
                // message two encodings. Other unknown codes are a newer
                // peer's: `Status::Unknown`.
                let status = Status::from_u8(byte);
                if status == Status::Ok {
                    return Err(DecodeError::UnknownCode {
                        what: "status",
                        code: byte,
                    });
                }
                Message::Response {
                    id,
                    status,
                    payload: f.rest(),
                }
            }
            TAG_CANCEL => {
                let mut f = fields("cancel");
                let id = f.varint_u32("call id")?;
                f.end()?;
                Message::Cancel { id }
            }
            TAG_PING => {
                let mut f = fields("ping");
                let seq = f.varint_u32("ping seq")?;
                f.end()?;
                Message::Ping { seq }
            }
            TAG_PONG => {
                let mut f = fields("pong");
                let seq = f.varint_u32("ping seq")?;
                f.end()?;
                Message::Pong { seq }
            }
            TAG_GOODBYE => {
                let mut f = fields("goodbye");
                let byte = f.u8()?;
                let code = GoodbyeCode::from_u8(byte);
                Message::Goodbye {
                    code,
                    message: f.text()?,
                }
            }
            TAG_ACK => {
                let mut f = fields("ack");
                let received = f.varint_u64()?;
                f.end()?;
                Message::Ack { received }
            }
            TAG_RESUME_TOKEN => {
                let mut f = fields("resume token");
                let token = f.token()?;
                f.end()?;
                Message::ResumeToken { token }
            }
            TAG_RESUME => {
                let mut f = fields("resume");
                let version = f.varint_u32("version")?;
                let remotes_hash = f.u64_le()?;
                let token = f.token()?;
                let received = f.varint_u64()?;
                f.end()?;
                Message::Resume {
                    version,
                    remotes_hash,
                    token,
                    received,
                }
            }
            TAG_RESUMED => {
                let mut f = fields("resumed");
                let received = f.varint_u64()?;
                let token = f.token()?;
                f.end()?;
                Message::Resumed { received, token }
            }
            other => return Err(DecodeError::UnknownTag(other)),
        })
    }
}

impl<P> Message<P> {
    /// The same message with its payload (or hello token) turned by `f`.
    pub fn map_payload<Q>(self, f: impl FnOnce(P) -> Q) -> Message<Q> {
        match self {
            Message::Hello {
                version,
                remotes_hash,
                token,
            } => Message::Hello {
                version,
                remotes_hash,
                token: f(token),
            },
            Message::Event { remote, payload } => Message::Event {
                remote,
                payload: f(payload),
            },
            Message::Request { id, remote, payload } => Message::Request {
                id,
                remote,
                payload: f(payload),
            },
            Message::Response { id, status, payload } => Message::Response {
                id,
                status,
                payload: f(payload),
            },
            Message::Welcome { player } => Message::Welcome { player },
            Message::Refuse { code, message } => Message::Refuse { code, message },
            Message::Cancel { id } => Message::Cancel { id },
            Message::Ping { seq } => Message::Ping { seq },
            Message::Pong { seq } => Message::Pong { seq },
            Message::Goodbye { code, message } => Message::Goodbye { code, message },
            Message::Ack { received } => Message::Ack { received },
            Message::ResumeToken { token } => Message::ResumeToken { token },
            Message::Resume {
                version,
                remotes_hash,
                token,
                received,
            } => Message::Resume {
                version,
                remotes_hash,
                token,
                received,
            },
            Message::Resumed { received, token } => Message::Resumed { received, token },
        }
    }
}

impl<P: AsRef<[u8]>> Message<P> {
    /// Appends this message as one frame (length prefix and body) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let body_len = self.body_len();
        out.reserve(varint::len(body_len as u64) + body_len);
        varint::put(out, body_len as u64);
        let start = out.len();
        match self {
            Message::Hello {
                version,
                remotes_hash,
                token,
            } => {
                out.push(TAG_HELLO);
                varint::put(out, u64::from(*version));
                out.extend_from_slice(&remotes_hash.to_le_bytes());
                out.extend_from_slice(token.as_ref());
            }
            Message::Welcome { player } => {
                out.push(TAG_WELCOME);
                varint::put(out, *player);
            }
            Message::Refuse { code, message } => {
                out.push(TAG_REFUSE);
                out.push(*code as u8);
                out.extend_from_slice(message.as_bytes());
            }
            Message::Event { remote, payload } => {
                out.push(TAG_EVENT);
                varint::put(out, u64::from(*remote));
                out.extend_from_slice(payload.as_ref());
            }
            Message::Request { id, remote, payload } => {
                out.push(TAG_REQUEST);
                varint::put(out, u64::from(*id));
                varint::put(out, u64::from(*remote));
                out.extend_from_slice(payload.as_ref());
            }
            Message::Response { id, status, payload } => {
                if *status == Status::Ok {
                    out.push(TAG_RESPONSE_OK);
                    varint::put(out, u64::from(*id));
                } else {
                    out.push(TAG_RESPONSE_ERR);
                    varint::put(out, u64::from(*id));
                    out.push(*status as u8);
                }
                out.extend_from_slice(payload.as_ref());
            }
            Message::Cancel { id } => {
                out.push(TAG_CANCEL);
                varint::put(out, u64::from(*id));
            }
            Message::Ping { seq } => {
                out.push(TAG_PING);
                varint::put(out, u64::from(*seq));
            }
            Message::Pong { seq } => {
                out.push(TAG_PONG);
                varint::put(out, u64::from(*seq));
            }
            Message::Goodbye { code, message } => {
                out.push(TAG_GOODBYE);
                out.push(*code as u8);
                out.extend_from_slice(message.as_bytes());
            }
            Message::Ack { received } => {
                out.push(TAG_ACK);
                varint::put(out, *received);
            }
            Message::ResumeToken { token } => {
                out.push(TAG_RESUME_TOKEN);
                out.extend_from_slice(&token.0);
            }
            Message::Resume {
                version,
                remotes_hash,
                token,
                received,
            } => {
                out.push(TAG_RESUME);
                varint::put(out, u64::from(*version));
                out.extend_from_slice(&remotes_hash.to_le_bytes());
                out.extend_from_slice(&token.0);
                varint::put(out, *received);
            }
            Message::Resumed { received, token } => {
                out.push(TAG_RESUMED);
                varint::put(out, *received);
                out.extend_from_slice(&token.0);
            }
        }
        debug_assert_eq!(out.len() - start, body_len);
    }

    /// Length of the body [`Message::encode`] writes, without the length prefix.
    pub fn body_len(&self) -> usize {
        let v = |n: u32| varint::len(u64::from(n));
        1 + match self {
            Message::Hello { version, token, .. } => v(*version) + 8 + token.as_ref().len(),
            Message::Welcome { player } => varint::len(*player),
            Message::Ping { seq } | Message::Pong { seq } => v(*seq),
            Message::Refuse { message, .. } | Message::Goodbye { message, .. } => 1 + message.len(),
            Message::Event { remote, payload } => v(*remote) + payload.as_ref().len(),
            Message::Request { id, remote, payload } => v(*id) + v(*remote) + payload.as_ref().len(),
            Message::Response { id, status, payload } => {
                v(*id) + usize::from(*status != Status::Ok) + payload.as_ref().len()
            }
            Message::Cancel { id } => v(*id),
            Message::Ack { received } => varint::len(*received),
            Message::ResumeToken { .. } => RESUME_TOKEN_LEN,
            Message::Resume { version, received, .. } => v(*version) + 8 + RESUME_TOKEN_LEN + varint::len(*received),
            Message::Resumed { received, .. } => varint::len(*received) + RESUME_TOKEN_LEN,
        }
    }

    /// Length of the whole frame [`Message::encode`] writes.
    pub fn frame_len(&self) -> usize {
        let body = self.body_len();
        varint::len(body as u64) + body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn any_payload() -> impl Strategy<Value = FrameBytes> {
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(FrameBytes::from)
    }

    fn any_status() -> impl Strategy<Value = Status> {
        prop_oneof![
            Just(Status::Ok),
            Just(Status::Rejected),
            Just(Status::BadRequest),
            Just(Status::Unprocessed),
            Just(Status::Cancelled),
            Just(Status::Overloaded),
            Just(Status::RateLimited),
            Just(Status::TooLarge),
        ]
    }

    pub(crate) fn any_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (any::<u32>(), any::<u64>(), any_payload()).prop_map(|(version, remotes_hash, token)| {
                Message::Hello {
                    version,
                    remotes_hash,
                    token,
                }
            }),
            any::<u64>().prop_map(|player| Message::Welcome { player }),
            (0u8..5, ".{0,20}").prop_map(|(c, message)| Message::Refuse {
                code: RefuseCode::from_u8(c),
                message
            }),
            (any::<u32>(), any_payload()).prop_map(|(remote, payload)| Message::Event { remote, payload }),
            (any::<u32>(), any::<u32>(), any_payload())
                .prop_map(|(id, remote, payload)| { Message::Request { id, remote, payload } }),
            (any::<u32>(), any_status(), any_payload())
                .prop_map(|(id, status, payload)| { Message::Response { id, status, payload } }),
            any::<u32>().prop_map(|id| Message::Cancel { id }),
            any::<u64>().prop_map(|received| Message::Ack { received }),
            any::<[u8; 16]>().prop_map(|t| Message::ResumeToken { token: ResumeToken(t) }),
            (any::<u32>(), any::<u64>(), any::<[u8; 16]>(), any::<u64>()).prop_map(
                |(version, remotes_hash, t, received)| Message::Resume {
                    version,
                    remotes_hash,
                    token: ResumeToken(t),
                    received
                }
            ),
            (any::<u64>(), any::<[u8; 16]>()).prop_map(|(received, t)| Message::Resumed {
                received,
                token: ResumeToken(t)
            }),
            any::<u32>().prop_map(|seq| Message::Ping { seq }),
            any::<u32>().prop_map(|seq| Message::Pong { seq }),
            (0u8..6, ".{0,20}").prop_map(|(c, message)| Message::Goodbye {
                code: GoodbyeCode::from_u8(c),
                message
            }),
        ]
    }

    #[test]
    fn small_call_overhead_is_seven_bytes() {
        let mut out = Vec::new();
        let payload = [1u8, 2, 3, 4];
        Message::Request {
            id: 3,
            remote: 1,
            payload: &payload[..],
        }
        .encode(&mut out);
        assert_eq!(out.len(), 4 + 4);
        out.clear();
        Message::Response {
            id: 3,
            status: Status::Ok,
            payload: &payload[..],
        }
        .encode(&mut out);
        assert_eq!(out.len(), 3 + 4);
    }

    #[test]
    fn payloads_across_the_prefix_lengths_round_trip() {
        // Bodies just under and over 128 and 16,384 bytes: one-, two- and
        // three-byte length prefixes, each frame behind the last.
        let mut out = Vec::new();
        let mut sent = Vec::new();
        for len in [
            0, 120, 121, 122, 123, 126, 127, 128, 16_370, 16_377, 16_378, 16_383, 70_000,
        ] {
            let payload = FrameBytes::from(vec![7u8; len]);
            for msg in [
                Message::Request {
                    id: 300,
                    remote: 2,
                    payload: payload.clone(),
                },
                Message::Response {
                    id: u32::MAX,
                    status: Status::Rejected,
                    payload: payload.clone(),
                },
                Message::Event {
                    remote: 1,
                    payload: payload.clone(),
                },
            ] {
                let before = out.len();
                msg.encode(&mut out);
                assert_eq!(out.len() - before, msg.frame_len(), "{len}");
                sent.push(msg);
            }
        }
        let mut buf = BytesMut::from(&out[..]);
        for msg in sent {
            assert_eq!(decode_frame(&mut buf, usize::MAX), Ok(Some(msg)));
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn a_small_frame_s_payload_is_copied_and_a_large_one_s_shares_the_buffer() {
        let mut out = Vec::new();
        // Bodies of 38 and 39 bytes: tag, id, remote and the payload.
        for len in [FrameBytes::INLINE - 3, FrameBytes::INLINE - 2] {
            Message::Request {
                id: 1,
                remote: 2,
                payload: &vec![7u8; len][..],
            }
            .encode(&mut out);
        }
        let mut buf = BytesMut::from(&out[..]);
        let mut next = || match decode_frame(&mut buf, 1024) {
            Ok(Some(Message::Request { payload, .. })) => payload,
            other => panic!("not a request: {other:?}"),
        };
        let (small, large) = (next(), next());
        assert!(small.is_inline());
        assert_eq!(&*small, &[7u8; FrameBytes::INLINE - 3][..]);
        assert!(!large.is_inline());
        assert_eq!(&*large, &[7u8; FrameBytes::INLINE - 2][..]);
        assert!(buf.is_empty());
    }

    #[test]
    fn huge_length_prefix_is_refused_before_buffering() {
        // 2^60 as a varint, with no body behind it.
        let mut prefix = Vec::new();
        varint::put(&mut prefix, 1 << 60);
        assert_eq!(
            check_frame(&prefix, DEFAULT_MAX_FRAME_LEN),
            Err(DecodeError::FrameTooLarge {
                len: 1 << 60,
                max: DEFAULT_MAX_FRAME_LEN
            })
        );
    }

    #[test]
    fn partial_frame_consumes_nothing() {
        let mut out = Vec::new();
        Message::Event {
            remote: 2,
            payload: &b"hello"[..],
        }
        .encode(&mut out);
        for cut in 0..out.len() {
            let mut buf = BytesMut::from(&out[..cut]);
            assert_eq!(decode_frame(&mut buf, 1024), Ok(None));
            assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn ok_status_in_error_tag_is_refused() {
        let body = Bytes::from_static(&[TAG_RESPONSE_ERR, 1, Status::Ok as u8]);
        assert!(matches!(
            Message::parse(body),
            Err(DecodeError::UnknownCode { what: "status", .. })
        ));
    }

    #[test]
    fn codes_from_a_newer_peer_decode_as_unknown() {
        let parse = |bytes: &'static [u8]| Message::parse(Bytes::from_static(bytes)).unwrap();
        assert_eq!(
            parse(&[TAG_RESPONSE_ERR, 1, 200]),
            Message::Response {
                id: 1,
                status: Status::Unknown,
                payload: Bytes::new()
            }
        );
        assert_eq!(
            parse(&[TAG_REFUSE, 99, b'n', b'o']),
            Message::Refuse {
                code: RefuseCode::Unknown,
                message: "no".into()
            }
        );
        assert_eq!(
            parse(&[TAG_GOODBYE, 42]),
            Message::Goodbye {
                code: GoodbyeCode::Unknown,
                message: String::new()
            }
        );
    }

    proptest! {
        #[test]
        fn every_message_round_trips(msg in any_message()) {
            let mut out = Vec::new();
            msg.encode(&mut out);
            prop_assert_eq!(out.len(), msg.frame_len());
            let mut buf = BytesMut::from(&out[..]);
            let decoded = decode_frame(&mut buf, usize::MAX).unwrap().unwrap();
            prop_assert_eq!(decoded, msg);
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut buf = BytesMut::from(&bytes[..]);
            // Decode until need-more or error; each step consumes or stops.
            loop {
                let before = buf.len();
                match decode_frame(&mut buf, 128) {
                    Ok(Some(_)) => prop_assert!(buf.len() < before),
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
