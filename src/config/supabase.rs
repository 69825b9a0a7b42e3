//! Supabase settings: the project, its REST endpoint, the two API keys, and
//! how users' access tokens are verified.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::HeaderValue;
use reqwest::Url;

use super::Secret;
use super::reader::Reader;
use crate::clients::supabase::{ApiKey, ApiKeyKind};

/// Supabase connection settings.
#[derive(Debug, Clone)]
pub struct SupabaseSettings {
    /// The project URL (`SUPABASE_URL`).
    pub url: Url,
    /// The PostgREST base URL: `POSTGREST_URL`, or `SUPABASE_URL` + `/rest/v1`.
    pub rest_url: Url,
    /// The public key (`SUPABASE_KEY` or `SUPABASE_PUBLISHABLE_KEY`): the
    /// legacy anon JWT or an `sb_publishable_...` key, sent as `apikey` on
    /// user-scoped calls.
    pub anon_key: ApiKey,
    /// The elevated key (`SUPABASE_SERVICE_ROLE_KEY` or `SUPABASE_SECRET_KEY`):
    /// the legacy service-role JWT or an `sb_secret_...` key; bypasses
    /// row-level security.
    pub service_role_key: ApiKey,
    /// How users' access tokens are verified.
    pub auth: AuthSettings,
    /// Timeout of one PostgREST call (`SUPABASE_TIMEOUT_SECONDS`).
    pub timeout: Duration,
    /// Most PostgREST calls in flight from this process at once (`SUPABASE_MAX_CONCURRENCY`).
    pub max_concurrency: usize,
}

/// How users' access tokens are verified: against the project's JSON Web
/// Key Set (asymmetric signing keys), with the legacy HS256 secret, or both
/// (a project moving from one to the other).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The legacy JWT secret (`SUPABASE_JWT_SECRET`), for HS256 tokens;
    /// none when `SUPABASE_JWT_HS256=false`.
    pub jwt_secret: Option<Secret>,
    /// Where the signing keys are published (`SUPABASE_JWKS_URL`, default
    /// `SUPABASE_URL/auth/v1/.well-known/jwks.json`); `None` when set to `off`.
    pub jwks_url: Option<Url>,
    /// The `iss` every token must carry (`SUPABASE_JWT_ISSUER`); `None`: not checked.
    pub issuer: Option<String>,
    /// Timeout of one key-set fetch (`SUPABASE_AUTH_TIMEOUT_SECONDS`).
    pub timeout: Duration,
}

impl SupabaseSettings {
    /// `None` when a required setting is missing or invalid (recorded as a
    /// problem; every setting is read first, so all are reported at once).
    pub(super) fn read(r: &mut Reader<'_>) -> Option<Self> {
        let url = r.url("SUPABASE_URL");
        let rest_url = match r.optional_url("POSTGREST_URL") {
            Some(url) => Some(url),
            None => url.as_ref().and_then(|url| rest_url_of(r, url)),
        };
        let anon_key = api_key(
            r,
            "SUPABASE_KEY",
            "SUPABASE_PUBLISHABLE_KEY",
            ApiKeyKind::Secret,
        );
        let service_role_key = api_key(
            r,
            "SUPABASE_SERVICE_ROLE_KEY",
            "SUPABASE_SECRET_KEY",
            ApiKeyKind::Publishable,
        );
        let auth = url.as_ref().map(|url| auth(r, url));
        let timeout = r.seconds("SUPABASE_TIMEOUT_SECONDS", 10, 1, 300);
        let max_concurrency = r.bounded("SUPABASE_MAX_CONCURRENCY", 32, 1, 10_000);
        Some(Self {
            url: url?,
            rest_url: rest_url?,
            anon_key: anon_key?,
            service_role_key: service_role_key?,
            auth: auth?,
            timeout,
            max_concurrency,
        })
    }
}

/// A Supabase API key, under its original name or its new-style alias
/// (both set must agree). A key of the `refused` kind is a mistake that
/// would leak or fail (a secret key as the public one, say).
fn api_key(r: &mut Reader<'_>, name: &str, alias: &str, refused: ApiKeyKind) -> Option<ApiKey> {
    let value = match (r.raw(name), r.raw(alias)) {
        (Some(a), Some(b)) if a != b => {
            r.problem(format!(
                "{name} and {alias} are both set, to different keys"
            ));
            return None;
        }
        (Some(value), _) | (None, Some(value)) => value,
        (None, None) => {
            r.problem(format!("{name} (or {alias}): required, not set"));
            return None;
        }
    };
    if HeaderValue::from_str(&format!("Bearer {value}")).is_err() {
        // The value itself is never echoed: it is a secret.
        r.problem(format!(
            "{name}: contains characters that cannot be sent in an HTTP header"
        ));
        return None;
    }
    let key = ApiKey::new(value);
    if key.kind() == refused {
        let problem = match refused {
            ApiKeyKind::Secret => {
                "is a secret key (sb_secret_...); this one must be the publishable key"
            }
            _ => "is a publishable key; this one must be the secret (or service-role) key",
        };
        r.problem(format!("{name}: {problem}"));
        return None;
    }
    Some(key)
}

/// Token verification settings. The key set is on by default (every
/// Supabase project publishes one); `SUPABASE_JWKS_URL=off` leaves only
/// the legacy secret, and then that must be set.
fn auth(r: &mut Reader<'_>, project: &Url) -> AuthSettings {
    let base = project.as_str().trim_end_matches('/');
    // Off once a project has revoked its legacy secret, while the
    // variable stays set for other tools that read it.
    let jwt_secret = r
        .parse_or("SUPABASE_JWT_HS256", true)
        .then(|| r.raw("SUPABASE_JWT_SECRET").map(Secret::new))
        .flatten();
    let jwks_url = match r.raw("SUPABASE_JWKS_URL") {
        Some(off) if off.eq_ignore_ascii_case("off") => None,
        Some(url) => key_set_url(r, "SUPABASE_JWKS_URL", &url),
        None => key_set_url(
            r,
            "SUPABASE_URL",
            &format!("{base}/auth/v1/.well-known/jwks.json"),
        ),
    };
    if jwks_url.is_none() && jwt_secret.is_none() {
        r.problem(
            "SUPABASE_JWT_SECRET: required (and SUPABASE_JWT_HS256 not false) when SUPABASE_JWKS_URL is off: no way to verify access tokens"
                .to_owned(),
        );
    }
    // Supabase-hosted projects name their Auth server as the issuer;
    // self-hosted ones choose their own, so it is only assumed for the former.
    let issuer = match r.raw("SUPABASE_JWT_ISSUER") {
        Some(off) if off.eq_ignore_ascii_case("off") => None,
        Some(issuer) => Some(issuer),
        None => project
            .host_str()
            .filter(|host| host.ends_with(".supabase.co"))
            .map(|_| format!("{base}/auth/v1")),
    };
    AuthSettings {
        jwt_secret,
        jwks_url,
        issuer,
        timeout: r.seconds("SUPABASE_AUTH_TIMEOUT_SECONDS", 5, 1, 60),
    }
}

/// Signing keys decide who is who: fetched over HTTPS only, except from
/// this machine.
fn key_set_url(r: &mut Reader<'_>, name: &str, value: &str) -> Option<Url> {
    let url = r.check_url(name, value)?;
    if url.scheme() == "https" || is_loopback(&url) {
        Some(url)
    } else {
        r.problem(format!(
            "{name}: the signing keys must be fetched over https (plain http only on loopback)"
        ));
        None
    }
}

/// Supabase serves PostgREST under `/rest/v1` of the project URL.
fn rest_url_of(r: &mut Reader<'_>, project: &Url) -> Option<Url> {
    let base = project.as_str().trim_end_matches('/');
    r.check_url("SUPABASE_URL", &format!("{base}/rest/v1"))
}

/// Whether `url` names this machine (plain HTTP is acceptable there).
fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}
