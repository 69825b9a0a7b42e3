//! Client for Supabase's PostgREST API, through the `postgrest` crate.
//!
//! The crate builds its own reqwest client without any timeout, so every call
//! here sets one on the request itself. Calls made with the service-role key
//! bypass row-level security: they are kept to the few places that need it
//! (readiness, membership look-ups, embedding writes, repair and the
//! re-embed lease).

mod api_key;
mod backfill;
mod catalog;
mod error;
mod imports;
mod page;
mod procurement;

pub use api_key::{ApiKey, ApiKeyKind};
pub use backfill::{BackfillClaim, BackfillProgress, BackfillState, BackfillStatus};
pub(crate) use catalog::{ItemEmbedding, ItemText};
pub use error::{Breach, PostgrestAnswer, Refusal, SupabaseCallError, SupabaseError};
pub(crate) use imports::{
    AppliedRow, BegunImport, ChunkRow, ClaimedImport, JobLease, StagedRow, UploadTally,
};
pub use page::OrgRows;

use std::sync::Arc;
use std::time::Duration;

use postgrest::Postgrest;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::config::SupabaseSettings;
use crate::domain::Role;
use crate::resilience::{BreakerState, Deadline, Dependency};

/// How a SQL function is called: as whom (row-level security applies to a
/// user, not to the service role), and whether an attempt whose answer was
/// lost may be sent again.
#[derive(Debug, Clone, Copy)]
enum Rpc<'a> {
    /// With the service key, retried: the function changes nothing, or
    /// recognises a repeated call.
    Service,
    /// With the service key, sent once: a lost answer might have committed.
    ServiceOnce,
    /// As the bearer of the token, retried: the function changes nothing.
    Read(&'a str),
    /// As the bearer of the token, sent once: a lost answer might have
    /// committed, and the write must not run twice.
    Write(&'a str),
}

/// A handle to the project's PostgREST API; cheap to clone.
#[derive(Clone)]
pub struct SupabaseClient {
    /// Requests carrying the service-role (or secret) key as `apikey`.
    service: Postgrest,
    /// Requests made for a user: the public key as `apikey`, the user's token as bearer.
    user: Postgrest,
    service_key: ApiKey,
    timeout: Duration,
    policy: Arc<Dependency>,
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
    pub fn new(settings: &SupabaseSettings, policy: Arc<Dependency>) -> Self {
        let base = settings.rest_url.as_str().trim_end_matches('/').to_owned();
        let service = Postgrest::new(base.clone())
            .insert_header("apikey", settings.service_role_key.expose());
        let user = Postgrest::new(base).insert_header("apikey", settings.anon_key.expose());
        Self {
            service,
            user,
            service_key: settings.service_role_key.clone(),
            timeout: settings.timeout,
            policy,
        }
    }

    /// The database breaker's state, for the readiness body.
    pub fn breaker_state(&self) -> BreakerState {
        self.policy.breaker_state()
    }

    /// Reads one `orgs` row with the service key: proves the REST server, the
    /// database behind it and our key all work. One attempt, no retries, and
    /// outside the breaker and concurrency limit: a probe answers quickly and
    /// sees the database itself, not the traffic's view of it.
    ///
    /// # Errors
    /// [`SupabaseCallError`] when the call fails, PostgREST refuses it, or
    /// the deadline passes.
    pub async fn ping(&self, deadline: Deadline) -> Result<(), SupabaseCallError> {
        self.policy.probe(deadline, self.read_one_org()).await
    }

    /// Which phase of taking over the original service's database this one
    /// is in (`catalogai_cutover_phase()`, service key), for readiness. One
    /// attempt outside the breaker, like [`Self::ping`].
    ///
    /// # Errors
    /// [`SupabaseCallError`] when the call fails or the deadline passes.
    pub async fn cutover_phase(
        &self,
        deadline: Deadline,
    ) -> Result<CutoverPhase, SupabaseCallError> {
        self.policy
            .probe(
                deadline,
                self.execute(self.service_rpc("catalogai_cutover_phase", &serde_json::json!({}))),
            )
            .await
    }

    async fn read_one_org(&self) -> Result<(), SupabaseError> {
        let request = self.service_request("orgs").select("id").limit(1);
        let _rows: Vec<serde::de::IgnoredAny> = self.execute(request).await?;
        Ok(())
    }

    /// The organisation and role of `user_id`, read with the service key
    /// (a user may not yet be able to read their own membership through RLS).
    /// A user with several memberships gets the oldest (ties broken by id),
    /// the same org `user_org_id()` gives row-level security.
    ///
    /// # Errors
    /// [`SupabaseCallError`] when the call fails after retries.
    pub(crate) async fn membership(
        &self,
        user_id: Uuid,
        deadline: Deadline,
    ) -> Result<Option<MembershipRow>, SupabaseCallError> {
        self.policy
            .call(deadline, || async {
                let request = self
                    .service_request("org_memberships")
                    .select("org_id,role")
                    .eq("user_id", user_id.to_string())
                    .order("created_at.asc,id.asc")
                    .limit(1);
                let rows: Vec<MembershipRow> = self.execute(request).await?;
                Ok(rows.into_iter().next())
            })
            .await
    }

    /// A request on `table` carrying the service-role key.
    fn service_request(&self, table: &str) -> postgrest::Builder {
        self.as_service(self.service.from(table))
    }

    /// SQL function `function` with `params`, called as `how` says.
    async fn rpc<T: DeserializeOwned>(
        &self,
        how: Rpc<'_>,
        function: &str,
        params: &serde_json::Value,
        deadline: Deadline,
    ) -> Result<T, SupabaseCallError> {
        let attempt = || {
            self.execute(match how {
                Rpc::Service | Rpc::ServiceOnce => self.service_rpc(function, params),
                Rpc::Read(token) | Rpc::Write(token) => {
                    self.user.rpc(function, params.to_string()).auth(token)
                }
            })
        };
        match how {
            Rpc::Service | Rpc::Read(_) => self.policy.call(deadline, attempt).await,
            Rpc::ServiceOnce | Rpc::Write(_) => self.policy.call_once(deadline, attempt).await,
        }
    }

    /// A call of SQL function `function` with the service-role key.
    fn service_rpc(&self, function: &str, params: &serde_json::Value) -> postgrest::Builder {
        self.as_service(self.service.rpc(function, params.to_string()))
    }

    /// Supabase's own clients send a legacy service-role JWT as the bearer
    /// token too; a new `sb_secret_...` key goes in `apikey` alone (the API
    /// gateway refuses it as a bearer token and assumes the role from it).
    fn as_service(&self, request: postgrest::Builder) -> postgrest::Builder {
        match self.service_key.kind() {
            ApiKeyKind::LegacyJwt => request.auth(self.service_key.expose()),
            ApiKeyKind::Publishable | ApiKeyKind::Secret => request,
        }
    }

    /// A request on `table` as the bearer of `token`: row-level security applies.
    fn user_request(&self, table: &str, token: &str) -> postgrest::Builder {
        self.user.from(table).auth(token)
    }

    /// Sends one request with the attempt timeout and decodes a 2xx body.
    async fn execute<T: DeserializeOwned>(
        &self,
        request: postgrest::Builder,
    ) -> Result<T, SupabaseError> {
        Ok(self.execute_sized(request).await?.0)
    }

    /// [`Self::execute`], with the answer's size in bytes.
    async fn execute_sized<T: DeserializeOwned>(
        &self,
        request: postgrest::Builder,
    ) -> Result<(T, usize), SupabaseError> {
        let response = request
            .build()
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| SupabaseError::transport(e.is_timeout(), &e))?;
        let status = response.status().as_u16();
        let failed = !(200..300).contains(&status);
        // Named only for a failure's log line (text() consumes the response).
        let statement = failed.then(|| statement_name(response.url().path()));
        // Read up to the bound, never further (the response is postgrest's
        // own reqwest's, so it is read here rather than in a helper).
        let too_large = || SupabaseError::TooLarge {
            limit: MAX_ANSWER_BYTES,
        };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut response = response;
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| SupabaseError::transport(e.is_timeout(), &e))?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = String::from_utf8(bytes).map_err(|_| {
            SupabaseError::Decode("PostgREST answered with a body that is not UTF-8".to_owned())
        })?;
        if failed {
            let error = SupabaseError::from_response(status, &body);
            if let SupabaseError::StatementTimeout { answer } = &error {
                tracing::warn!(
                    statement = statement.as_deref().unwrap_or_default(),
                    message = %answer.message,
                    "statement cut off by its role's statement_timeout"
                );
            }
            return Err(error);
        }
        let decoded = serde_json::from_str(&body)
            .map_err(|e| SupabaseError::Decode(format!("unexpected PostgREST body: {e}")))?;
        Ok((decoded, body.len()))
    }
}

/// Most bytes one PostgREST answer may have. Past it the answer is an error
/// for that request alone (never a breaker failure) instead of a buffer as
/// large as whatever the rows hold; list pages are read in chunks sized to
/// stay well under it.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// `catalog_items` or `rpc/search_catalog_items`: what a slow statement's
/// log line names, from the request's path.
fn statement_name(path: &str) -> String {
    match path.rsplit_once("/rpc/") {
        Some((_, function)) => format!("rpc/{function}"),
        None => path.rsplit('/').next().unwrap_or_default().to_owned(),
    }
}

/// Where taking over the original service's database stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CutoverPhase {
    /// The original service may still run against this database: its direct
    /// writes to requests and proposals are open (`db/cutover/expand.sql`).
    Expanded,
    /// Ours alone: a database of ours from the start, or after
    /// `scripts/migrate --finish-cutover`.
    Contracted,
}

/// One `org_memberships` row.
#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct MembershipRow {
    /// The organisation.
    pub org_id: Uuid,
    /// The member's role in it.
    pub role: Role,
}
