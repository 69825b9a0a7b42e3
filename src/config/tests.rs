//! The settings' rules, checked from plain variables.

use std::time::Duration;

use axum::http::HeaderValue;

use super::*;
use crate::clients::supabase::ApiKeyKind;

/// This module's source, where every setting's name is written once.
const SOURCES: [&str; 6] = [
    include_str!("mod.rs"),
    include_str!("server.rs"),
    include_str!("supabase.rs"),
    include_str!("gemini.rs"),
    include_str!("catalog.rs"),
    include_str!("limits.rs"),
];

/// Every setting this module reads, found in its own source as the
/// quoted UPPER_CASE names passed to the reader, must be documented in
/// `.env.example` and the README's settings table.
#[test]
fn every_setting_is_documented() {
    let source = SOURCES.concat();
    let example = include_str!("../../.env.example");
    let readme = include_str!("../../README.md");
    let names: std::collections::BTreeSet<&str> = source
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.len() > 3
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    assert!(names.len() > 25, "found only {names:?}");
    for name in names {
        assert!(
            example.lines().any(|l| l.starts_with(&format!("{name}="))),
            "{name} is not in .env.example"
        );
        assert!(
            readme.contains(&format!("`{name}`")),
            "{name} is not in the README"
        );
    }
}

fn minimal() -> Vec<(&'static str, &'static str)> {
    vec![
        ("SUPABASE_URL", "https://project.supabase.co"),
        ("SUPABASE_KEY", "anon-key"),
        ("SUPABASE_SERVICE_ROLE_KEY", "service-key"),
        ("SUPABASE_JWT_SECRET", "jwt-secret"),
        ("GEMINI_API_KEY", "gemini-key"),
    ]
}

#[test]
fn defaults_match_the_original_service() {
    let s = Settings::from_vars(minimal()).unwrap();
    assert_eq!(s.server.port, 5000);
    assert_eq!(s.server.cors_origins, CorsOrigins::Any);
    assert_eq!(s.gemini.model, "gemini-3-flash-preview");
    assert_eq!(s.gemini.embedding_model, "gemini-embedding-001");
    assert_eq!(s.gemini.embedding_dimension, 768);
    assert_eq!(s.batch.max_batch_size, 20);
    assert_eq!(s.resilience.circuit_breaker_fail_max, 5);
    assert_eq!(
        s.resilience.circuit_breaker_timeout,
        Duration::from_secs(60)
    );
    assert_eq!(s.resilience.retry_max_attempts, 10);
    assert_eq!(s.resilience.retry_budget_percent, 50);
    assert_eq!(s.resilience.retry_rate_limit_attempts, 5);
    assert_eq!(
        s.supabase.rest_url.as_str(),
        "https://project.supabase.co/rest/v1"
    );
}

#[test]
fn hs256_can_be_turned_off_while_the_secret_stays_set() {
    let s = Settings::from_vars(minimal()).unwrap();
    assert!(s.supabase.auth.jwt_secret.is_some());
    let mut vars = minimal();
    vars.push(("SUPABASE_JWT_HS256", "false"));
    let s = Settings::from_vars(vars).unwrap();
    assert!(s.supabase.auth.jwt_secret.is_none());
    let mut vars = minimal();
    vars.extend([
        ("SUPABASE_JWT_HS256", "false"),
        ("SUPABASE_JWKS_URL", "off"),
    ]);
    let err = Settings::from_vars(vars).unwrap_err().to_string();
    assert!(err.contains("no way to verify access tokens"), "{err}");
}

#[test]
fn postgrest_url_overrides_the_supabase_default() {
    let mut vars = minimal();
    vars.push(("POSTGREST_URL", "http://127.0.0.1:3000/api"));
    let s = Settings::from_vars(vars).unwrap();
    assert_eq!(s.supabase.rest_url.as_str(), "http://127.0.0.1:3000/api");
}

#[test]
fn every_problem_is_reported_at_once() {
    let vars = [("PORT", "seventy"), ("EMBEDDING_DIMENSION", "5000")];
    let err = Settings::from_vars(vars).unwrap_err().to_string();
    for name in [
        "SUPABASE_URL",
        "SUPABASE_KEY",
        "SUPABASE_SERVICE_ROLE_KEY",
        "GEMINI_API_KEY",
        "PORT",
        "EMBEDDING_DIMENSION",
    ] {
        assert!(err.contains(name), "{name} missing from: {err}");
    }
}

#[test]
fn secrets_never_appear_in_debug_output_or_errors() {
    let mut vars = minimal();
    vars.retain(|(k, _)| *k != "GEMINI_API_KEY");
    vars.push(("GEMINI_API_KEY", "top-secret\nvalue"));
    let err = Settings::from_vars(vars).unwrap_err().to_string();
    assert!(!err.contains("top-secret"), "{err}");

    let s = Settings::from_vars(minimal()).unwrap();
    let debug = format!("{s:?}");
    for secret in ["anon-key", "service-key", "jwt-secret", "gemini-key"] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
    }
}

fn with(extra: &[(&'static str, &'static str)]) -> Result<Settings, ConfigError> {
    let mut vars = minimal();
    vars.retain(|(k, _)| !extra.iter().any(|(name, _)| name == k));
    vars.extend_from_slice(extra);
    Settings::from_vars(vars)
}

#[test]
fn new_api_keys_are_recognised_under_either_name() {
    let s = with(&[
        ("SUPABASE_KEY", ""),
        ("SUPABASE_SERVICE_ROLE_KEY", ""),
        ("SUPABASE_PUBLISHABLE_KEY", "sb_publishable_abc"),
        ("SUPABASE_SECRET_KEY", "sb_secret_xyz"),
    ])
    .unwrap();
    assert_eq!(s.supabase.anon_key.kind(), ApiKeyKind::Publishable);
    assert_eq!(s.supabase.service_role_key.kind(), ApiKeyKind::Secret);
    assert_eq!(s.supabase.service_role_key.expose(), "sb_secret_xyz");
    let legacy = Settings::from_vars(minimal()).unwrap();
    assert_eq!(legacy.supabase.anon_key.kind(), ApiKeyKind::LegacyJwt);
}

#[test]
fn misplaced_or_conflicting_keys_are_refused_without_echoing_them() {
    for (vars, expected) in [
        (vec![("SUPABASE_KEY", "sb_secret_leak")], "SUPABASE_KEY"),
        (
            vec![("SUPABASE_SERVICE_ROLE_KEY", "sb_publishable_x")],
            "SUPABASE_SERVICE_ROLE_KEY",
        ),
        (vec![("SUPABASE_SECRET_KEY", "sb_secret_other")], "both set"),
    ] {
        let err = with(&vars).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
        for key in ["sb_secret_leak", "sb_publishable_x", "sb_secret_other"] {
            assert!(!err.contains(key), "a key leaked: {err}");
        }
    }
}

#[test]
fn key_set_defaults_to_the_project_and_needs_https() {
    let s = Settings::from_vars(minimal()).unwrap();
    assert_eq!(
        s.supabase.auth.jwks_url.unwrap().as_str(),
        "https://project.supabase.co/auth/v1/.well-known/jwks.json"
    );
    assert_eq!(
        s.supabase.auth.issuer.as_deref(),
        Some("https://project.supabase.co/auth/v1")
    );
    assert!(with(&[("SUPABASE_JWKS_URL", "http://auth.example.com/jwks")]).is_err());
    let local = with(&[("SUPABASE_JWKS_URL", "http://127.0.0.1:9/jwks")]).unwrap();
    assert!(local.supabase.auth.jwks_url.is_some());
    let self_hosted = with(&[("SUPABASE_URL", "https://supabase.internal")]).unwrap();
    assert_eq!(self_hosted.supabase.auth.issuer, None);
    let off = with(&[("SUPABASE_JWT_ISSUER", "off")]).unwrap();
    assert_eq!(off.supabase.auth.issuer, None);
}

#[test]
fn some_way_to_verify_tokens_is_required() {
    let legacy_only = with(&[("SUPABASE_JWKS_URL", "off")]).unwrap();
    assert!(legacy_only.supabase.auth.jwks_url.is_none());
    assert!(with(&[("SUPABASE_JWT_SECRET", "")]).is_ok());
    let err = with(&[("SUPABASE_JWKS_URL", "off"), ("SUPABASE_JWT_SECRET", "")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("SUPABASE_JWT_SECRET"), "{err}");
}

#[test]
fn empty_values_count_as_unset() {
    let mut vars = minimal();
    vars.push(("PORT", ""));
    assert_eq!(Settings::from_vars(vars).unwrap().server.port, 5000);
}

#[test]
fn cors_origins_parse_as_a_list_and_reject_paths() {
    assert_eq!(
        "https://a.example, http://localhost:3000"
            .parse::<CorsOrigins>()
            .unwrap(),
        CorsOrigins::List(vec![
            HeaderValue::from_static("https://a.example"),
            HeaderValue::from_static("http://localhost:3000"),
        ])
    );
    assert!("https://a.example/app".parse::<CorsOrigins>().is_err());
    assert!("ftp://a.example".parse::<CorsOrigins>().is_err());
}

#[test]
fn model_ids_accept_the_models_prefix_and_reject_path_tricks() {
    let mut vars = minimal();
    vars.push(("GEMINI_MODEL", "models/gemini-2.5-flash"));
    assert_eq!(
        Settings::from_vars(vars).unwrap().gemini.model,
        "gemini-2.5-flash"
    );
    let mut vars = minimal();
    vars.push(("GEMINI_MODEL", "../admin"));
    assert!(Settings::from_vars(vars).is_err());
}
