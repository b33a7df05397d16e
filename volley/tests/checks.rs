//! Checks given to the protocol: closures that capture configuration, run
//! after the declared check, at the receiver (requests, events) or at the
//! caller (responses).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use volley::*;

fn not_blank(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        Err("blank".into())
    } else {
        Ok(())
    }
}

// A capture-free closure coerces to the declared check's `fn`, so a `String`
// payload can be checked by a function taking `&str`.
const RENAME: ServerFn<String, String> = ServerFn::new("Rename").with_request_check(|name| not_blank(name));
const SAY: ServerEvent<String> = ServerEvent::new("Say").with_check(|line| not_blank(line));
const SCORE: ServerFn<u32, u32> = ServerFn::new("Score");

/// What a game would read from its settings at start-up.
struct Settings {
    max_name: usize,
    max_line: usize,
    max_score: u32,
}

fn protocol(settings: &Settings) -> Protocol {
    let (max_name, max_line, max_score) = (settings.max_name, settings.max_line, settings.max_score);
    Protocol::builder()
        .remote(RENAME)
        .check_request(RENAME, move |name: &String| {
            if name.chars().count() <= max_name {
                Ok(())
            } else {
                Err(format!("a name of {} chars", name.chars().count()))
            }
        })
        // Not listed with `remote`: the check lists it.
        .check_event(SAY, move |line: &String| {
            if line.len() <= max_line {
                Ok(())
            } else {
                Err(format!("a line of {} bytes", line.len()))
            }
        })
        .check_response(SCORE, move |score: &u32| {
            if *score <= max_score {
                Ok(())
            } else {
                Err(format!("a score of {score}"))
            }
        })
        // A second check of the same remote: both run.
        .check_request(RENAME, |name: &String| {
            if name.contains('@') {
                Err("an @ in a name".into())
            } else {
                Ok(())
            }
        })
        .build()
}

#[tokio::test]
async fn checks_given_to_the_protocol_use_configuration() {
    let settings = Settings {
        max_name: 8,
        max_line: 20,
        max_score: 100,
    };
    let server = Server::new(protocol(&settings), ServerConfig::default());
    server.on_request_sync(RENAME, |_, name: String| Ok(format!("renamed to {name}")));
    // Echoes the score, so the client's response check is what refuses it.
    server.on_request_sync(SCORE, |_, score: u32| Ok(score));
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    server.on_event(SAY, move |_, line: String| {
        let _ = lines_tx.send(line);
    });
    let bad = Arc::new(Mutex::new(Vec::new()));
    let seen = bad.clone();
    server.on_bad_request(move |_, input| seen.lock().unwrap().push(input.reason.clone()));
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();

    let client = Client::new(protocol(&settings), ClientConfig::default());
    let bad_responses = Arc::new(Mutex::new(Vec::new()));
    let seen = bad_responses.clone();
    client.on_bad_response(move |_, input| seen.lock().unwrap().push(input.reason.clone()));
    client.connect_tcp(addr).await.unwrap();

    let rename = |name: &str| client.invoke(RENAME, name.to_string());
    assert_eq!(rename("ada").await, Ok("renamed to ada".into()));
    // The declared check, then each of the protocol's.
    assert_eq!(rename("   ").await, Err(FunctionError::BadRequest));
    assert_eq!(rename("a long name").await, Err(FunctionError::BadRequest));
    assert_eq!(rename("a@b").await, Err(FunctionError::BadRequest));

    client.fire(SAY, "hello".into()).unwrap();
    client.fire(SAY, "a line well over twenty bytes".into()).unwrap();
    client.fire(SAY, " ".into()).unwrap();
    client.fire(SAY, "bye".into()).unwrap();
    let received = [lines.recv().await.unwrap(), lines.recv().await.unwrap()];
    assert_eq!(received, ["hello".to_string(), "bye".to_string()]);

    assert_eq!(client.invoke(SCORE, 100).await, Ok(100));
    assert_eq!(client.invoke(SCORE, 101).await, Err(FunctionError::InvalidResult));

    let reasons = bad.lock().unwrap().clone();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    for (reason, expected) in reasons.iter().zip([
        "blank",
        "a name of 11 chars",
        "an @ in a name",
        "a line of 29 bytes",
        "blank",
    ]) {
        assert!(reason.contains(expected), "{reason:?} should say {expected:?}");
    }
    assert!(bad_responses.lock().unwrap()[0].contains("a score of 101"));
    // Nothing else arrived.
    assert!(tokio::time::timeout(Duration::from_millis(50), lines.recv())
        .await
        .is_err());
}
