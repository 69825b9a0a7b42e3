//! The re-embed of every org in the background (`EMBEDDING_BACKFILL`): on a
//! taken-over original deployment, two replicas re-embed it once between
//! them, in `batchEmbedContents` chunks, with progress in readiness; the
//! lease that decides who runs it is the service key's alone.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, poll_until, public_key, rest, spawn_app_with, sql, user_token};
use crate::platform::{migrate, psql};
use crate::takeover::{RestServer, original_deployment, through_rest_server};

const ORIGINAL_ORG: &str = "0e000000-0000-4000-8000-000000000001";
const ORIGINAL_ADMIN: &str = "0e000000-0000-4000-8000-0000000000a1";
const NEW_MODEL: &str = "models/gemini-embedding-001";

async fn replica(rest_url: &str) -> TestApp {
    let url = rest_url.to_owned();
    spawn_app_with(move |vars| {
        through_rest_server(vars, &url);
        vars.insert("EMBEDDING_BACKFILL".into(), "true".into());
    })
    .await
}

/// The original's items (1,252 active in its org after 1,250 more are added
/// here, over two of the repair's pages, and 120 in a second org), all with
/// `text-embedding-004` vectors: after the upgrade two replicas start, one
/// re-embeds everything in 15 calls of at most 100 texts, the other waits,
/// readiness shows it finish, and search finds the items again.
#[tokio::test]
async fn two_replicas_re_embed_a_taken_over_database_once() {
    let project = original_deployment();
    psql(
        &project.url,
        &["-c", &format!(
            "insert into orgs (id, name) values ('0e000000-0000-4000-8000-000000000002', 'Second Org'); \
             insert into catalog_items (org_id, name, category, created_by) \
             select '{ORIGINAL_ORG}', 'Stock item ' || i, 'Office', '{ORIGINAL_ADMIN}' from generate_series(1, 1250) i; \
             insert into catalog_items (org_id, name, category, created_by) \
             select '0e000000-0000-4000-8000-000000000002', 'Second org item ' || i, 'Office', '{ORIGINAL_ADMIN}' \
             from generate_series(1, 120) i; \
             insert into catalog_item_embeddings (catalog_item_id, embedding) \
             select ci.id, array_fill(0.036::real, array[768])::vector from catalog_items ci \
             where not exists (select 1 from catalog_item_embeddings e where e.catalog_item_id = ci.id)"
        )],
    )
    .unwrap();
    migrate(&project.url).unwrap();
    let database = project.url.rsplit('/').next().unwrap().to_owned();
    let rest_server = RestServer::start(&database).await;

    let first = replica(&rest_server.url).await;
    let second = replica(&rest_server.url).await;
    let (_, readiness, _) = poll_until(
        &first,
        "/api/readiness",
        Duration::from_secs(120),
        |_, body| body["embedding_backfill"]["state"] == "finished",
    )
    .await;
    assert_eq!(
        readiness["embedding_backfill"],
        json!({ "state": "finished", "items_total": 1372, "items_done": 1372, "items_failed": 0 }),
        "{readiness}"
    );
    // The other replica reads the same row.
    let body: Value = second.get("/api/readiness").await.json().await.unwrap();
    assert_eq!(body["embedding_backfill"]["state"], "finished", "{body}");

    let stale = psql(
        &project.url,
        &["-c", &format!(
            "select count(*) from catalog_items ci left join catalog_item_embeddings e on e.catalog_item_id = ci.id \
             where ci.status = 'active' and e.model_version is distinct from '{NEW_MODEL}'"
        )],
    )
    .unwrap();
    assert_eq!(
        stale, "0",
        "active items left without a vector of {NEW_MODEL}"
    );
    // The deprecated item keeps the original's vector: nothing searches it.
    let deprecated = psql(
        &project.url,
        &[
            "-c",
            "select e.model_version from catalog_item_embeddings e \
                 where e.catalog_item_id = '0e000000-0000-4000-8000-00000000c001'",
        ],
    )
    .unwrap();
    assert_eq!(deprecated, "models/text-embedding-004");

    // Org by org, pages of 1,000, chunks of 100: 10 + 3 for the first org,
    // 2 for the second; whichever replica held the lease made them all.
    let (a, b) = (first.gemini.stats(), second.gemini.stats());
    let calls = a.calls_of("batchEmbedContents") + b.calls_of("batchEmbedContents");
    assert_eq!(calls, 15, "{a:?} {b:?}");
    assert_eq!(a.embedded_texts + b.embedded_texts, 1372, "{a:?} {b:?}");
    assert!(
        a.embedded_texts == 0 || b.embedded_texts == 0,
        "both replicas re-embedded: {a:?} {b:?}"
    );

    let admin = user_token(ORIGINAL_ADMIN.parse().unwrap());
    let response = first
        .post_json(
            "/api/catalog/search",
            Some(&admin),
            &json!({ "query": "Team Chat", "threshold": 0.0, "limit": 3 }),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["item_name"], "Team Chat", "{body}");

    // Once: a later claim finds it finished.
    let claim = psql(
        &project.url,
        &["-c", &format!(
            "set role service_role; select catalog_embedding_backfill_claim('{NEW_MODEL}', 'a-later-replica', 60)"
        )],
    )
    .unwrap();
    assert_eq!(claim, "finished");
}

/// The lease: one holder at a time, handed over when it runs out or is
/// given up, and a report from a replica that lost it is refused.
#[tokio::test]
async fn the_re_embed_lease_has_one_holder_and_hands_over() {
    let model = format!("models/lease-test-{}", Uuid::new_v4());
    let claim = |holder: &'static str| {
        let model = model.clone();
        async move {
            rest(
                reqwest::Method::POST,
                "rpc/catalog_embedding_backfill_claim",
                None,
                &json!({ "p_model_version": model, "p_holder": holder, "p_lease_seconds": 60 }),
            )
            .await
        }
    };
    let report = |holder: &'static str, lease: u32, finished: bool| {
        let model = model.clone();
        async move {
            rest(
                reqwest::Method::POST,
                "rpc/catalog_embedding_backfill_report",
                None,
                &json!({ "p_model_version": model, "p_holder": holder, "p_lease_seconds": lease,
                         "p_items_total": 10, "p_items_done": 4, "p_items_failed": 0, "p_finished": finished }),
            )
            .await
        }
    };
    assert_eq!(claim("a").await, (200, json!("claimed")));
    assert_eq!(claim("b").await, (200, json!("held")));
    assert_eq!(
        claim("a").await,
        (200, json!("claimed")),
        "a renews its own"
    );
    assert_eq!(report("b", 60, false).await, (200, json!(false)));
    assert_eq!(report("a", 60, false).await, (200, json!(true)));

    // a's lease runs out (moved into the past rather than waited for).
    sql(&format!(
        "update catalogai_meta.embedding_backfill set lease_until = now() - interval '1 second' \
         where model_version = '{model}'"
    ));
    assert_eq!(claim("b").await, (200, json!("claimed")));
    assert_eq!(
        report("a", 60, false).await,
        (200, json!(false)),
        "a lost it"
    );
    let (status, body) = rest(
        reqwest::Method::POST,
        "rpc/catalog_embedding_backfill_status",
        None,
        &json!({ "p_model_version": model }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["state"], "running", "{body}");
    assert_eq!(body[0]["items_done"], 4, "{body}");

    // Given up (a replica shutting down): the next claims at once.
    assert_eq!(report("b", 0, false).await, (200, json!(true)));
    assert_eq!(claim("a").await, (200, json!("claimed")));
    assert_eq!(report("a", 60, true).await, (200, json!(true)));
    assert_eq!(claim("b").await, (200, json!("finished")));

    // Out-of-range requests are refused, not stored.
    let (status, _) = rest(
        reqwest::Method::POST,
        "rpc/catalog_embedding_backfill_claim",
        None,
        &json!({ "p_model_version": model, "p_holder": "c", "p_lease_seconds": 0 }),
    )
    .await;
    assert_eq!(status, 400);
}

/// Nobody but the service key reaches the lease, its progress or the list
/// of orgs waiting for a re-embed: not the public key, not a signed-in user
/// (an admin of an org included), straight through PostgREST.
#[tokio::test]
async fn only_the_service_key_reaches_the_re_embed_functions() {
    let tenant = crate::helpers::create_tenant().await;
    let model = format!("models/lease-test-{}", Uuid::new_v4());
    let calls = [
        (
            "catalog_embedding_backfill_claim",
            json!({ "p_model_version": model, "p_holder": "intruder", "p_lease_seconds": 3600 }),
        ),
        (
            "catalog_embedding_backfill_report",
            json!({ "p_model_version": model, "p_holder": "intruder", "p_lease_seconds": 0,
                     "p_items_total": 0, "p_items_done": 0, "p_items_failed": 0, "p_finished": true }),
        ),
        (
            "catalog_embedding_backfill_status",
            json!({ "p_model_version": model }),
        ),
        (
            "catalog_orgs_needing_embedding",
            json!({ "p_model_version": model }),
        ),
    ];
    let public = public_key().to_owned();
    for (function, params) in &calls {
        for (who, token) in [
            ("the public key", public.clone()),
            ("an org's admin", tenant.admin.token.clone()),
            ("a user without membership", user_token(Uuid::new_v4())),
        ] {
            let (status, body) = rest(
                reqwest::Method::POST,
                &format!("rpc/{function}"),
                Some(&token),
                params,
            )
            .await;
            assert!(
                [401, 403, 404].contains(&status),
                "{who} called {function}: {status} {body}"
            );
        }
    }
    assert_eq!(
        sql(&format!(
            "select count(*) from catalogai_meta.embedding_backfill where model_version = '{model}'"
        )),
        "0"
    );
}
