//! Writes the TypeScript module: types, descriptors, remotes, hash.

use std::collections::HashMap;
use std::fmt::Write as _;

use volley::remote::{Direction, RemoteKind};
use volley::Protocol;

use crate::shape::{self, Body, Fields, Prim, Shape};
use crate::GenerateError;

/// How the module is written.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Where the module imports the TypeScript runtime from. Default:
    /// `"volley-net-client"`, the npm package.
    pub runtime: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            runtime: "volley-net-client".into(),
        }
    }
}

impl Options {
    /// Imports the runtime from `path` (a relative path inside a repository).
    pub fn with_runtime(mut self, path: impl Into<String>) -> Self {
        self.runtime = path.into();
        self
    }
}

/// Names the module takes from TypeScript or the runtime: a Rust type of
/// the same name gets a `_` appended.
const TAKEN: &[&str] = &[
    "Array",
    "BigInt",
    "Boolean",
    "ClientEvent",
    "ClientFn",
    "Date",
    "Desc",
    "Error",
    "Map",
    "Number",
    "Object",
    "Promise",
    "ProtocolInfo",
    "ServerEvent",
    "ServerFn",
    "Set",
    "String",
    "Symbol",
    "Uint8Array",
    "clientEvent",
    "clientFn",
    "d",
    "serverEvent",
    "serverFn",
];

/// Every struct and enum of every remote, each once.
#[derive(Default)]
struct Registry {
    types: Vec<Global>,
    by_key: HashMap<String, usize>,
    names: HashMap<String, usize>,
}

struct Global {
    name: String,
    body: Body,
}

impl Registry {
    /// Adds a description's types; returns its root with global refs.
    fn add(&mut self, described: shape::Description) -> Shape {
        let names: Vec<String> = described.types.iter().map(|t| t.name.clone()).collect();
        let mut local = Vec::new();
        let mut fresh = Vec::new();
        for named in &described.types {
            let key = format!("{}={}", named.name, body_key(&named.body, &names));
            let next = self.types.len() + fresh.len();
            let global = *self.by_key.entry(key).or_insert_with(|| {
                fresh.push(named.clone());
                next
            });
            local.push(global);
        }
        for named in fresh {
            let name = self.unique_name(&named.name);
            let body = remap_body(&named.body, &local);
            self.types.push(Global { name, body });
        }
        remap(&described.root, &local)
    }

    fn unique_name(&mut self, name: &str) -> String {
        let mut base = name.to_string();
        while TAKEN.contains(&base.as_str()) {
            base.push('_');
        }
        let count = self.names.entry(base.clone()).or_default();
        *count += 1;
        if *count == 1 {
            base
        } else {
            format!("{base}{count}")
        }
    }
}

/// A body with its references named, not numbered: the same type reads
/// the same in every description.
fn body_key(body: &Body, names: &[String]) -> String {
    let mut key = String::new();
    let shape = |s: &Shape, key: &mut String| shape_key(s, names, key);
    let fields = |f: &Fields, key: &mut String| match f {
        Fields::Unit => key.push_str("unit"),
        Fields::Newtype(s) => {
            key.push('(');
            shape(s, key);
            key.push(')');
        }
        Fields::Tuple(shapes) => {
            key.push('[');
            shapes.iter().for_each(|s| {
                shape(s, key);
                key.push(',');
            });
            key.push(']');
        }
        Fields::Named(named) => {
            key.push('{');
            named.iter().for_each(|(n, s)| {
                let _ = write!(key, "{n}:");
                shape(s, key);
                key.push(',');
            });
            key.push('}');
        }
    };
    match body {
        Body::Struct(f) => fields(f, &mut key),
        Body::Enum(variants) => {
            key.push_str("enum{");
            for (name, f) in variants {
                let _ = write!(key, "{name}");
                fields(f, &mut key);
                key.push(',');
            }
            key.push('}');
        }
    }
    key
}

fn shape_key(shape: &Shape, names: &[String], key: &mut String) {
    match shape {
        Shape::Prim(p) => key.push_str(p.name()),
        Shape::Unit => key.push_str("unit"),
        Shape::Option(s) => {
            key.push_str("option(");
            shape_key(s, names, key);
            key.push(')');
        }
        Shape::Seq(s) => {
            key.push_str("seq(");
            shape_key(s, names, key);
            key.push(')');
        }
        Shape::Map(k, v) => {
            key.push_str("map(");
            shape_key(k, names, key);
            key.push(',');
            shape_key(v, names, key);
            key.push(')');
        }
        Shape::Tuple(shapes) => {
            key.push_str("tuple(");
            for s in shapes {
                shape_key(s, names, key);
                key.push(',');
            }
            key.push(')');
        }
        Shape::Ref(i) => key.push_str(names.get(*i).map_or("?", String::as_str)),
    }
}

fn remap(shape: &Shape, local: &[usize]) -> Shape {
    match shape {
        Shape::Ref(i) => Shape::Ref(local.get(*i).copied().unwrap_or(usize::MAX)),
        Shape::Option(s) => Shape::Option(Box::new(remap(s, local))),
        Shape::Seq(s) => Shape::Seq(Box::new(remap(s, local))),
        Shape::Map(k, v) => Shape::Map(Box::new(remap(k, local)), Box::new(remap(v, local))),
        Shape::Tuple(shapes) => Shape::Tuple(shapes.iter().map(|s| remap(s, local)).collect()),
        other => other.clone(),
    }
}

fn remap_fields(fields: &Fields, local: &[usize]) -> Fields {
    match fields {
        Fields::Unit => Fields::Unit,
        Fields::Newtype(s) => Fields::Newtype(remap(s, local)),
        Fields::Tuple(shapes) => Fields::Tuple(shapes.iter().map(|s| remap(s, local)).collect()),
        Fields::Named(named) => Fields::Named(named.iter().map(|(n, s)| (n.clone(), remap(s, local))).collect()),
    }
}

fn remap_body(body: &Body, local: &[usize]) -> Body {
    match body {
        Body::Struct(f) => Body::Struct(remap_fields(f, local)),
        Body::Enum(variants) => Body::Enum(
            variants
                .iter()
                .map(|(n, f)| (n.clone(), remap_fields(f, local)))
                .collect(),
        ),
    }
}

/// One remote, its payload types resolved.
struct Remote {
    constant: String,
    name: &'static str,
    id: u32,
    kind: RemoteKind,
    direction: Direction,
    timeout_ms: Option<u128>,
    types: Vec<Shape>,
}

pub(crate) fn module(protocol: &Protocol, options: &Options) -> Result<String, GenerateError> {
    let mut registry = Registry::default();
    let mut remotes = Vec::new();
    for info in protocol.remotes() {
        let unsupported = |why: String| GenerateError::Unsupported {
            remote: info.name.to_string(),
            why,
        };
        let mut types = Vec::new();
        for described in &info.types {
            let text = described.as_ref().map_err(|why| unsupported(why.clone()))?;
            let parsed = shape::parse(text).map_err(|e| unsupported(format!("its description {text:?}, {e}")))?;
            check_tags(&parsed).map_err(unsupported)?;
            types.push(registry.add(parsed));
        }
        remotes.push(Remote {
            constant: constant_name(info.name),
            name: info.name,
            id: info.id,
            kind: info.kind,
            direction: info.direction,
            timeout_ms: info.timeout.map(|t| t.as_millis()),
            types,
        });
    }
    Ok(write_module(&registry, &remotes, protocol.hash(), options))
}

/// An enum variant with a field named `tag` would clash with the tag.
fn check_tags(described: &shape::Description) -> Result<(), String> {
    for named in &described.types {
        if let Body::Enum(variants) = &named.body {
            for (variant, fields) in variants {
                if let Fields::Named(fields) = fields {
                    if fields.iter().any(|(n, _)| n == "tag") {
                        return Err(format!(
                            "{}::{variant} has a field named `tag`, which is the variant's tag in TypeScript",
                            named.name
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// `GetPlayerData` → `GET_PLAYER_DATA`.
fn constant_name(name: &str) -> String {
    let mut out = String::new();
    let mut previous: Option<char> = None;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            out.push('_');
        } else {
            if c.is_uppercase() && previous.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit()) {
                out.push('_');
            }
            out.extend(c.to_uppercase());
        }
        previous = Some(c);
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn write_module(registry: &Registry, remotes: &[Remote], hash: u64, options: &Options) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// Generated by volley-net-ts from the Rust declarations of the protocol. Do not edit:\n\
         // change the Rust declarations and generate again.\n"
    );
    // Only what the module uses: a strict project may refuse unused imports.
    let kinds: Vec<(&str, &str)> = remotes.iter().map(|r| kind_of(r)).collect();
    let mut values: Vec<&str> = vec!["d"];
    let mut types: Vec<&str> = Vec::new();
    if !registry.types.is_empty() {
        types.push("Desc");
    }
    for (kind, maker) in [
        ("ServerFn", "serverFn"),
        ("ClientFn", "clientFn"),
        ("ServerEvent", "serverEvent"),
        ("ClientEvent", "clientEvent"),
    ] {
        if kinds.iter().any(|(k, _)| *k == kind) {
            values.push(maker);
            types.push(kind);
        }
    }
    values.push("protocolOf");
    let _ = writeln!(out, "import {{ {} }} from \"{}\";", values.join(", "), options.runtime);
    if !types.is_empty() {
        let _ = writeln!(
            out,
            "import type {{ {} }} from \"{}\";",
            types.join(", "),
            options.runtime
        );
    }
    out.push('\n');
    let _ = writeln!(out, "/** The remotes hash the handshake compares. */");
    let _ = writeln!(out, "export const REMOTES_HASH = 0x{hash:016x}n;\n");
    for global in &registry.types {
        write_type(&mut out, registry, global);
    }
    for global in &registry.types {
        let _ = writeln!(
            out,
            "const T_{0}: Desc<{0}> = {1};",
            global.name,
            body_desc(registry, &global.body)
        );
    }
    if !registry.types.is_empty() {
        out.push('\n');
    }
    for remote in remotes {
        write_remote(&mut out, registry, remote);
    }
    let _ = writeln!(out, "\n/** Every remote, for `connect`. */");
    let list: Vec<&str> = remotes.iter().map(|r| r.constant.as_str()).collect();
    let _ = writeln!(
        out,
        "export const PROTOCOL = protocolOf(REMOTES_HASH, [{}]);",
        list.join(", ")
    );
    out
}

fn write_type(out: &mut String, registry: &Registry, global: &Global) {
    let name = &global.name;
    match &global.body {
        Body::Struct(Fields::Named(fields)) => {
            let _ = writeln!(out, "export interface {name} {{");
            for (field, shape) in fields {
                let _ = writeln!(out, "  {field}: {};", ts(registry, shape));
            }
            let _ = writeln!(out, "}}\n");
        }
        Body::Struct(Fields::Unit) => {
            let _ = writeln!(out, "export type {name} = null;\n");
        }
        Body::Struct(Fields::Newtype(shape)) => {
            let _ = writeln!(out, "export type {name} = {};\n", ts(registry, shape));
        }
        Body::Struct(Fields::Tuple(shapes)) => {
            let _ = writeln!(out, "export type {name} = {};\n", ts_tuple(registry, shapes));
        }
        Body::Enum(variants) => {
            let _ = writeln!(out, "export type {name} =");
            for (index, (variant, fields)) in variants.iter().enumerate() {
                let end = if index + 1 == variants.len() { ";" } else { "" };
                let contents = match fields {
                    Fields::Unit => String::new(),
                    Fields::Newtype(shape) => format!("; value: {}", ts(registry, shape)),
                    Fields::Tuple(shapes) => format!("; values: {}", ts_tuple(registry, shapes)),
                    Fields::Named(named) => named
                        .iter()
                        .map(|(n, s)| format!("; {n}: {}", ts(registry, s)))
                        .collect(),
                };
                let _ = writeln!(out, "  | {{ tag: \"{variant}\"{contents} }}{end}");
            }
            out.push('\n');
        }
    }
}

fn write_remote(out: &mut String, registry: &Registry, remote: &Remote) {
    let (kind, maker) = kind_of(remote);
    let generics: Vec<String> = remote.types.iter().map(|s| ts(registry, s)).collect();
    let descs: Vec<String> = remote.types.iter().map(|s| desc(registry, s)).collect();
    let last = match remote.kind {
        RemoteKind::Function => remote.timeout_ms.map_or("undefined".to_string(), |ms| ms.to_string()),
        RemoteKind::UnreliableEvent => "true".into(),
        _ => "false".into(),
    };
    let _ = writeln!(
        out,
        "export const {}: {kind}<{}> = {maker}(\"{}\", {}, {}, {last});",
        remote.constant,
        generics.join(", "),
        remote.name,
        remote.id,
        descs.join(", ")
    );
}

/// The runtime's type and maker of a remote.
fn kind_of(remote: &Remote) -> (&'static str, &'static str) {
    match (remote.kind, remote.direction) {
        (RemoteKind::Function, Direction::ToServer) => ("ServerFn", "serverFn"),
        (RemoteKind::Function, _) => ("ClientFn", "clientFn"),
        (_, Direction::ToServer) => ("ServerEvent", "serverEvent"),
        _ => ("ClientEvent", "clientEvent"),
    }
}

fn ts_tuple(registry: &Registry, shapes: &[Shape]) -> String {
    let parts: Vec<String> = shapes.iter().map(|s| ts(registry, s)).collect();
    format!("[{}]", parts.join(", "))
}

/// The TypeScript type of a shape.
fn ts(registry: &Registry, shape: &Shape) -> String {
    match shape {
        Shape::Prim(p) => match p {
            Prim::Bool => "boolean".into(),
            Prim::I64 | Prim::U64 | Prim::I128 | Prim::U128 => "bigint".into(),
            Prim::Char | Prim::Str => "string".into(),
            Prim::Bytes => "Uint8Array".into(),
            _ => "number".into(),
        },
        Shape::Unit => "null".into(),
        Shape::Option(inner) => format!("{} | undefined", ts(registry, inner)),
        Shape::Seq(inner) if **inner == Shape::Prim(Prim::U8) => "Uint8Array".into(),
        Shape::Seq(inner) => format!("Array<{}>", ts(registry, inner)),
        Shape::Map(k, v) => format!("Map<{}, {}>", ts(registry, k), ts(registry, v)),
        Shape::Tuple(shapes) => ts_tuple(registry, shapes),
        Shape::Ref(i) => registry.types[*i].name.clone(),
    }
}

/// The runtime descriptor of a shape.
fn desc(registry: &Registry, shape: &Shape) -> String {
    match shape {
        Shape::Prim(p) => format!("d.{}", p.name()),
        Shape::Unit => "d.unit".into(),
        Shape::Option(inner) => format!("d.option({})", desc(registry, inner)),
        Shape::Seq(inner) if **inner == Shape::Prim(Prim::U8) => "d.bytes".into(),
        Shape::Seq(inner) => format!("d.seq({})", desc(registry, inner)),
        Shape::Map(k, v) => format!("d.map({}, {})", desc(registry, k), desc(registry, v)),
        Shape::Tuple(shapes) => format!("d.tuple([{}])", descs(registry, shapes)),
        // Late: a type may refer to one declared after it, or to itself.
        Shape::Ref(i) => format!("d.lazy(() => T_{})", registry.types[*i].name),
    }
}

fn descs(registry: &Registry, shapes: &[Shape]) -> String {
    shapes.iter().map(|s| desc(registry, s)).collect::<Vec<_>>().join(", ")
}

fn named_descs(registry: &Registry, named: &[(String, Shape)]) -> String {
    named
        .iter()
        .map(|(n, s)| format!("[\"{n}\", {}]", desc(registry, s)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn body_desc(registry: &Registry, body: &Body) -> String {
    match body {
        Body::Struct(Fields::Unit) => "d.unit".into(),
        Body::Struct(Fields::Newtype(shape)) => desc(registry, shape),
        Body::Struct(Fields::Tuple(shapes)) => format!("d.tuple([{}])", descs(registry, shapes)),
        Body::Struct(Fields::Named(named)) => format!("d.struct([{}])", named_descs(registry, named)),
        Body::Enum(variants) => {
            let variants: Vec<String> = variants
                .iter()
                .map(|(name, fields)| match fields {
                    Fields::Unit => format!("[\"{name}\", d.variantUnit]"),
                    Fields::Newtype(s) => format!("[\"{name}\", d.variantNewtype({})]", desc(registry, s)),
                    Fields::Tuple(shapes) => {
                        format!("[\"{name}\", d.variantTuple([{}])]", descs(registry, shapes))
                    }
                    Fields::Named(named) => {
                        format!("[\"{name}\", d.variantStruct([{}])]", named_descs(registry, named))
                    }
                })
                .collect();
            format!("d.enum([{}])", variants.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::constant_name;

    #[test]
    fn constants_are_screaming_snake_case() {
        assert_eq!(constant_name("GetPlayerData"), "GET_PLAYER_DATA");
        assert_eq!(constant_name("Buy"), "BUY");
        assert_eq!(constant_name("match:join"), "MATCH_JOIN");
        assert_eq!(constant_name("v2Thing"), "V2_THING");
    }
}
