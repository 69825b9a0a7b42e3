//! Client for Supabase's PostgREST API, through the `postgrest` crate.
//!
//! The crate builds its own reqwest client without any timeout, so every call
//! here sets one on the request itself. Calls made with the service-role key
//! bypass row-level security: they are kept to the few places that need it
//! (readiness, membership look-ups, embedding writes and repair).

mod error;

pub use error::SupabaseError;

use std::time::Duration;

use postgrest::Postgrest;

use crate::config::{Secret, SupabaseSettings};

/// A handle to the project's PostgREST API; cheap to clone.
#[derive(Clone)]
pub struct SupabaseClient {
    /// Requests carrying the service-role key as both `apikey` and bearer token.
    service: Postgrest,
    service_key: Secret,
    timeout: Duration,
}

impl std::fmt::Debug for SupabaseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupabaseClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SupabaseClient {
    /// A client for the configured PostgREST URL.
    ///
    /// Keys were checked to be valid header values when settings were loaded,
    /// which `Postgrest::insert_header` would otherwise panic on.
    pub fn new(settings: &SupabaseSettings) -> Self {
        let base = settings.rest_url.as_str().trim_end_matches('/').to_owned();
        let service =
            Postgrest::new(base).insert_header("apikey", settings.service_role_key.expose());
        Self {
            service,
            service_key: settings.service_role_key.clone(),
            timeout: settings.timeout,
        }
    }

    /// Reads one `orgs` row with the service key: proves the REST server, the
    /// database behind it and our key all work.
    ///
    /// # Errors
    /// [`SupabaseError`] when the call fails or PostgREST refuses it.
    pub async fn ping(&self) -> Result<(), SupabaseError> {
        let response = self
            .service
            .from("orgs")
            .auth(self.service_key.expose())
            .select("id")
            .limit(1)
            .build()
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| SupabaseError::transport(e.is_timeout(), &e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(SupabaseError::from_response(status, &body))
    }
}
