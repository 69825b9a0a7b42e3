//! The one mapping into [`ApiError`] from every service and client error:
//! which failures are the caller's (4xx), which are a dependency's (503 with
//! `Retry-After`, 504) and which are ours (500). Errors arrive classified
//! where they arose, so this reads their kind, never their text.

use super::{ApiError, KEY_REJECTED_WAIT};
use crate::auth::NotAllowed;
use crate::clients::gemini::{GeminiCallError, GeminiError};
use crate::clients::supabase::{Breach, Refusal, SupabaseCallError, SupabaseError};
use crate::resilience::{CallError, RETRY_BUDGET_WAIT};
use crate::services::catalog::CatalogError;
use crate::services::embeddings::EmbeddingError;
use crate::services::enrichment::EnrichmentError;
use crate::services::fan_out::TaskFailed;
use crate::services::imports::ImportError;
use crate::services::procurement::ProcurementError;

impl From<GeminiCallError> for ApiError {
    /// Gemini down or rate-limited is 503 (with `Retry-After` when known), a
    /// timeout 504, and anything Gemini refused or answered that we cannot
    /// use 502.
    fn from(error: GeminiCallError) -> Self {
        let unavailable = |retry_after| Self::ServiceUnavailable {
            message: "Gemini is temporarily unavailable".to_owned(),
            retry_after,
        };
        match error {
            CallError::CircuitOpen { retry_after, .. } => unavailable(Some(retry_after)),
            CallError::RetryBudgetSpent { .. } => unavailable(Some(RETRY_BUDGET_WAIT)),
            CallError::DeadlineExceeded { .. }
            | CallError::Upstream(GeminiError::Transport {
                timed_out: true, ..
            }) => Self::GatewayTimeout("Gemini did not answer in time".to_owned()),
            CallError::Upstream(GeminiError::RateLimited { retry_delay, .. }) => {
                unavailable(retry_delay)
            }
            CallError::Upstream(
                GeminiError::Transport { .. } | GeminiError::Unavailable { .. },
            ) => unavailable(None),
            CallError::Upstream(
                other @ (GeminiError::Refused { .. }
                | GeminiError::Decode(_)
                | GeminiError::UnusableOutput(_)),
            ) => Self::ExternalService {
                service: "gemini",
                detail: other.to_string(),
            },
        }
    }
}

impl From<SupabaseCallError> for ApiError {
    /// The database down is 503 `DATABASE_ERROR` (or `SERVICE_UNAVAILABLE`
    /// while its breaker is open); a refusal maps by its reason and is
    /// logged with PostgREST's own words, which the client never sees.
    fn from(error: SupabaseCallError) -> Self {
        match error {
            CallError::RetryBudgetSpent { .. } => Self::ServiceUnavailable {
                message: "database temporarily unavailable".to_owned(),
                retry_after: Some(RETRY_BUDGET_WAIT),
            },
            CallError::CircuitOpen { retry_after, .. } => Self::ServiceUnavailable {
                message: "database temporarily unavailable".to_owned(),
                retry_after: Some(retry_after),
            },
            CallError::DeadlineExceeded { .. } => {
                Self::GatewayTimeout("database did not answer in time".to_owned())
            }
            CallError::Upstream(SupabaseError::Refused { reason, answer }) => {
                // Our own functions' refusals are answers to the client, not faults.
                if let Refusal::Rule(breach) = reason {
                    let message = answer.message;
                    return match breach {
                        Breach::Invalid => Self::BadRequest(message),
                        Breach::Forbidden => Self::Forbidden(message),
                        Breach::NotFound => Self::NotFound(message),
                        Breach::Conflict => Self::Conflict(message),
                    };
                }
                tracing::warn!(
                    ?reason,
                    status = answer.status,
                    code = %answer.code,
                    message = %answer.message,
                    details = answer.details.as_deref().unwrap_or_default(),
                    hint = answer.hint.as_deref().unwrap_or_default(),
                    "PostgREST refused the request"
                );
                match reason {
                    Refusal::Forbidden => {
                        Self::Forbidden("not allowed by row-level security".to_owned())
                    }
                    Refusal::TokenRejected => {
                        Self::Unauthorized("invalid or expired token".to_owned())
                    }
                    Refusal::Conflict => {
                        Self::Conflict("a record with these values already exists".to_owned())
                    }
                    Refusal::MissingReference => {
                        Self::BadRequest("a referenced record does not exist".to_owned())
                    }
                    Refusal::NotFound => Self::NotFound("resource not found".to_owned()),
                    Refusal::MissingFunction => Self::Internal(format!(
                        "database function missing (are the migrations applied?): {answer}"
                    )),
                    Refusal::Rule(_) | Refusal::Invalid => {
                        Self::BadRequest("the database refused the request".to_owned())
                    }
                }
            }
            CallError::Upstream(SupabaseError::KeyRejected { answer }) => {
                // Every call fails until an operator fixes the setting: say
                // so where they look, never blame the caller.
                tracing::error!(
                    status = answer.status,
                    message = %answer.message,
                    "Supabase's API gateway refused our API key: check SUPABASE_KEY / \
                     SUPABASE_PUBLISHABLE_KEY and SUPABASE_SERVICE_ROLE_KEY / SUPABASE_SECRET_KEY \
                     against the project's API keys (wrong, rotated or disabled)"
                );
                Self::ServiceUnavailable {
                    message: "database temporarily unavailable".to_owned(),
                    retry_after: Some(KEY_REJECTED_WAIT),
                }
            }
            CallError::Upstream(SupabaseError::StatementTimeout { .. }) => {
                Self::GatewayTimeout("database did not answer in time".to_owned())
            }
            CallError::Upstream(SupabaseError::Decode(detail)) => {
                Self::Internal(format!("undecodable PostgREST answer: {detail}"))
            }
            CallError::Upstream(e @ SupabaseError::TooLarge { .. }) => {
                Self::Internal(e.to_string())
            }
            CallError::Upstream(
                e @ (SupabaseError::Transport { .. } | SupabaseError::Unavailable { .. }),
            ) => Self::Database(e.to_string()),
        }
    }
}

impl From<NotAllowed> for ApiError {
    fn from(error: NotAllowed) -> Self {
        Self::Forbidden(error.to_string())
    }
}

impl From<TaskFailed> for ApiError {
    fn from(error: TaskFailed) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<EmbeddingError> for ApiError {
    fn from(error: EmbeddingError) -> Self {
        match error {
            EmbeddingError::Gemini(e) => e.into(),
            EmbeddingError::TaskFailed(e) => e.into(),
        }
    }
}

impl From<EnrichmentError> for ApiError {
    fn from(error: EnrichmentError) -> Self {
        match error {
            EnrichmentError::Gemini(e) => e.into(),
            EnrichmentError::Unusable(detail) => Self::ExternalService {
                service: "gemini",
                detail,
            },
            EnrichmentError::TaskFailed(e) => e.into(),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::Gemini(e) => e.into(),
            CatalogError::Database(e) => e.into(),
            CatalogError::NotAllowed(e) => e.into(),
            CatalogError::TaskFailed(e) => e.into(),
            CatalogError::Inconsistent(what) => Self::Internal(what.to_owned()),
            CatalogError::NotFound => Self::NotFound("catalog item not found".to_owned()),
            CatalogError::OtherOrg => {
                Self::Forbidden("catalog item belongs to another organisation".to_owned())
            }
            CatalogError::RepairRunning(progress) => Self::RepairRunning(progress),
        }
    }
}

impl From<ProcurementError> for ApiError {
    fn from(error: ProcurementError) -> Self {
        match error {
            ProcurementError::Gemini(e) => e.into(),
            ProcurementError::UnusableEnrichment(detail) => Self::ExternalService {
                service: "gemini",
                detail,
            },
            ProcurementError::Database(e) => e.into(),
            ProcurementError::NotAllowed(e) => e.into(),
            ProcurementError::TaskFailed(e) => e.into(),
            ProcurementError::NotFound(message) => Self::NotFound(message),
            ProcurementError::OtherOrg(message) => Self::Forbidden(message),
            ProcurementError::Conflict(message) => Self::Conflict(message),
            ProcurementError::Inconsistent(what) => Self::Internal(what.to_owned()),
        }
    }
}

impl From<ImportError> for ApiError {
    fn from(error: ImportError) -> Self {
        match error {
            ImportError::Database(e) => e.into(),
            ImportError::NotAllowed(e) => e.into(),
            ImportError::NotFound => Self::NotFound(error.to_string()),
            ImportError::TooManyRows(_) => {
                Self::PayloadTooLarge(format!("{error} (IMPORT_MAX_ROWS)"))
            }
            ImportError::KeyReused | ImportError::KeyInProgress => {
                Self::Conflict(error.to_string())
            }
        }
    }
}
