//! Assembly: turns validated settings into a bound, runnable server. `main`
//! and the tests both go through [`Application`], so tests run the real
//! wiring on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::auth::{SigningKeys, TokenVerifier};
use crate::clients::gemini::{GeminiClient, GeminiError};
use crate::clients::jwks::{JwksCallError, JwksClient, JwksError};
use crate::clients::supabase::SupabaseClient;
use crate::config::Settings;
use crate::http;
use crate::resilience::RateLimiter;
use crate::resilience::{Deadline, Dependency, TenantShare};
use crate::services::backfill::EmbeddingBackfill;
use crate::services::catalog::CatalogService;
use crate::services::embeddings::EmbeddingService;
use crate::services::enrichment::EnrichmentService;
use crate::services::imports::{ImportService, ImportWorker};
use crate::services::membership::MembershipDirectory;
use crate::services::procurement::ProcurementService;
use crate::services::query_cache::QueryEmbeddingCache;
use crate::services::readiness::ReadinessProbe;
use crate::state::{AppState, Shared};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from `HOST` and `PORT`.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The Gemini client could not be built.
    #[error("cannot set up the Gemini client: {0}")]
    Gemini(#[from] GeminiError),
    /// The key-set client could not be built.
    #[error("cannot set up the signing-key client: {0}")]
    Jwks(#[from] JwksError),
    /// The OpenAPI document could not be rendered (a bug).
    #[error("cannot render the OpenAPI document: {0}")]
    OpenApi(serde_json::Error),
    /// No access token could be verified: the key set could not be fetched
    /// (or held no usable key) and no legacy secret is set.
    #[error(
        "no way to verify access tokens: the signing keys at {url} {reason}, and SUPABASE_JWT_SECRET is not set"
    )]
    NoSigningKeys {
        /// Where the key set was fetched from.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// How long start-up keeps trying to fetch the signing keys (with retries)
/// before it gives up or, with a legacy secret, goes on without them.
const SIGNING_KEYS_STARTUP_BOUND: Duration = Duration::from_secs(15);

/// How long shutdown waits for background work to give up its lease.
const LEASE_RELEASE_BOUND: Duration = Duration::from_secs(12);

/// A server bound to its address, ready to run.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    service: http::Service,
    limits: http::server::ConnectionLimits,
    shutdown_grace: Duration,
    /// The background re-embed, when `EMBEDDING_BACKFILL` is on.
    backfill: Option<EmbeddingBackfill>,
    /// The import worker, when `IMPORT_WORKER` is on.
    import_worker: Option<ImportWorker>,
}

impl Application {
    /// Builds clients and services and binds `HOST:PORT` (port 0 picks a free one).
    ///
    /// # Errors
    /// [`StartupError`] when the address cannot be bound or a client cannot be built.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let addr = SocketAddr::new(settings.server.host, settings.server.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?;

        let gemini_policy = Arc::new(Dependency::new(
            "gemini",
            &settings.resilience,
            settings.gemini.max_concurrency,
            settings.gemini.timeout,
        ));
        let database_policy = Arc::new(Dependency::new(
            "database",
            &settings.resilience,
            settings.supabase.max_concurrency,
            settings.supabase.timeout,
        ));
        let gemini = GeminiClient::new(&settings.gemini, gemini_policy)?;
        let supabase = SupabaseClient::new(&settings.supabase, database_policy);
        let shutdown_grace = settings.server.shutdown_grace;
        let limits = http::server::ConnectionLimits {
            header_read_timeout: settings.server.header_read_timeout,
            max_connections: settings.server.max_connections,
        };
        // One fair share of Gemini per org, across enrichment and embeddings.
        let gemini_share = Arc::new(TenantShare::of(
            settings.gemini.max_concurrency,
            settings.gemini.tenant_share_percent,
        ));
        let embeddings = Arc::new(EmbeddingService::new(
            gemini.clone(),
            settings.batch.concurrency,
            Arc::clone(&gemini_share),
        ));
        let tokens = token_verifier(&settings).await?;
        let memberships = Arc::new(MembershipDirectory::new(supabase.clone()));
        let model_version = embeddings.model_version();
        let catalog = Arc::new(CatalogService::new(
            supabase.clone(),
            Arc::clone(&embeddings),
            (settings.catalog.query_cache_bytes > 0).then(|| {
                QueryEmbeddingCache::new(
                    Arc::clone(&embeddings),
                    settings.gemini.embedding_dimension,
                    settings.catalog.query_cache_bytes,
                    settings.catalog.query_cache_ttl,
                )
            }),
            Arc::clone(&memberships),
        ));
        let backfill = settings.catalog.embedding_backfill.then(|| {
            EmbeddingBackfill::new(
                supabase.clone(),
                Arc::clone(&catalog),
                model_version.clone(),
            )
        });
        let enrichment = Arc::new(EnrichmentService::new(
            gemini.clone(),
            settings.batch.concurrency,
            gemini_share,
        ));
        let imports_queued = Arc::new(tokio::sync::Notify::new());
        let import_worker = settings.catalog.import_worker.then(|| {
            ImportWorker::new(
                supabase.clone(),
                Arc::clone(&embeddings),
                Arc::clone(&enrichment),
                settings.batch.concurrency,
                Arc::clone(&imports_queued),
            )
        });
        let imports = ImportService::new(
            supabase.clone(),
            Arc::clone(&memberships),
            settings.catalog.import_max_rows,
            imports_queued,
        );
        let state = AppState::new(Shared {
            tokens,
            rate_limiter: settings
                .server
                .rate_limit
                .map(|limit| RateLimiter::new(limit.per_minute, limit.burst)),
            memberships: Arc::clone(&memberships),
            enrichment: Arc::clone(&enrichment),
            procurement: ProcurementService::new(
                supabase.clone(),
                Arc::clone(&memberships),
                Arc::clone(&embeddings),
                enrichment,
            ),
            imports,
            embeddings,
            catalog,
            readiness: ReadinessProbe::new(supabase, gemini, model_version),
            openapi: crate::http::routes::openapi::render(&settings.batch)
                .map_err(StartupError::OpenApi)?,
            settings,
            started_at: Instant::now(),
        });
        Ok(Self {
            listener,
            local_addr,
            service: http::service(state),
            limits,
            shutdown_grace,
            backfill,
            import_worker,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting connections and
    /// lets in-flight requests finish for at most `SHUTDOWN_GRACE_SECONDS`.
    ///
    /// # Errors
    /// None today (accept errors are logged and retried); kept so callers
    /// handle a server that could not run.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
        // Background work is told to stop with the server, then awaited.
        let (stopping, stop_signal) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut signal = stop_signal.clone();
            async move {
                let _ = signal.wait_for(|stop| *stop).await;
            }
        };
        let mut background = Vec::new();
        if let Some(backfill) = self.backfill {
            #[expect(
                clippy::disallowed_methods,
                reason = "the background re-embed: told to stop and awaited on shutdown"
            )]
            background.push(("re-embed", {
                let stop = stopped();
                tokio::spawn(async move {
                    backfill.run(stop).await;
                })
            }));
        }
        if let Some(worker) = self.import_worker {
            #[expect(
                clippy::disallowed_methods,
                reason = "the import worker: told to stop and awaited on shutdown"
            )]
            background.push(("import worker", tokio::spawn(worker.run(stopped()))));
        }
        let server = http::server::serve(self.listener, self.service, self.limits, async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, draining in-flight requests");
            let _ = stopping.send(true);
            let _ = draining_tx.send(());
        });
        tracing::info!(address = %self.local_addr, "CatalogAI listening");

        let grace = self.shutdown_grace;
        let drain_deadline = async move {
            match draining_rx.await {
                Ok(()) => tokio::time::sleep(grace).await,
                // The server ended on its own; let its result win.
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            () = server => tracing::info!("shutdown complete"),
            () = drain_deadline => {
                tracing::warn!(grace = ?grace, "drain time exceeded; abandoning in-flight requests");
            }
        }
        // Told to stop with the server, the re-embed and the import worker
        // give up their leases (one bounded call each) so another replica
        // resumes without waiting them out.
        for (name, task) in background {
            if tokio::time::timeout(LEASE_RELEASE_BOUND, task)
                .await
                .is_err()
            {
                tracing::warn!("{name} did not stop in time; its lease runs out on its own");
            }
        }
        Ok(())
    }
}

/// The token verifier, with the signing keys fetched. Without a legacy
/// secret the keys are the only way in, so start-up fails (saying why) when
/// none can be had within [`SIGNING_KEYS_STARTUP_BOUND`]; with one, the
/// server starts and keeps trying in the background.
async fn token_verifier(settings: &Settings) -> Result<TokenVerifier, StartupError> {
    let auth = &settings.supabase.auth;
    let signing_keys = match &auth.jwks_url {
        None => None,
        Some(url) => {
            let policy = Arc::new(Dependency::new(
                "supabase_auth",
                &settings.resilience,
                4,
                auth.timeout,
            ));
            let keys = SigningKeys::new(JwksClient::new(url.clone(), auth.timeout, policy)?);
            let outcome = keys
                .refresh(Deadline::after(SIGNING_KEYS_STARTUP_BOUND))
                .await;
            let problem = match outcome {
                Ok(0) => Some("hold no usable ES256 or RS256 key".to_owned()),
                Ok(count) => {
                    tracing::info!(%url, keys = count, "signing keys fetched");
                    None
                }
                Err(e) => Some(could_not_fetch(&e)),
            };
            match (problem, &auth.jwt_secret) {
                (None, None) => {}
                (None, Some(_)) => {
                    tracing::warn!(%url, "the project has signing keys and SUPABASE_JWT_SECRET is set too: HS256 tokens signed with the legacy secret are still accepted; once the project has revoked it, set SUPABASE_JWT_HS256=false");
                }
                (Some(reason), Some(_)) => {
                    tracing::warn!(%url, %reason, "signing keys unavailable at start-up: verifying with SUPABASE_JWT_SECRET alone until they can be fetched");
                }
                (Some(reason), None) => {
                    return Err(StartupError::NoSigningKeys {
                        url: url.to_string(),
                        reason,
                    });
                }
            }
            Some(keys)
        }
    };
    Ok(TokenVerifier::new(
        auth.jwt_secret.as_ref(),
        signing_keys,
        auth.issuer.as_deref(),
    ))
}

fn could_not_fetch(error: &JwksCallError) -> String {
    format!(
        "could not be fetched within {}s ({error})",
        SIGNING_KEYS_STARTUP_BOUND.as_secs()
    )
}
