//! The search results a request carries: what the requester was shown,
//! checked and stored as the original stored it.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value, json};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::{Text, free_text, free_text_schema};

/// Most search results a request may carry.
const MAX_SEARCH_RESULTS: usize = 100;
/// Longest name, description or category of a search result.
const MAX_RESULT_TEXT_CHARS: usize = 1_000;

/// The search results a request carries, each stored as `{name,
/// description, category, similarity_score}` plus `price`, `vendor` and
/// `sku` when given, as the original stored them.
#[derive(Debug, Default)]
pub struct SearchResults(Vec<Value>);

impl SearchResults {
    /// The entries as they are stored.
    pub fn as_slice(&self) -> &[Value] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SearchResults {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = Vec<Value>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
                let mut results = Vec::new();
                while let Some(SearchResult(result)) = seq.next_element()? {
                    if results.len() == MAX_SEARCH_RESULTS {
                        return Err(A::Error::custom(format!(
                            "must have at most {MAX_SEARCH_RESULTS} entries"
                        )));
                    }
                    results.push(result);
                }
                Ok(results)
            }
        }
        d.deserialize_seq(ListVisitor).map(Self)
    }
}

struct SearchResult(Value);

impl<'de> Deserialize<'de> for SearchResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = Map<String, Value>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a dictionary")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entry = Map::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    entry.insert(key, value);
                }
                Ok(entry)
            }
        }
        let entry = d.deserialize_map(EntryVisitor)?;
        let text = |key: &str, max: usize| -> Result<Option<String>, D::Error> {
            match entry.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => free_text(s, max)
                    .map(Some)
                    .map_err(|why| D::Error::custom(format!("{key} {why}"))),
                Some(_) => Err(D::Error::custom(format!("{key} must be a string"))),
            }
        };
        let number = |key: &str| -> Result<Option<Value>, D::Error> {
            match entry.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(n @ Value::Number(_)) => Ok(Some(n.clone())),
                Some(_) => Err(D::Error::custom(format!("{key} must be a number"))),
            }
        };
        let name = match entry.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                Text::<{ MAX_RESULT_TEXT_CHARS }>::parse(s)
                    .map_err(|why| D::Error::custom(format!("name {why}")))?,
            ),
            Some(_) => return Err(D::Error::custom("name must be a string")),
        }
        .ok_or_else(|| D::Error::custom("missing required field 'name'"))?;
        let mut stored = json!({
            "name": name.as_str(),
            "description": text("description", MAX_RESULT_TEXT_CHARS)?.unwrap_or_default(),
            "category": text("category", MAX_RESULT_TEXT_CHARS)?.unwrap_or_default(),
            "similarity_score": number("similarity_score")?.unwrap_or(json!(0.0)),
        });
        if let Some(price) = number("price")? {
            stored["price"] = price;
        }
        for key in ["vendor", "sku"] {
            if let Some(value) = text(key, 255)? {
                stored[key] = json!(value);
            }
        }
        Ok(Self(stored))
    }
}

impl PartialSchema for SearchResults {
    fn schema() -> RefOr<Schema> {
        let number =
            || ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Number, Type::Null]));
        let entry = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "name",
                Ref::from_schema_name(Text::<{ MAX_RESULT_TEXT_CHARS }>::name()),
            )
            .required("name")
            .property("description", free_text_schema(MAX_RESULT_TEXT_CHARS))
            .property("category", free_text_schema(MAX_RESULT_TEXT_CHARS))
            .property("similarity_score", number())
            .property("price", number())
            .property("vendor", free_text_schema(255))
            .property("sku", free_text_schema(255));
        ArrayBuilder::new()
            .items(entry)
            .max_items(Some(MAX_SEARCH_RESULTS))
            .into()
    }
}

impl ToSchema for SearchResults {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        type Name = Text<{ MAX_RESULT_TEXT_CHARS }>;
        schemas.push((Name::name().into_owned(), Name::schema()));
    }
}
