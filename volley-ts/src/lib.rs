//! TypeScript for a volley client, generated from the game's Rust
//! [`Protocol`]: the one source of truth for the server, the Rust client and
//! a browser or Node client (`clients/typescript` in volley's repository).
//!
//! ```no_run
//! # fn protocol() -> volley::Protocol { unimplemented!() }
//! let module = volley_ts::typescript(&protocol(), &volley_ts::Options::default()).unwrap();
//! std::fs::write("src/protocol.ts", module).unwrap();
//! ```
//!
//! The module holds every payload type as TypeScript types, the descriptors
//! the TypeScript runtime encodes and decodes them with (postcard), every
//! remote as a typed constant, and the remotes hash the handshake compares.
//! The types are read from the shape descriptions the remotes hash is made
//! of ([`Protocol::remotes`]), so what a TypeScript client sends and the
//! hash it presents cannot disagree.
//!
//! | Rust (serde) | TypeScript |
//! |---|---|
//! | struct | `interface` |
//! | tuple struct, tuple, array | tuple `[A, B]` |
//! | newtype struct | the inner type |
//! | unit, unit struct | `null` |
//! | enum | union tagged by `tag`: `{ tag: "Unit" }`, `{ tag: "New"; value: T }`, `{ tag: "Tuple"; values: [A, B] }`, `{ tag: "Struct"; field: T }` |
//! | `Option<T>` | `T \| undefined` |
//! | `Vec<T>`, slices, sets | `T[]` |
//! | `Vec<u8>`, `serde_bytes` | `Uint8Array` |
//! | maps | `Map<K, V>` |
//! | `u64`, `i64`, `u128`, `i128` | `bigint` |
//! | other integers, floats | `number` |
//! | `char`, `String` | `string` |
//!
//! Refused, with the type and why: types volley describes by name only
//! (`#[serde(untagged)]`, `#[serde(flatten)]`, self-describing values),
//! names that are not identifiers, and an enum variant with a field named
//! `tag`.

mod emit;
mod shape;

use volley::Protocol;

pub use emit::Options;

/// Why a protocol could not be turned into TypeScript.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// A payload type of `remote` cannot be expressed; `why` names the type.
    #[error("remote {remote:?}: {why}")]
    Unsupported {
        /// The remote's declared name.
        remote: String,
        /// What could not be expressed, and why.
        why: String,
    },
}

/// The TypeScript module for `protocol`: deterministic (the same
/// declarations give the same bytes) and formatted.
pub fn typescript(protocol: &Protocol, options: &Options) -> Result<String, GenerateError> {
    emit::module(protocol, options)
}
