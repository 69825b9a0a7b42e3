-- Tenant isolation holes inherited from the original schema, closed without
-- breaking it (every function keeps its name and signature, so a database the
-- original created, and the original's clients, keep working):
--
-- 1. get_item_embedding(item_uuid) was SECURITY DEFINER with no org check and
--    executable by anon: anyone holding the public key could read any tenant's
--    vectors through PostgREST. It now runs as the caller (row-level security
--    decides) and anon cannot call it.
-- 2. has_role(roles) was true when the caller held a role in *any* org, and
--    user_org_id() picked an arbitrary membership. Every write policy pairs
--    `org_id = user_org_id()` with has_role(...), so an admin of org A who is a
--    requester of org B could promote themselves in B or write B's catalog
--    whenever user_org_id() happened to pick B. Now user_org_id() is the
--    oldest membership (ties by id), the same choice the server makes, and
--    has_role() asks about the role in that org: the org of every row a
--    policy lets the caller write.
-- 3. Clients can no longer write org_memberships.created_at, user_id or
--    org_id after insert (an admin backdating a membership, or re-pointing an
--    old one at another user, could move that user's session into their org):
--    inserts name org, user and role; updates change the role only.
-- 4. Every SECURITY DEFINER function pins search_path to public, pg_temp, and
--    none is executable by anon; catalog_item_exists is for the service role
--    only (the server keeps the original's 403 for another org's item without
--    letting any signed-in user probe ids straight through PostgREST).

-- 1. Embeddings are read under row-level security.
create or replace function public.get_item_embedding(item_uuid uuid) returns vector(768)
language sql stable security invoker set search_path = public, pg_temp
as $$
    select embedding from catalog_item_embeddings where catalog_item_id = item_uuid limit 1
$$;
revoke execute on function public.get_item_embedding(uuid) from public, anon;
grant execute on function public.get_item_embedding(uuid) to authenticated, service_role;

-- 2. One org per caller, chosen deterministically; roles asked in that org.
create or replace function public.user_org_id() returns uuid
language sql stable security definer set search_path = public, pg_temp
as $$
    select org_id from public.org_memberships
    where user_id = auth.uid()
    order by created_at, id
    limit 1
$$;

create or replace function public.has_role(required_roles text[]) returns boolean
language sql stable security definer set search_path = public, pg_temp
as $$
    select exists (
        select 1 from public.org_memberships
        where user_id = auth.uid()
          and org_id = public.user_org_id()
          and role = any (required_roles)
    )
$$;

create or replace function public.user_role(org_uuid uuid) returns text
language sql stable security definer set search_path = public, pg_temp
as $$
    select role from public.org_memberships where org_id = org_uuid and user_id = auth.uid()
$$;

-- The oldest-membership lookup, one index probe.
create index if not exists idx_org_memberships_user_created
    on org_memberships (user_id, created_at, id);

-- 3. Membership columns clients may write.
revoke insert, update on org_memberships from anon, authenticated;
grant insert (org_id, user_id, role) on org_memberships to authenticated;
grant update (role) on org_memberships to authenticated;
-- An admin's insert or update must land in their own org, as the admin of it.
drop policy if exists "Admins can update memberships" on org_memberships;
create policy "Admins can update memberships" on org_memberships for update to authenticated
    using (org_id = (select public.user_org_id()) and (select public.has_role(array['admin'])))
    with check (org_id = (select public.user_org_id()) and (select public.has_role(array['admin'])));

-- 4. Every SECURITY DEFINER function of ours or the original's in public: a
-- pinned search_path, and no anon caller. Done by catalogue so every overload
-- the original created is covered; by name, so another application's
-- functions in the same schema are left as they are.
do $$
declare
    f regprocedure;
begin
    for f in
        select p.oid::regprocedure
        from pg_proc p
        join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and p.prosecdef
          and p.proname in ('user_org_id', 'user_role', 'has_role', 'search_catalog_items',
                            'get_item_embedding', 'create_catalog_item_with_embedding',
                            'catalog_item_exists', 'merge_add_item_proposal',
                            'merge_replace_item_proposal', 'merge_deprecate_item_proposal')
    loop
        execute format('alter function %s set search_path = public, pg_temp', f);
        execute format('revoke execute on function %s from public, anon', f);
    end loop;
end;
$$;

revoke execute on function public.catalog_item_exists(uuid) from authenticated;
grant execute on function public.catalog_item_exists(uuid) to service_role;

-- The policies' helpers stay callable by signed-in users (policies run them
-- as the caller); new functions default to no anon access.
grant execute on function public.user_org_id(), public.has_role(text[]), public.user_role(uuid)
    to authenticated, service_role;
alter default privileges in schema public revoke execute on functions from anon;
