//! API tests: the real server on port 0 against the local stack (PostgreSQL,
//! postrust) and an in-process Gemini emulator. One binary, shared helpers.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "test helpers: a broken assumption must fail the test loudly; tests build their own clients and spawn concurrent callers"
)]

mod helpers;
mod schema;
mod signing;

mod auth;
mod backfill;
mod catalog;
mod drills;
mod embeddings;
mod enrichment;
mod errors;
mod gemini_client;
mod health;
mod hostile;
mod imports;
mod invariants;
mod jwks;
mod lifecycle;
mod openapi;
mod platform;
mod procurement;
mod rate_limit;
mod resilience;
mod takeover;
mod tenant_isolation;
