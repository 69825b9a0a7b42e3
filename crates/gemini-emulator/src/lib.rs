//! A local stand-in for the Gemini REST API (Generative Language API), for
//! CatalogAI's tests and local stack. It speaks Gemini's wire format (request
//! validation, answers, error envelope, API-key rules) and lets tests inject
//! faults and read call counters at run time.
//!
//! Use it in-process with [`Emulator::start`] (port 0 on 127.0.0.1), or run the
//! `gemini-emulator` binary. Routes, under `v1beta` and `v1`: `models.list`,
//! `models.get`, `:generateContent`, `:embedContent`, `:batchEmbedContents`;
//! plus the admin API under `/_emulator/` (see [`admin`]).
//!
//! Answers are deterministic: structured output is filled in from the product
//! name in the prompt ([`fill`]), embeddings hash words and character n-grams
//! ([`embed`]), so texts that share words are closer than texts that do not.

pub mod admin;
pub mod embed;
pub mod fill;
mod generate;
mod google_error;
mod models;
mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

pub use admin::{Fault, FaultRule, Faults, Quota, Stats};
use google_error::GoogleError;

/// How the emulator starts.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The only API key it accepts.
    pub api_key: String,
    /// Faults active from the start.
    pub faults: Faults,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            api_key: "test-gemini-key".to_owned(),
            faults: Faults::default(),
        }
    }
}

/// Counters behind [`Stats`].
#[derive(Debug, Default)]
struct Counters {
    calls: BTreeMap<String, u64>,
    embedded_texts: u64,
    max_in_flight: usize,
}

/// State shared by the handlers and the in-process handle.
#[derive(Debug)]
struct Shared {
    api_key: String,
    faults: Mutex<Faults>,
    rpm: Mutex<admin::RpmWindow>,
    counters: Mutex<Counters>,
    in_flight: watch::Sender<usize>,
}

impl Shared {
    fn faults(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap_or_else(PoisonError::into_inner) = faults;
        *self.rpm.lock().unwrap_or_else(PoisonError::into_inner) = admin::RpmWindow::default();
    }

    fn count_embedded(&self, texts: usize) {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .embedded_texts += texts as u64;
    }
}

/// A running emulator; dropping it stops the server.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Emulator {
    /// Starts an emulator on a free port of 127.0.0.1.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = shared(config);
        let app = router(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "gemini emulator stopped");
            }
        });
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`, to use as `GEMINI_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API key it accepts.
    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// Replaces the active faults.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }

    /// Call counters and the concurrency high-water mark.
    pub fn stats(&self) -> Stats {
        admin::stats(&self.shared)
    }

    /// Clears counters and faults.
    pub fn reset(&self) {
        admin::reset(&self.shared);
    }

    /// Waits until at least `n` Gemini requests are being served at once: a
    /// readiness signal for tests that must act while a call is in flight.
    pub async fn wait_for_in_flight(&self, n: usize) {
        let mut rx = self.shared.in_flight.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|count| *count >= n).await;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn shared(config: EmulatorConfig) -> Arc<Shared> {
    Arc::new(Shared {
        api_key: config.api_key,
        faults: Mutex::new(config.faults),
        rpm: Mutex::default(),
        counters: Mutex::default(),
        in_flight: watch::Sender::new(0),
    })
}

/// Serves the emulator on `listener` until the process ends (the binary's entry point).
///
/// # Errors
/// When accepting connections fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: EmulatorConfig,
) -> std::io::Result<()> {
    axum::serve(listener, router(shared(config))).await
}

fn router(shared: Arc<Shared>) -> Router {
    let gemini = models::router()
        .layer(from_fn_with_state(shared.clone(), gemini_call))
        .with_state(shared.clone());
    Router::new()
        .merge(gemini)
        .nest("/_emulator", admin::router().with_state(shared))
        .fallback(|| async { GoogleError::not_found("Method not found.").into_response() })
}

/// Wraps every Gemini call in the order the real service would: API-key
/// check, counting, latency, quota, then scripted faults. Content faults
/// (malformed JSON, blocked prompt, ...) travel to the handler as an extension.
async fn gemini_call(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Err(e) = google_error::check_api_key(&request, &shared.api_key) {
        return e.into_response();
    }
    let method = models::method_name(&request);
    let model = models::model_in(&request).unwrap_or_default();
    shared
        .counters
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .calls
        .entry(method.clone())
        .and_modify(|n| *n += 1)
        .or_insert(1);

    let _in_flight = InFlight::enter(&shared);
    let (delay, rpm_limit, fault) = {
        let mut faults = shared.faults.lock().unwrap_or_else(PoisonError::into_inner);
        (faults.latency(), faults.rpm_limit, faults.pick(&method))
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(limit) = rpm_limit {
        let admitted = shared
            .rpm
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(limit, Instant::now());
        if let Err(wait) = admitted {
            return GoogleError::quota_exceeded(
                Quota::PerMinute,
                wait.as_secs_f64(),
                limit,
                &model,
            )
            .into_response();
        }
    }
    match fault {
        Some(Fault::Error {
            status,
            quota,
            retry_delay_seconds,
        }) => GoogleError::injected(status, quota, retry_delay_seconds, &model).into_response(),
        Some(Fault::Hang) => std::future::pending().await,
        Some(content_fault) => {
            request.extensions_mut().insert(content_fault);
            next.run(request).await
        }
        None => next.run(request).await,
    }
}

/// Counts a request as in flight until dropped, so cancelled requests are
/// uncounted too.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let mut now = 0;
        shared.in_flight.send_modify(|count| {
            *count += 1;
            now = *count;
        });
        let mut counters = shared
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counters.max_in_flight = counters.max_in_flight.max(now);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0
            .in_flight
            .send_modify(|count| *count = count.saturating_sub(1));
    }
}
