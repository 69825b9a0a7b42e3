//! Start-up and shutdown of the real binary and of the in-process server.

use std::process::Command;

use serde_json::Value;
use tokio::net::TcpStream;

use crate::helpers::spawn_app;

#[test]
fn missing_settings_stop_start_up_with_one_message_naming_each() {
    // An empty directory, so no `.env` is found, and an empty environment.
    let dir = std::env::temp_dir().join(format!("catalogai-no-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_catalogai"))
        .env_clear()
        .env("PORT", "not-a-port")
        .current_dir(&dir)
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in [
        "SUPABASE_URL",
        "SUPABASE_KEY",
        "SUPABASE_SERVICE_ROLE_KEY",
        "GEMINI_API_KEY",
        "PORT",
    ] {
        assert!(stderr.contains(name), "{name} not named in: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish_then_stops_accepting() {
    let mut app = spawn_app().await;
    // Keep the readiness probe's Gemini call busy long enough to shut down under it.
    app.gemini
        .set_faults(gemini_emulator::Faults::with_latency_ms(700));
    let in_flight = tokio::spawn({
        let client = app.client.clone();
        let url = format!("{}/api/readiness", app.address);
        async move { client.get(url).send().await }
    });
    app.gemini.wait_for_in_flight(1).await;

    app.signal_shutdown();

    let response = in_flight.await.unwrap().expect("in-flight request was cut");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    app.stopped().await.expect("server failed");
    assert!(
        TcpStream::connect(app.addr).await.is_err(),
        "still accepting"
    );
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::helpers::spawn_app_with(|vars| {
        vars.insert("HEADER_READ_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    // The server answers 408 or just closes; either way the read ends.
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        slow.read_to_end(&mut buf),
    )
    .await;
    assert!(read.is_ok(), "the connection was still open after 5 s");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    // A well-behaved client is unaffected.
    assert_eq!(app.get("/api/health").await.status(), 200);
}

#[tokio::test]
async fn past_max_connections_new_clients_wait_for_a_free_slot() {
    let app = crate::helpers::spawn_app_with(|vars| {
        vars.insert("MAX_CONNECTIONS".into(), "2".into());
    })
    .await;
    let first = TcpStream::connect(app.addr).await.unwrap();
    let _second = TcpStream::connect(app.addr).await.unwrap();
    // A third client (a fresh connection) is not served while both are held.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let url = format!("{}/api/health", app.address);
    let mut waiting = tokio::spawn(async move { client.get(url).send().await });
    let early = tokio::time::timeout(std::time::Duration::from_millis(500), &mut waiting).await;
    assert!(early.is_err(), "served past the connection limit");
    drop(first);
    let response = tokio::time::timeout(std::time::Duration::from_secs(3), waiting)
        .await
        .expect("not served after a slot freed")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
}
