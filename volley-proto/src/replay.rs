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

use std::collections::VecDeque;

use bytes::{Buf, BytesMut};

use crate::codec::ResumeToken;

/// Acknowledge after this many of the peer's numbered frames (and at every
/// keep-alive ping and pong), so the peer forgets them soon.
pub(crate) const ACK_EVERY: u64 = 32;

#[derive(Debug)]
pub(crate) struct Replay {
    /// Numbered frames sent and not acknowledged, encoded back to back.
    frames: BytesMut,
    /// Each of those frames' length, oldest first.
    lens: VecDeque<usize>,
    /// Numbered frames sent since the welcome.
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
}

impl Replay {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            frames: BytesMut::new(),
            lens: VecDeque::new(),
            sent: 0,
            received: 0,
            acknowledged: 0,
            limit,
            broken: None,
            token: None,
        }
    }

    /// Keeps a numbered frame until the peer acknowledges it. Past the limit
    /// the whole buffer is let go: resuming is no longer possible.
    pub(crate) fn record(&mut self, frame: &[u8]) {
        self.sent += 1;
        if self.broken.is_some() {
            return;
        }
        if self.frames.len() + frame.len() > self.limit {
            self.broken = Some("the resume buffer filled up (the peer acknowledged too little)");
            self.frames = BytesMut::new();
            self.lens = VecDeque::new();
            return;
        }
        self.frames.extend_from_slice(frame);
        self.lens.push_back(frame.len());
    }

    /// The number of the first frame still kept, less one: what the peer
    /// has acknowledged so far.
    fn base(&self) -> u64 {
        self.sent - self.lens.len() as u64
    }

    /// The peer processed our first `received` frames: forget them. More
    /// than were sent is the peer's error.
    pub(crate) fn acknowledged_by_peer(&mut self, received: u64) -> Result<(), String> {
        if received > self.sent {
            return Err(format!("acknowledged {received} frames of {} sent", self.sent));
        }
        if self.broken.is_some() {
            return Ok(());
        }
        for _ in self.base()..received {
            let len = self.lens.pop_front().expect("a frame per number");
            self.frames.advance(len);
        }
        Ok(())
    }

    /// After the peer processed our first `received`: forgets those and
    /// appends the rest to `out`, oldest first.
    pub(crate) fn replay_after(&mut self, received: u64, out: &mut Vec<u8>) -> Result<(), String> {
        if let Some(why) = self.broken {
            return Err(why.to_string());
        }
        if received < self.base() {
            return Err(format!(
                "the peer has {received} frames, but {} were acknowledged",
                self.base()
            ));
        }
        self.acknowledged_by_peer(received)?;
        out.extend_from_slice(&self.frames);
        Ok(())
    }

    /// Whether the peer should hear how much we processed.
    pub(crate) fn ack_due(&self) -> bool {
        self.received - self.acknowledged >= ACK_EVERY
    }

    /// Bytes kept for the peer.
    pub(crate) fn kept(&self) -> usize {
        self.frames.len()
    }

    /// A quiet connection with everything acknowledged gives the buffer's
    /// memory back: an idle player keeps none.
    pub(crate) fn release_if_empty(&mut self) {
        if self.lens.is_empty() {
            self.frames = BytesMut::new();
            self.lens = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_forgotten_as_acknowledged_and_replayed_after_the_peer_count() {
        let mut replay = Replay::new(1024);
        for frame in [&b"aa"[..], b"bbb", b"c", b"dddd"] {
            replay.record(frame);
        }
        replay.acknowledged_by_peer(1).unwrap();
        assert_eq!(replay.kept(), 8);
        let mut out = Vec::new();
        replay.replay_after(2, &mut out).unwrap();
        assert_eq!(out, b"cdddd");
        assert!(
            replay.replay_after(1, &mut Vec::new()).is_err(),
            "behind what was acknowledged"
        );
        assert!(replay.acknowledged_by_peer(5).is_err(), "more than was sent");
    }

    #[test]
    fn past_its_limit_it_keeps_nothing_and_refuses_to_replay() {
        let mut replay = Replay::new(4);
        replay.record(b"abc");
        replay.record(b"de");
        assert_eq!((replay.kept(), replay.sent), (0, 2));
        assert!(replay.replay_after(0, &mut Vec::new()).is_err());
    }
}
