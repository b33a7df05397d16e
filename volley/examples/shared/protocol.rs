//! The demo's remotes and their payload types: what the server, the Rust
//! client and the TypeScript module (`volley-net-ts`'s `demo_protocol`
//! example) are all built from.
#![allow(unreachable_pub, dead_code)]

use std::time::Duration;

use serde::{Deserialize, Serialize};
use volley::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetData {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerData {
    pub name: String,
    pub level: u32,
    pub gold: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Purchase {
    pub item: String,
    pub price: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prompt {
    pub question: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confirm {
    pub confirmed: bool,
}

/// Where a player is; sent many times a second, each superseding the last.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub x: f32,
    pub y: f32,
}

fn name_is_reasonable(req: &GetData) -> Result<(), String> {
    if req.name.is_empty() || req.name.len() > 32 {
        return Err(format!("name of {} bytes", req.name.len()));
    }
    Ok(())
}

/// Every player starts with this much gold.
pub const STARTING_GOLD: u32 = 25;

// client → server
pub const GET_PLAYER_DATA: ServerFn<GetData, PlayerData> =
    ServerFn::new("GetPlayerData").with_request_check(name_is_reasonable);
pub const BUY: ServerFn<Purchase, u32> = ServerFn::new("Buy");
/// The server takes 2 s to answer; the remote gives up after 500 ms.
pub const SLOW_SEARCH: ServerFn<String, String> = ServerFn::new("SlowSearch").with_timeout(Duration::from_millis(500));
/// Makes the server ask the caller a question back (a server → client call).
pub const ASK_ME: ServerFn<(), bool> = ServerFn::new("AskMe");
pub const CHAT: ServerEvent<String> = ServerEvent::new("Chat");
/// Unreliable: a datagram over QUIC and WebTransport, and dropped rather
/// than queued when the connection is backed up.
pub const MOVE: ServerEvent<Position> = ServerEvent::new("Move").unreliable();

// server → client
pub const PROMPT_ACTION: ClientFn<Prompt, Confirm> = ClientFn::new("PromptAction");
pub const ANNOUNCE: ClientEvent<String> = ClientEvent::new("Announce");

pub fn protocol() -> Protocol {
    Protocol::builder()
        .remote(GET_PLAYER_DATA)
        .remote(BUY)
        .remote(SLOW_SEARCH)
        .remote(ASK_ME)
        .remote(CHAT)
        .remote(MOVE)
        .remote(PROMPT_ACTION)
        .remote(ANNOUNCE)
        .build()
}
