-- What a Supabase project provides before any of our migrations run, for the
-- local stack, tests and CI. scripts/stack applies it as `supabase_admin`,
-- the cluster's superuser (as on Supabase, where no customer holds one), to
-- one database, with the psql variable `shape`:
--
--   today    a project created now: no default table grants for the API
--            roles (Supabase changelog 2026-05-30, "Tables not exposed to
--            Data API automatically"), every extension in schema `extensions`.
--   classic  a project created before 2026: default privileges grant all on
--            new tables, sequences and functions in `public` to the API
--            roles, and pgvector sits in `public`.
--
-- Everything else is the same in both, as Supabase's own set-up makes it
-- (github.com/supabase/postgres, migrations/db/init-scripts and
-- migrations/db/migrations): `postgres` owns the database but is not a
-- superuser, PostgREST logs in as `authenticator` and switches to `anon`,
-- `authenticated` or `service_role`, and the API roles carry statement
-- timeouts. NEVER apply this to a real Supabase project.
--
-- Roles are cluster-wide, so their part is idempotent; passwords are set by
-- scripts/stack, never stored here.

\set ON_ERROR_STOP on
set client_min_messages = warning;
select :'shape' = 'classic' as classic, :'shape' in ('today', 'classic') as known_shape \gset
\if :known_shape
\else
  do $$ begin raise exception 'the psql variable shape must be today or classic'; end $$;
\endif

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  -- 10000000000000_demote-postgres.sql: the customer's role.
  if not exists (select 1 from pg_roles where rolname = 'postgres') then
    create role postgres login nosuperuser createdb createrole replication bypassrls;
  end if;
end
$$;

-- 20230529180330_alter_api_roles_for_inherit.sql
alter role anon inherit;
alter role authenticated inherit;
alter role service_role inherit;
grant anon, authenticated, service_role to authenticator;
-- 20230201083204_grant_auth_roles_to_postgres.sql
grant anon, authenticated, service_role to postgres;

-- initial-schema and 20221028101028 / 20231130133139: PostgreSQL applies the
-- authenticator's at login; PostgREST applies the API roles' per request
-- (postrust: PGRST_ROLE_SETTINGS, set by scripts/stack to the same values).
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
alter role authenticator set lock_timeout = '8s';
-- post-setup.sql
alter role postgres set search_path = "$user", public, extensions;

-- The database is the customer's.
select format('alter database %I owner to postgres', current_database()) \gexec

create schema if not exists extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
grant all on schema extensions to postgres;
create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pgcrypto with schema extensions;
-- pgvector is not a trusted extension: on Supabase the platform (supautils)
-- creates it for the customer; here the platform does, where each shape has it.
\if :classic
create extension if not exists vector with schema public;
\else
create extension if not exists vector with schema extensions;
\endif

grant usage on schema public to postgres, anon, authenticated, service_role;

\if :classic
alter default privileges for role postgres in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to anon, authenticated, service_role;
\endif

-- Supabase Auth's helpers: PostgREST puts the verified JWT claims in
-- `request.jwt.claims`.
create schema if not exists auth;
grant usage on schema auth to postgres, anon, authenticated, service_role;

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable
as $$
  select nullif(auth.jwt() ->> 'sub', '')::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select nullif(auth.jwt() ->> 'role', '')
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role() to postgres, anon, authenticated, service_role;
