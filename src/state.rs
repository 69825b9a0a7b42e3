//! State shared by all handlers: settings and services. Built once in
//! `startup`; cloning is cheap (everything is behind `Arc`).

use std::sync::Arc;
use std::time::Instant;

use crate::auth::TokenVerifier;
use crate::config::Settings;
use crate::http::rate_limit::RateLimiter;
use crate::services::catalog::CatalogService;
use crate::services::embeddings::EmbeddingService;
use crate::services::enrichment::EnrichmentService;
use crate::services::membership::MembershipDirectory;
use crate::services::readiness::ReadinessProbe;

/// What handlers can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Verifies callers' access tokens.
    pub tokens: TokenVerifier,
    /// Per-caller token buckets; `None` when rate limiting is off.
    pub rate_limiter: Option<Arc<RateLimiter>>,
    /// Callers' organisations and roles.
    pub memberships: Arc<MembershipDirectory>,
    /// Product enrichment.
    pub enrichment: Arc<EnrichmentService>,
    /// Embeddings.
    pub embeddings: Arc<EmbeddingService>,
    /// Catalog items, search and embedding repair.
    pub catalog: Arc<CatalogService>,
    /// Dependency checks behind `/api/readiness`.
    pub readiness: Arc<ReadinessProbe>,
    /// When the process started serving, for `uptime_seconds`.
    pub started_at: Instant,
}

impl AppState {
    /// Whole seconds since start-up.
    pub fn uptime_seconds(&self) -> u64 {
        self.started_at.elapsed().as_secs()
    }
}
