//! The byte-for-byte cross-check of the TypeScript codec against Rust's
//! postcard, driven by the TypeScript tests (`clients/typescript/test/codec.test.ts`).
//!
//! ```text
//! cargo run -p volley-net-ts --example codec_corpus -- generate-module   # writes the test's TypeScript module
//! cargo run -p volley-net-ts --example codec_corpus -- check-module      # fails if it is stale
//! cargo run -p volley-net-ts --example codec_corpus -- sample 500        # 500 random values (proptest), hex per line
//! cargo run -p volley-net-ts --example codec_corpus -- reencode          # hex lines in: each decoded and encoded again, out
//! ```
//!
//! `Everything` holds every kind of shape the generator maps, and the demo's
//! payload types.

#[path = "../../volley/examples/shared/protocol.rs"]
mod demo;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde::{Deserialize, Serialize};
use volley::{Protocol, ServerFn};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Circle(f64),
    Pair(i16, Option<String>),
    Rect { w: u32, h: u32, tags: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Meters(f32);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Marker;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Everything {
    flag: bool,
    small: u8,
    medium: u16,
    word: u32,
    wide: u64,
    huge: u128,
    tiny: i8,
    short: i16,
    int: i32,
    long: i64,
    vast: i128,
    single: f32,
    double: f64,
    letter: char,
    text: String,
    blob: Vec<u8>,
    maybe: Option<i32>,
    list: Vec<String>,
    table: BTreeMap<String, u64>,
    pair: (u8, String),
    shapes: Vec<Shape>,
    meters: Meters,
    marker: Marker,
    nothing: (),
    player: demo::PlayerData,
    purchase: demo::Purchase,
    confirm: demo::Confirm,
}

const ROUND_TRIP: ServerFn<Everything, Everything> = ServerFn::new("RoundTrip");
const MODULE: &str = "clients/typescript/test/corpus_protocol.ts";

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Empty),
        (-1e9f64..1e9).prop_map(Shape::Circle),
        (any::<i16>(), proptest::option::of(".{0,8}")).prop_map(|(a, b)| Shape::Pair(a, b)),
        (any::<u32>(), any::<u32>(), proptest::collection::vec(".{0,6}", 0..3)).prop_map(|(w, h, tags)| Shape::Rect {
            w,
            h,
            tags
        }),
    ]
}

fn everything() -> impl Strategy<Value = Everything> {
    let numbers = (
        any::<bool>(),
        any::<u8>(),
        any::<u16>(),
        any::<u32>(),
        any::<u64>(),
        any::<u128>(),
        any::<i8>(),
        any::<i16>(),
        any::<i32>(),
        any::<i64>(),
        any::<i128>(),
    );
    let rest = (
        -1e30f32..1e30,
        -1e300f64..1e300,
        any::<char>(),
        ".{0,24}",
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::option::of(any::<i32>()),
        proptest::collection::vec(".{0,8}", 0..4),
        proptest::collection::btree_map(".{0,6}", any::<u64>(), 0..4),
        (any::<u8>(), ".{0,6}"),
        proptest::collection::vec(shape(), 0..4),
        -1e6f32..1e6,
    );
    let demo = (
        ".{0,12}",
        any::<u32>(),
        any::<u32>(),
        ".{0,12}",
        any::<u32>(),
        any::<bool>(),
    );
    (numbers, rest, demo).prop_map(|(n, r, d)| Everything {
        flag: n.0,
        small: n.1,
        medium: n.2,
        word: n.3,
        wide: n.4,
        huge: n.5,
        tiny: n.6,
        short: n.7,
        int: n.8,
        long: n.9,
        vast: n.10,
        single: r.0,
        double: r.1,
        letter: r.2,
        text: r.3,
        blob: r.4,
        maybe: r.5,
        list: r.6,
        table: r.7,
        pair: r.8,
        shapes: r.9,
        meters: Meters(r.10),
        marker: Marker,
        nothing: (),
        player: demo::PlayerData {
            name: d.0,
            level: d.1,
            gold: d.2,
        },
        purchase: demo::Purchase { item: d.3, price: d.4 },
        confirm: demo::Confirm { confirmed: d.5 },
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or("odd hex")?, 16).map_err(|e| e.to_string()))
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(MODULE);
    let module = || {
        let protocol = Protocol::builder().remote(ROUND_TRIP).build();
        volley_ts::typescript(
            &protocol,
            &volley_ts::Options::default().with_runtime("../src/index.js"),
        )
    };
    match args.get(1).map(String::as_str) {
        Some("generate-module") => std::fs::write(&out, module()?)?,
        Some("check-module") => {
            if std::fs::read_to_string(&out).unwrap_or_default() != module()? {
                return Err(format!("{MODULE} is stale: run this example with generate-module").into());
            }
        }
        Some("sample") => {
            let count: usize = args.get(2).map_or(Ok(200), |n| n.parse())?;
            let mut runner = TestRunner::deterministic();
            let strategy = everything();
            for _ in 0..count {
                let value = strategy.new_tree(&mut runner).map_err(|e| e.to_string())?.current();
                println!("{}", hex(&postcard::to_stdvec(&value)?));
            }
        }
        Some("reencode") => {
            for line in std::io::stdin().lock().lines() {
                let bytes = unhex(line?.trim())?;
                let value: Everything = postcard::from_bytes(&bytes)?;
                println!("{}", hex(&postcard::to_stdvec(&value)?));
            }
        }
        _ => return Err("usage: codec_corpus generate-module|check-module|sample N|reencode".into()),
    }
    Ok(())
}
