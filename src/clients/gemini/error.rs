//! What can go wrong when calling Gemini.

use std::time::Duration;

/// A failed Gemini call.
#[derive(Debug, thiserror::Error)]
pub enum GeminiError {
    /// The request did not complete: connection refused or reset, DNS, timeout.
    #[error("Gemini unreachable: {message}")]
    Transport {
        /// What reqwest reported (it never contains the API key).
        message: String,
        /// Whether the attempt timed out.
        timed_out: bool,
    },
    /// Gemini answered with a non-2xx status and Google's error envelope.
    #[error("Gemini answered {status} {google_status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Google's canonical status name, such as `RESOURCE_EXHAUSTED`.
        google_status: String,
        /// Google's human-readable message.
        message: String,
        /// `RetryInfo.retryDelay`, when Google said how long to wait.
        retry_delay: Option<Duration>,
        /// Whether a violated quota is per day, so waiting minutes will not help.
        per_day_quota: bool,
    },
    /// A 2xx answer whose body is not what the API documents.
    #[error("unexpected Gemini response: {0}")]
    Decode(String),
}

impl GeminiError {
    pub(super) fn transport(error: reqwest::Error) -> Self {
        Self::Transport {
            timed_out: error.is_timeout(),
            message: error.without_url().to_string(),
        }
    }
}
