//! A demo client for `examples/server.rs`: exercises every remote in both
//! directions, prints each result, and exits 0 only if every result was the
//! one expected.
//!
//! ```text
//! cargo run --example client -- --addr 127.0.0.1:7777                   # TCP
//! cargo run --example client -- --addr 127.0.0.1:7777 --transport quic  # or ws, tls
//! cargo run --example client -- --addr 127.0.0.1:7777 --linger 30       # then stay, calling once a second
//! cargo run --example client -- --addr 127.0.0.1:7777 --rounds 8        # every check 8 times over
//! ```
//!
//! It reconnects by the default [`ReconnectPolicy`], so a lost connection is
//! resumed: the same player, nothing lost (try it through
//! `examples/cutting_proxy.rs`).
//!
//! Over TLS and QUIC it trusts exactly the certificate the demo server wrote
//! (`--cert <file>` to use another).

mod shared;

use std::process::ExitCode;
use std::time::Duration;

use shared::*;
use tokio::sync::mpsc;
use volley::*;

/// Prints one check and counts failures.
struct Checks {
    failed: usize,
}

impl Checks {
    fn check(&mut self, what: &str, ok: bool, got: impl std::fmt::Debug) {
        println!("{} {what}: {got:?}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            self.failed += 1;
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let addr = arg("--addr", "127.0.0.1:7777");

    let client = Client::new(
        protocol(),
        ClientConfig::default().with_reconnect(ReconnectPolicy::default()),
    );
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    client.on_event(ANNOUNCE, move |_, line: String| {
        let _ = heard_tx.send(line);
    });
    let (asked_tx, mut asked) = mpsc::unbounded_channel();
    client.on_request_sync(PROMPT_ACTION, move |_, prompt: Prompt| {
        let _ = asked_tx.send(prompt.question);
        Ok(Confirm { confirmed: true })
    });
    let net = match Net::from_args() {
        Ok(net) => net,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let resolved = match addr.parse() {
        Ok(resolved) => resolved,
        Err(e) => {
            eprintln!("--addr {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tls = if net.encrypted() {
        let path = arg("--cert", &cert_path(net, resolved).display().to_string());
        match std::fs::read(&path) {
            Ok(cert) => Some(trusting(&cert)),
            Err(e) => {
                eprintln!("could not read the server's certificate {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    if let Err(e) = connect(&client, net, resolved, tls).await {
        eprintln!("could not connect to {addr}: {e}");
        return ExitCode::FAILURE;
    }
    println!("connected to {addr}");
    let mut c = Checks { failed: 0 };
    let resumes = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = resumes.clone();
    client.on_resumed(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let rounds: u32 = arg("--rounds", "1").parse().unwrap_or(1);
    for _ in 0..rounds {
        checks(&client, &mut c, &mut heard, &mut asked).await;
    }
    let resumed = resumes.load(std::sync::atomic::Ordering::Relaxed);
    if resumed > 0 {
        println!("resumed {resumed} times after a lost connection");
    }

    // Stay connected a while, calling once a second (for the inspector).
    let linger: u64 = arg("--linger", "0").parse().unwrap_or(0);
    for _ in 0..linger {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = client.invoke(GET_PLAYER_DATA, GetData { name: "demo".into() }).await;
    }
    // Returns once the server has the goodbye: the process may end now.
    client.close().await;
    if c.failed == 0 {
        println!("all checks passed");
        ExitCode::SUCCESS
    } else {
        println!("{} checks failed", c.failed);
        ExitCode::FAILURE
    }
}

/// Every remote, both ways, each result checked.
async fn checks(
    client: &Client,
    c: &mut Checks,
    heard: &mut mpsc::UnboundedReceiver<String>,
    asked: &mut mpsc::UnboundedReceiver<String>,
) {
    let data = client.invoke(GET_PLAYER_DATA, GetData { name: "carol".into() }).await;
    let expected = PlayerData {
        name: "carol".into(),
        level: 7,
        gold: STARTING_GOLD,
    };
    c.check("client → server call", data.as_ref() == Ok(&expected), &data);

    let bad = client.invoke(GET_PLAYER_DATA, GetData { name: String::new() }).await;
    c.check(
        "request failing validation",
        bad == Err(FunctionError::BadRequest),
        &bad,
    );

    let bought = client
        .invoke(
            BUY,
            Purchase {
                item: "apple".into(),
                price: 5,
            },
        )
        .await;
    c.check("purchase", bought == Ok(STARTING_GOLD - 5), &bought);

    let rejected = client
        .invoke(
            BUY,
            Purchase {
                item: "sword".into(),
                price: 100,
            },
        )
        .await;
    c.check(
        "deliberate rejection",
        rejected == Err(FunctionError::Rejected("not enough gold".into())),
        &rejected,
    );

    let slow = client.invoke(SLOW_SEARCH, "dragons".into()).await;
    c.check("timeout after 500 ms", slow == Err(FunctionError::Timeout), &slow);

    let confirmed = client.invoke(ASK_ME, ()).await;
    let question = asked.try_recv();
    c.check(
        "server → client call",
        confirmed == Ok(true) && question.is_ok(),
        (&confirmed, &question),
    );

    client.fire(CHAT, "hello from the demo client".into()).ok();
    let echo = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match heard.recv().await {
                Some(line) if line.ends_with(": hello from the demo client") => return Some(line),
                Some(_) => continue, // other players' news
                None => return None,
            }
        }
    })
    .await;
    c.check(
        "client → server event, broadcast back",
        matches!(echo, Ok(Some(_))),
        &echo,
    );
}
