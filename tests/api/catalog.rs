//! The catalog end to end: create, fetch, list with cursors, search, repair,
//! and tenant isolation, against the real database behind the REST server.

use std::collections::HashSet;

use gemini_emulator::{Fault, FaultRule, Faults};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Tenant, TestApp, create_tenant, gemini_in_flight, insert_items_without_embeddings, rest,
    set_role, spawn_app, spawn_app_with, sql,
};

const ITEMS: &str = "/api/catalog/items";
const SEARCH: &str = "/api/catalog/search";
const REPAIR: &str = "/api/admin/embeddings/check";

async fn create_item(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let response = app.post_json(ITEMS, Some(token), &body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn get_json(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let response = app.get_as(path, token).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn search(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let response = app.post_json(SEARCH, Some(token), &body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn hit_names(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["item_name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_admin_creates_items_that_can_be_fetched_listed_and_found() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let admin = &tenant.admin.token;

    let (status, chair) = create_item(
        &app,
        admin,
        json!({
            "name": "Ergonomic Office Chair", "description": "Adjustable mesh office chair with lumbar support.",
            "category": "Furniture", "vendor": "Herman Miller", "price": 1299.999, "pricing_type": "one_time",
            "product_url": "https://example.com/chair", "sku": "HM-AERON-B", "metadata": {"warranty": "12 years"},
        }),
    )
    .await;
    assert_eq!(status, 201, "{chair}");
    assert_eq!(chair["org_id"], json!(tenant.org_id));
    assert_eq!(chair["created_by"], json!(tenant.admin.id));
    assert_eq!(chair["status"], "active");
    assert_eq!(chair["price"], json!(1300.0));
    assert_eq!(chair["metadata"], json!({"warranty": "12 years"}));
    assert!(chair["replacement_item_id"].is_null());
    for (name, category) in [
        ("Standing Desk", "Furniture"),
        ("Wireless Mouse", "Electronics"),
    ] {
        let (status, body) =
            create_item(&app, admin, json!({ "name": name, "category": category })).await;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(app.gemini.stats().calls_of("batchEmbedContents"), 3);

    // Fetch: the same item, for a requester of the org too.
    let id = chair["id"].as_str().unwrap();
    let (status, fetched) = get_json(&app, &format!("{ITEMS}/{id}"), &tenant.requester.token).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, chair);

    // List: newest first.
    let (status, list) = get_json(&app, ITEMS, &tenant.requester.token).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Wireless Mouse", "Standing Desk", "Ergonomic Office Chair"]
    );
    assert!(list["next_cursor"].is_null());

    // Search: the chair is the best match for a query about chairs.
    let (status, found) = search(
        &app,
        &tenant.requester.token,
        json!({ "query": "office chair", "threshold": 0.0 }),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let hits = found["results"].as_array().unwrap();
    assert_eq!(hits[0]["item_name"], "Ergonomic Office Chair");
    assert_eq!(hits[0]["item_id"], chair["id"]);
    let keys: HashSet<&str> = hits[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from([
            "item_id",
            "item_name",
            "item_description",
            "item_category",
            "item_metadata",
            "item_status",
            "similarity_score"
        ])
    );
    let scores: Vec<f64> = hits
        .iter()
        .map(|h| h["similarity_score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "not best first: {scores:?}"
    );
    assert!(scores[0] > 0.0 && scores[0] <= 1.0 + 1e-9);

    // A high threshold and a limit cut the list.
    let (_, strict) = search(
        &app,
        admin,
        json!({ "query": "office chair", "threshold": 0.99 }),
    )
    .await;
    assert!(strict["results"].as_array().unwrap().is_empty(), "{strict}");
    let (_, one) = search(
        &app,
        admin,
        json!({ "query": "office chair", "threshold": 0.0, "limit": 1 }),
    )
    .await;
    assert_eq!(hit_names(&one), ["Ergonomic Office Chair"]);
}

#[tokio::test]
async fn deprecated_items_are_listed_by_status_and_never_found_by_search() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let admin = &tenant.admin.token;
    let (status, _) = create_item(
        &app,
        admin,
        json!({ "name": "Old Stapler", "status": "deprecated" }),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = create_item(&app, admin, json!({ "name": "New Stapler" })).await;
    assert_eq!(status, 201);

    let (_, deprecated) = get_json(&app, &format!("{ITEMS}?status=deprecated"), admin).await;
    let names: Vec<&str> = deprecated["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Old Stapler"]);
    let (_, found) = search(&app, admin, json!({ "query": "stapler", "threshold": 0.0 })).await;
    assert_eq!(hit_names(&found), ["New Stapler"]);
}

#[tokio::test]
async fn bad_catalog_input_is_400_and_costs_nothing() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let admin = &tenant.admin.token;
    let create_cases = [
        (json!({}), "name is required"),
        (
            json!({ "name": "x".repeat(256) }),
            "name must be at most 255 characters",
        ),
        (
            json!({ "name": "a", "description": "d".repeat(10_001) }),
            "description must be at most 10000 characters",
        ),
        (
            json!({ "name": "a", "category": "c".repeat(101) }),
            "category must be at most 100 characters",
        ),
        (
            json!({ "name": "a", "vendor": "v".repeat(256) }),
            "vendor must be at most 255 characters",
        ),
        (
            json!({ "name": "a", "sku": "s".repeat(101) }),
            "sku must be at most 100 characters",
        ),
        (
            json!({ "name": "a", "product_url": "ftp://example.com" }),
            "product_url must start with http:// or https://",
        ),
        (
            json!({ "name": "a", "price": -1 }),
            "price must be between 0 and 10000000",
        ),
        (
            json!({ "name": "a", "price": "12" }),
            "price must be a number",
        ),
        (
            json!({ "name": "a", "pricing_type": "weekly" }),
            "pricing_type must be one of one_time, monthly, yearly, usage_based",
        ),
        (
            json!({ "name": "a", "status": "gone" }),
            "status must be active or deprecated",
        ),
        (
            json!({ "name": "a", "metadata": [1] }),
            "metadata must be an object",
        ),
        (
            json!({ "name": "a", "metadata": (0..51).map(|i| (format!("k{i}"), json!(i))).collect::<serde_json::Map<_, _>>() }),
            "metadata must have at most 50 keys",
        ),
        (
            json!({ "name": "a", "metadata": { "blob": "x".repeat(70_000) } }),
            "metadata must be at most 65536 bytes",
        ),
    ];
    for (body, message) in create_cases {
        let (status, error) = create_item(&app, admin, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error["error"]["message"], message);
    }
    let search_cases = [
        (json!({}), "query is required"),
        (
            json!({ "query": "x", "threshold": 1.5 }),
            "threshold must be between 0 and 1",
        ),
        (
            json!({ "query": "x", "limit": 0 }),
            "limit must be an integer between 1 and 100",
        ),
        (
            json!({ "query": "x", "limit": 101 }),
            "limit must be an integer between 1 and 100",
        ),
        (
            json!({ "query": "x", "limit": 2.5 }),
            "limit must be an integer between 1 and 100",
        ),
    ];
    for (body, message) in search_cases {
        let (status, error) = search(&app, admin, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error["error"]["message"], message);
    }
    for (query, message) in [
        ("?limit=0", "limit must be an integer between 1 and 1000"),
        ("?limit=1001", "limit must be an integer between 1 and 1000"),
        ("?limit=ten", "limit must be an integer between 1 and 1000"),
        ("?status=gone", "status must be active or deprecated"),
        ("?cursor=bm90LWEtY3Vyc29y", "cursor is invalid"),
    ] {
        let (status, error) = get_json(&app, &format!("{ITEMS}{query}"), admin).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(error["error"]["message"], message);
    }
    let (status, error) = get_json(&app, &format!("{ITEMS}/not-a-uuid"), admin).await;
    assert_eq!(
        (status, error["error"]["message"].as_str()),
        (400, Some("item id must be a UUID"))
    );
    let (status, error) = get_json(&app, &format!("{ITEMS}/{}", Uuid::new_v4()), admin).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );

    assert_eq!(app.gemini.stats().total_calls(), 0);
}

/// The original's SDK, `catalog.create(name=...)` with its defaults, sends
/// empty strings for what it was not given; the original stored the item.
#[tokio::test]
async fn the_sdks_empty_defaults_mean_absent() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let (status, item) = create_item(
        &app,
        &tenant.admin.token,
        json!({
            "name": "  SDK Stapler ",
            "description": "",
            "category": " ",
            "vendor": "",
            "sku": "",
            "product_url": "",
            "metadata": {},
        }),
    )
    .await;
    assert_eq!(status, 201, "{item}");
    assert_eq!(item["name"], "SDK Stapler");
    for field in ["description", "category", "vendor", "sku", "product_url"] {
        assert_eq!(item[field], Value::Null, "{field}: {item}");
    }
    // Blank is absent; a control character is not blank.
    let (status, error) = create_item(
        &app,
        &tenant.admin.token,
        json!({ "name": "x", "description": "\u{85}" }),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(
        error["error"]["message"],
        "description must not contain control characters"
    );
}

#[tokio::test]
async fn an_item_is_not_created_when_its_embedding_fails() {
    let app = spawn_app_with(|env| {
        env.insert("RETRY_MAX_ATTEMPTS".into(), "1".into());
    })
    .await;
    let tenant = create_tenant().await;
    app.gemini
        .set_faults(Faults::with_rules(vec![FaultRule::always(Fault::status(
            503,
        ))]));

    let (status, body) =
        create_item(&app, &tenant.admin.token, json!({ "name": "Doomed Desk" })).await;
    assert_eq!(status, 503, "{body}");

    let (_, list) = get_json(&app, ITEMS, &tenant.admin.token).await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn pages_never_skip_or_repeat_items_while_items_are_added() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let token = &tenant.requester.token;
    // One insert: all 25 share created_at, so the id tie-break is exercised too.
    let seeded: HashSet<Uuid> =
        insert_items_without_embeddings(tenant.org_id, tenant.admin.id, "Paged item", 25)
            .await
            .into_iter()
            .collect();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("{ITEMS}?limit=10&cursor={c}"),
            None => format!("{ITEMS}?limit=10"),
        };
        let (status, page) = get_json(&app, &path, token).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        assert!(pages <= 200, "the cursor never ended");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().parse::<Uuid>().unwrap());
        }
        // Newer items arrive between pages; they belong before the cursor.
        insert_items_without_embeddings(tenant.org_id, tenant.admin.id, "Late item", 2).await;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25, "repeats or extras");
    assert_eq!(seen.iter().copied().collect::<HashSet<_>>(), seeded);
}

#[tokio::test]
async fn repair_embeds_missing_and_stale_items_in_chunks_and_bulk_writes() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let admin = &tenant.admin.token;
    let missing =
        insert_items_without_embeddings(tenant.org_id, tenant.admin.id, "Unembedded", 250).await;
    // Five items embedded by the retired model the original used.
    let stale = insert_items_without_embeddings(tenant.org_id, tenant.admin.id, "Stale", 5).await;
    let zero = format!("[{}]", vec!["0.01"; 768].join(","));
    let rows: Vec<Value> = stale
        .iter()
        .map(|id| json!({ "catalog_item_id": id, "embedding": zero, "model_version": "models/text-embedding-004" }))
        .collect();
    let (status, body) = rest(
        Method::POST,
        "catalog_item_embeddings",
        None,
        &Value::Array(rows),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Two items made through the API already have a current embedding.
    for name in ["Current A", "Current B"] {
        assert_eq!(
            create_item(&app, admin, json!({ "name": name })).await.0,
            201
        );
    }
    app.gemini.reset();

    let response = app.post_json(REPAIR, Some(admin), &json!({})).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(
        report,
        json!({
            "total_items": 257, "items_with_embeddings": 2, "items_without_embeddings": 255,
            "repaired": 255, "failed": 0, "failed_items": [], "complete": true,
        })
    );
    let stats = app.gemini.stats();
    assert_eq!(
        stats.calls_of("batchEmbedContents"),
        3,
        "255 texts in chunks of 100"
    );
    assert_eq!(stats.embedded_texts, 255);

    // Every repaired item now has a current embedding, and search finds them.
    let (_, rows) = rest(
        Method::GET,
        &format!("catalog_item_embeddings?select=catalog_item_id,model_version&model_version=eq.models/gemini-embedding-001&catalog_item_id=in.({})",
            missing.iter().chain(&stale).map(Uuid::to_string).collect::<Vec<_>>().join(",")),
        None,
        &Value::Null,
    )
    .await;
    assert_eq!(rows.as_array().unwrap().len(), 255);
    let (_, found) = search(
        &app,
        admin,
        json!({ "query": "Stale 3", "threshold": 0.0, "limit": 1 }),
    )
    .await;
    assert_eq!(hit_names(&found), ["Stale 3"]);

    // Nothing left to do: a second run calls Gemini not at all.
    app.gemini.reset();
    let report: Value = app
        .post_json(REPAIR, Some(admin), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["items_without_embeddings"], 0);
    assert_eq!(report["repaired"], 0);
    assert_eq!(app.gemini.stats().total_calls(), 0);
}

#[tokio::test]
async fn a_failed_repair_chunk_lists_its_items_and_the_rest_are_repaired() {
    let app = spawn_app_with(|env| {
        env.insert("RETRY_MAX_ATTEMPTS".into(), "1".into());
    })
    .await;
    let tenant = create_tenant().await;
    let admin = &tenant.admin.token;
    let ids: HashSet<Uuid> =
        insert_items_without_embeddings(tenant.org_id, tenant.admin.id, "Item", 150)
            .await
            .into_iter()
            .collect();
    app.gemini.set_faults(Faults::with_rules(vec![
        FaultRule::always(Fault::status(400)).times(1),
    ]));

    let report: Value = app
        .post_json(REPAIR, Some(admin), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let failed: HashSet<Uuid> = report["failed_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().parse().unwrap())
        .collect();
    let failed_count = report["failed"].as_u64().unwrap();
    assert!(failed_count == 100 || failed_count == 50, "{report}");
    assert_eq!(failed.len() as u64, failed_count);
    assert!(failed.is_subset(&ids));
    assert_eq!(report["repaired"].as_u64().unwrap() + failed_count, 150);

    // The failed ones are still waiting; the next run repairs exactly those.
    let report: Value = app
        .post_json(REPAIR, Some(admin), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        report["items_without_embeddings"].as_u64(),
        Some(failed_count)
    );
    assert_eq!(report["repaired"].as_u64(), Some(failed_count));
}

/// Two orgs, each with an item.
async fn two_tenants(app: &TestApp) -> (Tenant, Tenant, Value) {
    let a = create_tenant().await;
    let b = create_tenant().await;
    let (status, item_a) = create_item(
        app,
        &a.admin.token,
        json!({ "name": "Secret Prototype Laptop", "category": "Electronics" }),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = create_item(
        app,
        &b.admin.token,
        json!({ "name": "Plain Laptop Stand", "category": "Electronics" }),
    )
    .await;
    assert_eq!(status, 201);
    (a, b, item_a)
}

#[tokio::test]
async fn no_user_reaches_another_orgs_items_through_the_api() {
    let app = spawn_app().await;
    let (a, b, item_a) = two_tenants(&app).await;
    let id_a = item_a["id"].as_str().unwrap();

    for token in [&b.admin.token, &b.requester.token] {
        let (status, error) = get_json(&app, &format!("{ITEMS}/{id_a}"), token).await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (403, Some("FORBIDDEN"))
        );

        let (_, list) = get_json(&app, ITEMS, token).await;
        let names: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Plain Laptop Stand"]);

        let (_, found) = search(
            &app,
            token,
            json!({ "query": "Secret Prototype Laptop", "threshold": 0.0, "org_id": a.org_id }),
        )
        .await;
        assert_eq!(hit_names(&found), ["Plain Laptop Stand"]);
    }

    // Naming the other org in a create is ignored: the item lands in the caller's org.
    let (status, created) = create_item(
        &app,
        &b.admin.token,
        json!({ "name": "Sneaky Item", "org_id": a.org_id }),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(created["org_id"], json!(b.org_id));
    let (_, list_a) = get_json(&app, ITEMS, &a.admin.token).await;
    assert_eq!(list_a["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn requesters_cannot_create_items_or_run_repair() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let token = &tenant.requester.token;

    let (status, error) = create_item(&app, token, json!({ "name": "Requested Chair" })).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    let response = app.post_json(REPAIR, Some(token), &json!({})).await;
    assert_eq!(response.status(), 403);
    assert_eq!(app.gemini.stats().total_calls(), 0);
}

#[tokio::test]
async fn the_database_refuses_cross_org_access_even_to_direct_rest_calls() {
    let app = spawn_app().await;
    let (a, b, _) = two_tenants(&app).await;
    let vector = format!("[{}]", vec!["0.03"; 768].join(","));

    // The search function ignores the org a user names.
    let (status, hits) = rest(
        Method::POST,
        "rpc/search_catalog_items",
        Some(&b.admin.token),
        &json!({ "query_embedding": vector, "org_uuid": a.org_id, "similarity_threshold": -1.0, "result_limit": 100 }),
    )
    .await;
    assert_eq!(status, 200, "{hits}");
    let names: Vec<&str> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["item_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Plain Laptop Stand"]);

    // The create function refuses another org, another author, and requesters.
    let create = |org: Uuid, by: Uuid| json!({ "p_org_id": org, "p_name": "Injected", "p_description": null, "p_category": null, "p_created_by": by, "p_embedding": vector });
    for (token, body) in [
        (&b.admin.token, create(a.org_id, b.admin.id)),
        (&b.admin.token, create(b.org_id, a.admin.id)),
        (&b.requester.token, create(b.org_id, b.requester.id)),
    ] {
        let (status, error) = rest(
            Method::POST,
            "rpc/create_catalog_item_with_embedding",
            Some(token),
            &body,
        )
        .await;
        // PostgREST answers 42501 with 403; postrust with 401. Either refuses.
        assert!(status == 401 || status == 403, "{status} {error}");
        assert_eq!(error["code"], "42501");
    }
    // Row-level security refuses a plain insert into another org.
    let (status, _) = rest(
        Method::POST,
        "catalog_items",
        Some(&b.admin.token),
        &json!({ "org_id": a.org_id, "name": "Injected", "created_by": b.admin.id }),
    )
    .await;
    assert!(status == 401 || status == 403, "{status}");
    // Repair functions are for the service role only.
    let (status, _) = rest(
        Method::POST,
        "rpc/catalog_items_needing_embedding",
        Some(&a.admin.token),
        &json!({ "p_org_id": a.org_id, "p_model_version": "x" }),
    )
    .await;
    assert!(status == 401 || status == 403, "{status}");
}

/// Metadata at the edges of what JSON, doubles and Unicode allow, stored and
/// then read back every way: a value the server stored must never make a
/// read fail (once, a 309-digit number Postgres printed took the org's list,
/// and then the database breaker, down).
#[tokio::test]
async fn extreme_metadata_is_stored_and_read_back_by_list_get_and_search() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let admin = &tenant.admin.token;

    let mut deep = json!("bottom");
    for _ in 0..31 {
        deep = json!({ "d": deep });
    }
    // Keys from every Unicode plane that has assigned or private-use characters.
    let planes = [
        "a",
        "é",
        "\u{1F600}",
        "\u{20000}",
        "\u{30000}",
        "\u{E0041}",
        "\u{F0000}",
        "\u{10FFFD}",
    ];
    let mut metadata = serde_json::Map::new();
    for (i, key) in planes.iter().enumerate() {
        metadata.insert(format!("{key}{i}"), json!(i));
    }
    for (key, value) in [
        ("max", json!(f64::MAX)),
        ("min", json!(f64::MIN)),
        ("almost_min", json!(-1.797_693_134_862_315_5e308)),
        ("tiny", json!(5e-324)),
        ("neg_tiny", json!(-5e-324)),
        ("min_normal", json!(f64::MIN_POSITIVE)),
        ("u64", json!(u64::MAX)),
        ("i64", json!(i64::MIN)),
        ("long_decimal", json!(0.123_456_789_012_345_68)),
        ("deep", deep),
    ] {
        metadata.insert(key.to_owned(), value);
    }
    let metadata = Value::Object(metadata);

    let (status, item) = create_item(
        &app,
        admin,
        json!({ "name": "Extreme metadata lamp", "category": "Lighting", "metadata": metadata }),
    )
    .await;
    assert_eq!(status, 201, "{item}");
    assert_eq!(item["metadata"], metadata);
    let id = item["id"].as_str().unwrap();

    for _ in 0..3 {
        let (status, list) = get_json(&app, ITEMS, admin).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["items"][0]["metadata"], metadata);
        let (status, one) = get_json(&app, &format!("{ITEMS}/{id}"), &tenant.requester.token).await;
        assert_eq!(status, 200, "{one}");
        assert_eq!(one["metadata"], metadata);
        let (status, found) = search(
            &app,
            admin,
            json!({ "query": "Extreme metadata lamp", "threshold": 0.0 }),
        )
        .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["results"][0]["item_metadata"], metadata);
    }
    let (_, readiness) = get_json(&app, "/api/readiness", admin).await;
    assert_eq!(
        readiness["circuit_breakers"]["database"], "closed",
        "{readiness}"
    );

    // What the database could not hold, or a reader could not read back, is refused up front.
    // 33 levels, where "deep" above sits in a 32-level metadata object.
    let mut too_deep = json!(1);
    for _ in 0..33 {
        too_deep = json!({ "d": too_deep });
    }
    for (case, bad) in [
        ("too deep", too_deep),
        ("NUL in a value", json!({ "a": "x\u{0}y" })),
        ("NUL in a key", json!({ "a\u{0}": 1 })),
    ] {
        let (status, body) = create_item(
            &app,
            admin,
            json!({ "name": "Refused lamp", "metadata": bad }),
        )
        .await;
        assert_eq!(status, 400, "{case}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("metadata"),
            "{case}: {body}"
        );
    }
    let response = app
        .client
        .post(format!("{}{ITEMS}", app.address))
        .bearer_auth(admin)
        .header("content-type", "application/json")
        .body(r#"{"name": "Overflowing lamp", "metadata": {"a": 1e400}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (_, list) = get_json(&app, ITEMS, admin).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "nothing refused was stored"
    );
}

/// Supabase caps every answer at `max_rows` (1,000 by default, as the local
/// stack does too): a page of 1,000 must still say more items remain.
#[tokio::test]
async fn a_thousand_item_page_under_the_row_cap_still_has_a_cursor() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    insert_items_without_embeddings(tenant.org_id, tenant.admin.id, "Capped A", 600).await;
    insert_items_without_embeddings(tenant.org_id, tenant.admin.id, "Capped B", 401).await;

    let mut seen = HashSet::new();
    let mut path = format!("{ITEMS}?limit=1000");
    let mut pages = 0;
    loop {
        let (status, page) = get_json(&app, &path, &tenant.requester.token).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        assert!(pages <= 200, "the cursor never ended");
        for item in page["items"].as_array().unwrap() {
            assert!(
                seen.insert(item["id"].as_str().unwrap().to_owned()),
                "repeated"
            );
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{ITEMS}?limit=1000&cursor={cursor}"),
            None => break,
        }
        assert!(pages < 5);
    }
    assert_eq!(seen.len(), 1001, "items lost at the row cap");
    assert_eq!(pages, 2);
}

#[tokio::test]
async fn a_demoted_admin_loses_service_key_rights_at_once_not_when_the_cache_expires() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let admin = &tenant.admin.token;
    // Cached as admin.
    let (status, me) = get_json(&app, "/api/auth/verify", admin).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("admin")));

    set_role(tenant.org_id, tenant.admin.id, "requester").await;
    // Repair writes with the service key: the role is read again.
    let response = app.post_json(REPAIR, Some(admin), &json!({})).await;
    assert_eq!(response.status(), 403);

    // Another admin, cached, then demoted: creating is refused by the
    // database, which also drops the cached admin role.
    let tenant = create_tenant().await;
    let admin = &tenant.admin.token;
    let (status, me) = get_json(&app, "/api/auth/verify", admin).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("admin")));
    set_role(tenant.org_id, tenant.admin.id, "requester").await;
    let (status, body) = create_item(&app, admin, json!({ "name": "After demotion" })).await;
    assert_eq!(status, 403, "{body}");
    let (_, me) = get_json(&app, "/api/auth/verify", admin).await;
    assert_eq!(
        me["role"], "requester",
        "the refusal dropped the cached role"
    );
}

#[tokio::test]
async fn a_repair_cut_short_by_its_deadline_answers_with_what_it_saved() {
    let app = spawn_app_with(|env| {
        env.insert("REQUEST_TIMEOUT_SECONDS".into(), "3".into());
    })
    .await;
    let tenant = create_tenant().await;
    for part in ["A", "B"] {
        insert_items_without_embeddings(
            tenant.org_id,
            tenant.admin.id,
            &format!("Slow repair {part}"),
            500,
        )
        .await;
    }
    // Ten chunks of 100, four at a time, one second per Gemini call: about
    // two rounds fit in the 3 s deadline, not three.
    app.gemini.set_faults(Faults::with_latency_ms(1000));

    let started = std::time::Instant::now();
    let response = app
        .post_json(REPAIR, Some(&tenant.admin.token), &json!({}))
        .await;
    assert_eq!(response.status(), 200, "the report was not discarded");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let first: Value = response.json().await.unwrap();
    assert_eq!(first["complete"], false, "{first}");
    assert_eq!(first["items_without_embeddings"], 1000);
    let repaired = first["repaired"].as_u64().unwrap();
    assert!((100..1000).contains(&repaired), "{first}");

    // Run again until done: what was saved is not redone.
    let mut total = repaired;
    for _ in 0..5 {
        let next: Value = app
            .post_json(REPAIR, Some(&tenant.admin.token), &json!({}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            next["items_without_embeddings"].as_u64().unwrap(),
            1000 - total,
            "{next}"
        );
        total += next["repaired"].as_u64().unwrap();
        if next["complete"] == true && next["failed"] == 0 {
            break;
        }
    }
    assert_eq!(total, 1000);
}

#[tokio::test]
async fn one_repair_per_org_runs_at_a_time_and_a_second_sees_its_progress() {
    let app = std::sync::Arc::new(spawn_app().await);
    let tenant = create_tenant().await;
    let other = create_tenant().await;
    insert_items_without_embeddings(tenant.org_id, tenant.admin.id, "Busy repair", 300).await;
    app.gemini.set_faults(Faults::with_latency_ms(1000));

    let first = {
        let app = std::sync::Arc::clone(&app);
        let token = tenant.admin.token.clone();
        tokio::spawn(async move {
            app.post_json(REPAIR, Some(&token), &json!({}))
                .await
                .status()
        })
    };
    gemini_in_flight(&app.gemini, 1).await;
    let response = app
        .post_json(REPAIR, Some(&tenant.admin.token), &json!({}))
        .await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "CONFLICT");
    assert_eq!(
        body["error"]["details"]["repair"]["items_to_repair"], 300,
        "{body}"
    );
    // Another org's repair is not held up.
    let response = app
        .post_json(REPAIR, Some(&other.admin.token), &json!({}))
        .await;
    assert_eq!(response.status(), 200);

    assert_eq!(first.await.unwrap(), 200);
    let calls = app.gemini.stats().calls_of("batchEmbedContents");
    assert_eq!(calls, 3, "300 items, 100 per call, paid once");
    let response = app
        .post_json(REPAIR, Some(&tenant.admin.token), &json!({}))
        .await;
    assert_eq!(response.status(), 200, "the slot was freed");
}

#[tokio::test]
async fn search_compares_only_vectors_made_by_the_querys_model() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let admin = &tenant.admin.token;
    let (status, current) = create_item(
        &app,
        admin,
        json!({ "name": "Walnut desk", "category": "Furniture" }),
    )
    .await;
    assert_eq!(status, 201, "{current}");
    // An item the original embedded with its retired model: the same vector,
    // labelled with the other model.
    let old = insert_items_without_embeddings(tenant.org_id, tenant.admin.id, "Old-model desk", 1)
        .await[0];
    let (status, vectors) = rest(
        Method::GET,
        &format!(
            "catalog_item_embeddings?catalog_item_id=eq.{}&select=embedding",
            current["id"].as_str().unwrap()
        ),
        None,
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{vectors}");
    let (status, body) = rest(
        Method::POST,
        "catalog_item_embeddings",
        None,
        &json!({ "catalog_item_id": old, "embedding": vectors[0]["embedding"], "model_version": "models/text-embedding-004" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let query = json!({ "query": "Walnut desk", "threshold": 0.0 });
    let (status, found) = search(&app, admin, query.clone()).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        hit_names(&found),
        ["Walnut desk"],
        "another model's vector was ranked"
    );

    // Repair re-embeds it with the current model; then it is found.
    let response = app.post_json(REPAIR, Some(admin), &json!({})).await;
    assert_eq!(response.status(), 200);
    let (_, found) = search(&app, admin, query).await;
    let names: HashSet<String> = hit_names(&found).into_iter().collect();
    assert_eq!(
        names,
        HashSet::from(["Walnut desk".to_owned(), "Old-model desk 0".to_owned()])
    );
}

#[tokio::test]
async fn repeated_searches_embed_their_query_once_even_when_concurrent() {
    let app = std::sync::Arc::new(
        spawn_app_with(|env| {
            env.insert("RATE_LIMIT_PER_MINUTE".into(), "0".into());
        })
        .await,
    );
    let tenant = create_tenant().await;
    let (status, _) = create_item(
        &app,
        &tenant.admin.token,
        json!({ "name": "Standing desk" }),
    )
    .await;
    assert_eq!(status, 201);
    app.gemini.reset();

    for query in ["standing desk", "  standing   desk ", "standing desk"] {
        let (status, found) =
            search(&app, &tenant.requester.token, json!({ "query": query })).await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(hit_names(&found), ["Standing desk"]);
    }
    assert_eq!(
        app.gemini.stats().calls_of("batchEmbedContents"),
        1,
        "whitespace is not a new query"
    );

    // A hundred identical queries at once, none cached yet: one Gemini call.
    app.gemini.set_faults(Faults::with_latency_ms(300));
    let mut searches = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let app = std::sync::Arc::clone(&app);
        let token = tenant.requester.token.clone();
        searches.spawn(async move {
            search(&app, &token, json!({ "query": "desk for standing" }))
                .await
                .0
        });
    }
    while let Some(status) = searches.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(
        app.gemini.stats().calls_of("batchEmbedContents"),
        2,
        "single flight"
    );
    let readiness: Value = app.get("/api/readiness").await.json().await.unwrap();
    assert!(
        readiness["query_cache"]["entries"].as_u64().unwrap() >= 1,
        "{readiness}"
    );
}

#[tokio::test]
async fn with_gemini_down_cached_searches_still_answer_and_new_ones_get_503() {
    let app = spawn_app_with(|env| {
        env.insert("CIRCUIT_BREAKER_FAIL_MAX".into(), "1".into());
    })
    .await;
    let tenant = create_tenant().await;
    let token = &tenant.requester.token;
    let (status, _) =
        create_item(&app, &tenant.admin.token, json!({ "name": "Monitor arm" })).await;
    assert_eq!(status, 201);
    let (status, _) = search(&app, token, json!({ "query": "monitor arm" })).await;
    assert_eq!(status, 200);

    app.gemini
        .set_faults(Faults::with_rules(vec![FaultRule::always(Fault::status(
            503,
        ))]));
    let (status, body) = search(&app, token, json!({ "query": "ergonomic chair" })).await;
    assert_eq!(status, 503, "{body}");
    // The breaker is open now too: the cached query needs neither.
    let (status, found) = search(&app, token, json!({ "query": "monitor arm" })).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(hit_names(&found), ["Monitor arm"]);
}

#[test]
fn every_foreign_key_is_indexed_so_deleting_items_scans_no_table() {
    crate::helpers::stack_env();
    // A foreign key whose column leads no index makes every delete of a
    // referenced row (an item, an org) scan the referencing table.
    let unindexed = sql(
        "select string_agg(c.conrelid::regclass || '.' || a.attname, ', ')
         from pg_constraint c
         join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
         where c.contype = 'f' and c.connamespace = 'public'::regnamespace
           and not exists (select 1 from pg_index i
                           where i.indrelid = c.conrelid and i.indkey[0] = c.conkey[1])",
    );
    assert_eq!(unindexed, "", "foreign keys without an index");
}

#[tokio::test]
async fn a_large_orgs_search_answers_its_own_items_and_only_those() {
    // Over 10,000 active items puts an org on the large-org branch of
    // search_catalog_items (the k nearest first, the exact scan when they
    // fall short). All but the first of its 12 vectors have near-duplicates
    // in another org: the answer must be the org's 12, and only those.
    // (With 12 embedded items the planner reads them by the org's index,
    // not HNSW; filling HNSW with 10,000 vectors here would take a minute.)
    let app = spawn_app_with(|env| {
        env.insert("RATE_LIMIT_PER_MINUTE".into(), "0".into());
    })
    .await;
    let large = create_tenant().await;
    let crowd = create_tenant().await;
    sql(&format!(
        "insert into catalog_items (org_id, name, created_by)
         select '{}', 'Filler ' || n, '{}' from generate_series(1, 10001) n",
        large.org_id, large.admin.id
    ));
    let texts: Vec<String> = (0..12)
        .map(|i| format!("Crowded walnut desk model {i}"))
        .collect();
    let response = app
        .post_json(
            "/api/embeddings",
            Some(&large.admin.token),
            &json!({ "texts": texts, "task_type": "RETRIEVAL_QUERY" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let embedded: Value = response.json().await.unwrap();
    let values: Vec<String> = texts
        .iter()
        .zip(embedded["embeddings"].as_array().unwrap())
        .map(|(text, vector)| format!("('{text}', '{vector}')"))
        .collect();
    // The copies are near-duplicates, not duplicates: the index stores
    // identical vectors once.
    for (tenant, copies, noise, values) in [
        (&large, 1, 0.0, &values[..]),
        (&crowd, 20, 0.002, &values[1..]),
    ] {
        sql(&format!(
            "with v (name, embedding) as (values {}),
             made as (
                 insert into catalog_items (org_id, name, created_by)
                 select '{}', v.name, '{}' from v, generate_series(1, {copies})
                 returning id, name)
             insert into catalog_item_embeddings (catalog_item_id, embedding, model_version)
             select made.id,
                    (select array_agg(x + {noise} * (random() - 0.5))
                     from unnest(v.embedding::vector::real[]) x where made.id is not null)::vector,
                    'models/gemini-embedding-001'
             from made join v using (name)",
            values.join(", "),
            tenant.org_id,
            tenant.admin.id
        ));
    }

    let (status, found) = search(
        &app,
        &large.requester.token,
        json!({ "query": texts[0], "threshold": 0.0, "limit": 12 }),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let names: HashSet<String> = hit_names(&found).into_iter().collect();
    assert_eq!(names, texts.iter().cloned().collect::<HashSet<_>>());
    assert_eq!(found["results"][0]["item_name"], texts[0].as_str());
    let ids: Vec<String> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| format!("'{}'", hit["item_id"].as_str().unwrap()))
        .collect();
    let own = sql(&format!(
        "select count(*) from catalog_items where org_id = '{}' and id in ({})",
        large.org_id,
        ids.join(", ")
    ));
    assert_eq!(own, "12", "another org's copies were returned");

    sql(&format!(
        "delete from orgs where id in ('{}', '{}')",
        large.org_id, crowd.org_id
    ));
}

#[tokio::test]
async fn deprecated_nearest_items_leave_the_whole_limit_to_active_ones() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let admin = &tenant.admin.token;
    for (name, status) in [
        ("Walnut oak desk", "deprecated"),
        ("Oak walnut desk", "deprecated"),
        ("Walnut desk", "active"),
        ("Oak desk", "active"),
        ("Desk lamp", "active"),
    ] {
        let (status, body) =
            create_item(&app, admin, json!({ "name": name, "status": status })).await;
        assert_eq!(status, 201, "{body}");
    }
    // The two nearest are deprecated: a limit of 2 still gets 2 active items.
    let (status, found) = search(
        &app,
        admin,
        json!({ "query": "walnut oak desk", "threshold": 0.0, "limit": 2 }),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let names: HashSet<String> = hit_names(&found).into_iter().collect();
    assert_eq!(
        names,
        HashSet::from(["Walnut desk".to_owned(), "Oak desk".to_owned()])
    );
}

#[tokio::test]
async fn an_item_moved_to_another_org_is_found_there_and_only_there() {
    let app = spawn_app().await;
    let (from, to) = (create_tenant().await, create_tenant().await);
    let (status, item) = create_item(
        &app,
        &from.admin.token,
        json!({ "name": "Travelling walnut desk" }),
    )
    .await;
    assert_eq!(status, 201, "{item}");
    // Only the service role can move an item between orgs.
    let (status, body) = rest(
        Method::PATCH,
        &format!("catalog_items?id=eq.{}", item["id"].as_str().unwrap()),
        None,
        &json!({ "org_id": to.org_id }),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let query = json!({ "query": "travelling walnut desk", "threshold": 0.0 });
    let (_, found) = search(&app, &to.requester.token, query.clone()).await;
    assert_eq!(hit_names(&found), ["Travelling walnut desk"]);
    let (_, found) = search(&app, &from.requester.token, query).await;
    assert_eq!(hit_names(&found), Vec::<String>::new());
}
