//! [`TextList`]: a JSON array of at least one [`Text`]. How
//! many entries a request may carry is a setting, so the upper bound is
//! checked where the setting is known and stated in the document from it.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, Error as _, SeqAccess, Visitor};
use utoipa::openapi::schema::{ArrayBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::Text;

/// At least one text of at most `MAX` characters, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct TextList<const MAX: usize>(Vec<Text<MAX>>);

impl<const MAX: usize> TextList<MAX> {
    /// The texts.
    pub fn into_strings(self) -> Vec<String> {
        self.0.into_iter().map(Text::into_string).collect()
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true; here because clippy asks for it beside `len`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for TextList<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor<const MAX: usize>;
        impl<'de, const MAX: usize> Visitor<'de> for ListVisitor<MAX> {
            type Value = Vec<Text<MAX>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // Bounded by the request body limit, not by the hint.
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(items)
            }
        }
        let items = d.deserialize_seq(ListVisitor::<MAX>)?;
        if items.is_empty() {
            return Err(D::Error::custom("must not be empty"));
        }
        Ok(Self(items))
    }
}

impl<const MAX: usize> PartialSchema for TextList<MAX> {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(Ref::from_schema_name(Text::<MAX>::name()))
            .min_items(Some(1))
            .into()
    }
}

impl<const MAX: usize> ToSchema for TextList<MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("TextList{MAX}"))
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Text::<MAX>::name().into_owned(), Text::<MAX>::schema()));
    }
}
