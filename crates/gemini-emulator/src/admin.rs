//! The admin API under `/_emulator/`: fault injection and call counters, so
//! tests can make Gemini misbehave and then assert on what reached it.
//!
//! - `GET /_emulator/stats`: calls per method, requests in flight, high-water mark.
//! - `POST /_emulator/reset`: clears counters and faults.
//! - `GET|PUT /_emulator/faults`: reads or replaces the active [`Faults`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::Shared;

/// Everything that can make the emulator misbehave.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Fixed delay before answering any Gemini call, in milliseconds.
    pub latency_ms: u64,
    /// Extra random delay of up to this many milliseconds.
    pub jitter_ms: u64,
    /// A requests-per-minute quota: calls past it get a per-minute 429 whose
    /// `retryDelay` says when the window frees up.
    pub rpm_limit: Option<u32>,
    /// Scripted faults, tried in order; the first that applies to a call wins.
    pub rules: Vec<FaultRule>,
}

/// One scripted fault and when it applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// What happens.
    #[serde(flatten)]
    pub fault: Fault,
    /// Share of matching calls it hits, 0..=1, spread evenly and
    /// deterministically (0.3 fails exactly 3 calls in every 10). Default 1.
    #[serde(default = "always")]
    pub rate: f64,
    /// Apply to at most this many calls, then stop; unset means no limit.
    #[serde(default)]
    pub remaining: Option<u64>,
    /// Methods it applies to (`generateContent`, `batchEmbedContents`,
    /// `models.list`, ...); empty means every method it can apply to.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Matching calls seen so far, for the even spread of `rate`.
    #[serde(default, skip_serializing)]
    pub(crate) seen: u64,
}

fn always() -> f64 {
    1.0
}

/// The kinds of misbehaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// An error answer in Gemini's envelope. For 429, `quota` says whether
    /// the violated quota is per minute or per day, and `retry_delay_seconds`
    /// (default 7) goes into `RetryInfo.retryDelay`.
    Error {
        /// HTTP status: 429, 500, 503 or 504 (any 4xx/5xx is accepted).
        status: u16,
        /// Quota named in a 429's `QuotaFailure`.
        #[serde(default)]
        quota: Quota,
        /// `RetryInfo.retryDelay` of a 429, in seconds.
        #[serde(default)]
        retry_delay_seconds: Option<f64>,
    },
    /// Never answer (until the client gives up).
    Hang,
    /// generateContent only: the text part is not valid JSON.
    MalformedJson,
    /// generateContent only: 200 with `promptFeedback.blockReason` and no candidates.
    BlockedPrompt,
    /// generateContent only: `finishReason: MAX_TOKENS` and a content without parts.
    MaxTokens,
    /// generateContent only: `finishReason: SAFETY` and no text.
    Safety,
}

/// Which quota a 429 names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quota {
    /// Requests per minute: waiting helps.
    #[default]
    PerMinute,
    /// Requests per day: waiting minutes does not help.
    PerDay,
}

impl Fault {
    /// An error answer with `status`; for 429 a per-minute quota with the
    /// default `retryDelay`.
    pub fn status(status: u16) -> Self {
        Self::Error {
            status,
            quota: Quota::PerMinute,
            retry_delay_seconds: None,
        }
    }

    /// Whether this fault only makes sense for generateContent.
    fn is_content_fault(&self) -> bool {
        matches!(
            self,
            Self::MalformedJson | Self::BlockedPrompt | Self::MaxTokens | Self::Safety
        )
    }
}

impl FaultRule {
    /// An always-on rule for `fault`.
    pub fn always(fault: Fault) -> Self {
        Self {
            fault,
            rate: 1.0,
            remaining: None,
            methods: Vec::new(),
            seen: 0,
        }
    }

    /// Limits the rule to the next `n` calls it hits.
    #[must_use]
    pub fn times(mut self, n: u64) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Hits only this share of calls (spread evenly).
    #[must_use]
    pub fn at_rate(mut self, rate: f64) -> Self {
        self.rate = rate;
        self
    }

    /// Applies only to these methods.
    #[must_use]
    pub fn for_methods(mut self, methods: &[&str]) -> Self {
        self.methods = methods.iter().map(|m| (*m).to_owned()).collect();
        self
    }

    /// Whether the rule fires for this call; counts the call either way.
    fn fires(&mut self, method: &str) -> bool {
        let applies = (self.methods.is_empty() || self.methods.iter().any(|m| m == method))
            && (!self.fault.is_content_fault() || method == "generateContent")
            && self.remaining != Some(0);
        if !applies {
            return false;
        }
        let rate = self.rate.clamp(0.0, 1.0);
        let n = self.seen as f64;
        self.seen += 1;
        // Bresenham-style: the k-th call fires when the running share crosses an integer.
        let fires = ((n + 1.0) * rate).floor() > (n * rate).floor();
        if fires {
            if let Some(left) = self.remaining.as_mut() {
                *left -= 1;
            }
        }
        fires
    }
}

impl Faults {
    /// Only these scripted faults.
    pub fn with_rules(rules: Vec<FaultRule>) -> Self {
        Self {
            rules,
            ..Self::default()
        }
    }

    /// Only a fixed delay before every answer.
    pub fn with_latency_ms(latency_ms: u64) -> Self {
        Self {
            latency_ms,
            ..Self::default()
        }
    }

    /// The delay for one call: the fixed latency plus a random share of the jitter.
    pub(crate) fn latency(&self) -> Duration {
        let jitter = if self.jitter_ms == 0 {
            0
        } else {
            next_random() % (self.jitter_ms + 1)
        };
        Duration::from_millis(self.latency_ms + jitter)
    }

    /// The first rule that fires for this call, if any.
    pub(crate) fn pick(&mut self, method: &str) -> Option<Fault> {
        self.rules
            .iter_mut()
            .find_map(|rule| rule.fires(method).then(|| rule.fault.clone()))
    }
}

/// Sliding one-minute window of accepted calls, for `rpm_limit`.
#[derive(Debug, Default)]
pub(crate) struct RpmWindow(VecDeque<Instant>);

impl RpmWindow {
    /// Admits a call, or says how long until the window has room.
    pub(crate) fn admit(&mut self, limit: u32, now: Instant) -> Result<(), Duration> {
        let minute = Duration::from_secs(60);
        while self
            .0
            .front()
            .is_some_and(|t| now.duration_since(*t) >= minute)
        {
            self.0.pop_front();
        }
        if self.0.len() < limit as usize {
            self.0.push_back(now);
            return Ok(());
        }
        let oldest = self.0.front().copied().unwrap_or(now);
        Err(minute.saturating_sub(now.duration_since(oldest)))
    }
}

/// What reached the emulator since the last reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Calls per method (`models.list`, `generateContent`, ...), counted
    /// after the API-key check, faulted calls included.
    pub calls: BTreeMap<String, u64>,
    /// Texts embedded (entries of embed calls that were answered).
    pub embedded_texts: u64,
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

    /// Calls of all methods.
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
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
            get(|State(s): State<Arc<Shared>>| async move { Json(s.faults()) }).put(
                |State(s): State<Arc<Shared>>, Json(faults): Json<Faults>| async move {
                    s.set_faults(faults.clone());
                    Json(faults)
                },
            ),
        )
}

pub(crate) fn stats(shared: &Shared) -> Stats {
    let counters = shared
        .counters
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    Stats {
        calls: counters.calls.clone(),
        embedded_texts: counters.embedded_texts,
        in_flight: *shared.in_flight.borrow(),
        max_in_flight: counters.max_in_flight,
    }
}

pub(crate) fn reset(shared: &Shared) {
    {
        let mut counters = shared
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counters.calls.clear();
        counters.embedded_texts = 0;
        counters.max_in_flight = *shared.in_flight.borrow();
    }
    shared.set_faults(Faults::default());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_fails_exactly_that_share_spread_evenly() {
        let mut rule = FaultRule::always(Fault::Hang).at_rate(0.3);
        let hits: Vec<bool> = (0..20).map(|_| rule.fires("generateContent")).collect();
        assert_eq!(hits.iter().filter(|h| **h).count(), 6);
        assert!(!hits.windows(2).any(|w| w[0] && w[1]), "{hits:?}");
    }

    #[test]
    fn remaining_limits_a_rule_to_the_next_n_calls() {
        let mut faults = Faults {
            rules: vec![FaultRule::always(Fault::Hang).times(2)],
            ..Faults::default()
        };
        assert!(faults.pick("generateContent").is_some());
        assert!(faults.pick("generateContent").is_some());
        assert!(faults.pick("generateContent").is_none());
    }

    #[test]
    fn content_faults_only_hit_generate_content() {
        let mut faults = Faults {
            rules: vec![FaultRule::always(Fault::MalformedJson)],
            ..Faults::default()
        };
        assert!(faults.pick("batchEmbedContents").is_none());
        assert_eq!(faults.pick("generateContent"), Some(Fault::MalformedJson));
    }

    #[test]
    fn the_rpm_window_frees_up_after_a_minute() {
        let mut window = RpmWindow::default();
        let t0 = Instant::now();
        assert!(window.admit(2, t0).is_ok());
        assert!(window.admit(2, t0).is_ok());
        let wait = window.admit(2, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(window.admit(2, t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn faults_read_from_json_as_the_admin_api_takes_them() {
        let faults: Faults = serde_json::from_str(
            r#"{"latency_ms": 50, "rules": [
                {"kind": "error", "status": 429, "quota": "per_day", "remaining": 1},
                {"kind": "error", "status": 503, "rate": 0.3, "methods": ["generateContent"]}
            ]}"#,
        )
        .unwrap();
        assert_eq!(faults.latency_ms, 50);
        assert_eq!(faults.rules.len(), 2);
        assert_eq!(faults.rules[0].remaining, Some(1));
    }
}
