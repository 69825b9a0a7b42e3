//! The HTTP edge: routes, and the middleware every request passes through.
//! Handlers stay thin: parse input, call a service, map the result to JSON.
//! Bad input is refused by type (`refusal`) and worded once (`extract`).

pub mod auth;
pub mod cors;
pub mod extract;
pub mod middleware;
mod refusal;
pub mod routes;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Response;
use tower::ServiceBuilder;
use tower::util::{MapRequest, MapRequestLayer};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{PropagateRequestId, PropagateRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::error::ApiError;
use crate::state::AppState;
use cors::BrowserCors;
use middleware::REQUEST_ID;

/// The whole service as served: the router inside the layers every request
/// passes, composed as plain tower services (no per-request boxing, which
/// `Router::layer` adds for each layer: measured, a third of `/api/health`
/// throughput for these three).
pub type Service = MapRequest<PropagateRequestId<BrowserCors<Router>>, AssignRequestId>;

type AssignRequestId = fn(Request<Body>) -> Request<Body>;

/// The service for `state`.
pub fn service(state: AppState) -> Service {
    let cors = cors::BrowserCorsLayer::new(&state.settings.server.cors_origins);
    ServiceBuilder::new()
        .layer(MapRequestLayer::new(
            middleware::assign_request_id::<Body> as AssignRequestId,
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(cors)
        .service(router(state))
}

/// The routes with their middleware.
fn router(state: AppState) -> Router {
    let server = &state.settings.server;
    let max_body = server.max_body_bytes;
    let request_timeout = server.request_timeout;

    // Each `.layer` wraps everything above it, so requests pass through these
    // bottom-up, inside the request id and CORS of [`service`]. The API
    // routes, their 404 and 405 answers included, add the span and access
    // log, panic catching (answering in the envelope), the envelope for
    // answers from tower layers, load shedding, body limits and the request
    // deadline. The probes need none of those (no body, no dependency call
    // without its own timeout) and stay cheap for load balancers polling them
    // every second, and out of the access log they would flood.
    let shed = Arc::new(Semaphore::new(server.max_in_flight_requests));
    let api = routes::api()
        .layer(DefaultBodyLimit::max(max_body))
        .layer(RequestBodyLimitLayer::new(max_body))
        .merge(routes::uploads().layer(DefaultBodyLimit::disable()))
        .fallback(|| async { ApiError::NotFound("resource not found".to_owned()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(from_fn_with_state(request_timeout, middleware::deadline))
        .layer(from_fn_with_state(shed, middleware::shed_load))
        .layer(from_fn(middleware::error_envelope))
        .layer(CatchPanicLayer::custom(middleware::panic_answer))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(log_response)
                .on_failure(()),
        );
    routes::probes()
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .merge(api)
        .with_state(state)
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
