//! The procurement workflow: requests, proposals, their review and merge,
//! request-new-item and the audit log, per role and across tenants, through
//! the API and straight through PostgREST.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Tenant, TestApp, create_tenant, rest, set_role, spawn_app, spawn_app_with, user_token,
};
use gemini_emulator::{Fault, FaultRule, Faults};

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    let response = app.post_json(path, Some(token), &body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let response = app.get_as(path, token).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

async fn new_request(app: &TestApp, tenant: &Tenant) -> Value {
    let (status, request) = post(
        app,
        "/api/requests",
        &tenant.requester.token,
        json!({
            "search_query": "ergonomic chair",
            "search_results": [{"name": "Office Chair", "similarity_score": 0.42, "vendor": "Acme"}],
            "justification": "back pain",
        }),
    )
    .await;
    assert_eq!(status, 201, "{request}");
    request
}

async fn add_proposal(app: &TestApp, tenant: &Tenant, name: &str) -> Value {
    let (status, proposal) = post(
        app,
        "/api/proposals",
        &tenant.reviewer.token,
        json!({
            "proposal_type": "ADD_ITEM",
            "item_name": name,
            "item_category": "Furniture",
            "item_description": "A chair that adjusts in five ways.",
            "item_price": 349.999,
            "item_pricing_type": "one_time",
        }),
    )
    .await;
    assert_eq!(status, 201, "{proposal}");
    proposal
}

fn id(row: &Value) -> &str {
    row["id"].as_str().unwrap()
}

#[tokio::test]
async fn a_request_becomes_a_proposal_then_a_searchable_item_and_every_step_is_audited() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;

    let request = new_request(&app, &tenant).await;
    assert_eq!(request["status"], "pending");
    assert_eq!(request["created_by"], tenant.requester.id.to_string());
    assert_eq!(
        request["search_results"],
        json!([{"name": "Office Chair", "description": "", "category": "",
                "similarity_score": 0.42, "vendor": "Acme"}])
    );

    let (status, list) = get(
        &app,
        "/api/requests?status=pending",
        &tenant.requester.token,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["requests"].as_array().unwrap().len(), 1);
    assert_eq!(list["next_cursor"], Value::Null);

    // Review with a proposal: one transaction.
    let (status, reviewed) = post(
        &app,
        &format!("/api/requests/{}/review", id(&request)),
        &tenant.reviewer.token,
        json!({
            "status": "approved",
            "review_notes": "fine",
            "create_proposal": {
                "proposal_type": "ADD_ITEM",
                "item_name": "ErgoChair Pro",
                "item_category": "Furniture",
                "item_description": "Fully adjustable office chair.",
                "item_product_url": "",
            },
        }),
    )
    .await;
    assert_eq!(status, 200, "{reviewed}");
    assert_eq!(reviewed["status"], "approved");
    assert_eq!(reviewed["reviewed_by"], tenant.reviewer.id.to_string());
    let proposal = &reviewed["proposal"];
    assert_eq!(proposal["status"], "pending");
    assert_eq!(proposal["request_id"], request["id"]);
    assert_eq!(proposal["item_product_url"], Value::Null);

    // Reviewed once only.
    let (status, again) = post(
        &app,
        &format!("/api/requests/{}/review", id(&request)),
        &tenant.admin.token,
        json!({"status": "rejected"}),
    )
    .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(
        message(&again),
        "Only pending requests can be reviewed (current: approved)"
    );

    // Approve with no body at all, as the original allowed.
    let response = app
        .client
        .post(format!(
            "{}/api/proposals/{}/approve",
            app.address,
            id(proposal)
        ))
        .bearer_auth(&tenant.admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let merged: Value = response.json().await.unwrap();
    assert_eq!(merged["status"], "merged");
    assert_eq!(merged["reviewed_by"], tenant.admin.id.to_string());
    assert!(merged["merged_at"].is_string());

    let (status, found) = post(
        &app,
        "/api/catalog/search",
        &tenant.requester.token,
        json!({"query": "ErgoChair Pro", "threshold": 0.0}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found["results"][0]["item_name"], "ErgoChair Pro");

    let (status, log) = get(&app, "/api/admin/audit-log", &tenant.admin.token).await;
    assert_eq!(status, 200, "{log}");
    let mut events: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        // The tenant's set-up: its three memberships.
        .filter(|event| *event != "membership.created")
        .collect();
    events.sort_unstable();
    assert_eq!(
        events,
        [
            "catalog.item.created",
            "proposal.created",
            "proposal.merged",
            "request.approved",
            "request.created"
        ]
    );
    let (_, filtered) = get(
        &app,
        &format!(
            "/api/admin/audit-log?resource_type=proposal&resource_id={}",
            id(proposal)
        ),
        &tenant.admin.token,
    )
    .await;
    assert_eq!(
        filtered["events"].as_array().unwrap().len(),
        2,
        "{filtered}"
    );

    // Requesters and reviewers do not read the audit log.
    for token in [&tenant.requester.token, &tenant.reviewer.token] {
        let (status, body) = get(&app, "/api/admin/audit-log", token).await;
        assert_eq!(status, 403, "{body}");
    }
}

#[tokio::test]
async fn roles_are_enforced_and_requesters_can_ask_for_new_items() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let request = new_request(&app, &tenant).await;
    let proposal = add_proposal(&app, &tenant, "Standing Desk").await;
    let requester = &tenant.requester.token;
    for (path, body) in [
        (
            format!("/api/requests/{}/review", id(&request)),
            json!({"status": "approved"}),
        ),
        (
            "/api/proposals".to_owned(),
            json!({"proposal_type": "ADD_ITEM", "item_name": "x"}),
        ),
        (
            format!("/api/proposals/{}/approve", id(&proposal)),
            json!({}),
        ),
        (
            format!("/api/proposals/{}/reject", id(&proposal)),
            json!({}),
        ),
    ] {
        let (status, body) = post(&app, &path, requester, body).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(message(&body), "Requires role: reviewer, admin", "{path}");
    }

    // The original answered 500 here: its insert policy refused requesters.
    // Its SDK sends every key, empty ones included.
    let (status, asked) = post(
        &app,
        "/api/catalog/request-new-item",
        requester,
        json!({
            "name": "Label Printer",
            "description": "",
            "category": "",
            "metadata": null,
            "justification": "shipping labels",
            "use_ai_enrichment": false,
        }),
    )
    .await;
    assert_eq!(status, 201, "{asked}");
    assert_eq!(asked["message"], "New item request submitted for review");
    assert_eq!(asked["proposal"]["proposal_type"], "ADD_ITEM");
    assert_eq!(
        asked["proposal"]["proposed_by"],
        tenant.requester.id.to_string()
    );
    assert_eq!(asked["proposal"]["justification"], "shipping labels");
    assert_eq!(asked["proposal"]["item_description"], Value::Null);
    assert!(asked.get("ai_enrichment").is_none());

    let (status, body) = post(&app, "/api/catalog/request-new-item", requester, json!({})).await;
    assert_eq!((status, message(&body)), (400, "Item name is required"));

    // With Gemini: what the member gave wins, the rest is filled in.
    let (status, enriched) = post(
        &app,
        "/api/catalog/request-new-item",
        requester,
        json!({"name": "Logitech MX Master 3S", "category": "Peripherals",
               "metadata": {"team": "design"}, "use_ai_enrichment": true}),
    )
    .await;
    assert_eq!(status, 201, "{enriched}");
    let proposal = &enriched["proposal"];
    assert_eq!(proposal["item_name"], "Logitech MX Master 3S");
    assert_eq!(proposal["item_category"], "Peripherals");
    assert!(
        proposal["item_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(proposal["item_metadata"]["team"], "design");
    assert_eq!(proposal["item_metadata"]["ai_enriched"], true);
    assert!(enriched["ai_enrichment"]["confidence"].is_string());

    // A reviewer rejects; once.
    let (status, rejected) = post(
        &app,
        &format!("/api/proposals/{}/reject", proposal["id"].as_str().unwrap()),
        &tenant.reviewer.token,
        json!({"review_notes": "we have one"}),
    )
    .await;
    assert_eq!(
        (status, rejected["status"].as_str()),
        (200, Some("rejected"))
    );
    let (status, again) = post(
        &app,
        &format!(
            "/api/proposals/{}/approve",
            proposal["id"].as_str().unwrap()
        ),
        &tenant.reviewer.token,
        json!({}),
    )
    .await;
    assert_eq!(
        (status, message(&again)),
        (409, "Only pending proposals can be approved")
    );
}

#[tokio::test]
async fn replacing_deprecates_the_old_item_and_other_orgs_items_are_out_of_reach() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let other = create_tenant().await;
    let (status, old) = post(
        &app,
        "/api/catalog/items",
        &tenant.admin.token,
        json!({"name": "Old Stapler", "category": "Office"}),
    )
    .await;
    assert_eq!(status, 201, "{old}");
    let (_, foreign) = post(
        &app,
        "/api/catalog/items",
        &other.admin.token,
        json!({"name": "Their Stapler"}),
    )
    .await;

    // Another org's item cannot be replaced or deprecated.
    for kind in ["ADD_ITEM", "REPLACE_ITEM", "DEPRECATE_ITEM"] {
        let (status, body) = post(
            &app,
            "/api/proposals",
            &tenant.reviewer.token,
            json!({"proposal_type": kind, "item_name": "x", "replacing_item_id": foreign["id"]}),
        )
        .await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(
            message(&body),
            format!(
                "Catalog item not found: {}",
                foreign["id"].as_str().unwrap()
            )
        );
    }
    let (status, body) = post(
        &app,
        "/api/proposals",
        &tenant.reviewer.token,
        json!({"proposal_type": "DEPRECATE_ITEM"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let (status, proposal) = post(
        &app,
        "/api/proposals",
        &tenant.reviewer.token,
        json!({"proposal_type": "REPLACE_ITEM", "item_name": "New Stapler",
               "replacing_item_id": old["id"]}),
    )
    .await;
    assert_eq!(status, 201, "{proposal}");
    let (status, merged) = post(
        &app,
        &format!("/api/proposals/{}/approve", id(&proposal)),
        &tenant.admin.token,
        json!({"review_notes": "newer model"}),
    )
    .await;
    assert_eq!(status, 200, "{merged}");
    let (_, old_now) = get(
        &app,
        &format!("/api/catalog/items/{}", id(&old)),
        &tenant.admin.token,
    )
    .await;
    assert_eq!(old_now["status"], "deprecated");
    let (_, items) = get(
        &app,
        "/api/catalog/items?status=active",
        &tenant.admin.token,
    )
    .await;
    let new_id = items["items"][0]["id"].clone();
    assert_eq!(items["items"][0]["name"], "New Stapler");
    assert_eq!(old_now["replacement_item_id"], new_id);

    // Another org's admin sees none of it and touches none of it.
    let (status, body) = get(
        &app,
        &format!("/api/proposals/{}", id(&proposal)),
        &other.admin.token,
    )
    .await;
    assert_eq!((status, message(&body)), (403, "Access denied to proposal"));
    for action in ["approve", "reject"] {
        let (status, body) = post(
            &app,
            &format!("/api/proposals/{}/{action}", id(&proposal)),
            &other.admin.token,
            json!({}),
        )
        .await;
        assert_eq!(status, 403, "{action}: {body}");
    }
    let (_, theirs) = get(&app, "/api/proposals", &other.admin.token).await;
    assert_eq!(theirs["proposals"], json!([]));
    let (_, log) = get(&app, "/api/admin/audit-log", &other.admin.token).await;
    assert!(
        log["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["org_id"] == other.org_id.to_string()),
        "{log}"
    );

    let missing = Uuid::new_v4();
    let (status, body) = get(
        &app,
        &format!("/api/proposals/{missing}"),
        &tenant.admin.token,
    )
    .await;
    assert_eq!(
        (status, message(&body).to_owned()),
        (404, format!("Proposal not found: {missing}"))
    );
    let (status, body) = get(&app, "/api/requests/not-a-uuid", &tenant.admin.token).await;
    assert_eq!((status, message(&body)), (400, "Invalid request ID format"));
}

#[tokio::test]
async fn twenty_concurrent_approvals_merge_once() {
    let app = std::sync::Arc::new(spawn_app().await);
    let tenant = create_tenant().await;
    let proposal = add_proposal(&app, &tenant, "Contended Chair").await;
    let path = format!("/api/proposals/{}/approve", id(&proposal));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let app = std::sync::Arc::clone(&app);
            let path = path.clone();
            let token = if i % 2 == 0 {
                tenant.admin.token.clone()
            } else {
                tenant.reviewer.token.clone()
            };
            tokio::spawn(async move { post(&app, &path, &token, json!({})).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        if status == 409 {
            assert_eq!(message(&body), "Only pending proposals can be approved");
        }
        statuses.push(status);
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    let (_, items) = get(&app, "/api/catalog/items", &tenant.admin.token).await;
    let named: Vec<&Value> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["name"] == "Contended Chair")
        .collect();
    assert_eq!(named.len(), 1);
}

#[tokio::test]
async fn an_approval_gemini_cannot_embed_writes_nothing_and_succeeds_later() {
    let app = spawn_app_with(|env| {
        env.insert("RETRY_MAX_ATTEMPTS".into(), "1".into());
    })
    .await;
    let tenant = create_tenant().await;
    let proposal = add_proposal(&app, &tenant, "Unlucky Lamp").await;
    app.gemini
        .set_faults(Faults::with_rules(vec![FaultRule::always(Fault::status(
            503,
        ))]));
    let path = format!("/api/proposals/{}/approve", id(&proposal));
    let (status, body) = post(&app, &path, &tenant.admin.token, json!({})).await;
    assert_eq!(status, 503, "{body}");
    let (_, still) = get(
        &app,
        &format!("/api/proposals/{}", id(&proposal)),
        &tenant.admin.token,
    )
    .await;
    assert_eq!(still["status"], "pending");
    let (_, items) = get(&app, "/api/catalog/items", &tenant.admin.token).await;
    assert_eq!(items["items"], json!([]));

    app.gemini.set_faults(Faults::default());
    let (status, merged) = post(&app, &path, &tenant.admin.token, json!({})).await;
    assert_eq!((status, merged["status"].as_str()), (200, Some("merged")));
}

#[tokio::test]
async fn bad_workflow_input_is_400_and_hostile_bodies_never_500() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let requester = &tenant.requester.token;
    for (body, expected) in [
        (json!({}), "search_query is required"),
        (
            json!({"search_query": "x", "search_results": "no"}),
            "search_results must be a list",
        ),
        (
            json!({"search_query": "x", "search_results": [1]}),
            "search_results[0] must be a dictionary",
        ),
        (
            json!({"search_query": "x", "search_results": [{"price": 3}]}),
            "search_results[0] missing required field 'name'",
        ),
        (
            json!({"search_query": "x", "search_results": [{"name": "a", "vendor": {}}]}),
            "search_results[0] vendor must be a string",
        ),
        (
            json!({"search_query": "x", "search_results": [{"name": "a", "sku": "\u{0}"}]}),
            "search_results[0] sku must not contain control characters",
        ),
    ] {
        let (status, answer) = post(&app, "/api/requests", requester, body.clone()).await;
        assert_eq!((status, message(&answer)), (400, expected), "{body}");
    }
    let request = new_request(&app, &tenant).await;
    let review = format!("/api/requests/{}/review", id(&request));
    for (body, expected) in [
        (json!({}), "status is required"),
        (
            json!({"status": "rejected", "create_proposal": {"proposal_type": "ADD_ITEM"}}),
            "item_name is required for ADD_ITEM",
        ),
        (
            json!({"status": "maybe"}),
            "status must be 'approved' or 'rejected'",
        ),
    ] {
        let (status, answer) = post(&app, &review, &tenant.reviewer.token, body).await;
        assert_eq!((status, message(&answer)), (400, expected));
    }
    for (body, expected) in [
        (json!({}), "proposal_type is required"),
        (
            json!({"proposal_type": "MERGE_ITEM"}),
            "Invalid proposal_type. Must be one of: ADD_ITEM, REPLACE_ITEM, DEPRECATE_ITEM",
        ),
        (
            json!({"proposal_type": "ADD_ITEM", "item_name": "x", "replacing_item_id": "nope"}),
            "replacing_item_id must be a UUID",
        ),
        (
            json!({"proposal_type": "ADD_ITEM", "item_name": "x", "item_metadata": [1]}),
            "item_metadata must be an object",
        ),
        (
            json!({"proposal_type": "ADD_ITEM", "item_name": "x", "item_price": -1}),
            "item_price must be between 0 and 10000000",
        ),
        (
            json!({"proposal_type": "ADD_ITEM"}),
            "item_name is required for ADD_ITEM",
        ),
    ] {
        let (status, answer) =
            post(&app, "/api/proposals", &tenant.reviewer.token, body.clone()).await;
        assert_eq!((status, message(&answer)), (400, expected), "{body}");
    }
    for (query, expected) in [
        (
            "?status=lost",
            "status must be one of pending, approved, rejected",
        ),
        ("?created_by=me", "created_by must be a UUID"),
        ("?limit=0", "limit must be an integer between 1 and 1000"),
        ("?cursor=abc", "cursor is invalid"),
    ] {
        let (status, answer) = get(&app, &format!("/api/requests{query}"), requester).await;
        assert_eq!((status, message(&answer)), (400, expected), "{query}");
    }
    let (status, answer) = get(
        &app,
        "/api/admin/audit-log?resource_type=%00x",
        &tenant.admin.token,
    )
    .await;
    assert_eq!(
        (status, message(&answer)),
        (400, "resource_type must not contain control characters")
    );
    let hostile = [
        json!({"search_query": "\u{0}"}),
        json!({"search_query": "x".repeat(5000)}),
        json!({"search_query": "x", "search_results": [{"name": {"deep": [[[[[]]]]]}}]}),
        json!({"proposal_type": "ADD_ITEM", "item_name": "x", "item_metadata": {"k": "\u{0}"}}),
    ];
    for body in hostile {
        for path in [
            "/api/requests",
            "/api/proposals",
            "/api/catalog/request-new-item",
        ] {
            let (status, answer) = post(&app, path, &tenant.admin.token, body.clone()).await;
            assert!(status < 500, "{path} {body}: {status} {answer}");
        }
    }
}

/// Straight through PostgREST, without the server: what the anon key, a
/// requester and another org's admin can do with the workflow's functions
/// and tables.
#[tokio::test]
async fn the_database_enforces_the_workflow_rules_for_direct_calls() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let other = create_tenant().await;
    let proposal = add_proposal(&app, &tenant, "Guarded Desk").await;
    let anon = crate::helpers::public_key().to_owned();
    let merge =
        |reviewer: Uuid| json!({"p_proposal_id": proposal["id"], "p_reviewed_by": reviewer});

    // anon may call none of them.
    for function in [
        "merge_add_item_proposal",
        "reject_proposal",
        "create_request",
        "create_proposal",
        "request_new_item",
        "review_request",
        "procurement_row_exists",
        "write_audit_event",
        "insert_proposal",
        "merge_proposal",
    ] {
        let (status, body) = rest(
            Method::POST,
            &format!("rpc/{function}"),
            Some(&anon),
            &json!({}),
        )
        .await;
        assert!(
            matches!(status, 401 | 403 | 404),
            "anon {function}: {status} {body}"
        );
    }

    // A requester cannot merge, even naming themselves; an admin cannot
    // merge in another's name; another org's admin cannot merge at all, and
    // learns only that no proposal of theirs has that id.
    let (status, body) = rest(
        Method::POST,
        "rpc/merge_add_item_proposal",
        Some(&tenant.requester.token),
        &merge(tenant.requester.id),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("CA403")),
        "{body}"
    );
    let (status, body) = rest(
        Method::POST,
        "rpc/merge_add_item_proposal",
        Some(&tenant.admin.token),
        &merge(tenant.reviewer.id),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("CA403")),
        "{body}"
    );
    let (status, body) = rest(
        Method::POST,
        "rpc/merge_add_item_proposal",
        Some(&other.admin.token),
        &merge(other.admin.id),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("CA404")),
        "{body}"
    );

    // Internal helpers are closed to members too.
    for function in [
        "write_audit_event",
        "insert_proposal",
        "merge_proposal",
        "procurement_row_exists",
    ] {
        let (status, body) = rest(
            Method::POST,
            &format!("rpc/{function}"),
            Some(&tenant.admin.token),
            &json!({}),
        )
        .await;
        assert!(
            matches!(status, 401 | 403 | 404),
            "{function}: {status} {body}"
        );
    }

    // No direct writes that would skip the audit log; no audit reads but an admin's.
    let (status, body) = rest(
        Method::POST,
        "proposals",
        Some(&tenant.reviewer.token),
        &json!({"org_id": tenant.org_id, "proposal_type": "ADD_ITEM",
                "proposed_by": tenant.reviewer.id, "item_name": "sneaky"}),
    )
    .await;
    assert!(matches!(status, 401 | 403), "{status} {body}");
    let (status, body) = rest(
        Method::PATCH,
        &format!("proposals?id=eq.{}", id(&proposal)),
        Some(&tenant.admin.token),
        &json!({"status": "merged"}),
    )
    .await;
    assert!(matches!(status, 401 | 403), "{status} {body}");
    let (status, events) = rest(
        Method::GET,
        "audit_events",
        Some(&tenant.requester.token),
        &Value::Null,
    )
    .await;
    assert_eq!((status, events.clone()), (200, json!([])), "{events}");
    let (status, events) = rest(
        Method::GET,
        "audit_events",
        Some(&user_token(Uuid::new_v4())),
        &Value::Null,
    )
    .await;
    assert_eq!((status, events.clone()), (200, json!([])), "{events}");
    let (_, events) = rest(
        Method::GET,
        "audit_events",
        Some(&tenant.admin.token),
        &Value::Null,
    )
    .await;
    assert!(!events.as_array().unwrap().is_empty());
    let (_, theirs) = rest(
        Method::GET,
        "proposals",
        Some(&other.admin.token),
        &Value::Null,
    )
    .await;
    assert_eq!(theirs, json!([]));

    // After all that, the proposal is still pending and nothing was merged.
    let (_, still) = get(
        &app,
        &format!("/api/proposals/{}", id(&proposal)),
        &tenant.admin.token,
    )
    .await;
    assert_eq!(still["status"], "pending");
}

#[tokio::test]
async fn a_review_whose_proposal_fails_changes_nothing_and_lists_page_by_cursor() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let other = create_tenant().await;
    let (_, foreign) = post(
        &app,
        "/api/catalog/items",
        &other.admin.token,
        json!({"name": "Their Desk"}),
    )
    .await;
    let request = new_request(&app, &tenant).await;
    let (status, body) = post(
        &app,
        &format!("/api/requests/{}/review", id(&request)),
        &tenant.reviewer.token,
        json!({"status": "approved", "create_proposal": {
            "proposal_type": "REPLACE_ITEM", "item_name": "x", "replacing_item_id": foreign["id"]}}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (_, still) = get(
        &app,
        &format!("/api/requests/{}", id(&request)),
        &tenant.requester.token,
    )
    .await;
    assert_eq!(
        still["status"], "pending",
        "review and proposal are one transaction"
    );
    let (_, proposals) = get(&app, "/api/proposals", &tenant.admin.token).await;
    assert_eq!(proposals["proposals"], json!([]));

    // Pages: two more requests, two per page.
    new_request(&app, &tenant).await;
    new_request(&app, &tenant).await;
    let (_, first) = get(&app, "/api/requests?limit=2", &tenant.requester.token).await;
    assert_eq!(first["requests"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = get(
        &app,
        &format!("/api/requests?limit=2&cursor={cursor}"),
        &tenant.requester.token,
    )
    .await;
    assert_eq!(second["requests"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_cursor"], Value::Null);
    let (_, mine) = get(
        &app,
        &format!("/api/requests?created_by={}", tenant.admin.id),
        &tenant.requester.token,
    )
    .await;
    assert_eq!(mine["requests"], json!([]));

    // An item created directly is audited too.
    let (_, log) = get(
        &app,
        "/api/admin/audit-log?event_type=catalog.item.created",
        &other.admin.token,
    )
    .await;
    assert_eq!(log["events"][0]["resource_id"], foreign["id"], "{log}");
    assert_eq!(log["events"][0]["metadata"]["name"], "Their Desk");

    // A user of no organisation reaches none of it.
    let stranger = user_token(Uuid::new_v4());
    for path in ["/api/requests", "/api/proposals", "/api/admin/audit-log"] {
        let (status, body) = get(&app, path, &stranger).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    let (status, _) = post(
        &app,
        "/api/catalog/request-new-item",
        &stranger,
        json!({"name": "x"}),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn every_refusal_says_what_the_original_said() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let other = create_tenant().await;
    let request = new_request(&app, &tenant).await;
    let proposal = add_proposal(&app, &tenant, "Refused Shelf").await;
    let missing = Uuid::new_v4();
    let cases = [
        (
            format!("/api/requests/{}/review", id(&request)),
            json!({"status": "rejected"}),
            403,
            "Cannot review request from different organization".to_owned(),
        ),
        (
            format!("/api/proposals/{}/approve", id(&proposal)),
            json!({}),
            403,
            "Cannot approve proposal from different organization".to_owned(),
        ),
        (
            format!("/api/proposals/{}/reject", id(&proposal)),
            json!({}),
            403,
            "Cannot reject proposal from different organization".to_owned(),
        ),
        (
            format!("/api/requests/{missing}/review"),
            json!({"status": "rejected"}),
            404,
            format!("Request not found: {missing}"),
        ),
        (
            format!("/api/proposals/{missing}/approve"),
            json!({}),
            404,
            format!("Proposal not found: {missing}"),
        ),
        (
            format!("/api/proposals/{missing}/reject"),
            json!({}),
            404,
            format!("Proposal not found: {missing}"),
        ),
        (
            "/api/proposals/not-a-uuid/approve".to_owned(),
            json!({}),
            400,
            "Invalid proposal ID format".to_owned(),
        ),
    ];
    for (path, body, status, expected) in cases {
        let (got, answer) = post(&app, &path, &other.admin.token, body).await;
        assert_eq!(
            (got, message(&answer)),
            (status, expected.as_str()),
            "{path}"
        );
    }
    let (status, body) = get(
        &app,
        &format!("/api/requests/{}", id(&request)),
        &other.admin.token,
    )
    .await;
    assert_eq!((status, message(&body)), (403, "Access denied to request"));
    let (status, body) = get(
        &app,
        &format!("/api/requests/{missing}"),
        &other.admin.token,
    )
    .await;
    assert_eq!(
        (status, message(&body).to_owned()),
        (404, format!("Request not found: {missing}"))
    );

    let reject = format!("/api/proposals/{}/reject", id(&proposal));
    let (status, _) = post(&app, &reject, &tenant.admin.token, json!({})).await;
    assert_eq!(status, 200);
    let (status, body) = post(&app, &reject, &tenant.admin.token, json!({})).await;
    assert_eq!(
        (status, message(&body)),
        (409, "Only pending proposals can be rejected")
    );
}

#[tokio::test]
async fn a_demoted_reviewer_is_refused_by_the_database_and_loses_the_cached_role() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    // Proposing caches the reviewer's role.
    let proposal = add_proposal(&app, &tenant, "Standing desk").await;
    set_role(tenant.org_id, tenant.reviewer.id, "requester").await;

    // The cached role lets the call through to the database, which refuses it.
    let reject = format!("/api/proposals/{}/reject", id(&proposal));
    let (status, body) = post(&app, &reject, &tenant.reviewer.token, json!({})).await;
    assert_eq!(status, 403, "{body}");
    let (_, me) = get(&app, "/api/auth/verify", &tenant.reviewer.token).await;
    assert_eq!(
        me["role"], "requester",
        "the refusal dropped the cached role"
    );

    let (_, after) = get(
        &app,
        &format!("/api/proposals/{}", id(&proposal)),
        &tenant.admin.token,
    )
    .await;
    assert_eq!(after["status"], "pending", "nothing was changed: {after}");
}

#[tokio::test]
async fn an_optional_body_is_absent_only_when_json_says_nothing() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let proposal = add_proposal(&app, &tenant, "Form feed lamp").await;
    let reject = format!("{}/api/proposals/{}/reject", app.address, id(&proposal));
    let send = |body: &'static [u8]| {
        app.client
            .post(&reject)
            .bearer_auth(&tenant.reviewer.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // A form feed is ASCII whitespace but not JSON's: the body is malformed,
    // and nothing is rejected.
    for body in [&b"\x0c"[..], b" \x0c ", b"\x0bnull"] {
        let response = send(body).await.unwrap();
        assert_eq!(response.status(), 400, "{body:?}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(message(&answer), "request body is not valid JSON");
    }
    let (_, still) = get(
        &app,
        &format!("/api/proposals/{}", id(&proposal)),
        &tenant.reviewer.token,
    )
    .await;
    assert_eq!(still["status"], "pending");
    // JSON's own whitespace, or null, is no body at all.
    let response = send(b" \t\r\n null \n").await.unwrap();
    assert_eq!(response.status(), 200);
}
