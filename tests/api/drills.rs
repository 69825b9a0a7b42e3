//! Fault drills: what production does to a service, done on purpose. The
//! REST server vanishing mid-write, Gemini hanging, SIGTERM mid-batch.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use gemini_emulator::{Emulator, EmulatorConfig, Fault, FaultRule, Faults};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::helpers::{
    create_tenant, insert_items_without_embeddings, poll_readiness, rest, spawn_app_with, stack_env,
};

const REPAIR: &str = "/api/admin/embeddings/check";

#[tokio::test]
async fn the_rest_server_vanishing_mid_create_leaves_nothing_behind_and_the_service_recovers() {
    let app = spawn_app_with(|env| {
        env.insert("CIRCUIT_BREAKER_TIMEOUT".into(), "1".into());
    })
    .await;
    let tenant = create_tenant().await;
    let token = tenant.admin.token.clone();
    // Warm the membership cache, so the create's only database call is the write.
    assert_eq!(app.get_as("/api/auth/verify", &token).await.status(), 200);
    app.gemini.set_faults(Faults::with_latency_ms(400));

    let create = tokio::spawn({
        let client = app.client.clone();
        let url = format!("{}/api/catalog/items", app.address);
        let token = token.clone();
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "name": "Half Written Desk" }))
                .send()
                .await
        }
    });
    app.gemini.wait_for_in_flight(1).await;
    app.rest.break_networking();

    let response = create.await.unwrap().unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "DATABASE_ERROR");

    app.rest.restore_networking();
    let (_, rows) = rest(
        Method::GET,
        &format!("catalog_items?select=id&org_id=eq.{}", tenant.org_id),
        None,
        &Value::Null,
    )
    .await;
    assert_eq!(rows, json!([]), "an item was left behind");

    // No restart, no operator: the same request works once the REST server is back.
    app.gemini.set_faults(Faults::default());
    let (status, _, _) = poll_readiness(&app, 200, Duration::from_secs(10)).await;
    assert_eq!(status, 200);
    let response = app
        .post_json(
            "/api/catalog/items",
            Some(&token),
            &json!({ "name": "Whole Desk" }),
        )
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn the_rest_server_vanishing_mid_repair_reports_failed_items_and_a_rerun_finishes() {
    let app = spawn_app_with(|env| {
        env.insert("CIRCUIT_BREAKER_TIMEOUT".into(), "1".into());
        env.insert("RETRY_MAX_ATTEMPTS".into(), "1".into());
    })
    .await;
    let tenant = create_tenant().await;
    let token = tenant.admin.token.clone();
    let items: HashSet<Uuid> =
        insert_items_without_embeddings(tenant.org_id, tenant.admin.id, "Drill item", 600)
            .await
            .into_iter()
            .collect();
    assert_eq!(app.get_as("/api/auth/verify", &token).await.status(), 200);
    app.gemini.set_faults(Faults::with_latency_ms(300));

    let repair = tokio::spawn({
        let client = app.client.clone();
        let url = format!("{}{REPAIR}", app.address);
        let token = token.clone();
        async move { client.post(url).bearer_auth(token).send().await }
    });
    // The first chunks are being embedded: the items were read, no write has happened.
    app.gemini.wait_for_in_flight(1).await;
    app.rest.break_networking();
    let response = repair.await.unwrap().unwrap();
    assert_eq!(
        response.status(),
        200,
        "the service answers with what it could do"
    );
    let report: Value = response.json().await.unwrap();
    let failed: HashSet<Uuid> = report["failed_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().parse().unwrap())
        .collect();
    assert!(!failed.is_empty(), "{report}");
    assert!(failed.is_subset(&items));
    assert_eq!(
        report["repaired"].as_u64().unwrap() + report["failed"].as_u64().unwrap(),
        600
    );

    // Nothing half-written: every item has a whole embedding or none at all.
    app.rest.restore_networking();
    let (_, rows) = rest(
        Method::GET,
        "rpc/catalog_embedding_coverage",
        None,
        &json!({ "p_org_id": tenant.org_id, "p_model_version": "models/gemini-embedding-001" }),
    )
    .await;
    let embedded = rows[0]["items_with_embeddings"].as_u64().unwrap();
    // Every reported repair is in the database; a "failed" write whose answer
    // was lost may be there too, whole: a write is one statement.
    let repaired = report["repaired"].as_u64().unwrap();
    assert!(
        embedded >= repaired && embedded <= 600,
        "{embedded} embedded, {repaired} reported"
    );
    let (_, empty) = rest(
        Method::GET,
        "catalog_item_embeddings?select=id&embedding=is.null",
        None,
        &Value::Null,
    )
    .await;
    assert_eq!(empty, json!([]), "an embedding row without a vector");

    // Recovered by itself: readiness sees the database back at once (its
    // probe goes around the breaker); once the breaker's 1 s cool-down has
    // passed, the next request is its trial, and a rerun finishes the job.
    app.gemini.set_faults(Faults::default());
    let (status, _, _) = poll_readiness(&app, 200, Duration::from_secs(10)).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report: Value = app
        .post_json(REPAIR, Some(&token), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        report["items_without_embeddings"].as_u64(),
        Some(600 - embedded)
    );
    assert_eq!(report["failed"], 0, "{report}");
    let report: Value = app
        .post_json(REPAIR, Some(&token), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["items_with_embeddings"], 600);
}

#[tokio::test]
async fn with_gemini_hanging_every_request_ends_by_its_deadline() {
    let app = spawn_app_with(|env| {
        env.insert("REQUEST_TIMEOUT_SECONDS".into(), "2".into());
        env.insert("GEMINI_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    let tenant = create_tenant().await;
    let token = tenant.admin.token.clone();
    assert_eq!(app.get_as("/api/auth/verify", &token).await.status(), 200);
    app.gemini
        .set_faults(Faults::with_rules(vec![FaultRule::always(Fault::Hang)]));

    let calls = [
        ("/api/products/enrich", json!({ "product_name": "Slack" })),
        (
            "/api/products/enrich-batch",
            json!({ "product_names": ["Slack", "Zoom"] }),
        ),
        ("/api/embeddings", json!({ "texts": ["a", "b"] })),
        ("/api/catalog/search", json!({ "query": "desk" })),
        ("/api/catalog/items", json!({ "name": "Desk" })),
    ];
    let start = Instant::now();
    let requests = calls.iter().map(|(path, body)| {
        let request = app
            .client
            .post(format!("{}{path}", app.address))
            .bearer_auth(&token)
            .json(body);
        async move {
            let response = request.send().await.expect("request hung up");
            let status = response.status().as_u16();
            (
                *path,
                status,
                response.json::<Value>().await.unwrap(),
                start.elapsed(),
            )
        }
    });
    for (path, status, body, took) in futures_util::future::join_all(requests).await {
        assert!(took < Duration::from_millis(2600), "{path} took {took:?}");
        if path == "/api/products/enrich-batch" {
            // The batch answers 200 with each item's failure, as the original did.
            assert_eq!(status, 200);
            let results = body["results"].as_array().unwrap();
            assert!(results.iter().all(|r| r["error"].is_string()), "{body}");
        } else {
            assert!(status == 504 || status == 503, "{path}: {status} {body}");
        }
    }
}

#[tokio::test]
async fn sigterm_during_a_batch_lets_it_finish_refuses_new_connections_and_exits_0() {
    let gemini = Emulator::start(EmulatorConfig::default()).await.unwrap();
    gemini.set_faults(Faults::with_latency_ms(1500));
    let mut env = stack_env().clone();
    // Port 0: the server binds a free port itself and says which in its
    // start-up log, so no port is picked here and raced for.
    env.insert("PORT".into(), "0".into());
    env.insert("HOST".into(), "127.0.0.1".into());
    env.insert("RUST_LOG".into(), "info".into());
    env.insert("GEMINI_BASE_URL".into(), gemini.base_url());
    env.insert("GEMINI_API_KEY".into(), gemini.api_key().to_owned());
    env.insert("SHUTDOWN_GRACE_SECONDS".into(), "10".into());
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_catalogai"))
        .env_clear()
        .envs(&env)
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut log = BufReader::new(server.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = log.next_line().await.unwrap() {
            if line.contains("CatalogAI listening") {
                return listening_port(&line);
            }
        }
        panic!("the server exited before it listened");
    })
    .await
    .expect("the server did not listen within 60 s");
    // Read on, so a full pipe never blocks the server's logging.
    tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
    let address = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let tenant = create_tenant().await;

    let batch = tokio::spawn({
        let client = client.clone();
        let url = format!("{address}/api/products/enrich-batch");
        let token = tenant.admin.token.clone();
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "product_names": ["Slack", "Zoom", "Notion"] }))
                .send()
                .await
        }
    });
    gemini.wait_for_in_flight(3).await;
    let pid = server.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let signalled = Instant::now();

    // New connections are refused soon after the signal.
    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "still accepting connections after SIGTERM");

    let response = batch.await.unwrap().expect("the batch was cut");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r.get("error").is_none()), "{body}");

    let status = tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .expect("did not exit within the drain time")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(10));
}

/// The port in the server's `CatalogAI listening` line (`address=127.0.0.1:PORT`,
/// or the JSON log's `"address":"127.0.0.1:PORT"`).
fn listening_port(line: &str) -> u16 {
    let (_, after) = line
        .rsplit_once("127.0.0.1:")
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no port in {line:?}"))
}
