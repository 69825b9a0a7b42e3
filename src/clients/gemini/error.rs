//! What can go wrong when calling Gemini, and whether trying again can help.

use std::time::Duration;

use crate::resilience::{CallError, Failure};

/// A Gemini call's failure after the resilience policy (retries, breaker, deadline).
pub type GeminiCallError = CallError<GeminiError>;

/// A failed Gemini call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GeminiError {
    /// The request did not complete: connection refused or reset, DNS, timeout.
    #[error("Gemini unreachable: {message}")]
    Transport {
        /// What reqwest reported (it never contains the API key).
        message: String,
        /// Whether the attempt timed out.
        timed_out: bool,
    },
    /// 429: a quota is spent.
    #[error("Gemini rate limit ({quota:?} quota): {message}")]
    RateLimited {
        /// `RetryInfo.retryDelay`, when Google said how long to wait.
        retry_delay: Option<Duration>,
        /// Which quota: per day, waiting minutes will not help.
        quota: Quota,
        /// Google's message.
        message: String,
    },
    /// 5xx: Gemini is failing or overloaded.
    #[error("Gemini unavailable ({status}): {message}")]
    Unavailable {
        /// HTTP status.
        status: u16,
        /// Google's message.
        message: String,
    },
    /// Another 4xx: Gemini refused the request itself (a bad key, a bad
    /// argument, an unknown model). Trying again cannot help.
    #[error("Gemini refused the request ({status} {google_status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Google's canonical status name, such as `INVALID_ARGUMENT`.
        google_status: String,
        /// Google's message.
        message: String,
    },
    /// A 2xx answer whose body is not what the API documents.
    #[error("unexpected Gemini response: {0}")]
    Decode(String),
    /// The model answered, but not with something we can use: a blocked
    /// prompt, a truncated or withheld answer, invalid JSON, missing fields.
    /// Gemini itself is healthy, so this is no dependency failure.
    #[error("unusable model output: {0}")]
    UnusableOutput(String),
}

impl GeminiError {
    /// The typed failure for a non-2xx answer.
    pub(super) fn from_status(
        status: u16,
        google_status: String,
        message: String,
        retry_delay: Option<Duration>,
        quota: Quota,
    ) -> Self {
        match status {
            429 => Self::RateLimited {
                retry_delay,
                quota,
                message,
            },
            500.. => Self::Unavailable { status, message },
            _ => Self::Refused {
                status,
                google_status,
                message,
            },
        }
    }
}

/// The kind of quota a 429 names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Per minute (or unnamed): waiting helps.
    PerMinute,
    /// Per day: retrying today will not help.
    PerDay,
}

impl GeminiError {
    pub(super) fn transport(error: reqwest::Error) -> Self {
        Self::Transport {
            timed_out: error.is_timeout(),
            message: error.without_url().to_string(),
        }
    }

    /// Whether the same call may succeed later: connection errors, timeouts,
    /// per-minute 429 and 5xx. Never 400, 403, 404, a per-day quota, or
    /// unusable output.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Unavailable { .. } => true,
            Self::RateLimited { quota, .. } => *quota == Quota::PerMinute,
            Self::Refused { .. } | Self::Decode(_) | Self::UnusableOutput(_) => false,
        }
    }

    /// Whether this says Gemini itself is unhealthy (what a circuit breaker
    /// counts): transport failures, 429 and 5xx; not our own bad requests.
    pub fn is_dependency_failure(&self) -> bool {
        match self {
            Self::Transport { .. }
            | Self::Decode(_)
            | Self::RateLimited { .. }
            | Self::Unavailable { .. } => true,
            Self::Refused { .. } | Self::UnusableOutput(_) => false,
        }
    }

    /// Whether this is a rate limit (429), which deserves longer waits.
    pub fn is_rate_limit(&self) -> bool {
        matches!(self, Self::RateLimited { .. })
    }

    /// How long Gemini asked us to wait, when it said.
    pub fn retry_delay(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_delay, .. } => *retry_delay,
            _ => None,
        }
    }
}

impl Failure for GeminiError {
    fn is_retryable(&self) -> bool {
        GeminiError::is_retryable(self)
    }

    fn is_dependency_failure(&self) -> bool {
        GeminiError::is_dependency_failure(self)
    }

    fn is_rate_limit(&self) -> bool {
        GeminiError::is_rate_limit(self)
    }

    fn retry_hint(&self) -> Option<Duration> {
        self.retry_delay()
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

    fn api(status: u16, per_day_quota: bool) -> GeminiError {
        let quota = if per_day_quota {
            Quota::PerDay
        } else {
            Quota::PerMinute
        };
        GeminiError::from_status(status, String::new(), String::new(), None, quota)
    }

    #[test]
    fn only_failures_that_can_pass_are_retryable() {
        assert!(api(429, false).is_retryable());
        assert!(!api(429, true).is_retryable());
        for status in [500, 502, 503, 504] {
            assert!(api(status, false).is_retryable(), "{status}");
        }
        for status in [400, 401, 403, 404] {
            assert!(!api(status, false).is_retryable(), "{status}");
        }
        assert!(
            GeminiError::Transport {
                message: String::new(),
                timed_out: true
            }
            .is_retryable()
        );
        assert!(!GeminiError::UnusableOutput(String::new()).is_retryable());
    }

    #[test]
    fn client_errors_and_unusable_output_are_no_dependency_failures() {
        assert!(api(503, false).is_dependency_failure());
        assert!(api(429, true).is_dependency_failure());
        assert!(!api(400, false).is_dependency_failure());
        assert!(!api(404, false).is_dependency_failure());
        assert!(!GeminiError::UnusableOutput(String::new()).is_dependency_failure());
    }
}
