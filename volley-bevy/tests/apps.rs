//! A server `App` and client `App`s in one test, over the in-memory
//! transport and over TCP, advanced with `update()` until a condition holds.

use std::time::Duration;

use bevy_app::{App, Update};
use bevy_ecs::prelude::*;
use serde::{Deserialize, Serialize};
use volley::*;
use volley_bevy::testing::Stepper;
use volley_bevy::*;

/// Sent by a client's systems with a plain `MessageWriter<Input>`.
#[derive(Message, Debug, Clone, PartialEq, Serialize, Deserialize)]
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
/// A payload that cannot be a Bevy message: sent wrapped in `ToServer`.
const CHAT: ServerEvent<String> = ServerEvent::new("Chat");
const NAME: ServerFn<NameRequest, NameReply> = ServerFn::new("Name");
const CONFIRM: ClientFn<Question, Answer> = ClientFn::new("Confirm").with_timeout(Duration::from_secs(5));
/// A second function with `CONFIRM`'s types: calls are told apart by remote.
const CONFIRM_AGAIN: ClientFn<Question, Answer> = ClientFn::new("ConfirmAgain");
/// Registered on the client, but no client system reads it.
const SLOW: ClientFn<Slow, SlowReply> = ClientFn::new("Slow").with_timeout(Duration::from_secs(5));
/// Declared, but no server system is registered for it.
const UNANSWERED: ServerFn<(), ()> = ServerFn::new("Unanswered");

fn protocol() -> Protocol {
    Protocol::builder()
        .remote(INPUT)
        .remote(STATE)
        .remote(CHAT)
        .remote(NAME)
        .remote(CONFIRM)
        .remote(CONFIRM_AGAIN)
        .remote(SLOW)
        .remote(UNANSWERED)
        .build()
}

/// What the apps' systems saw.
#[derive(Resource, Default, Debug)]
struct Seen {
    inputs: Vec<(PlayerId, Option<Entity>, i32)>,
    states: Vec<i32>,
    chat: Vec<String>,
    names: Vec<Result<NameReply, FunctionError>>,
    answers: Vec<(&'static str, Result<Answer, FunctionError>)>,
    slow: Vec<Result<SlowReply, FunctionError>>,
    unanswered: Vec<Result<(), FunctionError>>,
    questions: Vec<(&'static str, DeferredAnswer<Answer>)>,
    joined: Vec<PlayerId>,
    left: Vec<PlayerId>,
    disconnected: usize,
    reconnected: usize,
    /// Frames in which `client_just_connected` held.
    just_connected: usize,
}

/// Registered once, in code both apps share: each side's plugin decides
/// what a remote is to it.
fn add_shared_remotes(app: &mut App) -> &mut App {
    app.add_remote(INPUT)
        .add_remote(STATE)
        .add_remote(NAME)
        .add_remote(CONFIRM)
        .add_remote(CONFIRM_AGAIN)
        .add_remote(SLOW)
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
    app.add_plugins(plugin);
    add_shared_remotes(&mut app)
        .receive_from_clients(CHAT)
        .add_observer(server_answers_names)
        .add_observer(|chat: On<FromClient<String>>, mut seen: ResMut<Seen>| seen.chat.push(chat.event.clone()))
        .add_systems(Update, (server_reads, server_sees_calls, server_sees_players));
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

/// An observer: answers as the call arrives.
fn server_answers_names(r: On<Request<NameRequest, NameReply>>, mut responder: ResMut<Responder<NameReply>>) {
    {
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
        seen.answers.push((done.remote, done.result.clone()));
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
    app.add_plugins(plugin);
    add_shared_remotes(&mut app)
        // The server does not answer it.
        .call_server(UNANSWERED)
        .send_wrapped_to_server(CHAT)
        .add_systems(
            Update,
            (
                client_reads,
                client_keeps_questions,
                client_sees_calls,
                client_sees_connection,
                count_just_connected.run_if(client_just_connected),
            ),
        );
    app
}

fn client_reads(mut states: MessageReader<FromServer<State>>, mut seen: ResMut<Seen>) {
    for s in states.read() {
        seen.states.push(s.event.x);
    }
}

/// Keeps each question's answer, to be given in a later frame by the test.
fn client_keeps_questions(
    mut questions: MessageReader<Request<Question, Answer>>,
    mut responder: ResMut<Responder<Answer>>,
    mut seen: ResMut<Seen>,
) {
    for q in questions.read() {
        let deferred = responder.defer(q.key).expect("the caller waits");
        seen.questions.push((q.remote, deferred));
    }
}

fn count_just_connected(mut seen: ResMut<Seen>) {
    seen.just_connected += 1;
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

/// Steps every app until `done` holds (checked on the apps), at most 1,000
/// frames (16 s on the stepper's clock).
fn step_until(stepper: &mut Stepper, apps: &mut [&mut App], what: &str, done: impl Fn(&mut [&mut App]) -> bool) -> u64 {
    stepper
        .step_until(apps, what, 1_000, done)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Updates every app until `done` holds (checked on the apps), at most 10 s
/// of real time: for apps on real sockets.
fn update_until(apps: &mut [&mut App], what: &str, done: impl Fn(&mut [&mut App]) -> bool) {
    if let Err(e) = testing::update_until(apps, what, Duration::from_secs(10), done) {
        panic!("{e}");
    }
}

/// The client sends its first input (3); the server's state (30) comes back.
fn first_input_there_and_back(stepper: &mut Stepper, server: &mut App, client: &mut App) {
    client.world_mut().write_message(Input { dx: 3 });
    step_until(stepper, &mut [server, client], "the state back", |apps| {
        seen(apps[1]).states == [30]
    });
}

fn seen(app: &App) -> &Seen {
    app.world().resource::<Seen>()
}

fn connected(app: &App) -> bool {
    *app.world().resource::<ClientState>() == ClientState::Connected
}

/// A server app listening on TCP, updated until it is.
fn tcp_server_app(runtime: &VolleyRuntime, addr: &str) -> (App, std::net::SocketAddr) {
    let mut server = server_app(runtime, Some(addr));
    update_until(&mut [&mut server], "listening", |apps| {
        *apps[0].world().resource::<ServerState>() == ServerState::Running
    });
    let addr = server.world().resource::<VolleyServer>().addrs[0];
    (server, addr)
}

fn memory_pair(runtime: &VolleyRuntime) -> (App, App) {
    let mut server = server_app(runtime, None);
    let mut client = client_app(runtime, VolleyClientPlugin::new(protocol(), ClientConfig::default()));
    testing::connect_in_memory(&mut server, &mut client);
    (server, client)
}

#[test]
fn events_and_players_over_memory() {
    let mut stepper = Stepper::new();
    let runtime = stepper.runtime();
    let (mut server, mut client) = memory_pair(&runtime);
    step_until(
        &mut stepper,
        &mut [&mut server, &mut client],
        "the player's entity",
        |apps| connected(apps[1]) && apps[0].world_mut().query::<&NetPlayer>().iter(apps[0].world()).count() == 1,
    );
    let player = seen(&server).joined[0];
    let entity = server
        .world()
        .resource::<PlayerEntities>()
        .get(player)
        .expect("an entity");

    first_input_there_and_back(&mut stepper, &mut server, &mut client);
    assert_eq!(seen(&server).inputs, vec![(player, Some(entity), 3)]);

    // A payload that cannot be a Bevy message goes wrapped.
    client.world_mut().write_message(ToServer {
        event: "gg".to_string(),
    });
    step_until(&mut stepper, &mut [&mut server, &mut client], "the chat line", |apps| {
        seen(apps[0]).chat == ["gg"]
    });

    // The player's rooms ride on its entity.
    let net = server.world().get::<NetPlayer>(entity).unwrap().player.clone();
    net.join("lobby");
    net.join("match-1");
    net.leave("lobby");
    step_until(&mut stepper, &mut [&mut server, &mut client], "the rooms", |apps| {
        apps[0]
            .world()
            .get::<Rooms>(entity)
            .is_some_and(|r| r.contains("match-1"))
    });
    let rooms = server.world().get::<Rooms>(entity).unwrap();
    assert_eq!(rooms.0.iter().collect::<Vec<_>>(), ["match-1"]);

    // The round-trip time rides on the player's entity.
    step_until(&mut stepper, &mut [&mut server, &mut client], "an rtt", |apps| {
        apps[0]
            .world_mut()
            .query::<&Rtt>()
            .iter(apps[0].world())
            .any(|r| r.0.is_some())
    });

    // Leaving despawns the entity.
    client.world().resource::<VolleyClient>().client.disconnect();
    // The server and the client learn of it each in its own frame: wait for both.
    step_until(
        &mut stepper,
        &mut [&mut server, &mut client],
        "the player to leave",
        |apps| seen(apps[0]).left == [player] && seen(apps[1]).disconnected > 0,
    );
    assert!(server.world().get_entity(entity).is_err(), "the entity is despawned");
    assert_eq!(seen(&client).disconnected, 1);
}

/// A server the game built itself (a cluster node would be built so)
/// serves the app: its players become entities, their events reach systems.
#[test]
fn a_server_the_game_built_serves_the_app() {
    let mut stepper = Stepper::new();
    let runtime = stepper.runtime();
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
    step_until(
        &mut stepper,
        &mut [&mut server, &mut client],
        "the player's entity",
        |apps| connected(apps[1]) && seen(apps[0]).joined.len() == 1,
    );
    assert_eq!(built.player_count(), 1, "the game's own server has the player");
    client.world_mut().write_message(Input { dx: 5 });
    step_until(&mut stepper, &mut [&mut server, &mut client], "the input", |apps| {
        !seen(apps[0]).inputs.is_empty()
    });
    assert_eq!(seen(&server).inputs[0].2, 5);
}

#[test]
fn calls_both_ways_answered_by_systems_and_observers() {
    let mut stepper = Stepper::new();
    let runtime = stepper.runtime();
    let (mut server, mut client) = memory_pair(&runtime);
    step_until(&mut stepper, &mut [&mut server, &mut client], "connected", |apps| {
        connected(apps[1]) && seen(apps[0]).joined.len() == 1
    });
    let player = seen(&server).joined[0];

    // Client → server, answered by a server observer as it arrives.
    let ada = client
        .world_mut()
        .spawn(Invoke::server(NAME, NameRequest("ada".into())))
        .id();
    client
        .world_mut()
        .spawn(Invoke::server(NAME, NameRequest(String::new())));
    client.world_mut().spawn(Invoke::server(UNANSWERED, ()));
    step_until(&mut stepper, &mut [&mut server, &mut client], "both names", |apps| {
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
    // A finished call leaves no entity behind.
    stepper.step(&mut [&mut server, &mut client]);
    assert!(
        client.world().get_entity(ada).is_err(),
        "the call's entity is despawned"
    );
    assert_eq!(
        client
            .world_mut()
            .query::<&Invoke<NameRequest, NameReply>>()
            .iter(client.world())
            .count(),
        0
    );

    // Server → client, two functions with the same types, addressed by id
    // and by entity; answered by the client a few frames later.
    let entity = server.world().resource::<PlayerEntities>().get(player).unwrap();
    server
        .world_mut()
        .spawn(Invoke::player(CONFIRM, player, Question("ready?".into())));
    server
        .world_mut()
        .spawn(Invoke::entity(CONFIRM_AGAIN, entity, Question("sure?".into())));
    step_until(&mut stepper, &mut [&mut server, &mut client], "the questions", |apps| {
        seen(apps[1]).questions.len() == 2
    });
    for _ in 0..3 {
        stepper.step(&mut [&mut server, &mut client]);
    }
    assert!(seen(&server).answers.is_empty(), "not answered yet");
    let questions = std::mem::take(&mut client.world_mut().resource_mut::<Seen>().questions);
    for (remote, deferred) in questions {
        assert!(deferred.respond(Ok(Answer(remote == "Confirm"))));
    }
    step_until(&mut stepper, &mut [&mut server, &mut client], "the answers", |apps| {
        seen(apps[0]).answers.len() == 2
    });
    let mut answers = seen(&server).answers.clone();
    answers.sort_by_key(|(remote, _)| *remote);
    assert_eq!(
        answers,
        vec![("Confirm", Ok(Answer(true))), ("ConfirmAgain", Ok(Answer(false)))]
    );

    // Registered on the client but read by no system: Unprocessed within a
    // few frames, not at the caller's 5 s deadline.
    server.world_mut().spawn(Invoke::player(SLOW, player, Slow));
    let frames = step_until(&mut stepper, &mut [&mut server, &mut client], "the refusal", |apps| {
        seen(apps[0]).slow.len() == 1
    });
    assert_eq!(seen(&server).slow, vec![Err(FunctionError::Unprocessed)]);
    // Sent in the first frame, read in the client's next two, refused in
    // the third and heard in the fourth: 64 ms, where the deadline is 5 s.
    assert_eq!(frames, 4);
}

/// A call's result reaches the observers of its entity; a per-call timeout
/// overrides the remote's; a dropped `DeferredAnswer` answers `Unprocessed`.
#[test]
fn call_results_reach_the_entitys_observers() {
    let mut stepper = Stepper::new();
    let runtime = stepper.runtime();
    let (mut server, mut client) = memory_pair(&runtime);
    step_until(&mut stepper, &mut [&mut server, &mut client], "connected", |apps| {
        connected(apps[1]) && seen(apps[0]).joined.len() == 1
    });
    let player = seen(&server).joined[0];
    #[derive(Resource, Default)]
    struct Observed(Vec<Result<Answer, FunctionError>>);
    server.init_resource::<Observed>();
    let record = |done: On<CallDone<Answer>>, mut observed: ResMut<Observed>| observed.0.push(done.result.clone());
    // Nobody answers in time: this call's 100 ms, not the remote's 5 s.
    server
        .world_mut()
        .spawn(Invoke::player(CONFIRM, player, Question("quick?".into())).with_timeout(Duration::from_millis(100)))
        .observe(record);
    step_until(&mut stepper, &mut [&mut server, &mut client], "the timeout", |apps| {
        !apps[0].world().resource::<Observed>().0.is_empty()
    });
    assert_eq!(
        server.world().resource::<Observed>().0,
        vec![Err(FunctionError::Timeout)]
    );

    // A deferred answer dropped unanswered: Unprocessed at once.
    server
        .world_mut()
        .spawn(Invoke::player(CONFIRM, player, Question("dropped?".into())))
        .observe(record);
    step_until(&mut stepper, &mut [&mut server, &mut client], "the question", |apps| {
        seen(apps[1]).questions.len() == 2
    });
    client.world_mut().resource_mut::<Seen>().questions.clear();
    step_until(&mut stepper, &mut [&mut server, &mut client], "the refusal", |apps| {
        apps[0].world().resource::<Observed>().0.len() == 2
    });
    assert_eq!(
        server.world().resource::<Observed>().0[1],
        Err(FunctionError::Unprocessed)
    );
}

#[test]
fn despawning_a_call_cancels_it_across_the_wire() {
    let mut stepper = Stepper::new();
    let runtime = stepper.runtime();
    let (mut server, mut client) = memory_pair(&runtime);
    step_until(&mut stepper, &mut [&mut server, &mut client], "connected", |apps| {
        connected(apps[1]) && seen(apps[0]).joined.len() == 1
    });
    let player = seen(&server).joined[0];
    let call = server
        .world_mut()
        .spawn(Invoke::player(CONFIRM, player, Question("still there?".into())))
        .id();
    step_until(&mut stepper, &mut [&mut server, &mut client], "the question", |apps| {
        seen(apps[1]).questions.len() == 1
    });
    assert!(seen(&client).questions[0].1.is_wanted());
    server.world_mut().despawn(call);
    // The client's handler is stopped: its answer is no longer wanted.
    step_until(&mut stepper, &mut [&mut server, &mut client], "the cancel", |apps| {
        !seen(apps[1]).questions[0].1.is_wanted()
    });
    let (_, deferred) = client.world_mut().resource_mut::<Seen>().questions.remove(0);
    assert!(!deferred.respond(Ok(Answer(true))));
    for _ in 0..5 {
        stepper.step(&mut [&mut server, &mut client]);
    }
    assert!(seen(&server).answers.is_empty(), "a despawned call reports nothing");
}

/// Despawning a player's entity kicks the player.
#[test]
fn despawning_a_player_kicks_it() {
    let mut stepper = Stepper::new();
    let runtime = stepper.runtime();
    let (mut server, mut client) = memory_pair(&runtime);
    step_until(&mut stepper, &mut [&mut server, &mut client], "connected", |apps| {
        connected(apps[1]) && seen(apps[0]).joined.len() == 1
    });
    let player = seen(&server).joined[0];
    let entity = server.world().resource::<PlayerEntities>().get(player).unwrap();
    server.world_mut().despawn(entity);
    step_until(&mut stepper, &mut [&mut server, &mut client], "the kick", |apps| {
        *apps[1].world().resource::<ClientState>() == ClientState::Disconnected && seen(apps[0]).left == [player]
    });
    let reason = client.world().resource::<VolleyClient>().client.close_reason();
    assert!(
        matches!(
            reason,
            Some(CloseReason::Remote {
                code: GoodbyeCode::Kicked,
                ..
            })
        ),
        "{reason:?}"
    );
}

#[test]
fn over_tcp_with_reconnect() {
    let runtime = VolleyRuntime::new();
    let (mut server, addr) = tcp_server_app(&runtime, "127.0.0.1:0");
    let config = ClientConfig::default()
        .with_reconnect(ReconnectPolicy::default().with_initial_delay(Duration::from_millis(50)));
    let mut client = client_app(&runtime, VolleyClientPlugin::tcp(protocol(), config, addr.to_string()));
    update_until(&mut [&mut server, &mut client], "connected over TCP", |apps| {
        connected(apps[1])
    });
    assert_eq!(seen(&client).just_connected, 1);
    client.world_mut().write_message(Input { dx: 1 });
    update_until(&mut [&mut server, &mut client], "the state back", |apps| {
        seen(apps[1]).states == [10]
    });

    // The server goes away; a new one takes its port; the client comes back.
    server.world_mut().trigger(StopServer {
        grace: Duration::from_millis(50),
    });
    update_until(&mut [&mut server, &mut client], "the disconnect", |apps| {
        seen(apps[1]).disconnected == 1 && *apps[0].world().resource::<ServerState>() == ServerState::Stopped
    });
    assert_eq!(*client.world().resource::<ClientState>(), ClientState::Reconnecting);
    drop(server);
    let (mut server, _) = tcp_server_app(&runtime, &addr.to_string());
    update_until(&mut [&mut server, &mut client], "the reconnect", |apps| {
        seen(apps[1]).reconnected == 1 && connected(apps[1])
    });
    assert_eq!(
        seen(&client).just_connected,
        2,
        "client_just_connected held once per connection"
    );
    client.world_mut().write_message(Input { dx: 2 });
    update_until(&mut [&mut server, &mut client], "traffic again", |apps| {
        seen(apps[1]).states == [10, 20]
    });
}

/// Failures to listen or connect arrive as messages, with volley's errors;
/// nothing panics.
#[test]
fn failures_arrive_as_messages() {
    let runtime = VolleyRuntime::new();
    let (mut server, addr) = tcp_server_app(&runtime, "127.0.0.1:0");
    // The port is taken.
    server.world_mut().trigger(StartServer::tcp(addr.to_string()));
    update_until(&mut [&mut server], "the failure", |apps| {
        !apps[0].world().resource::<Messages<ServerFailed>>().is_empty()
    });
    let failed = server
        .world_mut()
        .resource_mut::<Messages<ServerFailed>>()
        .drain()
        .next()
        .unwrap();
    assert_eq!(failed.error.kind(), std::io::ErrorKind::AddrInUse, "{failed:?}");
    assert!(server_running_in(&mut server));

    // Nobody listens there any more.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut client = client_app(&runtime, VolleyClientPlugin::new(protocol(), ClientConfig::default()));
    assert_eq!(*client.world().resource::<ClientState>(), ClientState::Disconnected);
    client.world_mut().trigger(Connect::tcp(free.to_string()));
    update_until(&mut [&mut client], "the failure", |apps| {
        !apps[0].world().resource::<Messages<ConnectFailed>>().is_empty()
    });
    let failed = client
        .world_mut()
        .resource_mut::<Messages<ConnectFailed>>()
        .drain()
        .next()
        .unwrap();
    assert!(matches!(failed.error, ConnectError::Io(_)), "{failed:?}");
    client.update();
    assert_eq!(*client.world().resource::<ClientState>(), ClientState::Disconnected);
}

fn server_running_in(app: &mut App) -> bool {
    app.world_mut().run_system_cached(server_running).unwrap()
}

/// Two remotes carrying one event type both reach systems, told apart by
/// name; two sent by one type are refused (a message could not say which).
#[test]
fn events_of_one_type_by_two_remotes() {
    const OTHER_INPUT: ServerEvent<Input> = ServerEvent::new("OtherInput");
    let runtime = VolleyRuntime::new();
    let protocol = Protocol::builder().remote(INPUT).remote(OTHER_INPUT).build();
    let mut app = App::new();
    app.insert_resource(runtime)
        .add_plugins(VolleyServerPlugin::new(protocol, ServerConfig::default()))
        .receive_from_clients(INPUT)
        .receive_from_clients(OTHER_INPUT);
}

#[test]
#[should_panic(expected = "would be sent by the same message type")]
fn two_remotes_sent_by_one_message_type_are_refused() {
    const OTHER_STATE: ClientEvent<State> = ClientEvent::new("OtherState");
    let runtime = VolleyRuntime::new();
    let protocol = Protocol::builder().remote(STATE).remote(OTHER_STATE).build();
    let mut app = App::new();
    app.insert_resource(runtime)
        .add_plugins(VolleyServerPlugin::new(protocol, ServerConfig::default()))
        .send_to_clients(STATE)
        .send_to_clients(OTHER_STATE);
}

/// Inside a current-thread runtime (`#[tokio::main(flavor = "current_thread")]`),
/// whose tasks would not run while the app's frames do, the plugins run
/// volley on a runtime of their own; `States` follow the connection.
#[cfg(feature = "bevy_state")]
#[tokio::test(flavor = "current_thread")]
async fn a_current_thread_runtime_and_states() {
    let mut server = App::new();
    server
        .add_plugins(bevy_state::app::StatesPlugin)
        .init_resource::<Seen>();
    server.add_plugins(VolleyServerPlugin::new(protocol(), ServerConfig::default()).listen_tcp("127.0.0.1:0"));
    update_until(&mut [&mut server], "listening", |apps| {
        *apps[0].world().resource::<bevy_state::state::State<ServerState>>() == ServerState::Running
    });
    let addr = server.world().resource::<VolleyServer>().addrs[0];
    let mut client = App::new();
    client
        .add_plugins(bevy_state::app::StatesPlugin)
        .init_resource::<Seen>();
    client.add_plugins(VolleyClientPlugin::tcp(
        protocol(),
        ClientConfig::default(),
        addr.to_string(),
    ));
    update_until(&mut [&mut server, &mut client], "connected", |apps| {
        *apps[1].world().resource::<bevy_state::state::State<ClientState>>() == ClientState::Connected
    });
}

/// A stalled server app (no frames for a while) under a client's event
/// flood: the queue into the ECS stays within its limit (the flooding
/// connection is not read meanwhile), and once frames run again every event
/// the client sent arrives, in order.
#[test]
fn a_stalled_app_holds_a_flooding_client_back() {
    const LIMIT: usize = 256;
    let runtime = VolleyRuntime::new();
    let mut server = server_app_with(
        &runtime,
        VolleyServerPlugin::new(protocol(), ServerConfig::default()).with_event_queue(LIMIT),
    );
    let mut client = client_app(&runtime, VolleyClientPlugin::new(protocol(), ClientConfig::default()));
    testing::connect_in_memory(&mut server, &mut client);
    update_until(&mut [&mut server, &mut client], "connected", |apps| {
        connected(apps[1]) && seen(apps[0]).joined.len() == 1
    });
    // The app stalls; the client fires until it can queue no more (a
    // bounded flood), through volley's client directly.
    let volley_client = client.world().resource::<VolleyClient>().client.clone();
    let sent = runtime.block_on(async move {
        let mut sent = 0i32;
        for dx in 0..100_000 {
            if volley_client.fire(INPUT, Input { dx }).is_err() {
                break;
            }
            sent += 1;
            if sent % 500 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        sent
    });
    // One frame takes everything queued meanwhile: within the limit, plus
    // what the connection had read before it was paused.
    server.update();
    let queued = seen(&server).inputs.len();
    assert!(sent as usize > 4 * LIMIT, "only {sent} sent");
    assert!(
        queued <= 2 * LIMIT,
        "{queued} events queued while stalled (limit {LIMIT})"
    );
    update_until(&mut [&mut server, &mut client], "every event", |apps| {
        seen(apps[0]).inputs.len() == sent as usize
    });
    let order: Vec<i32> = seen(&server).inputs.iter().map(|(_, _, dx)| *dx).collect();
    assert_eq!(order, (0..sent).collect::<Vec<_>>(), "in order, none lost");
}

/// A call to a room: each member's answer reaches the call's observers as
/// it arrives, then `GroupDone`, then the entity goes.
#[test]
fn a_group_call_answers_as_they_arrive() {
    let mut stepper = Stepper::new();
    let runtime = stepper.runtime();
    let (mut server, mut first) = memory_pair(&runtime);
    let mut second = client_app(&runtime, VolleyClientPlugin::new(protocol(), ClientConfig::default()));
    testing::connect_in_memory(&mut server, &mut second);
    step_until(
        &mut stepper,
        &mut [&mut server, &mut first, &mut second],
        "two players",
        |apps| seen(apps[0]).joined.len() == 2,
    );
    let mut players = server.world_mut().query::<&NetPlayer>();
    for net in players.iter(server.world()) {
        net.player.join("lobby");
    }
    #[derive(Resource, Default)]
    struct Group {
        answers: Vec<(PlayerId, Result<Answer, FunctionError>)>,
        done: Vec<usize>,
    }
    server.init_resource::<Group>();
    let call = server
        .world_mut()
        .spawn(Invoke::room(CONFIRM, "lobby", Question("all ready?".into())))
        .observe(|answer: On<CallAnswer<Answer>>, mut group: ResMut<Group>| {
            group.answers.push((answer.player, answer.result.clone()));
        })
        .observe(|done: On<GroupDone>, mut group: ResMut<Group>| group.done.push(done.asked))
        .id();
    step_until(
        &mut stepper,
        &mut [&mut server, &mut first, &mut second],
        "both asked",
        |apps| seen(apps[1]).questions.len() == 1 && seen(apps[2]).questions.len() == 1,
    );
    // The first answers now; the second a few frames later.
    let (_, deferred) = first.world_mut().resource_mut::<Seen>().questions.remove(0);
    assert!(deferred.respond(Ok(Answer(true))));
    step_until(
        &mut stepper,
        &mut [&mut server, &mut first, &mut second],
        "the first answer",
        |apps| apps[0].world().resource::<Group>().answers.len() == 1,
    );
    assert!(server.world().resource::<Group>().done.is_empty(), "one still owed");
    let (_, deferred) = second.world_mut().resource_mut::<Seen>().questions.remove(0);
    assert!(deferred.respond(Ok(Answer(false))));
    step_until(
        &mut stepper,
        &mut [&mut server, &mut first, &mut second],
        "the group done",
        |apps| apps[0].world().resource::<Group>().done == [2],
    );
    let group = server.world().resource::<Group>();
    let results: Vec<_> = group.answers.iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(results, [Ok(Answer(true)), Ok(Answer(false))]);
    stepper.step(&mut [&mut server, &mut first, &mut second]);
    assert!(
        server.world().get_entity(call).is_err(),
        "the call's entity is despawned"
    );
}

/// The stepper is deterministic: the same game stepped again sees
/// everything in the same frames, a per-call deadline included.
#[test]
fn stepped_apps_see_everything_in_the_same_frames_every_run() {
    fn run() -> Vec<(&'static str, u64)> {
        let mut stepper = Stepper::new();
        let runtime = stepper.runtime();
        let (mut server, mut client) = memory_pair(&runtime);
        #[derive(Resource, Default)]
        struct Observed(Vec<Result<Answer, FunctionError>>);
        server.init_resource::<Observed>();
        let mut trace = Vec::new();
        step_until(&mut stepper, &mut [&mut server, &mut client], "connected", |apps| {
            connected(apps[1]) && seen(apps[0]).joined.len() == 1
        });
        trace.push(("connected", stepper.frames()));
        let player = seen(&server).joined[0];

        first_input_there_and_back(&mut stepper, &mut server, &mut client);
        trace.push(("an event there and back", stepper.frames()));

        client
            .world_mut()
            .spawn(Invoke::server(NAME, NameRequest("ada".into())));
        step_until(&mut stepper, &mut [&mut server, &mut client], "the name", |apps| {
            seen(apps[1]).names.len() == 1
        });
        trace.push(("a call answered", stepper.frames()));

        // The client keeps the question unanswered: 100 ms is 7 frames of 16.
        server
            .world_mut()
            .spawn(Invoke::player(CONFIRM, player, Question("quick?".into())).with_timeout(Duration::from_millis(100)))
            .observe(|done: On<CallDone<Answer>>, mut observed: ResMut<Observed>| observed.0.push(done.result.clone()));
        let frames = step_until(&mut stepper, &mut [&mut server, &mut client], "the timeout", |apps| {
            !apps[0].world().resource::<Observed>().0.is_empty()
        });
        assert_eq!(server.world().resource::<Observed>().0, [Err(FunctionError::Timeout)]);
        trace.push(("a 100 ms deadline", frames));
        trace
    }
    let first = run();
    assert_eq!(
        first,
        [
            // Frames since the start; the deadline's frames since the call.
            ("connected", 2),
            ("an event there and back", 4),
            ("a call answered", 6),
            ("a 100 ms deadline", 8)
        ]
    );
    for _ in 0..4 {
        assert_eq!(run(), first);
    }
}
