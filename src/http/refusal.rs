//! Why a request's value was refused, as a type: the error the request
//! reader deserializes with, so its messages come from what serde and the
//! domain types report (a missing field, a wrong type, a blank text, a
//! value off a closed list, a type's own rule), never from parsing their
//! text. Then [`message`] words it as the original service did: the
//! field's path in front (`product_names[3]`), then what is wrong.
//!
//! A JSON body is parsed first (a syntax error is `not valid JSON`), then
//! read into the request type through [`JsonValue`], which hands serde our
//! error type where `serde_json`'s own deserializer would hand it
//! `serde_json::Error`. Duplicate keys keep the last value, as the
//! original's JSON parser did.

use std::fmt;

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, Expected, IntoDeserializer, Unexpected, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::Value;
use serde_path_to_error::{Path, Segment};

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A required field is absent.
    Missing(&'static str),
    /// A value of the wrong type (`null` told apart: a null field is a
    /// missing one, a null list entry a wrong one).
    WrongType { null: bool, expected: String },
    /// A blank text where one is required.
    Blank,
    /// A value off a closed list that the original refused in words of its
    /// own: `Invalid proposal_type. Must be one of: ...`.
    NotOneOf(&'static [&'static str]),
    /// A rule of the value's type, to put after its path
    /// (`must be at most 5 characters`).
    Rule(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(field) => write!(f, "{field} is required"),
            Self::WrongType { expected, .. } => write!(f, "must be {expected}"),
            Self::Blank => f.write_str("is blank"),
            Self::NotOneOf(names) => write!(f, "must be one of: {}", names.join(", ")),
            Self::Rule(rule) => f.write_str(rule),
        }
    }
}

impl std::error::Error for Refusal {}

impl de::Error for Refusal {
    fn custom<T: fmt::Display>(rule: T) -> Self {
        Self::Rule(rule.to_string())
    }

    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self::WrongType {
            null: matches!(unexpected, Unexpected::Unit | Unexpected::Option),
            expected: expected.to_string(),
        }
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        match unexpected {
            Unexpected::Str(text) if text.trim().is_empty() => Self::Blank,
            other => Self::invalid_type(other, expected),
        }
    }

    fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
        Self::NotOneOf(expected)
    }

    fn missing_field(field: &'static str) -> Self {
        Self::Missing(field)
    }
}

/// The client's message for `refusal` of the value at `path`.
pub(crate) fn message(path: &Path, refusal: &Refusal) -> String {
    let at_root = path.iter().next().is_none();
    let in_list = matches!(path.iter().next_back(), Some(Segment::Seq { .. }));
    match refusal {
        Refusal::Missing(field) if at_root => format!("{field} is required"),
        Refusal::Missing(field) => format!("{path}.{field} is required"),
        _ if at_root => "request body must be a JSON object".to_owned(),
        Refusal::WrongType { null: true, .. } if !in_list => format!("{path} is required"),
        // A field left blank is missing (the original's rule); a list entry is empty.
        Refusal::Blank if in_list => format!("{path} must not be empty"),
        Refusal::Blank => format!("{path} is required"),
        Refusal::NotOneOf(names) => {
            let field = match path.iter().next_back() {
                Some(Segment::Map { key }) => key.as_str(),
                _ => "value",
            };
            format!("Invalid {field}. Must be one of: {}", names.join(", "))
        }
        other => format!("{path} {other}"),
    }
}

/// A parsed JSON value read as a request type, with [`Refusal`] as the error.
pub(crate) struct JsonValue(pub(crate) Value);

impl<'de> IntoDeserializer<'de, Refusal> for JsonValue {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for JsonValue {
    type Error = Refusal;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            // As serde_json reads numbers: unsigned, then signed, then float.
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (_, Some(i), _) => visitor.visit_i64(i),
                (_, _, Some(f)) => visitor.visit_f64(f),
                _ => Err(de::Error::custom("must be a number")),
            },
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter().map(JsonValue));
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Value::Object(fields) => {
                let mut map = MapDeserializer::new(
                    fields
                        .into_iter()
                        .map(|(key, value)| (key, JsonValue(value))),
                );
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(JsonValue(other)),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;
    use crate::domain::{ProposalType, Text};

    #[derive(Debug, Deserialize)]
    #[expect(dead_code, reason = "read only through Debug")]
    struct Inner {
        name: Text<5>,
        kind: Option<Kind>,
    }

    #[derive(Debug, Deserialize)]
    #[expect(dead_code, reason = "read only through Debug")]
    struct Outer {
        inner: Option<Inner>,
        names: Option<Vec<Text<5>>>,
        count: Option<u8>,
        signed: Option<i64>,
        ratio: Option<f64>,
    }

    #[derive(Debug)]
    struct Kind;

    impl<'de> Deserialize<'de> for Kind {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let text = String::deserialize(d)?;
            Err(de::Error::unknown_variant(&text, ProposalType::NAMES))
        }
    }

    fn refused(value: Value) -> String {
        let error = serde_path_to_error::deserialize::<_, Outer>(JsonValue(value)).unwrap_err();
        message(error.path(), error.inner())
    }

    #[test]
    fn each_refusal_is_worded_by_its_kind_and_place() {
        assert_eq!(refused(json!({"inner": {}})), "inner.name is required");
        assert_eq!(
            refused(json!({"inner": {"name": null}})),
            "inner.name is required"
        );
        assert_eq!(
            refused(json!({"inner": {"name": " "}})),
            "inner.name is required"
        );
        assert_eq!(
            refused(json!({"inner": {"name": 1}})),
            "inner.name must be a string"
        );
        assert_eq!(
            refused(json!({"names": ["a", " "]})),
            "names[1] must not be empty"
        );
        assert_eq!(
            refused(json!({"names": ["a", null]})),
            "names[1] must be a string"
        );
        assert_eq!(
            refused(json!({"inner": {"name": "toolong"}})),
            "inner.name must be at most 5 characters"
        );
        assert_eq!(
            refused(json!({"inner": {"name": "a", "kind": "X"}})),
            "Invalid kind. Must be one of: ADD_ITEM, REPLACE_ITEM, DEPRECATE_ITEM"
        );
    }

    #[test]
    fn numbers_reach_their_types_as_serde_json_would_hand_them() {
        let read = |value: Value| serde_path_to_error::deserialize::<_, Outer>(JsonValue(value));
        let ok = read(json!({"count": 7, "signed": -3, "ratio": 1})).unwrap();
        assert_eq!(
            (ok.count, ok.signed, ok.ratio),
            (Some(7), Some(-3), Some(1.0))
        );
        let error = read(json!({"count": 300})).unwrap_err();
        assert_eq!(message(error.path(), error.inner()), "count must be u8");
        let error = read(json!({"count": -1})).unwrap_err();
        assert_eq!(message(error.path(), error.inner()), "count must be u8");
    }
}
