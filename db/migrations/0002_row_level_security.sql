-- Row-level security as the original service defined it: members read their
-- org's rows, admins write catalog items, reviewers and admins handle the
-- workflow, and the service role reads everything. Later migrations rewrite
-- these policies in Supabase's faster form; this one keeps the original rules.

-- Membership helpers. SECURITY DEFINER so policies on org_memberships do not
-- recurse into themselves. They live in `public` because Supabase no longer
-- lets projects create functions in its `auth` schema.
create or replace function public.user_org_id() returns uuid
language sql stable security definer set search_path = public
as $$
    select org_id from org_memberships where user_id = auth.uid() limit 1
$$;

create or replace function public.user_role(org_uuid uuid) returns text
language sql stable security definer set search_path = public
as $$
    select role from org_memberships where org_id = org_uuid and user_id = auth.uid() limit 1
$$;

create or replace function public.has_role(required_roles text[]) returns boolean
language sql stable security definer set search_path = public
as $$
    select exists (
        select 1 from org_memberships where user_id = auth.uid() and role = any (required_roles)
    )
$$;

alter table orgs enable row level security;
alter table org_memberships enable row level security;
alter table catalog_items enable row level security;
alter table catalog_item_embeddings enable row level security;
alter table requests enable row level security;
alter table proposals enable row level security;
alter table audit_events enable row level security;

-- orgs
create policy "Users can read own org" on orgs for select
    using (id = public.user_org_id());
create policy "Admins can create orgs" on orgs for insert
    with check (public.has_role(array['admin']));
create policy "Admins can update own org" on orgs for update
    using (id = public.user_org_id() and public.has_role(array['admin']));
create policy "Service role can read all orgs" on orgs for select to service_role
    using (true);

-- org_memberships
create policy "Users can read own org memberships" on org_memberships for select
    using (org_id = public.user_org_id());
create policy "Admins can create memberships" on org_memberships for insert
    with check (org_id = public.user_org_id() and public.has_role(array['admin']));
create policy "Admins can update memberships" on org_memberships for update
    using (org_id = public.user_org_id() and public.has_role(array['admin']));
create policy "Admins can delete memberships" on org_memberships for delete
    using (org_id = public.user_org_id() and public.has_role(array['admin']));
create policy "Service role can read all memberships" on org_memberships for select to service_role
    using (true);

-- catalog_items: members read, admins write (requesters go through proposals)
create policy "Users can read org catalog items" on catalog_items for select
    using (org_id = public.user_org_id());
create policy "Admins can create catalog items" on catalog_items for insert
    with check (org_id = public.user_org_id() and public.has_role(array['admin']));
create policy "Admins can update catalog items" on catalog_items for update
    using (org_id = public.user_org_id() and public.has_role(array['admin']));
create policy "Admins can delete catalog items" on catalog_items for delete
    using (org_id = public.user_org_id() and public.has_role(array['admin']));
create policy "Service role can read all catalog items" on catalog_items for select to service_role
    using (true);

-- catalog_item_embeddings: read with the item; written only by the service role
create policy "Users can read embeddings" on catalog_item_embeddings for select
    using (exists (
        select 1 from catalog_items
        where catalog_items.id = catalog_item_embeddings.catalog_item_id
          and catalog_items.org_id = public.user_org_id()
    ));
create policy "Service role can read all embeddings" on catalog_item_embeddings for select to service_role
    using (true);

-- requests
create policy "Users can read org requests" on requests for select
    using (org_id = public.user_org_id());
create policy "Users can create requests" on requests for insert
    with check (org_id = public.user_org_id() and created_by = auth.uid());
create policy "Reviewers can update requests" on requests for update
    using (org_id = public.user_org_id() and public.has_role(array['reviewer', 'admin']));
create policy "Service role can read all requests" on requests for select to service_role
    using (true);

-- proposals
create policy "Users can read org proposals" on proposals for select
    using (org_id = public.user_org_id());
create policy "Reviewers can create proposals" on proposals for insert
    with check (
        org_id = public.user_org_id()
        and proposed_by = auth.uid()
        and public.has_role(array['reviewer', 'admin'])
    );
create policy "Reviewers can update proposals" on proposals for update
    using (org_id = public.user_org_id() and public.has_role(array['reviewer', 'admin']));
create policy "Service role can read all proposals" on proposals for select to service_role
    using (true);

-- audit_events: read-only for members; written by the backend
create policy "Users can read org audit events" on audit_events for select
    using (org_id = public.user_org_id());
create policy "Service role can read all audit events" on audit_events for select to service_role
    using (true);
