//! Readiness: whether this process can serve traffic now, judged by real calls
//! to its dependencies: one `orgs` row read through PostgREST with the service
//! key, and a one-model `models.list` on Gemini. Only the database makes a
//! replica not ready; Gemini failing makes it degraded (unless
//! `READINESS_REQUIRE_GEMINI`). The checks go around the breakers and the
//! concurrency limits, so they see the dependencies, not the traffic.
//!
//! Orchestrators probe every few seconds and several replicas probe at once,
//! so a result is reused for [`CACHE_TTL`] and concurrent probes share one
//! check. Each check is bounded by [`CHECK_TIMEOUT`] so a hanging dependency
//! turns into "not ready" rather than a hanging probe. Beside the checks it
//! reports, without judging, the database's cut-over phase and the re-embed's
//! progress.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::clients::gemini::GeminiClient;
use crate::clients::supabase::{BackfillStatus, CutoverPhase, SupabaseClient, SupabaseError};
use crate::resilience::{BreakerState, CallError, Deadline};

/// How long one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a result is reused. Short enough that a dead dependency shows
/// within a few seconds, long enough that probes cost nothing upstream.
pub const CACHE_TTL: Duration = Duration::from_secs(2);

/// The outcome of the dependency checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// PostgREST and the database behind it answered.
    pub database: bool,
    /// Gemini answered `models.list` with our key.
    pub gemini_api: bool,
    /// Why the database check failed, when the cause is our own settings.
    pub database_problem: Option<DatabaseProblem>,
    /// Where taking over the original's database stands; `None` when it
    /// could not be read (the database check says why).
    pub cutover_phase: Option<CutoverPhase>,
    /// Where the re-embed of every org with the configured model stands
    /// (`services::backfill`); `None` when it could not be read.
    pub embedding_backfill: Option<BackfillStatus>,
}

/// A database check failure an operator must fix, reported in readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseProblem {
    /// Supabase's API gateway refused the service key: wrong, rotated or
    /// disabled. No request can reach the database until it is fixed.
    ServiceKeyRejected,
}

/// Circuit breaker states, reported beside the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breakers {
    /// The database (PostgREST) breaker.
    pub database: BreakerState,
    /// The Gemini breaker.
    pub gemini: BreakerState,
}

/// What readiness concludes from the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every dependency answered.
    Ready,
    /// The database answered but Gemini did not: catalog reads, cached
    /// searches and everything without Gemini still work, so the replica
    /// keeps its traffic (a Gemini outage is every replica's at once).
    Degraded,
    /// The database did not answer (or Gemini, when required): route no
    /// traffic here.
    NotReady,
}

impl Checks {
    /// The verdict: only the database decides, unless `require_gemini`.
    pub fn verdict(self, require_gemini: bool) -> Verdict {
        match (self.database, self.gemini_api) {
            (true, true) => Verdict::Ready,
            (true, false) if !require_gemini => Verdict::Degraded,
            _ => Verdict::NotReady,
        }
    }
}

/// Runs and caches the readiness checks.
#[derive(Debug)]
pub struct ReadinessProbe {
    supabase: SupabaseClient,
    gemini: GeminiClient,
    /// The configured embedding model, whose re-embed is reported.
    embedding_model: String,
    last: Mutex<Option<(Instant, Checks)>>,
}

impl ReadinessProbe {
    /// A probe over the given clients; `embedding_model` is the model
    /// version whose re-embed it reports.
    pub fn new(supabase: SupabaseClient, gemini: GeminiClient, embedding_model: String) -> Self {
        Self {
            supabase,
            gemini,
            embedding_model,
            last: Mutex::new(None),
        }
    }

    /// The current checks, from cache when fresh.
    pub async fn checks(&self) -> Checks {
        // Held across the checks on purpose: concurrent probes wait for one
        // round of upstream calls instead of each making their own.
        let mut last = self.last.lock().await;
        if let Some((at, checks)) = *last {
            if at.elapsed() < CACHE_TTL {
                return checks;
            }
        }
        let ((database, database_problem), gemini_api, cutover_phase, embedding_backfill) = tokio::join!(
            self.check_database(),
            self.check_gemini(),
            self.read_cutover_phase(),
            self.read_backfill()
        );
        let checks = Checks {
            database,
            gemini_api,
            database_problem,
            cutover_phase,
            embedding_backfill,
        };
        *last = Some((Instant::now(), checks));
        checks
    }

    /// The breakers' states right now (never cached: they change on their own).
    pub fn breakers(&self) -> Breakers {
        Breakers {
            database: self.supabase.breaker_state(),
            gemini: self.gemini.breaker_state(),
        }
    }

    async fn check_database(&self) -> (bool, Option<DatabaseProblem>) {
        match self.supabase.ping(Deadline::after(CHECK_TIMEOUT)).await {
            Ok(()) => (true, None),
            Err(CallError::Upstream(SupabaseError::KeyRejected { answer })) => {
                tracing::error!(
                    message = %answer.message,
                    "readiness: Supabase's API gateway refused our service key \
                     (SUPABASE_SERVICE_ROLE_KEY / SUPABASE_SECRET_KEY): wrong, rotated or disabled"
                );
                (false, Some(DatabaseProblem::ServiceKeyRejected))
            }
            Err(e) => {
                tracing::warn!(dependency = "database", error = %e, "readiness check failed");
                (false, None)
            }
        }
    }

    /// Reported, never judged: either phase serves traffic.
    async fn read_cutover_phase(&self) -> Option<CutoverPhase> {
        match self
            .supabase
            .cutover_phase(Deadline::after(CHECK_TIMEOUT))
            .await
        {
            Ok(phase) => Some(phase),
            Err(e) => {
                tracing::debug!(error = %e, "readiness: cut-over phase not read");
                None
            }
        }
    }

    /// Reported, never judged: search answers throughout (see the README's
    /// "Moving from the original service").
    async fn read_backfill(&self) -> Option<BackfillStatus> {
        match self
            .supabase
            .backfill_status(&self.embedding_model, Deadline::after(CHECK_TIMEOUT))
            .await
        {
            Ok(status) => Some(status),
            Err(e) => {
                tracing::debug!(error = %e, "readiness: re-embed status not read");
                None
            }
        }
    }

    async fn check_gemini(&self) -> bool {
        passes(
            "gemini",
            self.gemini.list_models(1, Deadline::after(CHECK_TIMEOUT)),
        )
        .await
    }
}

/// Awaits one check (bounded by its deadline); a failure is logged with its cause.
async fn passes<T, E: std::fmt::Display>(
    dependency: &str,
    check: impl std::future::Future<Output = Result<T, E>>,
) -> bool {
    match check.await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(dependency, error = %e, "readiness check failed");
            false
        }
    }
}
