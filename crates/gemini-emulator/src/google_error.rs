//! Google's error envelope (`google.rpc.Status` as JSON) and the API-key rules
//! Gemini applies before anything else.

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answer in Gemini's format.
#[derive(Debug)]
pub(crate) struct GoogleError {
    status: StatusCode,
    message: String,
    details: Vec<Value>,
}

impl GoogleError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn with_detail(mut self, detail: Value) -> Self {
        self.details.push(detail);
        self
    }
}

/// Google's canonical status name for an HTTP status.
fn canonical_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

impl IntoResponse for GoogleError {
    fn into_response(self) -> Response {
        let mut error = json!({
            "code": self.status.as_u16(),
            "message": self.message,
            "status": canonical_status(self.status),
        });
        if !self.details.is_empty() {
            error["details"] = Value::Array(self.details);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

/// Gemini takes the key from `x-goog-api-key` or the `key` query parameter.
/// No key is 403 PERMISSION_DENIED; a wrong key is 400 INVALID_ARGUMENT.
pub(crate) fn check_api_key(request: &Request, expected: &str) -> Result<(), GoogleError> {
    let from_header = request
        .headers()
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let from_query = request.uri().query().and_then(|query| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == "key")
            .map(|(_, v)| v.to_owned())
    });
    match from_header.or(from_query) {
        None => Err(GoogleError::new(
            StatusCode::FORBIDDEN,
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
        )),
        Some(key) if key == expected => Ok(()),
        Some(_) => Err(GoogleError::new(
            StatusCode::BAD_REQUEST,
            "API key not valid. Please pass a valid API key.",
        )
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": { "service": "generativelanguage.googleapis.com" },
        }))),
    }
}
