//! A local stand-in for the Gemini REST API (Generative Language API), for
//! CatalogAI's tests and local stack. It speaks Gemini's wire format, including
//! its error envelope and API-key rules, and lets tests inject faults and read
//! call counters at run time.
//!
//! Use it in-process with [`Emulator::start`] (port 0 on 127.0.0.1), or run the
//! `gemini-emulator` binary. Besides the Gemini routes it serves a small admin
//! API under `/_emulator/`: `GET stats`, `POST reset`, `PUT faults`.

mod admin;
mod google_error;
mod models;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

pub use admin::{Faults, Stats};
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

/// State shared by the handlers and the in-process handle.
#[derive(Debug)]
struct Shared {
    api_key: String,
    faults: Mutex<Faults>,
    calls: Mutex<std::collections::BTreeMap<String, u64>>,
    in_flight: watch::Sender<usize>,
    max_in_flight: Mutex<usize>,
}

impl Shared {
    fn faults(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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
        *self
            .shared
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = faults;
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
        calls: Mutex::default(),
        in_flight: watch::Sender::new(0),
        max_in_flight: Mutex::new(0),
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

/// Wraps every Gemini call: API-key check, counters, in-flight tracking and
/// injected latency, in that order, as the real service would see them.
async fn gemini_call(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if let Err(e) = google_error::check_api_key(&request, &shared.api_key) {
        return e.into_response();
    }
    let method = models::method_name(&request);
    *shared
        .calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(method)
        .or_default() += 1;

    let _in_flight = InFlight::enter(&shared);
    let faults = shared.faults();
    let delay = faults.latency();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    next.run(request).await
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
        let mut max = shared
            .max_in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *max = (*max).max(now);
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
