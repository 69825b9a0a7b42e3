//! Numbers as requests may carry them, each with its range: [`Threshold`]
//! (a cosine similarity), [`Price`] (rounded to cents) and [`Count`] (a whole
//! number in `MIN..=MAX`, for limits and page sizes). Each states its range
//! in its OpenAPI schema from the same constants it checks.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::de::{Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// Reads a JSON number as `f64`; anything else is refused with `expecting`.
struct NumberVisitor<'a>(&'a str);

impl Visitor<'_> for NumberVisitor<'_> {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    #[expect(clippy::cast_precision_loss, reason = "a range check follows")]
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    #[expect(clippy::cast_precision_loss, reason = "a range check follows")]
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
}

fn number_schema(minimum: f64, maximum: f64, integer: bool) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(if integer { Type::Integer } else { Type::Number })
        .minimum(Some(minimum))
        .maximum(Some(maximum))
        .into()
}

/// Lowest cosine similarity a search returns, `0..=1`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Threshold(f64);

impl Threshold {
    const MIN: f64 = 0.0;
    const MAX: f64 = 1.0;

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for Threshold {
    /// The original's default, 0.3.
    fn default() -> Self {
        Self(0.3)
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_f64(NumberVisitor("a number"))?;
        if (Self::MIN..=Self::MAX).contains(&v) {
            Ok(Self(v))
        } else {
            Err(serde::de::Error::custom(format!(
                "must be between {} and {}",
                Self::MIN,
                Self::MAX
            )))
        }
    }
}

impl PartialSchema for Threshold {
    fn schema() -> RefOr<Schema> {
        number_schema(Self::MIN, Self::MAX, false)
    }
}

impl ToSchema for Threshold {}

/// A price in USD, `0..=10,000,000`, rounded to cents.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Price(f64);

impl Price {
    const MIN: f64 = 0.0;
    const MAX: f64 = 10_000_000.0;

    /// `value` rounded to cents, if it is a price at all.
    pub fn new(value: f64) -> Option<Self> {
        (value.is_finite() && (Self::MIN..=Self::MAX).contains(&value))
            .then(|| Self((value * 100.0).round() / 100.0))
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_f64(NumberVisitor("a number"))?;
        Self::new(v).ok_or_else(|| {
            serde::de::Error::custom(format!("must be between {} and {}", Self::MIN, Self::MAX))
        })
    }
}

impl PartialSchema for Price {
    fn schema() -> RefOr<Schema> {
        number_schema(Self::MIN, Self::MAX, false)
    }
}

impl ToSchema for Price {}

/// A whole number in `MIN..=MAX`: a limit or a page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Count<const MIN: u32, const MAX: u32>(u32);

impl<const MIN: u32, const MAX: u32> Count<MIN, MAX> {
    /// `value` if it is in range.
    pub fn new(value: u32) -> Option<Self> {
        (MIN..=MAX).contains(&value).then_some(Self(value))
    }

    /// The value.
    pub fn get(self) -> u32 {
        self.0
    }

    fn refusal() -> String {
        format!("must be an integer between {MIN} and {MAX}")
    }
}

impl<const MIN: u32, const MAX: u32> FromStr for Count<MIN, MAX> {
    type Err = String;

    /// From a query string, where every value is text.
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().ok().and_then(Self::new).ok_or_else(Self::refusal)
    }
}

impl<'de, const MIN: u32, const MAX: u32> Deserialize<'de> for Count<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_f64(NumberVisitor(&format!(
            "an integer between {MIN} and {MAX}"
        )))?;
        // JSON Schema counts 5.0 as an integer, so it is one here too.
        let whole = v.fract() == 0.0 && v >= f64::from(MIN) && v <= f64::from(MAX);
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked whole and within u32 bounds just above"
        )]
        let value = whole.then_some(v as u32).and_then(Self::new);
        value.ok_or_else(|| serde::de::Error::custom(Self::refusal()))
    }
}

impl<const MIN: u32, const MAX: u32> PartialSchema for Count<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        number_schema(f64::from(MIN), f64::from(MAX), true)
    }
}

impl<const MIN: u32, const MAX: u32> ToSchema for Count<MIN, MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("Count{MIN}To{MAX}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_with_their_messages() {
        let read = |json: &str| serde_json::from_str::<Count<1, 100>>(json);
        assert_eq!(read("5").unwrap().get(), 5);
        assert_eq!(read("5.0").unwrap().get(), 5);
        for bad in ["0", "101", "2.5", "-1", "1e40"] {
            assert!(
                read(bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with("must be an integer between 1 and 100"),
                "{bad}"
            );
        }
        assert!(
            read("\"5\"")
                .unwrap_err()
                .to_string()
                .contains("expected an integer between 1 and 100")
        );
        assert_eq!("7".parse::<Count<1, 1000>>().unwrap().get(), 7);
        assert!("ten".parse::<Count<1, 1000>>().is_err());
        assert_eq!(Price::new(9.999).unwrap().get(), 10.0);
        assert!(Price::new(f64::NAN).is_none());
        assert!(serde_json::from_str::<Threshold>("1.5").is_err());
    }
}
