//! Middleware of our own: request ids, the request deadline, and the error
//! envelope for answers that did not come from a handler.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::resilience::Deadline;

/// Header carrying the request id, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-supplied request id we keep; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Gives every request an id: the caller's when it is sane, else a new one.
/// `PropagateRequestIdLayer` then copies it onto the answer. A plain function
/// (no boxed future) because every request, probes included, passes here.
pub fn assign_request_id<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    let sane = request
        .headers()
        .get(&REQUEST_ID)
        .is_some_and(is_sane_request_id);
    if !sane {
        request.headers_mut().insert(REQUEST_ID, new_request_id());
    }
    request
}

/// Printable ASCII without spaces, bounded: safe to log and to echo back.
fn is_sane_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// A process-unique id: a random prefix drawn once per process and a counter.
/// Unique across replicas in practice, and no syscall per request (a random
/// UUID per request cost a `getrandom` call on the hot path).
fn new_request_id() -> HeaderValue {
    static PREFIX: LazyLock<String> =
        LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let id = format!("{}-{n:08x}", *PREFIX);
    HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("invalid-request-id"))
}

/// Time kept back from services so they can still answer (a batch with
/// per-item errors, say) before the hard stop cuts the request off.
const ANSWER_MARGIN: Duration = Duration::from_millis(250);

/// Gives the request its [`Deadline`] (`REQUEST_TIMEOUT_SECONDS`) and ends it
/// with 504 if it runs past, so no client waits forever whatever a dependency
/// does. A streamed answer is covered to its last byte: the stream is cut
/// where the deadline falls (its producer, holding the same deadline, has
/// normally finished with per-item errors and a summary before that).
pub async fn deadline(State(limit): State<Duration>, mut request: Request, next: Next) -> Response {
    let margin = ANSWER_MARGIN.min(limit / 4);
    let hard_stop = tokio::time::Instant::now() + limit;
    request
        .extensions_mut()
        .insert(Deadline::after(limit - margin));
    match tokio::time::timeout_at(hard_stop, next.run(request)).await {
        Ok(response) if is_streamed(&response) => map_body(response, |body| {
            body.take_until(async move {
                tokio::time::sleep_until(hard_stop).await;
                tracing::warn!("request deadline passed mid-stream: answer cut off");
            })
            .boxed()
        }),
        Ok(response) => response,
        Err(_) => ApiError::GatewayTimeout(format!(
            "request did not complete within {} s",
            limit.as_secs()
        ))
        .into_response(),
    }
}

/// Sheds load: past `MAX_IN_FLIGHT_REQUESTS` requests in flight, new ones get
/// 503 at once instead of queueing without bound. A streamed answer keeps
/// its slot until its body ends (or its client goes away), not just until
/// its headers are sent.
pub async fn shed_load(
    State(slots): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    match Arc::clone(&slots).try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(request).await;
            if is_streamed(&response) {
                map_body(response, move |body| {
                    body.map(move |chunk| {
                        let _held = &permit;
                        chunk
                    })
                    .boxed()
                })
            } else {
                response
            }
        }
        Err(_) => {
            tracing::warn!("overloaded: request shed");
            ApiError::ServiceUnavailable {
                message: "server is overloaded; retry shortly".to_owned(),
                retry_after: Some(Duration::from_secs(1)),
            }
            .into_response()
        }
    }
}

/// Whether the answer's body is produced after the handler returns (NDJSON
/// batch progress), so guards must travel with the body.
fn is_streamed(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/x-ndjson"))
}

type BodyChunks = futures_util::stream::BoxStream<'static, Result<axum::body::Bytes, axum::Error>>;

/// The same answer with its body's chunks passed through `wrap`.
fn map_body(
    response: Response,
    wrap: impl FnOnce(axum::body::BodyDataStream) -> BodyChunks,
) -> Response {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::from_stream(wrap(body.into_data_stream())))
}

/// The answer for a handler that panicked: a bug, logged, and answered in the
/// envelope like any other error.
pub fn panic_answer(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    ApiError::Internal(format!("handler panicked: {message}")).into_response()
}

/// Replaces bare error answers (from tower layers or axum itself) with the
/// JSON envelope, keeping headers such as `Allow` and `Retry-After`.
pub async fn error_envelope(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !is_error || is_json {
        return response;
    }
    let mut enveloped = ApiError::from_status(status).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            enveloped.headers_mut().insert(name, value.clone());
        }
    }
    enveloped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_must_be_short_printable_ascii() {
        assert!(is_sane_request_id(&HeaderValue::from_static("abc-123")));
        assert!(!is_sane_request_id(&HeaderValue::from_static("")));
        assert!(!is_sane_request_id(&HeaderValue::from_static("has space")));
        let long = "x".repeat(MAX_REQUEST_ID_LEN + 1);
        assert!(!is_sane_request_id(&HeaderValue::from_str(&long).unwrap()));
    }
}
