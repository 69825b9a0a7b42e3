//! Organisation membership look-ups, cached briefly: every authenticated
//! request needs the caller's org and role, and they rarely change.
//!
//! The cache is bounded, so memory stays flat whatever the number of callers.
//! A user without a membership is remembered for less time, so a newly added
//! member gets in quickly.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::clients::supabase::{MembershipRow, SupabaseCallError, SupabaseClient};
use crate::resilience::Deadline;

/// How long a found membership is reused.
const MEMBER_TTL: Duration = Duration::from_secs(30);
/// How long "no membership" is reused.
const NON_MEMBER_TTL: Duration = Duration::from_secs(5);
/// Most users remembered at once.
const CAPACITY: usize = 10_000;

/// Reads and caches `org_memberships`.
#[derive(Debug)]
pub struct MembershipDirectory {
    supabase: SupabaseClient,
    cache: Mutex<HashMap<Uuid, (Instant, Option<MembershipRow>)>>,
}

impl MembershipDirectory {
    /// A directory reading through `supabase` with the service key.
    pub fn new(supabase: SupabaseClient) -> Self {
        Self {
            supabase,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The user's membership, if any.
    ///
    /// # Errors
    /// [`SupabaseCallError`] when it is not cached and cannot be read.
    pub async fn lookup(
        &self,
        user_id: Uuid,
        deadline: Deadline,
    ) -> Result<Option<MembershipRow>, SupabaseCallError> {
        if let Some(cached) = self.cached(user_id) {
            return Ok(cached);
        }
        let found = self.supabase.membership(user_id, deadline).await?;
        self.remember(user_id, found);
        Ok(found)
    }

    /// The user's membership as the database holds it now, bypassing the
    /// cache (and refreshing it): for decisions the service key will act on,
    /// which row-level security will not check again, so a removed or
    /// demoted admin's cached rights must not carry them.
    ///
    /// # Errors
    /// [`SupabaseCallError`] when it cannot be read.
    pub async fn lookup_fresh(
        &self,
        user_id: Uuid,
        deadline: Deadline,
    ) -> Result<Option<MembershipRow>, SupabaseCallError> {
        let found = self.supabase.membership(user_id, deadline).await?;
        self.remember(user_id, found);
        Ok(found)
    }

    /// Forgets what is cached for `user_id`: the database refused them, so
    /// their rights may have changed.
    pub fn forget(&self, user_id: Uuid) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&user_id);
    }

    fn cached(&self, user_id: Uuid) -> Option<Option<MembershipRow>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, row) = cache.get(&user_id)?;
        let ttl = if row.is_some() {
            MEMBER_TTL
        } else {
            NON_MEMBER_TTL
        };
        (at.elapsed() < ttl).then_some(*row)
    }

    fn remember(&self, user_id: Uuid, row: Option<MembershipRow>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CAPACITY {
            cache.retain(|_, (at, _)| at.elapsed() < MEMBER_TTL);
            if cache.len() >= CAPACITY {
                cache.clear();
            }
        }
        cache.insert(user_id, (Instant::now(), row));
    }
}
