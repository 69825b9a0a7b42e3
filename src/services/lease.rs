//! The terms of the leases background work holds in the database (the
//! re-embed, migration 0019; imports, 0021): the database hands the work to
//! one replica at a time, and a replica that dies hands it over when its
//! lease runs out.

use std::time::Duration;

/// How long a lease lasts without renewal: a replica that dies hands over
/// after at most this.
pub(crate) const LEASE: Duration = Duration::from_secs(60);

/// Time for one lease call (claim, renewal, release), retries included.
pub(crate) const LEASE_CALL_BUDGET: Duration = Duration::from_secs(10);

/// [`LEASE`] in the whole seconds the lease functions take.
pub(crate) fn lease_seconds() -> u32 {
    u32::try_from(LEASE.as_secs()).unwrap_or(u32::MAX)
}
