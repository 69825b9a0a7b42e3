//! Use cases, free of HTTP types: handlers call these, these call clients.

pub mod backfill;
pub mod catalog;
pub mod embeddings;
pub mod enrichment;
pub mod fan_out;
pub mod imports;
mod lease;
pub mod membership;
pub mod procurement;
pub mod query_cache;
pub mod readiness;
