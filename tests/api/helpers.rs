//! The test harness: brings the local stack up once per test run, then gives
//! each test its own server on port 0, its own Gemini emulator and its own
//! breakable proxy in front of the REST server.
//!
//! Set `TEST_LOG=1` to see the server's logs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use catalogai::config::{AppEnv, Settings};
use catalogai::startup::Application;
use gemini_emulator::{Emulator, EmulatorConfig};
use reqwest::Url;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        catalogai::telemetry::init(AppEnv::Development);
    }
});

/// Settings written by `scripts/stack up`, read once.
fn stack_env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new(root.join("scripts/stack"))
            .args(["up", "--quiet"])
            .status()
            .expect("cannot run scripts/stack");
        assert!(status.success(), "scripts/stack up failed");
        let path = root.join(".stack/catalogai.env");
        dotenvy::from_path_iter(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
            .map(|item| item.expect("malformed stack env file"))
            .collect()
    })
}

/// A running server and the stand-ins it talks to.
pub struct TestApp {
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
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request failed")
    }

    /// Sends the shutdown signal, as SIGTERM would.
    pub fn signal_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for the server task to end and returns its result.
    pub async fn stopped(&mut self) -> std::io::Result<()> {
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
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server with the stack's settings, changed by `customize` before loading.
pub async fn spawn_app_with(customize: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
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
    customize(&mut vars);

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
pub struct ChaosProxy {
    pub addr: SocketAddr,
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
        let accept = tokio::spawn({
            let broken = broken.clone();
            async move {
                while let Ok((inbound, _)) = listener.accept().await {
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
            broken,
            accept,
        }
    }

    pub fn break_networking(&self) {
        self.broken.send_replace(true);
    }

    pub fn restore_networking(&self) {
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

/// Polls `GET path` until `done` accepts the answer or `within` passes; the
/// way an orchestrator probes. Returns the last status and body.
pub async fn poll_until(
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
