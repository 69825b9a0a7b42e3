//! `GET /`, `GET /api/health` (liveness, for load balancers) and
//! `GET /api/readiness` (dependencies, for orchestrators).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::auth::{KeySetStatus, SigningKeys};
use crate::services::query_cache::QueryCacheStatus;
use crate::services::readiness::{Breakers, Checks, Verdict};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/api/health", get(health))
        .route("/api/readiness", get(readiness))
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(root, health, readiness))]
pub struct Api;

/// Body of `GET /`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RootResponse {
    name: &'static str,
    version: &'static str,
    status: &'static str,
}

/// Body of `GET /api/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    status: &'static str,
    uptime_seconds: u64,
}

/// Body of `GET /api/readiness`; `uptime_seconds` only when ready, as the
/// original. `circuit_breakers` is the port's addition.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessResponse {
    status: Verdict,
    checks: Checks,
    circuit_breakers: Breakers,
    /// The project's signing keys, when tokens are verified against its key
    /// set: a failed refetch shows here while cached keys keep serving.
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_keys: Option<KeySetStatus>,
    /// The search-query embedding cache, when on.
    #[serde(skip_serializing_if = "Option::is_none")]
    query_cache: Option<QueryCacheStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uptime_seconds: Option<u64>,
}

/// Name and version of the service.
#[utoipa::path(get, path = "/", tag = "probes",
    responses((status = 200, description = "The service is running", body = RootResponse)))]
async fn root() -> Json<RootResponse> {
    Json(RootResponse {
        name: "CatalogAI API",
        version: env!("CARGO_PKG_VERSION"),
        status: "running",
    })
}

/// Liveness, for load balancers: answers while the process serves HTTP,
/// whatever its dependencies do.
#[utoipa::path(get, path = "/api/health", tag = "probes",
    responses((status = 200, description = "The process is alive", body = HealthResponse)))]
async fn health(State(state): State<AppState>) -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "healthy",
        uptime_seconds: state.uptime_seconds(),
    })
}

/// Readiness, for orchestrators: real calls to the database and Gemini,
/// cached for two seconds. 503 when the database fails (or Gemini, with
/// `READINESS_REQUIRE_GEMINI`), or while no access token could be verified;
/// 200 `degraded` when only Gemini fails.
#[utoipa::path(get, path = "/api/readiness", tag = "probes", responses(
    (status = 200, description = "Ready, or degraded: the database answered, Gemini did not", body = ReadinessResponse),
    (status = 503, description = "The database did not answer (or Gemini, when required)", body = ReadinessResponse),
))]
async fn readiness(State(state): State<AppState>) -> Response {
    let checks = state.readiness.checks().await;
    let circuit_breakers = state.readiness.breakers();
    let signing_keys = state.tokens.signing_keys().map(SigningKeys::status);
    let mut verdict = checks.verdict(state.settings.server.readiness_require_gemini);
    if !state.tokens.can_verify() {
        verdict = Verdict::NotReady;
    }
    let status = match verdict {
        Verdict::Ready | Verdict::Degraded => StatusCode::OK,
        Verdict::NotReady => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = ReadinessResponse {
        status: verdict,
        checks,
        circuit_breakers,
        signing_keys,
        query_cache: state.catalog.query_cache_status(),
        uptime_seconds: (status == StatusCode::OK).then(|| state.uptime_seconds()),
    };
    let mut response = (status, Json(body)).into_response();
    // Probes must see the live answer, never a proxy's copy.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
