//! Text as requests may carry it: trimmed, at most `MAX` characters (counted
//! before trimming, as JSON Schema's `maxLength` counts), and free of control
//! characters other than tab and line breaks. [`Text`] must not be blank;
//! [`OptionalText`] reads a blank or null value as absent, as the original's
//! clients send `""` for "not given".

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, Error as _, IntoDeserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// Characters refused in text: the C0 and C1 controls except `\t`, `\n`, `\r`
/// (what `char::is_control` calls control), as a regex class body.
pub(super) const CONTROL: &str = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F";
/// What `str::trim` removes (Unicode `White_Space`) less the refused
/// controls among it (U+000B, U+000C, U+0085), as a regex class body.
pub(super) const WHITESPACE: &str =
    r"\t\n\r \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// A control character text may not hold.
fn refused(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Non-blank text without refused characters.
fn non_blank_pattern() -> String {
    format!("^[^{CONTROL}]*[^{CONTROL}{WHITESPACE}][^{CONTROL}]*$")
}

/// Text that is empty or all whitespace.
fn blank_pattern() -> String {
    format!("^[{WHITESPACE}]*$")
}

/// Text of at most `max` characters without refused characters, blank
/// allowed: trimmed, or what is wrong with it.
pub(crate) fn free_text(raw: &str, max: usize) -> Result<String, String> {
    if raw.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if raw.chars().any(refused) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(raw.trim().to_owned())
}

/// A pattern for text without refused characters, for schemas.
pub(crate) fn printable_pattern() -> String {
    format!("^[^{CONTROL}]*$")
}

/// The schema of [`free_text`], or null.
pub(crate) fn free_text_schema(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .max_length(Some(max))
        .pattern(Some(format!("^[^{CONTROL}]*$")))
}

/// Why a text was refused, in words to put after the field's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextRefusal {
    /// Empty or only whitespace.
    Blank,
    /// Longer than this many characters.
    TooLong(usize),
    /// Holds a control character.
    Control,
}

impl fmt::Display for TextRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blank => f.write_str("is blank"),
            Self::TooLong(max) => write!(f, "must be at most {max} characters"),
            Self::Control => f.write_str("must not contain control characters"),
        }
    }
}

/// A non-blank text of at most `MAX` characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Text<const MAX: usize>(String);

impl<const MAX: usize> Text<MAX> {
    /// `raw` trimmed, or what is wrong with it.
    ///
    /// # Errors
    /// Blank, longer than `MAX` characters, or with a control character.
    pub fn parse(raw: &str) -> Result<Self, TextRefusal> {
        if raw.chars().count() > MAX {
            return Err(TextRefusal::TooLong(MAX));
        }
        if raw.chars().any(refused) {
            return Err(TextRefusal::Control);
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(TextRefusal::Blank);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl<const MAX: usize> AsRef<str> for Text<MAX> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor<const MAX: usize>;
        impl<const MAX: usize> Visitor<'_> for TextVisitor<MAX> {
            type Value = Text<MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<MAX>, E> {
                Text::parse(v).map_err(|why| match why {
                    // Said as serde says a value is unacceptable, so the
                    // request reader tells a blank field (missing, the
                    // original's rule) from a blank list entry (empty).
                    TextRefusal::Blank => E::invalid_value(Unexpected::Str(v), &self),
                    other => E::custom(other),
                })
            }
        }
        d.deserialize_str(TextVisitor::<MAX>)
    }
}

impl<const MAX: usize> PartialSchema for Text<MAX> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX))
            .pattern(Some(non_blank_pattern()))
            .into()
    }
}

impl<const MAX: usize> ToSchema for Text<MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("Text{MAX}"))
    }
}

/// Reads a value that clients may also leave blank: null, `""` or only
/// whitespace mean absent; anything else must be a valid `T`.
pub(crate) fn blank_or<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let Some(raw) = Option::<Cow<'de, str>>::deserialize(d)? else {
        return Ok(None);
    };
    // Blank: whitespace only, and none of it a refused control (that is
    // refused by `T`, as the document's blank pattern says).
    if raw.chars().all(|c| c.is_whitespace() && !refused(c)) {
        return Ok(None);
    }
    let inner: serde::de::value::CowStrDeserializer<'de, serde::de::value::Error> =
        raw.into_deserializer();
    T::deserialize(inner)
        .map(Some)
        .map_err(|e| D::Error::custom(e.to_string()))
}

/// The schema of a value read with [`blank_or`]: the value's own schema
/// (`name`), or blank, or null.
pub(crate) fn blank_or_schema(name: &str) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(Ref::from_schema_name(name))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(blank_pattern())),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

/// Optional text of at most `MAX` characters; blank or null means absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionalText<const MAX: usize>(Option<Text<MAX>>);

impl<const MAX: usize> Default for OptionalText<MAX> {
    fn default() -> Self {
        Self(None)
    }
}

impl<const MAX: usize> OptionalText<MAX> {
    /// Whether no text was given.
    pub fn is_absent(&self) -> bool {
        self.0.is_none()
    }

    /// The text, if one was given.
    pub fn into_option(self) -> Option<String> {
        self.0.map(Text::into_string)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for OptionalText<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        blank_or(d).map(Self)
    }
}

impl<const MAX: usize> PartialSchema for OptionalText<MAX> {
    fn schema() -> RefOr<Schema> {
        blank_or_schema(&Text::<MAX>::name())
    }
}

impl<const MAX: usize> ToSchema for OptionalText<MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("OptionalText{MAX}"))
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Text::<MAX>::name().into_owned(), Text::<MAX>::schema()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_bounded_and_printable() {
        assert_eq!(Text::<5>::parse("  ab ").unwrap().as_str(), "ab");
        assert_eq!(Text::<5>::parse("   ").unwrap_err(), TextRefusal::Blank);
        assert_eq!(
            Text::<3>::parse("abcd").unwrap_err().to_string(),
            "must be at most 3 characters"
        );
        assert_eq!(
            Text::<9>::parse("a\u{9e}b").unwrap_err(),
            TextRefusal::Control
        );
        assert!(Text::<9>::parse("a\tb\nc").is_ok());
    }

    #[test]
    fn blank_means_absent_and_the_rest_is_checked() {
        let read = |json: &str| serde_json::from_str::<OptionalText<4>>(json);
        assert_eq!(read("null").unwrap().into_option(), None);
        assert_eq!(read("\" \"").unwrap().into_option(), None);
        assert_eq!(read("\"ab\"").unwrap().into_option().unwrap(), "ab");
        assert!(
            read("\"abcde\"")
                .unwrap_err()
                .to_string()
                .contains("at most 4")
        );
        assert!(
            read("5")
                .unwrap_err()
                .to_string()
                .contains("expected a string")
        );
    }

    #[test]
    fn the_patterns_agree_with_the_parser() {
        // The document's regexes are compiled by clients; keep their classes
        // to what `char` methods say.
        for c in ['\u{0}', '\u{1f}', '\u{7f}', '\u{9f}', '\u{b}'] {
            assert!(c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
        }
        for c in [
            '\u{a0}', '\u{3000}', '\u{2028}', ' ', '\u{1680}', '\u{205f}',
        ] {
            assert!(c.is_whitespace() && !refused(c));
        }
        for c in ['\u{b}', '\u{c}', '\u{85}'] {
            assert!(c.is_whitespace() && refused(c));
        }
        let read = |json: &str| serde_json::from_str::<OptionalText<9>>(json);
        assert!(read("\"\\u0085\"").is_err(), "a control is not blank");
        assert!(non_blank_pattern().starts_with("^[^"));
    }
}
