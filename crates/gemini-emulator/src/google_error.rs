//! Google's error envelope (`google.rpc.Status` as JSON), the errors Gemini
//! answers with, and the API-key rules it applies before anything else.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::admin::Quota;
use crate::wire::json_response;

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

    /// 400 INVALID_ARGUMENT with a `BadRequest` field violation, as Gemini
    /// reports malformed requests.
    pub(crate) fn invalid_argument(field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        Self::new(StatusCode::BAD_REQUEST, description.clone()).with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{ "field": field, "description": description }],
        }))
    }

    pub(crate) fn with_detail(mut self, detail: Value) -> Self {
        self.details.push(detail);
        self
    }

    /// 429 RESOURCE_EXHAUSTED naming a per-minute or per-day quota, with
    /// `RetryInfo` (and no `Retry-After` header, as Gemini).
    pub(crate) fn quota_exceeded(
        quota: Quota,
        retry_seconds: f64,
        limit: u32,
        model: &str,
    ) -> Self {
        let quota_id = match quota {
            Quota::PerMinute => "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            Quota::PerDay => "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        };
        let retry_seconds = retry_seconds.max(0.0);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "You exceeded your current quota, please check your plan and billing details. \
                 For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n\
                 * Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, \
                 limit: {limit}, model: {model}\nPlease retry in {retry_seconds:.3}s."
            ),
        )
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": quota_id,
                "quotaDimensions": { "location": "global", "model": model },
                "quotaValue": limit.to_string(),
            }],
        }))
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
            }],
        }))
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format_duration(retry_seconds),
        }))
    }

    /// The answer for an injected `error` fault.
    pub(crate) fn injected(
        status: u16,
        quota: Quota,
        retry_delay_seconds: Option<f64>,
        model: &str,
    ) -> Self {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match code.as_u16() {
            429 => Self::quota_exceeded(quota, retry_delay_seconds.unwrap_or(7.0), 10, model),
            500 => Self::new(
                code,
                "An internal error has occurred. Please retry or report in \
                 https://developers.generativeai.google/guide/troubleshooting",
            ),
            503 => Self::new(code, "The model is overloaded. Please try again later."),
            504 => Self::new(code, "The request timed out. Please try again."),
            _ => Self::new(code, "Injected error."),
        }
    }
}

/// A protobuf Duration: decimal seconds with an `s` suffix (`"7s"`, `"2.5s"`).
fn format_duration(seconds: f64) -> String {
    if seconds.fract() == 0.0 {
        format!("{seconds:.0}s")
    } else {
        format!("{}s", (seconds * 1000.0).round() / 1000.0)
    }
}

/// Google's canonical status name for an HTTP status.
fn canonical_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
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
        json_response(self.status, &json!({ "error": error }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_as_protobuf_does() {
        assert_eq!(format_duration(7.0), "7s");
        assert_eq!(format_duration(2.5), "2.5s");
        assert_eq!(format_duration(34.4567), "34.457s");
    }
}
