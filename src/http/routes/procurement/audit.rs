//! `GET /api/admin/audit-log`: the organisation's workflow events, for admins.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, OpenApi};

use crate::auth::Caller;
use crate::domain::{AuditEvent, AuditFilter, Id, free_text, printable_pattern};
use crate::error::{ApiError, ErrorEnvelope};
use crate::http::extract::{Params, from_query};
use crate::http::routes::common::{PageQuery, page_body};
use crate::resilience::Deadline;
use crate::state::AppState;

/// Routes of this module.
pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/admin/audit-log", get(audit_log))
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(audit_log))]
pub(super) struct Api;

/// Query of `GET /api/admin/audit-log`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditQuery {
    /// Only events of this type, e.g. `proposal.merged`.
    #[serde(default, deserialize_with = "from_query")]
    #[param(schema_with = query_text_schema)]
    event_type: Option<QueryText>,
    /// Only events about this kind of resource, e.g. `proposal`.
    #[serde(default, deserialize_with = "from_query")]
    #[param(schema_with = query_text_schema)]
    resource_type: Option<QueryText>,
    /// Only events about this resource.
    #[serde(default, deserialize_with = "from_query")]
    resource_id: Option<Id>,
}

/// Longest audit-log filter value.
const MAX_FILTER_CHARS: usize = 100;

/// A filter value: at most 100 characters, none of them control characters
/// (Postgres cannot compare text holding U+0000).
#[derive(Debug)]
struct QueryText(String);

impl std::str::FromStr for QueryText {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        // Checked as any text is, but compared exactly as given.
        free_text(s, MAX_FILTER_CHARS)?;
        Ok(Self(s.to_owned()))
    }
}

fn query_text_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(MAX_FILTER_CHARS))
        .pattern(Some(printable_pattern()))
        .into()
}

page_body!(
    /// Body of `GET /api/admin/audit-log`.
    pub(super) AuditLog { events: AuditEvent }
);

/// The caller's organisation's audit log, newest first (admins only).
#[utoipa::path(get, path = "/api/admin/audit-log", tag = "procurement",
    params(AuditQuery, PageQuery),
    responses(
        (status = 200, description = "One page of events", body = AuditLog),
        (status = 403, description = "Not an admin", body = ErrorEnvelope),
    ))]
async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    deadline: Deadline,
    Params(query): Params<AuditQuery>,
    Params(page): Params<PageQuery>,
) -> Result<Json<AuditLog>, ApiError> {
    let filter = AuditFilter {
        event_type: query.event_type.map(|t| t.0),
        resource_type: query.resource_type.map(|t| t.0),
        resource_id: query.resource_id.map(|id| id.0),
    };
    let page = state
        .procurement
        .audit_log(&caller, &filter, page.into(), deadline)
        .await?;
    Ok(Json(page.into()))
}
