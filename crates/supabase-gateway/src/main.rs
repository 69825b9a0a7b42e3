//! `supabase-gateway`: a local stand-in for the API gateway that fronts a
//! Supabase project's PostgREST, doing with `apikey` what Supabase's does, so
//! the local stack refuses what a project refuses:
//!
//! - no `apikey` header (or `?apikey=`): 401 `{"message":"No API key found in request",...}`;
//! - a key the project does not have (wrong, rotated, disabled): 401
//!   `{"message":"Invalid API key",...}`. Neither body has a `code`: it is
//!   the gateway answering, not PostgREST;
//! - a legacy `anon` / `service_role` JWT: forwarded, as the bearer token too
//!   when the request has none;
//! - a new `sb_publishable_...` / `sb_secret_...` key: forwarded as the role
//!   it stands for (a short-lived JWT for `anon` / `service_role` replaces a
//!   missing bearer token or one equal to the key); a user's JWT as bearer is
//!   forwarded as it is; another `sb_` key as bearer is refused.
//!
//! `/rest/v1/...` goes to the REST server's root (`--upstream`).
//!
//! ```text
//! supabase-gateway --listen 127.0.0.1:54321 --upstream http://127.0.0.1:54330/api
//! ```
//! Keys come from the environment, never the command line:
//! `SUPABASE_GATEWAY_JWT_SECRET` (the project's legacy JWT secret, which the
//! REST server trusts), `SUPABASE_GATEWAY_ANON_KEY`,
//! `SUPABASE_GATEWAY_SERVICE_ROLE_KEY`, `SUPABASE_GATEWAY_PUBLISHABLE_KEY`,
//! `SUPABASE_GATEWAY_SECRET_KEY`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

/// Largest request body forwarded; bulk writes stay well under it.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// How long a role token minted for a new API key lives.
const ROLE_TOKEN_SECONDS: u64 = 300;
/// Hop-by-hop headers (RFC 9110, 7.6.1) and those the client recomputes.
const NOT_FORWARDED: [&str; 8] = [
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "proxy-connection",
    "content-length",
];

/// The database role an API key stands for.
#[derive(Debug, Clone, Copy)]
enum Role {
    Anon,
    ServiceRole,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Anon => "anon",
            Self::ServiceRole => "service_role",
        }
    }
}

/// An `apikey` the project has.
#[derive(Debug, Clone, Copy)]
enum ApiKey {
    /// A legacy JWT key, itself a token the REST server takes.
    Legacy,
    /// A new opaque key, standing for a role.
    New(Role),
}

struct Gateway {
    upstream: String,
    client: reqwest::Client,
    jwt_secret: String,
    anon_key: String,
    service_role_key: String,
    publishable_key: String,
    secret_key: String,
}

impl Gateway {
    fn classify(&self, key: &str) -> Option<ApiKey> {
        if key == self.anon_key || key == self.service_role_key {
            Some(ApiKey::Legacy)
        } else if key == self.publishable_key {
            Some(ApiKey::New(Role::Anon))
        } else if key == self.secret_key {
            Some(ApiKey::New(Role::ServiceRole))
        } else {
            None
        }
    }

    /// A short-lived HS256 token for `role`, signed with the project secret.
    fn role_token(&self, role: Role) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = json!({
            "role": role.name(),
            "iss": "supabase",
            "iat": now,
            "exp": now + ROLE_TOKEN_SECONDS,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        // HMAC takes a key of any length.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.jwt_secret.as_bytes()) else {
            return String::new();
        };
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }
}

/// The gateway's own refusals, in Supabase's words (no `code`).
fn refuse(message: &str, hint: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({ "message": message, "hint": hint })),
    )
        .into_response()
}

fn invalid_key() -> Response {
    refuse(
        "Invalid API key",
        "Double check your Supabase `anon` or `service_role` API key.",
    )
}

fn apikey_of<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    headers
        .get("apikey")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            uri.query()?
                .split('&')
                .find_map(|pair| pair.strip_prefix("apikey="))
        })
        .filter(|key| !key.is_empty())
}

async fn handle(
    State(gateway): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path() == "/_gateway/health" {
        return (StatusCode::OK, "OK").into_response();
    }
    let Some(rest) = uri.path().strip_prefix("/rest/v1") else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "message": "no Route matched with those values" })),
        )
            .into_response();
    };
    let Some(key) = apikey_of(&headers, &uri) else {
        return refuse(
            "No API key found in request",
            "No `apikey` request header or url param was found.",
        );
    };
    let Some(kind) = gateway.classify(key) else {
        tracing::info!(%method, path = rest, "refused an unknown API key");
        return invalid_key();
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v));
    let authorization = match (kind, bearer) {
        (ApiKey::Legacy, None) => key.to_owned(),
        (ApiKey::New(role), None) => gateway.role_token(role),
        (ApiKey::New(role), Some(token)) if token == key => gateway.role_token(role),
        (_, Some(token)) if token.starts_with("sb_") => return invalid_key(),
        (_, Some(token)) => token.to_owned(),
    };

    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let mut request = gateway
        .client
        .request(method, format!("{}{rest}{query}", gateway.upstream))
        .body(body);
    for (name, value) in &headers {
        if !NOT_FORWARDED.contains(&name.as_str()) && name != header::AUTHORIZATION {
            request = request.header(name, value);
        }
    }
    request = request.bearer_auth(authorization);
    let upstream = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(error = %e, "REST server unreachable");
            return (
                StatusCode::BAD_GATEWAY,
                axum::Json(json!({
                    "message": "An invalid response was received from the upstream server"
                })),
            )
                .into_response();
        }
    };
    let status = upstream.status();
    let mut out = HeaderMap::new();
    for (name, value) in upstream.headers() {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            out.append(name, value.clone());
        }
    }
    match upstream.bytes().await {
        Ok(bytes) => (status, out, bytes).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "REST server's answer cut off");
            (
                StatusCode::BAD_GATEWAY,
                axum::Json(json!({ "message": "The upstream server's answer was cut off" })),
            )
                .into_response()
        }
    }
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn configure() -> Result<(String, Gateway), String> {
    let mut listen = "127.0.0.1:54321".to_owned();
    let mut upstream = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = value,
            "--upstream" => upstream = Some(value.trim_end_matches('/').to_owned()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let gateway = Gateway {
        upstream: upstream.ok_or("--upstream is required")?,
        client,
        jwt_secret: env("SUPABASE_GATEWAY_JWT_SECRET")?,
        anon_key: env("SUPABASE_GATEWAY_ANON_KEY")?,
        service_role_key: env("SUPABASE_GATEWAY_SERVICE_ROLE_KEY")?,
        publishable_key: env("SUPABASE_GATEWAY_PUBLISHABLE_KEY")?,
        secret_key: env("SUPABASE_GATEWAY_SECRET_KEY")?,
    };
    Ok((listen, gateway))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let (listen, gateway) = match configure() {
        Ok(configured) => configured,
        Err(message) => {
            eprintln!("supabase-gateway: {message}");
            return ExitCode::from(2);
        }
    };
    let app = Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Arc::new(gateway));
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("supabase-gateway: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%listen, "gateway listening");
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("supabase-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
