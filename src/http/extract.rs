//! Request input: the JSON body as an object whose fields are read one by one
//! with the original service's messages ("product_name is required") and
//! limits on every size; plus the request [`Deadline`]. Fields the endpoint
//! does not know are ignored, as the original did, so its clients keep working.
//! Every failure is an [`ApiError`] in the envelope, never axum's plain text.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::resilience::Deadline;
use crate::state::AppState;

/// A JSON object body, read field by field.
#[derive(Debug)]
pub struct JsonObject(Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<Value>::from_request(request, state)
            .await
            .map_err(json_rejection)?;
        match value {
            Value::Object(map) => Ok(Self(map)),
            _ => Err(ApiError::BadRequest(
                "request body must be a JSON object".to_owned(),
            )),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
            "expected a request body with content-type application/json".to_owned(),
        ),
        JsonRejection::JsonSyntaxError(_) | JsonRejection::JsonDataError(_) => {
            ApiError::BadRequest("request body is not valid JSON".to_owned())
        }
        JsonRejection::BytesRejection(e) if e.status().as_u16() == 413 => {
            ApiError::PayloadTooLarge("request body is too large".to_owned())
        }
        other => ApiError::BadRequest(format!("cannot read request body: {}", other.body_text())),
    }
}

impl JsonObject {
    /// A required, non-blank string of at most `max_chars` characters.
    /// Blank counts as missing, as in the original ("product_name is required").
    pub fn required_str(&mut self, name: &str, max_chars: usize) -> Result<String, ApiError> {
        if matches!(self.0.get(name), Some(Value::String(s)) if s.trim().is_empty()) {
            self.0.remove(name);
        }
        self.optional_str(name, max_chars)?
            .ok_or_else(|| ApiError::BadRequest(format!("{name} is required")))
    }

    /// An optional string (absent or null means none), checked like [`Self::required_str`].
    pub fn optional_str(
        &mut self,
        name: &str,
        max_chars: usize,
    ) -> Result<Option<String>, ApiError> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => text(name, s, max_chars).map(Some),
            Some(_) => Err(ApiError::BadRequest(format!("{name} must be a string"))),
        }
    }

    /// A required array of strings with `1..=max_items` entries, each checked
    /// like [`Self::required_str`].
    pub fn required_str_array(
        &mut self,
        name: &str,
        max_items: usize,
        max_chars: usize,
        too_many: impl FnOnce(usize) -> String,
    ) -> Result<Vec<String>, ApiError> {
        let items = match self.0.remove(name) {
            None | Some(Value::Null) => {
                return Err(ApiError::BadRequest(format!("{name} is required")));
            }
            Some(Value::Array(items)) => items,
            Some(_) => return Err(ApiError::BadRequest(format!("{name} must be an array"))),
        };
        if items.is_empty() {
            return Err(ApiError::BadRequest(format!("{name} must not be empty")));
        }
        if items.len() > max_items {
            return Err(ApiError::BadRequest(too_many(max_items)));
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => text(&format!("{name}[{i}]"), s, max_chars),
                _ => Err(ApiError::BadRequest(format!(
                    "{name}[{i}] must be a string"
                ))),
            })
            .collect()
    }
}

impl JsonObject {
    /// An optional number within `min..=max` (absent or null means none).
    pub fn optional_number(
        &mut self,
        name: &str,
        min: f64,
        max: f64,
    ) -> Result<Option<f64>, ApiError> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(ApiError::BadRequest(format!(
                    "{name} must be between {min} and {max}"
                ))),
            },
            Some(_) => Err(ApiError::BadRequest(format!("{name} must be a number"))),
        }
    }

    /// An optional whole number within `min..=max`.
    pub fn optional_integer(
        &mut self,
        name: &str,
        min: i64,
        max: i64,
    ) -> Result<Option<i64>, ApiError> {
        let out_of_range =
            || ApiError::BadRequest(format!("{name} must be an integer between {min} and {max}"));
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(out_of_range()),
            },
            Some(_) => Err(out_of_range()),
        }
    }

    /// An optional JSON object of at most `max_keys` keys and `max_bytes`
    /// bytes once serialised.
    pub fn optional_object(
        &mut self,
        name: &str,
        max_keys: usize,
        max_bytes: usize,
    ) -> Result<Option<Map<String, Value>>, ApiError> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => {
                if map.len() > max_keys {
                    return Err(ApiError::BadRequest(format!(
                        "{name} must have at most {max_keys} keys"
                    )));
                }
                let size = serde_json::to_vec(&map).map_or(usize::MAX, |v| v.len());
                if size > max_bytes {
                    return Err(ApiError::BadRequest(format!(
                        "{name} must be at most {max_bytes} bytes"
                    )));
                }
                storable(name, &Value::Object(map.clone()), 1)?;
                Ok(Some(map))
            }
            Some(_) => Err(ApiError::BadRequest(format!("{name} must be an object"))),
        }
    }
}

/// Deepest nesting accepted in stored JSON (an object at the top is level 1).
/// Rows come back wrapped in two more levels and must stay well within what
/// any JSON reader (ours included, 128) accepts.
pub const MAX_JSON_DEPTH: usize = 32;

/// Refuses JSON that Postgres would refuse or that could not be read back:
/// nesting past [`MAX_JSON_DEPTH`], and U+0000 in any key or string (a
/// `jsonb` cannot hold it).
fn storable(name: &str, value: &Value, depth: usize) -> Result<(), ApiError> {
    let nul = |s: &str| s.contains('\0');
    match value {
        Value::Array(_) | Value::Object(_) if depth > MAX_JSON_DEPTH => Err(ApiError::BadRequest(
            format!("{name} must be nested at most {MAX_JSON_DEPTH} levels deep"),
        )),
        Value::Array(items) => items.iter().try_for_each(|v| storable(name, v, depth + 1)),
        Value::Object(map) => map.iter().try_for_each(|(key, v)| {
            if nul(key) {
                return Err(nul_refused(name));
            }
            storable(name, v, depth + 1)
        }),
        Value::String(s) if nul(s) => Err(nul_refused(name)),
        _ => Ok(()),
    }
}

fn nul_refused(name: &str) -> ApiError {
    ApiError::BadRequest(format!("{name} must not contain the character U+0000"))
}

/// Trims, and refuses blank, overlong or control-character text.
fn text(name: &str, value: String, max_chars: usize) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::BadRequest(format!("{name} must not be empty")));
    }
    if trimmed.chars().count() > max_chars {
        return Err(ApiError::BadRequest(format!(
            "{name} must be at most {max_chars} characters"
        )));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(ApiError::BadRequest(format!(
            "{name} must not contain control characters"
        )));
    }
    Ok(trimmed.to_owned())
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
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> JsonObject {
        match value {
            Value::Object(map) => JsonObject(map),
            _ => unreachable!(),
        }
    }

    #[test]
    fn strings_are_checked_with_the_field_name() {
        let mut body =
            object(json!({"a": "  x  ", "b": 5, "c": "", "d": "x\u{0}y", "e": "toolong"}));
        assert_eq!(body.required_str("a", 10).unwrap(), "x");
        assert_eq!(
            body.required_str("b", 10).unwrap_err().to_string(),
            "b must be a string"
        );
        assert_eq!(
            body.required_str("c", 10).unwrap_err().to_string(),
            "c is required"
        );
        assert!(
            body.required_str("d", 10)
                .unwrap_err()
                .to_string()
                .contains("control")
        );
        assert!(
            body.required_str("e", 3)
                .unwrap_err()
                .to_string()
                .contains("at most 3")
        );
        assert_eq!(
            body.required_str("zz", 3).unwrap_err().to_string(),
            "zz is required"
        );
    }

    #[test]
    fn arrays_are_bounded() {
        let mut body = object(json!({"names": ["a", "b", "c"]}));
        let err = body
            .required_str_array("names", 2, 10, |max| {
                format!("Maximum {max} products per batch")
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "Maximum 2 products per batch");
        let mut body = object(json!({"names": "a"}));
        assert_eq!(
            body.required_str_array("names", 2, 10, |_| String::new())
                .unwrap_err()
                .to_string(),
            "names must be an array"
        );
    }
}
