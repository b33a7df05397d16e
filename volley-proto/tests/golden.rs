//! The golden byte strings of PROTOCOL.md, checked against the codec: the
//! document and the code cannot drift apart.

use volley_proto::*;

/// Every message PROTOCOL.md shows, by the name it gives it.
fn messages() -> Vec<(&'static str, Message<&'static [u8]>)> {
    vec![
        (
            "hello v3, hash 0x0123456789abcdef, token \"tk\"",
            Message::Hello {
                version: PROTOCOL_VERSION,
                remotes_hash: 0x0123_4567_89ab_cdef,
                token: b"tk",
            },
        ),
        ("welcome player 300", Message::Welcome { player: 300 }),
        (
            "refuse RemotesMismatch \"no\"",
            Message::Refuse {
                code: RefuseCode::RemotesMismatch,
                message: "no".into(),
            },
        ),
        (
            "event remote 2, payload 05",
            Message::Event {
                remote: 2,
                payload: &[5],
            },
        ),
        (
            "request id 3, remote 1, payload 2a",
            Message::Request {
                id: 3,
                remote: 1,
                payload: &[0x2a],
            },
        ),
        (
            "request id 300, remote 1, payload 2a",
            Message::Request {
                id: 300,
                remote: 1,
                payload: &[0x2a],
            },
        ),
        (
            "response id 3 ok, payload 2b",
            Message::Response {
                id: 3,
                status: Status::Ok,
                payload: &[0x2b],
            },
        ),
        (
            "response id 3 rejected \"no gold\"",
            Message::Response {
                id: 3,
                status: Status::Rejected,
                payload: b"no gold",
            },
        ),
        (
            "response id 3 overloaded",
            Message::Response {
                id: 3,
                status: Status::Overloaded,
                payload: &[],
            },
        ),
        ("cancel id 3", Message::Cancel { id: 3 }),
        ("ping seq 1", Message::Ping { seq: 1 }),
        ("pong seq 1", Message::Pong { seq: 1 }),
        (
            "goodbye Kicked \"bye\"",
            Message::Goodbye {
                code: GoodbyeCode::Kicked,
                message: "bye".into(),
            },
        ),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// The `name | hex` lines of PROTOCOL.md's golden blocks.
fn documented() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../PROTOCOL.md")).unwrap();
    let mut lines = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        match line.trim() {
            "```golden" => inside = true,
            "```" => inside = false,
            entry if inside && !entry.is_empty() => {
                let (name, bytes) = entry.split_once('|').expect("a golden line is `name | hex`");
                lines.push((name.trim().to_string(), bytes.trim().to_string()));
            }
            _ => {}
        }
    }
    lines
}

fn documented_hex(name: &str) -> String {
    documented()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("PROTOCOL.md has no golden line for {name:?}"))
        .1
}

#[test]
fn every_documented_frame_is_what_the_codec_writes_and_reads() {
    for (name, message) in messages() {
        let mut frame = Vec::new();
        message.encode(&mut frame);
        assert_eq!(
            documented_hex(name),
            hex(&frame),
            "{name}: PROTOCOL.md and the codec disagree"
        );
        let mut buf = bytes::BytesMut::from(&frame[..]);
        let decoded = codec::decode_frame(&mut buf, 1 << 20).unwrap().unwrap();
        let mut again = Vec::new();
        decoded.encode(&mut again);
        assert_eq!(again, frame, "{name} does not decode to itself");
    }
    // And nothing documented is left unchecked.
    let names: Vec<_> = messages().into_iter().map(|(n, _)| n).collect();
    for (name, _) in documented() {
        assert!(
            names.contains(&name.as_str()) || name.starts_with("remotes hash"),
            "PROTOCOL.md shows {name:?}, which no test checks"
        );
    }
}

#[test]
fn the_documented_remotes_hash_is_the_tables() {
    let table = RemoteTable::new(vec![
        RemoteSpec {
            name: "Buy",
            kind: RemoteKind::Function,
            direction: Direction::ToServer,
            shape: 0,
        },
        RemoteSpec {
            name: "News",
            kind: RemoteKind::Event,
            direction: Direction::ToClient,
            shape: 0,
        },
    ])
    .unwrap();
    assert_eq!(
        documented_hex("remotes hash Buy+News"),
        format!("{:016x}", table.hash())
    );
}
