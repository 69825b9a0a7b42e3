//! Typed clients for the service's dependencies: Gemini (`gemini`),
//! Supabase's PostgREST API (`supabase`) and the project's signing keys
//! (`jwks`, from Supabase Auth). Clients speak in domain terms, keep
//! the wire formats private and return their own error types; they know
//! nothing about our HTTP server.

pub mod gemini;
pub mod jwks;
pub mod supabase;

use std::time::Duration;

/// Builds the pooled HTTP client shared by all calls to one dependency.
///
/// `timeout` bounds a whole attempt (connect, send, read the body), so no call
/// can hang even when the caller forgets its own deadline.
///
/// # Errors
/// When the TLS backend cannot be initialised.
#[expect(
    clippy::disallowed_methods,
    reason = "the one place a client is built, with its timeouts"
)]
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(concat!("catalogai/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
}
