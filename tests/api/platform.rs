//! The local platform is a Supabase project as one is made today (and, with
//! `CATALOGAI_PLATFORM=classic`, as one was before 2026): migrations apply as
//! the non-superuser owner on both shapes and grant exactly what the
//! callers need; the API gateway's refusals and the roles' statement
//! timeouts reach clients as what they are.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{create_tenant, platform, spawn_app_with, sql, stack_env};

/// The stack's database URL with another database name, as `user`.
fn database_url(user: &str, password: &str, database: &str) -> String {
    let url = reqwest::Url::parse(&stack_env()["DATABASE_URL"]).unwrap();
    format!(
        "postgres://{user}:{password}@{}:{}/{database}",
        url.host_str().unwrap(),
        url.port().unwrap()
    )
}

pub(crate) fn owner_url(database: &str) -> String {
    let url = reqwest::Url::parse(&stack_env()["DATABASE_URL"]).unwrap();
    database_url("postgres", url.password().unwrap(), database)
}

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A secret `scripts/stack` keeps in `.stack/` (passwords, API keys).
pub(crate) fn stack_secret(name: &str) -> String {
    std::fs::read_to_string(root().join(".stack").join(name))
        .unwrap()
        .trim()
        .to_owned()
}

/// Runs psql on `url`; its output, or what it printed on failure.
pub(crate) fn psql(url: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new("psql")
        .arg(url)
        .args(["-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

pub(crate) fn migrate(url: &str) -> Result<String, String> {
    migrate_with(url, &[])
}

/// `scripts/migrate ARGS` on `url`: its log on success, its log as the error otherwise.
pub(crate) fn migrate_with(url: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(root().join("scripts/migrate"))
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        Ok(stderr)
    } else {
        Err(stderr)
    }
}

/// A new database of `shape`, made as Supabase makes a project: the platform
/// (as its superuser) first, then our migrations as `postgres`. Dropped at
/// the end of the test.
pub(crate) struct FreshProject {
    name: String,
    pub(crate) url: String,
}

impl FreshProject {
    pub(crate) fn create(shape: &str) -> Self {
        let name = format!("catalogai_fresh_{shape}_{}", Uuid::new_v4().simple());
        let maintenance = owner_url("postgres");
        psql(&maintenance, &["-c", &format!("create database {name}")]).unwrap();
        let admin = database_url(
            "supabase_admin",
            &stack_secret("supabase_admin_password"),
            &name,
        );
        let platform = root().join("db/local-platform/supabase.sql");
        // Its roles are the cluster's: two set-ups at once would update the
        // same catalogue rows ("tuple concurrently updated").
        static PLATFORM: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = PLATFORM.lock().unwrap_or_else(|e| e.into_inner());
        psql(
            &admin,
            &[
                "-v",
                &format!("shape={shape}"),
                "-f",
                platform.to_str().unwrap(),
            ],
        )
        .unwrap();
        Self {
            url: owner_url(&name),
            name,
        }
    }
}

impl Drop for FreshProject {
    fn drop(&mut self) {
        let _ = psql(
            &owner_url("postgres"),
            &[
                "-c",
                &format!("drop database if exists {} with (force)", self.name),
            ],
        );
    }
}

#[test]
fn migrations_apply_as_the_non_superuser_owner_on_both_shapes() {
    for (shape, vector_schema) in [("today", "extensions"), ("classic", "public")] {
        let project = FreshProject::create(shape);
        let db = |query: &str| psql(&project.url, &["-c", query]).unwrap();
        assert_eq!(
            db("select rolsuper from pg_roles where rolname = current_user"),
            "f"
        );
        // Another application's function in the same schema, before we arrive.
        db(
            "create function public.another_apps_function() returns int \
            language sql security definer as 'select 1'",
        );

        let log = migrate(&project.url).unwrap_or_else(|e| panic!("{shape}: {e}"));
        assert!(log.contains("0017_deploys_on_todays_supabase"), "{log}");
        let again = migrate(&project.url).unwrap();
        assert!(again.contains("(0 applied now)"), "{again}");
        // A database that ran 0011 before its loop was narrowed carries on
        // (db/migrations/amended); any other edit of an applied file stops.
        let recorded = |checksum: &str| {
            db(&format!(
                "update catalogai_meta.schema_migrations set checksum = '{checksum}' \
                 where version = 'migrations/0011_tenant_isolation'"
            ))
        };
        recorded("242223394eb3511ad9b185a215b5b46f131c21b29f2ac32e36eda5e2a70e9401");
        assert!(migrate(&project.url).is_ok());
        recorded("0000");
        let refused = migrate(&project.url).unwrap_err();
        assert!(
            refused.contains("changed after it was applied"),
            "{refused}"
        );

        assert_eq!(
            db("select extnamespace::regnamespace from pg_extension where extname = 'vector'"),
            vector_schema
        );
        // Every function of ours sees pgvector wherever it is; none is anon's.
        let unpinned = db(
            "select string_agg(p.oid::regprocedure::text, ', ') from pg_proc p \
             join pg_namespace n on n.oid = p.pronamespace \
             where n.nspname = 'public' and p.proowner = current_user::regrole \
               and p.proname <> 'another_apps_function' \
               and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e') \
               and (p.proconfig is null or not ('search_path=public, extensions, pg_temp' = any(p.proconfig)) \
                    or has_function_privilege('anon', p.oid, 'execute'))",
        );
        assert_eq!(
            unpinned, "",
            "{shape}: functions without the path or open to anon"
        );
        // ... and another application's is as it was.
        assert_eq!(
            db(
                "select coalesce(array_to_string(proconfig, ','), 'none') || ' ' || \
                has_function_privilege('anon', oid, 'execute') \
                from pg_proc where proname = 'another_apps_function'"
            ),
            "none true"
        );

        // The grants table of migration 0017, whatever the shape's defaults.
        let privileges = db(
            "select string_agg(r || ':' || t || ':' || p, ' ' order by r, t, p) \
             from unnest(array['anon', 'authenticated', 'service_role']) r, \
                  unnest(array['orgs', 'org_memberships', 'catalog_items', 'catalog_item_embeddings', \
                               'requests', 'proposals', 'audit_events']) t, \
                  unnest(array['select', 'insert', 'update', 'delete', 'truncate']) p \
             where has_table_privilege(r, 'public.' || t, p)",
        );
        let granted: Vec<&str> = privileges.split(' ').collect();
        for expected in [
            "authenticated:catalog_items:delete",
            "authenticated:catalog_items:insert",
            "authenticated:requests:select",
            "authenticated:audit_events:select",
            "service_role:orgs:insert",
            "service_role:catalog_item_embeddings:update",
            "service_role:audit_events:insert",
        ] {
            assert!(
                granted.contains(&expected),
                "{shape}: no {expected} in {privileges}"
            );
        }
        for refused in [
            "anon:",
            ":truncate",
            "authenticated:requests:insert",
            "authenticated:proposals:update",
            "authenticated:audit_events:insert",
            "service_role:audit_events:update",
            "authenticated:orgs:delete",
        ] {
            assert!(
                !granted.iter().any(|g| g.contains(refused)),
                "{shape}: {refused} granted in {privileges}"
            );
        }

        // Vector search runs in the SQL function with pgvector where the shape keeps it.
        let org = Uuid::new_v4();
        let item = Uuid::new_v4();
        let vector = format!("[{}]", vec!["0.036"; 768].join(","));
        db(&format!(
            "insert into orgs (id, name) values ('{org}', 'Fresh'); \
             insert into catalog_items (id, org_id, name, created_by) values ('{item}', '{org}', 'Desk', '{org}'); \
             insert into catalog_item_embeddings (catalog_item_id, embedding, model_version) \
               values ('{item}', '{vector}', 'models/gemini-embedding-001')"
        ));
        let hits = db(&format!(
            "set request.jwt.claims = '{{\"role\":\"service_role\"}}'; \
             select item_name from search_catalog_items('{vector}', '{org}', 0.5, 5, \
               'models/gemini-embedding-001')"
        ));
        assert_eq!(hits, "Desk", "{shape}");
    }
}

/// The stack itself is the shape the tests say it is, migrated by the
/// non-superuser owner: what every other API test runs on.
#[test]
fn the_stack_is_the_platform_it_claims_to_be() {
    assert_eq!(
        sql("select rolsuper from pg_roles where rolname = current_user"),
        "f"
    );
    let expected = match platform() {
        "classic" => "public",
        _ => "extensions",
    };
    assert_eq!(
        sql("select extnamespace::regnamespace from pg_extension where extname = 'vector'"),
        expected
    );
    assert_eq!(
        sql(
            "select string_agg(rolname || '=' || array_to_string(setconfig, ','), ' ' order by rolname) \
             from pg_db_role_setting s join pg_roles r on r.oid = s.setrole \
             where rolname in ('anon', 'authenticated')"
        ),
        "anon=statement_timeout=3s authenticated=statement_timeout=8s"
    );
}

/// A statement that runs past `authenticated`'s 8 s statement timeout is
/// cut off by Postgres (`57014`): that request answers 504, it is not tried
/// again, and the breaker every tenant shares does not count it.
#[tokio::test]
async fn a_statement_past_its_roles_timeout_is_a_504_not_an_outage() {
    let app = spawn_app_with(|vars| {
        vars.insert("CIRCUIT_BREAKER_FAIL_MAX".into(), "1".into());
    })
    .await;
    let tenant = create_tenant().await;
    // Slow for one marked query only, so other tests' requests are untouched;
    // the sequence counts the attempts (nextval survives the cancel).
    let tag = Uuid::new_v4().simple().to_string();
    let marker = format!("slow statement {tag}");
    sql(&format!(
        "create sequence public.slow_{tag}; \
         create function public.slow_{tag}() returns trigger language plpgsql as $$ \
         begin perform nextval('public.slow_{tag}'); perform pg_sleep(9); return new; end $$; \
         create trigger slow_{tag} before insert on public.requests for each row \
           when (new.search_query = '{marker}') execute function public.slow_{tag}();"
    ));

    let response = app
        .post_json(
            "/api/requests",
            Some(&tenant.requester.token),
            &json!({ "search_query": marker }),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    let attempts = sql(&format!("select last_value from public.slow_{tag}"));
    sql(&format!(
        "drop trigger slow_{tag} on public.requests; drop function public.slow_{tag}(); \
         drop sequence public.slow_{tag};"
    ));

    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "GATEWAY_TIMEOUT", "{body}");
    assert_eq!(attempts, "1", "a statement timeout is not retried");
    let (_, readiness, _) = crate::helpers::poll_readiness(&app, 200, Duration::from_secs(5)).await;
    assert_eq!(
        readiness["circuit_breakers"]["database"], "closed",
        "{readiness}"
    );
    // The same tenant is served at once.
    let response = app.get_as("/api/requests", &tenant.requester.token).await;
    assert_eq!(response.status(), 200);
}

#[test]
fn migrate_refuses_a_database_that_ran_a_migration_this_checkout_lacks() {
    let project = FreshProject::create("today");
    migrate(&project.url).unwrap();
    psql(
        &project.url,
        &[
            "-c",
            "insert into catalogai_meta.schema_migrations (version, checksum) \
                 values ('migrations/0099_from_a_newer_checkout', 'x')",
        ],
    )
    .unwrap();
    let refused = migrate(&project.url).unwrap_err();
    assert!(
        refused.contains(
            "ran migrations/0099_from_a_newer_checkout, which this checkout does not have"
        ),
        "{refused}"
    );
    assert!(!refused.contains("applying migrations/"), "{refused}");
}

/// `db/schema.sql` is what the migrations build: a database migrated from
/// nothing dumps to exactly that file, so the file cannot drift from them.
#[test]
fn the_schema_file_is_what_the_migrations_build() {
    let project = FreshProject::create("today");
    migrate(&project.url).unwrap();
    let dump = Command::new(root().join("scripts/schema"))
        .args(["--dump", &project.url])
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let built = String::from_utf8(dump.stdout).unwrap();
    let file = std::fs::read_to_string(root().join("db/schema.sql")).unwrap();
    // The file's two-line header says where it comes from.
    let committed: Vec<&str> = file.lines().skip(2).collect();
    let built: Vec<&str> = built.lines().collect();
    let first_difference = committed
        .iter()
        .zip(&built)
        .position(|(a, b)| a != b)
        .or((committed.len() != built.len()).then(|| committed.len().min(built.len())));
    if let Some(line) = first_difference {
        panic!(
            "db/schema.sql is not what the migrations build (run scripts/schema): \
             line {} is {:?} in the file and {:?} in a migrated database",
            line + 3,
            committed.get(line),
            built.get(line)
        );
    }
}
