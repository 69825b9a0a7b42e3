//! The one error type at the HTTP edge, rendered as the original service's
//! envelope `{"error": {"code", "message", "details"?}}`.
//!
//! Every failure a client can see goes through [`ApiError`]: handler errors,
//! extractor rejections, 404 and 405 fallbacks, and bare error responses from
//! tower layers (see `http::middleware::error_envelope`). 5xx messages stay
//! generic; the internal cause is logged once here, inside the request span.
//! The mapping from every service and client error is in `mapping`.

mod mapping;

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::services::catalog::RepairProgress;

/// `Retry-After` while the API gateway refuses our key: an operator must act,
/// so clients should not come back at once.
const KEY_REJECTED_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// An error answer of the API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or fails validation.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource or route.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with existing data.
    #[error("{0}")]
    Conflict(String),
    /// 409: an embedding repair of the org is already running; its progress
    /// goes in `details.repair`.
    #[error("an embedding repair of this organisation is already running")]
    RepairRunning(RepairProgress),
    /// 413: the request body is larger than `MAX_BODY_BYTES`.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: the body is not `application/json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429: the caller sent too many requests.
    #[error("{message}")]
    RateLimited {
        /// Shown to the client.
        message: String,
        /// Sent as `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// 502: a dependency answered with something unusable.
    #[error("{service} failed: {detail}")]
    ExternalService {
        /// The dependency, named in `details.service`.
        service: &'static str,
        /// Logged, never shown.
        detail: String,
    },
    /// 503 `DATABASE_ERROR`: the database could not serve the request.
    #[error("database failure: {0}")]
    Database(String),
    /// 503 `SERVICE_UNAVAILABLE`: overloaded, or a dependency's breaker is open.
    #[error("{message}")]
    ServiceUnavailable {
        /// Shown to the client.
        message: String,
        /// Sent as `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// 504: the request did not finish within its deadline.
    #[error("{0}")]
    GatewayTimeout(String),
    /// 500: a bug or an unexpected state; the detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) | Self::RepairRunning(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::ExternalService { .. } => StatusCode::BAD_GATEWAY,
            Self::Database(_) | Self::ServiceUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The envelope's UPPER_SNAKE `code`, as the original service named them.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BAD_REQUEST",
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Conflict(_) | Self::RepairRunning(_) => "CONFLICT",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::RateLimited { .. } => "RATE_LIMIT_EXCEEDED",
            Self::ExternalService { .. } => "EXTERNAL_SERVICE_ERROR",
            Self::Database(_) => "DATABASE_ERROR",
            Self::ServiceUnavailable { .. } => "SERVICE_UNAVAILABLE",
            Self::GatewayTimeout(_) => "GATEWAY_TIMEOUT",
            Self::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// What the client may read: the message for 4xx, a fixed text for 5xx.
    pub fn public_message(&self) -> String {
        match self {
            Self::ExternalService { service, .. } => format!("{service} request failed"),
            Self::Database(_) => "Database temporarily unavailable".to_owned(),
            Self::Internal(_) => "An internal error occurred".to_owned(),
            other => other.to_string(),
        }
    }

    fn details(&self) -> Option<ErrorDetails> {
        match self {
            Self::ExternalService { service, .. } => Some(ErrorDetails {
                service: Some(service),
                repair: None,
            }),
            Self::RepairRunning(progress) => Some(ErrorDetails {
                service: None,
                repair: Some(RepairProgressBody {
                    items_to_repair: progress.items_to_repair,
                    repaired: progress.repaired,
                    failed: progress.failed,
                }),
            }),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. }
            | Self::ServiceUnavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The error for a bare status produced outside our handlers (tower layers,
    /// axum's own rejections), so those answers use the envelope too.
    pub fn from_status(status: StatusCode) -> Self {
        let reason = status.canonical_reason().unwrap_or("Error").to_owned();
        match status {
            StatusCode::NOT_FOUND => Self::NotFound("resource not found".to_owned()),
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::PayloadTooLarge("request body is too large".to_owned())
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(
                "expected a request body with content-type application/json".to_owned(),
            ),
            StatusCode::UNAUTHORIZED => Self::Unauthorized(reason),
            StatusCode::FORBIDDEN => Self::Forbidden(reason),
            StatusCode::CONFLICT => Self::Conflict(reason),
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited {
                message: reason,
                retry_after: None,
            },
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => {
                Self::GatewayTimeout("request did not complete in time".to_owned())
            }
            StatusCode::SERVICE_UNAVAILABLE => Self::ServiceUnavailable {
                message: "service temporarily unavailable".to_owned(),
                retry_after: None,
            },
            s if s.is_client_error() => Self::BadRequest(reason),
            s => Self::Internal(format!("bare {s} response from a layer")),
        }
    }
}

/// Every error answer: `{"error": {"code", "message", "details"?}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    error: ErrorBody,
}

/// The error itself.
#[derive(Debug, Serialize, ToSchema)]
struct ErrorBody {
    /// UPPER_SNAKE, e.g. `BAD_REQUEST`, `RATE_LIMIT_EXCEEDED`, `DATABASE_ERROR`.
    #[schema(value_type = String)]
    code: &'static str,
    /// For 4xx what was wrong; for 5xx a fixed text.
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<ErrorDetails>,
}

/// Present on 502 answers (`service`) and on 409 for a repair already
/// running (`repair`).
#[derive(Debug, Serialize, ToSchema)]
struct ErrorDetails {
    /// The dependency that failed, e.g. `gemini`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    service: Option<&'static str>,
    /// How far the running repair has got.
    #[serde(skip_serializing_if = "Option::is_none")]
    repair: Option<RepairProgressBody>,
}

/// How far a running repair has got.
#[derive(Debug, Serialize, ToSchema)]
struct RepairProgressBody {
    /// Items the running repair set out to embed.
    items_to_repair: u64,
    /// Embedded and written so far.
    repaired: u64,
    /// Failed so far.
    failed: u64,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, code = self.code(), "request failed");
        } else {
            tracing::debug!(error = %self, code = self.code(), "request rejected");
        }
        let envelope = ErrorEnvelope {
            error: ErrorBody {
                code: self.code(),
                message: self.public_message(),
                details: self.details(),
            },
        };
        let mut response = (status, Json(envelope)).into_response();
        if let Some(wait) = self.retry_after() {
            // Retry-After takes whole seconds; round up so clients never retry early.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if matches!(self, Self::Unauthorized(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::supabase::{SupabaseCallError, SupabaseError};
    use crate::resilience::CallError;

    #[test]
    fn codes_follow_the_original_envelope() {
        let cases = [
            (ApiError::BadRequest("x".into()), 400, "BAD_REQUEST"),
            (ApiError::NotFound("x".into()), 404, "NOT_FOUND"),
            (ApiError::MethodNotAllowed, 405, "METHOD_NOT_ALLOWED"),
            (
                ApiError::ExternalService {
                    service: "gemini",
                    detail: "x".into(),
                },
                502,
                "EXTERNAL_SERVICE_ERROR",
            ),
            (ApiError::Database("x".into()), 503, "DATABASE_ERROR"),
            (ApiError::GatewayTimeout("x".into()), 504, "GATEWAY_TIMEOUT"),
            (ApiError::Internal("x".into()), 500, "INTERNAL_ERROR"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.code(), code, "{error:?}");
        }
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        let error = ApiError::Internal("connection string postgres://secret".into());
        assert_eq!(error.public_message(), "An internal error occurred");
        let error = ApiError::ExternalService {
            service: "gemini",
            detail: "raw upstream body".into(),
        };
        assert!(!error.public_message().contains("raw upstream body"));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let response = ApiError::ServiceUnavailable {
            message: "open".into(),
            retry_after: Some(Duration::from_millis(1500)),
        }
        .into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn postgrest_answers_map_by_their_reason_and_outages_are_database_errors() {
        let api = |status: u16, code: &str| {
            let body = format!(r#"{{"code":"{code}","message":"m"}}"#);
            ApiError::from(CallError::Upstream(SupabaseError::from_response(
                status, &body,
            )))
        };
        let cases = [
            (api(403, "42501"), 403),
            (api(409, "23505"), 409),
            (api(409, "23503"), 400),
            (api(406, "PGRST116"), 404),
            (api(401, "PGRST303"), 401),
            (api(404, "PGRST202"), 500),
            (api(400, "22P02"), 400),
            (api(500, "XX000"), 503),
            (api(429, ""), 503),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
        }
        let down = ApiError::from(SupabaseCallError::Upstream(SupabaseError::Transport {
            message: "connection refused".into(),
            timed_out: false,
        }));
        assert_eq!(down.code(), "DATABASE_ERROR");
    }
}
