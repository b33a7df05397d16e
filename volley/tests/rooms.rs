//! Rooms, per-player data, lookup by identity, and calls to many players
//! with every answer collected, over TCP.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::wait_for;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use volley::*;

mod common;

/// A payload that counts how often it is encoded.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Counted(u32);

static ENCODED: AtomicUsize = AtomicUsize::new(0);

impl Serialize for Counted {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ENCODED.fetch_add(1, Ordering::SeqCst);
        serializer.serialize_newtype_struct("Counted", &self.0)
    }
}

const NEWS: ClientEvent<String> = ClientEvent::new("News");
const COUNTED_NEWS: ClientEvent<Counted> = ClientEvent::new("CountedNews");
/// Clients numbered below `n` answer their number at once; the others never
/// answer.
const ASK: ClientFn<u32, u32> = ClientFn::new("Ask");
const EVERYONE_ANSWERS: u32 = u32::MAX;
const NOBODY_ANSWERS: u32 = 0;
const COUNTED_ASK: ClientFn<Counted, u32> = ClientFn::new("CountedAsk");
const WHO_AM_I: ServerFn<(), String> = ServerFn::new("WhoAmI");

fn protocol() -> Protocol {
    Protocol::builder()
        .remote(NEWS)
        .remote(COUNTED_NEWS)
        .remote(ASK)
        .remote(COUNTED_ASK)
        .remote(WHO_AM_I)
        .build()
}

struct TestClient {
    client: Client,
    news: mpsc::UnboundedReceiver<String>,
}

/// Counts handlers of `ASK` dropped before they answered.
#[derive(Clone, Default)]
struct Cancelled(Arc<AtomicUsize>);

struct CountOnDrop(Option<Cancelled>);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        if let Some(cancelled) = self.0.take() {
            cancelled.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn connect(addr: std::net::SocketAddr, number: u32, cancelled: Cancelled, token: &str) -> TestClient {
    let client = Client::new(protocol(), ClientConfig::default().with_token(token));
    let (tx, news) = mpsc::unbounded_channel();
    client.on_event(NEWS, move |_, line| {
        let _ = tx.send(line);
    });
    client.on_request(ASK, move |_, n: u32| {
        let guard = CountOnDrop(Some(cancelled.clone()));
        async move {
            if number >= n {
                std::future::pending::<()>().await;
            }
            std::mem::forget(guard);
            Ok(number)
        }
    });
    client.on_request_sync(COUNTED_ASK, move |_, Counted(n)| Ok(n + number));
    client.on_event(COUNTED_NEWS, |_, _| {});
    client.connect_tcp(addr).await.unwrap();
    TestClient { client, news }
}

/// A server whose authenticator names each client by its token, and `n`
/// clients connected to it (tokens "p0", "p1", …), with their players in the
/// same order.
async fn setup(n: u32) -> (Server, Vec<TestClient>, Vec<Player>, Cancelled) {
    let mut config = ServerConfig::default();
    config.session.max_outgoing_calls = 4;
    let server = Server::new(protocol(), config);
    server.set_authenticator(|hello| async move { Ok(String::from_utf8_lossy(&hello.token).into_owned()) });
    server.on_request_sync(WHO_AM_I, |player: Player, ()| {
        let team = player.data::<Team>().map_or("none".to_string(), |t| t.0.clone());
        Ok(format!("{} of team {team}", player.identity().unwrap_or("?")))
    });
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();
    let cancelled = Cancelled::default();
    let mut clients = Vec::new();
    for i in 0..n {
        clients.push(connect(addr, i, cancelled.clone(), &format!("p{i}")).await);
    }
    let mut players = Vec::new();
    for i in 0..n {
        let identity = format!("p{i}");
        let player = wait_for(|| server.player_by_identity(&identity)).await;
        players.push(player);
    }
    (server, clients, players, cancelled)
}

struct Team(String);

#[tokio::test]
async fn rooms_hold_members_and_empty_when_players_leave() {
    let (server, mut clients, players, _) = setup(3).await;
    let joined = Arc::new(Mutex::new(Vec::new()));
    let left = Arc::new(Mutex::new(Vec::new()));
    let seen = joined.clone();
    server.on_room_joined(move |p, room| seen.lock().unwrap().push((p.id(), room.to_string())));
    let seen = left.clone();
    server.on_room_left(move |p, room| seen.lock().unwrap().push((p.id(), room.to_string())));
    let [a, b, c] = [0, 1, 2].map(|i| players[i].clone());

    assert_eq!(server.join(a.id(), "match:1").await, Ok(true));
    assert_eq!(server.join(b.id(), "match:1").await, Ok(true));
    assert_eq!(server.join(b.id(), "match:1").await, Ok(false), "already in it");
    assert!(b.join("lobby"));
    assert!(c.join("lobby"));
    assert_eq!(
        server.join(PlayerId(999_999), "lobby").await,
        Err(PlayerError::NotConnected),
        "no such player"
    );
    assert_eq!(server.room_size("match:1").await, 2);
    assert_eq!(server.room_members("match:1").await.players, vec![a.id(), b.id()]);
    assert_eq!(server.local_room_members("match:1"), vec![a.clone(), b.clone()]);
    assert_eq!(server.rooms(), vec!["lobby".to_string(), "match:1".to_string()]);
    let mut rooms_of_b = server.rooms_of(b.id());
    rooms_of_b.sort();
    assert_eq!(rooms_of_b, vec!["lobby".to_string(), "match:1".to_string()]);
    assert!(b.in_room("lobby") && !a.in_room("lobby"));
    assert_eq!(server.room_size("nowhere").await, 0);
    assert!(server.room_members("nowhere").await.is_empty());

    // Leaving the last member removes the room.
    assert_eq!(server.leave(a.id(), "match:1").await, Ok(true));
    assert_eq!(server.leave(a.id(), "match:1").await, Ok(false));
    assert!(c.leave("lobby"));
    assert_eq!(server.local_room_members("match:1"), vec![b.clone()]);

    // A player leaving the server leaves every room.
    clients.remove(1).client.disconnect();
    wait_for(|| (server.player_count() == 2).then_some(())).await;
    assert!(server.rooms().is_empty(), "rooms left: {:?}", server.rooms());
    assert!(b.rooms().is_empty());
    assert!(!b.join("lobby"), "a departed player joins nothing");
    assert!(server.rooms().is_empty());

    let joined = joined.lock().unwrap().clone();
    let names = |events: &[(PlayerId, String)]| events.iter().map(|(p, r)| format!("{p}:{r}")).collect::<Vec<_>>();
    assert_eq!(
        names(&joined),
        [
            format!("{}:match:1", a.id()),
            format!("{}:match:1", b.id()),
            format!("{}:lobby", b.id()),
            format!("{}:lobby", c.id())
        ]
    );
    let mut left = names(&left.lock().unwrap());
    left[2..].sort();
    assert_eq!(
        left,
        [
            format!("{}:match:1", a.id()),
            format!("{}:lobby", c.id()),
            format!("{}:lobby", b.id()),
            format!("{}:match:1", b.id()),
        ]
    );
    let _ = &mut clients;
}

#[tokio::test]
async fn firing_at_rooms_encodes_once_and_says_who_was_reached() {
    let (server, mut clients, players, _) = setup(6).await;
    for p in &players[..4] {
        p.join("match:1");
    }
    for p in &players[3..] {
        p.join("match:2");
    }

    // A room except its sender.
    let sent = server
        .to_room("match:1")
        .except(&players[0])
        .fire(NEWS, "one".into())
        .unwrap();
    assert_eq!((sent.sent, sent.skipped.len()), (3, 0));
    // Two rooms: player 3, in both, gets it once.
    let sent = server
        .to_rooms(["match:1", "match:2"])
        .fire(NEWS, "both".into())
        .unwrap();
    assert_eq!(sent.sent, 6);
    // Ids, one of them not connected.
    let sent = server
        .to_ids([players[5].id(), PlayerId(999_999)])
        .fire(NEWS, "ids".into())
        .unwrap();
    assert_eq!(sent.sent, 1);
    assert_eq!(sent.skipped, vec![(PlayerId(999_999), EventError::Disconnected)]);
    // Everyone except a list.
    let sent = server
        .to_all()
        .except(&[players[1].clone(), players[2].clone()])
        .fire(NEWS, "all".into())
        .unwrap();
    assert_eq!(sent.sent, 4);

    let expected: [&[&str]; 6] = [
        &["both", "all"],
        &["one", "both"],
        &["one", "both"],
        &["one", "both", "all"],
        &["both", "all"],
        &["both", "ids", "all"],
    ];
    for (client, expected) in clients.iter_mut().zip(expected) {
        for line in expected {
            assert_eq!(client.news.recv().await.as_deref(), Some(*line));
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    for client in &mut clients {
        assert!(client.news.try_recv().is_err(), "nothing more");
    }
    // Every way of naming players to leave out leaves out the same ones.
    let (one, two) = (&players[1], &players[2]);
    let leave_out: [Box<dyn Fn(Recipients) -> Recipients>; 5] = [
        Box::new(|r| r.except_ids([one.id(), two.id()])),
        Box::new(|r| r.except(vec![one.clone(), two.clone()])),
        Box::new(|r| r.except(&[one, two])),
        Box::new(|r| r.except(&vec![one, two])),
        Box::new(|r| r.except(&[one, two][..])),
    ];
    for except in leave_out {
        assert_eq!(except(server.to_all()).fire(NEWS, "x".into()).unwrap().sent, 4);
    }
    for _ in 0..5 {
        for (index, client) in clients.iter_mut().enumerate() {
            if index != 1 && index != 2 {
                assert_eq!(client.news.recv().await.as_deref(), Some("x"));
            }
        }
    }

    // The payload is encoded once for the whole room.
    let before = ENCODED.load(Ordering::SeqCst);
    let sent = server
        .to_rooms(["match:1", "match:2"])
        .fire(COUNTED_NEWS, Counted(7))
        .unwrap();
    assert_eq!(sent.sent, 6);
    assert_eq!(ENCODED.load(Ordering::SeqCst) - before, 1);
    let before = ENCODED.load(Ordering::SeqCst);
    let answers = server.to_room("match:1").invoke(COUNTED_ASK, Counted(100)).all().await;
    assert_eq!(ENCODED.load(Ordering::SeqCst) - before, 1);
    let answers: BTreeMap<_, _> = answers.into_iter().collect();
    let expected: BTreeMap<_, _> = (0..4).map(|i| (players[i].id(), Ok(100 + i as u32))).collect();
    assert_eq!(answers, expected);
}

#[tokio::test]
async fn data_rides_on_the_player_and_identity_finds_it() {
    let (server, clients, players, _) = setup(2).await;
    assert_eq!(server.player_by_identity("p1"), Some(players[1].clone()));
    assert_eq!(server.player_by_identity("nobody"), None);
    assert!(players[0].set_data(Team("red".into())).is_none());
    assert_eq!(
        clients[0].client.invoke(WHO_AM_I, ()).await,
        Ok("p0 of team red".to_string())
    );
    assert_eq!(
        clients[1].client.invoke(WHO_AM_I, ()).await,
        Ok("p1 of team none".to_string())
    );
    let counter = players[1].data_or_insert_with(|| AtomicUsize::new(5));
    counter.fetch_add(1, Ordering::SeqCst);
    assert_eq!(players[1].data::<AtomicUsize>().unwrap().load(Ordering::SeqCst), 6);
    assert_eq!(
        players[0].set_data(Team("blue".into())).map(|t| t.0.clone()),
        Some("red".into())
    );
    assert_eq!(
        players[0].remove_data::<Team>().map(|t| t.0.clone()),
        Some("blue".into())
    );
    assert!(players[0].data::<Team>().is_none());

    // Readable in the hook that sees the player leave; gone after.
    players[1].set_data(Team("green".into()));
    let (tx, mut rx) = mpsc::unbounded_channel();
    server.on_player_removed(move |p, _| {
        let _ = tx.send(p.data::<Team>().map(|t| t.0.clone()));
    });
    clients[1].client.disconnect();
    assert_eq!(rx.recv().await, Some(Some("green".to_string())));
    wait_for(|| players[1].data::<Team>().is_none().then_some(())).await;
    assert!(players[1].data::<AtomicUsize>().is_none());
    assert_eq!(server.player_by_identity("p1"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_players_in_a_room_all_answer() {
    let (server, _clients, players, _) = setup(1000).await;
    for p in &players {
        assert!(p.join("arena"));
    }
    let start = Instant::now();
    let mut answers = server.to_room("arena").invoke(ASK, EVERYONE_ANSWERS);
    assert_eq!(answers.asked(), 1000);
    let mut seen = HashSet::new();
    while let Some((id, answer)) = answers.next().await {
        let number = players.iter().position(|p| p.id() == id).unwrap() as u32;
        assert_eq!(answer, Ok(number), "player {id}");
        assert!(seen.insert(id), "{id} answered twice");
    }
    assert_eq!(seen.len(), 1000);
    println!("1,000 answers in {:?}", start.elapsed());
}

/// A call to a room goes out to every member from the caller's own poll: no
/// member waits for its connection's task to write it. (Writes count
/// against tokio's budget of 128 operations per poll of a task; over it, a
/// write refuses, and all but 128 members of a large room were left to
/// their connections' tasks, a wake-up each.)
#[tokio::test(flavor = "current_thread")]
async fn a_call_to_a_room_is_written_to_every_member_at_once() {
    use std::io::Read;
    const MEMBERS: usize = 300;
    let server = Server::new(protocol(), ServerConfig::default());
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();
    let hello = common::hello_frame(&protocol());
    let mut peers = Vec::new();
    for _ in 0..MEMBERS {
        let mut peer = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut peer, &hello).await.unwrap();
        peers.push(peer);
    }
    common::eventually("every peer joined", || server.player_count() == MEMBERS).await;
    for player in server.players() {
        player.join("arena");
    }
    // Every connection's task has welcomed its peer, pinged it, and gone
    // quiet; what the peers were sent so far is read and set aside.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut peers: Vec<std::net::TcpStream> = peers.into_iter().map(|peer| peer.into_std().unwrap()).collect();
    let mut buf = vec![0u8; 4096];
    for peer in &mut peers {
        while peer.read(&mut buf).is_ok_and(|n| n > 0) {}
    }
    let answers = server.to_room("arena").invoke(ASK, EVERYONE_ANSWERS);
    assert_eq!(answers.asked(), MEMBERS);
    // No await since: the connections' tasks, on this thread, have not run.
    let mut waiting = 0;
    for peer in &mut peers {
        if !peer.read(&mut buf).is_ok_and(|n| n > 0) {
            waiting += 1;
        }
    }
    assert_eq!(waiting, 0, "{waiting} of {MEMBERS} members were not sent the call yet");
}

/// Waiting for every answer wakes the waiting task at most once every 16
/// answers and when the last is in (it takes those in so far). Wake-ups
/// that come while the task has not looked again run together, so this
/// cannot tell batches from none: `call_set.rs`'s own test counts them.
#[tokio::test(flavor = "current_thread")]
async fn waiting_for_every_answer_wakes_the_caller_once_per_batch() {
    use std::future::Future;
    use std::task::{Context, Poll, Wake, Waker};

    struct CountWakes(AtomicUsize);
    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    const MEMBERS: u32 = 200;
    let server = Server::new(protocol(), ServerConfig::default());
    let mut clients = Vec::new();
    for number in 0..MEMBERS {
        let client = Client::new(protocol(), ClientConfig::default());
        client.on_request_sync(COUNTED_ASK, move |_, Counted(n)| Ok(n + number));
        client.connect(server.connect_memory()).await.unwrap();
        clients.push(client);
    }
    common::eventually("every client joined", || server.player_count() == MEMBERS as usize).await;
    for player in server.players() {
        player.join("arena");
    }
    let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
    let waker = Waker::from(wakes.clone());
    let mut all = std::pin::pin!(server.to_room("arena").invoke(COUNTED_ASK, Counted(1)).all());
    let mut waits = 0;
    let answers = loop {
        let seen = wakes.0.load(Ordering::SeqCst);
        if let Poll::Ready(answers) = all.as_mut().poll(&mut Context::from_waker(&waker)) {
            break answers;
        }
        waits += 1;
        // The connections' tasks run meanwhile, on this thread.
        for _ in 0..100_000 {
            if wakes.0.load(Ordering::SeqCst) != seen {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_ne!(wakes.0.load(Ordering::SeqCst), seen, "never woken");
    };
    assert_eq!(answers.len(), MEMBERS as usize);
    assert!(answers.iter().all(|(_, answer)| answer.is_ok()));
    // 200 answers: woken as 192, 176, ..., 16 and none are left to come.
    let batches = (MEMBERS as usize).div_ceil(16);
    let woken = wakes.0.load(Ordering::SeqCst);
    assert!(
        waits <= batches && woken <= batches,
        "{waits} waits and {woken} wake-ups"
    );
}

#[tokio::test]
async fn every_answer_comes_in_the_order_the_players_were_asked() {
    const MEMBERS: u32 = 6;
    let server = Server::new(protocol(), ServerConfig::default());
    let mut clients = Vec::new();
    for number in 0..MEMBERS {
        let client = Client::new(protocol(), ClientConfig::default());
        // The first asked answers last.
        client.on_request(COUNTED_ASK, move |_, Counted(n)| async move {
            tokio::time::sleep(Duration::from_millis(u64::from(MEMBERS - number) * 30)).await;
            Ok(n + number)
        });
        client.connect(server.connect_memory()).await.unwrap();
        clients.push(client);
        common::eventually("the client joined", || server.player_count() == clients.len()).await;
    }
    let players = server.players();
    let mut numbers: Vec<u32> = Vec::new();
    for player in &players {
        numbers.push(server.invoke(player, COUNTED_ASK, Counted(0)).await.unwrap());
    }
    let answers = server
        .to_players(&players)
        .invoke(COUNTED_ASK, Counted(100))
        .all()
        .await;
    let ids: Vec<PlayerId> = answers.iter().map(|(id, _)| *id).collect();
    let asked: Vec<PlayerId> = players.iter().map(Player::id).collect();
    assert_eq!(ids, asked, "in the order asked, not the order they arrived");
    let values: Vec<u32> = answers.into_iter().map(|(_, answer)| answer.unwrap()).collect();
    assert_eq!(values, numbers.iter().map(|n| n + 100).collect::<Vec<_>>());

    // The first answer taken as it arrives (the last player's), the rest all
    // at once: each player once, the rest still in the order asked.
    let mut answers = server.to_players(&players).invoke(COUNTED_ASK, Counted(200));
    let (first, answer) = answers.next().await.unwrap();
    assert_eq!(
        (first, answer),
        (asked[asked.len() - 1], Ok(numbers[numbers.len() - 1] + 200))
    );
    let rest: Vec<PlayerId> = answers.all().await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(rest, asked[..asked.len() - 1]);
}

#[tokio::test]
async fn the_deadline_gives_partial_results_and_names_the_silent() {
    let (server, _clients, players, cancelled) = setup(4).await;
    let started = Instant::now();
    // Players 0 and 1 answer at once; 2 and 3 never do.
    let mut answers = server
        .to_players(&players)
        .invoke_with_timeout(ASK, 2, Duration::from_millis(300));
    let mut answered = vec![answers.next().await.unwrap(), answers.next().await.unwrap()];
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    answered.sort_by_key(|(id, _)| *id);
    assert_eq!(answered, vec![(players[0].id(), Ok(0)), (players[1].id(), Ok(1))]);
    let mut silent = answers.all().await;
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    silent.sort_by_key(|(id, _)| *id);
    assert_eq!(
        silent,
        vec![
            (players[2].id(), Err(FunctionError::Timeout)),
            (players[3].id(), Err(FunctionError::Timeout))
        ]
    );
    // The silent clients' handlers were stopped.
    wait_for(|| (cancelled.0.load(Ordering::SeqCst) == 2).then_some(())).await;
}

#[tokio::test]
async fn players_leaving_mid_call_answer_disconnected_at_once() {
    let (server, mut clients, players, _) = setup(3).await;
    let mut answers = server
        .to_all()
        .invoke_with_timeout(ASK, NOBODY_ANSWERS, Duration::from_secs(5));
    let started = Instant::now();
    clients.remove(1).client.disconnect();
    let (id, answer) = answers.next().await.unwrap();
    assert_eq!((id, answer), (players[1].id(), Err(FunctionError::Disconnected)));
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(answers.remaining(), 2);
}

#[tokio::test]
async fn dropping_the_answers_cancels_every_call_at_its_client() {
    let (server, _clients, _players, cancelled) = setup(5).await;
    let mut answers = server
        .to_all()
        .invoke_with_timeout(ASK, NOBODY_ANSWERS, Duration::from_secs(30));
    // Let the calls reach the clients, whose handlers start and wait.
    assert!(tokio::time::timeout(Duration::from_millis(200), answers.next())
        .await
        .is_err());
    assert_eq!(cancelled.0.load(Ordering::SeqCst), 0);
    drop(answers);
    wait_for(|| (cancelled.0.load(Ordering::SeqCst) == 5).then_some(())).await;
}

#[tokio::test]
async fn a_player_over_its_call_limit_answers_overloaded() {
    let (server, _clients, players, _) = setup(2).await;
    // The server allows 4 calls in flight per player: fill player 0's.
    let busy: Vec<_> = (0..4)
        .map(|_| server.to_players(&players[0]).invoke(ASK, NOBODY_ANSWERS))
        .collect();
    let answers = server.to_all().invoke(ASK, EVERYONE_ANSWERS).all().await;
    let answers: BTreeMap<_, _> = answers.into_iter().collect();
    assert_eq!(answers[&players[0].id()], Err(FunctionError::Overloaded));
    assert_eq!(answers[&players[1].id()], Ok(1));
    drop(busy);
}

/// Two matchmakers taking two players each from one queue at once never
/// take the same player, and every move runs the room hooks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_members_between_rooms_is_atomic() {
    let (server, _clients, players, _) = setup(8).await;
    let hooks = Arc::new(AtomicUsize::new(0));
    let (left, joined) = (hooks.clone(), hooks.clone());
    server.on_room_left(move |_, room| {
        if room == "queue" {
            left.fetch_add(1, Ordering::SeqCst);
        }
    });
    server.on_room_joined(move |_, room| {
        if room.starts_with("match") {
            joined.fetch_add(1, Ordering::SeqCst);
        }
    });
    for p in &players {
        p.join("queue");
    }
    let matchmakers: Vec<_> = (0..4)
        .map(|n| {
            let server = server.clone();
            tokio::spawn(async move { server.move_members("queue", &format!("match:{n}"), 2) })
        })
        .collect();
    let mut taken = Vec::new();
    for (n, matchmaker) in matchmakers.into_iter().enumerate() {
        let moved = matchmaker.await.unwrap();
        assert_eq!(moved.len(), 2, "match {n} got {moved:?}");
        assert_eq!(server.room_size(&format!("match:{n}")).await, 2);
        taken.extend(moved.iter().map(Player::id));
    }
    taken.sort();
    taken.dedup();
    assert_eq!(taken.len(), 8, "a player was taken twice");
    assert_eq!(server.room_size("queue").await, 0);
    assert_eq!(hooks.load(Ordering::SeqCst), 16);
    // An empty queue, or a move into itself, moves no one.
    assert!(server.move_members("queue", "match:9", 2).is_empty());
    assert!(server.move_members("match:0", "match:0", 2).is_empty());
}

/// The answers name each player asked by id, and still give its handle
/// (identity, data) after it has left.
#[tokio::test]
async fn answers_give_the_player_asked_even_after_it_left() {
    let (server, clients, players, _) = setup(3).await;
    // Nobody answers 0: every call waits.
    let mut answers = server.to_all().except(&players[0]).invoke(ASK, 0);
    clients[1].client.close().await;
    let (id, result) = answers.next().await.unwrap();
    assert_eq!((id, result), (players[1].id(), Err(FunctionError::Disconnected)));
    let gone = answers.player(id).expect("asked");
    assert_eq!(gone.identity(), Some("p1"));
    assert!(answers.player(players[0].id()).is_none(), "left out by except");
    assert!(answers.player(PlayerId(999_999)).is_none());
}
