//! What the generator writes for the shapes serde can describe, and what it
//! refuses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use volley::{ClientEvent, Protocol, ServerFn};

#[derive(Serialize, Deserialize)]
enum Expr {
    Num(i64),
    Add(Box<Expr>, Box<Expr>),
    Neg { inner: Box<Expr> },
    Nil,
}

#[derive(Serialize, Deserialize)]
struct Board {
    cells: Vec<u8>,
    owners: BTreeMap<String, u64>,
    note: Option<String>,
    at: (f32, f32),
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Loose {
    A(u32),
    B(String),
}

const EVAL: ServerFn<Expr, i64> = ServerFn::new("Eval");
const BOARD: ClientEvent<Board> = ClientEvent::new("Board");
const LOOSE: ServerFn<Loose, ()> = ServerFn::new("Loose");

#[test]
fn every_shape_gets_its_type_and_descriptor() {
    let protocol = Protocol::builder().remote(EVAL).remote(BOARD).build();
    let module = volley_ts::typescript(&protocol, &volley_ts::Options::default()).unwrap();
    for expected in [
        "export type Expr =",
        "  | { tag: \"Num\"; value: bigint }",
        "  | { tag: \"Add\"; values: [Expr, Expr] }",
        "  | { tag: \"Neg\"; inner: Expr }",
        "  | { tag: \"Nil\" };",
        "  cells: Uint8Array;",
        "  owners: Map<string, bigint>;",
        "  note: string | undefined;",
        "  at: [number, number];",
        "export const EVAL: ServerFn<Expr, bigint> = serverFn(\"Eval\", 1, d.lazy(() => T_Expr), d.i64, undefined);",
        &format!("export const REMOTES_HASH = 0x{:016x}n;", protocol.hash()),
    ] {
        assert!(module.contains(expected), "missing {expected:?} in:\n{module}");
    }
    // Deterministic: the same declarations, the same bytes.
    let again = volley_ts::typescript(&protocol, &volley_ts::Options::default()).unwrap();
    assert_eq!(module, again);
}

#[test]
fn a_type_described_by_name_only_is_refused_with_why() {
    let protocol = Protocol::builder().remote(LOOSE).build();
    let error = volley_ts::typescript(&protocol, &volley_ts::Options::default()).unwrap_err();
    let said = error.to_string();
    assert!(said.contains("Loose") && said.contains("self-describing"), "{said}");
}
