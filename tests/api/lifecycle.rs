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
