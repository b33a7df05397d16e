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
//! contents), however deeply nested.
//!
//! Which struct or enum is which: serde gives only a type's bare name, which
//! two instances of one generic type (`Page<u32>`, `Page<String>`) and two
//! types in different modules (`combat::Stats`, `economy::Stats`) share. So a
//! type is told apart by the Rust type of the visitor its `Deserialize` hands
//! over (`std::any::type_name`, generic arguments included), and each is
//! described on its own. The description names a type by its serde name and
//! the order in which it was first met (`Page#1`, `Page#2`), never by its
//! module path: the same types moved to another module describe the same;
//! renaming a type, a field or a variant is a change.
//!
//! Recursive types: inside itself, a type is a reference to its one
//! description, and the describer only needs *some* finite value of it to
//! carry on: no element for a sequence, map or option, and for an enum a
//! variant that ends (one seen to finish without containing the enum again;
//! until one is known, each variant is tried in turn).
//!
//! What it cannot see: types that deserialize through `deserialize_any`
//! (`#[serde(untagged)]`, `#[serde(flatten)]`, self-describing values), types
//! that refuse the placeholders, enums without a variant that ends, and
//! types nested more than [`MAX_DEPTH`] levels deep (only a hand-written
//! `Deserialize` gets there). Such a type is described by name only, and a
//! warning naming the type and the reason is logged once, when the
//! [`Protocol`](crate::Protocol) is built.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

/// Structs and enums nested deeper than this are not described. Derived
/// types never get there (a recursive type is a reference inside itself, and
/// a generic type that contains itself with other arguments does not
/// compile); it bounds what a hand-written `Deserialize` can ask for.
const MAX_DEPTH: usize = 128;
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

/// The description of `T`, or which type could not be described and why.
pub(crate) fn describe<T: DeserializeOwned>() -> Result<String, String> {
    let mut known = Known::default();
    let mut root = None;
    for _ in 0..MAX_PASSES {
        let mut describer = Describer {
            known: &mut known,
            out: String::new(),
            stack: Vec::new(),
            guesses: Vec::new(),
        };
        match T::deserialize(&mut describer) {
            Ok(_) => {}
            Err(ShapeError::Retry(guessed)) => {
                known.guess_again(guessed)?;
                continue;
            }
            Err(ShapeError::Refused(why)) => return Err(describer.at(&why)),
        }
        let out = describer.out;
        let root = root.get_or_insert(out);
        if known.explored() {
            return Ok(known.finish(root));
        }
    }
    Err(format!("{}: enums with too many variants", std::any::type_name::<T>()))
}

/// What the passes have learned so far.
#[derive(Default)]
struct Known {
    /// Every struct and enum met, in the order first met: its place here is
    /// its number in the description.
    types: Vec<TypeShape>,
    /// Where each type is in `types`, by the type name of its visitor.
    by_visitor: HashMap<&'static str, usize>,
}

struct TypeShape {
    /// The serde name.
    name: &'static str,
    body: Body,
}

enum Body {
    /// A struct's fields (or a unit, newtype or tuple struct's contents),
    /// once described outside itself.
    Struct(Option<String>),
    Enum(EnumShape),
}

struct EnumShape {
    /// Each variant's name and, once seen outside the enum itself, its
    /// contents.
    variants: Vec<(&'static str, Option<String>)>,
    /// Visits outside itself so far: they take the variants in turn.
    visits: usize,
    /// Times the enum was entered, anywhere: a variant during which this
    /// does not move contains no copy of the enum.
    entered: usize,
    /// A variant seen to end without containing the enum again.
    ends: Option<usize>,
    /// While no variant is known to end: the one tried inside the enum.
    guess: usize,
}

impl Known {
    /// The type met with this visitor, added on first sight.
    fn find<V>(&mut self, name: &'static str, body: impl FnOnce() -> Body) -> usize {
        let types = &mut self.types;
        *self.by_visitor.entry(std::any::type_name::<V>()).or_insert_with(|| {
            types.push(TypeShape { name, body: body() });
            types.len() - 1
        })
    }

    fn enum_shape(&mut self, index: usize) -> &mut EnumShape {
        match &mut self.types[index].body {
            Body::Enum(shape) => shape,
            Body::Struct(_) => unreachable!("a struct's visitor deserialized an enum"),
        }
    }

    /// The variant guessed for enum `index` contained the enum again: try the
    /// next one.
    fn guess_again(&mut self, index: usize) -> Result<(), String> {
        let name = self.types[index].name;
        let shape = self.enum_shape(index);
        shape.guess += 1;
        if shape.guess >= shape.variants.len() {
            return Err(format!("{name}: every variant contains {name} again"));
        }
        Ok(())
    }

    fn explored(&self) -> bool {
        self.types.iter().all(|t| match &t.body {
            Body::Struct(fields) => fields.is_some(),
            Body::Enum(shape) => shape.variants.iter().all(|(_, contents)| contents.is_some()),
        })
    }

    fn finish(&self, root: &str) -> String {
        let mut all = format!("{root};");
        for (number, shape) in self.types.iter().enumerate() {
            let _ = write!(all, "{}#{number}=", shape.name);
            match &shape.body {
                Body::Struct(fields) => all.push_str(fields.as_deref().unwrap_or("?")),
                Body::Enum(shape) => {
                    all.push_str("enum{");
                    for (index, (variant, contents)) in shape.variants.iter().enumerate() {
                        let _ = write!(all, "{index}:{variant}{},", contents.as_deref().unwrap_or("?"));
                    }
                    all.push('}');
                }
            }
            all.push(';');
        }
        all
    }
}

#[derive(Debug)]
enum ShapeError {
    /// The type cannot be described, and why.
    Refused(String),
    /// The variant guessed for this enum (by its place in `Known::types`)
    /// contained the enum again: describe once more with another guess.
    Retry(usize),
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(why) => f.write_str(why),
            Self::Retry(_) => f.write_str("a guessed variant recursed"),
        }
    }
}

impl std::error::Error for ShapeError {}

impl de::Error for ShapeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::Refused(msg.to_string())
    }
}

type Described<T> = std::result::Result<T, ShapeError>;

struct Describer<'k> {
    known: &'k mut Known,
    /// The description of what is being deserialized, in order.
    out: String,
    /// Structs and enums being described (places in `known.types`),
    /// innermost last. Left as it was when an error returns.
    stack: Vec<usize>,
    /// Enums inside themselves whose variant is a guess, innermost last.
    guesses: Vec<usize>,
}

impl Describer<'_> {
    /// Where the description stopped, and why.
    fn at(&self, why: &str) -> String {
        let path: Vec<&str> = self.stack.iter().map(|&t| self.known.types[t].name).collect();
        if path.is_empty() {
            why.to_owned()
        } else {
            format!("{}: {why}", path.join(" > "))
        }
    }

    /// Whether the innermost struct or enum is inside itself: its options,
    /// sequences and maps are then left empty, so the value ends.
    fn inside_itself(&self) -> bool {
        self.stack
            .split_last()
            .is_some_and(|(last, outer)| outer.contains(last))
    }

    /// Enters type `index`; says whether it is inside itself.
    fn enter(&mut self, index: usize) -> Described<bool> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(ShapeError::Refused(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        let recursing = self.stack.contains(&index);
        self.stack.push(index);
        Ok(recursing)
    }

    /// Writes the reference to type `index` (its name and number).
    fn reference(&mut self, index: usize) {
        let _ = write!(self.out, "{}#{index}", self.known.types[index].name);
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

    /// Describes a struct of any kind: `contents` hands the visitor what is
    /// inside it, describing it into `self.out`.
    fn structure<'de, V, F>(&mut self, name: &'static str, visitor: V, contents: F) -> Described<V::Value>
    where
        V: Visitor<'de>,
        F: FnOnce(&mut Self, V) -> Described<V::Value>,
    {
        let index = self.known.find::<V>(name, || Body::Struct(None));
        self.reference(index);
        let recursing = self.enter(index)?;
        let outer = std::mem::take(&mut self.out);
        let value = contents(self, visitor)?;
        let described = std::mem::replace(&mut self.out, outer);
        self.stack.pop();
        if let (false, Body::Struct(fields @ None)) = (recursing, &mut self.known.types[index].body) {
            *fields = Some(described);
        }
        Ok(value)
    }

    /// Which variant of enum `index` to take: in turn outside itself; inside
    /// itself, one that ends, or a guess until one is known (then also
    /// `true`: the guess is pushed on `guesses`).
    fn pick_variant(&mut self, index: usize, recursing: bool) -> Described<(usize, bool)> {
        let guessing = self.guesses.contains(&index);
        let shape = self.known.enum_shape(index);
        shape.entered += 1;
        if !recursing {
            shape.visits += 1;
            return Ok(((shape.visits - 1) % shape.variants.len(), false));
        }
        if let Some(ends) = shape.ends {
            return Ok((ends, false));
        }
        if guessing {
            // The guess led back into the enum: blame the innermost guess.
            let innermost = *self.guesses.last().expect("guessing implies a guess");
            return Err(ShapeError::Retry(innermost));
        }
        let guess = shape.guess;
        self.guesses.push(index);
        Ok((guess, true))
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

/// Hands out one entry of a map (none inside a recursing type).
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

/// One enum value: variant `index`, its contents described into `out`.
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
        Err(ShapeError::Refused(
            "deserializes as a self-describing value (untagged, flattened or any value)".into(),
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
        if self.inside_itself() {
            return visitor.visit_none();
        }
        visitor.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Described<V::Value> {
        self.structure(name, visitor, |describer, visitor| {
            describer.out.push_str("unit");
            visitor.visit_unit()
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Described<V::Value> {
        self.structure(name, visitor, |describer, visitor| {
            describer.out.push('(');
            let value = visitor.visit_newtype_struct(&mut *describer)?;
            describer.out.push(')');
            Ok(value)
        })
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Described<V::Value> {
        self.out.push_str("seq");
        let left = usize::from(!self.inside_itself());
        visitor.visit_seq(Elements { describer: self, left })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Described<V::Value> {
        if len > MAX_TUPLE {
            return Err(ShapeError::Refused(format!("a tuple or array of {len} elements")));
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
        self.structure(name, visitor, |describer, visitor| {
            let (value, fields) = describer.fields(&vec![""; len], visitor)?;
            describer.out.push_str(&fields);
            Ok(value)
        })
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Described<V::Value> {
        self.out.push_str("map");
        let left = !self.inside_itself();
        visitor.visit_map(Entries { describer: self, left })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Described<V::Value> {
        self.structure(name, visitor, |describer, visitor| {
            let (value, described) = describer.fields(fields, visitor)?;
            describer.out.push_str(&described);
            Ok(value)
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Described<V::Value> {
        if variants.is_empty() {
            return Err(ShapeError::Refused(format!("{name} has no variants")));
        }
        let index = self.known.find::<V>(name, || {
            Body::Enum(EnumShape {
                variants: variants.iter().map(|v| (*v, None)).collect(),
                visits: 0,
                entered: 0,
                ends: None,
                guess: 0,
            })
        });
        self.reference(index);
        let recursing = self.enter(index)?;
        let (variant, guessed) = self.pick_variant(index, recursing)?;
        let entered = self.known.enum_shape(index).entered;
        let outer = std::mem::take(&mut self.out);
        let value = visitor.visit_enum(Variant {
            describer: &mut *self,
            index: variant as u32,
        })?;
        let contents = std::mem::replace(&mut self.out, outer);
        self.stack.pop();
        if guessed {
            self.guesses.pop();
        }
        let shape = self.known.enum_shape(index);
        if shape.entered == entered {
            shape.ends.get_or_insert(variant);
        }
        if !recursing {
            shape.variants[variant].1.get_or_insert(contents);
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

    // Generic instances and types sharing a serde name are described apart.
    mod generic {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) struct Page<T> {
            pub items: Vec<T>,
            pub next: Option<u32>,
        }
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) struct Lists {
            pub ids: Page<u32>,
            pub names: Page<String>,
        }
        pub(super) mod changed {
            #[derive(serde::Deserialize)]
            #[allow(dead_code)]
            pub(in super::super) struct Lists {
                pub ids: super::Page<u32>,
                pub names: super::Page<u32>,
            }
        }
    }

    mod combat {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) struct Stats {
            pub hits: u32,
        }
    }
    mod economy {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) struct Stats {
            pub gold: u32,
        }
        pub(super) mod changed {
            #[derive(serde::Deserialize)]
            #[allow(dead_code)]
            pub(in super::super) struct Stats {
                pub gold: u64,
            }
        }
    }

    #[test]
    fn generic_instances_and_namesakes_are_described_apart() {
        let lists = describe::<generic::Lists>().unwrap();
        assert_ne!(lists, describe::<generic::changed::Lists>().unwrap(), "{lists}");
        assert!(lists.contains("Page#1") && lists.contains("Page#2"), "{lists}");
        let both = describe::<(combat::Stats, economy::Stats)>().unwrap();
        let changed = describe::<(combat::Stats, economy::changed::Stats)>().unwrap();
        assert_ne!(both, changed, "{both}");
        // Moved to another module, still the same.
        assert_eq!(
            describe::<(economy::Stats, combat::Stats)>()
                .unwrap()
                .replace("gold", "x")
                .replace("hits", "x"),
            both.replace("gold", "x").replace("hits", "x"),
        );
    }

    mod expr_u32 {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) enum Expr {
            Add(Box<Expr>, Box<Expr>),
            Num(u32),
        }
    }
    mod expr_i64 {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) enum Expr {
            Add(Box<Expr>, Box<Expr>),
            Num(i64),
        }
    }
    // Mutual recursion through an enum whose first variant recurses.
    mod statements {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) enum Stmt {
            Expr(Expr),
            Block(Vec<Stmt>),
        }
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) enum Expr {
            Call(Box<Stmt>, Box<Expr>),
            Lit(u8),
        }
    }

    #[test]
    fn recursive_enums_whose_first_variant_recurses_are_described_in_full() {
        let small = describe::<expr_u32::Expr>().unwrap();
        assert_ne!(small, describe::<expr_i64::Expr>().unwrap());
        assert!(small.contains("Num(u32)"), "{small}");
        let program = describe::<statements::Stmt>().unwrap();
        assert!(
            program.contains("Lit(u8)") && program.contains("Block(seq(Stmt#0))"),
            "{program}"
        );
    }

    // An enum reached only through another enum's second variant.
    mod behind_a_later_variant {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) enum Outer {
            Plain,
            Inner(Inner),
        }
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub(super) enum Inner {
            A(u8),
            B(u16),
            C(u32),
        }
    }

    #[test]
    fn enums_behind_later_variants_are_explored() {
        let shape = describe::<behind_a_later_variant::Outer>().unwrap();
        assert!(
            shape.contains("A(u8)") && shape.contains("B(u16)") && shape.contains("C(u32)"),
            "{shape}"
        );
    }

    // Thirty levels of nesting, with a change at the bottom.
    macro_rules! chain {
        ($leaf:ty; $first:ident $(, $rest:ident)*) => {
            #[derive(serde::Deserialize)]
            #[allow(dead_code)]
            pub(super) struct $first { pub leaf: Vec<Option<$leaf>> }
            chain!(@next $first; $($rest),*);
        };
        (@next $inner:ident; $next:ident $(, $rest:ident)*) => {
            #[derive(serde::Deserialize)]
            #[allow(dead_code)]
            pub(super) struct $next { pub inner: Vec<Option<$inner>> }
            chain!(@next $next; $($rest),*);
        };
        (@next $inner:ident;) => {};
    }
    mod deep_u8 {
        chain!(u8; L0, L1, L2, L3, L4, L5, L6, L7, L8, L9, L10, L11, L12, L13, L14, L15, L16, L17, L18, L19, L20, L21, L22, L23, L24, L25, L26, L27, L28, L29);
    }
    mod deep_u16 {
        chain!(u16; L0, L1, L2, L3, L4, L5, L6, L7, L8, L9, L10, L11, L12, L13, L14, L15, L16, L17, L18, L19, L20, L21, L22, L23, L24, L25, L26, L27, L28, L29);
    }

    #[test]
    fn a_change_thirty_levels_down_is_seen() {
        assert_ne!(
            describe::<deep_u8::L29>().unwrap(),
            describe::<deep_u16::L29>().unwrap()
        );
    }

    #[test]
    fn what_cannot_be_described_says_which_type_and_why() {
        #[derive(Deserialize)]
        #[serde(untagged)]
        #[allow(dead_code)]
        enum Loose {
            A(u32),
        }
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Holder {
            loose: Loose,
        }
        let why = describe::<Holder>().unwrap_err();
        assert!(why.starts_with("Holder: ") && why.contains("untagged"), "{why}");
    }
}
