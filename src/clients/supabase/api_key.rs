//! Supabase's API keys and how each kind is sent: a legacy JWT key as
//! `apikey` and as the bearer token, a new-style key as `apikey` alone.

use std::sync::Arc;

use crate::config::Secret;

/// A Supabase API key, and which kind it is: the kind decides how it is sent.
#[derive(Debug, Clone)]
pub struct ApiKey {
    value: Secret,
    kind: ApiKeyKind,
}

/// The kinds of Supabase API keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyKind {
    /// A legacy `anon` or `service_role` key: a long-lived JWT, sent as
    /// `apikey` and as the bearer token.
    LegacyJwt,
    /// `sb_publishable_...`: sent as `apikey` only; never a bearer token.
    Publishable,
    /// `sb_secret_...`: sent as `apikey` only; never a bearer token.
    Secret,
}

impl ApiKey {
    /// A key, its kind read from its prefix.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        let value = Secret::new(value);
        let kind = if value.expose().starts_with("sb_publishable_") {
            ApiKeyKind::Publishable
        } else if value.expose().starts_with("sb_secret_") {
            ApiKeyKind::Secret
        } else {
            ApiKeyKind::LegacyJwt
        };
        Self { value, kind }
    }

    /// The key itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        self.value.expose()
    }

    /// Which kind of key this is.
    pub fn kind(&self) -> ApiKeyKind {
        self.kind
    }
}
