//! The messages nodes send each other through the broker, and their
//! encoding: one version byte, then the message in postcard. A node drops a
//! message of another version with a log line (a cluster is upgraded node by
//! node only within one version). Event and call payloads travel as the
//! sending node's volley encoded them and are handed to the players' own
//! connections as they are: no node decodes and encodes them again.

use bytes::Bytes;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use volley::FunctionError;

/// The version of these messages.
pub(crate) const VERSION: u8 = 2;

/// Who a message is for, on the node that receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum To {
    Ids(Vec<u64>),
    Rooms(Vec<String>),
    All,
}

/// A message to a node.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Message {
    /// A node is alive (or, with `leaving`, about to stop).
    Heartbeat {
        node: u32,
        protocol: u64,
        players: u32,
        leaving: bool,
    },
    /// An event for the receiving node's players among `to`, but `except`.
    Fire {
        origin: u32,
        to: To,
        except: Vec<u64>,
        remote: String,
        payload: Vec<u8>,
    },
    /// A call to one of the receiving node's players, the fast path of a
    /// call to one player by id: one request, one reply (`Answer`).
    Invoke {
        origin: u32,
        call: u64,
        player: u64,
        remote: String,
        payload: Vec<u8>,
        timeout_ms: u64,
    },
    /// A call to the receiving node's players among `to`, but `except`;
    /// answered `Manifest`, then an `Answered` for each player, then `Done`.
    InvokeGroup {
        origin: u32,
        call: u64,
        to: To,
        except: Vec<u64>,
        remote: String,
        payload: Vec<u8>,
        timeout_ms: u64,
    },
    /// The caller gave up on call `call`.
    Cancel { origin: u32, call: u64 },
    /// Put a local player in a room (answered `Changed`).
    Join { player: u64, room: String },
    /// Take a local player out of a room (answered `Changed`).
    Leave { player: u64, room: String },
    /// Disconnect a local player (answered `Changed`).
    Kick { player: u64, reason: String },
    /// Which local players are among `to`, but `except` (answered `Players`).
    Members { to: To, except: Vec<u64> },
    /// The local player with this identity (answered `Found`).
    Identity { identity: String },
    /// Whether anyone holds this node number (answered `Pong`).
    Ping,
}

/// An answer from a node.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The one answer to `Invoke`.
    Answer(WireResult),
    /// The players a group call asked on `node`.
    Manifest {
        node: u32,
        players: Vec<u64>,
    },
    Answered {
        player: u64,
        result: WireResult,
    },
    /// Every player of the manifest has answered.
    Done {
        node: u32,
    },
    /// Whether a join, leave or kick changed something; `None`: the player
    /// is not connected.
    Changed(Option<bool>),
    /// A local player found by identity.
    Found(Option<u64>),
    /// The players asked for (the asker knows which node answered).
    Players(Vec<u64>),
    Pong,
}

/// A call's outcome: the encoded answer, or the error a local caller would
/// have seen.
impl Reply {
    /// This answer as a `TooLarge` error, for an answer the broker would
    /// not take; `None` for replies that are not answers.
    pub(crate) fn too_large(&self) -> Option<Reply> {
        let error = || WireResult::from(Err::<Bytes, _>(FunctionError::TooLarge));
        match self {
            Reply::Answer(_) => Some(Reply::Answer(error())),
            Reply::Answered { player, .. } => Some(Reply::Answered {
                player: *player,
                result: error(),
            }),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum WireResult {
    Ok(Vec<u8>),
    Err { code: u8, message: String },
}

impl From<Result<Bytes, FunctionError>> for WireResult {
    fn from(result: Result<Bytes, FunctionError>) -> Self {
        match result {
            Ok(bytes) => Self::Ok(bytes.to_vec()),
            Err(error) => {
                let (code, message) = match error {
                    FunctionError::Timeout => (1, String::new()),
                    FunctionError::Cancelled => (2, String::new()),
                    FunctionError::BadRequest => (3, String::new()),
                    FunctionError::InvalidResult => (4, String::new()),
                    FunctionError::Rejected(message) => (6, message),
                    FunctionError::Disconnected => (7, String::new()),
                    FunctionError::Overloaded => (8, String::new()),
                    FunctionError::RateLimited => (9, String::new()),
                    FunctionError::TooLarge => (10, String::new()),
                    FunctionError::Unreachable => (11, String::new()),
                    // Unprocessed, and kinds a later volley adds.
                    _ => (5, String::new()),
                };
                Self::Err { code, message }
            }
        }
    }
}

impl WireResult {
    pub(crate) fn into_result(self) -> Result<Vec<u8>, FunctionError> {
        match self {
            Self::Ok(bytes) => Ok(bytes),
            Self::Err { code, message } => Err(match code {
                1 => FunctionError::Timeout,
                2 => FunctionError::Cancelled,
                3 => FunctionError::BadRequest,
                4 => FunctionError::InvalidResult,
                6 => FunctionError::Rejected(message),
                7 => FunctionError::Disconnected,
                8 => FunctionError::Overloaded,
                9 => FunctionError::RateLimited,
                10 => FunctionError::TooLarge,
                11 => FunctionError::Unreachable,
                _ => FunctionError::Unprocessed,
            }),
        }
    }
}

/// The version byte, then `value` in postcard.
pub(crate) fn encode<T: Serialize>(value: &T) -> Bytes {
    let mut bytes = vec![VERSION];
    // Our own types, whose every field postcard can encode.
    postcard::to_io(value, &mut bytes).expect("cluster messages always encode");
    Bytes::from(bytes)
}

/// Reads what [`encode`] wrote; a message of another version, or one that
/// does not decode, is refused with why.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&VERSION, body)) => postcard::from_bytes(body).map_err(|e| format!("does not decode: {e}")),
        Some((version, _)) => Err(format!("version {version}, this node speaks {VERSION}")),
        None => Err("empty message".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_their_version_and_errors_survive_the_trip() {
        let bytes = encode(&Message::Cancel { origin: 7, call: 9 });
        assert_eq!(bytes[0], VERSION);
        assert!(matches!(decode(&bytes), Ok(Message::Cancel { origin: 7, call: 9 })));
        let mut other = bytes.to_vec();
        other[0] = VERSION + 1;
        assert!(decode::<Message>(&other).unwrap_err().contains("version"));
        for error in [
            FunctionError::Timeout,
            FunctionError::Rejected("no".into()),
            FunctionError::Disconnected,
            FunctionError::Overloaded,
            FunctionError::Unprocessed,
        ] {
            let wire = WireResult::from(Err(error.clone()));
            assert_eq!(decode::<WireResult>(&encode(&wire)).unwrap().into_result(), Err(error));
        }
    }
}
