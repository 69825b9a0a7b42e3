//! A fair share of a dependency's concurrency per tenant. The global limit
//! (`GEMINI_MAX_CONCURRENCY`) stops the process from stampeding Gemini; this
//! stops one organisation from taking all of it: each org holds at most
//! `GEMINI_TENANT_SHARE_PERCENT` of the slots at once, so another org's
//! single enrichment finds a free slot even while the first floods batches.
//! A unit of Gemini work (one enrichment with its repair attempt, one
//! embedding chunk) holds its org's permit from before it queues for the
//! global limit until it is done.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::Deadline;

/// Tenants remembered before idle ones are swept out.
const SWEEP_AT: usize = 10_000;

/// Per-tenant semaphores of one size, created on first use and dropped
/// when no unit of work holds or waits for them.
#[derive(Debug)]
pub struct TenantShare {
    per_tenant: usize,
    tenants: Mutex<HashMap<Uuid, Weak<Semaphore>>>,
}

impl TenantShare {
    /// At most `per_tenant` units of work per tenant at once.
    pub fn new(per_tenant: usize) -> Self {
        Self {
            per_tenant: per_tenant.max(1),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// The share of `total` that `percent` gives, at least one.
    pub fn of(total: usize, percent: u32) -> Self {
        Self::new(total * percent as usize / 100)
    }

    /// Slots one tenant may hold.
    pub fn per_tenant(&self) -> usize {
        self.per_tenant
    }

    /// Waits for one of `tenant`'s slots, until `deadline`.
    ///
    /// # Errors
    /// `Err(())` when the deadline passes first.
    pub async fn acquire(
        &self,
        tenant: Uuid,
        deadline: Deadline,
    ) -> Result<OwnedSemaphorePermit, ()> {
        let semaphore = self.semaphore(tenant);
        match tokio::time::timeout_at(deadline.instant(), semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(()),
        }
    }

    fn semaphore(&self, tenant: Uuid) -> Arc<Semaphore> {
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(semaphore) = tenants.get(&tenant).and_then(Weak::upgrade) {
            return semaphore;
        }
        if tenants.len() >= SWEEP_AT {
            tenants.retain(|_, weak| weak.strong_count() > 0);
        }
        let semaphore = Arc::new(Semaphore::new(self.per_tenant));
        tenants.insert(tenant, Arc::downgrade(&semaphore));
        semaphore
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_tenant_holds_at_most_its_share_and_others_are_not_held_up() {
        let share = TenantShare::of(4, 50);
        assert_eq!(share.per_tenant(), 2);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let deadline = Deadline::after(Duration::from_secs(1));
        let _a1 = share.acquire(a, deadline).await.unwrap();
        let _a2 = share.acquire(a, deadline).await.unwrap();
        assert!(
            share.acquire(a, deadline).await.is_err(),
            "a third slot for a"
        );
        let _b1 = share
            .acquire(b, Deadline::after(Duration::from_secs(1)))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn idle_tenants_cost_nothing_once_swept() {
        let share = TenantShare::new(1);
        for _ in 0..(SWEEP_AT + 5) {
            let permit = share
                .acquire(Uuid::new_v4(), Deadline::after(Duration::from_secs(1)))
                .await;
            drop(permit);
        }
        let tenants = share.tenants.lock().unwrap().len();
        assert!(tenants <= 6, "{tenants} tenants remembered");
    }
}
