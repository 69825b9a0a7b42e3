//! What several route modules read the same way: ids in paths, the page
//! query's size and cursor, and the limits of a search query.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use uuid::Uuid;

use crate::domain::{Count, Id, PageCursor, Record};
use crate::error::ApiError;

/// Longest search query accepted (a search, or the one a request records).
pub(super) const MAX_QUERY_CHARS: usize = 1_000;

/// The id of a workflow record in a path, refused in the original's words
/// (`Invalid request ID format`).
pub(super) fn path_id(raw: &str, record: Record) -> Result<Uuid, ApiError> {
    raw.parse::<Id>()
        .map(|id| id.0)
        .map_err(|_| ApiError::BadRequest(format!("Invalid {} ID format", record.as_str())))
}

/// A UUID in a path, refused as `<noun> id must be a UUID`.
pub(super) fn path_uuid(raw: &str, noun: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::BadRequest(format!("{noun} id must be a UUID")))
}

/// Rows per page: the query's `limit`, 100 when absent.
pub(super) fn page_size(limit: Option<Count<1, 1000>>) -> usize {
    limit.map_or(100, |n| n.get() as usize)
}

/// A `next_cursor`, or empty for the first page.
pub(super) fn cursor_param_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^({})?$", PageCursor::PATTERN)))
        .into()
}
