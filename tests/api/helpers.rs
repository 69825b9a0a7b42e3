//! The test harness: brings the local stack up once per test run, then gives
//! each test its own server on port 0, its own Gemini emulator and its own
//! breakable proxy in front of the REST server.
//!
//! Set `TEST_LOG=1` to see the server's logs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use catalogai::config::{AppEnv, Settings};
use catalogai::startup::Application;
use gemini_emulator::{Emulator, EmulatorConfig};
use hmac::{Hmac, Mac};
use reqwest::Url;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        catalogai::telemetry::init(AppEnv::Development);
    }
});

/// Which local platform the tests run on (`CATALOGAI_PLATFORM`, as
/// `scripts/stack` reads it): `today` unless `classic` is asked for.
pub(crate) fn platform() -> &'static str {
    match std::env::var("CATALOGAI_PLATFORM").as_deref() {
        Ok("classic") => "classic",
        _ => "today",
    }
}

/// Settings written by `scripts/stack up`, read once.
pub(crate) fn stack_env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new(root.join("scripts/stack"))
            .args(["up", "--quiet"])
            .status()
            .expect("cannot run scripts/stack");
        assert!(status.success(), "scripts/stack up failed");
        let path = match platform() {
            "classic" => root.join(".stack/catalogai-classic.env"),
            _ => root.join(".stack/catalogai.env"),
        };
        dotenvy::from_path_iter(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
            .map(|item| item.expect("malformed stack env file"))
            .collect()
    })
}

/// The setting that holds the project's elevated key on this platform: the
/// new `SUPABASE_SECRET_KEY` on today's, the legacy
/// `SUPABASE_SERVICE_ROLE_KEY` on the classic one.
pub(crate) fn service_key_var() -> &'static str {
    if stack_env().contains_key("SUPABASE_SECRET_KEY") {
        "SUPABASE_SECRET_KEY"
    } else {
        "SUPABASE_SERVICE_ROLE_KEY"
    }
}

/// The project's elevated key (bypasses row-level security).
pub(crate) fn service_key() -> &'static str {
    &stack_env()[service_key_var()]
}

/// The project's public key: what any browser holds.
pub(crate) fn public_key() -> &'static str {
    let env = stack_env();
    env.get("SUPABASE_PUBLISHABLE_KEY")
        .unwrap_or_else(|| &env["SUPABASE_KEY"])
}

/// A running server and the stand-ins it talks to.
pub(crate) struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub gemini: Emulator,
    pub rest: ChaosProxy,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request failed")
    }

    /// `POST path` with a JSON body, as the bearer of `token` when given.
    pub(crate) async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request failed")
    }

    /// `POST /api/products/enrich-batch` for `names` as the bearer of
    /// `token`; checks the answer is 200 and returns its `results`.
    pub(crate) async fn enrich_batch(
        &self,
        token: &str,
        names: &[impl serde::Serialize],
    ) -> Vec<Value> {
        let response = self
            .post_json(
                "/api/products/enrich-batch",
                Some(token),
                &serde_json::json!({ "product_names": names }),
            )
            .await;
        assert_eq!(response.status(), 200);
        let mut body: Value = response.json().await.expect("not JSON");
        match body["results"].take() {
            Value::Array(results) => results,
            other => panic!("results is not an array: {other}"),
        }
    }

    /// `GET path` as the bearer of `token`.
    pub(crate) async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("request failed")
    }

    /// Sends the shutdown signal, as SIGTERM would.
    pub(crate) fn signal_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for the server task to end and returns its result.
    pub(crate) async fn stopped(&mut self) -> std::io::Result<()> {
        let server = self.server.take().expect("server already awaited");
        server.await.expect("server task panicked")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

/// A server with the stack's settings.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Whether `name` is one of the server's settings, as `.env.example`
/// (checked against the source by a unit test) documents them.
fn is_setting(name: &str) -> bool {
    include_str!("../../.env.example").lines().any(|line| {
        line.trim_start_matches("# ")
            .starts_with(&format!("{name}="))
    })
}

/// Waits, at most 30 s, until the emulator serves `n` Gemini calls at once:
/// the signal for acting while a call is in flight.
pub(crate) async fn gemini_in_flight(gemini: &Emulator, n: usize) {
    tokio::time::timeout(Duration::from_secs(30), gemini.wait_for_in_flight(n))
        .await
        .unwrap_or_else(|_| panic!("Gemini never had {n} calls in flight"));
}

/// A server with the stack's settings, changed by `customize` before loading;
/// a variable `customize` adds must be a documented setting.
pub(crate) async fn spawn_app_with(
    customize: impl FnOnce(&mut HashMap<String, String>),
) -> TestApp {
    LazyLock::force(&TRACING);
    let mut vars = stack_env().clone();
    let gemini = Emulator::start(EmulatorConfig::default())
        .await
        .expect("cannot start the Gemini emulator");
    let rest_url = Url::parse(&vars["POSTGREST_URL"]).expect("bad POSTGREST_URL");
    let rest =
        ChaosProxy::start(rest_url.socket_addrs(|| None).expect("bad REST address")[0]).await;
    let mut proxied = rest_url.clone();
    proxied
        .set_port(Some(rest.addr.port()))
        .expect("cannot set port");

    vars.insert("HOST".into(), "127.0.0.1".into());
    vars.insert("PORT".into(), "0".into());
    vars.insert("POSTGREST_URL".into(), proxied.to_string());
    vars.insert("GEMINI_BASE_URL".into(), gemini.base_url());
    vars.insert("GEMINI_API_KEY".into(), gemini.api_key().to_owned());
    // The stack's database is every test's at once: a re-embed of all of it
    // would change what other tests measure. tests/api/backfill.rs runs it
    // on a database of its own.
    vars.insert("EMBEDDING_BACKFILL".into(), "false".into());
    // Likewise imports: any worker here would take any test's job and
    // embed it with its own emulator. tests/api/imports.rs turns it on for
    // one server at a time.
    vars.insert("IMPORT_WORKER".into(), "false".into());
    let given: Vec<String> = vars.keys().cloned().collect();
    customize(&mut vars);
    // A misspelt override would be ignored and the test would test nothing.
    for name in vars.keys().filter(|name| !given.contains(name)) {
        assert!(
            is_setting(name),
            "{name} is not a setting (.env.example documents every one)"
        );
    }

    let settings = Settings::from_vars(vars).expect("invalid test settings");
    let app = Application::build(settings)
        .await
        .expect("cannot build app");
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address: format!("http://{addr}"),
        addr,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("cannot build test client"),
        gemini,
        rest,
        stop: Some(stop),
        server: Some(server),
    }
}

/// A TCP proxy in front of the REST server that a test can break: while
/// broken, live connections are cut and new ones closed at once, as when the
/// server is down.
pub(crate) struct ChaosProxy {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    broken: Arc<watch::Sender<bool>>,
    accept: JoinHandle<()>,
}

impl ChaosProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("cannot bind proxy");
        let addr = listener.local_addr().expect("no proxy address");
        let broken = Arc::new(watch::Sender::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let accept = tokio::spawn({
            let broken = broken.clone();
            let connections = Arc::clone(&connections);
            async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    if *broken.borrow() {
                        drop(inbound);
                        continue;
                    }
                    tokio::spawn(forward(inbound, upstream, broken.subscribe()));
                }
            }
        });
        Self {
            addr,
            connections,
            broken,
            accept,
        }
    }

    /// Connections the server has opened to the REST server so far.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub(crate) fn break_networking(&self) {
        self.broken.send_replace(true);
    }

    pub(crate) fn restore_networking(&self) {
        self.broken.send_replace(false);
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.broken.send_replace(true);
    }
}

async fn forward(mut inbound: TcpStream, upstream: SocketAddr, mut broken: watch::Receiver<bool>) {
    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = broken.wait_for(|b| *b) => {}
    }
}

/// Polls `GET /api/readiness` until it answers `status` or `within` passes.
pub(crate) async fn poll_readiness(
    app: &TestApp,
    status: u16,
    within: Duration,
) -> (u16, serde_json::Value, Duration) {
    poll_until(app, "/api/readiness", within, |s, _| s == status).await
}

/// Polls `GET path` until `done` accepts the answer or `within` passes; the
/// way an orchestrator probes. Returns the last status and body.
pub(crate) async fn poll_until(
    app: &TestApp,
    path: &str,
    within: Duration,
    done: impl Fn(u16, &serde_json::Value) -> bool,
) -> (u16, serde_json::Value, Duration) {
    let start = tokio::time::Instant::now();
    loop {
        let response = app.get(path).await;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.expect("not JSON");
        if done(status, &body) || start.elapsed() >= within {
            return (status, body, start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A user of a test organisation and a valid access token for them.
pub(crate) struct User {
    pub id: Uuid,
    pub token: String,
}

/// A fresh organisation with an admin, a reviewer and a requester, so tests
/// never share catalog rows.
pub(crate) struct Tenant {
    pub org_id: Uuid,
    pub admin: User,
    pub reviewer: User,
    pub requester: User,
}

/// Creates a tenant through the real REST server with the service key, as an
/// operator would.
pub(crate) async fn create_tenant() -> Tenant {
    let env = stack_env();
    let rest = &env["POSTGREST_URL"];
    let service_key = service_key();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("cannot build client");
    let org_id = Uuid::new_v4();
    let admin = Uuid::new_v4();
    let requester = Uuid::new_v4();
    let reviewer = Uuid::new_v4();
    let inserts = [
        (
            "orgs",
            json!([{ "id": org_id, "name": format!("Test org {org_id}") }]),
        ),
        (
            "org_memberships",
            json!([
                { "org_id": org_id, "user_id": admin, "role": "admin" },
                { "org_id": org_id, "user_id": requester, "role": "requester" },
                { "org_id": org_id, "user_id": reviewer, "role": "reviewer" },
            ]),
        ),
    ];
    for (table, rows) in inserts {
        let response = client
            .post(format!("{rest}/{table}"))
            .header("apikey", service_key)
            .bearer_auth(service_key)
            .json(&rows)
            .send()
            .await
            .expect("REST server unreachable");
        let status = response.status();
        assert!(
            status.is_success(),
            "creating {table} rows: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }
    Tenant {
        org_id,
        admin: User {
            id: admin,
            token: user_token(admin),
        },
        reviewer: User {
            id: reviewer,
            token: user_token(reviewer),
        },
        requester: User {
            id: requester,
            token: user_token(requester),
        },
    }
}

/// Changes `user`'s role in `org` straight in the database, as another
/// admin would.
pub(crate) async fn set_role(org: Uuid, user: Uuid, role: &str) {
    let (status, body) = rest(
        reqwest::Method::PATCH,
        &format!("org_memberships?org_id=eq.{org}&user_id=eq.{user}"),
        None,
        &json!({ "role": role }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Calls the real REST server directly (not through the app), with the
/// service key unless `token` is given; returns status and JSON body. For
/// seeding rows and for probing what the database allows a user to do.
pub(crate) async fn rest(
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let env = stack_env();
    let (apikey, bearer) = match token {
        Some(token) => (public_key(), token),
        None => (service_key(), service_key()),
    };
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("cannot build client")
        .request(method, format!("{}/{path}", env["POSTGREST_URL"]))
        .header("apikey", apikey)
        .header("Prefer", "return=representation")
        .bearer_auth(bearer)
        .json(body)
        .send()
        .await
        .expect("REST server unreachable");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Inserts `count` items into `org` with the service key, without embeddings
/// (as rows the original left behind); returns their ids.
pub(crate) async fn insert_items_without_embeddings(
    org: Uuid,
    created_by: Uuid,
    prefix: &str,
    count: usize,
) -> Vec<Uuid> {
    let rows: Vec<Value> = (0..count)
        .map(|i| {
            json!({
                "org_id": org,
                "name": format!("{prefix} {i}"),
                "description": format!("Seeded item number {i}"),
                "category": "Office Supplies",
                "created_by": created_by,
            })
        })
        .collect();
    let (status, body) = rest(
        reqwest::Method::POST,
        "catalog_items",
        None,
        &Value::Array(rows),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body.as_array()
        .expect("rows")
        .iter()
        .map(|row| row["id"].as_str().expect("id").parse().expect("uuid"))
        .collect()
}

/// A valid access token for `user_id`, as Supabase Auth issues them on a
/// current project: ES256, signed with the stack's signing key, which both
/// the server and postrust (row-level security) verify.
pub(crate) fn user_token(user_id: Uuid) -> String {
    let now = unix_now();
    crate::signing::TestKey::stack().sign(&json!({
        "sub": user_id,
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + 3600,
    }))
}

/// A legacy HS256 token over `claims`, signed with the stack's JWT secret.
/// Written independently of the server's verifier so the two check each other.
pub(crate) fn mint_token(claims: &Value) -> String {
    sign_token(
        &json!({ "alg": "HS256", "typ": "JWT" }),
        claims,
        &stack_env()["SUPABASE_JWT_SECRET"],
    )
}

/// A token with any header and claims, signed with any secret.
pub(crate) fn sign_token(header: &Value, claims: &Value, secret: &str) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length works");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock before 1970")
        .as_secs()
}

/// One SQL query as the database owner, for what PostgREST cannot show
/// (function settings, privileges, the catalogue).
pub(crate) fn sql(query: &str) -> String {
    let output = Command::new("psql")
        .args([
            stack_env()["DATABASE_URL"].as_str(),
            "-X",
            "-q",
            "-tA",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            query,
        ])
        .output()
        .expect("psql is needed (scripts/stack installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}
