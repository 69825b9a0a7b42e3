//! What can go wrong when calling PostgREST, classified where it arises:
//! PostgREST's error body `{"code", "message", "details", "hint"}` becomes a
//! [`Refusal`] (the request itself was refused) or an outage, so nothing
//! above this module reads HTTP statuses or Postgres codes.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::resilience::{CallError, Failure};

/// A PostgREST call's failure after the resilience policy (retries, breaker, deadline).
pub type SupabaseCallError = CallError<SupabaseError>;

/// A failed PostgREST call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SupabaseError {
    /// The request did not complete: connection refused or reset, timeout.
    #[error("PostgREST unreachable: {message}")]
    Transport {
        /// What the HTTP client reported.
        message: String,
        /// Whether the attempt timed out.
        timed_out: bool,
    },
    /// PostgREST refused the request (a 4xx other than 429). Trying again
    /// cannot help, and it says nothing about the database's health.
    #[error("PostgREST refused the request ({reason:?}): {answer}")]
    Refused {
        /// Why, as the service cares.
        reason: Refusal,
        /// PostgREST's own words, for the log (boxed: errors stay small).
        answer: Box<PostgrestAnswer>,
    },
    /// PostgREST or the database is failing or overloaded (429 or 5xx).
    #[error("PostgREST unavailable: {answer}")]
    Unavailable {
        /// PostgREST's own words, for the log.
        answer: Box<PostgrestAnswer>,
    },
    /// Supabase's API gateway refused the project API key we sent (a 401
    /// without PostgREST's `code`): wrong, rotated or disabled. Our
    /// misconfiguration, never the caller's: no retry can help, and it says
    /// nothing about the database.
    #[error("the API gateway refused our project API key: {answer}")]
    KeyRejected {
        /// The gateway's own words, for the log.
        answer: Box<PostgrestAnswer>,
    },
    /// The statement ran past its role's `statement_timeout` (`57014`; on
    /// Supabase 3 s for anon, 8 s for authenticated and the authenticator).
    /// That request's work was too slow, not the database down: trying it
    /// again costs as much, and it must not open the breaker every tenant
    /// shares.
    #[error("statement timeout: {answer}")]
    StatementTimeout {
        /// PostgREST's own words, for the log.
        answer: Box<PostgrestAnswer>,
    },
    /// A 2xx answer whose body is not what we asked for.
    #[error("{0}")]
    Decode(String),
    /// An answer past the bound we read: that request's rows are too large,
    /// the database is not failing.
    #[error("PostgREST answer over {limit} bytes")]
    TooLarge {
        /// The bound, in bytes.
        limit: usize,
    },
}

/// Why PostgREST refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Row-level security or a missing grant (`42501`, 403).
    Forbidden,
    /// The token was not accepted (`PGRST301`..`PGRST303`, 401): expired,
    /// or signed by a key the database does not trust.
    TokenRejected,
    /// A unique constraint (`23505`).
    Conflict,
    /// A foreign key names a row that does not exist (`23503`).
    MissingReference,
    /// A single row was asked for and none exists (`PGRST116`).
    NotFound,
    /// The function called, or something our SQL names, is not in the
    /// schema (`PGRST202`, `42883`, `42P01`, `42704`): migrations not
    /// applied, pgvector out of reach, a bug on our side.
    MissingFunction,
    /// One of our SQL functions refused, with SQLSTATE class `CA` and a
    /// message written for the client (see `db/migrations/0013`).
    Rule(Breach),
    /// Anything else: a filter, a value or a body the database refused.
    Invalid,
}

/// Which rule of a workflow function a request broke (SQLSTATE `CA400`,
/// `CA403`, `CA404`, `CA409`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    /// Bad input the database alone could check (`CA400`).
    Invalid,
    /// The caller's role or org does not allow it (`CA403`).
    Forbidden,
    /// No such row (`CA404`).
    NotFound,
    /// The row is not in a state that allows it (`CA409`).
    Conflict,
}

/// What PostgREST answered, kept for the log.
#[derive(Debug, Clone)]
pub struct PostgrestAnswer {
    /// HTTP status.
    pub status: u16,
    /// PostgREST or PostgreSQL error code, such as `42501` or `PGRST301`.
    pub code: String,
    /// PostgREST's message.
    pub message: String,
    /// PostgREST's details, when given.
    pub details: Option<String>,
    /// PostgREST's hint, when given.
    pub hint: Option<String>,
}

impl fmt::Display for PostgrestAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)?;
        if let Some(details) = &self.details {
            write!(f, "; details: {details}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
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
    pub(super) fn transport(timed_out: bool, error: &dyn fmt::Display) -> Self {
        Self::Transport {
            message: error.to_string(),
            timed_out,
        }
    }

    pub(crate) fn from_response(status: u16, body: &str) -> Self {
        let parsed = serde_json::from_str::<ErrorBody>(body).ok();
        // PostgREST always names a code; an answer without one is the
        // gateway in front of it speaking.
        let from_gateway = parsed.as_ref().is_none_or(|p| p.code.is_none());
        let parsed = parsed.unwrap_or(ErrorBody {
            code: None,
            message: Some(body.chars().take(200).collect()),
            details: None,
            hint: None,
        });
        let answer = Box::new(PostgrestAnswer {
            status,
            code: parsed.code.unwrap_or_default(),
            message: parsed.message.unwrap_or_default(),
            details: parsed.details,
            hint: parsed.hint,
        });
        if status == 401 && from_gateway {
            return Self::KeyRejected { answer };
        }
        if answer.code == "57014" {
            return Self::StatementTimeout { answer };
        }
        if status == 429 || status >= 500 {
            return Self::Unavailable { answer };
        }
        let reason = match answer.code.as_str() {
            "42501" => Refusal::Forbidden,
            "23505" => Refusal::Conflict,
            "23503" => Refusal::MissingReference,
            "PGRST116" => Refusal::NotFound,
            "PGRST301" | "PGRST302" | "PGRST303" => Refusal::TokenRejected,
            // A function, operator, table or type our SQL names is not
            // there: migrations not applied, or pgvector moved to a schema
            // our functions do not see.
            "PGRST202" | "42883" | "42P01" | "42704" => Refusal::MissingFunction,
            "CA400" => Refusal::Rule(Breach::Invalid),
            "CA403" => Refusal::Rule(Breach::Forbidden),
            "CA404" => Refusal::Rule(Breach::NotFound),
            "CA409" => Refusal::Rule(Breach::Conflict),
            _ if status == 401 => Refusal::TokenRejected,
            _ if status == 403 => Refusal::Forbidden,
            _ => Refusal::Invalid,
        };
        Self::Refused { reason, answer }
    }

    /// The database refused the caller (row-level security, a missing
    /// grant, a token it would not take): their rights may have changed.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Refused {
                reason: Refusal::Forbidden
                    | Refusal::TokenRejected
                    | Refusal::Rule(Breach::Forbidden),
                ..
            }
        )
    }
}

impl Failure for SupabaseError {
    /// Connection failures, timeouts, 429 and 5xx can pass; a refusal cannot.
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Transport { .. } | Self::Unavailable { .. })
    }

    /// An answer we cannot decode is our bug for that request, not the
    /// database failing: it must never open the breaker for every tenant.
    fn is_dependency_failure(&self) -> bool {
        matches!(self, Self::Transport { .. } | Self::Unavailable { .. })
    }

    fn is_rate_limit(&self) -> bool {
        matches!(self, Self::Unavailable { answer } if answer.status == 429)
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
    fn an_answer_past_the_bound_is_neither_retried_nor_held_against_the_database() {
        let error = SupabaseError::TooLarge { limit: 10 };
        assert!(!error.is_retryable());
        assert!(!error.is_dependency_failure());
        let api: crate::error::ApiError = CallError::Upstream(error).into();
        assert_eq!(api.status().as_u16(), 500);
    }

    #[test]
    fn postgrest_answers_are_classified_by_code_then_status() {
        let classify = |status: u16, code: &str| {
            let body = format!(r#"{{"code":"{code}","message":"m","details":null,"hint":null}}"#);
            match SupabaseError::from_response(status, &body) {
                SupabaseError::Refused { reason, answer } => {
                    assert_eq!((answer.status, answer.code.as_str()), (status, code));
                    Some(reason)
                }
                SupabaseError::Unavailable { .. } => None,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(classify(403, "42501"), Some(Refusal::Forbidden));
        assert_eq!(classify(409, "23505"), Some(Refusal::Conflict));
        assert_eq!(classify(409, "23503"), Some(Refusal::MissingReference));
        assert_eq!(classify(406, "PGRST116"), Some(Refusal::NotFound));
        assert_eq!(classify(401, "PGRST303"), Some(Refusal::TokenRejected));
        assert_eq!(classify(404, "PGRST202"), Some(Refusal::MissingFunction));
        assert_eq!(classify(401, "XX"), Some(Refusal::TokenRejected));
        assert_eq!(classify(400, "22P02"), Some(Refusal::Invalid));
        assert_eq!(
            classify(400, "CA409"),
            Some(Refusal::Rule(Breach::Conflict))
        );
        assert_eq!(classify(503, "XX000"), None);
        assert_eq!(classify(429, ""), None);
        assert!(SupabaseError::from_response(403, "{}").is_refusal());
        assert_eq!(classify(404, "42883"), Some(Refusal::MissingFunction));
    }

    #[test]
    fn the_gateway_refusing_our_key_and_a_statement_timeout_are_neither_retried_nor_outages() {
        let refused = SupabaseError::from_response(
            401,
            r#"{"message":"Invalid API key","hint":"Double check your Supabase `anon` or `service_role` API key."}"#,
        );
        let timeout = SupabaseError::from_response(
            500,
            r#"{"code":"57014","message":"canceling statement due to statement timeout","details":null,"hint":null}"#,
        );
        assert!(
            matches!(refused, SupabaseError::KeyRejected { .. }),
            "{refused:?}"
        );
        assert!(
            matches!(timeout, SupabaseError::StatementTimeout { .. }),
            "{timeout:?}"
        );
        for error in [&refused, &timeout] {
            assert!(!error.is_retryable());
            assert!(!error.is_dependency_failure());
        }
        // PostgREST's own 401 names a code: the caller's token, not our key.
        let token =
            SupabaseError::from_response(401, r#"{"code":"PGRST301","message":"JWT expired"}"#);
        assert!(token.is_refusal());
        let status = |e: SupabaseError| {
            crate::error::ApiError::from(CallError::Upstream(e))
                .status()
                .as_u16()
        };
        assert_eq!(status(refused), 503);
        assert_eq!(status(timeout), 504);
    }
}
