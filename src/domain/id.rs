//! [`Id`]: a UUID as requests carry it, in a body or a query string.

use std::borrow::Cow;
use std::str::FromStr;

use serde::Deserialize;
use serde::de::{Deserializer, Error as _};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

/// A row's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Id(pub Uuid);

impl FromStr for Id {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        // Only the hyphenated form the API writes; `Uuid::from_str` would
        // also take braces, URNs and bare hex, which the document does not name.
        if s.len() != 36 {
            return Err("must be a UUID".to_owned());
        }
        s.parse().map(Self).map_err(|_| "must be a UUID".to_owned())
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .pattern(Some(
                "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
            ))
            .into()
    }
}

impl ToSchema for Id {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Id")
    }
}
