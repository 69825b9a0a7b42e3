//! Access tokens as a current Supabase project issues them: ES256 and RS256
//! signing keys from the project's key set (served here by a [`KeyServer`]
//! the test controls), the legacy HS256 secret beside them, and every way a
//! token can be wrong. Also the new API keys, through a stand-in for
//! Supabase's API gateway.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use catalogai::config::Settings;
use catalogai::startup::{Application, StartupError};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::helpers::{
    TestApp, create_tenant, mint_token, poll_readiness, spawn_app_with, stack_env, unix_now,
};
use crate::signing::{KeyServer, TestKey};

fn claims(sub: Uuid) -> Value {
    let now = unix_now();
    json!({ "sub": sub, "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + 3600 })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

/// An app that reads its signing keys from `keys`.
async fn app_with_keys(keys: &KeyServer, extra: &[(&str, &str)]) -> TestApp {
    let url = keys.url.clone();
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    spawn_app_with(move |vars| {
        vars.insert("SUPABASE_JWKS_URL".into(), url);
        vars.extend(extra);
    })
    .await
}

async fn verify_status(app: &TestApp, token: &str) -> (u16, Value) {
    let response = app.get_as("/api/auth/verify", token).await;
    let status = response.status().as_u16();
    if status == 401 {
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn es256_rs256_and_legacy_hs256_tokens_are_all_accepted() {
    let (es, rs) = (TestKey::es256(), TestKey::rs256());
    let keys = KeyServer::start(&[&es, &rs]).await;
    let app = app_with_keys(&keys, &[]).await;
    let tenant = create_tenant().await;
    let user = tenant.admin.id;

    for (kind, token) in [
        ("ES256", es.sign(&claims(user))),
        ("RS256", rs.sign(&claims(user))),
        ("HS256", mint_token(&claims(user))),
    ] {
        let (status, body) = verify_status(&app, &token).await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(body["user_id"], json!(user), "{kind}");
    }
    assert_eq!(keys.fetches(), 1, "start-up fetches the key set once");
}

#[tokio::test]
async fn every_bad_token_is_401_before_gemini_or_the_database() {
    let (es, rs, stranger) = (TestKey::es256(), TestKey::rs256(), TestKey::es256());
    let keys = KeyServer::start(&[&es, &rs]).await;
    let issuer = "https://project.example/auth/v1";
    let app = app_with_keys(&keys, &[("SUPABASE_JWT_ISSUER", issuer)]).await;
    let tenant = create_tenant().await;
    let user = tenant.admin.id;
    let good = with(claims(user), "iss", json!(issuer));
    let now = unix_now();

    let es_header = |alg| {
        let mut h = Header::new(alg);
        h.kid = Some(es.kid.clone());
        h
    };
    // Algorithm confusion: HS256 "signed" with what is public about the ES key.
    let confused: Vec<String> = [es.jwk.to_string(), es.jwk["x"].as_str().unwrap().to_owned()]
        .iter()
        .map(|public| {
            encode(
                &es_header(Algorithm::HS256),
                &good,
                &EncodingKey::from_secret(public.as_bytes()),
            )
            .unwrap()
        })
        .collect();
    let mut forged_by_stranger = Header::new(Algorithm::ES256);
    forged_by_stranger.kid = Some(es.kid.clone());

    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            es.sign(&with(good.clone(), "exp", json!(now - 120))),
        ),
        (
            "not yet valid",
            es.sign(&with(good.clone(), "nbf", json!(now + 600))),
        ),
        (
            "huge nbf",
            es.sign(&with(good.clone(), "nbf", json!(u64::MAX))),
        ),
        (
            "exp not a number",
            es.sign(&with(good.clone(), "exp", json!(1e300))),
        ),
        (
            "wrong issuer",
            es.sign(&with(good.clone(), "iss", json!("https://evil/auth/v1"))),
        ),
        ("no issuer", es.sign(&claims(user))),
        (
            "wrong audience",
            rs.sign(&with(good.clone(), "aud", json!("anon"))),
        ),
        ("unknown kid", stranger.sign(&good)),
        ("no kid", es.sign_with(Header::new(Algorithm::ES256), &good)),
        (
            "forged: another key under a known kid",
            stranger.sign_with(forged_by_stranger, &good),
        ),
        (
            "alg swapped: RS256 token under an ES256 kid",
            rs.sign_with(
                {
                    let mut h = Header::new(Algorithm::RS256);
                    h.kid = Some(es.kid.clone());
                    h
                },
                &good,
            ),
        ),
        ("HS256 with the public JWK as secret", confused[0].clone()),
        ("HS256 with the public point as secret", confused[1].clone()),
        ("HS256 with the wrong secret", {
            encode(
                &Header::new(Algorithm::HS256),
                &good,
                &EncodingKey::from_secret(b"not-the-secret"),
            )
            .unwrap()
        }),
        ("alg none", {
            let signed = es.sign(&good);
            let (_, rest) = signed.split_once('.').unwrap();
            let (payload, _) = rest.split_once('.').unwrap();
            let none = base64_url(&json!({ "alg": "none", "kid": es.kid }).to_string());
            format!("{none}.{payload}.")
        }),
    ];
    for (case, token) in &cases {
        let (status, body) = verify_status(&app, token).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body["error"]["code"], "UNAUTHORIZED", "{case}");
    }
    // The same tokens against enrichment: refused before Gemini is asked.
    for (case, token) in &cases {
        let response = app
            .post_json(
                "/api/products/enrich",
                Some(token),
                &json!({ "product_name": "Slack" }),
            )
            .await;
        assert_eq!(response.status(), 401, "{case}");
    }
    assert_eq!(app.gemini.stats().total_calls(), 0);
    // Refusals read no membership: the REST server saw no request from this app
    // beyond readiness-free start-up (the proxy counts connections).
    assert_eq!(app.rest.connections(), 0);

    let (status, _) = verify_status(&app, &es.sign(&good)).await;
    assert_eq!(status, 200, "the valid token still works");
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn a_key_rotated_in_while_running_is_fetched_on_first_use() {
    let (old, new) = (TestKey::es256(), TestKey::rs256());
    let keys = KeyServer::start(&[&old]).await;
    let app = app_with_keys(&keys, &[]).await;
    let tenant = create_tenant().await;
    assert_eq!(keys.fetches(), 1);

    // Supabase publishes a new key before it signs with it.
    keys.publish(&[&old, &new]);
    let (status, body) = verify_status(&app, &new.sign(&claims(tenant.admin.id))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys.fetches(), 2, "one refetch for the unknown kid");

    // The old key, revoked, keeps working until the next refresh: cached.
    let (status, _) = verify_status(&app, &old.sign(&claims(tenant.admin.id))).await;
    assert_eq!(status, 200);
    assert_eq!(keys.fetches(), 2);
}

/// Verified tokens are remembered, but only while the key that verified
/// them is still in the project's key set.
#[tokio::test]
async fn a_remembered_token_stops_working_once_its_key_is_rotated_out() {
    let (old, new) = (TestKey::es256(), TestKey::es256());
    let keys = KeyServer::start(&[&old]).await;
    let app = app_with_keys(&keys, &[]).await;
    let tenant = create_tenant().await;
    let token = old.sign(&claims(tenant.admin.id));
    for _ in 0..3 {
        let (status, body) = verify_status(&app, &token).await;
        assert_eq!(status, 200, "{body}");
    }

    // The old key is withdrawn; a token signed by the new one makes the
    // server fetch the set again.
    keys.publish(&[&new]);
    let (status, body) = verify_status(&app, &new.sign(&claims(tenant.admin.id))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = verify_status(&app, &token).await;
    assert_eq!(status, 401, "a remembered token outlived its key: {body}");
}

#[tokio::test]
async fn a_flood_of_made_up_kids_costs_at_most_one_fetch() {
    let key = TestKey::es256();
    let keys = KeyServer::start(&[&key]).await;
    let app = Arc::new(app_with_keys(&keys, &[("RATE_LIMIT_PER_MINUTE", "0")]).await);
    let tenant = create_tenant().await;
    let user = tenant.requester.id;

    let mut flood = tokio::task::JoinSet::new();
    for batch in 0..20 {
        let app = Arc::clone(&app);
        let tokens: Vec<String> = (0..50)
            .map(|_| {
                let mut header = Header::new(Algorithm::ES256);
                header.kid = Some(Uuid::new_v4().to_string());
                key.sign_with(header, &claims(user))
            })
            .collect();
        flood.spawn(async move {
            let mut refused = 0;
            for token in tokens {
                if app.get_as("/api/auth/verify", &token).await.status() == 401 {
                    refused += 1;
                }
            }
            (batch, refused)
        });
    }
    let mut refused = 0;
    while let Some(done) = flood.join_next().await {
        refused += done.unwrap().1;
    }
    assert_eq!(refused, 1000);
    let fetches = keys.fetches();
    assert!(
        fetches <= 2,
        "1,000 unknown kids caused {fetches} fetches (start-up included)"
    );
}

#[tokio::test]
async fn while_the_key_set_is_down_cached_keys_keep_working_and_readiness_says_so() {
    let key = TestKey::es256();
    let keys = KeyServer::start(&[&key]).await;
    let app = app_with_keys(&keys, &[]).await;
    let tenant = create_tenant().await;

    keys.set_down(true);
    // An unknown kid makes the server try the key set again: it fails.
    let (status, _) = verify_status(&app, &TestKey::es256().sign(&claims(tenant.admin.id))).await;
    assert_eq!(status, 401);
    assert!(keys.fetches() >= 2);

    let (status, body) = verify_status(&app, &key.sign(&claims(tenant.admin.id))).await;
    assert_eq!(status, 200, "cached key: {body}");
    let (status, body, _) = poll_readiness(&app, 200, Duration::from_secs(10)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["signing_keys"]["keys"], 1, "{body}");
    assert_eq!(body["signing_keys"]["last_fetch_ok"], false, "{body}");
}

/// Settings for an app whose key set is at a closed port.
fn unreachable_key_set(keep_secret: bool) -> Settings {
    let mut vars: HashMap<String, String> = stack_env().clone();
    vars.insert("PORT".into(), "0".into());
    vars.insert(
        "SUPABASE_JWKS_URL".into(),
        "http://127.0.0.1:9/auth/v1/.well-known/jwks.json".into(),
    );
    if !keep_secret {
        vars.remove("SUPABASE_JWT_SECRET");
    }
    Settings::from_vars(vars).unwrap()
}

#[tokio::test]
async fn without_keys_or_secret_start_up_fails_within_its_bound_and_says_why() {
    let started = Instant::now();
    let error = Application::build(unreachable_key_set(false))
        .await
        .expect_err("started without any way to verify tokens");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(error, StartupError::NoSigningKeys { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("127.0.0.1:9"), "{message}");
    assert!(message.contains("SUPABASE_JWT_SECRET"), "{message}");
}

#[tokio::test]
async fn with_the_legacy_secret_start_up_goes_on_without_the_key_set() {
    let app = Application::build(unreachable_key_set(true))
        .await
        .expect("the legacy secret alone can verify tokens");
    drop(app);
    let app = spawn_app_with(|vars| {
        vars.insert(
            "SUPABASE_JWKS_URL".into(),
            "http://127.0.0.1:9/auth/v1/.well-known/jwks.json".into(),
        );
    })
    .await;
    let tenant = create_tenant().await;
    let (status, _) = verify_status(&app, &mint_token(&claims(tenant.admin.id))).await;
    assert_eq!(status, 200);
    let (_, body, _) = poll_readiness(&app, 200, Duration::from_secs(10)).await;
    assert_eq!(body["signing_keys"]["keys"], 0, "{body}");
    assert_eq!(body["signing_keys"]["last_fetch_ok"], false, "{body}");
}

/// Every authenticated request needs the caller's membership: a new user's
/// burst of concurrent requests reads it once (the cache waits for the one
/// read), not once per request.
#[tokio::test]
async fn a_new_users_burst_reads_their_membership_once() {
    let gateway = Gateway::start().await;
    let url = gateway.url.clone();
    let app = std::sync::Arc::new(
        spawn_app_with(move |vars| {
            vars.insert("POSTGREST_URL".into(), url);
            vars.remove("SUPABASE_KEY");
            vars.remove("SUPABASE_SERVICE_ROLE_KEY");
            vars.insert("SUPABASE_PUBLISHABLE_KEY".into(), PUBLISHABLE_KEY.into());
            vars.insert("SUPABASE_SECRET_KEY".into(), SECRET_KEY.into());
            vars.insert("RATE_LIMIT_PER_MINUTE".into(), "0".into());
        })
        .await,
    );
    let tenant = create_tenant().await;
    let token = tenant.reviewer.token.clone();
    let before = gateway.seen.service.load(Ordering::SeqCst);
    let burst: Vec<_> = (0..30)
        .map(|_| {
            let (app, token) = (std::sync::Arc::clone(&app), token.clone());
            tokio::spawn(async move { verify_status(&app, &token).await.0 })
        })
        .collect();
    for request in burst {
        assert_eq!(request.await.unwrap(), 200);
    }
    assert_eq!(
        gateway.seen.service.load(Ordering::SeqCst) - before,
        1,
        "service-key reads for one new user's 30 concurrent requests"
    );
}

/// A stand-in for Supabase's API gateway in front of PostgREST, as it treats
/// the new API keys: `apikey: sb_secret_...` alone means the service role;
/// `apikey: sb_publishable_...` with a user's JWT means that user; an
/// `sb_...` key as a bearer token is refused. It forwards with the legacy
/// JWTs postrust understands, and counts what it saw.
struct Gateway {
    url: String,
    seen: Arc<GatewaySeen>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct GatewaySeen {
    service: AtomicUsize,
    user: AtomicUsize,
    refused: AtomicUsize,
}

const SECRET_KEY: &str = "sb_secret_local_test_key";
const PUBLISHABLE_KEY: &str = "sb_publishable_local_test_key";

impl Gateway {
    async fn start() -> Gateway {
        let seen = Arc::new(GatewaySeen::default());
        let upstream = stack_env()["POSTGREST_URL"]
            .trim_end_matches('/')
            .to_owned();
        let client = catalogai::clients::http_client(Duration::from_secs(10)).unwrap();
        let state = (Arc::clone(&seen), upstream, client);
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(Arc::new(state));
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Gateway {
            url: format!("http://{addr}/rest/v1"),
            seen,
            task,
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type GatewayState = Arc<(Arc<GatewaySeen>, String, reqwest::Client)>;

async fn forward(
    State(state): State<GatewayState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (seen, upstream, client) = &*state;
    let apikey = headers.get("apikey").and_then(|v| v.to_str().ok());
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let forwarded = match (apikey, bearer) {
        (_, Some(b)) if b.starts_with("sb_") => None,
        (Some(SECRET_KEY), None) => {
            seen.service.fetch_add(1, Ordering::SeqCst);
            Some((
                crate::helpers::service_key(),
                crate::helpers::service_key().to_owned(),
            ))
        }
        (Some(PUBLISHABLE_KEY), Some(user)) => {
            seen.user.fetch_add(1, Ordering::SeqCst);
            Some((crate::helpers::public_key(), user.to_owned()))
        }
        _ => None,
    };
    let Some((project_key, token)) = forwarded else {
        seen.refused.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::UNAUTHORIZED, "invalid api key").into_response();
    };
    let path = uri
        .path_and_query()
        .map_or("", |p| p.as_str())
        .trim_start_matches("/rest/v1");
    let mut request = client
        .request(method, format!("{upstream}{path}"))
        .header("apikey", project_key)
        .bearer_auth(token)
        .body(body);
    for name in [
        "content-type",
        "prefer",
        "accept",
        "range",
        "accept-profile",
        "content-profile",
    ] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let mut out = HeaderMap::new();
    for name in ["content-type", "content-range"] {
        if let Some(value) = response.headers().get(name) {
            out.insert(name, value.clone());
        }
    }
    (status, out, response.bytes().await.unwrap()).into_response()
}

#[tokio::test]
async fn new_api_keys_are_sent_the_way_supabase_expects() {
    let gateway = Gateway::start().await;
    let url = gateway.url.clone();
    let app = spawn_app_with(move |vars| {
        vars.insert("POSTGREST_URL".into(), url);
        vars.remove("SUPABASE_KEY");
        vars.remove("SUPABASE_SERVICE_ROLE_KEY");
        vars.insert("SUPABASE_PUBLISHABLE_KEY".into(), PUBLISHABLE_KEY.into());
        vars.insert("SUPABASE_SECRET_KEY".into(), SECRET_KEY.into());
    })
    .await;
    let tenant = create_tenant().await;

    let (status, body, _) = poll_readiness(&app, 200, Duration::from_secs(10)).await;
    assert_eq!(status, 200, "service-key read through the gateway: {body}");
    let (status, body) = verify_status(&app, &tenant.admin.token).await;
    assert_eq!(status, 200, "membership read with the secret key: {body}");
    let response = app
        .post_json(
            "/api/catalog/items",
            Some(&tenant.admin.token),
            &json!({ "name": "Gateway chair", "description": "Made through new keys", "category": "Furniture" }),
        )
        .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let response = app
        .get_as("/api/catalog/items", &tenant.requester.token)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["items"][0]["name"], "Gateway chair",
        "RLS saw the user: {body}"
    );

    assert!(gateway.seen.service.load(Ordering::SeqCst) > 0);
    assert!(gateway.seen.user.load(Ordering::SeqCst) > 0);
    assert_eq!(
        gateway.seen.refused.load(Ordering::SeqCst),
        0,
        "a request carried an sb_ key as bearer, or no key"
    );
}

#[tokio::test]
async fn the_key_set_client_follows_redirects_on_its_own_host_only() {
    use axum::response::Redirect;
    use axum::routing::get;
    use catalogai::clients::jwks::{JwksClient, JwksError};
    use catalogai::resilience::{CallError, Deadline, Dependency};

    let keys = KeyServer::start(&[&TestKey::es256()]).await;
    let target = keys.url.clone();
    let elsewhere = target.replace("127.0.0.1", "localhost");
    let app = axum::Router::new()
        .route(
            "/same",
            get(move || async move { Redirect::temporary(&target) }),
        )
        .route(
            "/other",
            get(move || async move { Redirect::temporary(&elsewhere) }),
        )
        .route("/moved", get(|| async { Redirect::permanent("/keys") }))
        .route("/keys", get(|| async { axum::Json(json!({ "keys": [] })) }));
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let settings = Settings::from_vars(stack_env().clone()).unwrap();
    let client = |path: &str| {
        let policy = Arc::new(Dependency::new(
            "supabase_auth",
            &settings.resilience,
            1,
            Duration::from_secs(2),
        ));
        let url = format!("http://{addr}{path}").parse().unwrap();
        JwksClient::new(url, Duration::from_secs(2), policy).unwrap()
    };
    let deadline = || Deadline::after(Duration::from_secs(5));

    let moved = client("/moved").fetch(deadline()).await.unwrap();
    assert!(
        moved.keys.is_empty(),
        "a redirect on the same origin is followed"
    );
    // Same host, another port: the key server. Not the same origin, so refused.
    match client("/same").fetch(deadline()).await {
        Err(CallError::Upstream(JwksError::Status(307))) => {}
        other => panic!("followed a redirect to another port: {other:?}"),
    }
    match client("/other").fetch(deadline()).await {
        Err(CallError::Upstream(JwksError::Status(307))) => {}
        other => panic!("followed a redirect to another host: {other:?}"),
    }
    assert_eq!(keys.fetches(), 0);
    server.abort();
}
