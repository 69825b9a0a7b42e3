//! What several route modules read or write the same way: ids in paths,
//! the page part of a list's query and the page of a list's answer, and
//! the limits of a search query.

use serde::Deserialize;
use utoipa::IntoParams;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use uuid::Uuid;

use crate::domain::{Count, Id, PageCursor, PageRequest, Record};
use crate::error::ApiError;
use crate::http::extract::{from_query, from_query_or_empty};

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

/// The page part of a list's query (beside the list's own filters).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PageQuery {
    /// Rows per page, 1 to 1,000; 100 when absent.
    #[serde(default, deserialize_with = "from_query")]
    #[param(inline)]
    limit: Option<Count<1, 1000>>,
    /// `next_cursor` of the previous page; the first page when absent or empty.
    #[serde(default, deserialize_with = "from_query_or_empty")]
    #[param(schema_with = cursor_param_schema)]
    cursor: Option<PageCursor>,
}

impl From<PageQuery> for PageRequest {
    fn from(query: PageQuery) -> Self {
        Self {
            size: query.limit.map_or(100, |n| n.get() as usize),
            after: query.cursor,
        }
    }
}

/// A list's answer `$name`: its rows under `$rows`, newest first, and
/// `next_cursor`; made from the service's [`crate::domain::Page`].
macro_rules! page_body {
    ($(#[$meta:meta])* $vis:vis $name:ident { $rows:ident: $row:ty }) => {
        $(#[$meta])*
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        $vis struct $name {
            /// Newest first.
            $rows: Vec<$row>,
            /// Pass as `cursor` for the next page; null on the last page.
            next_cursor: Option<crate::domain::PageCursor>,
        }

        impl From<crate::domain::Page<$row>> for $name {
            fn from(page: crate::domain::Page<$row>) -> Self {
                Self {
                    $rows: page.rows,
                    next_cursor: page.next_cursor,
                }
            }
        }
    };
}
pub(super) use page_body;

/// A `next_cursor`, or empty for the first page.
pub(super) fn cursor_param_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^({})?$", PageCursor::PATTERN)))
        .into()
}
