-- The original policies in Supabase's fast form, same rules:
--   * `to authenticated`, so anonymous requests skip them entirely;
--   * helpers wrapped in `(select ...)`, so Postgres evaluates them once per
--     statement (an initPlan) instead of once per row;
--   * every filtered column indexed (org_memberships.user_id and the org_id
--     columns already are; catalog_item_embeddings.catalog_item_id is unique).
-- The service role bypasses RLS, so its "read all" policies stay as they were.

-- orgs
drop policy "Users can read own org" on orgs;
create policy "Users can read own org" on orgs for select to authenticated
    using (id = (select public.user_org_id()));
drop policy "Admins can create orgs" on orgs;
create policy "Admins can create orgs" on orgs for insert to authenticated
    with check ((select public.has_role(array['admin'])));
drop policy "Admins can update own org" on orgs;
create policy "Admins can update own org" on orgs for update to authenticated
    using (id = (select public.user_org_id()) and (select public.has_role(array['admin'])));

-- org_memberships
drop policy "Users can read own org memberships" on org_memberships;
create policy "Users can read own org memberships" on org_memberships for select to authenticated
    using (org_id = (select public.user_org_id()));
drop policy "Admins can create memberships" on org_memberships;
create policy "Admins can create memberships" on org_memberships for insert to authenticated
    with check (org_id = (select public.user_org_id()) and (select public.has_role(array['admin'])));
drop policy "Admins can update memberships" on org_memberships;
create policy "Admins can update memberships" on org_memberships for update to authenticated
    using (org_id = (select public.user_org_id()) and (select public.has_role(array['admin'])));
drop policy "Admins can delete memberships" on org_memberships;
create policy "Admins can delete memberships" on org_memberships for delete to authenticated
    using (org_id = (select public.user_org_id()) and (select public.has_role(array['admin'])));

-- catalog_items
drop policy "Users can read org catalog items" on catalog_items;
create policy "Users can read org catalog items" on catalog_items for select to authenticated
    using (org_id = (select public.user_org_id()));
drop policy "Admins can create catalog items" on catalog_items;
create policy "Admins can create catalog items" on catalog_items for insert to authenticated
    with check (org_id = (select public.user_org_id()) and (select public.has_role(array['admin'])));
drop policy "Admins can update catalog items" on catalog_items;
create policy "Admins can update catalog items" on catalog_items for update to authenticated
    using (org_id = (select public.user_org_id()) and (select public.has_role(array['admin'])));
drop policy "Admins can delete catalog items" on catalog_items;
create policy "Admins can delete catalog items" on catalog_items for delete to authenticated
    using (org_id = (select public.user_org_id()) and (select public.has_role(array['admin'])));

-- catalog_item_embeddings: the org check through an indexed semi-join
drop policy "Users can read embeddings" on catalog_item_embeddings;
create policy "Users can read embeddings" on catalog_item_embeddings for select to authenticated
    using (catalog_item_id in (
        select id from catalog_items where org_id = (select public.user_org_id())
    ));

-- requests
drop policy "Users can read org requests" on requests;
create policy "Users can read org requests" on requests for select to authenticated
    using (org_id = (select public.user_org_id()));
drop policy "Users can create requests" on requests;
create policy "Users can create requests" on requests for insert to authenticated
    with check (org_id = (select public.user_org_id()) and created_by = (select auth.uid()));
drop policy "Reviewers can update requests" on requests;
create policy "Reviewers can update requests" on requests for update to authenticated
    using (org_id = (select public.user_org_id()) and (select public.has_role(array['reviewer', 'admin'])));

-- proposals
drop policy "Users can read org proposals" on proposals;
create policy "Users can read org proposals" on proposals for select to authenticated
    using (org_id = (select public.user_org_id()));
drop policy "Reviewers can create proposals" on proposals;
create policy "Reviewers can create proposals" on proposals for insert to authenticated
    with check (
        org_id = (select public.user_org_id())
        and proposed_by = (select auth.uid())
        and (select public.has_role(array['reviewer', 'admin']))
    );
drop policy "Reviewers can update proposals" on proposals;
create policy "Reviewers can update proposals" on proposals for update to authenticated
    using (org_id = (select public.user_org_id()) and (select public.has_role(array['reviewer', 'admin'])));

-- audit_events
drop policy "Users can read org audit events" on audit_events;
create policy "Users can read org audit events" on audit_events for select to authenticated
    using (org_id = (select public.user_org_id()));

-- The helpers read org_memberships by user; make that lookup one index probe.
create index if not exists idx_org_memberships_user_org_role
    on org_memberships (user_id, org_id, role);
