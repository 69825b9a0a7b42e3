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
use crate::clients::supabase::{BackfillState, BackfillStatus, CutoverPhase};
use crate::resilience::BreakerState;
use crate::services::query_cache::QueryCacheStatus;
use crate::services::readiness::{Breakers, Checks, DatabaseProblem, Verdict};
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
    status: VerdictBody,
    /// Why the replica is not ready, when the cause is its own settings (an
    /// operator must act): for example the project's API gateway refusing the
    /// service key.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    checks: ChecksBody,
    /// Where taking over the original service's database stands: `expanded`
    /// while the original may still run against it (its direct writes are
    /// open), `contracted` once `scripts/migrate --finish-cutover` ran or for
    /// a database of ours from the start. Absent when it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    database_phase: Option<PhaseBody>,
    /// Where the re-embed of every org's items with the configured embedding
    /// model stands; absent when it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    embedding_backfill: Option<BackfillBody>,
    circuit_breakers: BreakersBody,
    /// The project's signing keys, when tokens are verified against its key
    /// set: a failed refetch shows here while cached keys keep serving.
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_keys: Option<KeySetBody>,
    /// The search-query embedding cache, when on.
    #[serde(skip_serializing_if = "Option::is_none")]
    query_cache: Option<QueryCacheBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uptime_seconds: Option<u64>,
}

/// What readiness concludes.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerdictBody {
    /// Every dependency answered.
    Ready,
    /// The database answered but Gemini did not: reads and cached searches
    /// still work, so the replica keeps its traffic.
    Degraded,
    /// Route no traffic here.
    NotReady,
}

/// The dependency checks.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChecksBody {
    /// PostgREST and the database behind it answered.
    database: bool,
    /// Gemini answered `models.list` with our key.
    gemini_api: bool,
}

/// A database's cut-over phase.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhaseBody {
    /// The original service may still run against the database.
    Expanded,
    /// Ours alone.
    Contracted,
}

impl From<CutoverPhase> for PhaseBody {
    fn from(phase: CutoverPhase) -> Self {
        match phase {
            CutoverPhase::Expanded => Self::Expanded,
            CutoverPhase::Contracted => Self::Contracted,
        }
    }
}

/// The re-embed with the configured model.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackfillBody {
    state: BackfillStateBody,
    /// Items that lacked a vector of the model when the run started.
    items_total: u64,
    /// Items re-embedded so far.
    items_done: u64,
    /// Items that could not be embedded (the next start tries them again).
    items_failed: u64,
}

/// A re-embed's state.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackfillStateBody {
    /// No replica has started it yet.
    NotStarted,
    /// A replica is running it.
    Running,
    /// Started and stopped part-way; the next replica to start resumes it.
    Paused,
    /// Every item has a vector of the configured model.
    Finished,
}

impl From<BackfillStatus> for BackfillBody {
    fn from(status: BackfillStatus) -> Self {
        Self {
            state: match status.state {
                BackfillState::NotStarted => BackfillStateBody::NotStarted,
                BackfillState::Running => BackfillStateBody::Running,
                BackfillState::Paused => BackfillStateBody::Paused,
                BackfillState::Finished => BackfillStateBody::Finished,
            },
            items_total: status.progress.items_total,
            items_done: status.progress.items_done,
            items_failed: status.progress.items_failed,
        }
    }
}

/// Where each circuit breaker stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct BreakersBody {
    database: BreakerBody,
    gemini: BreakerBody,
}

/// One breaker.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerBody {
    /// Calls flow.
    Closed,
    /// Calls fail at once.
    Open,
    /// The cool-down passed; a trial call decides.
    HalfOpen,
}

/// The signing-key set.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeySetBody {
    /// Keys held now.
    keys: usize,
    /// Whether the last fetch succeeded (false: serving from cache, or none held).
    last_fetch_ok: bool,
    /// Seconds since the keys held were fetched; absent when none ever were.
    #[serde(skip_serializing_if = "Option::is_none")]
    age_seconds: Option<u64>,
}

/// The search-query embedding cache.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryCacheBody {
    /// Queries held.
    entries: u64,
    /// Their weight in bytes, about what they take in memory.
    bytes: u64,
}

impl From<Verdict> for VerdictBody {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Ready => Self::Ready,
            Verdict::Degraded => Self::Degraded,
            Verdict::NotReady => Self::NotReady,
        }
    }
}

impl From<BreakerState> for BreakerBody {
    fn from(state: BreakerState) -> Self {
        match state {
            BreakerState::Closed => Self::Closed,
            BreakerState::Open => Self::Open,
            BreakerState::HalfOpen => Self::HalfOpen,
        }
    }
}

impl From<Checks> for ChecksBody {
    fn from(checks: Checks) -> Self {
        Self {
            database: checks.database,
            gemini_api: checks.gemini_api,
        }
    }
}

impl From<Breakers> for BreakersBody {
    fn from(breakers: Breakers) -> Self {
        Self {
            database: breakers.database.into(),
            gemini: breakers.gemini.into(),
        }
    }
}

impl From<KeySetStatus> for KeySetBody {
    fn from(status: KeySetStatus) -> Self {
        Self {
            keys: status.keys,
            last_fetch_ok: status.last_fetch_ok,
            age_seconds: status.age_seconds,
        }
    }
}

impl From<QueryCacheStatus> for QueryCacheBody {
    fn from(status: QueryCacheStatus) -> Self {
        Self {
            entries: status.entries,
            bytes: status.bytes,
        }
    }
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
    let reason = checks.database_problem.map(|problem| match problem {
        DatabaseProblem::ServiceKeyRejected => {
            "the Supabase API gateway refused the service key \
             (SUPABASE_SERVICE_ROLE_KEY or SUPABASE_SECRET_KEY): wrong, rotated or disabled"
        }
    });
    let database_phase = checks.cutover_phase.map(PhaseBody::from);
    let body = ReadinessResponse {
        status: verdict.into(),
        reason,
        database_phase,
        embedding_backfill: checks.embedding_backfill.map(BackfillBody::from),
        checks: checks.into(),
        circuit_breakers: circuit_breakers.into(),
        signing_keys: signing_keys.map(KeySetBody::from),
        query_cache: state.catalog.query_cache_status().map(QueryCacheBody::from),
        uptime_seconds: (status == StatusCode::OK).then(|| state.uptime_seconds()),
    };
    let mut response = (status, Json(body)).into_response();
    // Probes must see the live answer, never a proxy's copy.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
