//! What several route modules read or write the same way: the ids in paths,
//! the page part of a list's query and the page of a list's answer, and
//! the limits of a search query.

use std::marker::PhantomData;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use uuid::Uuid;

use crate::domain::{
    CatalogItem, Count, Id, ImportJob, PageCursor, PageRequest, Proposal, Record, Request,
};
use crate::error::ApiError;
use crate::http::extract::{from_query, from_query_or_empty};

/// Longest search query accepted (a search, or the one a request records).
pub(super) const MAX_QUERY_CHARS: usize = 1_000;

/// The `{id}` of a path naming a `T`, read after the caller is known (an
/// extractor placed after `Caller`), refused as `T` words it.
#[derive(Debug)]
pub(super) struct PathId<T>(pub Uuid, pub PhantomData<fn() -> T>);

/// What the `{id}` of a path may name, and how a malformed one is refused.
pub(super) trait InPath {
    /// The id, or the refusal.
    fn id_in_path(raw: &str) -> Result<Uuid, ApiError>;
}

impl<S: Send + Sync, T: InPath> FromRequestParts<S> for PathId<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(raw)) => raw,
            // Not UTF-8 once percent-decoded: no id of ours either.
            Err(_) => String::new(),
        };
        T::id_in_path(&raw).map(|id| Self(id, PhantomData))
    }
}

/// Requests and proposals: the original's words (`Invalid request ID format`).
fn workflow_id(raw: &str, record: Record) -> Result<Uuid, ApiError> {
    raw.parse::<Id>()
        .map(|id| id.0)
        .map_err(|_| ApiError::BadRequest(format!("Invalid {} ID format", record.as_str())))
}

impl InPath for Request {
    fn id_in_path(raw: &str) -> Result<Uuid, ApiError> {
        workflow_id(raw, Record::Request)
    }
}

impl InPath for Proposal {
    fn id_in_path(raw: &str) -> Result<Uuid, ApiError> {
        workflow_id(raw, Record::Proposal)
    }
}

/// Items and imports: `<noun> id must be a UUID`.
fn uuid_of(raw: &str, noun: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::BadRequest(format!("{noun} id must be a UUID")))
}

impl InPath for CatalogItem {
    fn id_in_path(raw: &str) -> Result<Uuid, ApiError> {
        uuid_of(raw, "item")
    }
}

impl InPath for ImportJob {
    fn id_in_path(raw: &str) -> Result<Uuid, ApiError> {
        uuid_of(raw, "import")
    }
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
