//! What a resumable session keeps so that nothing is lost or done twice
//! across a lost connection: the numbered frames it sent that the peer has
//! not acknowledged, and how many of the peer's it has processed.
//!
//! Numbered frames are the ones that carry the application's work (requests,
//! responses, events on the stream, cancels), counted from the welcome on,
//! each side its own. An ack says "I processed your first n"; a resume says
//! the same once more, and each side sends again exactly what comes after.
//! Frames are never renumbered, so a frame is delivered once: the receiver
//! counts what it processed, and the sender replays only beyond that count.

use bytes::{Buf, BytesMut};

use crate::codec::ResumeToken;
use crate::varint::{self, Varint};

/// Acknowledge once this many of the peer's numbered frames are not, with
/// the next bytes this side sends anyway (an ack of its own costs the peer a
/// wake-up and a read), and at every keep-alive ping and pong.
pub(crate) const ACK_EVERY: u64 = 32;

/// Acknowledge at once, sending or not, past this many: a peer that only
/// sends keeps little.
pub(crate) const ACK_AT_MOST: u64 = 256;

/// Whether a frame whose body starts with `tag` is numbered: a request,
/// response, event or cancel (PROTOCOL.md's tags 3 to 7).
fn numbered_tag(tag: u8) -> bool {
    (3..=7).contains(&tag)
}

#[derive(Debug)]
pub(crate) struct Replay {
    /// What was written since the oldest numbered frame the peer has not
    /// acknowledged, as written: whole frames back to back, numbered or not
    /// (copied once per write rather than once per frame; replays skip the
    /// others by their tag).
    frames: BytesMut,
    /// Numbered frames the peer acknowledged (forgotten).
    base: u64,
    /// Numbered frames queued since the welcome (written or not).
    pub(crate) sent: u64,
    /// The peer's numbered frames processed since the welcome.
    pub(crate) received: u64,
    /// The `received` last told the peer.
    pub(crate) acknowledged: u64,
    /// Most bytes kept; past it the player can no longer be resumed.
    limit: usize,
    /// Why this side can no longer resume, if it cannot.
    pub(crate) broken: Option<&'static str>,
    /// The token that resumes the player: the server's current one, or the
    /// last the client was given.
    pub(crate) token: Option<ResumeToken>,
    /// Server: the frames received when the client last resumed (the
    /// session's count). Any frame after it proves the client has the token
    /// that resume gave it: the answer came before, on the same stream.
    pub(crate) resumed_at_frame: Option<u64>,
}

impl Replay {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            frames: BytesMut::new(),
            base: 0,
            sent: 0,
            received: 0,
            acknowledged: 0,
            limit,
            broken: None,
            token: None,
            resumed_at_frame: None,
        }
    }

    /// Keeps whole frames as they go to the transport (or, while away, as
    /// they are queued), until the peer acknowledges them. Past the limit
    /// the whole buffer is let go: resuming is no longer possible.
    pub(crate) fn record(&mut self, frames: &[u8]) {
        // Every numbered frame acknowledged: these are pings and acks.
        if self.broken.is_some() || (self.base == self.sent && self.frames.is_empty()) {
            return;
        }
        if self.frames.len() + frames.len() > self.limit {
            self.broken = Some("the resume buffer filled up (the peer acknowledged too little)");
            self.frames = BytesMut::new();
            return;
        }
        self.frames.extend_from_slice(frames);
    }

    /// The length (prefix included) of the frame starting at `at` and
    /// whether it is numbered; `None` past the last whole frame.
    fn frame_at(&self, at: usize) -> Option<(usize, bool)> {
        let rest = self.frames.get(at..)?;
        // Most frames kept are short: a one-byte length, read inline.
        let (len, prefix) = match rest.first() {
            Some(&byte) if byte < 0x80 => (usize::from(byte), 1),
            _ => match varint::get(rest) {
                Varint::Done(len, prefix) => (usize::try_from(len).ok()?, prefix),
                _ => return None,
            },
        };
        let tag = *rest.get(prefix)?;
        let end = prefix.checked_add(len)?;
        (end <= rest.len()).then_some((end, numbered_tag(tag)))
    }

    /// The peer processed our first `received` numbered frames: forget
    /// them. More than were sent is the peer's error.
    pub(crate) fn acknowledged_by_peer(&mut self, received: u64) -> Result<(), String> {
        if received > self.sent {
            return Err(format!("acknowledged {received} frames of {} sent", self.sent));
        }
        if self.broken.is_some() {
            return Ok(());
        }
        // Up to the first numbered frame the peer has not: the others
        // (pings, acks) are never replayed. Found by walking the lengths,
        // then let go of at once.
        let mut at = 0;
        while let Some((len, numbered)) = self.frame_at(at) {
            if numbered && self.base >= received {
                break;
            }
            at += len;
            self.base += u64::from(numbered);
        }
        self.frames.advance(at);
        Ok(())
    }

    /// After the peer processed our first `received`: forgets those and moves
    /// the numbered frames after them to `out`, oldest first. They are kept
    /// again as they are written anew.
    pub(crate) fn replay_after(&mut self, received: u64, out: &mut Vec<u8>) -> Result<(), String> {
        self.can_replay_after(received)?;
        self.acknowledged_by_peer(received)?;
        let mut at = 0;
        while let Some((len, numbered)) = self.frame_at(at) {
            if numbered {
                out.extend_from_slice(&self.frames[at..at + len]);
            }
            at += len;
        }
        self.frames.advance(at);
        Ok(())
    }

    /// Whether [`replay_after`](Self::replay_after) would work, changing
    /// nothing: it fails if the buffer overflowed, or the peer's count is
    /// behind what it acknowledged or ahead of what was sent.
    pub(crate) fn can_replay_after(&self, received: u64) -> Result<(), String> {
        if let Some(why) = self.broken {
            return Err(why.to_string());
        }
        if received < self.base {
            return Err(format!(
                "the peer has {received} frames, but {} were acknowledged",
                self.base
            ));
        }
        if received > self.sent {
            return Err(format!("the peer has {received} frames of {} sent", self.sent));
        }
        Ok(())
    }

    /// Whether the peer should hear how much we processed, with the next
    /// bytes we send.
    pub(crate) fn ack_due(&self) -> bool {
        self.received - self.acknowledged >= ACK_EVERY
    }

    /// Whether the peer should hear it now, even alone.
    pub(crate) fn ack_overdue(&self) -> bool {
        self.received - self.acknowledged >= ACK_AT_MOST
    }

    /// Bytes kept for the peer.
    pub(crate) fn kept(&self) -> usize {
        self.frames.len()
    }

    /// A quiet connection with everything acknowledged gives the buffer's
    /// memory back: an idle player keeps none.
    pub(crate) fn release_if_empty(&mut self) {
        if self.frames.is_empty() {
            self.frames = BytesMut::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Message;

    fn event(x: u8) -> Vec<u8> {
        let mut out = Vec::new();
        Message::Event {
            remote: 0,
            payload: &[x][..],
        }
        .encode(&mut out);
        out
    }

    fn ping() -> Vec<u8> {
        let mut out = Vec::new();
        Message::<&[u8]>::Ping { seq: 9 }.encode(&mut out);
        out
    }

    #[test]
    fn frames_are_forgotten_as_acknowledged_and_replayed_after_the_peer_count() {
        let mut replay = Replay::new(1024);
        let written = [event(1), ping(), event(2), event(3), ping(), event(4)].concat();
        replay.sent = 4;
        replay.record(&written);
        replay.acknowledged_by_peer(1).unwrap();
        let mut out = Vec::new();
        replay.replay_after(2, &mut out).unwrap();
        assert_eq!(out, [event(3), event(4)].concat(), "the pings are not replayed");
        assert_eq!(replay.kept(), 0, "moved out, to be kept again as written");
        assert!(
            replay.replay_after(1, &mut Vec::new()).is_err(),
            "behind what was acknowledged"
        );
        assert!(replay.acknowledged_by_peer(5).is_err(), "more than was sent");
    }

    /// What a resumable player costs beyond one that is not, when idle: this
    /// struct on the heap (its buffer is given back once acknowledged).
    #[test]
    fn an_idle_replay_is_small() {
        let size = std::mem::size_of::<Replay>();
        println!("Replay: {size} bytes");
        assert!(size <= 128, "{size}");
        let mut replay = Replay::new(1024);
        replay.sent = 1;
        replay.record(&event(1));
        replay.acknowledged_by_peer(1).unwrap();
        replay.release_if_empty();
        assert_eq!(replay.frames.capacity(), 0);
    }

    #[test]
    fn past_its_limit_it_keeps_nothing_and_refuses_to_replay() {
        let mut replay = Replay::new(8);
        replay.sent = 3;
        replay.record(&event(1));
        replay.record(&[event(2), event(3)].concat());
        assert_eq!(replay.kept(), 0);
        assert!(replay.replay_after(0, &mut Vec::new()).is_err());
    }
}
