//! A server `App` and client `App`s in one test, over the in-memory
//! transport and over TCP, advanced with `update()` until a condition holds.

use std::time::{Duration, Instant};

use bevy_app::{App, Update};
use bevy_ecs::prelude::*;
use serde::{Deserialize, Serialize};
use volley::*;
use volley_bevy::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Input {
    dx: i32,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct State {
    x: i32,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct NameRequest(String);
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct NameReply(String);
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Question(String);
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Answer(bool);
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Slow;
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SlowReply;

const INPUT: ServerEvent<Input> = ServerEvent::new("Input");
const STATE: ClientEvent<State> = ClientEvent::new("State");
const NAME: ServerFn<NameRequest, NameReply> = ServerFn::new("Name");
const CONFIRM: ClientFn<Question, Answer> = ClientFn::new("Confirm").with_timeout(Duration::from_secs(5));
/// No client system answers it.
const SLOW: ClientFn<Slow, SlowReply> = ClientFn::new("Slow").with_timeout(Duration::from_millis(300));
/// Declared, but no server system is registered for it.
const UNANSWERED: ServerFn<(), ()> = ServerFn::new("Unanswered");

fn protocol() -> Protocol {
    Protocol::builder()
        .remote(INPUT)
        .remote(STATE)
        .remote(NAME)
        .remote(CONFIRM)
        .remote(SLOW)
        .remote(UNANSWERED)
        .build()
}

/// What the apps' systems saw.
#[derive(Resource, Default, Debug)]
struct Seen {
    inputs: Vec<(PlayerId, Option<Entity>, i32)>,
    states: Vec<i32>,
    names: Vec<Result<NameReply, FunctionError>>,
    answers: Vec<Result<Answer, FunctionError>>,
    slow: Vec<Result<SlowReply, FunctionError>>,
    unanswered: Vec<Result<(), FunctionError>>,
    questions: Vec<RequestKey>,
    joined: Vec<PlayerId>,
    left: Vec<PlayerId>,
    disconnected: usize,
    reconnected: usize,
}

fn server_app(runtime: &VolleyRuntime, tcp: Option<&str>) -> App {
    let mut plugin = VolleyServerPlugin::new(protocol(), ServerConfig::default());
    if let Some(addr) = tcp {
        plugin = plugin.listen_tcp(addr);
    }
    server_app_with(runtime, plugin)
}

fn server_app_with(runtime: &VolleyRuntime, plugin: VolleyServerPlugin) -> App {
    let mut app = App::new();
    app.insert_resource(runtime.clone()).init_resource::<Seen>();
    app.add_plugins(plugin)
        .receive_from_clients(INPUT)
        .send_to_clients(STATE)
        .answer_clients(NAME)
        .call_clients(CONFIRM)
        .call_clients(SLOW)
        .add_systems(
            Update,
            (
                server_reads,
                server_answers_names,
                server_sees_calls,
                server_sees_players,
            ),
        );
    app
}

fn server_reads(
    mut inputs: MessageReader<FromClient<Input>>,
    mut seen: ResMut<Seen>,
    mut out: MessageWriter<ToClients<State>>,
) {
    for m in inputs.read() {
        seen.inputs.push((m.player, m.entity, m.event.dx));
        out.write(ToClients {
            to: Target::All,
            event: State { x: m.event.dx * 10 },
        });
    }
}

/// Answers in the frame the call arrives.
fn server_answers_names(
    mut requests: MessageReader<Request<NameRequest, NameReply>>,
    mut responder: ResMut<Responder<NameReply>>,
) {
    for r in requests.read() {
        let answer = if r.request.0.is_empty() {
            Err(Reject::new("a name cannot be empty"))
        } else {
            Ok(NameReply(format!(
                "hello {} (player {})",
                r.request.0,
                r.from.expect("a player").0
            )))
        };
        assert!(responder.respond(r.key, answer));
    }
}

fn server_sees_calls(
    mut answers: MessageReader<CallDone<Answer>>,
    mut slow: MessageReader<CallDone<SlowReply>>,
    mut seen: ResMut<Seen>,
) {
    for done in answers.read() {
        seen.answers.push(done.result.clone());
    }
    for done in slow.read() {
        seen.slow.push(done.result.clone());
    }
}

fn server_sees_players(
    mut joined: MessageReader<PlayerJoined>,
    mut left: MessageReader<PlayerLeft>,
    mut seen: ResMut<Seen>,
) {
    for j in joined.read() {
        seen.joined.push(j.player);
    }
    for l in left.read() {
        seen.left.push(l.player);
    }
}

fn client_app(runtime: &VolleyRuntime, plugin: VolleyClientPlugin) -> App {
    let mut app = App::new();
    app.insert_resource(runtime.clone()).init_resource::<Seen>();
    app.add_plugins(plugin)
        .receive_from_server(STATE)
        .send_to_server(INPUT)
        .call_server(NAME)
        .call_server(UNANSWERED)
        .answer_server(CONFIRM)
        .answer_server(SLOW)
        .add_systems(
            Update,
            (
                client_reads,
                client_keeps_questions,
                client_sees_calls,
                client_sees_connection,
            ),
        );
    app
}

fn client_reads(mut states: MessageReader<FromServer<State>>, mut seen: ResMut<Seen>) {
    for s in states.read() {
        seen.states.push(s.event.x);
    }
}

/// Keeps each question's key, to be answered in a later frame by the test.
fn client_keeps_questions(mut questions: MessageReader<Request<Question, Answer>>, mut seen: ResMut<Seen>) {
    for q in questions.read() {
        seen.questions.push(q.key);
    }
}

fn client_sees_calls(
    mut names: MessageReader<CallDone<NameReply>>,
    mut unanswered: MessageReader<CallDone<()>>,
    mut seen: ResMut<Seen>,
) {
    for done in names.read() {
        seen.names.push(done.result.clone());
    }
    for done in unanswered.read() {
        seen.unanswered.push(done.result.clone());
    }
}

fn client_sees_connection(
    mut gone: MessageReader<Disconnected>,
    mut back: MessageReader<Reconnected>,
    mut seen: ResMut<Seen>,
) {
    seen.disconnected += gone.read().count();
    seen.reconnected += back.read().count();
}

/// Updates every app until `done` holds (checked on the apps), at most 10 s.
fn update_until(apps: &mut [&mut App], what: &str, done: impl Fn(&mut [&mut App]) -> bool) {
    let start = Instant::now();
    loop {
        for app in apps.iter_mut() {
            app.update();
        }
        if done(apps) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "waited 10 s for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn seen(app: &App) -> &Seen {
    app.world().resource::<Seen>()
}

fn connected(app: &App) -> bool {
    *app.world().resource::<ConnectionState>() == ConnectionState::Connected
}

fn memory_pair(runtime: &VolleyRuntime) -> (App, App) {
    let server = server_app(runtime, None);
    let transport = {
        let _inside = runtime.handle().enter();
        server.world().resource::<VolleyServer>().server.connect_memory()
    };
    let client = client_app(
        runtime,
        VolleyClientPlugin::memory(protocol(), ClientConfig::default(), transport),
    );
    (server, client)
}

#[test]
fn events_and_players_over_memory() {
    let runtime = VolleyRuntime::new();
    let (mut server, mut client) = memory_pair(&runtime);
    update_until(&mut [&mut server, &mut client], "the player's entity", |apps| {
        connected(apps[1]) && apps[0].world_mut().query::<&NetPlayer>().iter(apps[0].world()).count() == 1
    });
    let player = seen(&server).joined[0];
    let entity = server
        .world()
        .resource::<PlayerEntities>()
        .get(player)
        .expect("an entity");

    client.world_mut().write_message(ToServer { event: Input { dx: 3 } });
    update_until(&mut [&mut server, &mut client], "the state back", |apps| {
        seen(apps[1]).states == [30]
    });
    assert_eq!(seen(&server).inputs, vec![(player, Some(entity), 3)]);

    // The round-trip time rides on the player's entity.
    update_until(&mut [&mut server, &mut client], "an rtt", |apps| {
        apps[0]
            .world_mut()
            .query::<&Rtt>()
            .iter(apps[0].world())
            .any(|r| r.0.is_some())
    });

    // Leaving despawns the entity.
    client.world().resource::<VolleyClient>().client.disconnect();
    // The server and the client learn of it each in its own frame: wait for both.
    update_until(&mut [&mut server, &mut client], "the player to leave", |apps| {
        seen(apps[0]).left == [player] && seen(apps[1]).disconnected > 0
    });
    assert!(server.world().get_entity(entity).is_err(), "the entity is despawned");
    assert_eq!(seen(&client).disconnected, 1);
}

/// A server the game built itself (a cluster node would be built so)
/// serves the app: its players become entities, their events reach systems.
#[test]
fn a_server_the_game_built_serves_the_app() {
    let runtime = VolleyRuntime::new();
    let built = {
        let _inside = runtime.handle().enter();
        volley::Server::new(protocol(), ServerConfig::default())
    };
    let mut server = server_app_with(&runtime, VolleyServerPlugin::from_server(built.clone()));
    let transport = {
        let _inside = runtime.handle().enter();
        built.connect_memory()
    };
    let mut client = client_app(
        &runtime,
        VolleyClientPlugin::memory(protocol(), ClientConfig::default(), transport),
    );
    update_until(&mut [&mut server, &mut client], "the player's entity", |apps| {
        connected(apps[1]) && seen(apps[0]).joined.len() == 1
    });
    assert_eq!(built.player_count(), 1, "the game's own server has the player");
    client.world_mut().write_message(ToServer { event: Input { dx: 5 } });
    update_until(&mut [&mut server, &mut client], "the input", |apps| {
        !seen(apps[0]).inputs.is_empty()
    });
    assert_eq!(seen(&server).inputs[0].2, 5);
}

#[test]
fn calls_both_ways_answered_by_systems() {
    let runtime = VolleyRuntime::new();
    let (mut server, mut client) = memory_pair(&runtime);
    update_until(&mut [&mut server, &mut client], "connected", |apps| {
        connected(apps[1]) && seen(apps[0]).joined.len() == 1
    });
    let player = seen(&server).joined[0];

    // Client → server, answered by a server system in the same frame.
    client
        .world_mut()
        .spawn(Invoke::<NameRequest, NameReply>::server(NameRequest("ada".into())));
    client
        .world_mut()
        .spawn(Invoke::<NameRequest, NameReply>::server(NameRequest(String::new())));
    client.world_mut().spawn(Invoke::<(), ()>::server(()));
    update_until(&mut [&mut server, &mut client], "both names", |apps| {
        seen(apps[1]).names.len() == 2 && seen(apps[1]).unanswered.len() == 1
    });
    let names = &seen(&client).names;
    assert!(
        names.contains(&Ok(NameReply(format!("hello ada (player {})", player.0)))),
        "{names:?}"
    );
    assert!(names.contains(&Err(FunctionError::Rejected("a name cannot be empty".into()))));
    // No system registered for the remote: Unprocessed at once.
    assert_eq!(seen(&client).unanswered, vec![Err(FunctionError::Unprocessed)]);

    // Server → client, answered by the client a few frames later.
    server
        .world_mut()
        .spawn(Invoke::<Question, Answer>::player(player, Question("ready?".into())));
    update_until(&mut [&mut server, &mut client], "the question", |apps| {
        seen(apps[1]).questions.len() == 1
    });
    for _ in 0..3 {
        server.update();
        client.update();
    }
    assert!(seen(&server).answers.is_empty(), "not answered yet");
    let key = seen(&client).questions[0];
    assert!(client
        .world_mut()
        .resource_mut::<Responder<Answer>>()
        .respond(key, Ok(Answer(true))));
    assert!(
        !client
            .world_mut()
            .resource_mut::<Responder<Answer>>()
            .respond(key, Ok(Answer(false))),
        "a key answers once"
    );
    update_until(&mut [&mut server, &mut client], "the answer", |apps| {
        seen(apps[0]).answers.len() == 1
    });
    assert_eq!(seen(&server).answers, vec![Ok(Answer(true))]);

    // Nobody answers: the caller's deadline (300 ms) gives Timeout.
    let started = Instant::now();
    server
        .world_mut()
        .spawn(Invoke::<Slow, SlowReply>::player(player, Slow));
    update_until(&mut [&mut server, &mut client], "the timeout", |apps| {
        seen(apps[0]).slow.len() == 1
    });
    assert_eq!(seen(&server).slow, vec![Err(FunctionError::Timeout)]);
    assert!(started.elapsed() >= Duration::from_millis(290));
}

#[test]
fn despawning_a_call_cancels_it_across_the_wire() {
    let runtime = VolleyRuntime::new();
    let (mut server, mut client) = memory_pair(&runtime);
    update_until(&mut [&mut server, &mut client], "connected", |apps| {
        connected(apps[1]) && seen(apps[0]).joined.len() == 1
    });
    let player = seen(&server).joined[0];
    let call = server
        .world_mut()
        .spawn(Invoke::<Question, Answer>::player(
            player,
            Question("still there?".into()),
        ))
        .id();
    update_until(&mut [&mut server, &mut client], "the question", |apps| {
        seen(apps[1]).questions.len() == 1
    });
    assert_eq!(client.world().resource::<Responder<Answer>>().waiting(), 1);
    server.world_mut().despawn(call);
    // The client's handler is stopped: its key is forgotten, and answering
    // it does nothing.
    update_until(&mut [&mut server, &mut client], "the key to go", |apps| {
        apps[1].world().resource::<Responder<Answer>>().waiting() == 0
    });
    let key = seen(&client).questions[0];
    assert!(!client
        .world_mut()
        .resource_mut::<Responder<Answer>>()
        .respond(key, Ok(Answer(true))));
    for _ in 0..5 {
        server.update();
        client.update();
    }
    assert!(seen(&server).answers.is_empty(), "a despawned call reports nothing");
}

#[test]
fn over_tcp_with_reconnect() {
    let runtime = VolleyRuntime::new();
    let mut server = server_app(&runtime, Some("127.0.0.1:0"));
    let addr = server.world().resource::<VolleyServer>().addrs[0];
    let config = ClientConfig::default()
        .with_reconnect(ReconnectPolicy::default().with_initial_delay(Duration::from_millis(50)));
    let mut client = client_app(&runtime, VolleyClientPlugin::tcp(protocol(), config, addr.to_string()));
    update_until(&mut [&mut server, &mut client], "connected over TCP", |apps| {
        connected(apps[1])
    });
    client.world_mut().write_message(ToServer { event: Input { dx: 1 } });
    update_until(&mut [&mut server, &mut client], "the state back", |apps| {
        seen(apps[1]).states == [10]
    });

    // The server goes away; a new one takes its port; the client comes back.
    let old = server.world().resource::<VolleyServer>().server.clone();
    runtime.block_on(old.shutdown(Duration::from_millis(50)));
    drop(server);
    update_until(&mut [&mut client], "the disconnect", |apps| {
        seen(apps[0]).disconnected == 1
    });
    let mut server = server_app(&runtime, Some(&addr.to_string()));
    update_until(&mut [&mut server, &mut client], "the reconnect", |apps| {
        seen(apps[1]).reconnected == 1 && connected(apps[1])
    });
    client.world_mut().write_message(ToServer { event: Input { dx: 2 } });
    update_until(&mut [&mut server, &mut client], "traffic again", |apps| {
        seen(apps[1]).states == [10, 20]
    });
}

#[test]
#[should_panic(expected = "would share the message type")]
fn two_remotes_of_one_message_type_are_refused() {
    const OTHER_INPUT: ServerEvent<Input> = ServerEvent::new("OtherInput");
    let runtime = VolleyRuntime::new();
    let protocol = Protocol::builder().remote(INPUT).remote(OTHER_INPUT).build();
    let mut app = App::new();
    app.insert_resource(runtime)
        .add_plugins(VolleyServerPlugin::new(protocol, ServerConfig::default()))
        .receive_from_clients(INPUT)
        .receive_from_clients(OTHER_INPUT);
}
