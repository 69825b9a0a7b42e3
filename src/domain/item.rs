//! Catalog items: [`ItemDraft`], a new item that passed the original's
//! create rules; [`CatalogItem`] and [`SearchHit`], items as the database
//! stores them and the API answers them; and the values only items hold ([`ProductUrl`], [`Metadata`]).

use std::fmt;

use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use super::{ItemStatus, Price, PricingType, Text, Timestamp};

/// An `http://` or `https://` URL of at most 2,048 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductUrl(String);

impl ProductUrl {
    const MAX_CHARS: usize = 2_048;

    /// `url`, if it is an `http(s)://` URL within the length limit.
    pub fn new(url: &str) -> Option<Self> {
        let within = url.chars().count() <= Self::MAX_CHARS;
        (within && (url.starts_with("https://") || url.starts_with("http://")))
            .then(|| Self(url.to_owned()))
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ProductUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Text::<{ ProductUrl::MAX_CHARS }>::deserialize(d)?.into_string();
        if text.starts_with("https://") || text.starts_with("http://") {
            Ok(Self(text))
        } else {
            Err(D::Error::custom("must start with http:// or https://"))
        }
    }
}

/// An optional [`ProductUrl`]; blank or null means absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptionalProductUrl(Option<ProductUrl>);

impl OptionalProductUrl {
    /// The URL, if one was given.
    pub fn into_option(self) -> Option<ProductUrl> {
        self.0
    }
}

impl<'de> Deserialize<'de> for OptionalProductUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::text::blank_or(d).map(Self)
    }
}

impl PartialSchema for OptionalProductUrl {
    fn schema() -> RefOr<Schema> {
        super::text::blank_or_schema(&ProductUrl::name())
    }
}

impl ToSchema for OptionalProductUrl {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((ProductUrl::name().into_owned(), ProductUrl::schema()));
    }
}

impl PartialSchema for ProductUrl {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(Self::MAX_CHARS))
            .pattern(Some(format!(
                "^[{ws}]*https?://[^{ws}{c}][^{c}]*$",
                ws = super::text::WHITESPACE,
                c = super::text::CONTROL
            )))
            .into()
    }
}

impl ToSchema for ProductUrl {}

/// Free-form item data (brand, specifications, ...): a JSON object of at most
/// 50 keys and 64 KiB that Postgres can store and any reader can read back
/// (nested at most 32 levels, no U+0000).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata(Map<String, Value>);

impl Metadata {
    /// Most keys at the top level.
    pub const MAX_KEYS: usize = 50;
    /// Most bytes, serialised.
    pub const MAX_BYTES: usize = 64 * 1024;
    /// Deepest nesting (an object at the top is level 1). Rows come back
    /// wrapped in two more levels and must stay well within what any JSON
    /// reader (ours included, 128) accepts.
    pub const MAX_DEPTH: usize = 32;

    /// The object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The object, owned.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    /// `map`, if it is within the limits; otherwise why not.
    ///
    /// # Errors
    /// The limit it breaks, in the words a request's field is refused with.
    pub fn new(map: Map<String, Value>) -> Result<Self, String> {
        if map.len() > Self::MAX_KEYS {
            return Err(format!("must have at most {} keys", Self::MAX_KEYS));
        }
        let size = serde_json::to_vec(&map).map_or(usize::MAX, |v| v.len());
        if size > Self::MAX_BYTES {
            return Err(format!("must be at most {} bytes", Self::MAX_BYTES));
        }
        let map = Value::Object(map);
        storable(&map, 1)?;
        match map {
            Value::Object(map) => Ok(Self(map)),
            _ => Err("must be an object".to_owned()),
        }
    }
}

/// Refuses JSON that Postgres would refuse or that could not be read back.
fn storable(value: &Value, depth: usize) -> Result<(), String> {
    const NUL: &str = "must not contain the character U+0000";
    match value {
        Value::Array(_) | Value::Object(_) if depth > Metadata::MAX_DEPTH => Err(format!(
            "must be nested at most {} levels deep",
            Metadata::MAX_DEPTH
        )),
        Value::Array(items) => items.iter().try_for_each(|v| storable(v, depth + 1)),
        Value::Object(map) => map.iter().try_for_each(|(key, v)| {
            if key.contains('\0') {
                return Err(NUL.to_owned());
            }
            storable(v, depth + 1)
        }),
        Value::String(s) if s.contains('\0') => Err(NUL.to_owned()),
        _ => Ok(()),
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Object(map) => Self::new(map).map_err(D::Error::custom),
            _ => Err(D::Error::custom("must be an object")),
        }
    }
}

/// Keys and strings Postgres can store: anything but U+0000.
const NO_NUL: &str = "^[^\\u0000]*$";

fn no_nul_string() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(NO_NUL))
}

impl PartialSchema for Metadata {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .max_properties(Some(Self::MAX_KEYS))
            .property_names(Some(no_nul_string()))
            .additional_properties(Some(Ref::from_schema_name(STORABLE_JSON)))
            .into()
    }
}

/// The name of the schema of any JSON value Postgres can store, at any depth.
const STORABLE_JSON: &str = "StorableJson";

impl ToSchema for Metadata {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        let any = AnyOfBuilder::new()
            .description(Some(
                "Any JSON value Postgres can store: no U+0000 in strings or keys",
            ))
            .item(no_nul_string())
            .item(ObjectBuilder::new().schema_type(SchemaType::from_iter([
                Type::Number,
                Type::Boolean,
                Type::Null,
            ])))
            .item(ArrayBuilder::new().items(Ref::from_schema_name(STORABLE_JSON)))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .property_names(Some(no_nul_string()))
                    .additional_properties(Some(Ref::from_schema_name(STORABLE_JSON))),
            );
        schemas.push((STORABLE_JSON.to_owned(), any.into()));
    }
}

/// A new item that passed the original's create rules.
#[derive(Debug, Clone)]
pub struct ItemDraft {
    pub name: String,
    pub description: Option<String>,
    pub category: Option<String>,
    pub status: ItemStatus,
    pub price: Option<Price>,
    pub pricing_type: Option<PricingType>,
    pub product_url: Option<ProductUrl>,
    pub vendor: Option<String>,
    pub sku: Option<String>,
    pub metadata: Metadata,
}

/// JSON exactly as the database stored it, never re-parsed: any JSON Postgres
/// holds (a 309-digit number, say) reads back.
pub(super) type StoredJson = Box<RawValue>;

/// A catalog item, in the original service's shape.
///
/// One shape from end to end: a `catalog_items` row decodes into it and it
/// is the answer's body (`ItemBody` in the OpenAPI document).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ItemBody, description = "A catalog item, in the original service's shape.")]
pub struct CatalogItem {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub category: Option<String>,
    pub status: ItemStatus,
    #[serde(default)]
    pub replacement_item_id: Option<Uuid>,
    pub created_by: Uuid,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub price: Option<f64>,
    pub pricing_type: Option<PricingType>,
    pub product_url: Option<String>,
    pub vendor: Option<String>,
    pub sku: Option<String>,
    /// As stored, never re-parsed.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<StoredJson>,
}

/// An item found by semantic search: a row of `search_catalog_items`, and
/// the answer's entry (`SearchHitBody` in the OpenAPI document).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(
    as = SearchHitBody,
    description = "One search result, as the original's `search_catalog_items` returned it."
)]
pub struct SearchHit {
    pub item_id: Uuid,
    pub item_name: String,
    pub item_description: Option<String>,
    pub item_category: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub item_metadata: Option<StoredJson>,
    pub item_status: ItemStatus,
    pub similarity_score: f64,
}

impl fmt::Display for ProductUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
