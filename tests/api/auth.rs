//! Bearer-token authentication and membership: who may call the API.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    create_tenant, mint_token, sign_token, spawn_app, spawn_app_with, unix_now, user_token,
};

const ENRICH: &str = "/api/products/enrich";

fn claims(sub: Uuid, exp: u64) -> Value {
    json!({ "sub": sub, "role": "authenticated", "aud": "authenticated", "iat": unix_now(), "exp": exp })
}

async fn assert_unauthorized(response: reqwest::Response) {
    assert_eq!(response.status(), 401);
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn verify_reports_the_callers_org_and_role() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;

    for (user, role) in [(&tenant.admin, "admin"), (&tenant.requester, "requester")] {
        let response = app.get_as("/api/auth/verify", &user.token).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({ "user_id": user.id, "org_id": tenant.org_id, "role": role })
        );
    }
}

#[tokio::test]
async fn bad_tokens_get_401_and_never_reach_gemini() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let user = tenant.requester.id;
    let now = unix_now();
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    let valid = user_token(user);
    let mut tampered_signature = valid.clone();
    let last = tampered_signature.pop().unwrap();
    tampered_signature.push(if last == 'A' { 'B' } else { 'A' });
    let (head, rest) = valid.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let admin_claims = URL_SAFE_NO_PAD.encode(claims(tenant.admin.id, now + 3600).to_string());
    let swapped_payload = format!("{head}.{admin_claims}.{signature}");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT" }).to_string()),
        URL_SAFE_NO_PAD.encode(claims(user, now + 3600).to_string())
    );

    let cases: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("not a JWT", Some("not-a-token".into())),
        ("empty", Some(String::new())),
        (
            "forged with another secret",
            Some(sign_token(
                &header,
                &claims(user, now + 3600),
                "not-the-secret",
            )),
        ),
        ("tampered signature", Some(tampered_signature)),
        (
            "payload swapped under a valid signature",
            Some(swapped_payload),
        ),
        ("alg none", Some(unsigned)),
        (
            "alg HS512",
            Some(sign_token(
                &json!({ "alg": "HS512", "typ": "JWT" }),
                &claims(user, now + 3600),
                "irrelevant",
            )),
        ),
        ("expired", Some(mint_token(&claims(user, now - 120)))),
        (
            "wrong audience",
            Some(mint_token(
                &json!({ "sub": user, "aud": "someone-else", "exp": now + 3600 }),
            )),
        ),
        (
            "no exp",
            Some(mint_token(&json!({ "sub": user, "aud": "authenticated" }))),
        ),
        (
            "sub not a UUID",
            Some(mint_token(
                &json!({ "sub": "admin", "aud": "authenticated", "exp": now + 3600 }),
            )),
        ),
    ];
    for (case, token) in cases {
        let mut request = app
            .client
            .post(format!("{}{ENRICH}", app.address))
            .json(&json!({ "product_name": "Slack" }));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{case}");
        assert_unauthorized(response).await;
    }
    // A scheme other than Bearer is not a token either.
    let response = app
        .client
        .get(format!("{}/api/auth/verify", app.address))
        .header("authorization", format!("Basic {valid}"))
        .send()
        .await
        .unwrap();
    assert_unauthorized(response).await;

    assert_eq!(app.gemini.stats().total_calls(), 0);
}

#[tokio::test]
async fn a_token_just_past_exp_is_accepted_within_the_clock_skew_leeway() {
    let app = spawn_app().await;
    let tenant = create_tenant().await;
    let token = mint_token(&claims(tenant.admin.id, unix_now() - 5));
    let response = app.get_as("/api/auth/verify", &token).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn with_hs256_off_a_token_signed_with_the_legacy_secret_is_refused_though_it_is_set() {
    let app = spawn_app_with(|env| {
        env.insert("SUPABASE_JWT_HS256".into(), "false".into());
    })
    .await;
    let tenant = create_tenant().await;
    let legacy = mint_token(&claims(tenant.admin.id, unix_now() + 600));
    assert_unauthorized(app.get_as("/api/auth/verify", &legacy).await).await;
    // The signing keys still verify.
    let response = app.get_as("/api/auth/verify", &tenant.admin.token).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_user_without_membership_gets_403() {
    let app = spawn_app().await;
    let outsider = user_token(Uuid::new_v4());

    let response = app.get_as("/api/auth/verify", &outsider).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "FORBIDDEN");

    let response = app
        .post_json(ENRICH, Some(&outsider), &json!({ "product_name": "Slack" }))
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(app.gemini.stats().total_calls(), 0);
}
