//! `GET /api/auth/verify`: who the token belongs to.

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::{Caller, Role};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/auth/verify", get(verify))
}

/// Body of `GET /api/auth/verify`.
#[derive(Debug, Serialize)]
pub struct VerifyResponse {
    user_id: Uuid,
    org_id: Uuid,
    role: Role,
}

async fn verify(caller: Caller) -> Json<VerifyResponse> {
    Json(VerifyResponse {
        user_id: caller.user_id,
        org_id: caller.org_id,
        role: caller.role,
    })
}
