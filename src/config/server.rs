//! The HTTP server's own settings: where it listens, what it accepts, how
//! long it waits, and who may call it from a browser.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use axum::http::HeaderValue;
use reqwest::Url;

use super::reader::Reader;

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

impl ServerSettings {
    pub(super) fn read(r: &mut Reader<'_>) -> Self {
        Self {
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
