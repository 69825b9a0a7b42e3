//! State shared by all handlers: settings and services. Built once in
//! `startup`.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::TokenVerifier;
use crate::config::Settings;
use crate::resilience::RateLimiter;
use crate::services::catalog::CatalogService;
use crate::services::embeddings::EmbeddingService;
use crate::services::enrichment::EnrichmentService;
use crate::services::imports::ImportService;
use crate::services::membership::MembershipDirectory;
use crate::services::procurement::ProcurementService;
use crate::services::readiness::ReadinessProbe;

/// What handlers can reach. axum clones the state for every request to every
/// route, probes included, so it is one `Arc`: one reference count to touch
/// per request rather than one per service.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state holding `shared`.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The settings and services behind [`AppState`].
#[derive(Debug)]
pub struct Shared {
    /// Validated settings.
    pub settings: Settings,
    /// Verifies callers' access tokens.
    pub tokens: TokenVerifier,
    /// Per-caller token buckets; `None` when rate limiting is off.
    pub rate_limiter: Option<RateLimiter>,
    /// Callers' organisations and roles.
    pub memberships: Arc<MembershipDirectory>,
    /// Product enrichment.
    pub enrichment: Arc<EnrichmentService>,
    /// Embeddings.
    pub embeddings: Arc<EmbeddingService>,
    /// Catalog items, search and embedding repair.
    pub catalog: Arc<CatalogService>,
    /// Requests, proposals, their merge and the audit log.
    pub procurement: ProcurementService,
    /// Bulk imports: uploads and their jobs.
    pub imports: ImportService,
    /// Dependency checks behind `/api/readiness`.
    pub readiness: ReadinessProbe,
    /// The OpenAPI document, rendered once at start-up.
    pub openapi: Arc<[u8]>,
    /// When the process started serving, for `uptime_seconds`.
    pub started_at: Instant,
}

impl Shared {
    /// Whole seconds since start-up.
    pub fn uptime_seconds(&self) -> u64 {
        self.started_at.elapsed().as_secs()
    }
}
