//! `GET /api/auth/verify`: who the token belongs to.

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::domain::Role;
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/auth/verify", get(verify))
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(verify))]
pub struct Api;

/// Body of `GET /api/auth/verify`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    user_id: Uuid,
    org_id: Uuid,
    role: Role,
}

/// Who the bearer token belongs to, with their organisation and role.
#[utoipa::path(get, path = "/api/auth/verify", tag = "auth",
    responses((status = 200, description = "The token is valid and its user a member", body = VerifyResponse)))]
async fn verify(caller: Caller) -> Json<VerifyResponse> {
    Json(VerifyResponse {
        user_id: caller.user_id,
        org_id: caller.org_id,
        role: caller.role,
    })
}
