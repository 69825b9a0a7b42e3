//! API tests: the real server on port 0 against the local stack (PostgreSQL,
//! postrust) and an in-process Gemini emulator. One binary, shared helpers.

mod helpers;

mod errors;
mod health;
mod lifecycle;
