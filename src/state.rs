//! State shared by all handlers: settings, dependency clients and services.
//! Built once in `startup`; cloning is cheap (everything is behind `Arc`).

use std::sync::Arc;
use std::time::Instant;

use crate::config::Settings;
use crate::services::readiness::ReadinessProbe;

/// What handlers can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Validated settings.
    pub settings: Arc<Settings>,
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
