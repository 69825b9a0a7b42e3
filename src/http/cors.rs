//! CORS for browsers only. Only browsers send `Origin`, and only they read
//! CORS headers; load balancers, orchestrators and servers calling the API do
//! neither. tower-http's layer adds its headers to every answer, which cost a
//! third of `/api/health` throughput (measured with `scripts/load`), so
//! requests without `Origin` skip it.

use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{HeaderName, Method, Request, Response, header};
use futures_util::future::Either;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use super::middleware::REQUEST_ID;
use crate::config::CorsOrigins;

/// Applies CORS from `CORS_ORIGINS` to requests that carry `Origin`.
#[derive(Debug, Clone)]
pub struct BrowserCorsLayer(CorsLayer);

impl BrowserCorsLayer {
    /// The layer for the configured origins.
    pub fn new(origins: &CorsOrigins) -> Self {
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
        Self(match origins {
            CorsOrigins::Any => layer.allow_origin(AllowOrigin::any()),
            CorsOrigins::List(list) => layer.allow_origin(AllowOrigin::list(list.iter().cloned())),
        })
    }
}

impl<S: Clone> Layer<S> for BrowserCorsLayer {
    type Service = BrowserCors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BrowserCors {
            cors: self.0.layer(inner.clone()),
            plain: inner,
        }
    }
}

/// The service: `cors` and `plain` wrap clones of the same inner service.
#[derive(Debug, Clone)]
pub struct BrowserCors<S> {
    cors: Cors<S>,
    plain: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BrowserCors<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<<Cors<S> as Service<Request<ReqBody>>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Either may serve the next request, so both must be ready. The inner
        // router is always ready and reserves nothing, so readying the one
        // not used costs nothing.
        match self.cors.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.plain.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if request.headers().contains_key(header::ORIGIN) {
            Either::Left(self.cors.call(request))
        } else {
            Either::Right(self.plain.call(request))
        }
    }
}
