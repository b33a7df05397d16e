//! Reads volley's shape descriptions (the text the remotes hash is made of,
//! written by `volley/src/shape.rs`) back into a tree.
//!
//! ```text
//! description := shape ";" (Name "#" n "=" body ";")*
//! shape       := prim | "unit" | "option" shape | "seq" ("(" shape ")")?
//!              | "map" ("(" shape ")(" shape ")")? | "tuple" n ("(" shape ")")*
//!              | Name "#" n
//! body        := "unit" | "(" shape ")" | fields | "enum{" (i ":" Variant contents ",")* "}"
//! fields      := "{" (name ":")* ("(" shape ")")* "}"
//! contents    := "" | "(" shape ")" | fields
//! ```

use std::fmt;

/// A payload type, as serde's data model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    Prim(Prim),
    Unit,
    Option(Box<Shape>),
    Seq(Box<Shape>),
    Map(Box<Shape>, Box<Shape>),
    Tuple(Vec<Shape>),
    /// A struct or enum: its number in the description's `types`.
    Ref(usize),
}

/// A primitive, by the name the description gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prim {
    Bool,
    I8,
    I16,
    I32,
    I64,
    I128,
    U8,
    U16,
    U32,
    U64,
    U128,
    F32,
    F64,
    Char,
    Str,
    Bytes,
}

const PRIMS: [(&str, Prim); 16] = [
    ("bool", Prim::Bool),
    ("i8", Prim::I8),
    ("i16", Prim::I16),
    ("i32", Prim::I32),
    ("i64", Prim::I64),
    ("i128", Prim::I128),
    ("u8", Prim::U8),
    ("u16", Prim::U16),
    ("u32", Prim::U32),
    ("u64", Prim::U64),
    ("u128", Prim::U128),
    ("f32", Prim::F32),
    ("f64", Prim::F64),
    ("char", Prim::Char),
    ("str", Prim::Str),
    ("bytes", Prim::Bytes),
];

impl Prim {
    pub(crate) fn name(self) -> &'static str {
        PRIMS.iter().find(|(_, p)| *p == self).map_or("?", |(n, _)| n)
    }
}

/// What a struct, or an enum's variant, holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fields {
    Unit,
    Newtype(Shape),
    Tuple(Vec<Shape>),
    Named(Vec<(String, Shape)>),
}

/// A struct or an enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    Struct(Fields),
    Enum(Vec<(String, Fields)>),
}

/// A named type of a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Named {
    pub(crate) name: String,
    pub(crate) body: Body,
}

/// One payload type's whole description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Description {
    pub(crate) root: Shape,
    pub(crate) types: Vec<Named>,
}

/// Where a description could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub(crate) at: usize,
    pub(crate) what: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.at, self.what)
    }
}

type Parsed<T> = Result<T, ParseError>;

/// Reads a whole description.
pub(crate) fn parse(text: &str) -> Parsed<Description> {
    let mut p = Parser { text, at: 0 };
    let root = p.shape()?;
    p.expect(";")?;
    let mut types = Vec::new();
    while p.at < text.len() {
        let name = p.type_name()?;
        let number = p.number()?;
        if number != types.len() {
            return Err(p.error(format!("type #{number} where #{} was expected", types.len())));
        }
        p.expect("=")?;
        let body = p.body()?;
        p.expect(";")?;
        types.push(Named { name, body });
    }
    Ok(Description { root, types })
}

struct Parser<'t> {
    text: &'t str,
    at: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn error(&self, what: impl Into<String>) -> ParseError {
        ParseError {
            at: self.at,
            what: what.into(),
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Parsed<()> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(format!("expected {token:?}")))
        }
    }

    fn number(&mut self) -> Parsed<usize> {
        let digits = self.rest().bytes().take_while(u8::is_ascii_digit).count();
        let number = self.rest()[..digits]
            .parse()
            .map_err(|_| self.error("expected a number"))?;
        self.at += digits;
        Ok(number)
    }

    /// A name up to `#` (a type) or `:` (a field): identifiers only.
    fn word(&mut self, end: char) -> Parsed<String> {
        let len = self
            .rest()
            .find(end)
            .ok_or_else(|| self.error(format!("expected {end:?}")))?;
        let word = self.rest()[..len].to_string();
        if word.chars().any(|c| !(c.is_alphanumeric() || c == '_' || c == '$')) {
            return Err(self.error(format!("{word:?} is not an identifier")));
        }
        self.at += len + 1;
        Ok(word)
    }

    fn type_name(&mut self) -> Parsed<String> {
        self.word('#')
    }

    /// A shape inside parentheses.
    fn inner(&mut self) -> Parsed<Shape> {
        self.expect("(")?;
        let shape = self.shape()?;
        self.expect(")")?;
        Ok(shape)
    }

    fn shape(&mut self) -> Parsed<Shape> {
        // Longest names first: "i128" before "i8" cannot clash (the digits
        // differ), but "unit" must not be read as a type name.
        for (name, prim) in PRIMS.iter().rev() {
            if self.rest().starts_with(name) && !self.rest()[name.len()..].starts_with('#') {
                // "u8" is a prefix of "u8#", a type named u8: not a thing.
                self.at += name.len();
                return Ok(Shape::Prim(*prim));
            }
        }
        if self.eat("unit") {
            return Ok(Shape::Unit);
        }
        if self.eat("option") {
            return Ok(Shape::Option(Box::new(self.shape()?)));
        }
        if self.eat("seq") {
            // Recorded bodies always show the element (see volley's shape.rs).
            return Ok(Shape::Seq(Box::new(self.inner()?)));
        }
        if self.eat("map") {
            let key = self.inner()?;
            let value = self.inner()?;
            return Ok(Shape::Map(Box::new(key), Box::new(value)));
        }
        if self.eat("tuple") {
            let len = self.number()?;
            let elements = (0..len).map(|_| self.inner()).collect::<Parsed<_>>()?;
            return Ok(Shape::Tuple(elements));
        }
        if self.rest().starts_with('?') {
            return Err(self.error("a type volley could not describe"));
        }
        self.type_name()?;
        Ok(Shape::Ref(self.number()?))
    }

    /// `{a:b:(s)(t)}`: named fields, or (names all empty) a tuple.
    fn fields(&mut self) -> Parsed<Fields> {
        self.expect("{")?;
        let mut names = Vec::new();
        while !self.rest().starts_with('(') && !self.rest().starts_with('}') {
            let len = self.rest().find(':').ok_or_else(|| self.error("expected ':'"))?;
            let name = self.rest()[..len].to_string();
            if name.chars().any(|c| !(c.is_alphanumeric() || c == '_' || c == '$')) {
                return Err(self.error(format!("field {name:?} is not an identifier")));
            }
            self.at += len + 1;
            names.push(name);
        }
        let shapes = names.iter().map(|_| self.inner()).collect::<Parsed<Vec<_>>>()?;
        self.expect("}")?;
        if names.iter().all(String::is_empty) && !names.is_empty() {
            return Ok(Fields::Tuple(shapes));
        }
        Ok(Fields::Named(names.into_iter().zip(shapes).collect()))
    }

    fn body(&mut self) -> Parsed<Body> {
        if self.eat("enum{") {
            let mut variants = Vec::new();
            while !self.eat("}") {
                let index = self.number()?;
                if index != variants.len() {
                    return Err(self.error("variants out of order"));
                }
                self.expect(":")?;
                let len = self
                    .rest()
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                    .ok_or_else(|| self.error("a variant without an end"))?;
                let name = self.rest()[..len].to_string();
                self.at += len;
                let contents = self.contents()?;
                self.expect(",")?;
                variants.push((name, contents));
            }
            return Ok(Body::Enum(variants));
        }
        if self.rest().starts_with('?') {
            return Err(self.error("a type volley could not describe"));
        }
        Ok(Body::Struct(self.contents()?))
    }

    /// A struct's or a variant's contents.
    fn contents(&mut self) -> Parsed<Fields> {
        if self.eat("unit") {
            return Ok(Fields::Unit);
        }
        if self.rest().starts_with('(') {
            return Ok(Fields::Newtype(self.inner()?));
        }
        if self.rest().starts_with('{') {
            return self.fields();
        }
        // A unit variant: nothing.
        Ok(Fields::Unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_structs_enums_and_recursion() {
        let text = "Buy#0;Buy#0={item:gold:kind:(str)(u32)(Kind#1)};\
                    Kind#1=enum{0:Sword,1:Potion{heal:(u8)},2:Pack(seq(Kind#1)),3:Pair{::(u8)(optioni64)},};";
        let described = parse(text).unwrap();
        assert_eq!(described.root, Shape::Ref(0));
        assert_eq!(described.types[0].name, "Buy");
        let Body::Enum(variants) = &described.types[1].body else {
            panic!("an enum")
        };
        assert_eq!(variants[0], ("Sword".into(), Fields::Unit));
        assert_eq!(
            variants[1],
            (
                "Potion".into(),
                Fields::Named(vec![("heal".into(), Shape::Prim(Prim::U8))])
            )
        );
        assert_eq!(
            variants[2],
            ("Pack".into(), Fields::Newtype(Shape::Seq(Box::new(Shape::Ref(1)))))
        );
        assert_eq!(
            variants[3].1,
            Fields::Tuple(vec![
                Shape::Prim(Prim::U8),
                Shape::Option(Box::new(Shape::Prim(Prim::I64)))
            ])
        );
    }

    #[test]
    fn reads_containers_and_refuses_what_it_cannot() {
        let text = "tuple2(map(str)(seq(u8)))(unit);";
        let described = parse(text).unwrap();
        assert!(matches!(described.root, Shape::Tuple(ref t) if t.len() == 2));
        assert!(parse("?;").is_err());
        assert!(parse("Odd#0;Odd#0={a-b:(u8)};").is_err());
    }
}
