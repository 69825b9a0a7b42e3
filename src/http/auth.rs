//! The [`Caller`] extractor: every route that takes one is authenticated.
//! Missing, malformed, forged or expired tokens are 401 with
//! `WWW-Authenticate: Bearer`; a caller over their rate limit is 429; a valid
//! user without an organisation is 403.
//! All of it happens before the handler runs, so before any Gemini call.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::resilience::Deadline;
use crate::state::AppState;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?.to_owned();
        let claims = state.tokens.verify(&token).await.map_err(|e| {
            tracing::info!(reason = %e, "access token refused");
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
    /// Refuses callers who are not admins of their organisation.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] for requesters and reviewers.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("admin role required".to_owned()))
        }
    }
}
