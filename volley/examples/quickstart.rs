//! volley in one process: a server on loopback and two clients, showing a
//! client → server call, a server → client call, an event broadcast, a
//! deliberate rejection and a timeout.
//!
//! ```text
//! cargo run --example quickstart                      # over TCP
//! cargo run --example quickstart -- --transport quic  # or ws, tls
//! ```

mod shared;

use shared::*;
use tokio::sync::mpsc;
use volley::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("warn").init();

    let net = Net::from_args()?;
    // TLS and QUIC: a self-signed certificate that the clients trust explicitly.
    let (server_tls, cert) = certificates(net);
    let server = Server::new(protocol(), ServerConfig::default());
    demo_server(&server);
    let addr = listen(&server, net, "127.0.0.1:0", server_tls).await?;
    println!("server listening on {addr} ({net:?}, loopback)");

    // Two clients; each prints the announcements it hears.
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    let mut clients = Vec::new();
    for name in ["alice", "bob"] {
        let client = Client::new(protocol(), ClientConfig::default());
        let tx = heard_tx.clone();
        client.on_event(ANNOUNCE, move |_, line: String| {
            let _ = tx.send((name, line));
        });
        client.on_request_sync(PROMPT_ACTION, move |_, prompt: Prompt| {
            println!("  {name} is asked {:?} and answers yes", prompt.question);
            Ok(Confirm { confirmed: true })
        });
        connect(&client, net, addr, cert.as_deref().map(trusting)).await?;
        println!("{name} connected");
        clients.push(client);
    }
    let (alice, bob) = (&clients[0], &clients[1]);

    println!("\n1. client → server call: alice asks for her player data");
    let data = alice.invoke(GET_PLAYER_DATA, GetData { name: "alice".into() }).await?;
    println!("  server answered {data:?}");

    println!("\n2. server → client call: the server asks bob a question");
    let bob_player = server.players().pop().expect("bob is connected");
    let answer = server
        .invoke(
            &bob_player,
            PROMPT_ACTION,
            Prompt {
                question: "Accept the quest?".into(),
            },
        )
        .await?;
    println!("  bob's answer reached the server: confirmed = {}", answer.confirmed);

    println!("\n3. event broadcast: the server announces to everyone");
    let sent_to = server.fire_all(ANNOUNCE, "round starts".into())?.sent;
    for _ in 0..sent_to {
        let (who, line) = heard.recv().await.expect("announcement");
        println!("  {who} heard {line:?}");
    }

    println!("\n4. deliberate rejection: alice buys a sword she cannot afford");
    match alice
        .invoke(
            BUY,
            Purchase {
                item: "sword".into(),
                price: 100,
            },
        )
        .await
    {
        Err(FunctionError::Rejected(why)) => println!("  the server said no: {why:?}"),
        other => return Err(format!("expected a rejection, got {other:?}").into()),
    }
    let left = alice
        .invoke(
            BUY,
            Purchase {
                item: "apple".into(),
                price: 5,
            },
        )
        .await?;
    println!("  an apple is fine: {left} gold left");

    println!("\n5. timeout: bob searches, the server takes 2 s, the call gives up after 500 ms");
    let started = tokio::time::Instant::now();
    match bob.invoke(SLOW_SEARCH, "dragons".into()).await {
        Err(FunctionError::Timeout) => println!(
            "  timed out after {:?}, and the server was told to stop",
            started.elapsed()
        ),
        other => return Err(format!("expected a timeout, got {other:?}").into()),
    }

    for client in &clients {
        client.close().await;
    }
    println!("\nall done: {} players still connected", server.player_count());
    Ok(())
}
