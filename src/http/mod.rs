//! The HTTP edge: routes, and the middleware every request passes through.
//! Handlers stay thin: parse input, call a service, map the result to JSON.

pub mod auth;
pub mod extract;
pub mod middleware;
pub mod rate_limit;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, Request, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Response;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::config::CorsOrigins;
use crate::error::ApiError;
use crate::state::AppState;
use middleware::REQUEST_ID;

/// The whole API with its middleware.
pub fn router(state: AppState) -> Router {
    let server = &state.settings.server;
    let max_body = server.max_body_bytes;
    let request_timeout = server.request_timeout;
    let cors = cors_layer(&server.cors_origins);

    // Each `.layer` wraps everything above it, so requests pass through these
    // bottom-up: request id first (so every log line and answer carries it),
    // then the span, CORS (so error answers get CORS headers too), the error
    // envelope (so answers from the layers below are enveloped), panic
    // catching, body limits and finally the request deadline.
    let shed = Arc::new(Semaphore::new(server.max_in_flight_requests));
    routes::probes()
        .merge(routes::api().layer(from_fn_with_state(shed, middleware::shed_load)))
        .fallback(|| async { ApiError::NotFound("resource not found".to_owned()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(from_fn_with_state(request_timeout, middleware::deadline))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(CatchPanicLayer::new())
        .layer(from_fn(middleware::error_envelope))
        .layer(cors)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(log_response)
                .on_failure(()),
        )
        .layer(from_fn(middleware::request_id))
}

fn request_span<B>(request: &Request<B>) -> Span {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        request_id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

fn log_response<B>(response: &Response<B>, latency: Duration, _span: &Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = (latency.as_secs_f64() * 1e6).round() / 1e3,
        "request finished"
    );
}

fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            REQUEST_ID,
        ])
        .expose_headers([
            REQUEST_ID,
            header::RETRY_AFTER,
            HeaderName::from_static("www-authenticate"),
        ])
        .max_age(Duration::from_secs(600));
    match origins {
        CorsOrigins::Any => layer.allow_origin(AllowOrigin::any()),
        CorsOrigins::List(list) => layer.allow_origin(AllowOrigin::list(list.iter().cloned())),
    }
}
