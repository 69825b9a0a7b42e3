//! The [`Caller`] extractor: every route that takes one is authenticated.
//! Missing, malformed, forged or expired tokens are 401 with
//! `WWW-Authenticate: Bearer`; a caller over their rate limit is 429; a valid
//! user without an organisation is 403.
//! All of it happens before the handler runs, so before any Gemini call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::resilience::Deadline;
use crate::state::AppState;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?.to_owned();
        let claims = state.tokens.verify(&token).await.map_err(|e| {
            if let Some(suppressed) = REFUSAL_LOG.admit() {
                tracing::info!(reason = %e, suppressed, "access token refused");
            }
            ApiError::Unauthorized("invalid or expired token".to_owned())
        })?;
        if let Some(limiter) = &state.rate_limiter {
            limiter
                .check(claims.user_id)
                .map_err(|wait| ApiError::RateLimited {
                    message: "rate limit exceeded; retry later".to_owned(),
                    retry_after: Some(wait),
                })?;
        }
        let deadline = Deadline::from_request_parts(parts, state).await?;
        let membership = state
            .memberships
            .lookup(claims.user_id, deadline)
            .await?
            .ok_or_else(|| {
                ApiError::Forbidden("user is not a member of any organization".to_owned())
            })?;
        Ok(Caller {
            user_id: claims.user_id,
            org_id: membership.org_id,
            role: membership.role,
            access_token: token,
        })
    }
}

/// Refused tokens are logged at most a few times a second: a client (or an
/// attacker) sending bad tokens in a loop must not flood the logs.
static REFUSAL_LOG: LogLimiter = LogLimiter::new(5);

/// Lets through at most `per_second` events each second and counts the rest.
pub struct LogLimiter {
    per_second: u64,
    /// The current second and how many events it has had, packed:
    /// `second << 20 | count`.
    window: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimiter {
    /// A limiter of `per_second` events.
    pub const fn new(per_second: u64) -> Self {
        Self {
            per_second,
            window: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(events suppressed since the last one let through)` when this
    /// event may be logged.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )
    }

    fn admit_at(&self, second: u64) -> Option<u64> {
        const COUNT_BITS: u32 = 20;
        let mut current = self.window.load(Ordering::Relaxed);
        loop {
            let (window_second, count) = (current >> COUNT_BITS, current & ((1 << COUNT_BITS) - 1));
            let next = if window_second == second {
                if count >= self.per_second {
                    self.suppressed.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                current + 1
            } else {
                (second << COUNT_BITS) | 1
            };
            match self.window.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(self.suppressed.swap(0, Ordering::Relaxed)),
                Err(actual) => current = actual,
            }
        }
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".to_owned()))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed authorization header".to_owned()))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::Unauthorized(
            "authorization header must be `Bearer <token>`".to_owned(),
        )),
    }
}

impl Caller {
    /// Charges the caller's rate limit for `gemini_calls` calls of Gemini
    /// work beyond the one unit every request already paid: a batch of
    /// twenty names costs twenty, not one.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`] with the wait, when the bucket cannot pay.
    pub fn charge_gemini_work(
        &self,
        state: &AppState,
        gemini_calls: usize,
    ) -> Result<(), ApiError> {
        let Some(limiter) = &state.rate_limiter else {
            return Ok(());
        };
        let extra = u32::try_from(gemini_calls.saturating_sub(1)).unwrap_or(u32::MAX);
        limiter
            .charge(self.user_id, extra)
            .map_err(|wait| ApiError::RateLimited {
                message: "rate limit exceeded; retry later".to_owned(),
                retry_after: Some(wait),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_a_few_times_a_second_and_the_rest_counted() {
        let limiter = LogLimiter::new(5);
        let admitted: Vec<Option<u64>> = (0..100).map(|_| limiter.admit_at(1_000)).collect();
        assert_eq!(admitted.iter().filter(|a| a.is_some()).count(), 5);
        assert_eq!(
            limiter.admit_at(1_001),
            Some(95),
            "the next second reports what was dropped"
        );
        assert_eq!(limiter.admit_at(1_001), Some(0));
    }
}
