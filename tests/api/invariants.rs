//! The rules the API enforces, held by the database itself (migration
//! 0020): what a member can store, stamp and hide going straight through
//! PostgREST with their own token, as an attacker holding the public key
//! would, and what the server's own caches keep apart.

use gemini_emulator::{Fault, FaultRule, Faults};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Tenant, create_tenant, rest, spawn_app, spawn_app_with, sql};

/// A refusal by a CHECK constraint: PostgREST's 400 for `23514`.
fn assert_check_violation(status: u16, body: &Value, what: &str) {
    assert_eq!(status, 400, "{what} was stored: {body}");
    assert_eq!(body["code"], "23514", "{what}: {body}");
}

/// A pending ADD_ITEM proposal filed through PostgREST by the reviewer
/// holding `token`, as the database answers it.
async fn pending_proposal(token: &str, fields: Value) -> Value {
    let (status, created) = rest(
        Method::POST,
        "rpc/create_proposal",
        Some(token),
        &json!({ "p_proposal": fields }),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    created
}

/// An item proposal's fields with one field overridden.
fn proposal(field: &str, value: Value) -> Value {
    let mut fields = json!({ "proposal_type": "ADD_ITEM", "item_name": "Desk lamp" });
    fields[field] = value;
    fields
}

#[tokio::test]
async fn stored_json_a_client_cannot_read_back_is_refused_and_the_list_keeps_working() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let requester = &tenant.requester.token;

    let mut nested = json!("deep");
    for _ in 0..120 {
        nested = json!([nested]);
    }
    for (what, results) in [
        (
            "120 nested arrays",
            json!([{ "name": "x", "extra": nested }]),
        ),
        (
            "a result without a name",
            json!([{ "similarity_score": 0.5 }]),
        ),
        ("not an array", json!({ "name": "x" })),
        (
            "101 results",
            Value::Array(
                (0..101)
                    .map(|i| json!({ "name": format!("r{i}") }))
                    .collect(),
            ),
        ),
    ] {
        let body = json!({ "p_search_query": "lamp", "p_search_results": results });
        let (status, answer) =
            rest(Method::POST, "rpc/create_request", Some(requester), &body).await;
        assert_check_violation(status, &answer, what);
    }
    // serde_json cannot even hold 1e400: sent as the text an attacker would.
    let (status, answer) = raw_rpc(
        "rpc/create_request",
        requester,
        r#"{"p_search_query": "lamp", "p_search_results": [{"name": "x", "similarity_score": 1e400}]}"#,
    )
    .await;
    assert_check_violation(status, &answer, "a number past a double");
    let (status, answer) = raw_rpc(
        "rpc/request_new_item",
        requester,
        r#"{"p_proposal": {"proposal_type": "ADD_ITEM", "item_name": "Lamp", "item_metadata": {"n": -1e400}}}"#,
    )
    .await;
    assert_check_violation(status, &answer, "item metadata past a double");

    let response = app.get_as("/api/requests", requester).await;
    assert_eq!(response.status(), 200);
    let response = app.get_as("/api/proposals", requester).await;
    assert_eq!(response.status(), 200);
}

/// A POST to PostgREST with a body as text, for JSON serde_json cannot make.
async fn raw_rpc(path: &str, token: &str, body: &'static str) -> (u16, Value) {
    let env = crate::helpers::stack_env();
    let response = catalogai::clients::http_client(std::time::Duration::from_secs(30))
        .unwrap()
        .post(format!("{}/{path}", env["POSTGREST_URL"]))
        .header("apikey", crate::helpers::public_key())
        .header("content-type", "application/json")
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn workflow_functions_store_nothing_the_api_would_refuse() {
    let tenant = create_tenant().await;
    let requester = &tenant.requester.token;
    let reviewer = &tenant.reviewer.token;
    for (what, field, value) in [
        ("a 300-character name", "item_name", json!("n".repeat(300))),
        (
            "a javascript: URL",
            "item_product_url",
            json!("javascript:alert(document.domain)"),
        ),
        (
            "an ftp:// URL",
            "item_product_url",
            json!("ftp://example.com/x"),
        ),
        ("a negative price", "item_price", json!(-99_999_999.99)),
        ("a price of 20,000,000", "item_price", json!(20_000_000)),
        (
            "metadata that is not an object",
            "item_metadata",
            json!("not-an-object"),
        ),
        (
            "a 20,000-character description",
            "item_description",
            json!("d".repeat(20_000)),
        ),
    ] {
        let (status, body) = rest(
            Method::POST,
            "rpc/request_new_item",
            Some(requester),
            &json!({ "p_proposal": proposal(field, value.clone()) }),
        )
        .await;
        assert_check_violation(status, &body, &format!("request_new_item with {what}"));
        let (status, body) = rest(
            Method::POST,
            "rpc/create_proposal",
            Some(reviewer),
            &json!({ "p_proposal": proposal(field, value) }),
        )
        .await;
        assert_check_violation(status, &body, &format!("create_proposal with {what}"));
    }
    for (what, query, justification) in [
        ("a 100 kB query", "q".repeat(100_000), None),
        (
            "a 1 MB justification",
            "lamp".to_owned(),
            Some("j".repeat(1_000_000)),
        ),
    ] {
        let (status, body) = rest(
            Method::POST,
            "rpc/create_request",
            Some(requester),
            &json!({ "p_search_query": query, "p_search_results": [], "p_justification": justification }),
        )
        .await;
        assert_check_violation(status, &body, &format!("create_request with {what}"));
    }
    let count = sql(&format!(
        "select (select count(*) from proposals where org_id = '{0}') + (select count(*) from requests where org_id = '{0}')",
        tenant.org_id
    ));
    assert_eq!(count, "0", "rows were stored");
}

#[tokio::test]
async fn an_admins_direct_writes_carry_the_admin_and_the_time_of_the_write() {
    let tenant = create_tenant().await;
    let admin = &tenant.admin.token;
    let (status, rows) = rest(
        Method::POST,
        "catalog_items",
        Some(admin),
        &json!({ "org_id": tenant.org_id, "name": "Backdated chair", "created_by": tenant.requester.id,
                 "created_at": "infinity", "updated_at": "-infinity" }),
    )
    .await;
    assert_eq!(status, 201, "{rows}");
    let id = rows[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(rows[0]["created_by"], json!(tenant.admin.id), "{rows}");
    let stamped = sql(&format!(
        "select isfinite(created_at) and isfinite(updated_at) and created_at > now() - interval '1 minute'
         from catalog_items where id = '{id}'"
    ));
    assert_eq!(stamped, "t");

    let (status, rows) = rest(
        Method::PATCH,
        &format!("catalog_items?id=eq.{id}"),
        Some(admin),
        &json!({ "created_by": tenant.reviewer.id, "created_at": "2001-01-01T00:00:00Z", "name": "Renamed chair" }),
    )
    .await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows[0]["created_by"], json!(tenant.admin.id), "{rows}");
    assert_eq!(rows[0]["name"], "Renamed chair");
    assert_ne!(rows[0]["created_at"], "2001-01-01T00:00:00+00:00", "{rows}");

    for (what, body) in [
        (
            "a javascript: URL",
            json!({ "product_url": "javascript:alert(1)" }),
        ),
        ("a negative price", json!({ "price": -1 })),
        ("an empty name", json!({ "name": "" })),
        (
            "metadata of 51 keys",
            json!({ "metadata": (0..51).map(|i| (format!("k{i}"), json!(i))).collect::<serde_json::Map<_, _>>() }),
        ),
    ] {
        let (status, answer) = rest(
            Method::PATCH,
            &format!("catalog_items?id=eq.{id}"),
            Some(admin),
            &body,
        )
        .await;
        assert_check_violation(status, &answer, what);
    }

    // A reviewer's review of a request names the reviewer, not whom they say.
    let (status, request) = rest(
        Method::POST,
        "rpc/create_request",
        Some(&tenant.requester.token),
        &json!({ "p_search_query": "chair", "p_search_results": [] }),
    )
    .await;
    assert_eq!(status, 200, "{request}");
    let request_id = request["id"].as_str().unwrap();
    let (status, reviewed) = rest(
        Method::POST,
        "rpc/review_request",
        Some(&tenant.reviewer.token),
        &json!({ "p_request_id": request_id, "p_status": "rejected", "p_review_notes": "no" }),
    )
    .await;
    assert_eq!(status, 200, "{reviewed}");
    assert_eq!(
        sql(&format!(
            "select reviewed_by from requests where id = '{request_id}'"
        )),
        tenant.reviewer.id.to_string()
    );
}

/// The org's audit events of `event_type`, oldest first, as JSON.
fn audit_events(tenant: &Tenant, event_type: &str) -> Vec<Value> {
    let rows = sql(&format!(
        "select coalesce(json_agg(json_build_object('actor', actor_id, 'resource', resource_id, 'metadata', metadata)
                                  order by created_at, id), '[]')
         from audit_events where org_id = '{}' and event_type = '{event_type}'",
        tenant.org_id
    ));
    serde_json::from_str(&rows).unwrap()
}

#[tokio::test]
async fn direct_item_and_membership_changes_are_audited_with_their_actor() {
    let tenant = create_tenant().await;
    let admin = &tenant.admin.token;
    let (status, rows) = rest(
        Method::POST,
        "catalog_items",
        Some(admin),
        &json!({ "org_id": tenant.org_id, "name": "Audited desk", "created_by": tenant.admin.id }),
    )
    .await;
    assert_eq!(status, 201, "{rows}");
    let id = rows[0]["id"].as_str().unwrap().to_owned();

    let (status, body) = rest(
        Method::PATCH,
        &format!("catalog_items?id=eq.{id}"),
        Some(admin),
        &json!({ "price": 99.5, "vendor": "Acme" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let updated = audit_events(&tenant, "catalog.item.updated");
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert_eq!(updated[0]["actor"], json!(tenant.admin.id));
    assert_eq!(updated[0]["resource"], json!(id));
    assert_eq!(
        updated[0]["metadata"]["changed_fields"],
        json!(["price", "vendor"])
    );

    let (status, body) = rest(
        Method::DELETE,
        &format!("catalog_items?id=eq.{id}"),
        Some(admin),
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let deleted = audit_events(&tenant, "catalog.item.deleted");
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0]["metadata"]["name"], "Audited desk");

    // A role raised to admin, then the member removed.
    let requester = tenant.requester.id;
    let (status, body) = rest(
        Method::PATCH,
        &format!(
            "org_memberships?user_id=eq.{requester}&org_id=eq.{}",
            tenant.org_id
        ),
        Some(admin),
        &json!({ "role": "admin" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let raised = audit_events(&tenant, "membership.updated");
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["actor"], json!(tenant.admin.id));
    assert_eq!(raised[0]["metadata"]["old_role"], "requester");
    assert_eq!(raised[0]["metadata"]["new_role"], "admin");
    let (status, body) = rest(
        Method::DELETE,
        &format!(
            "org_memberships?user_id=eq.{requester}&org_id=eq.{}",
            tenant.org_id
        ),
        Some(admin),
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let removed = audit_events(&tenant, "membership.deleted");
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0]["metadata"]["user_id"], json!(requester));
    // The tenant's own set-up (three members) was recorded too.
    assert_eq!(audit_events(&tenant, "membership.created").len(), 3);
}

#[tokio::test]
async fn a_reviewer_cannot_choose_the_vector_a_merge_stores() {
    let tenant = create_tenant().await;
    let reviewer = &tenant.reviewer.token;
    let created =
        pending_proposal(reviewer, proposal("item_description", json!("Ranks first"))).await;
    let vector = format!("[{}]", vec!["0.036"; 768].join(","));
    let (status, merged) = rest(
        Method::POST,
        "rpc/merge_add_item_proposal",
        Some(reviewer),
        &json!({ "p_proposal_id": created["id"], "p_reviewed_by": tenant.reviewer.id, "p_embedding": vector, "p_model_version": "models/gemini-embedding-001" }),
    )
    .await;
    assert_eq!(status, 200, "{merged}");
    let item = merged["created_item_id"].as_str().unwrap();
    assert_eq!(
        sql(&format!(
            "select count(*) from catalog_item_embeddings where catalog_item_id = '{item}'"
        )),
        "0",
        "the reviewer's own vector was stored"
    );

    // Naming another reviewer is refused; so is the merge's inner function.
    let other = pending_proposal(reviewer, proposal("item_name", json!("Second lamp"))).await;
    let (status, body) = rest(
        Method::POST,
        "rpc/merge_add_item_proposal",
        Some(reviewer),
        &json!({ "p_proposal_id": other["id"], "p_reviewed_by": tenant.admin.id }),
    )
    .await;
    assert_eq!((status, &body["code"]), (400, &json!("CA403")), "{body}");
    let (status, body) = rest(
        Method::POST,
        "rpc/merge_proposal",
        Some(reviewer),
        &json!({ "p_proposal_id": other["id"], "p_reviewed_by": tenant.reviewer.id,
                 "p_embedding": vector, "p_model_version": "x", "p_expected_type": "ADD_ITEM" }),
    )
    .await;
    assert!(
        status == 401 || status == 403 || status == 404,
        "{status} {body}"
    );

    // Another org's reviewer, even with the merge's own id, finds nothing to lock.
    let stranger = create_tenant().await;
    let (status, body) = rest(
        Method::POST,
        "rpc/merge_add_item_proposal",
        Some(&stranger.reviewer.token),
        &json!({ "p_proposal_id": other["id"], "p_reviewed_by": stranger.reviewer.id }),
    )
    .await;
    assert_eq!((status, &body["code"]), (400, &json!("CA404")), "{body}");
    let (status, body) = rest(
        Method::POST,
        "rpc/merge_add_item_proposal",
        Some(&stranger.reviewer.token),
        &json!({ "p_proposal_id": Uuid::new_v4(), "p_reviewed_by": stranger.reviewer.id }),
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (400, &json!("CA404")),
        "an unknown id answers as another org's does: {body}"
    );
}

#[tokio::test]
async fn the_server_approves_with_a_vector_it_made() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let created = pending_proposal(
        &tenant.reviewer.token,
        proposal("item_category", json!("Lighting")),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let response = app
        .post_json(
            &format!("/api/proposals/{id}/approve"),
            Some(&tenant.reviewer.token),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let merged = sql(&format!(
        "select p.reviewed_by || ' ' || e.model_version from proposals p
         join catalog_items ci on ci.org_id = p.org_id and ci.name = p.item_name
         join catalog_item_embeddings e on e.catalog_item_id = ci.id where p.id = '{id}'"
    ));
    assert_eq!(
        merged,
        format!("{} models/gemini-embedding-001", tenant.reviewer.id)
    );
}

#[tokio::test]
async fn one_orgs_cached_search_tells_another_org_nothing() {
    let app = spawn_app_with(|env| {
        env.insert("CIRCUIT_BREAKER_FAIL_MAX".into(), "100".into());
    })
    .await;
    let first = create_tenant().await;
    let second = create_tenant().await;
    let search = |token: String| {
        let app = &app;
        async move {
            app.post_json(
                "/api/catalog/search",
                Some(&token),
                &json!({ "query": "whispered prototype" }),
            )
            .await
            .status()
        }
    };
    assert_eq!(search(first.requester.token.clone()).await, 200);
    app.gemini
        .set_faults(Faults::with_rules(vec![FaultRule::always(Fault::status(
            503,
        ))]));
    assert_eq!(
        search(first.requester.token.clone()).await,
        200,
        "the org's own cache answers"
    );
    assert_eq!(
        search(second.requester.token.clone()).await,
        503,
        "another org's search of the same text was answered from the first org's cache"
    );
}

#[test]
fn old_rows_that_break_a_rule_never_stop_the_upgrade_and_are_named_until_fixed() {
    let project = crate::takeover::original_deployment();
    let db = |query: &str| crate::platform::psql(&project.url, &["-c", query]).unwrap();
    // What the original let through.
    db(
        "update catalog_items set product_url = 'javascript:alert(1)'
        where id = (select id from catalog_items order by id limit 1)",
    );
    db(
        "update requests set search_results = '{\"not\": \"an array\"}'
        where id = (select id from requests order by id limit 1)",
    );

    let log = crate::platform::migrate(&project.url).unwrap();
    for broken in [
        "1 rows of catalog_items break catalogai_item_product_url",
        "1 rows of requests break catalogai_request_search_results",
    ] {
        assert!(log.contains(broken), "{log}");
    }
    let unvalidated = "select string_agg(conname, ',' order by conname) from pg_constraint
                       where conname like 'catalogai\\_%' and not convalidated";
    assert_eq!(
        db(unvalidated),
        "catalogai_item_product_url,catalogai_request_search_results"
    );
    // Not validated, and still holding every new row.
    let refused = crate::platform::psql(
        &project.url,
        &[
            "-c",
            "update catalog_items set product_url = 'ftp://x' where id = (select id from catalog_items order by id desc limit 1)",
        ],
    );
    assert!(refused.is_err_and(|e| e.contains("catalogai_item_product_url")));

    db("update catalog_items set product_url = null where product_url like 'javascript:%'");
    db("update requests set search_results = null where jsonb_typeof(search_results) = 'object'");
    let log = crate::platform::migrate(&project.url).unwrap();
    assert!(!log.contains("break catalogai_"), "{log}");
    assert_eq!(db(unvalidated), "");
}

#[tokio::test]
async fn another_orgs_request_or_proposal_answers_as_unknown_through_postgrest() {
    let owner = create_tenant().await;
    let stranger = create_tenant().await;
    let (status, request) = rest(
        Method::POST,
        "rpc/create_request",
        Some(&owner.requester.token),
        &json!({ "p_search_query": "standing desk", "p_search_results": [] }),
    )
    .await;
    assert_eq!(status, 200, "{request}");
    let created =
        pending_proposal(&owner.reviewer.token, proposal("item_name", json!("Desk"))).await;
    for (function, id, args) in [
        (
            "review_request",
            &request["id"],
            json!({ "p_status": "rejected" }),
        ),
        ("reject_proposal", &created["id"], json!({})),
    ] {
        let key = if function == "review_request" {
            "p_request_id"
        } else {
            "p_proposal_id"
        };
        let mut theirs = args.clone();
        theirs[key] = id.clone();
        let mut unknown = args;
        unknown[key] = json!(Uuid::new_v4());
        let (_, answer_for_theirs) = rest(
            Method::POST,
            &format!("rpc/{function}"),
            Some(&stranger.reviewer.token),
            &theirs,
        )
        .await;
        let (_, answer_for_unknown) = rest(
            Method::POST,
            &format!("rpc/{function}"),
            Some(&stranger.reviewer.token),
            &unknown,
        )
        .await;
        assert_eq!(
            answer_for_theirs["code"], "CA404",
            "{function}: {answer_for_theirs}"
        );
        assert_eq!(
            answer_for_unknown["code"], "CA404",
            "{function}: {answer_for_unknown}"
        );
    }
    // Untouched, and the API still says whose it is.
    assert_eq!(
        sql(&format!(
            "select status from requests where id = '{}'",
            request["id"].as_str().unwrap()
        )),
        "pending"
    );
    let app = spawn_app().await;
    let response = app
        .post_json(
            &format!("/api/proposals/{}/reject", created["id"].as_str().unwrap()),
            Some(&stranger.reviewer.token),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Cannot reject proposal from different organization"
    );
}

#[tokio::test]
async fn a_list_of_the_largest_rows_the_database_allows_pages_within_the_answer_bound() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    // 80 requests of about 500 kB each (the search results' bound is
    // 512 KiB): 40 MB in all. Read 50 to an answer, a page stops adding
    // answers once it weighs 16 MiB.
    sql(&format!(
        "insert into requests (org_id, created_by, search_query, search_results)
         select '{org}', '{user}', 'large request ' || i,
                (select jsonb_agg(jsonb_build_object('name', repeat('n', 1000), 'description', repeat('d', 4000)))
                 from generate_series(1, 100))
         from generate_series(1, 80) i",
        org = tenant.org_id,
        user = tenant.requester.id
    ));
    let mut seen = std::collections::HashSet::new();
    let mut pages = 0;
    let mut path = "/api/requests?limit=1000".to_owned();
    loop {
        let response = app.get_as(&path, &tenant.requester.token).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        pages += 1;
        assert!(pages <= 200, "the cursor never ended");
        let requests = body["requests"].as_array().unwrap();
        assert!(
            requests.len() <= 50,
            "a page of {} large requests",
            requests.len()
        );
        for request in requests {
            assert!(
                seen.insert(request["id"].as_str().unwrap().to_owned()),
                "a request came twice"
            );
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/requests?limit=1000&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 80);
    assert!(pages >= 2, "one page held all 40 MB");
    // The database breaker never saw a failure.
    let readiness: Value = app.get("/api/readiness").await.json().await.unwrap();
    assert_eq!(
        readiness["circuit_breakers"]["database"], "closed",
        "{readiness}"
    );
}
