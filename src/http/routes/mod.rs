//! Route table: one module per resource, merged here.

pub mod auth;
pub mod catalog;
pub mod embeddings;
pub mod health;
pub mod products;

use axum::Router;

use crate::state::AppState;

/// Probes and the root document: never shed, never authenticated.
pub fn probes() -> Router<AppState> {
    health::router()
}

/// The API proper: authenticated, subject to load shedding.
pub fn api() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(products::router())
        .merge(embeddings::router())
        .merge(catalog::router())
}
