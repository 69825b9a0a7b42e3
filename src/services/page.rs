//! One page of a newest-first list and where the next starts: the keyset
//! paging every list shares (items, requests, proposals, audit events).

use crate::clients::supabase::PageRows;
use crate::domain::{Listed, PageCursor};

/// Most rows Supabase's PostgREST returns in one answer (`max_rows`, 1,000
/// by default): asking for more silently gets fewer.
pub const MAX_ROWS_PER_ANSWER: usize = 1000;

/// One page and where the next starts.
#[derive(Debug)]
pub struct Page<T> {
    /// Newest first.
    pub rows: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<PageCursor>,
}

/// Rows to ask for a page of `limit`: one more says whether another page
/// exists, unless that would ask past the row cap (a capped answer would
/// look like the last page). At the cap, a full page gets a cursor, and the
/// page after it may be empty.
pub fn rows_to_ask(limit: usize) -> usize {
    (limit + 1).min(MAX_ROWS_PER_ANSWER)
}

/// `rows` (fetched with [`rows_to_ask`]) as a page of `limit`; rows cut
/// short by their weight mean more follow. `None` when a row's
/// `created_at` cannot be read as a time (the database answered something
/// that cannot be right).
pub(crate) fn paged<T: Listed>(rows: PageRows<T>, limit: usize) -> Option<Page<T>> {
    let PageRows {
        mut rows,
        cut_short,
    } = rows;
    let ask = rows_to_ask(limit);
    let more = cut_short || rows.len() > limit || (ask == limit && rows.len() == limit);
    let next_cursor = if more {
        rows.truncate(limit);
        match rows.last() {
            Some(last) => {
                let (created_at, id) = last.page_key();
                Some(PageCursor::after(created_at, id)?)
            }
            None => None,
        }
    } else {
        None
    };
    Some(Page { rows, next_cursor })
}
