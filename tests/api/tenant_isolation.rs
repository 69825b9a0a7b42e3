//! Tenant isolation in the database itself: what anyone holding the public
//! key, a member of another org, or a user with memberships in two orgs can
//! do straight through PostgREST, without our server in the way.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Tenant, create_tenant, rest, spawn_app, sql, user_token};

/// An item with an embedding in `tenant`'s org, made through the app.
async fn item_with_embedding(tenant: &Tenant) -> Uuid {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/catalog/items",
            Some(&tenant.admin.token),
            &json!({ "name": "Secret prototype", "description": "Not for other tenants" }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().parse().unwrap()
}

/// The public (anon) key as the bearer: what a browser holding it can do.
fn anon() -> String {
    crate::helpers::public_key().to_owned()
}

#[tokio::test]
async fn the_public_key_reads_no_vectors_and_calls_no_function() {
    let victim = create_tenant().await;
    let item = item_with_embedding(&victim).await;
    let (status, body) = rest(
        Method::POST,
        "rpc/get_item_embedding",
        Some(&anon()),
        &json!({ "item_uuid": item }),
    )
    .await;
    assert!(
        status == 401 || status == 403,
        "anon read a vector: {status} {body}"
    );

    for (function, args) in [
        ("catalog_item_exists", json!({ "p_item_id": item })),
        ("user_org_id", json!({})),
        ("has_role", json!({ "required_roles": ["admin"] })),
        ("user_role", json!({ "org_uuid": victim.org_id })),
        (
            "catalog_embedding_coverage",
            json!({ "p_org_id": victim.org_id, "p_model_version": "x" }),
        ),
    ] {
        let (status, body) = rest(
            Method::POST,
            &format!("rpc/{function}"),
            Some(&anon()),
            &args,
        )
        .await;
        assert!(
            status == 401 || status == 403 || status == 404,
            "anon called {function}: {status} {body}"
        );
    }
    for table in [
        "catalog_items",
        "catalog_item_embeddings",
        "org_memberships",
        "orgs",
    ] {
        let (status, body) = rest(Method::GET, table, Some(&anon()), &Value::Null).await;
        assert!(
            status >= 400 || body == json!([]),
            "anon read {table}: {status} {body}"
        );
    }
}

#[tokio::test]
async fn a_member_of_another_org_reads_no_vectors_and_cannot_probe_ids() {
    let victim = create_tenant().await;
    let other = create_tenant().await;
    let item = item_with_embedding(&victim).await;

    let (status, body) = rest(
        Method::POST,
        "rpc/get_item_embedding",
        Some(&other.admin.token),
        &json!({ "item_uuid": item }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, Value::Null, "another org's vector leaked");
    let (status, body) = rest(
        Method::POST,
        "rpc/get_item_embedding",
        Some(&victim.requester.token),
        &json!({ "item_uuid": item }),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body.is_string() || body.is_array(),
        "the owner reads it: {body}"
    );

    let (status, body) = rest(
        Method::POST,
        "rpc/catalog_item_exists",
        Some(&other.admin.token),
        &json!({ "p_item_id": item }),
    )
    .await;
    assert!(
        status == 401 || status == 403,
        "existence oracle open: {status} {body}"
    );
}

/// A user who is requester of `weak` (their oldest membership, so the org
/// they act in) and admin of `strong`, or the other way round.
async fn two_org_user(
    first: &Tenant,
    first_role: &str,
    second: &Tenant,
    second_role: &str,
) -> (Uuid, String) {
    let user = Uuid::new_v4();
    for (tenant, role, at) in [
        (first, first_role, "2020-01-01T00:00:00Z"),
        (second, second_role, "2021-01-01T00:00:00Z"),
    ] {
        let (status, body) = rest(
            Method::POST,
            "org_memberships",
            None,
            &json!({ "org_id": tenant.org_id, "user_id": user, "role": role, "created_at": at }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    (user, user_token(user))
}

fn role_of(user: Uuid, org: Uuid) -> String {
    sql(&format!(
        "select role from org_memberships where user_id = '{user}' and org_id = '{org}'"
    ))
}

#[tokio::test]
async fn an_admin_elsewhere_cannot_promote_themselves_or_write_the_catalog_of_their_other_org() {
    // Acting in `weak` (oldest membership) as requester, admin of `strong`.
    let weak = create_tenant().await;
    let strong = create_tenant().await;
    let (user, token) = two_org_user(&weak, "requester", &strong, "admin").await;

    let (status, body) = rest(
        Method::PATCH,
        &format!(
            "org_memberships?org_id=eq.{}&user_id=eq.{user}",
            weak.org_id
        ),
        Some(&token),
        &json!({ "role": "admin" }),
    )
    .await;
    assert!(status >= 400 || body == json!([]), "{status} {body}");
    assert_eq!(role_of(user, weak.org_id), "requester");

    let (status, body) = rest(
        Method::POST,
        "catalog_items",
        Some(&token),
        &json!({ "org_id": weak.org_id, "name": "Injected", "created_by": user }),
    )
    .await;
    assert!(status == 401 || status == 403, "{status} {body}");
    let (status, body) = rest(
        Method::POST,
        "rpc/create_catalog_item_with_embedding",
        Some(&token),
        &json!({ "p_org_id": weak.org_id, "p_name": "Injected by RPC" }),
    )
    .await;
    assert!(status == 401 || status == 403, "{status} {body}");
    let (status, body) = rest(
        Method::POST,
        "org_memberships",
        Some(&token),
        &json!({ "org_id": weak.org_id, "user_id": Uuid::new_v4(), "role": "admin" }),
    )
    .await;
    assert!(status == 401 || status == 403, "{status} {body}");
    assert_eq!(
        sql(&format!(
            "select count(*) from catalog_items where org_id = '{}'",
            weak.org_id
        )),
        "0"
    );

    // And the server acts in the same org the database does.
    let app = spawn_app().await;
    let verified: Value = app
        .get_as("/api/auth/verify", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["org_id"], json!(weak.org_id));
    assert_eq!(verified["role"], "requester");
}

#[tokio::test]
async fn the_org_a_user_acts_in_is_the_oldest_membership_whatever_the_insert_order() {
    let a = create_tenant().await;
    let b = create_tenant().await;
    let user = Uuid::new_v4();
    // Inserted newest first; ties on created_at broken by id.
    for (tenant, at) in [(&b, "2022-01-01T00:00:00Z"), (&a, "2019-01-01T00:00:00Z")] {
        let (status, body) = rest(
            Method::POST,
            "org_memberships",
            None,
            &json!({ "org_id": tenant.org_id, "user_id": user, "role": "admin", "created_at": at }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let token = user_token(user);
    for _ in 0..3 {
        let (status, body) = rest(Method::POST, "rpc/user_org_id", Some(&token), &json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!(a.org_id));
    }
}

#[tokio::test]
async fn admins_cannot_backdate_or_repoint_memberships() {
    let tenant = create_tenant().await;
    let victim = create_tenant().await;
    let token = &tenant.admin.token;
    let filter = format!(
        "org_memberships?org_id=eq.{}&user_id=eq.{}",
        tenant.org_id, tenant.requester.id
    );

    for change in [
        json!({ "created_at": "2000-01-01T00:00:00Z" }),
        json!({ "user_id": victim.admin.id }),
        json!({ "org_id": victim.org_id }),
    ] {
        let (status, body) = rest(Method::PATCH, &filter, Some(token), &change).await;
        assert!(status == 401 || status == 403, "{change}: {status} {body}");
    }
    // Inserting a backdated membership for the other org's admin is refused
    // too: it would become their oldest, moving their sessions here.
    let (status, body) = rest(
        Method::POST,
        "org_memberships",
        Some(token),
        &json!({ "org_id": tenant.org_id, "user_id": victim.admin.id, "role": "requester", "created_at": "2000-01-01T00:00:00Z" }),
    )
    .await;
    assert!(status == 401 || status == 403, "{status} {body}");

    // What admins may do still works: change a role in their own org.
    let (status, body) = rest(
        Method::PATCH,
        &filter,
        Some(token),
        &json!({ "role": "reviewer" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(role_of(tenant.requester.id, tenant.org_id), "reviewer");
}

#[test]
fn every_security_definer_function_pins_its_search_path_and_none_is_open_to_anon() {
    crate::helpers::stack_env();
    let loose = sql("select string_agg(p.oid::regprocedure::text, ', ')
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname = 'public' and p.prosecdef
           and not coalesce('search_path=public, extensions, pg_temp' = any (p.proconfig), false)");
    assert_eq!(loose, "", "SECURITY DEFINER without a pinned search_path");
    // Functions of ours (not of an extension such as pgvector) anon may run.
    let open = sql("select string_agg(p.oid::regprocedure::text, ', ')
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname = 'public'
           and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
           and has_function_privilege('anon', p.oid, 'execute')");
    assert_eq!(open, "", "executable by anon");
}

#[tokio::test]
async fn every_embedding_carries_its_items_org_whoever_writes_it() {
    let tenant = create_tenant().await;
    let other = create_tenant().await;
    // Through the create function.
    let created = item_with_embedding(&tenant).await;
    // Straight in, claiming another org: the trigger takes the item's.
    let items = crate::helpers::insert_items_without_embeddings(
        tenant.org_id,
        tenant.admin.id,
        "Direct",
        1,
    )
    .await;
    let (_, vector) = rest(
        Method::GET,
        &format!("catalog_item_embeddings?catalog_item_id=eq.{created}&select=embedding"),
        None,
        &Value::Null,
    )
    .await;
    let (status, body) = rest(
        Method::POST,
        "catalog_item_embeddings",
        None,
        &json!({ "catalog_item_id": items[0], "embedding": vector[0]["embedding"], "model_version": "models/x", "org_id": other.org_id }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let orgs = sql(&format!(
        "select string_agg(distinct org_id::text, ',') from catalog_item_embeddings where catalog_item_id in ('{created}', '{}')",
        items[0]
    ));
    assert_eq!(orgs, tenant.org_id.to_string());
}

/// The five-argument search and the embeddings' `org_id`, tried straight
/// through PostgREST: naming another org's id gets the caller's own results
/// (or none), never the victim's.
#[tokio::test]
async fn search_and_embedding_rows_never_cross_orgs_through_postgrest() {
    let victim = create_tenant().await;
    let other = create_tenant().await;
    let item = item_with_embedding(&victim).await;
    let (_, vector) = rest(
        Method::GET,
        &format!("catalog_item_embeddings?catalog_item_id=eq.{item}&select=embedding"),
        None,
        &Value::Null,
    )
    .await;
    let search = json!({
        "query_embedding": vector[0]["embedding"],
        "org_uuid": victim.org_id,
        "similarity_threshold": 0.0,
        "result_limit": 10,
        "p_model_version": "models/gemini-embedding-001",
    });
    let outsider = user_token(Uuid::new_v4());
    for (who, token) in [
        ("another org's admin", other.admin.token.as_str()),
        ("a user without membership", outsider.as_str()),
        ("anon", anon().as_str()),
    ] {
        let (status, body) = rest(
            Method::POST,
            "rpc/search_catalog_items",
            Some(token),
            &search,
        )
        .await;
        assert!(
            status >= 400 || body == json!([]),
            "{who} searched another org: {status} {body}"
        );
        let (status, body) = rest(
            Method::GET,
            &format!(
                "catalog_item_embeddings?org_id=eq.{}&select=catalog_item_id",
                victim.org_id
            ),
            Some(token),
            &Value::Null,
        )
        .await;
        assert!(
            status >= 400 || body == json!([]),
            "{who} read another org's embedding rows: {status} {body}"
        );
    }
    // The owner finds it, so the refusals above are not an empty search.
    let (status, body) = rest(
        Method::POST,
        "rpc/search_catalog_items",
        Some(&victim.requester.token),
        &search,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["item_id"], json!(item), "{body}");
}

#[tokio::test]
async fn no_member_can_move_an_item_or_its_embedding_to_another_org() {
    // Moving an item carries its embedding's org along (a trigger): only the
    // service role may move one, so the move must be out of every member's
    // reach, its own admin's included.
    let victim = create_tenant().await;
    let other = create_tenant().await;
    let item = item_with_embedding(&victim).await;
    let outsider = user_token(Uuid::new_v4());
    for (who, token) in [
        ("its own admin", victim.admin.token.as_str()),
        ("another org's admin", other.admin.token.as_str()),
        ("a user without membership", outsider.as_str()),
        ("anon", anon().as_str()),
    ] {
        let (status, body) = rest(
            Method::PATCH,
            &format!("catalog_items?id=eq.{item}"),
            Some(token),
            &json!({ "org_id": other.org_id }),
        )
        .await;
        assert!(
            status >= 400 || body == json!([]),
            "{who} moved an item: {status} {body}"
        );
    }
    let orgs = sql(&format!(
        "select ci.org_id || ' ' || e.org_id from catalog_items ci
         join catalog_item_embeddings e on e.catalog_item_id = ci.id where ci.id = '{item}'"
    ));
    assert_eq!(orgs, format!("{0} {0}", victim.org_id));
}

/// The cut-over phase is for the service key (readiness): neither the
/// public key, a member, nor a signed-in user without membership may call it.
#[tokio::test]
async fn the_cutover_phase_is_read_with_the_service_key_alone() {
    let tenant = create_tenant().await;
    let outsider = user_token(Uuid::new_v4());
    for (who, token) in [
        ("anon", anon()),
        ("a member", tenant.admin.token.clone()),
        ("a non-member", outsider),
    ] {
        let (status, body) = rest(
            Method::POST,
            "rpc/catalogai_cutover_phase",
            Some(&token),
            &json!({}),
        )
        .await;
        assert!(
            status == 401 || status == 403 || status == 404,
            "{who} read the cut-over phase: {status} {body}"
        );
    }
    let (status, body) = rest(
        Method::POST,
        "rpc/catalogai_cutover_phase",
        None,
        &json!({}),
    )
    .await;
    assert_eq!((status, body), (200, json!("contracted")));
}
