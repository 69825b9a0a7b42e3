//! Timestamps as the entities carry them: ISO 8601 with exactly six
//! fractional digits. Postgres writes `…52.36089+00:00` in JSON built by
//! SQL and some servers `…52.360890+00:00` for the same instant; reading
//! every stored time through here makes an item read the same whichever
//! path it came by.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

/// A stored time (`created_at` and the like): ISO 8601 with exactly six
/// fractional digits, normalised as it is read, and served as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Timestamp(String);

impl Timestamp {
    /// The time as served: ISO 8601 with six fractional digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Cow::<str>::deserialize(d)?;
        Ok(Self(six_digit_fraction(&raw)))
    }
}

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("ISO 8601 with exactly six fractional digits"))
            .into()
    }
}

impl ToSchema for Timestamp {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Timestamp")
    }
}

fn six_digit_fraction(raw: &str) -> String {
    // Seconds end at the 19th character: `YYYY-MM-DDTHH:MM:SS`.
    let (Some(head), Some(rest)) = (raw.get(..19), raw.get(19..)) else {
        return raw.to_owned();
    };
    let (digits, zone) = match rest.strip_prefix('.') {
        Some(fraction) => {
            let end = fraction
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(fraction.len());
            fraction.split_at(end)
        }
        None => ("", rest),
    };
    if digits.len() > 6 {
        return raw.to_owned();
    }
    format!("{head}.{digits:0<6}{zone}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_get_six_fractional_digits() {
        assert_eq!(
            six_digit_fraction("2026-11-28T20:28:52.36089+00:00"),
            "2026-11-28T20:28:52.360890+00:00"
        );
        assert_eq!(
            six_digit_fraction("2026-11-28T20:28:52+00:00"),
            "2026-11-28T20:28:52.000000+00:00"
        );
        assert_eq!(
            six_digit_fraction("2026-11-28T20:28:52.123456Z"),
            "2026-11-28T20:28:52.123456Z"
        );
        assert_eq!(six_digit_fraction("garbage"), "garbage");
    }
}
