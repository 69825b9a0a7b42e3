//! The project's signing keys, cached in process: fetched at start-up,
//! refetched in the background when the key set's `max-age` (or
//! [`DEFAULT_REFRESH`]) has passed, and on demand when a token names a key
//! id we do not hold (a key rotated in), at most once per
//! [`UNKNOWN_KID_REFETCH_INTERVAL`] so a flood of made-up ids cannot hammer
//! Supabase Auth. A failed refetch keeps the keys already held: while Auth
//! is unreachable, tokens signed by known keys keep working.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::clients::jwks::{JwksCallError, JwksClient, VerifyingKey};
use crate::resilience::Deadline;

/// Refetch interval when the key set does not say (`Cache-Control: max-age`).
pub(super) const DEFAULT_REFRESH: Duration = Duration::from_secs(600);
/// Bounds on the server's `max-age`: not so short that every request
/// refetches, not so long that a revoked key lingers for a day.
const REFRESH_BOUNDS: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(3600));
/// Least time between two fetches caused by unknown key ids, and between a
/// failed fetch and the next background attempt.
pub(super) const UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// A cheap-to-clone handle on the cached key set.
#[derive(Debug, Clone)]
pub struct SigningKeys(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    client: JwksClient,
    held: RwLock<Arc<Held>>,
    /// Held while fetching, so concurrent refreshes share one fetch; holds
    /// when the last fetch for an unknown key id started (scheduled
    /// refreshes do not count: they are not caused by callers).
    fetching: Arc<Mutex<Option<Instant>>>,
}

/// The keys held now and when to look again.
#[derive(Debug)]
struct Held {
    keys: HashMap<String, Arc<VerifyingKey>>,
    fetched_at: Option<Instant>,
    refresh_at: Instant,
    last_fetch_ok: bool,
}

/// What readiness reports about the key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySetStatus {
    /// Keys held now.
    pub keys: usize,
    /// Whether the last fetch succeeded (false: serving from cache, or none held).
    pub last_fetch_ok: bool,
    /// Seconds since the keys held were fetched; `None` when none ever were.
    pub age_seconds: Option<u64>,
}

impl SigningKeys {
    /// An empty cache over `client`; call [`SigningKeys::refresh`] to fill it.
    pub fn new(client: JwksClient) -> Self {
        Self(Arc::new(Inner {
            client,
            held: RwLock::new(Arc::new(Held {
                keys: HashMap::new(),
                fetched_at: None,
                refresh_at: Instant::now(),
                last_fetch_ok: false,
            })),
            fetching: Arc::new(Mutex::new(None)),
        }))
    }

    /// Where the keys come from, for logs.
    pub fn url(&self) -> &reqwest::Url {
        self.0.client.url()
    }

    /// Fetches the key set now (retrying until `deadline`) and returns how
    /// many usable keys it holds.
    ///
    /// # Errors
    /// [`JwksCallError`] when no attempt succeeded; the keys held are kept.
    pub async fn refresh(&self, deadline: Deadline) -> Result<usize, JwksCallError> {
        let _fetching = self.0.fetching.lock().await;
        self.0.fetch_and_store(deadline).await
    }

    /// The key named `kid`. An unknown id triggers one refetch, unless
    /// another unknown id did within the last 30 s; a fetch already running
    /// is waited for rather than repeated. Stale keys are refreshed in the
    /// background while the cached ones answer.
    pub async fn find(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        let held = self.0.held();
        if Instant::now() >= held.refresh_at {
            self.refresh_in_background();
        }
        if let Some(key) = held.keys.get(kid) {
            return Some(Arc::clone(key));
        }
        let mut started = self.0.fetching.lock().await;
        let recent = started.is_some_and(|at| at.elapsed() < UNKNOWN_KID_REFETCH_INTERVAL);
        if !recent {
            *started = Some(Instant::now());
            tracing::info!(kid = %kid.chars().take(64).collect::<String>(), "token names an unknown signing key: fetching the key set");
            // The caller is waiting: one attempt's worth of time, not the
            // background's patience.
            let deadline = Deadline::after(self.0.client.timeout() + Duration::from_secs(1));
            if let Err(e) = self.0.fetch_and_store(deadline).await {
                tracing::warn!(url = %self.url(), error = %e, "signing keys could not be refetched; keeping the cached ones");
            }
        }
        drop(started);
        self.0.held().keys.get(kid).cloned()
    }

    /// The state of the cache, for readiness.
    pub fn status(&self) -> KeySetStatus {
        let held = self.0.held();
        KeySetStatus {
            keys: held.keys.len(),
            last_fetch_ok: held.last_fetch_ok,
            age_seconds: held.fetched_at.map(|at| at.elapsed().as_secs()),
        }
    }

    fn refresh_in_background(&self) {
        let Ok(fetching) = Arc::clone(&self.0.fetching).try_lock_owned() else {
            return; // a fetch is already running
        };
        let inner = Arc::clone(&self.0);
        #[expect(
            clippy::disallowed_methods,
            reason = "one refresh at a time (the fetching lock), bounded by its own deadline"
        )]
        tokio::spawn(async move {
            let _fetching = fetching;
            let deadline = Deadline::after(UNKNOWN_KID_REFETCH_INTERVAL);
            if let Err(e) = inner.fetch_and_store(deadline).await {
                tracing::warn!(url = %inner.client.url(), error = %e, "signing keys could not be refreshed; keeping the cached ones");
            }
        });
    }
}

impl Inner {
    fn held(&self) -> Arc<Held> {
        Arc::clone(&self.held.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn store(&self, held: Held) {
        *self.held.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(held);
    }

    async fn fetch_and_store(&self, deadline: Deadline) -> Result<usize, JwksCallError> {
        match self.client.fetch(deadline).await {
            Ok(set) => {
                let every = set
                    .max_age
                    .unwrap_or(DEFAULT_REFRESH)
                    .clamp(REFRESH_BOUNDS.0, REFRESH_BOUNDS.1);
                let count = set.keys.len();
                let keys = set
                    .keys
                    .into_iter()
                    .map(|key| (key.kid.clone(), Arc::new(key)))
                    .collect();
                let now = Instant::now();
                self.store(Held {
                    keys,
                    fetched_at: Some(now),
                    refresh_at: now + every,
                    last_fetch_ok: true,
                });
                tracing::debug!(keys = count, refresh_in = ?every, "signing keys fetched");
                Ok(count)
            }
            Err(e) => {
                let old = self.held();
                self.store(Held {
                    keys: old.keys.clone(),
                    fetched_at: old.fetched_at,
                    refresh_at: Instant::now() + UNKNOWN_KID_REFETCH_INTERVAL,
                    last_fetch_ok: false,
                });
                Err(e)
            }
        }
    }
}
