//! The admin API under `/_emulator/`: fault injection and call counters, so
//! tests can make Gemini misbehave and then assert on what reached it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::Shared;

/// Faults applied to every Gemini call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Fixed delay before answering, in milliseconds.
    pub latency_ms: u64,
    /// Extra random delay of up to this many milliseconds.
    pub jitter_ms: u64,
}

impl Faults {
    /// The delay for one call: the fixed latency plus a random share of the jitter.
    pub(crate) fn latency(&self) -> Duration {
        let jitter = if self.jitter_ms == 0 {
            0
        } else {
            next_random() % (self.jitter_ms + 1)
        };
        Duration::from_millis(self.latency_ms + jitter)
    }
}

/// What reached the emulator since the last reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Calls per method (`models.list`, `generateContent`, ...), counted after the key check.
    pub calls: BTreeMap<String, u64>,
    /// Gemini requests being served right now.
    pub in_flight: usize,
    /// The most Gemini requests ever served at once.
    pub max_in_flight: usize,
}

impl Stats {
    /// Calls of one method.
    pub fn calls_of(&self, method: &str) -> u64 {
        self.calls.get(method).copied().unwrap_or(0)
    }
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/stats",
            get(|State(s): State<Arc<Shared>>| async move { Json(stats(&s)) }),
        )
        .route(
            "/reset",
            post(|State(s): State<Arc<Shared>>| async move {
                reset(&s);
                Json(stats(&s))
            }),
        )
        .route(
            "/faults",
            put(
                |State(s): State<Arc<Shared>>, Json(faults): Json<Faults>| async move {
                    *s.faults.lock().unwrap_or_else(PoisonError::into_inner) = faults.clone();
                    Json(faults)
                },
            )
            .get(|State(s): State<Arc<Shared>>| async move { Json(s.faults()) }),
        )
}

pub(crate) fn stats(shared: &Shared) -> Stats {
    Stats {
        calls: shared
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
        in_flight: *shared.in_flight.borrow(),
        max_in_flight: *shared
            .max_in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    }
}

pub(crate) fn reset(shared: &Shared) {
    shared
        .calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    *shared
        .max_in_flight
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = *shared.in_flight.borrow();
    *shared.faults.lock().unwrap_or_else(PoisonError::into_inner) = Faults::default();
}

/// A small xorshift generator: jitter needs spread, not cryptographic quality.
fn next_random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let mut x = STATE.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    x
}
