//! Lists, newest first, a page at a time: keyset paging on `(created_at,
//! id)`, one more row asked than the page holds (so the page knows whether
//! another follows), and rows read in answers small enough for any row
//! size. Every list (items, requests, proposals, audit events) pages here.

use serde::de::DeserializeOwned;

use super::{SupabaseCallError, SupabaseClient, SupabaseError};
use crate::domain::{Listed, Page, PageCursor};
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

impl SupabaseClient {
    /// A page of `limit` rows of a newest-first list after `after`, read in
    /// answers of at most `chunk` rows, so no answer outgrows
    /// [`super::MAX_ANSWER_BYTES`] whatever the rows hold. `query` makes the
    /// list's filtered request; the order, the count and the keyset filter
    /// are added here. The page stops early, with a cursor, once what it
    /// read weighs [`PAGE_BYTES`].
    pub(crate) async fn list_page<T: DeserializeOwned + Listed>(
        &self,
        limit: usize,
        after: Option<&PageCursor>,
        chunk: usize,
        deadline: Deadline,
        query: impl Fn() -> postgrest::Builder,
    ) -> Result<Page<T>, SupabaseCallError> {
        let ask = rows_to_ask(limit);
        let mut rows = Vec::new();
        let mut bytes = 0;
        let mut cursor = after.copied();
        let mut cut_short = false;
        while rows.len() < ask {
            let want = chunk.min(ask - rows.len());
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
