//! Lists, newest first, a page at a time: keyset paging on `(created_at,
//! id)`, one more row asked than the page holds (so the page knows whether
//! another follows), and rows read in answers small enough for any row
//! size. Every list (items, requests, proposals, audit events, imports)
//! pages here, and reads one row by id here.

use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{SupabaseCallError, SupabaseClient, SupabaseError};
use crate::domain::{Listed, Page, PageCursor, PageRequest};
use crate::resilience::{CallError, Deadline};

/// Most rows Supabase's PostgREST returns in one answer (`max_rows`, 1,000
/// by default): asking for more silently gets fewer.
const MAX_ROWS_PER_ANSWER: usize = 1000;

/// What a list page may weigh before it ends early with a cursor: a page of
/// ordinary rows (a few kB each) never comes near it.
const PAGE_BYTES: usize = 16 * 1024 * 1024;

/// Rows to ask for a page of `limit`: one more says whether another page
/// exists, unless that would ask past the row cap (a capped answer would
/// look like the last page). At the cap, a full page gets a cursor, and the
/// page after it may be empty.
fn rows_to_ask(limit: usize) -> usize {
    (limit + 1).min(MAX_ROWS_PER_ANSWER)
}

/// An org's table that lists read: its name, and how many of its largest
/// rows fit in one answer well under [`super::MAX_ANSWER_BYTES`].
pub trait OrgRows: DeserializeOwned + Listed {
    /// The table.
    const TABLE: &'static str;
    /// Rows per PostgREST answer when listing.
    const ROWS_PER_ANSWER: usize;
    /// What a list of these may be narrowed to.
    type Filter;
    /// `(column, value)` for each part of `filter` that is given: every one
    /// must match.
    fn filters(filter: &Self::Filter) -> Vec<(&'static str, String)>;
}

/// `status = ...` when a list is narrowed to one status.
pub(super) fn status_column(status: Option<&str>) -> Vec<(&'static str, String)> {
    status
        .map(|s| ("status", s.to_owned()))
        .into_iter()
        .collect()
}

impl SupabaseClient {
    /// The row of `T`'s table with `id`, if the bearer of `token` may read it.
    pub(crate) async fn row_by_id<T: OrgRows>(
        &self,
        token: &str,
        id: Uuid,
        deadline: Deadline,
    ) -> Result<Option<T>, SupabaseCallError> {
        let rows: Vec<T> = self
            .policy
            .call(deadline, || {
                self.execute(
                    self.user_request(T::TABLE, token)
                        .select("*")
                        .eq("id", id.to_string())
                        .limit(1),
                )
            })
            .await?;
        Ok(rows.into_iter().next())
    }

    /// A page of org `org_id`'s rows of `T`'s table matching `filter`, read
    /// as the bearer of `token` (row-level security has the last word), in
    /// answers of at most [`OrgRows::ROWS_PER_ANSWER`] rows, so no answer
    /// outgrows [`super::MAX_ANSWER_BYTES`] whatever the rows hold. The
    /// page stops early, with a cursor, once what it read weighs
    /// [`PAGE_BYTES`].
    pub(crate) async fn list_page<T: OrgRows>(
        &self,
        token: &str,
        org_id: Uuid,
        filter: &T::Filter,
        page: PageRequest,
        deadline: Deadline,
    ) -> Result<Page<T>, SupabaseCallError> {
        let filters = T::filters(filter);
        let query = || {
            let all = self
                .user_request(T::TABLE, token)
                .select("*")
                .eq("org_id", org_id.to_string());
            filters
                .iter()
                .fold(all, |request, (column, value)| request.eq(*column, value))
        };
        let limit = page.size;
        let ask = rows_to_ask(limit);
        let mut rows = Vec::new();
        let mut bytes = 0;
        let mut cursor = page.after;
        let mut cut_short = false;
        while rows.len() < ask {
            let want = T::ROWS_PER_ANSWER.min(ask - rows.len());
            let (mut answer, size): (Vec<T>, usize) = self
                .policy
                .call(deadline, || {
                    self.execute_sized(keyset(query(), want, cursor.as_ref()))
                })
                .await?;
            bytes += size;
            let full = answer.len() == want;
            rows.append(&mut answer);
            if !full || rows.len() >= ask {
                break;
            }
            if bytes >= PAGE_BYTES {
                cut_short = true;
                break;
            }
            cursor = Some(cursor_after(&rows)?);
        }
        let more = cut_short || rows.len() > limit || (ask == limit && rows.len() == limit);
        rows.truncate(limit);
        let next_cursor = if more && !rows.is_empty() {
            Some(cursor_after(&rows)?)
        } else {
            None
        };
        Ok(Page { rows, next_cursor })
    }
}

/// `request`, newest first, `limit` rows after `after`.
fn keyset(
    request: postgrest::Builder,
    limit: usize,
    after: Option<&PageCursor>,
) -> postgrest::Builder {
    let request = request.order("created_at.desc,id.desc").limit(limit);
    match after {
        // Quoted: a timestamp holds `.`, `:` and `+`.
        Some(key) => request.or(format!(
            "created_at.lt.\"{t}\",and(created_at.eq.\"{t}\",id.lt.{id})",
            t = key.created_at(),
            id = key.id
        )),
        None => request,
    }
}

/// Where a list continues after its last row.
fn cursor_after<T: Listed>(rows: &[T]) -> Result<PageCursor, SupabaseCallError> {
    rows.last()
        .and_then(|last| {
            let (created_at, id) = last.page_key();
            PageCursor::after(created_at, id)
        })
        .ok_or_else(|| {
            CallError::Upstream(SupabaseError::Decode(
                "a row's created_at is not a timestamp".to_owned(),
            ))
        })
}
