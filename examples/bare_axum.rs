//! The floor for `scripts/load`: a bare axum server answering a constant on
//! `/api/health`, with no middleware, so the load report can show CatalogAI's
//! health throughput as a share of what the framework itself does here.
//!
//! `cargo run --release --example bare_axum -- 127.0.0.1:54390`

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:54390".to_owned());
    let app = Router::new().route(
        "/api/health",
        get(|| async { r#"{"status":"healthy","uptime_seconds":0}"# }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}
