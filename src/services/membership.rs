//! Organisation membership look-ups, cached briefly: every authenticated
//! request needs the caller's org and role, and they rarely change.
//!
//! The cache (moka) is bounded, so memory stays flat whatever the number of
//! callers, and concurrent look-ups of one user make one database read that
//! all of them wait for: a new user's first burst costs one query. A user
//! without a membership is remembered for less time, so a newly added
//! member gets in quickly. Failures are not cached.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use uuid::Uuid;

use crate::clients::supabase::{SupabaseCallError, SupabaseClient};
use crate::domain::Membership;
use crate::resilience::{CallError, Deadline};

/// How long a found membership is reused.
const MEMBER_TTL: Duration = Duration::from_secs(30);
/// How long "no membership" is reused.
const NON_MEMBER_TTL: Duration = Duration::from_secs(5);
/// Most users remembered at once.
const CAPACITY: u64 = 10_000;

/// Members for [`MEMBER_TTL`], non-members for [`NON_MEMBER_TTL`].
struct ByMembership;

impl Expiry<Uuid, Option<Membership>> for ByMembership {
    fn expire_after_create(
        &self,
        _: &Uuid,
        membership: &Option<Membership>,
        _: Instant,
    ) -> Option<Duration> {
        Some(if membership.is_some() {
            MEMBER_TTL
        } else {
            NON_MEMBER_TTL
        })
    }

    fn expire_after_update(
        &self,
        key: &Uuid,
        membership: &Option<Membership>,
        at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, membership, at)
    }
}

/// Reads and caches `org_memberships`.
pub struct MembershipDirectory {
    supabase: SupabaseClient,
    cache: Cache<Uuid, Option<Membership>>,
}

impl std::fmt::Debug for MembershipDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MembershipDirectory")
            .field("cached", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl MembershipDirectory {
    /// A directory reading through `supabase` with the service key.
    pub fn new(supabase: SupabaseClient) -> Self {
        Self {
            supabase,
            cache: Cache::builder()
                .max_capacity(CAPACITY)
                .expire_after(ByMembership)
                .build(),
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
    ) -> Result<Option<Membership>, SupabaseCallError> {
        self.cache
            .try_get_with(user_id, self.read(user_id, deadline))
            .await
            .map_err(Arc::unwrap_or_clone)
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
    ) -> Result<Option<Membership>, SupabaseCallError> {
        let found = self.read(user_id, deadline).await?;
        self.cache.insert(user_id, found).await;
        Ok(found)
    }

    /// Passes on the `outcome` of a call made for `user_id`, first
    /// forgetting their cached membership when the database refused them:
    /// their rights may have changed since it was cached, and the next
    /// request should be judged on what the database holds now.
    pub async fn heed_refusal<T>(
        &self,
        user_id: Uuid,
        outcome: Result<T, SupabaseCallError>,
    ) -> Result<T, SupabaseCallError> {
        if let Err(CallError::Upstream(e)) = &outcome
            && e.is_refusal()
        {
            self.cache.invalidate(&user_id).await;
        }
        outcome
    }

    async fn read(
        &self,
        user_id: Uuid,
        deadline: Deadline,
    ) -> Result<Option<Membership>, SupabaseCallError> {
        let row = self.supabase.membership(user_id, deadline).await?;
        Ok(row.map(|row| Membership {
            org_id: row.org_id,
            role: row.role,
        }))
    }
}
