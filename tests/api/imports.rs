//! Bulk imports against the real stack: a file becomes a job, the job is
//! applied in chunks by a server's worker, and its counts, row errors,
//! idempotency, limits, tenancy and fault drills hold.
//!
//! Every test that lets a worker run holds [`WORKER`]: a worker takes any
//! org's queued job, and each test server embeds with its own emulator, so
//! two at once would apply (and count) each other's jobs.

use std::collections::HashMap;
use std::time::Duration;

use gemini_emulator::{Fault, FaultRule, Faults};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};

use crate::helpers::{
    Tenant, TestApp, create_tenant, gemini_in_flight, rest, spawn_app_with, sql, user_token,
};

static WORKER: Mutex<()> = Mutex::const_new(());

/// The right to let a worker run. Jobs still unfinished now were left by a
/// test that failed (every test waits for its own jobs): they go, or this
/// test's worker would apply them with its emulator and count their calls.
async fn worker_alone() -> MutexGuard<'static, ()> {
    let guard = WORKER.lock().await;
    sql("delete from catalog_imports where status in ('queued', 'running', 'paused')");
    guard
}

/// A server whose import worker runs, and the right to run it alone.
async fn app_with_worker(
    customize: impl FnOnce(&mut HashMap<String, String>),
) -> (TestApp, MutexGuard<'static, ()>) {
    let guard = worker_alone().await;
    let app = spawn_app_with(|vars| {
        vars.insert("IMPORT_WORKER".into(), "true".into());
        customize(vars);
    })
    .await;
    (app, guard)
}

/// `POST /api/catalog/imports` with `body` as `content_type`.
async fn upload(
    app: &TestApp,
    token: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
    idempotency_key: Option<&str>,
) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}/api/catalog/imports", app.address))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body);
    if let Some(key) = idempotency_key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.expect("request failed");
    let status = response.status().as_u16();
    (status, response.json().await.expect("not JSON"))
}

/// The job's progress lines (`Accept: application/x-ndjson`), read as they come.
struct Progress {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Progress {
    async fn open(app: &TestApp, token: &str, id: &str) -> Self {
        let response = app
            .client
            .get(format!("{}/api/catalog/imports/{id}", app.address))
            .bearer_auth(token)
            .header("accept", "application/x-ndjson")
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .expect("request failed");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/x-ndjson",
            "a progress stream"
        );
        Self {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next line, or `None` when the stream ended.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).expect("a line is a job"));
            }
            match self.response.chunk().await.expect("stream broke") {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None => return None,
            }
        }
    }

    /// Reads lines until one satisfies `wanted`; panics if the stream ends first.
    async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        while let Some(job) = self.next().await {
            if wanted(&job) {
                return job;
            }
        }
        panic!("the progress stream ended before the job got there");
    }
}

/// Waits (on the progress stream, which ends with the job) for `id` to complete.
async fn completed(app: &TestApp, token: &str, id: &str) -> Value {
    let mut progress = Progress::open(app, token, id).await;
    let mut last = None;
    while let Some(job) = progress.next().await {
        last = Some(job);
    }
    let job = last.expect("no progress line");
    assert_eq!(job["status"], "completed", "{job}");
    job
}

/// A CSV file of `rows` items `SKU-<prefix>-n`, priced `price(n)`.
fn csv_file(prefix: &str, rows: usize, price: impl Fn(usize) -> f64) -> String {
    let mut file = String::from("sku,name,vendor,category,price,description\n");
    for n in 0..rows {
        file.push_str(&format!(
            "SKU-{prefix}-{n},Item {n} of {prefix},Acme,Office,{:.2},\"A thing, number {n}\"\n",
            price(n)
        ));
    }
    file
}

/// `POST /api/catalog/imports` with `Transfer-Encoding: chunked`: `chunk`
/// sent `times`, no length declared. The answer's status.
async fn chunked_upload(app: &TestApp, token: &str, chunk: &str, times: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/catalog/imports HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}\r\n\
         content-type: text/csv\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..times {
        let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        // The server may answer and close before every chunk is sent.
        if stream.write_all(framed.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer}"))
}

fn count(query: &str) -> u64 {
    sql(query).parse().expect("a count")
}

#[tokio::test]
async fn a_csv_file_creates_items_then_updates_them_by_sku() {
    let (app, _worker) = app_with_worker(|_| {}).await;
    let tenant = create_tenant().await;
    let token = &tenant.admin.token;
    // 250 rows (three chunks), two of them bad, one quoted across lines.
    let mut file = csv_file("A", 248, |n| 10.0 + n as f64);
    file.push_str("SKU-A-noname,,Acme,Office,1.00,x\n");
    file.push_str("SKU-A-bad,Bad price,Acme,Office,cheap,x\n");
    file.push_str("SKU-A-ml,\"Two\nlines\",Acme,Office,2.50,x\n");

    let (status, job) = upload(&app, token, "text/csv", file.clone(), None).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["total"], 251);
    assert_eq!(job["failed"], 2, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let job = completed(&app, token, &id).await;
    assert_eq!(
        (
            &job["created"],
            &job["updated"],
            &job["unchanged"],
            &job["failed"],
            &job["processed"]
        ),
        (&json!(249), &json!(0), &json!(0), &json!(2), &json!(251)),
        "{job}"
    );
    assert_eq!(
        job["errors"],
        json!([
            { "line": 250, "field": "name", "message": "name is required" },
            { "line": 251, "field": "price", "message": "price must be a number" },
        ])
    );
    // One batchEmbedContents call per chunk of 100, every vector stored.
    assert_eq!(app.gemini.stats().calls_of("batchEmbedContents"), 3);
    let org = tenant.org_id;
    assert_eq!(
        count(&format!(
            "select count(*) from catalog_items where org_id = '{org}'"
        )),
        249
    );
    assert_eq!(
        count(&format!(
            "select count(*) from catalog_item_embeddings where org_id = '{org}'"
        )),
        249
    );
    assert_eq!(
        sql(&format!(
            "select name from catalog_items where org_id = '{org}' and sku = 'SKU-A-ml'"
        )),
        "Two\nlines"
    );
    // Each created item has its audit event, naming the importer and the job.
    assert_eq!(
        count(&format!(
            "select count(*) from audit_events where org_id = '{org}' and event_type = 'catalog.item.created' \
             and actor_id = '{}' and metadata ->> 'via_import' = '{id}'",
            tenant.admin.id
        )),
        249
    );

    // The same file again: every row matches, nothing changes, nothing is embedded.
    app.gemini.reset();
    let (status, again) = upload(&app, token, "text/csv", file, None).await;
    assert_eq!(status, 202, "{again}");
    let again = completed(&app, token, again["id"].as_str().unwrap()).await;
    assert_eq!(
        (&again["created"], &again["unchanged"]),
        (&json!(0), &json!(249)),
        "{again}"
    );
    assert_eq!(app.gemini.stats().calls_of("batchEmbedContents"), 0);

    // New prices for the first ten rows: updates, counted up and down, no embedding (same text).
    let mut prices = csv_file("A", 10, |n| if n < 5 { 100.0 } else { 1.0 });
    prices.push_str("SKU-A-new,A new item,Acme,Office,3.00,x\n");
    let (_, priced) = upload(&app, token, "text/csv", prices, None).await;
    let priced = completed(&app, token, priced["id"].as_str().unwrap()).await;
    assert_eq!(
        (
            &priced["created"],
            &priced["updated"],
            &priced["price_up"],
            &priced["price_down"]
        ),
        (&json!(1), &json!(10), &json!(5), &json!(5)),
        "{priced}"
    );
    assert_eq!(
        app.gemini.stats().embedded_texts,
        1,
        "only the new item's text"
    );
    assert_eq!(
        sql(&format!(
            "select price from catalog_items where org_id = '{org}' and sku = 'SKU-A-0'"
        )),
        "100.00"
    );
    // Imported items are found by search, as created items are.
    let found = app
        .post_json(
            "/api/catalog/search",
            Some(token),
            &json!({ "query": "Item 7 of A", "threshold": 0, "limit": 100 }),
        )
        .await;
    assert_eq!(found.status(), 200);
    let found: Value = found.json().await.unwrap();
    assert!(
        found["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|hit| hit["item_name"] == "Item 7 of A"),
        "{found}"
    );
}

#[tokio::test]
async fn ndjson_rows_match_by_vendor_and_name_without_a_sku() {
    let (app, _worker) = app_with_worker(|_| {}).await;
    let tenant = create_tenant().await;
    let token = &tenant.admin.token;
    let file = concat!(
        "{\"name\": \"Desk\", \"vendor\": \"Acme\", \"price\": 100}\n",
        "\n",
        "not json\n",
        "[1, 2]\n",
        "{\"name\": \"Desk\", \"vendor\": \"Other\", \"price\": 90}\n",
        "{\"name\": \"Lamp\", \"status\": \"retired\"}\n",
        "{\"name\": \"Desk\", \"vendor\": \"Acme\", \"price\": 120, \"metadata\": {\"colour\": \"oak\"}}",
    );
    let (status, job) = upload(&app, token, "application/x-ndjson", file, None).await;
    assert_eq!(status, 202, "{job}");
    let job = completed(&app, token, job["id"].as_str().unwrap()).await;
    // Line 7 updates what line 1 created (same vendor and name); line 5 is another vendor's.
    assert_eq!(
        (
            &job["total"],
            &job["created"],
            &job["updated"],
            &job["failed"],
            &job["price_up"]
        ),
        (&json!(6), &json!(2), &json!(1), &json!(3), &json!(1)),
        "{job}"
    );
    assert_eq!(
        job["errors"],
        json!([
            { "line": 3, "field": null, "message": "the line is not valid JSON" },
            { "line": 4, "field": null, "message": "the line must be a JSON object" },
            { "line": 6, "field": "status", "message": "status must be active or deprecated" },
        ])
    );
    let org = tenant.org_id;
    assert_eq!(
        sql(&format!(
            "select price || ' ' || (metadata ->> 'colour') from catalog_items \
             where org_id = '{org}' and vendor = 'Acme' and name = 'Desk'"
        )),
        "120.00 oak"
    );
}

#[tokio::test]
async fn the_same_idempotency_key_and_file_give_back_the_same_job() {
    let (app, _worker) = app_with_worker(|_| {}).await;
    let tenant = create_tenant().await;
    let token = &tenant.admin.token;
    let file = csv_file("K", 3, |_| 5.0);
    let (status, first) = upload(&app, token, "text/csv", file.clone(), Some("load-1")).await;
    assert_eq!(status, 202, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();
    completed(&app, token, &id).await;

    let (status, replay) = upload(&app, token, "text/csv", file.clone(), Some("load-1")).await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(replay["id"], id.as_str());
    assert_eq!(replay["created"], 3, "the job as it stands");

    let (status, other) = upload(
        &app,
        token,
        "text/csv",
        csv_file("K", 4, |_| 5.0),
        Some("load-1"),
    )
    .await;
    assert_eq!(status, 409, "{other}");
    assert_eq!(
        other["error"]["message"],
        "this Idempotency-Key was used for an import of a different file or with other options"
    );
    // Another org may use the same key for its own job.
    let other_tenant = create_tenant().await;
    let (status, theirs) = upload(
        &app,
        &other_tenant.admin.token,
        "text/csv",
        file,
        Some("load-1"),
    )
    .await;
    assert_eq!(status, 202, "{theirs}");
    assert_ne!(theirs["id"], id.as_str());
    completed(
        &app,
        &other_tenant.admin.token,
        theirs["id"].as_str().unwrap(),
    )
    .await;
    let org = tenant.org_id;
    assert_eq!(
        count(&format!(
            "select count(*) from catalog_imports where org_id = '{org}'"
        )),
        1
    );
}

#[tokio::test]
async fn a_file_that_cannot_be_read_is_refused_whole_and_nothing_is_kept() {
    let app = spawn_app_with(|vars| {
        vars.insert("IMPORT_MAX_BYTES".into(), "4096".into());
        vars.insert("IMPORT_MAX_ROWS".into(), "20".into());
    })
    .await;
    let tenant = create_tenant().await;
    let token = &tenant.admin.token;
    let cases: [(&str, String, u16, &str); 7] = [
        (
            "application/json",
            "{}".into(),
            415,
            "an import file must be sent as text/csv or application/x-ndjson",
        ),
        (
            "text/csv",
            String::new(),
            400,
            "the file is empty: a CSV import starts with a header row naming its columns",
        ),
        (
            "text/csv",
            "name,colour\nDesk,oak\n".into(),
            400,
            "the header names an unknown column `colour`; columns are name, description, category, status, price, pricing_type, product_url, vendor, sku, metadata",
        ),
        (
            "text/csv",
            "sku,price\nS,1\n".into(),
            400,
            "the header has no `name` column: every item needs a name",
        ),
        (
            "text/csv",
            "name,name\nA,B\n".into(),
            400,
            "the header names the column `name` twice",
        ),
        (
            "text/csv",
            csv_file("L", 21, |_| 1.0),
            413,
            "the file has more than 20 rows (IMPORT_MAX_ROWS)",
        ),
        (
            "text/csv",
            "name\n".to_owned() + &"x\n".repeat(3000),
            413,
            "the file is larger than 4096 bytes (IMPORT_MAX_BYTES)",
        ),
    ];
    for (content_type, body, status, message) in cases {
        let (got, answer) = upload(&app, token, content_type, body, None).await;
        assert_eq!(
            (got, answer["error"]["message"].as_str()),
            (status, Some(message)),
            "{answer}"
        );
    }
    // Sent in chunks, with no length declared up front, the file is
    // refused once what arrived passes the bound.
    assert_eq!(
        chunked_upload(&app, token, &"name\nx\n".repeat(10), 100).await,
        413
    );
    let org = tenant.org_id;
    assert_eq!(
        count(&format!(
            "select count(*) from catalog_imports where org_id = '{org}'"
        )),
        0,
        "refused uploads leave no job"
    );
    assert_eq!(
        count(&format!(
            "select count(*) from catalog_items where org_id = '{org}'"
        )),
        0
    );
}

#[tokio::test]
async fn imports_are_for_the_orgs_admins_through_the_api_and_through_postgrest() {
    let app = spawn_app_with(|_| {}).await;
    let tenant = create_tenant().await;
    let stranger = create_tenant().await;
    // A job of the tenant's, with nothing to apply (its one row is refused).
    let (status, job) = upload(&app, &tenant.admin.token, "text/csv", "name\n\n,\n", None).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap();
    assert_eq!(job["status"], "completed");

    for member in [&tenant.requester.token, &tenant.reviewer.token] {
        let (status, _) = upload(&app, member, "text/csv", "name\nDesk\n", None).await;
        assert_eq!(status, 403);
        assert_eq!(
            app.get_as(&format!("/api/catalog/imports/{id}"), member)
                .await
                .status(),
            403
        );
        assert_eq!(
            app.get_as("/api/catalog/imports", member).await.status(),
            403
        );
    }
    // A signed-in user of no org is refused everywhere, by the API and the database.
    let nobody = user_token(uuid::Uuid::new_v4());
    let (status, _) = upload(&app, &nobody, "text/csv", "name\nDesk\n", None).await;
    assert_eq!(status, 403);
    assert_eq!(
        app.get_as(&format!("/api/catalog/imports/{id}"), &nobody)
            .await
            .status(),
        403
    );
    let (status, rows) = rest(
        Method::GET,
        &format!("catalog_imports?id=eq.{id}"),
        Some(&nobody),
        &Value::Null,
    )
    .await;
    assert_eq!((status, rows), (200, json!([])));
    let (status, refused) = rest(
        Method::POST,
        "rpc/catalog_import_begin",
        Some(&nobody),
        &json!({ "p_format": "csv" }),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("CA403")),
        "{refused}"
    );
    let theirs = app
        .get_as(&format!("/api/catalog/imports/{id}"), &stranger.admin.token)
        .await;
    assert_eq!(
        theirs.status(),
        404,
        "another org's job is not theirs to see"
    );
    let list: Value = app
        .get_as("/api/catalog/imports", &stranger.admin.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["imports"], json!([]));
    let list: Value = app
        .get_as("/api/catalog/imports", &tenant.admin.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["imports"][0]["id"], id);

    // Straight through PostgREST: only the org's admins read its jobs...
    let read = format!("catalog_imports?id=eq.{id}");
    let (status, rows) = rest(Method::GET, &read, Some(&tenant.admin.token), &Value::Null).await;
    assert_eq!((status, rows.as_array().map(Vec::len)), (200, Some(1)));
    for token in [&tenant.requester.token, &stranger.admin.token] {
        let (status, rows) = rest(Method::GET, &read, Some(token), &Value::Null).await;
        assert_eq!((status, rows), (200, json!([])));
    }
    let (status, _) = rest(
        Method::GET,
        &read,
        Some(crate::helpers::public_key()),
        &Value::Null,
    )
    .await;
    assert!(
        matches!(status, 401 | 403),
        "the anon key reads no job: {status}"
    );
    // ...nobody writes them or their rows but through the functions...
    for (path, row) in [
        (
            "catalog_imports",
            json!({ "org_id": tenant.org_id, "created_by": tenant.admin.id, "format": "csv" }),
        ),
        (
            "catalog_import_rows",
            json!({ "import_id": id, "line": 2, "item": {} }),
        ),
    ] {
        let (status, answer) = rest(Method::POST, path, Some(&tenant.admin.token), &row).await;
        assert!(matches!(status, 401 | 403), "{path}: {status} {answer}");
    }
    let (status, answer) = rest(
        Method::PATCH,
        &format!("catalog_imports?id=eq.{id}"),
        Some(&tenant.admin.token),
        &json!({ "created": 1000 }),
    )
    .await;
    assert!(matches!(status, 401 | 403), "{status} {answer}");
    let (status, _) = rest(
        Method::GET,
        "catalog_import_rows",
        Some(&tenant.admin.token),
        &Value::Null,
    )
    .await;
    assert!(
        matches!(status, 401 | 403),
        "staged rows are not readable: {status}"
    );
    // ...the upload functions take the org from the caller and want an admin...
    let (status, refused) = rest(
        Method::POST,
        "rpc/catalog_import_begin",
        Some(&tenant.requester.token),
        &json!({ "p_format": "csv" }),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("CA403")),
        "{refused}"
    );
    // The anon key calls none of them.
    for (function, params) in [
        ("catalog_import_begin", json!({ "p_format": "csv" })),
        (
            "catalog_import_stage",
            json!({ "p_import_id": id, "p_rows": [] }),
        ),
        ("catalog_import_discard", json!({ "p_import_id": id })),
    ] {
        let (status, answer) = rest(
            Method::POST,
            &format!("rpc/{function}"),
            Some(crate::helpers::public_key()),
            &params,
        )
        .await;
        assert!(
            matches!(status, 401 | 403),
            "anon called {function}: {status} {answer}"
        );
    }
    let (status, refused) = rest(
        Method::POST,
        "rpc/catalog_import_stage",
        Some(&stranger.admin.token),
        &json!({ "p_import_id": id, "p_rows": [] }),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("CA404")),
        "another org's upload cannot be written to: {refused}"
    );
    // ...and the worker's functions are the service key's alone.
    for token in [&tenant.admin.token, crate::helpers::public_key()] {
        for (function, params) in [
            (
                "catalog_import_claim",
                json!({ "p_holder": "me", "p_lease_seconds": 60 }),
            ),
            (
                "catalog_import_report",
                json!({ "p_import_id": id, "p_holder": "me", "p_lease_seconds": 0 }),
            ),
            (
                "catalog_import_apply",
                json!({ "p_import_id": id, "p_holder": "me", "p_after": 0, "p_rows": [], "p_model_version": "m", "p_lease_seconds": 60 }),
            ),
        ] {
            let (status, _) = rest(
                Method::POST,
                &format!("rpc/{function}"),
                Some(token),
                &params,
            )
            .await;
            assert!(matches!(status, 401 | 403 | 404), "{function}: {status}");
        }
    }
}

#[tokio::test]
async fn an_upload_holds_at_most_a_million_rows_also_staged_straight_through_postgrest() {
    let tenant = create_tenant().await;
    let token = Some(tenant.admin.token.as_str());
    let id = begin_upload(&tenant).await;
    let stage = |lines: std::ops::RangeInclusive<u32>| {
        let rows: Vec<Value> = lines
            .map(|line| json!({ "line": line, "item": { "name": format!("Row {line}") } }))
            .collect();
        let params = json!({ "p_import_id": id, "p_rows": rows });
        async move { rest(Method::POST, "rpc/catalog_import_stage", token, &params).await }
    };
    let (status, staged) = stage(2..=3).await;
    assert_eq!((status, staged), (200, json!(2)));
    let rows_of_job = format!("select count(*) from catalog_import_rows where import_id = '{id}'");
    let staged_of_job = format!("select staged from catalog_imports where id = '{id}'");
    assert_eq!((count(&rows_of_job), count(&staged_of_job)), (2, 2));
    // Nobody else stages into it: another org's admin, a user of no org,
    // the anon key.
    let stranger = create_tenant().await;
    let nobody = user_token(uuid::Uuid::new_v4());
    let params =
        json!({ "p_import_id": id, "p_rows": [{ "line": 9, "item": { "name": "Theirs" } }] });
    for token in [
        stranger.admin.token.as_str(),
        &nobody,
        crate::helpers::public_key(),
    ] {
        let (status, refused) = rest(
            Method::POST,
            "rpc/catalog_import_stage",
            Some(token),
            &params,
        )
        .await;
        assert!(
            matches!(status, 401 | 403)
                || (status == 400 && matches!(refused["code"].as_str(), Some("CA403" | "CA404"))),
            "{status} {refused}"
        );
    }
    assert_eq!((count(&rows_of_job), count(&staged_of_job)), (2, 2));

    // As if 999,998 more had been staged: two more rows would pass the cap,
    // and the whole batch is refused, nothing of it kept.
    sql(&format!(
        "update catalog_imports set staged = 999999 where id = '{id}'"
    ));
    let (status, refused) = stage(4..=5).await;
    assert!(
        status == 400 && refused["code"] == "CA413",
        "{status} {refused}"
    );
    assert_eq!((count(&rows_of_job), count(&staged_of_job)), (2, 999_999));
    // One more row reaches the cap exactly.
    let (status, staged) = stage(4..=4).await;
    assert_eq!((status, staged), (200, json!(1)));
    assert_eq!((count(&rows_of_job), count(&staged_of_job)), (3, 1_000_000));
    let (status, _) = rest(
        Method::POST,
        "rpc/catalog_import_discard",
        token,
        &json!({ "p_import_id": id }),
    )
    .await;
    assert_eq!(status, 204);
}

/// An upload begun straight through PostgREST by the tenant's admin: its id.
async fn begin_upload(tenant: &Tenant) -> String {
    let token = Some(tenant.admin.token.as_str());
    let (status, begun) = rest(
        Method::POST,
        "rpc/catalog_import_begin",
        token,
        &json!({ "p_format": "csv" }),
    )
    .await;
    assert_eq!(status, 200, "{begun}");
    begun["id"].as_str().unwrap().to_owned()
}

/// An upload kept but not yet applied (no worker runs), made through the
/// database functions as the admin's server would.
async fn queued_job(tenant: &Tenant, rows: usize) -> String {
    let token = Some(tenant.admin.token.as_str());
    let id = begin_upload(tenant).await;
    let staged: Vec<Value> = (1..=rows)
        .map(|line| json!({ "line": line + 1, "item": { "name": format!("Queued {line}"), "status": "active" } }))
        .collect();
    let (status, _) = rest(
        Method::POST,
        "rpc/catalog_import_stage",
        token,
        &json!({ "p_import_id": id, "p_rows": staged }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, sealed) = rest(
        Method::POST,
        "rpc/catalog_import_seal",
        token,
        &json!({ "p_import_id": id, "p_total": rows, "p_failed": 0, "p_errors": [], "p_body_sha256": "0".repeat(64) }),
    )
    .await;
    assert_eq!(
        (status, sealed["status"].as_str()),
        (200, Some("queued")),
        "{sealed}"
    );
    id
}

async fn service_rpc(function: &str, params: Value) -> Value {
    let (status, answer) = rest(Method::POST, &format!("rpc/{function}"), None, &params).await;
    assert_eq!(status, 200, "{function}: {answer}");
    answer
}

/// The job `holder` is handed, or null. Only this test's jobs are
/// unfinished: [`worker_alone`] dropped any left behind, and no other test
/// leaves one queued.
async fn claim(holder: &str) -> Value {
    service_rpc(
        "catalog_import_claim",
        json!({ "p_holder": holder, "p_lease_seconds": 60 }),
    )
    .await
}

/// Gives `job`'s lease up, as a replica that stops does.
async fn release(job: &Value, holder: &str) {
    service_rpc(
        "catalog_import_report",
        json!({ "p_import_id": job["id"], "p_holder": holder, "p_lease_seconds": 0 }),
    )
    .await;
}

#[tokio::test]
async fn the_database_hands_an_orgs_jobs_out_one_at_a_time_and_applies_a_chunk_once() {
    // The worker's calls made by hand, as two replicas would: no server's
    // worker may run meanwhile.
    let _worker = worker_alone().await;
    let tenant = create_tenant().await;
    let first = queued_job(&tenant, 3).await;
    let second = queued_job(&tenant, 1).await;
    let holder = |name: &str| format!("test-{name}-{}", tenant.org_id);
    let ours = claim(&holder("a")).await;
    assert_eq!(ours["id"], first.as_str(), "the org's oldest job first");
    assert_eq!(ours["status"], "running");
    // Replica b gets nothing of this org while a holds its first job.
    let other = claim(&holder("b")).await;
    assert_eq!(other, Value::Null, "{other}");

    let chunk = service_rpc(
        "catalog_import_chunk",
        json!({ "p_import_id": first, "p_holder": holder("a"), "p_after": 0, "p_limit": 2, "p_model_version": "m" }),
    )
    .await;
    assert_eq!(chunk.as_array().map(Vec::len), Some(2));
    let rows: Vec<Value> = chunk
        .as_array()
        .unwrap()
        .iter()
        .map(|row| json!({ "line": row["line"], "item": row["item"] }))
        .collect();
    let apply = json!({
        "p_import_id": first, "p_holder": holder("a"), "p_after": 0,
        "p_rows": rows, "p_model_version": "m", "p_lease_seconds": 60,
    });
    let applied = service_rpc("catalog_import_apply", apply.clone()).await;
    assert_eq!(
        (&applied["created"], &applied["already_applied"]),
        (&json!(2), &json!(false))
    );
    // The same chunk again (its answer lost, say) changes nothing.
    let again = service_rpc("catalog_import_apply", apply).await;
    assert_eq!(
        (&again["created"], &again["already_applied"]),
        (&json!(2), &json!(true))
    );
    // Someone else's lease applies nothing.
    let (status, refused) = rest(
        Method::POST,
        "rpc/catalog_import_apply",
        None,
        &json!({ "p_import_id": first, "p_holder": holder("b"), "p_after": 3, "p_rows": [], "p_model_version": "m", "p_lease_seconds": 60 }),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("CA409")),
        "{refused}"
    );

    // a stops (its lease given up): b resumes the same job where it stopped.
    release(&ours, &holder("a")).await;
    let resumed = claim(&holder("b")).await;
    assert_eq!(
        (&resumed["id"], &resumed["applied_through"]),
        (&json!(first), &json!(3))
    );
    let rest_of_it = service_rpc(
        "catalog_import_chunk",
        json!({ "p_import_id": first, "p_holder": holder("b"), "p_after": 3, "p_limit": 100, "p_model_version": "m" }),
    )
    .await;
    let rows: Vec<Value> = rest_of_it
        .as_array()
        .unwrap()
        .iter()
        .map(|row| json!({ "line": row["line"], "item": row["item"] }))
        .collect();
    assert_eq!(rows.len(), 1);
    let done = service_rpc(
        "catalog_import_apply",
        json!({ "p_import_id": first, "p_holder": holder("b"), "p_after": 3, "p_rows": rows, "p_model_version": "m", "p_lease_seconds": 60 }),
    )
    .await;
    assert_eq!(
        (&done["status"], &done["created"]),
        (&json!("completed"), &json!(3))
    );
    // Now the org's second job is the one handed out.
    let next = claim(&holder("b")).await;
    assert_eq!(next["id"], second.as_str(), "{next}");
    // Leave nothing queued for other tests' workers.
    sql(&format!(
        "delete from catalog_imports where org_id = '{}'",
        tenant.org_id
    ));
}

#[tokio::test]
async fn gemini_down_mid_import_pauses_the_job_and_it_resumes_without_writing_twice() {
    let (app, _worker) = app_with_worker(|vars| {
        vars.insert("RETRY_MAX_ATTEMPTS".into(), "2".into());
        vars.insert("CIRCUIT_BREAKER_TIMEOUT".into(), "1".into());
    })
    .await;
    let tenant = create_tenant().await;
    let token = &tenant.admin.token;
    // Every embedding call fails until the test lets them through.
    app.gemini.set_faults(Faults::with_rules(vec![
        FaultRule::always(Fault::status(503)).for_methods(&["batchEmbedContents"]),
    ]));
    let (status, job) = upload(&app, token, "text/csv", csv_file("G", 150, |_| 2.0), None).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let mut progress = Progress::open(&app, token, &id).await;
    let paused = progress.until(|job| job["status"] == "paused").await;
    assert!(
        paused["paused_reason"]
            .as_str()
            .unwrap()
            .starts_with("Gemini"),
        "{paused}"
    );
    assert_eq!(paused["created"], 0, "nothing written while Gemini is down");
    app.gemini.set_faults(Faults::default());
    let done = progress.until(|job| job["status"] == "completed").await;
    assert_eq!(
        (&done["created"], &done["failed"]),
        (&json!(150), &json!(0)),
        "{done}"
    );
    let org = tenant.org_id;
    assert_eq!(
        count(&format!(
            "select count(*) from catalog_items where org_id = '{org}'"
        )),
        150
    );
    assert_eq!(
        count(&format!(
            "select count(distinct sku) from catalog_items where org_id = '{org}'"
        )),
        150
    );
}

#[tokio::test]
async fn the_rest_server_down_mid_chunk_retries_the_chunk_whole() {
    let (app, _worker) = app_with_worker(|vars| {
        vars.insert("CIRCUIT_BREAKER_TIMEOUT".into(), "1".into());
    })
    .await;
    let tenant = create_tenant().await;
    let token = &tenant.admin.token;
    app.gemini.set_faults(Faults::with_latency_ms(500));
    let (status, job) = upload(&app, token, "text/csv", csv_file("R", 250, |_| 3.0), None).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    // While the first chunk is being embedded, the REST server goes away:
    // the chunk's write cannot get through.
    gemini_in_flight(&app.gemini, 1).await;
    app.rest.break_networking();
    let attempts = app.rest.connections();
    let mut waited = 0;
    while app.rest.connections() < attempts + 3 && waited < 300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(
        app.rest.connections() >= attempts + 3,
        "the worker kept trying"
    );
    app.rest.restore_networking();
    let done = completed(&app, token, &id).await;
    assert_eq!(
        (&done["created"], &done["failed"]),
        (&json!(250), &json!(0)),
        "{done}"
    );
    let org = tenant.org_id;
    assert_eq!(
        count(&format!(
            "select count(*) from catalog_items where org_id = '{org}'"
        )),
        250
    );
    assert_eq!(
        count(&format!(
            "select count(*) from catalog_item_embeddings where org_id = '{org}'"
        )),
        250
    );
}

#[tokio::test]
async fn a_job_left_by_a_stopped_server_is_finished_by_another() {
    let guard = worker_alone().await;
    let tenant = create_tenant().await;
    let token = tenant.admin.token.clone();
    let mut first = spawn_app_with(|vars| {
        vars.insert("IMPORT_WORKER".into(), "true".into());
    })
    .await;
    first.gemini.set_faults(Faults::with_latency_ms(300));
    let (status, job) = upload(
        &first,
        &token,
        "text/csv",
        csv_file("S", 400, |_| 4.0),
        None,
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let mut progress = Progress::open(&first, &token, &id).await;
    progress
        .until(|job| job["processed"].as_u64().unwrap() >= 100)
        .await;
    drop(progress);
    // Stopped mid-job, the server gives its lease up on the way out...
    first.signal_shutdown();
    first.stopped().await.unwrap();
    let left: Value = serde_json::from_str(&sql(&format!(
        "select json_build_object('holder', holder, 'applied', applied_through, 'created', created) \
         from catalog_imports where id = '{id}'"
    )))
    .unwrap();
    assert_eq!(left["holder"], Value::Null, "{left}");
    assert!(left["created"].as_u64().unwrap() < 400, "{left}");
    // ...and the next server resumes from the last committed chunk.
    let second = spawn_app_with(|vars| {
        vars.insert("IMPORT_WORKER".into(), "true".into());
    })
    .await;
    let done = completed(&second, &token, &id).await;
    assert_eq!(done["created"], 400, "{done}");
    let org = tenant.org_id;
    assert_eq!(
        count(&format!(
            "select count(*) from catalog_items where org_id = '{org}'"
        )),
        400
    );
    let embedded_by_both =
        first.gemini.stats().embedded_texts + second.gemini.stats().embedded_texts;
    assert!(
        embedded_by_both <= 500,
        "at most the interrupted chunk embedded twice: {embedded_by_both}"
    );
    drop(guard);
}

/// `POST /api/catalog/imports?{query}` with a CSV `file`.
async fn upload_with(app: &TestApp, token: &str, query: &str, file: &str) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/api/catalog/imports?{query}", app.address))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(file.to_owned())
        .send()
        .await
        .expect("request failed");
    let status = response.status().as_u16();
    (status, response.json().await.expect("not JSON"))
}

#[tokio::test]
async fn mode_proposals_files_the_load_for_review_and_changes_no_item() {
    let (app, _worker) = app_with_worker(|_| {}).await;
    let tenant = create_tenant().await;
    let token = &tenant.admin.token;
    let (_, seeded) = upload(&app, token, "text/csv", csv_file("P", 3, |_| 10.0), None).await;
    completed(&app, token, seeded["id"].as_str().unwrap()).await;
    app.gemini.reset();

    let file = concat!(
        "sku,name,price,status\n",
        "SKU-P-0,Item 0 of P,10.00,\n",      // unchanged
        "SKU-P-1,Item 1 of P,12.50,\n",      // a price rise: REPLACE_ITEM
        "SKU-P-2,Item 2 of P,,deprecated\n", // retired: DEPRECATE_ITEM
        "SKU-P-9,A new item,5,\n",           // ADD_ITEM
    );
    let (status, job) = upload_with(&app, token, "mode=proposals", file).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["mode"], "proposals");
    let job = completed(&app, token, job["id"].as_str().unwrap()).await;
    assert_eq!(
        (
            &job["created"],
            &job["updated"],
            &job["unchanged"],
            &job["price_up"],
            &job["failed"]
        ),
        (&json!(1), &json!(2), &json!(1), &json!(1), &json!(0)),
        "{job}"
    );
    assert_eq!(
        app.gemini.stats().total_calls(),
        0,
        "approval embeds, not the import"
    );
    let org = tenant.org_id;
    assert_eq!(
        sql(&format!(
            "select string_agg(sku || ' ' || price || ' ' || status, ', ' order by sku) \
             from catalog_items where org_id = '{org}'"
        )),
        "SKU-P-0 10.00 active, SKU-P-1 10.00 active, SKU-P-2 10.00 active",
        "the catalog is as it was"
    );
    let proposals: Value = app
        .get_as("/api/proposals?status=pending", &tenant.reviewer.token)
        .await
        .json()
        .await
        .unwrap();
    let mut filed: Vec<String> = proposals["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {} {} {}",
                p["proposal_type"].as_str().unwrap(),
                p["item_sku"].as_str().unwrap_or("-"),
                p["item_price"],
                p["replacing_item_id"].is_string()
            )
        })
        .collect();
    filed.sort();
    assert_eq!(
        filed,
        [
            "ADD_ITEM SKU-P-9 5.0 false",
            "DEPRECATE_ITEM SKU-P-2 10.0 true",
            "REPLACE_ITEM SKU-P-1 12.5 true"
        ]
    );
    // A reviewer approves the load as the workflow does.
    let add = proposals["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["proposal_type"] == "ADD_ITEM")
        .unwrap();
    assert!(
        add["justification"]
            .as_str()
            .unwrap()
            .starts_with("Imported: line 5 of import")
    );
    let approved = app
        .post_json(
            &format!("/api/proposals/{}/approve", add["id"].as_str().unwrap()),
            Some(&tenant.reviewer.token),
            &json!({}),
        )
        .await;
    assert_eq!(approved.status(), 200);
    assert_eq!(
        sql(&format!(
            "select name from catalog_items where org_id = '{org}' and sku = 'SKU-P-9'"
        )),
        "A new item"
    );
}

#[tokio::test]
async fn enrich_missing_fills_what_new_rows_leave_empty_and_the_row_wins() {
    let (app, _worker) = app_with_worker(|_| {}).await;
    let tenant = create_tenant().await;
    let token = &tenant.admin.token;
    let (_, seeded) = upload(
        &app,
        token,
        "text/csv",
        "sku,name\nSKU-E-0,Old item\n",
        None,
    )
    .await;
    completed(&app, token, seeded["id"].as_str().unwrap()).await;
    app.gemini.reset();

    let file = concat!(
        "sku,name,description,metadata\n",
        "SKU-E-0,Old item,,\n",               // matches: not enriched
        "SKU-E-1,Ergonomic office chair,,\n", // filled
        "SKU-E-2,Standing desk,Our own words,\"{\"\"colour\"\": \"\"oak\"\"}\"\n", // the row wins
    );
    let (status, job) = upload_with(&app, token, "enrich=missing", file).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["enrich"], "missing");
    let job = completed(&app, token, job["id"].as_str().unwrap()).await;
    assert_eq!(
        (&job["created"], &job["unchanged"]),
        (&json!(2), &json!(1)),
        "{job}"
    );
    assert_eq!(
        app.gemini.stats().calls_of("generateContent"),
        2,
        "one per new row"
    );
    let org = tenant.org_id;
    let item = |sku: &str| -> Value {
        serde_json::from_str(&sql(&format!(
            "select row_to_json(ci) from catalog_items ci where org_id = '{org}' and sku = '{sku}'"
        )))
        .unwrap()
    };
    let chair = item("SKU-E-1");
    assert!(
        chair["description"].as_str().is_some_and(|d| !d.is_empty()),
        "{chair}"
    );
    assert!(
        chair["category"].as_str().is_some_and(|c| !c.is_empty()),
        "{chair}"
    );
    assert_eq!(chair["metadata"]["ai_enriched"], true, "{chair}");
    assert_eq!(
        chair["name"], "Ergonomic office chair",
        "the key is never filled"
    );
    let desk = item("SKU-E-2");
    assert_eq!(desk["description"], "Our own words");
    assert_eq!(desk["metadata"]["colour"], "oak");
    let old = item("SKU-E-0");
    assert_eq!(
        old["description"],
        Value::Null,
        "a matched row is not enriched"
    );
    // Embedded from the filled-in text.
    assert_eq!(app.gemini.stats().embedded_texts, 2);

    // The same key with other options is another request.
    let (status, _) = upload_with(&app, token, "enrich=missing", "name\nX\n").await;
    assert_eq!(status, 202);
    let once = |query: &'static str| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(format!("{}/api/catalog/imports?{query}", app.address))
                .bearer_auth(token)
                .header("content-type", "text/csv")
                .header("idempotency-key", "options")
                .body("name\n,\n")
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }
    };
    assert_eq!(once("mode=items").await, 202);
    assert_eq!(once("mode=items").await, 200);
    assert_eq!(once("mode=proposals").await, 409);
    // Unknown option values are refused, naming the field.
    let (status, refused) = upload_with(&app, token, "mode=everything", "name\nX\n").await;
    assert_eq!(
        (status, refused["error"]["message"].as_str()),
        (400, Some("mode must be items or proposals"))
    );
    // Wait for the one-row job queued above, so no other test's worker gets it.
    let list: Value = app
        .get_as("/api/catalog/imports?limit=10", token)
        .await
        .json()
        .await
        .unwrap();
    for job in list["imports"].as_array().unwrap() {
        completed(&app, token, job["id"].as_str().unwrap()).await;
    }
}

#[tokio::test]
async fn a_second_row_for_the_same_item_sees_what_the_first_wrote() {
    let (app, _worker) = app_with_worker(|_| {}).await;
    let tenant = create_tenant().await;
    let token = &tenant.admin.token;
    let (_, seeded) = upload(&app, token, "text/csv", "sku,name\nSKU-D,Lamp\n", None).await;
    completed(&app, token, seeded["id"].as_str().unwrap()).await;
    app.gemini.reset();
    // The first row renames the item, the second names it back: the second
    // must be planned against the first's change, or the item would keep
    // the vector of a name it no longer has.
    let (_, job) = upload(
        &app,
        token,
        "text/csv",
        "sku,name\nSKU-D,Desk lamp\nSKU-D,Lamp\n",
        None,
    )
    .await;
    let job = completed(&app, token, job["id"].as_str().unwrap()).await;
    assert_eq!(
        (&job["updated"], &job["failed"]),
        (&json!(2), &json!(0)),
        "{job}"
    );
    assert_eq!(app.gemini.stats().embedded_texts, 2, "each rename embedded");
    // The stored vector is the one the item's text embeds to: an item
    // made afresh with the same text in another org has the same.
    let other = create_tenant().await;
    let (_, fresh) = upload(
        &app,
        &other.admin.token,
        "text/csv",
        "sku,name\nSKU-D,Lamp\n",
        None,
    )
    .await;
    completed(&app, &other.admin.token, fresh["id"].as_str().unwrap()).await;
    assert_eq!(
        sql(&format!(
            "select a.embedding = b.embedding from catalog_item_embeddings a, catalog_item_embeddings b \
             where a.org_id = '{}' and b.org_id = '{}'",
            tenant.org_id, other.org_id
        )),
        "t"
    );
}
