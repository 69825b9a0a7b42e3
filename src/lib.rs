//! CatalogAI: turns product names into a searchable, AI-enriched catalog.
//!
//! # Layout
//! - [`config`]: settings from the environment, validated at start-up.
//! - [`startup`]: builds the [`startup::Application`] from settings; `main` and tests use it.
//! - [`http`]: the router, middleware and thin handlers.
//! - [`services`]: use cases, free of HTTP types.
//! - [`domain`]: the vocabulary (statuses, roles, ...), validated request values, and
//!   the entities (items, requests, proposals, audit events), each one type from row to answer.
//! - [`clients`]: typed clients for Gemini and Supabase (PostgREST).
//! - [`error`]: [`error::ApiError`], the one error type clients see.
//! - [`state`], [`telemetry`], [`shutdown`]: shared state, logging, signals.

pub mod auth;
pub mod clients;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod resilience;
pub mod services;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod telemetry;
