//! Route table: one module per resource, merged here.

pub mod health;

use axum::Router;

use crate::state::AppState;

/// Every route of the API, without middleware.
pub fn router() -> Router<AppState> {
    Router::new().merge(health::router())
}
