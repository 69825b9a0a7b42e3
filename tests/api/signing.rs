//! Signing keys for tests, and a key server that publishes them.
//!
//! - [`TestKey::stack`]: the local stack's ES256 key, the one postrust also
//!   trusts, so tokens it signs pass row-level security too.
//! - [`TestKey::es256`] / [`TestKey::rs256`]: fresh keys made with openssl
//!   (which the stack already needs), never committed.
//! - [`KeyServer`]: Supabase Auth's `/auth/v1/.well-known/jwks.json` on a
//!   loopback port, serving whichever keys a test sets, counting fetches,
//!   and able to go down.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// A private key with its key id and public JWK.
pub(crate) struct TestKey {
    pub kid: String,
    pub algorithm: Algorithm,
    encoding: EncodingKey,
    /// The public half, as a key set lists it.
    pub jwk: Value,
}

impl TestKey {
    /// The stack's signing key (`scripts/stack up` made it).
    pub(crate) fn stack() -> &'static TestKey {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(|| {
            crate::helpers::stack_env();
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".stack");
            let pem = std::fs::read_to_string(dir.join("jwt_signing_key.pem"))
                .expect("no stack signing key");
            let kid = std::fs::read_to_string(dir.join("jwt_signing_kid")).expect("no stack kid");
            Self::from_pem(kid.trim(), Algorithm::ES256, &pem)
        })
    }

    /// A fresh P-256 key.
    pub(crate) fn es256() -> TestKey {
        let pem = openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ]);
        Self::from_pem(&Uuid::new_v4().to_string(), Algorithm::ES256, &pem)
    }

    /// A fresh 2048-bit RSA key.
    pub(crate) fn rs256() -> TestKey {
        let pem = openssl(&["genrsa", "-traditional", "2048"]);
        Self::from_pem(&Uuid::new_v4().to_string(), Algorithm::RS256, &pem)
    }

    fn from_pem(kid: &str, algorithm: Algorithm, pem: &str) -> TestKey {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body).expect("PEM body is not base64");
        let encoding = match algorithm {
            Algorithm::ES256 => EncodingKey::from_ec_der(&der),
            Algorithm::RS256 => EncodingKey::from_rsa_der(&der),
            other => panic!("no test keys for {other:?}"),
        };
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&encoding, algorithm).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        TestKey {
            kid: kid.to_owned(),
            algorithm,
            encoding,
            jwk,
        }
    }

    /// A token over `claims` with this key's algorithm and `kid`.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        self.sign_with(header, claims)
    }

    /// A token over `claims` under any header, signed with this key.
    pub(crate) fn sign_with(&self, header: Header, claims: &Value) -> String {
        encode(&header, claims, &self.encoding).unwrap()
    }
}

fn openssl(args: &[&str]) -> String {
    let output = Command::new("openssl")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .expect("openssl is needed (scripts/stack installs it)");
    assert!(output.status.success(), "openssl {args:?} failed");
    String::from_utf8(output.stdout).unwrap()
}

/// Supabase Auth's key endpoint, as a test controls it.
pub(crate) struct KeyServer {
    pub url: String,
    state: Arc<KeyServerState>,
    task: JoinHandle<()>,
}

struct KeyServerState {
    keys: Mutex<Value>,
    fetches: AtomicUsize,
    down: AtomicBool,
}

impl KeyServer {
    /// Serves `keys` at `http://127.0.0.1:PORT/auth/v1/.well-known/jwks.json`.
    pub(crate) async fn start(keys: &[&TestKey]) -> KeyServer {
        let state = Arc::new(KeyServerState {
            keys: Mutex::new(Value::Null),
            fetches: AtomicUsize::new(0),
            down: AtomicBool::new(false),
        });
        let app = axum::Router::new()
            .route("/auth/v1/.well-known/jwks.json", get(serve))
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let server = KeyServer {
            url: format!("http://{addr}/auth/v1/.well-known/jwks.json"),
            state,
            task,
        };
        server.publish(keys);
        server
    }

    /// Replaces the published keys.
    pub(crate) fn publish(&self, keys: &[&TestKey]) {
        let jwks: Vec<&Value> = keys.iter().map(|k| &k.jwk).collect();
        *self.state.keys.lock().unwrap() = json!({ "keys": jwks });
    }

    /// Fetches answered or refused so far.
    pub(crate) fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// While down, every fetch gets 503.
    pub(crate) fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(State(state): State<Arc<KeyServerState>>) -> Response {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let body = state.keys.lock().unwrap().to_string();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=600"),
        ],
        body,
    )
        .into_response()
}
