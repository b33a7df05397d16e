//! The shape of a payload type, described from serde's data model, so that
//! the handshake refuses a peer built with other payload types.
//!
//! A remote's name says nothing about its types: `ServerFn<u32, u32>` and
//! `ServerFn<String, u32>` named "Buy" would shake hands and then fail call by
//! call. So each remote's request and response types are described here and
//! the description goes into the remotes hash.
//!
//! The description is taken by deserializing the type from a describer (a
//! `serde::Deserializer` that writes down each thing it is asked for and
//! hands out a placeholder), the way `serde-reflection` traces types; that
//! crate only completes enums nested in other types when each is traced by
//! hand, so volley does its own pass. An enum reveals one variant per
//! deserialization, so the type is described again until every variant of
//! every enum met has been seen.
//!
//! What it sees: every primitive, option, sequence, map, tuple and array,
//! struct fields (names and order), enum variants (names, order and
//! contents). Structs and enums are described once per serde name (the type's
//! name without its module path), so the same types moved to another module
//! describe the same; renaming a type, a field or a variant is a change.
//! What it cannot see: types that deserialize through `deserialize_any`
//! (`#[serde(untagged)]`, `#[serde(flatten)]`, self-describing values) or
//! refuse the placeholders; such a type is described by name only, and a
//! warning says so once, when the [`Protocol`](crate::Protocol) is built.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

/// Containers nested deeper than this get no further options, sequence
/// elements or map entries: what recursive types need to end.
const MAX_DEPTH: usize = 24;
/// Past this depth (a recursive enum whose first variant recurses too) the
/// type is not described.
const GIVE_UP_DEPTH: usize = 256;
/// Passes over the type before giving up on enums still unexplored.
const MAX_PASSES: usize = 4096;
/// Longest fixed-size array or tuple described element by element.
const MAX_TUPLE: usize = 4096;

/// A remote's shape for the remotes hash: the descriptions of its payload
/// types, hashed. A type that cannot be described counts as "?" (the remote
/// is then compared by name for it), with a warning.
pub(crate) fn remote_shape(remote: &'static str, types: &[Result<String, String>]) -> u64 {
    let mut all = String::new();
    for described in types {
        match described {
            Ok(shape) => all.push_str(shape),
            Err(why) => {
                tracing::warn!(remote, why = %why, "payload type cannot be described: type changes are not detected at the handshake");
                all.push('?');
            }
        }
        all.push('|');
    }
    volley_proto::stable_hash(all.as_bytes())
}

/// The description of `T`, or why it could not be taken.
pub(crate) fn describe<T: DeserializeOwned>() -> Result<String, String> {
    let mut known = Known::default();
    let mut root = String::new();
    for _ in 0..MAX_PASSES {
        let mut describer = Describer {
            known: &mut known,
            out: String::new(),
            stack: Vec::new(),
        };
        T::deserialize(&mut describer).map_err(|e| e.0)?;
        if root.is_empty() {
            root = describer.out;
        }
        if known.enums.values().all(|e| e.next >= e.variants.len()) {
            return Ok(known.finish(&root));
        }
    }
    Err("enums with too many variants".into())
}

/// What the passes have learned so far.
#[derive(Default)]
struct Known {
    structs: BTreeMap<&'static str, String>,
    enums: BTreeMap<&'static str, EnumShape>,
}

struct EnumShape {
    /// Each variant's name and, once seen, its contents.
    variants: Vec<(&'static str, Option<String>)>,
    /// The next variant to explore.
    next: usize,
}

impl Known {
    fn finish(&self, root: &str) -> String {
        let mut all = format!("{root};");
        for (name, fields) in &self.structs {
            let _ = write!(all, "{name}={fields};");
        }
        for (name, shape) in &self.enums {
            let _ = write!(all, "{name}=enum{{");
            for (index, (variant, contents)) in shape.variants.iter().enumerate() {
                let _ = write!(all, "{index}:{variant}{},", contents.as_deref().unwrap_or("?"));
            }
            all.push_str("};");
        }
        all
    }
}

#[derive(Debug)]
struct ShapeError(String);

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShapeError {}

impl de::Error for ShapeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

type Described<T> = std::result::Result<T, ShapeError>;

struct Describer<'k> {
    known: &'k mut Known,
    /// The description of what is being deserialized, in order.
    out: String,
    /// Structs and enums being described, innermost last.
    stack: Vec<&'static str>,
}

impl Describer<'_> {
    /// Whether options, sequences and maps stop here: inside a type that
    /// contains itself (described once already), or too deep.
    fn deep(&self) -> bool {
        let recursing = self
            .stack
            .last()
            .is_some_and(|last| self.stack[..self.stack.len() - 1].contains(last));
        recursing || self.stack.len() >= MAX_DEPTH
    }

    /// Describes a struct's (or variant's) fields as a sequence of `len`
    /// values, into its own string.
    fn fields<'de, V: Visitor<'de>>(&mut self, names: &[&str], visitor: V) -> Described<(V::Value, String)> {
        let outer = std::mem::take(&mut self.out);
        self.out.push('{');
        for name in names {
            let _ = write!(self.out, "{name}:");
        }
        // The names go first, then each field's shape in order.
        let value = visitor.visit_seq(Elements {
            describer: self,
            left: names.len(),
        })?;
        self.out.push('}');
        let inner = std::mem::replace(&mut self.out, outer);
        Ok((value, inner))
    }

    fn enter(&mut self, name: &'static str) -> Described<()> {
        if self.stack.len() >= GIVE_UP_DEPTH {
            return Err(ShapeError(format!("{name} recurses without end")));
        }
        self.stack.push(name);
        Ok(())
    }
}

/// Hands out `left` elements of a sequence, each described in turn.
struct Elements<'a, 'k> {
    describer: &'a mut Describer<'k>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Elements<'_, '_> {
    type Error = ShapeError;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Described<Option<S::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.describer.out.push('(');
        let value = seed.deserialize(&mut *self.describer)?;
        self.describer.out.push(')');
        Ok(Some(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// Hands out one entry of a map (none when too deep).
struct Entries<'a, 'k> {
    describer: &'a mut Describer<'k>,
    left: bool,
}

impl<'de> de::MapAccess<'de> for Entries<'_, '_> {
    type Error = ShapeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Described<Option<K::Value>> {
        if !std::mem::take(&mut self.left) {
            return Ok(None);
        }
        self.describer.out.push('(');
        let key = seed.deserialize(&mut *self.describer)?;
        self.describer.out.push(')');
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Described<V::Value> {
        self.describer.out.push('(');
        let value = seed.deserialize(&mut *self.describer)?;
        self.describer.out.push(')');
        Ok(value)
    }
}

/// One enum value: variant `index`, its contents described into `contents`.
struct Variant<'a, 'k> {
    describer: &'a mut Describer<'k>,
    index: u32,
}

impl<'de, 'a, 'k> de::EnumAccess<'de> for Variant<'a, 'k> {
    type Error = ShapeError;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Described<(S::Value, Self)> {
        let tag = seed.deserialize(self.index.into_deserializer())?;
        Ok((tag, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, '_> {
    type Error = ShapeError;

    fn unit_variant(self) -> Described<()> {
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Described<S::Value> {
        self.describer.out.push('(');
        let value = seed.deserialize(&mut *self.describer)?;
        self.describer.out.push(')');
        Ok(value)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Described<V::Value> {
        let names = vec![""; len];
        let (value, fields) = self.describer.fields(&names, visitor)?;
        self.describer.out.push_str(&fields);
        Ok(value)
    }

    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Described<V::Value> {
        let (value, described) = self.describer.fields(fields, visitor)?;
        self.describer.out.push_str(&described);
        Ok(value)
    }
}

macro_rules! primitive {
    ($method:ident, $visit:ident, $name:literal, $value:expr) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Described<V::Value> {
            self.out.push_str($name);
            visitor.$visit($value)
        }
    };
}

impl<'de> de::Deserializer<'de> for &mut Describer<'_> {
    type Error = ShapeError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Described<V::Value> {
        Err(ShapeError(
            "a self-describing type (untagged, flattened or any value)".into(),
        ))
    }

    // Placeholders of 1 rather than 0, so non-zero types describe too.
    primitive!(deserialize_bool, visit_bool, "bool", false);
    primitive!(deserialize_i8, visit_i8, "i8", 1);
    primitive!(deserialize_i16, visit_i16, "i16", 1);
    primitive!(deserialize_i32, visit_i32, "i32", 1);
    primitive!(deserialize_i64, visit_i64, "i64", 1);
    primitive!(deserialize_i128, visit_i128, "i128", 1);
    primitive!(deserialize_u8, visit_u8, "u8", 1);
    primitive!(deserialize_u16, visit_u16, "u16", 1);
    primitive!(deserialize_u32, visit_u32, "u32", 1);
    primitive!(deserialize_u64, visit_u64, "u64", 1);
    primitive!(deserialize_u128, visit_u128, "u128", 1);
    primitive!(deserialize_f32, visit_f32, "f32", 1.0);
    primitive!(deserialize_f64, visit_f64, "f64", 1.0);
    primitive!(deserialize_char, visit_char, "char", 'a');
    primitive!(deserialize_str, visit_str, "str", "");
    primitive!(deserialize_string, visit_str, "str", "");
    primitive!(deserialize_bytes, visit_bytes, "bytes", &[]);
    primitive!(deserialize_byte_buf, visit_bytes, "bytes", &[]);
    primitive!(deserialize_identifier, visit_str, "id", "");

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Described<V::Value> {
        self.out.push_str("unit");
        visitor.visit_unit()
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Described<V::Value> {
        self.out.push_str("option");
        if self.deep() {
            return visitor.visit_none();
        }
        visitor.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Described<V::Value> {
        self.out.push_str(name);
        self.known.structs.entry(name).or_insert_with(|| "unit".into());
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Described<V::Value> {
        self.tuple_struct(name, 1, visitor, true)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Described<V::Value> {
        self.out.push_str("seq");
        let left = usize::from(!self.deep());
        visitor.visit_seq(Elements { describer: self, left })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Described<V::Value> {
        if len > MAX_TUPLE {
            return Err(ShapeError(format!("a tuple or array of {len} elements")));
        }
        let _ = write!(self.out, "tuple{len}");
        visitor.visit_seq(Elements {
            describer: self,
            left: len,
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Described<V::Value> {
        self.tuple_struct(name, len, visitor, false)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Described<V::Value> {
        self.out.push_str("map");
        let left = !self.deep();
        visitor.visit_map(Entries { describer: self, left })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Described<V::Value> {
        self.out.push_str(name);
        let recursing = self.stack.contains(&name);
        self.enter(name)?;
        let (value, described) = self.fields(fields, visitor)?;
        self.stack.pop();
        if !recursing {
            self.known.structs.entry(name).or_insert(described);
        }
        Ok(value)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Described<V::Value> {
        self.out.push_str(name);
        let recursing = self.stack.contains(&name);
        let shape = self.known.enums.entry(name).or_insert_with(|| EnumShape {
            variants: variants.iter().map(|v| (*v, None)).collect(),
            next: 0,
        });
        if shape.variants.is_empty() {
            return Err(ShapeError(format!("{name} has no variants")));
        }
        // Inside itself, the first variant (usually the one that ends it);
        // otherwise the next one not yet seen.
        let index = if recursing || shape.next >= shape.variants.len() {
            0
        } else {
            shape.next += 1;
            shape.next - 1
        };
        self.enter(name)?;
        let outer = std::mem::take(&mut self.out);
        let value = visitor.visit_enum(Variant {
            describer: &mut *self,
            index: index as u32,
        })?;
        let contents = std::mem::replace(&mut self.out, outer);
        self.stack.pop();
        if !recursing {
            if let Some(shape) = self.known.enums.get_mut(name) {
                shape.variants[index].1.get_or_insert(contents);
            }
        }
        Ok(value)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Described<V::Value> {
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        // postcard's view of types.
        false
    }
}

impl Describer<'_> {
    fn tuple_struct<'de, V: Visitor<'de>>(
        &mut self,
        name: &'static str,
        len: usize,
        visitor: V,
        newtype: bool,
    ) -> Described<V::Value> {
        self.out.push_str(name);
        let recursing = self.stack.contains(&name);
        self.enter(name)?;
        let names = vec![""; len];
        let (value, described) = if newtype {
            let outer = std::mem::take(&mut self.out);
            self.out.push('(');
            let value = visitor.visit_newtype_struct(&mut *self)?;
            self.out.push(')');
            (value, std::mem::replace(&mut self.out, outer))
        } else {
            self.fields(&names, visitor)?
        };
        self.stack.pop();
        if !recursing {
            self.known.structs.entry(name).or_insert(described);
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::describe;

    mod v1 {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) struct Buy {
            pub item: String,
            pub gold: u32,
            pub kind: Kind,
        }
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) enum Kind {
            Sword,
            Potion { heal: u8 },
            Pack(Vec<Kind>),
        }
    }

    mod moved {
        pub(super) mod deeper {
            #[derive(serde::Deserialize)]
            #[allow(dead_code)]
            pub(in super::super) struct Buy {
                pub item: String,
                pub gold: u32,
                pub kind: Kind,
            }
            #[derive(serde::Deserialize)]
            #[allow(dead_code)]
            pub(in super::super) enum Kind {
                Sword,
                Potion { heal: u8 },
                Pack(Vec<Kind>),
            }
        }
    }

    mod changed_field_type {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) struct Buy {
            pub item: String,
            pub gold: u64,
            pub kind: super::v1::Kind,
        }
    }

    mod added_field {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) struct Buy {
            pub item: String,
            pub gold: u32,
            pub kind: super::v1::Kind,
            pub note: Option<String>,
        }
    }

    mod reordered_enum {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) struct Buy {
            pub item: String,
            pub gold: u32,
            pub kind: Kind,
        }
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) enum Kind {
            Potion { heal: u8 },
            Sword,
            Pack(Vec<Kind>),
        }
    }

    mod changed_nested_variant {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) struct Buy {
            pub item: String,
            pub gold: u32,
            pub kind: Kind,
        }
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) enum Kind {
            Sword,
            Potion { heal: u16 },
            Pack(Vec<Kind>),
        }
    }

    #[test]
    fn structure_counts_and_module_paths_do_not() {
        let original = describe::<v1::Buy>().unwrap();
        assert_eq!(original, describe::<moved::deeper::Buy>().unwrap());
        for (what, other) in [
            ("a changed field type", describe::<changed_field_type::Buy>()),
            ("an added field", describe::<added_field::Buy>()),
            ("a reordered enum", describe::<reordered_enum::Buy>()),
            (
                "a changed variant in a nested enum",
                describe::<changed_nested_variant::Buy>(),
            ),
            ("another type altogether", describe::<String>()),
        ] {
            assert_ne!(original, other.unwrap(), "{what} went unnoticed");
        }
        // Every variant of the nested, recursive enum was seen.
        assert!(original.contains("0:Sword") && original.contains("1:Potion") && original.contains("2:Pack"));
        assert!(!original.contains('?'), "{original}");
    }

    #[test]
    fn common_types_describe_and_self_describing_ones_are_refused() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Tree {
            children: Vec<Tree>,
            label: Option<Box<Tree>>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        #[allow(dead_code)]
        enum Loose {
            A(u32),
            B(String),
        }
        assert!(describe::<Tree>().is_ok());
        assert!(describe::<(u8, [u16; 3], std::collections::HashMap<String, Vec<i64>>)>().is_ok());
        assert!(describe::<std::num::NonZeroU32>().is_ok());
        assert!(describe::<()>().is_ok());
        assert!(describe::<Loose>().is_err());
        assert_ne!(describe::<u32>(), describe::<i32>());
        assert_ne!(describe::<Vec<u8>>(), describe::<Vec<u16>>());
    }
}
