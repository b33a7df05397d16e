//! The adapter boundary, from an adapter author's side: two servers in one
//! process, each with an adapter that hands the other's part of every group
//! operation to the other server's `Relay`. The game code (`to_room`,
//! `invoke`, `join`, `room_members`, `kick`) is the same as on one server;
//! every operation reaches the players of both.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::wait_for;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use volley::adapter::{Adapter, Census, Relay, Relayed, Remote, RemoteAnswers, Target};
use volley::middleware::BoxFuture;
use volley::*;

mod common;

const NEWS: ClientEvent<String> = ClientEvent::new("News");
/// Answered with the client's number, unless the number is 99 (never).
const ASK: ClientFn<u32, u32> = ClientFn::new("Ask");
const WHO_AM_I: ServerFn<(), String> = ServerFn::new("WhoAmI");

fn protocol() -> Protocol {
    Protocol::builder().remote(NEWS).remote(ASK).remote(WHO_AM_I).build()
}

/// One side of an in-process pair: server `side` (0 or 1) numbers its
/// players from `side << 32` and reaches the other through its relay.
struct Mirror {
    side: u64,
    relays: Arc<[OnceLock<Relay>; 2]>,
}

impl Mirror {
    fn other(&self) -> &Relay {
        self.relays[1 - self.side as usize].get().expect("both servers built")
    }
}

impl Adapter for Mirror {
    fn attach(&self, relay: Relay) {
        self.relays[self.side as usize].set(relay).unwrap();
    }
    fn player_id_base(&self) -> u64 {
        self.side << 32
    }
    fn is_local(&self, id: PlayerId) -> bool {
        id.0 >> 32 == self.side
    }
    fn fire(&self, target: &Target, remote: &'static str, payload: &[u8]) -> Result<Relayed, EventError> {
        let sent = self.other().fire(target, remote, payload)?;
        let mut relayed = Relayed::to_nodes(1);
        relayed.skipped = sent.skipped;
        Ok(relayed)
    }
    fn invoke(&self, target: &Target, remote: &'static str, payload: &[u8], timeout: Duration) -> RemoteAnswers {
        let answers = self.other().invoke(target, remote, payload, timeout);
        Box::pin(answers.map(|(id, result)| Remote::Answer(id, result)))
    }
    fn members(&self, target: &Target) -> BoxFuture<Census> {
        Box::pin(std::future::ready(Census::of(self.other().members(target))))
    }
    fn join(&self, id: PlayerId, room: &str) -> BoxFuture<Result<bool, PlayerError>> {
        Box::pin(std::future::ready(self.other().join(id, room)))
    }
    fn leave(&self, id: PlayerId, room: &str) -> BoxFuture<Result<bool, PlayerError>> {
        Box::pin(std::future::ready(self.other().leave(id, room)))
    }
    fn kick(&self, id: PlayerId, reason: &str) -> BoxFuture<Result<(), PlayerError>> {
        Box::pin(std::future::ready(self.other().kick(id, reason)))
    }
    fn find_identity(&self, identity: &str) -> BoxFuture<Result<Option<PlayerId>, PlayerError>> {
        Box::pin(std::future::ready(Ok(self.other().find_identity(identity))))
    }
}

struct TestClient {
    client: Client,
    news: mpsc::UnboundedReceiver<String>,
}

/// Two mirrored servers with `per_server` clients each, named "s<side>p<i>";
/// client number `i` answers `Ask` with `side * 10 + i`.
async fn pair(per_server: u32) -> ([Server; 2], Vec<TestClient>, Vec<PlayerId>) {
    let relays: Arc<[OnceLock<Relay>; 2]> = Arc::new([OnceLock::new(), OnceLock::new()]);
    let servers = [0, 1].map(|side| {
        let adapter = Mirror {
            side,
            relays: relays.clone(),
        };
        let server = Server::with_adapter(protocol(), ServerConfig::default(), adapter);
        server.set_authenticator(|hello| async move { Ok(String::from_utf8_lossy(&hello.token).into_owned()) });
        server.on_request_sync(WHO_AM_I, |player: Player, ()| {
            Ok(player.identity().unwrap_or("?").to_string())
        });
        server
    });
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    for (side, server) in servers.iter().enumerate() {
        for i in 0..per_server {
            let number = side as u32 * 10 + i;
            let identity = format!("s{side}p{i}");
            let client = Client::new(protocol(), ClientConfig::default().with_token(identity.clone()));
            let (tx, news) = mpsc::unbounded_channel();
            client.on_event(NEWS, move |_, line| {
                let _ = tx.send(line);
            });
            client.on_request(ASK, move |_, _: u32| async move {
                if number % 10 == 9 {
                    std::future::pending::<()>().await;
                }
                Ok(number)
            });
            client.connect(server.connect_memory()).await.unwrap();
            let player = wait_for(|| server.player_by_identity(&identity)).await;
            ids.push(player.id());
            clients.push(TestClient { client, news });
        }
    }
    (servers, clients, ids)
}

async fn heard(client: &mut TestClient) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(5), client.news.recv())
        .await
        .ok()
        .flatten()
}

async fn nothing_heard(client: &mut TestClient) -> bool {
    tokio::time::timeout(Duration::from_millis(100), client.news.recv())
        .await
        .is_err()
}

#[tokio::test]
async fn rooms_and_groups_span_both_servers_with_the_same_code() {
    let ([a, b], mut clients, ids) = pair(2).await;
    // Ids are the adapter's to number: each server its own range.
    assert!(ids[..2].iter().all(|id| id.0 >> 32 == 0));
    assert!(ids[2..].iter().all(|id| id.0 >> 32 == 1));

    // Joining by id from either server, wherever the player is.
    assert_eq!(a.join(ids[0], "match").await, Ok(true));
    assert_eq!(a.join(ids[2], "match").await, Ok(true), "a player of the other server");
    assert_eq!(a.join(ids[2], "match").await, Ok(false), "already a member");
    assert_eq!(b.join(ids[3], "lobby").await, Ok(true));
    assert_eq!(
        a.join(PlayerId((1 << 32) + 999), "match").await,
        Err(PlayerError::NotConnected)
    );
    assert_eq!(a.room_members("match").await.players, vec![ids[0], ids[2]]);
    assert_eq!(b.room_size("match").await, 2);
    assert_eq!(b.to_all().members().await.len(), 4);

    // A room's event reaches its members on both servers, and only them.
    let sent = b.to_room("match").except_id(ids[0]).fire(NEWS, "gg".into()).unwrap();
    assert_eq!((sent.sent, sent.other_nodes), (1, 1), "{sent:?}");
    assert_eq!(heard(&mut clients[2]).await.as_deref(), Some("gg"));
    assert!(nothing_heard(&mut clients[0]).await, "left out by except");
    assert!(nothing_heard(&mut clients[1]).await && nothing_heard(&mut clients[3]).await);

    // To ids: the other server's player, and one gone, reported skipped.
    let gone = PlayerId((1 << 32) + 999);
    let sent = a.to_ids([ids[3], gone]).fire(NEWS, "psst".into()).unwrap();
    assert_eq!(sent.skipped, vec![(gone, EventError::Disconnected)]);
    assert_eq!(heard(&mut clients[3]).await.as_deref(), Some("psst"));

    // Leaving by id from the other server.
    assert_eq!(b.leave(ids[0], "match").await, Ok(true));
    assert_eq!(b.leave(ids[0], "match").await, Ok(false));
    assert_eq!(a.room_members("match").await.players, vec![ids[2]]);

    // Lookup by identity, on either server.
    assert_eq!(a.find_identity("s1p1").await, Ok(Some(ids[3])));
    assert_eq!(a.find_identity("nobody").await, Ok(None));
}

#[tokio::test]
async fn one_call_to_a_group_gets_every_answer_from_both_servers() {
    let ([a, b], _clients, ids) = pair(2).await;
    let answers: BTreeMap<_, _> = a.to_all().invoke(ASK, 0).all().await.into_iter().collect();
    let expected: BTreeMap<_, _> = ids.iter().copied().zip([Ok(0), Ok(1), Ok(10), Ok(11)]).collect();
    assert_eq!(answers, expected);

    // One player of the other server, by id: the single-player form.
    let answers = b.to_ids([ids[1]]).invoke(ASK, 0).all().await;
    assert_eq!(answers, vec![(ids[1], Ok(1))]);
    let gone = PlayerId(999);
    let answers = b.to_ids([gone]).invoke(ASK, 0).all().await;
    assert_eq!(answers, vec![(gone, Err(FunctionError::Disconnected))]);
}

#[tokio::test]
async fn the_deadline_holds_across_servers() {
    // Client 9 of each side never answers: pair(10) has "s0p9" and "s1p9".
    let ([a, _b], _clients, ids) = pair(10).await;
    let started = Instant::now();
    let answers: BTreeMap<_, _> = a
        .to_all()
        .invoke_with_timeout(ASK, 0, Duration::from_millis(300))
        .all()
        .await
        .into_iter()
        .collect();
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(answers.len(), 20, "every player of both servers once");
    assert_eq!(answers[&ids[9]], Err(FunctionError::Timeout));
    assert_eq!(answers[&ids[19]], Err(FunctionError::Timeout));
    assert_eq!(answers[&ids[12]], Ok(12));
}

#[tokio::test]
async fn kicking_by_id_reaches_the_other_server() {
    let ([a, b], clients, ids) = pair(1).await;
    assert_eq!(a.kick(ids[1], "cheating").await, Ok(()));
    let reason = tokio::time::timeout(Duration::from_secs(5), clients[1].client.closed())
        .await
        .expect("kicked");
    assert!(format!("{reason:?}").contains("cheating"), "{reason:?}");
    wait_for(|| (b.player_count() == 0).then_some(())).await;
    assert_eq!(a.kick(ids[1], "again").await, Err(PlayerError::NotConnected));
}

#[tokio::test]
async fn a_relay_takes_only_client_bound_remotes_of_its_protocol() {
    let relays: Arc<[OnceLock<Relay>; 2]> = Arc::new([OnceLock::new(), OnceLock::new()]);
    let server = Server::with_adapter(
        protocol(),
        ServerConfig::default(),
        Mirror {
            side: 0,
            relays: relays.clone(),
        },
    );
    let relay = relays[0].get().unwrap();
    let everyone = Target::new(volley::adapter::Group::All, Vec::new());
    for wrong in ["Nope", "Ask", "WhoAmI"] {
        assert!(
            matches!(relay.fire(&everyone, wrong, &[0]), Err(EventError::Encode(_))),
            "{wrong}"
        );
    }
    assert_eq!(relay.protocol_hash(), server.protocol().hash());
    // Once the server is gone, the relay finds nobody.
    drop(server);
    assert!(!relay.is_alive());
    assert_eq!(relay.fire(&everyone, "News", &[0]), Err(EventError::Disconnected));
    assert!(relay.members(&everyone).is_empty());
}
