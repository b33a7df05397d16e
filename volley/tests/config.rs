//! Configuration that cannot work is refused when it is built, with the
//! setting named, never later on a connection's task.

mod common;

use std::time::Duration;

use common::*;
use volley::middleware::{ConcurrencyLimit, RateLimit};
use volley::*;

fn panics(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let panic = std::panic::catch_unwind(f).expect_err("expected a panic");
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

#[test]
fn nonsense_limits_are_refused_with_the_setting_named() {
    let field = |c: ServerConfig| c.validate().unwrap_err().field;
    let session = SessionConfig::default;
    assert_eq!(
        field(ServerConfig::default().with_default_timeout(Duration::ZERO)),
        "default_timeout"
    );
    assert_eq!(field(ServerConfig::default().with_max_players(0)), "max_players");
    assert_eq!(field(ServerConfig::default().with_max_handshakes(0)), "max_handshakes");
    let bad_sessions = [
        (session().with_max_frame_len(10), "max_frame_len"),
        (session().with_max_frame_len(usize::MAX), "max_frame_len"),
        (session().with_handshake_timeout(Duration::ZERO), "handshake_timeout"),
        (session().with_idle_timeout(Duration::ZERO), "idle_timeout"),
        (
            session().with_keep_alive_interval(Duration::from_secs(60)),
            "keep_alive_interval",
        ),
        (session().with_max_incoming_calls(0), "max_incoming_calls"),
        (session().with_max_outgoing_calls(0), "max_outgoing_calls"),
        (session().with_max_transmit_queue(0), "max_transmit_queue"),
    ];
    for (bad, name) in bad_sessions {
        assert_eq!(field(ServerConfig::default().with_session(bad.clone())), name);
        assert_eq!(
            ClientConfig::default().with_session(bad).validate().unwrap_err().field,
            name
        );
    }
    // A budget whose burst is smaller than the largest frame could never read it.
    let small_burst = ByteBudget::per_second(1000).with_burst(1000);
    assert_eq!(
        field(ServerConfig::default().with_receive_budget(small_burst)),
        "receive_budget.burst"
    );
    let policy = ReconnectPolicy::default().with_max_attempts(0);
    assert_eq!(
        ClientConfig::default()
            .with_reconnect(policy)
            .validate()
            .unwrap_err()
            .field,
        "reconnect.max_attempts"
    );
    assert!(ServerConfig::default().validate().is_ok() && ClientConfig::default().validate().is_ok());
}

#[test]
fn building_with_nonsense_panics_at_the_call_site() {
    assert!(panics(|| {
        let _ = ByteBudget::per_second(0);
    })
    .contains("per_second(0)"));
    assert!(panics(|| drop(RateLimit::per_second(0.0))).contains("positive"));
    assert!(panics(|| drop(RateLimit::per_second(f64::NAN))).contains("positive"));
    assert!(panics(|| drop(ConcurrencyLimit::new(0))).contains("no call"));
    let message = panics(|| {
        let config = ServerConfig::default().with_session(SessionConfig::default().with_max_incoming_calls(0));
        drop(Server::new(protocol(), config));
    });
    assert_eq!(message, "invalid ServerConfig: max_incoming_calls is zero");
    let message = panics(|| {
        drop(Client::new(
            protocol(),
            ClientConfig::default().with_default_timeout(Duration::ZERO),
        ));
    });
    assert_eq!(message, "invalid ClientConfig: default_timeout is zero");
}

/// Registering for a remote missing from the Protocol panics at the line
/// that registered it, not somewhere inside volley.
#[test]
fn an_undeclared_remote_panics_at_the_callers_line() {
    const MISSING: ServerFn<u32, u32> = ServerFn::new("Missing");
    let location = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = location.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        *seen.lock().unwrap() = info.location().map(|l| l.file().to_string()).unwrap_or_default();
    }));
    let server = Server::new(protocol(), ServerConfig::default());
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        server.on_request_sync(MISSING, |_, n: u32| Ok(n));
    }));
    std::panic::set_hook(previous);
    assert!(caught.is_err());
    assert!(
        location.lock().unwrap().ends_with("tests/config.rs"),
        "{}",
        location.lock().unwrap()
    );
}
