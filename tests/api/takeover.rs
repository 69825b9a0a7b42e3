//! Taking over a database the original service created: `scripts/migrate`
//! recognises it, checks that its shape is the original's final one,
//! records what that shape already equals and applies the rest, keeping the
//! original's data and meaning.

use crate::platform::{FreshProject, migrate, migrate_with, psql, root, stack_secret};

/// Runs `statement` on `url` as the signed-in `user`, as PostgREST would
/// for their token: role `authenticated`, their id in the JWT claims.
fn as_user(url: &str, user: &str, statement: &str) -> Result<String, String> {
    psql(
        url,
        &[
            "-c",
            &format!(
                "set role authenticated; \
                 set request.jwt.claims = '{{\"sub\": \"{user}\", \"role\": \"authenticated\"}}'; {statement}"
            ),
        ],
    )
}

/// A classic-shape project (the original's were made in 2025) holding the
/// original's schema, applied by hand as its setup guide says (our
/// 0001-0004 equal it), then tests/fixtures/original_deployment.sql.
pub(crate) fn original_deployment() -> FreshProject {
    let project = FreshProject::create("classic");
    for file in [
        "0001_core_tables",
        "0002_row_level_security",
        "0003_vector_search",
        "0004_create_item_with_embedding",
    ] {
        let path = root().join(format!("db/migrations/{file}.sql"));
        psql(&project.url, &["-f", path.to_str().unwrap()]).unwrap();
    }
    let fixture = root().join("tests/fixtures/original_deployment.sql");
    psql(&project.url, &["-f", fixture.to_str().unwrap()]).unwrap();
    project
}

#[test]
fn migrate_takes_over_a_database_the_original_created_and_keeps_its_data() {
    let project = original_deployment();
    let db = |query: &str| psql(&project.url, &["-c", query]).unwrap();

    let plan = migrate_with(&project.url, &["--dry-run"]).unwrap();
    assert!(
        plan.contains(
            "created by the original CatalogAI service (Supabase CLI migrations 00001, 00002"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("would apply migrations/0005_hnsw_index"),
        "{plan}"
    );
    assert!(plan.contains("would apply migrations/0017_"), "{plan}");
    assert!(!plan.contains("would apply migrations/0004"), "{plan}");
    assert!(plan.contains("nothing changed"), "{plan}");
    assert_eq!(db("select to_regnamespace('catalogai_meta') is null"), "t");

    let log = migrate(&project.url).unwrap();
    assert!(log.contains("are recorded as already applied"), "{log}");
    assert!(!log.contains("applying migrations/0001"), "{log}");
    let files = std::fs::read_dir(root().join("db/migrations"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "sql")
        })
        .count();
    assert_eq!(
        db("select count(*) from catalogai_meta.schema_migrations"),
        files.to_string()
    );
    let again = migrate(&project.url).unwrap();
    assert!(again.contains("a CatalogAI database"), "{again}");
    assert!(again.contains("(0 applied now)"), "{again}");

    // The original's rows, as they were.
    assert_eq!(
        db(
            "select string_agg(name || ':' || status || ':' || coalesce(replacement_item_id::text, '-'), ' ' order by name) from catalog_items"
        ),
        "New Laptop:active:- Old Laptop:deprecated:0e000000-0000-4000-8000-00000000c002 Team Chat:active:-"
    );
    assert_eq!(
        db("select string_agg(status, ',' order by status) from proposals"),
        "approved,merged,pending,rejected"
    );
    assert_eq!(
        db("select string_agg(status, ',' order by status) from requests"),
        "approved,pending"
    );
    assert_eq!(
        db(
            "select count(*) from audit_events where org_id = '0e000000-0000-4000-8000-000000000001' and event_type in ('proposal_merged', 'request_created')"
        ),
        "2"
    );
    assert_eq!(
        db(
            "select string_agg(distinct model_version, ',') || ' ' || count(*) || ' ' || count(org_id) from catalog_item_embeddings"
        ),
        "models/text-embedding-004 3 3"
    );
    // What the original app calls is still there.
    assert_eq!(
        db(
            "select to_regprocedure('search_catalog_items(vector,uuid,double precision,integer)') is not null"
        ),
        "t"
    );
    // Expanded: the original app's own writes, with the user's token, still work.
    assert_eq!(db("select public.catalogai_cutover_phase()"), "expanded");
    let as_member = |user: &str, statement: &str| as_user(&project.url, user, statement);
    let requester = "0e000000-0000-4000-8000-0000000000a2";
    let reviewer = "0e000000-0000-4000-8000-0000000000a3";
    let original_insert = format!(
        "insert into requests (org_id, created_by, search_query, search_results, justification, status) \
         values ('0e000000-0000-4000-8000-000000000001', '{requester}', 'monitor arm', '[]', 'neck', 'pending')"
    );
    as_member(requester, &original_insert).unwrap();
    as_member(
        reviewer,
        "update requests set status = 'approved', reviewed_by = auth.uid(), review_notes = 'ok', \
         reviewed_at = now() where id = '0e000000-0000-4000-8000-00000000e001'",
    )
    .unwrap();
    // Its row-level security still holds: a requester cannot review.
    let rows = as_member(
        requester,
        "with u as (update requests set status = 'rejected' where search_query = 'monitor arm' returning 1) \
         select count(*) from u",
    )
    .unwrap();
    assert_eq!(rows, "0");

    // A pending proposal the original made is rejected by the port's function, as its reviewer.
    let rejected = as_member(
        reviewer,
        "select reject_proposal('0e000000-0000-4000-8000-00000000f001', 'not now') ->> 'status'",
    )
    .unwrap();
    assert_eq!(rejected, "rejected");

    // Contract: the original's direct writes close; the port's functions serve.
    let finished = migrate_with(&project.url, &["--finish-cutover"]).unwrap();
    assert!(finished.contains("phase: contracted"), "{finished}");
    assert_eq!(db("select public.catalogai_cutover_phase()"), "contracted");
    let refused = as_member(requester, &original_insert).unwrap_err();
    assert!(
        refused.contains("permission denied for table requests"),
        "{refused}"
    );
    let created = as_member(
        requester,
        "select create_request('monitor arm', '[]', 'neck') ->> 'status'",
    )
    .unwrap();
    assert_eq!(created, "pending");
    let again = migrate_with(&project.url, &["--finish-cutover"]).unwrap();
    assert!(again.contains("contracted already"), "{again}");
}

#[test]
fn migrate_refuses_an_original_database_of_another_shape_and_changes_nothing() {
    let project = original_deployment();
    let db = |query: &str| psql(&project.url, &["-c", query]).unwrap();
    db(
        "alter table proposals add column justification text; alter table catalog_items drop column sku",
    );

    for args in [&["--dry-run"][..], &[]] {
        let refused = crate::platform::migrate_with(&project.url, args).unwrap_err();
        assert!(
            refused.contains("missing column catalog_items.sku (text)"),
            "{refused}"
        );
        assert!(
            refused.contains("column proposals.justification is not the original's"),
            "{refused}"
        );
        assert!(refused.contains("nothing was changed"), "{refused}");
    }
    assert_eq!(db("select to_regnamespace('catalogai_meta') is null"), "t");
    assert_eq!(
        db(
            "select count(*) from pg_indexes where indexname = 'idx_catalog_item_embeddings_vector'"
        ),
        "1"
    );
}

/// A REST server of the stack's kind in front of `database`, for as long as
/// it lives: what a project's PostgREST is for the taken-over database.
pub(crate) struct RestServer {
    pub url: String,
    child: std::process::Child,
}

/// Settings that point a server at a bare REST server at `url`, with the
/// legacy keys: no gateway stands in front of it to turn the new-style keys
/// into roles.
pub(crate) fn through_rest_server(vars: &mut std::collections::HashMap<String, String>, url: &str) {
    for name in ["SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY"] {
        vars.remove(name);
    }
    vars.insert("POSTGREST_URL".into(), url.to_owned());
    vars.insert("SUPABASE_KEY".into(), stack_secret("legacy_anon_key"));
    vars.insert(
        "SUPABASE_SERVICE_ROLE_KEY".into(),
        stack_secret("legacy_service_role_key"),
    );
}

impl RestServer {
    pub(crate) async fn start(database: &str) -> Self {
        let tools = std::env::var("CATALOGAI_TOOLS_DIR")
            .unwrap_or_else(|_| format!("{}/.cache/catalogai", std::env::var("HOME").unwrap()));
        let db = reqwest::Url::parse(&crate::helpers::stack_env()["DATABASE_URL"]).unwrap();
        // postrust takes a port number, not a listener: the port is free when
        // asked for, and its health endpoint says when it is serving.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(format!("{tools}/postrust-3.1.0/bin/postrust"))
            .env(
                "PGRST_DB_URI",
                format!(
                    "postgres://authenticator:{}@{}:{}/{database}",
                    stack_secret("authenticator_password"),
                    db.host_str().unwrap(),
                    db.port().unwrap()
                ),
            )
            .env("PGRST_DB_ANON_ROLE", "anon")
            .env("PGRST_DB_SCHEMAS", "public")
            .env("PGRST_DB_EXTRA_SEARCH_PATH", "public,extensions")
            .env("PGRST_JWT_SECRET", stack_secret("jwt_secret"))
            .env(
                "PGRST_JWT_JWKS_URL",
                &crate::helpers::stack_env()["SUPABASE_JWKS_URL"],
            )
            .env("PGRST_SERVER_HOST", "127.0.0.1")
            .env("PGRST_SERVER_PORT", port.to_string())
            .env("PGRST_COMPAT_MODE", "true")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            url: format!("http://127.0.0.1:{port}/api"),
            child,
        };
        let health = format!("http://127.0.0.1:{port}/healthz");
        let client = catalogai::clients::http_client(std::time::Duration::from_secs(2)).unwrap();
        for _ in 0..300 {
            if client
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the REST server for {database} did not come up");
    }
}

impl Drop for RestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The original's requests, proposals and audit events read through the
/// port's API as its own, and a pending proposal the original made is
/// approved by the port.
#[tokio::test]
async fn the_originals_data_reads_and_works_through_the_api() {
    use serde_json::Value;
    let project = original_deployment();
    migrate(&project.url).unwrap();
    let database = project.url.rsplit('/').next().unwrap().to_owned();
    let rest = RestServer::start(&database).await;
    // While expanded, the original's reopened writes are still its members'
    // alone: another org's admin, a user without membership and the public
    // key are refused straight through PostgREST.
    psql(
        &project.url,
        &["-c", "insert into orgs (id, name) values ('0e000000-0000-4000-8000-000000000002', 'Other'); \
          insert into org_memberships (org_id, user_id, role) values \
          ('0e000000-0000-4000-8000-000000000002', '0e000000-0000-4000-8000-0000000000b1', 'admin')"],
    )
    .unwrap();
    let anon_key = stack_secret("legacy_anon_key");
    let client = catalogai::clients::http_client(std::time::Duration::from_secs(10)).unwrap();
    let direct = |method: reqwest::Method, path: &str, bearer: &str, body: serde_json::Value| {
        client
            .request(method, format!("{}/{path}", rest.url))
            .header("apikey", &anon_key)
            .header("Prefer", "return=representation")
            .bearer_auth(bearer)
            .json(&body)
            .send()
    };
    for (who, bearer) in [
        (
            "another org's admin",
            crate::helpers::user_token("0e000000-0000-4000-8000-0000000000b1".parse().unwrap()),
        ),
        (
            "a non-member",
            crate::helpers::user_token(uuid::Uuid::new_v4()),
        ),
        ("the public key", anon_key.clone()),
    ] {
        let insert = direct(
            reqwest::Method::POST,
            "requests",
            &bearer,
            serde_json::json!({
                "org_id": "0e000000-0000-4000-8000-000000000001",
                "created_by": "0e000000-0000-4000-8000-0000000000a2",
                "search_query": "planted", "status": "pending"
            }),
        )
        .await
        .unwrap();
        assert!(
            [401, 403].contains(&insert.status().as_u16()),
            "{who} wrote a request: {}",
            insert.status()
        );
        let update = direct(
            reqwest::Method::PATCH,
            "proposals?id=eq.0e000000-0000-4000-8000-00000000f001",
            &bearer,
            serde_json::json!({ "status": "rejected" }),
        )
        .await
        .unwrap();
        let status = update.status().as_u16();
        let rows: serde_json::Value = update.json().await.unwrap_or_default();
        assert!(
            [401, 403].contains(&status) || rows == serde_json::json!([]),
            "{who} changed a proposal: {status} {rows}"
        );
    }
    assert_eq!(
        psql(
            &project.url,
            &[
                "-c",
                "select count(*) from requests where search_query = 'planted'"
            ]
        )
        .unwrap(),
        "0"
    );

    let url = rest.url.clone();
    let app = crate::helpers::spawn_app_with(move |vars| through_rest_server(vars, &url)).await;
    let token = |id: &str| crate::helpers::user_token(id.parse().unwrap());
    let admin = token("0e000000-0000-4000-8000-0000000000a1");
    let reviewer = token("0e000000-0000-4000-8000-0000000000a3");

    let body: Value = app
        .get_as("/api/requests", &reviewer)
        .await
        .json()
        .await
        .unwrap();
    let mut requests: Vec<(String, String)> = body["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["search_query"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    requests.sort();
    assert_eq!(
        requests,
        [
            ("ergonomic chair".to_owned(), "pending".to_owned()),
            ("video calls".to_owned(), "approved".to_owned())
        ],
        "{body}"
    );
    let body: Value = app
        .get_as("/api/proposals", &reviewer)
        .await
        .json()
        .await
        .unwrap();
    let mut statuses: Vec<&str> = body["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        ["approved", "merged", "pending", "rejected"],
        "{body}"
    );

    let response = app
        .post_json(
            "/api/proposals/0e000000-0000-4000-8000-00000000f001/approve",
            Some(&admin),
            &serde_json::json!({}),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "merged", "{body}");

    let body: Value = app
        .get_as("/api/admin/audit-log", &admin)
        .await
        .json()
        .await
        .unwrap();
    let events: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"proposal_merged"), "{body}");
    assert!(events.contains(&"request_created"), "{body}");
    assert!(events.contains(&"proposal.merged"), "{body}");

    let body: Value = app
        .get_as("/api/catalog/items?status=deprecated", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["items"][0]["name"], "Old Laptop", "{body}");
    assert_eq!(
        body["items"][0]["replacement_item_id"], "0e000000-0000-4000-8000-00000000c002",
        "{body}"
    );
}

/// A takeover run that stops part-way (here a function of the same name
/// as one of ours is in the way of 0008) leaves the original working, and
/// the next run resumes it as a takeover: still expanded, writes still open.
#[test]
fn a_takeover_that_stops_part_way_resumes_with_the_original_still_working() {
    let project = original_deployment();
    let db = |query: &str| psql(&project.url, &["-c", query]).unwrap();
    db(
        "create function public.catalog_item_exists(uuid) returns boolean language sql as 'select true'",
    );
    let original_writes = || {
        as_user(
            &project.url,
            "0e000000-0000-4000-8000-0000000000a2",
            "insert into requests (org_id, created_by, search_query, status) \
             values ('0e000000-0000-4000-8000-000000000001', auth.uid(), 'during the upgrade', 'pending')",
        )
    };

    let stopped = migrate(&project.url).unwrap_err();
    assert!(
        stopped.contains("applying migrations/0008_catalog_port"),
        "{stopped}"
    );
    assert_eq!(db("select phase from catalogai_meta.cutover"), "expanded");
    original_writes().unwrap();

    db("drop function public.catalog_item_exists(uuid)");
    let resumed = migrate(&project.url).unwrap();
    assert!(resumed.contains("a CatalogAI database"), "{resumed}");
    assert!(resumed.contains("migrations/0017_"), "{resumed}");
    assert_eq!(db("select public.catalogai_cutover_phase()"), "expanded");
    original_writes().unwrap();
}
