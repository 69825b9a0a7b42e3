//! Route table: one module per resource, merged here.

pub mod auth;
pub mod catalog;
mod common;
pub mod embeddings;
pub mod health;
pub mod imports;
pub mod openapi;
pub mod procurement;
pub mod products;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

/// Probes, the root document and the OpenAPI document: never shed, never
/// authenticated.
pub fn probes() -> Router<AppState> {
    health::router().route(openapi::PATH, get(openapi::openapi_json))
}

/// The API proper: authenticated, subject to load shedding. Bodies are
/// bounded by `MAX_BODY_BYTES`, except import files ([`uploads`]).
pub fn api() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(products::router())
        .merge(embeddings::router())
        .merge(catalog::router())
        .merge(procurement::router())
}

/// Routes whose bodies are files, bounded by their own limit as they are read.
pub fn uploads() -> Router<AppState> {
    imports::router()
}
