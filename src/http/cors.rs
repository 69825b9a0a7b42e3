//! CORS for browsers only. Only browsers send `Origin`, and only they read
//! CORS headers; load balancers, orchestrators and servers calling the API do
//! neither. tower-http's layer adds its headers to every answer, which cost a
//! third of `/api/health` throughput (measured with `scripts/load`), so
//! requests without `Origin` skip it.
//!
//! hyper clones the whole service for every request, so the CORS service
//! (whose settings hold `Vec`s) is built only for requests that use it; the
//! clone everyone pays is two reference counts.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{HeaderName, Method, Request, Response, header};
use futures_util::future::Either;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer, ResponseFuture};

use super::middleware::REQUEST_ID;
use crate::config::CorsOrigins;

/// Applies CORS from `CORS_ORIGINS` to requests that carry `Origin`.
#[derive(Debug, Clone)]
pub struct BrowserCorsLayer(Arc<CorsLayer>);

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
        Self(Arc::new(match origins {
            CorsOrigins::Any => layer.allow_origin(AllowOrigin::any()),
            CorsOrigins::List(list) => layer.allow_origin(AllowOrigin::list(list.iter().cloned())),
        }))
    }
}

impl<S> Layer<S> for BrowserCorsLayer {
    type Service = BrowserCors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BrowserCors {
            cors: Arc::clone(&self.0),
            inner,
        }
    }
}

/// The service: `inner` as is, or inside CORS when the request has `Origin`.
#[derive(Debug, Clone)]
pub struct BrowserCors<S> {
    cors: Arc<CorsLayer>,
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BrowserCors<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<ResponseFuture<S::Future>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if request.headers().contains_key(header::ORIGIN) {
            // The readied inner service goes into CORS; a clone stays for the
            // next request, which will ready it first (tower's usual swap).
            let clone = self.inner.clone();
            let ready = std::mem::replace(&mut self.inner, clone);
            let mut cors: Cors<S> = self.cors.layer(ready);
            Either::Left(cors.call(request))
        } else {
            Either::Right(self.inner.call(request))
        }
    }
}
