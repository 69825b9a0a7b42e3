//! Request input: [`JsonBody`] (a JSON body; [`JsonBodyOrNone`] where no
//! body means defaults) and [`Params`] (a query string)
//! deserialize straight into a route's request type, whose fields are
//! `domain` values that check themselves; plus the request [`Deadline`].
//!
//! A refusal arrives typed (`http::refusal::Refusal`) and is worded once,
//! as the original service did: the field's path in front
//! (`product_names[3]`), then what is wrong (`is required`, `must be a
//! string`, `must be at most 500 characters`). Fields the endpoint does not
//! know are ignored, as the original did, so its clients keep working.
//! Every failure is an [`ApiError`]; [`InputRejection`] also says which
//! required field was missing, for a route with its own words for that.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::de::value::MapDeserializer;
use serde_json::Value;
use serde_path_to_error::Segment;

use super::refusal::{JsonValue, Refusal, message};
use crate::error::ApiError;
use crate::resilience::Deadline;
use crate::state::AppState;

/// A JSON body read into `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = InputRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, InputRejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "expected a request body with content-type application/json".to_owned(),
            )
            .into());
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_rejection)?;
        read_json(&bytes).map(Self)
    }
}

/// Why a body was refused: the error clients get, and the top-level field
/// that was required (absent, null or blank) when that was the reason.
#[derive(Debug)]
pub struct InputRejection {
    error: ApiError,
    required: Option<String>,
}

impl InputRejection {
    /// The error, but `message` when `field` was required and not given (a
    /// route whose original words differ: `Item name is required`).
    pub fn unless_required(self, field: &str, message: &str) -> ApiError {
        match self.required {
            Some(required) if required == field => ApiError::BadRequest(message.to_owned()),
            _ => self.error,
        }
    }
}

impl From<ApiError> for InputRejection {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            required: None,
        }
    }
}

impl From<InputRejection> for ApiError {
    fn from(rejection: InputRejection) -> Self {
        rejection.error
    }
}

impl IntoResponse for InputRejection {
    fn into_response(self) -> Response {
        self.error.into_response()
    }
}

/// A JSON body read into `T`, or `T::default()` when there is no body at
/// all (the original's approve and reject took an absent body as `{}`).
#[derive(Debug)]
pub struct JsonBodyOrNone<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for JsonBodyOrNone<T> {
    type Rejection = InputRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, InputRejection> {
        let json = is_json(request.headers());
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_rejection)?;
        let content = trim_json_whitespace(&bytes);
        if content.is_empty() || content == b"null" {
            return Ok(Self(T::default()));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType(
                "expected a request body with content-type application/json".to_owned(),
            )
            .into());
        }
        read_json(&bytes).map(Self)
    }
}

/// `bytes` without the whitespace JSON allows around a value: space, tab,
/// line feed and carriage return (not every ASCII space: a form feed is no
/// JSON at all).
fn trim_json_whitespace(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// `T` from a JSON text, with the service's messages.
///
/// # Errors
/// [`ApiError::BadRequest`] saying which field is wrong and how.
pub fn read_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, InputRejection> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|_| ApiError::BadRequest("request body is not valid JSON".to_owned()))?;
    // serde would read an array into a struct's fields in order; the
    // original took objects only.
    if !value.is_object() {
        return Err(ApiError::BadRequest("request body must be a JSON object".to_owned()).into());
    }
    from_object(value).map_err(|refusal| InputRejection {
        error: ApiError::BadRequest(refusal.message),
        required: refusal.required,
    })
}

/// Why a JSON object was refused: the message, the top-level field at
/// fault (when one is), and that field again when it was required and not
/// given (absent, null or blank).
#[derive(Debug)]
pub(crate) struct FieldRefusal {
    pub message: String,
    pub field: Option<String>,
    required: Option<String>,
}

/// `T` from a JSON object already parsed (a request body, or a row of an
/// import file), with the service's messages.
pub(crate) fn from_object<T: DeserializeOwned>(value: Value) -> Result<T, FieldRefusal> {
    serde_path_to_error::deserialize(JsonValue(value)).map_err(|e| {
        let mut path = e.path().iter();
        let first = path.next();
        let field = match (e.inner(), first) {
            (Refusal::Missing(field), None) => Some((*field).to_owned()),
            (_, Some(Segment::Map { key })) => Some(key.clone()),
            _ => None,
        };
        let required = match (e.inner(), first, path.next()) {
            (Refusal::Missing(_), None, _)
            | (
                Refusal::Blank | Refusal::WrongType { null: true, .. },
                Some(Segment::Map { .. }),
                None,
            ) => field.clone(),
            _ => None,
        };
        FieldRefusal {
            message: message(e.path(), e.inner()),
            field,
            required,
        }
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status().as_u16() == 413 {
        ApiError::PayloadTooLarge("request body is too large".to_owned())
    } else {
        ApiError::BadRequest(format!(
            "cannot read request body: {}",
            rejection.body_text()
        ))
    }
}

/// A query string read into `T`. Values arrive as text, so `T`'s fields
/// parse them (`FromStr`) with [`from_query`].
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|_| ApiError::BadRequest("query string is malformed".to_owned()))?;
        let pairs = MapDeserializer::<_, Refusal>::new(pairs.into_iter());
        serde_path_to_error::deserialize(pairs)
            .map(Self)
            .map_err(|e| ApiError::BadRequest(message(e.path(), e.inner())))
    }
}

/// A query value parsed with its type's `FromStr`, whose error is the
/// refusal ("must be ...").
///
/// # Errors
/// The value's refusal.
pub fn from_query<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    let raw: String = serde::Deserialize::deserialize(d)?;
    raw.parse().map(Some).map_err(serde::de::Error::custom)
}

/// As [`from_query`], but an empty value means absent (`?status=`).
///
/// # Errors
/// The value's refusal.
pub fn from_query_or_empty<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    let raw: String = serde::Deserialize::deserialize(d)?;
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse().map(Some).map_err(serde::de::Error::custom)
}

impl FromRequestParts<AppState> for Deadline {
    type Rejection = ApiError;

    /// The deadline the request middleware set; a fresh one if it did not run.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(parts
            .extensions
            .get::<Deadline>()
            .copied()
            .unwrap_or_else(|| Deadline::after(state.settings.server.request_timeout)))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::domain::{Count, OptionalText, Text, TextList};

    #[derive(Debug, Deserialize)]
    #[expect(dead_code, reason = "read only through Debug")]
    struct Example {
        name: Text<5>,
        #[serde(default)]
        note: OptionalText<5>,
        names: Option<TextList<5>>,
        limit: Option<Count<1, 10>>,
    }

    fn message(json: &str) -> String {
        ApiError::from(read_json::<Example>(json.as_bytes()).unwrap_err()).to_string()
    }

    #[test]
    fn refusals_name_the_field_and_say_what_is_wrong() {
        assert_eq!(message("{}"), "name is required");
        assert_eq!(message(r#"{"name": null}"#), "name is required");
        assert_eq!(message(r#"{"name": "  "}"#), "name is required");
        assert_eq!(message(r#"{"name": 5}"#), "name must be a string");
        assert_eq!(
            message(r#"{"name": "toolong"}"#),
            "name must be at most 5 characters"
        );
        assert_eq!(
            message(r#"{"name": "a", "note": 1}"#),
            "note must be a string"
        );
        assert_eq!(
            message(r#"{"name": "a", "names": "x"}"#),
            "names must be an array"
        );
        assert_eq!(
            message(r#"{"name": "a", "names": []}"#),
            "names must not be empty"
        );
        assert_eq!(
            message(r#"{"name": "a", "names": ["b", " "]}"#),
            "names[1] must not be empty"
        );
        assert_eq!(
            message(r#"{"name": "a", "names": ["b", 2]}"#),
            "names[1] must be a string"
        );
        assert_eq!(
            message(r#"{"name": "a", "limit": "3"}"#),
            "limit must be an integer between 1 and 10"
        );
        assert_eq!(message("[1]"), "request body must be a JSON object");
        assert_eq!(message("{"), "request body is not valid JSON");
        assert_eq!(
            message(r#"{"name": "a"} x"#),
            "request body is not valid JSON"
        );
        let ok = read_json::<Example>(br#"{"name": " a ", "note": "", "extra": 1}"#).unwrap();
        assert_eq!(ok.name.as_str(), "a");
    }
}
