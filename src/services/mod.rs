//! Use cases, free of HTTP types: handlers call these, these call clients.

pub mod readiness;
