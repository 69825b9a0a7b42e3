-- Deploys on a Supabase project as one is created today, and still on one
-- made before (https://supabase.com/changelog, "Tables not exposed to Data
-- API automatically", 2026-05-30 for new projects, 2026-10-30 for new tables
-- of every project):
--
-- 1. Grants. New tables no longer carry default privileges for `anon`,
--    `authenticated` and `service_role`, so every call (the service role's
--    too) met `42501 permission denied`. Every table gets exactly what its
--    callers need; row-level security still decides which rows. Projects of
--    before 2026 had ALL by default (TRUNCATE, REFERENCES and TRIGGER
--    included, which RLS does not govern): the same revoke-then-grant makes
--    both shapes equal. Who needs what:
--
--    table                    authenticated (users, via PostgREST)       service_role (the service key)
--    orgs                     select, insert, update (RLS: admins)        select, insert, update, delete
--    org_memberships          select, insert (org_id, user_id, role),     select, insert, update, delete
--                             update (role), delete (RLS: admins)
--    catalog_items            select, insert, update, delete (RLS)        select, insert, update, delete
--    catalog_item_embeddings  select                                      select, insert, update, delete
--    requests, proposals      select (writes go through the workflow      select, insert, update, delete
--                             functions, 0013)
--    audit_events             select                                      select, insert
--
--    `anon` (the public key without a user) gets no table: nothing here is
--    for signed-out callers. The service role writes embeddings and reads
--    memberships for the server, and onboards orgs and members for the
--    operator (there is no API for that); audit events are appended, never
--    changed. There are no sequences (every key is a uuid).
--
-- 2. pgvector wherever the project keeps it. Today's Dashboard enables
--    extensions into schema `extensions`; projects of before 2026 often have
--    pgvector in `public`. Our functions pinned `search_path = public`, so
--    `vector`, its casts and `<=>` did not resolve with pgvector in
--    `extensions` (42883 on every search). They now pin
--    `public, extensions, pg_temp`: on Supabase only the platform and
--    `postgres` may create objects in `extensions`, so it is as safe a
--    SECURITY DEFINER path as `public`.
--
-- 3. Only our functions, by name: another application's functions in the
--    same schema are not touched. None is executable by PUBLIC or anon; the
--    grants to authenticated and service_role made where each function was
--    defined stay.

revoke all on table public.orgs, public.org_memberships, public.catalog_items,
    public.catalog_item_embeddings, public.requests, public.proposals, public.audit_events
    from anon, authenticated, service_role;

grant select, insert, update on table public.orgs to authenticated;
grant select, delete on table public.org_memberships to authenticated;
grant insert (org_id, user_id, role) on table public.org_memberships to authenticated;
grant update (role) on table public.org_memberships to authenticated;
grant select, insert, update, delete on table public.catalog_items to authenticated;
grant select on table public.catalog_item_embeddings, public.requests, public.proposals,
    public.audit_events to authenticated;

grant select, insert, update, delete on table public.orgs, public.org_memberships,
    public.catalog_items, public.catalog_item_embeddings, public.requests, public.proposals
    to service_role;
grant select, insert on table public.audit_events to service_role;

do $$
declare
    f regprocedure;
begin
    for f in
        select p.oid::regprocedure
        from pg_proc p
        join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public'
          and p.proname in (
              'user_org_id', 'user_role', 'has_role', 'search_catalog_items', 'get_item_embedding',
              'create_catalog_item_with_embedding', 'catalog_item_exists',
              'catalog_embedding_coverage', 'catalog_items_needing_embedding',
              'save_catalog_item_embeddings', 'catalog_item_embedding_org',
              'procurement_caller_org', 'write_audit_event', 'insert_proposal', 'create_request',
              'review_request', 'create_proposal', 'request_new_item', 'merge_proposal',
              'merge_add_item_proposal', 'merge_replace_item_proposal',
              'merge_deprecate_item_proposal', 'reject_proposal', 'procurement_row_exists',
              'audit_catalog_item_created', 'catalog_item_moves_its_embedding')
    loop
        execute format('alter function %s set search_path = public, extensions, pg_temp', f);
        execute format('revoke execute on function %s from public, anon', f);
    end loop;
end;
$$;
