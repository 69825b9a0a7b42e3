//! Settings: read once at start-up from the environment (and a `.env` file, which
//! `main` loads first), validated as a whole, then passed down as typed values.
//!
//! The environment names are the original service's (`SUPABASE_URL`,
//! `GEMINI_API_KEY`, `CIRCUIT_BREAKER_FAIL_MAX`, ...) plus the port's additions;
//! `.env.example` documents every one. Validation collects every problem before
//! failing, so one start-up attempt names all bad settings at once. Secret
//! values are held in [`Secret`], whose `Debug` output is redacted, and never
//! appear in error messages.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use reqwest::Url;

/// Everything the service needs to run, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Deployment flavour; decides the log format.
    pub app_env: AppEnv,
    /// The HTTP server's own settings.
    pub server: ServerSettings,
    /// Supabase (PostgREST) connection settings.
    pub supabase: SupabaseSettings,
    /// Gemini API settings.
    pub gemini: GeminiSettings,
    /// Limits on batch enrichment.
    pub batch: BatchSettings,
    /// Retry and circuit-breaker policy for outbound calls.
    pub resilience: ResilienceSettings,
}

/// `APP_ENV`: `development` gives readable logs, `production` JSON logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// Human-readable logs.
    Development,
    /// One JSON object per log line, for log shippers.
    Production,
}

/// Settings of the HTTP server itself.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Address to bind (`HOST`).
    pub host: IpAddr,
    /// Port to bind (`PORT`); 0 picks a free port.
    pub port: u16,
    /// Origins allowed by CORS (`CORS_ORIGINS`).
    pub cors_origins: CorsOrigins,
    /// Largest accepted request body in bytes (`MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Deadline for handling one request, all outbound calls included (`REQUEST_TIMEOUT_SECONDS`).
    pub request_timeout: Duration,
    /// How long in-flight requests may run after a shutdown signal (`SHUTDOWN_GRACE_SECONDS`).
    pub shutdown_grace: Duration,
    /// Requests served at once before new ones are shed with 503 (`MAX_IN_FLIGHT_REQUESTS`).
    pub max_in_flight_requests: usize,
    /// Per-caller rate limit; `None` when `RATE_LIMIT_PER_MINUTE` is 0.
    pub rate_limit: Option<RateLimitSettings>,
    /// Time a client has to send a request's headers (`HEADER_READ_TIMEOUT_SECONDS`).
    pub header_read_timeout: Duration,
    /// Connections served at once (`MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Whether readiness fails (503) when Gemini does (`READINESS_REQUIRE_GEMINI`);
    /// by default a Gemini outage only degrades it.
    pub readiness_require_gemini: bool,
}

/// A token bucket per caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Sustained requests per minute per caller (`RATE_LIMIT_PER_MINUTE`).
    pub per_minute: u32,
    /// Requests a caller may send at once (`RATE_LIMIT_BURST`).
    pub burst: u32,
}

/// Which browser origins may call the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `*`: any origin.
    Any,
    /// An explicit list of origins such as `https://app.example.com`.
    List(Vec<HeaderValue>),
}

/// Supabase connection settings.
#[derive(Debug, Clone)]
pub struct SupabaseSettings {
    /// The project URL (`SUPABASE_URL`).
    pub url: Url,
    /// The PostgREST base URL: `POSTGREST_URL`, or `SUPABASE_URL` + `/rest/v1`.
    pub rest_url: Url,
    /// The public key (`SUPABASE_KEY` or `SUPABASE_PUBLISHABLE_KEY`): the
    /// legacy anon JWT or an `sb_publishable_...` key, sent as `apikey` on
    /// user-scoped calls.
    pub anon_key: ApiKey,
    /// The elevated key (`SUPABASE_SERVICE_ROLE_KEY` or `SUPABASE_SECRET_KEY`):
    /// the legacy service-role JWT or an `sb_secret_...` key; bypasses
    /// row-level security.
    pub service_role_key: ApiKey,
    /// How users' access tokens are verified.
    pub auth: AuthSettings,
    /// Timeout of one PostgREST call (`SUPABASE_TIMEOUT_SECONDS`).
    pub timeout: Duration,
    /// Most PostgREST calls in flight from this process at once (`SUPABASE_MAX_CONCURRENCY`).
    pub max_concurrency: usize,
}

/// How users' access tokens are verified: against the project's JSON Web
/// Key Set (asymmetric signing keys), with the legacy HS256 secret, or both
/// (a project moving from one to the other).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The legacy JWT secret (`SUPABASE_JWT_SECRET`), for HS256 tokens;
    /// none when `SUPABASE_JWT_HS256=false`.
    pub jwt_secret: Option<Secret>,
    /// Where the signing keys are published (`SUPABASE_JWKS_URL`, default
    /// `SUPABASE_URL/auth/v1/.well-known/jwks.json`); `None` when set to `off`.
    pub jwks_url: Option<Url>,
    /// The `iss` every token must carry (`SUPABASE_JWT_ISSUER`); `None`: not checked.
    pub issuer: Option<String>,
    /// Timeout of one key-set fetch (`SUPABASE_AUTH_TIMEOUT_SECONDS`).
    pub timeout: Duration,
}

/// A Supabase API key, and which kind it is: the kind decides how it is sent.
#[derive(Debug, Clone)]
pub struct ApiKey {
    value: Secret,
    kind: ApiKeyKind,
}

/// The kinds of Supabase API keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyKind {
    /// A legacy `anon` or `service_role` key: a long-lived JWT, sent as
    /// `apikey` and as the bearer token.
    LegacyJwt,
    /// `sb_publishable_...`: sent as `apikey` only; never a bearer token.
    Publishable,
    /// `sb_secret_...`: sent as `apikey` only; never a bearer token.
    Secret,
}

impl ApiKey {
    /// A key, its kind read from its prefix.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        let value = Secret(value.into());
        let kind = if value.expose().starts_with("sb_publishable_") {
            ApiKeyKind::Publishable
        } else if value.expose().starts_with("sb_secret_") {
            ApiKeyKind::Secret
        } else {
            ApiKeyKind::LegacyJwt
        };
        Self { value, kind }
    }

    /// The key itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        self.value.expose()
    }

    /// Which kind of key this is.
    pub fn kind(&self) -> ApiKeyKind {
        self.kind
    }
}

/// Gemini API settings.
#[derive(Debug, Clone)]
pub struct GeminiSettings {
    /// API key (`GEMINI_API_KEY`), sent in the `x-goog-api-key` header.
    pub api_key: Secret,
    /// API root (`GEMINI_BASE_URL`), without the version segment.
    pub base_url: Url,
    /// Model for structured enrichment (`GEMINI_MODEL`).
    pub model: String,
    /// Model for embeddings (`EMBEDDING_MODEL`).
    pub embedding_model: String,
    /// Embedding size (`EMBEDDING_DIMENSION`); the database column is `vector(768)`.
    pub embedding_dimension: u32,
    /// Whether this replica takes part in re-embedding, in the background,
    /// every org's items that lack a vector of `embedding_model`
    /// (`EMBEDDING_BACKFILL`; the database lets one replica at a time run it).
    pub embedding_backfill: bool,
    /// Most Gemini calls in flight from this process at once (`GEMINI_MAX_CONCURRENCY`).
    pub max_concurrency: usize,
    /// Share of those one organisation may hold, in percent (`GEMINI_TENANT_SHARE_PERCENT`).
    pub tenant_share_percent: u32,
    /// Timeout of one Gemini call (`GEMINI_TIMEOUT_SECONDS`).
    pub timeout: Duration,
    /// Memory for cached search-query embeddings, in bytes (`QUERY_CACHE_MB`); 0: no cache.
    pub query_cache_bytes: u64,
    /// How long a cached query embedding is used (`QUERY_CACHE_TTL_SECONDS`).
    pub query_cache_ttl: Duration,
}

/// Limits on batch enrichment.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// Most product names in one batch request (`MAX_BATCH_SIZE`).
    pub max_batch_size: usize,
    /// Most items of one batch enriched at once (`BATCH_CONCURRENCY`).
    pub concurrency: usize,
    /// Most texts in one `/api/embeddings` request (`MAX_EMBED_TEXTS`).
    pub max_embed_texts: usize,
}

/// Retry and circuit-breaker policy for calls to Gemini and Supabase.
#[derive(Debug, Clone)]
pub struct ResilienceSettings {
    /// Consecutive failures that open a dependency's breaker (`CIRCUIT_BREAKER_FAIL_MAX`).
    pub circuit_breaker_fail_max: u32,
    /// How long an open breaker stays open (`CIRCUIT_BREAKER_TIMEOUT`, seconds).
    pub circuit_breaker_timeout: Duration,
    /// Most attempts for connection errors, timeouts and 5xx
    /// (`RETRY_MAX_ATTEMPTS`): a cap; the deadline and the budget usually stop first.
    pub retry_max_attempts: u32,
    /// Retries allowed as a share of first attempts, in percent (`RETRY_BUDGET_PERCENT`).
    pub retry_budget_percent: u32,
    /// Retries allowed per second on top of that share (`RETRY_BUDGET_MIN_PER_SECOND`).
    pub retry_budget_min_per_second: u32,
    /// Attempts for rate-limited (429) calls (`RETRY_RATE_LIMIT_ATTEMPTS`).
    pub retry_rate_limit_attempts: u32,
}

/// A secret setting. `Debug` never shows the value; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why the settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// One or more settings are missing or invalid; each entry names one.
    #[error("invalid configuration (see .env.example):\n{}", format_problems(.0))]
    Invalid(Vec<String>),
    /// The environment could not be read at all.
    #[error("could not read configuration: {0}")]
    Source(#[from] config::ConfigError),
}

fn format_problems(problems: &[String]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Settings {
    /// Loads settings from the process environment.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming every missing or invalid setting.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::load(config::Environment::default())
    }

    /// Loads settings from the given variables only (tests, tools); the
    /// process environment is not read.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming every missing or invalid setting.
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::load(config::Environment::default().source(Some(vars)))
    }

    fn load(source: config::Environment) -> Result<Self, ConfigError> {
        let config = config::Config::builder()
            .add_source(source.try_parsing(false))
            .build()?;
        let mut r = Reader {
            config: &config,
            problems: Vec::new(),
        };

        let app_env = r.parse_or("APP_ENV", AppEnv::Development);
        let server = ServerSettings {
            host: r.parse_or("HOST", IpAddr::from([127, 0, 0, 1])),
            port: r.parse_or("PORT", 5000),
            cors_origins: r.parse_or("CORS_ORIGINS", CorsOrigins::Any),
            max_body_bytes: r.bounded("MAX_BODY_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
            request_timeout: r.seconds("REQUEST_TIMEOUT_SECONDS", 60, 1, 3600),
            shutdown_grace: r.seconds("SHUTDOWN_GRACE_SECONDS", 30, 0, 3600),
            max_in_flight_requests: r.bounded("MAX_IN_FLIGHT_REQUESTS", 1024, 1, 1_000_000),
            rate_limit: {
                let per_minute = r.bounded("RATE_LIMIT_PER_MINUTE", 600, 0, 1_000_000);
                let burst = r.bounded("RATE_LIMIT_BURST", 60, 1, 1_000_000);
                (per_minute > 0).then_some(RateLimitSettings { per_minute, burst })
            },
            header_read_timeout: r.seconds("HEADER_READ_TIMEOUT_SECONDS", 10, 1, 300),
            max_connections: r.bounded("MAX_CONNECTIONS", 10_000, 1, 1_000_000),
            readiness_require_gemini: r.parse_or("READINESS_REQUIRE_GEMINI", false),
        };

        let supabase_url = r.url("SUPABASE_URL");
        let rest_url = match r.optional_url("POSTGREST_URL") {
            Some(url) => Some(url),
            None => supabase_url.as_ref().and_then(|url| r.rest_url_of(url)),
        };
        let anon_key = r.api_key(
            "SUPABASE_KEY",
            "SUPABASE_PUBLISHABLE_KEY",
            ApiKeyKind::Secret,
        );
        let service_role_key = r.api_key(
            "SUPABASE_SERVICE_ROLE_KEY",
            "SUPABASE_SECRET_KEY",
            ApiKeyKind::Publishable,
        );
        let auth = supabase_url.as_ref().map(|url| r.auth(url));
        let supabase_timeout = r.seconds("SUPABASE_TIMEOUT_SECONDS", 10, 1, 300);
        let supabase_max_concurrency = r.bounded("SUPABASE_MAX_CONCURRENCY", 32, 1, 10_000);

        let gemini_api_key = r.header_secret("GEMINI_API_KEY");
        let gemini_base_url = r.url_or(
            "GEMINI_BASE_URL",
            "https://generativelanguage.googleapis.com",
        );
        let model = r.model_name("GEMINI_MODEL", "gemini-3-flash-preview");
        let embedding_model = r.model_name("EMBEDDING_MODEL", "gemini-embedding-001");
        let embedding_dimension = r.bounded("EMBEDDING_DIMENSION", 768, 128, 3072);
        let embedding_backfill = r.parse_or("EMBEDDING_BACKFILL", true);
        let gemini_max_concurrency = r.bounded("GEMINI_MAX_CONCURRENCY", 32, 1, 10_000);
        let gemini_timeout = r.seconds("GEMINI_TIMEOUT_SECONDS", 30, 1, 600);
        let tenant_share_percent = r.bounded("GEMINI_TENANT_SHARE_PERCENT", 50, 1, 100);
        let query_cache_bytes = r.bounded("QUERY_CACHE_MB", 32u64, 0, 4096) * 1024 * 1024;
        let query_cache_ttl = r.seconds("QUERY_CACHE_TTL_SECONDS", 3600, 1, 86_400);
        let batch = BatchSettings {
            max_batch_size: r.bounded("MAX_BATCH_SIZE", 20, 1, 10_000),
            concurrency: r.bounded("BATCH_CONCURRENCY", 20, 1, 10_000),
            max_embed_texts: r.bounded("MAX_EMBED_TEXTS", 1000, 1, 100_000),
        };
        let resilience = ResilienceSettings {
            circuit_breaker_fail_max: r.bounded("CIRCUIT_BREAKER_FAIL_MAX", 5, 1, 1000),
            circuit_breaker_timeout: r.seconds("CIRCUIT_BREAKER_TIMEOUT", 60, 1, 3600),
            retry_max_attempts: r.bounded("RETRY_MAX_ATTEMPTS", 10, 1, 20),
            retry_budget_percent: r.bounded("RETRY_BUDGET_PERCENT", 50, 0, 1000),
            retry_budget_min_per_second: r.bounded("RETRY_BUDGET_MIN_PER_SECOND", 5, 0, 10_000),
            retry_rate_limit_attempts: r.bounded("RETRY_RATE_LIMIT_ATTEMPTS", 5, 1, 20),
        };

        // Every `None` below has recorded a problem, so an empty list means all are `Some`.
        let (
            Some(url),
            Some(rest_url),
            Some(anon_key),
            Some(service_role_key),
            Some(auth),
            Some(api_key),
            Some(base_url),
        ) = (
            supabase_url,
            rest_url,
            anon_key,
            service_role_key,
            auth,
            gemini_api_key,
            gemini_base_url,
        )
        else {
            return Err(ConfigError::Invalid(r.problems));
        };
        if !r.problems.is_empty() {
            return Err(ConfigError::Invalid(r.problems));
        }
        Ok(Settings {
            app_env,
            server,
            supabase: SupabaseSettings {
                url,
                rest_url,
                anon_key,
                service_role_key,
                auth,
                timeout: supabase_timeout,
                max_concurrency: supabase_max_concurrency,
            },
            gemini: GeminiSettings {
                api_key,
                base_url,
                model,
                embedding_model,
                embedding_dimension,
                embedding_backfill,
                max_concurrency: gemini_max_concurrency,
                tenant_share_percent,
                timeout: gemini_timeout,
                query_cache_bytes,
                query_cache_ttl,
            },
            batch,
            resilience,
        })
    }
}

/// Reads raw values and records a problem for each one that is missing or invalid.
struct Reader<'a> {
    config: &'a config::Config,
    problems: Vec<String>,
}

impl Reader<'_> {
    /// The trimmed value of a setting; empty counts as unset, as in `.env.example` copies.
    fn raw(&self, name: &str) -> Option<String> {
        self.config
            .get_string(&name.to_ascii_lowercase())
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn parse_or<T: FromStr>(&mut self, name: &str, default: T) -> T
    where
        T::Err: fmt::Display,
    {
        match self.raw(name) {
            None => default,
            Some(value) => match value.parse() {
                Ok(parsed) => parsed,
                Err(e) => {
                    self.problems
                        .push(format!("{name}: `{value}` is invalid: {e}"));
                    default
                }
            },
        }
    }

    fn bounded<T>(&mut self, name: &str, default: T, min: T, max: T) -> T
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        let Some(value) = self.raw(name) else {
            return default;
        };
        match value.parse::<T>() {
            Ok(n) if n >= min && n <= max => n,
            _ => {
                self.problems.push(format!(
                    "{name}: `{value}` is not a whole number between {min} and {max}"
                ));
                default
            }
        }
    }

    fn seconds(&mut self, name: &str, default: u64, min: u64, max: u64) -> Duration {
        Duration::from_secs(self.bounded(name, default, min, max))
    }

    fn secret(&mut self, name: &str) -> Option<Secret> {
        let value = self.raw(name);
        if value.is_none() {
            self.problems.push(format!("{name}: required, not set"));
        }
        value.map(Secret::new)
    }

    /// A secret that is sent in an HTTP header, so it must be a valid header value.
    fn header_secret(&mut self, name: &str) -> Option<Secret> {
        let secret = self.secret(name)?;
        if HeaderValue::from_str(&format!("Bearer {}", secret.expose())).is_err() {
            // The value itself is never echoed: it is a secret.
            self.problems.push(format!(
                "{name}: contains characters that cannot be sent in an HTTP header"
            ));
            return None;
        }
        Some(secret)
    }

    /// A Supabase API key, under its original name or its new-style alias
    /// (both set must agree). A key of the `refused` kind is a mistake that
    /// would leak or fail (a secret key as the public one, say).
    fn api_key(&mut self, name: &str, alias: &str, refused: ApiKeyKind) -> Option<ApiKey> {
        let value = match (self.raw(name), self.raw(alias)) {
            (Some(a), Some(b)) if a != b => {
                self.problems.push(format!(
                    "{name} and {alias} are both set, to different keys"
                ));
                return None;
            }
            (Some(value), _) | (None, Some(value)) => value,
            (None, None) => {
                self.problems
                    .push(format!("{name} (or {alias}): required, not set"));
                return None;
            }
        };
        if HeaderValue::from_str(&format!("Bearer {value}")).is_err() {
            // The value itself is never echoed: it is a secret.
            self.problems.push(format!(
                "{name}: contains characters that cannot be sent in an HTTP header"
            ));
            return None;
        }
        let key = ApiKey::new(value);
        if key.kind() == refused {
            let problem = match refused {
                ApiKeyKind::Secret => {
                    "is a secret key (sb_secret_...); this one must be the publishable key"
                }
                _ => "is a publishable key; this one must be the secret (or service-role) key",
            };
            self.problems.push(format!("{name}: {problem}"));
            return None;
        }
        Some(key)
    }

    /// Token verification settings. The key set is on by default (every
    /// Supabase project publishes one); `SUPABASE_JWKS_URL=off` leaves only
    /// the legacy secret, and then that must be set.
    fn auth(&mut self, project: &Url) -> AuthSettings {
        let base = project.as_str().trim_end_matches('/');
        // Off once a project has revoked its legacy secret, while the
        // variable stays set for other tools that read it.
        let jwt_secret = self
            .parse_or("SUPABASE_JWT_HS256", true)
            .then(|| self.raw("SUPABASE_JWT_SECRET").map(Secret::new))
            .flatten();
        let jwks_url = match self.raw("SUPABASE_JWKS_URL") {
            Some(off) if off.eq_ignore_ascii_case("off") => None,
            Some(url) => self.key_set_url("SUPABASE_JWKS_URL", &url),
            None => self.key_set_url(
                "SUPABASE_URL",
                &format!("{base}/auth/v1/.well-known/jwks.json"),
            ),
        };
        if jwks_url.is_none() && jwt_secret.is_none() {
            self.problems.push(
                "SUPABASE_JWT_SECRET: required (and SUPABASE_JWT_HS256 not false) when SUPABASE_JWKS_URL is off: no way to verify access tokens"
                    .to_owned(),
            );
        }
        // Supabase-hosted projects name their Auth server as the issuer;
        // self-hosted ones choose their own, so it is only assumed for the former.
        let issuer = match self.raw("SUPABASE_JWT_ISSUER") {
            Some(off) if off.eq_ignore_ascii_case("off") => None,
            Some(issuer) => Some(issuer),
            None => project
                .host_str()
                .filter(|host| host.ends_with(".supabase.co"))
                .map(|_| format!("{base}/auth/v1")),
        };
        AuthSettings {
            jwt_secret,
            jwks_url,
            issuer,
            timeout: self.seconds("SUPABASE_AUTH_TIMEOUT_SECONDS", 5, 1, 60),
        }
    }

    /// Signing keys decide who is who: fetched over HTTPS only, except from
    /// this machine.
    fn key_set_url(&mut self, name: &str, value: &str) -> Option<Url> {
        let url = self.check_url(name, value)?;
        if url.scheme() == "https" || is_loopback(&url) {
            Some(url)
        } else {
            self.problems.push(format!(
                "{name}: the signing keys must be fetched over https (plain http only on loopback)"
            ));
            None
        }
    }

    /// Supabase serves PostgREST under `/rest/v1` of the project URL.
    fn rest_url_of(&mut self, project: &Url) -> Option<Url> {
        let base = project.as_str().trim_end_matches('/');
        self.check_url("SUPABASE_URL", &format!("{base}/rest/v1"))
    }

    fn url(&mut self, name: &str) -> Option<Url> {
        match self.raw(name) {
            None => {
                self.problems.push(format!("{name}: required, not set"));
                None
            }
            Some(value) => self.check_url(name, &value),
        }
    }

    fn optional_url(&mut self, name: &str) -> Option<Url> {
        let value = self.raw(name)?;
        self.check_url(name, &value)
    }

    fn url_or(&mut self, name: &str, default: &str) -> Option<Url> {
        let value = self.raw(name).unwrap_or_else(|| default.to_owned());
        self.check_url(name, &value)
    }

    fn check_url(&mut self, name: &str, value: &str) -> Option<Url> {
        match Url::parse(value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Some(url)
            }
            _ => {
                self.problems
                    .push(format!("{name}: `{value}` is not an http(s) URL"));
                None
            }
        }
    }

    /// A Gemini model id: it becomes a URL path segment, so keep it to safe characters.
    fn model_name(&mut self, name: &str, default: &str) -> String {
        let value = self.raw(name).unwrap_or_else(|| default.to_owned());
        let value = value.strip_prefix("models/").unwrap_or(&value).to_owned();
        let valid = value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !valid {
            self.problems.push(format!(
                "{name}: `{value}` is not a model id (letters, digits, `-`, `.`, `_`)"
            ));
        }
        value
    }
}

/// Whether `url` names this machine (plain HTTP is acceptable there).
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

impl FromStr for AppEnv {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "development" | "dev" | "local" => Ok(Self::Development),
            "production" | "prod" => Ok(Self::Production),
            _ => Err("expected `development` or `production`".to_owned()),
        }
    }
}

impl FromStr for CorsOrigins {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "*" {
            return Ok(Self::Any);
        }
        let origins = s
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|origin| {
                let url = Url::parse(origin).map_err(|_| format!("`{origin}` is not an origin"))?;
                let is_origin = matches!(url.scheme(), "http" | "https")
                    && url.host().is_some()
                    && url.path() == "/"
                    && !origin.ends_with('/');
                if !is_origin {
                    return Err(format!(
                        "`{origin}` is not an origin like https://app.example.com"
                    ));
                }
                HeaderValue::from_str(origin).map_err(|_| format!("`{origin}` is not an origin"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if origins.is_empty() {
            return Err("expected `*` or a comma-separated list of origins".to_owned());
        }
        Ok(Self::List(origins))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every setting this module reads, found in its own source as the
    /// quoted UPPER_CASE names passed to the reader, must be documented in
    /// `.env.example` and the README's settings table.
    #[test]
    fn every_setting_is_documented() {
        let source = include_str!("config.rs");
        let example = include_str!("../.env.example");
        let readme = include_str!("../README.md");
        let names: std::collections::BTreeSet<&str> = source
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|s| {
                s.len() > 3
                    && s.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
            .collect();
        assert!(names.len() > 25, "found only {names:?}");
        for name in names {
            assert!(
                example.lines().any(|l| l.starts_with(&format!("{name}="))),
                "{name} is not in .env.example"
            );
            assert!(
                readme.contains(&format!("`{name}`")),
                "{name} is not in the README"
            );
        }
    }

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("SUPABASE_URL", "https://project.supabase.co"),
            ("SUPABASE_KEY", "anon-key"),
            ("SUPABASE_SERVICE_ROLE_KEY", "service-key"),
            ("SUPABASE_JWT_SECRET", "jwt-secret"),
            ("GEMINI_API_KEY", "gemini-key"),
        ]
    }

    #[test]
    fn defaults_match_the_original_service() {
        let s = Settings::from_vars(minimal()).unwrap();
        assert_eq!(s.server.port, 5000);
        assert_eq!(s.server.cors_origins, CorsOrigins::Any);
        assert_eq!(s.gemini.model, "gemini-3-flash-preview");
        assert_eq!(s.gemini.embedding_model, "gemini-embedding-001");
        assert_eq!(s.gemini.embedding_dimension, 768);
        assert_eq!(s.batch.max_batch_size, 20);
        assert_eq!(s.resilience.circuit_breaker_fail_max, 5);
        assert_eq!(
            s.resilience.circuit_breaker_timeout,
            Duration::from_secs(60)
        );
        assert_eq!(s.resilience.retry_max_attempts, 10);
        assert_eq!(s.resilience.retry_budget_percent, 50);
        assert_eq!(s.resilience.retry_rate_limit_attempts, 5);
        assert_eq!(
            s.supabase.rest_url.as_str(),
            "https://project.supabase.co/rest/v1"
        );
    }

    #[test]
    fn hs256_can_be_turned_off_while_the_secret_stays_set() {
        let s = Settings::from_vars(minimal()).unwrap();
        assert!(s.supabase.auth.jwt_secret.is_some());
        let mut vars = minimal();
        vars.push(("SUPABASE_JWT_HS256", "false"));
        let s = Settings::from_vars(vars).unwrap();
        assert!(s.supabase.auth.jwt_secret.is_none());
        let mut vars = minimal();
        vars.extend([
            ("SUPABASE_JWT_HS256", "false"),
            ("SUPABASE_JWKS_URL", "off"),
        ]);
        let err = Settings::from_vars(vars).unwrap_err().to_string();
        assert!(err.contains("no way to verify access tokens"), "{err}");
    }

    #[test]
    fn postgrest_url_overrides_the_supabase_default() {
        let mut vars = minimal();
        vars.push(("POSTGREST_URL", "http://127.0.0.1:3000/api"));
        let s = Settings::from_vars(vars).unwrap();
        assert_eq!(s.supabase.rest_url.as_str(), "http://127.0.0.1:3000/api");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let vars = [("PORT", "seventy"), ("EMBEDDING_DIMENSION", "5000")];
        let err = Settings::from_vars(vars).unwrap_err().to_string();
        for name in [
            "SUPABASE_URL",
            "SUPABASE_KEY",
            "SUPABASE_SERVICE_ROLE_KEY",
            "GEMINI_API_KEY",
            "PORT",
            "EMBEDDING_DIMENSION",
        ] {
            assert!(err.contains(name), "{name} missing from: {err}");
        }
    }

    #[test]
    fn secrets_never_appear_in_debug_output_or_errors() {
        let mut vars = minimal();
        vars.retain(|(k, _)| *k != "GEMINI_API_KEY");
        vars.push(("GEMINI_API_KEY", "top-secret\nvalue"));
        let err = Settings::from_vars(vars).unwrap_err().to_string();
        assert!(!err.contains("top-secret"), "{err}");

        let s = Settings::from_vars(minimal()).unwrap();
        let debug = format!("{s:?}");
        for secret in ["anon-key", "service-key", "jwt-secret", "gemini-key"] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Settings, ConfigError> {
        let mut vars = minimal();
        vars.retain(|(k, _)| !extra.iter().any(|(name, _)| name == k));
        vars.extend_from_slice(extra);
        Settings::from_vars(vars)
    }

    #[test]
    fn new_api_keys_are_recognised_under_either_name() {
        let s = with(&[
            ("SUPABASE_KEY", ""),
            ("SUPABASE_SERVICE_ROLE_KEY", ""),
            ("SUPABASE_PUBLISHABLE_KEY", "sb_publishable_abc"),
            ("SUPABASE_SECRET_KEY", "sb_secret_xyz"),
        ])
        .unwrap();
        assert_eq!(s.supabase.anon_key.kind(), ApiKeyKind::Publishable);
        assert_eq!(s.supabase.service_role_key.kind(), ApiKeyKind::Secret);
        assert_eq!(s.supabase.service_role_key.expose(), "sb_secret_xyz");
        let legacy = Settings::from_vars(minimal()).unwrap();
        assert_eq!(legacy.supabase.anon_key.kind(), ApiKeyKind::LegacyJwt);
    }

    #[test]
    fn misplaced_or_conflicting_keys_are_refused_without_echoing_them() {
        for (vars, expected) in [
            (vec![("SUPABASE_KEY", "sb_secret_leak")], "SUPABASE_KEY"),
            (
                vec![("SUPABASE_SERVICE_ROLE_KEY", "sb_publishable_x")],
                "SUPABASE_SERVICE_ROLE_KEY",
            ),
            (vec![("SUPABASE_SECRET_KEY", "sb_secret_other")], "both set"),
        ] {
            let err = with(&vars).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            for key in ["sb_secret_leak", "sb_publishable_x", "sb_secret_other"] {
                assert!(!err.contains(key), "a key leaked: {err}");
            }
        }
    }

    #[test]
    fn key_set_defaults_to_the_project_and_needs_https() {
        let s = Settings::from_vars(minimal()).unwrap();
        assert_eq!(
            s.supabase.auth.jwks_url.unwrap().as_str(),
            "https://project.supabase.co/auth/v1/.well-known/jwks.json"
        );
        assert_eq!(
            s.supabase.auth.issuer.as_deref(),
            Some("https://project.supabase.co/auth/v1")
        );
        assert!(with(&[("SUPABASE_JWKS_URL", "http://auth.example.com/jwks")]).is_err());
        let local = with(&[("SUPABASE_JWKS_URL", "http://127.0.0.1:9/jwks")]).unwrap();
        assert!(local.supabase.auth.jwks_url.is_some());
        let self_hosted = with(&[("SUPABASE_URL", "https://supabase.internal")]).unwrap();
        assert_eq!(self_hosted.supabase.auth.issuer, None);
        let off = with(&[("SUPABASE_JWT_ISSUER", "off")]).unwrap();
        assert_eq!(off.supabase.auth.issuer, None);
    }

    #[test]
    fn some_way_to_verify_tokens_is_required() {
        let legacy_only = with(&[("SUPABASE_JWKS_URL", "off")]).unwrap();
        assert!(legacy_only.supabase.auth.jwks_url.is_none());
        assert!(with(&[("SUPABASE_JWT_SECRET", "")]).is_ok());
        let err = with(&[("SUPABASE_JWKS_URL", "off"), ("SUPABASE_JWT_SECRET", "")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("SUPABASE_JWT_SECRET"), "{err}");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let mut vars = minimal();
        vars.push(("PORT", ""));
        assert_eq!(Settings::from_vars(vars).unwrap().server.port, 5000);
    }

    #[test]
    fn cors_origins_parse_as_a_list_and_reject_paths() {
        assert_eq!(
            "https://a.example, http://localhost:3000"
                .parse::<CorsOrigins>()
                .unwrap(),
            CorsOrigins::List(vec![
                HeaderValue::from_static("https://a.example"),
                HeaderValue::from_static("http://localhost:3000"),
            ])
        );
        assert!("https://a.example/app".parse::<CorsOrigins>().is_err());
        assert!("ftp://a.example".parse::<CorsOrigins>().is_err());
    }

    #[test]
    fn model_ids_accept_the_models_prefix_and_reject_path_tricks() {
        let mut vars = minimal();
        vars.push(("GEMINI_MODEL", "models/gemini-2.5-flash"));
        assert_eq!(
            Settings::from_vars(vars).unwrap().gemini.model,
            "gemini-2.5-flash"
        );
        let mut vars = minimal();
        vars.push(("GEMINI_MODEL", "../admin"));
        assert!(Settings::from_vars(vars).is_err());
    }
}
