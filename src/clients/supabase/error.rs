//! What can go wrong when calling PostgREST, parsed from its error body
//! `{"code", "message", "details", "hint"}`.

use std::time::Duration;

use serde::Deserialize;

use crate::resilience::{CallError, Failure};

/// A PostgREST call's failure after the resilience policy (retries, breaker, deadline).
pub type SupabaseCallError = CallError<SupabaseError>;

/// A failed PostgREST call.
#[derive(Debug, thiserror::Error)]
pub enum SupabaseError {
    /// The request did not complete: connection refused or reset, timeout.
    #[error("PostgREST unreachable: {message}")]
    Transport {
        /// What the HTTP client reported.
        message: String,
        /// Whether the attempt timed out.
        timed_out: bool,
    },
    /// PostgREST answered with a non-2xx status.
    #[error("PostgREST answered {status} ({code}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// PostgREST or PostgreSQL error code, such as `42501` or `PGRST301`.
        code: String,
        /// PostgREST's message.
        message: String,
        /// PostgREST's details, when given.
        details: Option<String>,
        /// PostgREST's hint, when given.
        hint: Option<String>,
    },
    /// A 2xx answer whose body is not what we asked for.
    #[error("{0}")]
    Decode(String),
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    hint: Option<String>,
}

impl SupabaseError {
    pub(super) fn transport(timed_out: bool, error: &dyn std::fmt::Display) -> Self {
        Self::Transport {
            message: error.to_string(),
            timed_out,
        }
    }

    pub(super) fn from_response(status: u16, body: &str) -> Self {
        let parsed = serde_json::from_str::<ErrorBody>(body).ok();
        let parsed = parsed.unwrap_or(ErrorBody {
            code: None,
            message: Some(body.chars().take(200).collect()),
            details: None,
            hint: None,
        });
        Self::Api {
            status,
            code: parsed.code.unwrap_or_default(),
            message: parsed.message.unwrap_or_default(),
            details: parsed.details,
            hint: parsed.hint,
        }
    }
}

impl SupabaseError {
    /// The HTTP status PostgREST answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::Transport { .. } | Self::Decode(_) => None,
        }
    }
}

impl SupabaseError {
    /// The database refused the caller (row-level security, a missing
    /// grant, a token it would not take): their rights may have changed.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Api { status, code, .. } if *status == 401 || *status == 403 || code == "42501")
    }
}

impl Failure for SupabaseError {
    /// Connection failures, timeouts, 429 and 5xx can pass; an RLS
    /// rejection, a unique violation or a bad filter cannot.
    fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Api { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            Self::Decode(_) => false,
        }
    }

    /// An answer we cannot decode is our bug for that request, not the
    /// database failing: it must never open the breaker for every tenant.
    fn is_dependency_failure(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Decode(_) => false,
            Self::Api { status, .. } => *status == 429 || *status >= 500,
        }
    }

    fn is_rate_limit(&self) -> bool {
        self.status() == Some(429)
    }

    fn retry_hint(&self) -> Option<Duration> {
        None
    }

    fn timed_out(after: Duration) -> Self {
        Self::Transport {
            message: format!("no answer within {after:?}"),
            timed_out: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undecodable_answer_is_neither_retried_nor_held_against_the_database() {
        let error = SupabaseError::Decode("number out of range".to_owned());
        assert!(!error.is_retryable());
        assert!(!error.is_dependency_failure());
        let api: crate::error::ApiError = CallError::Upstream(error).into();
        assert_eq!(api.status().as_u16(), 500);
    }

    #[test]
    fn postgrest_error_bodies_are_parsed() {
        let body = r#"{"code":"42501","message":"new row violates row-level security policy","details":null,"hint":null}"#;
        match SupabaseError::from_response(403, body) {
            SupabaseError::Api {
                status,
                code,
                message,
                ..
            } => {
                assert_eq!(status, 403);
                assert_eq!(code, "42501");
                assert!(message.contains("row-level security"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
