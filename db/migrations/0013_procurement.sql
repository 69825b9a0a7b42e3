-- The procurement workflow: requests, proposals, their merge into the
-- catalog, and the audit log. Every change and the audit events recording
-- it are one transaction: each route calls one function below.
--
-- The functions are SECURITY DEFINER (an audit event may only be written by
-- the backend, and a requester's request-new-item proposal would fail the
-- proposals insert policy), so they enforce row-level security's rules
-- themselves: the org and role come from the caller's token (auth.uid(),
-- user_org_id(), has_role()), never from a parameter; search_path is pinned;
-- anon cannot execute them. Refusals are raised with SQLSTATEs of class CA
-- (CA400 bad input, CA403 not allowed, CA404 no such row, CA409 wrong
-- state) and the original service's messages, which the server passes on.
--
-- The original's merge functions keep their names and parameters (one more,
-- defaulted, for the embedding model), so a database it created keeps
-- working; they now check the caller, the org, the state and the type.

-- request-new-item keeps the requester's justification (the original dropped it).
alter table proposals add column if not exists justification text;

-- Keyset pages, newest first, per org.
create index if not exists idx_requests_org_created_id on requests (org_id, created_at desc, id desc);
create index if not exists idx_proposals_org_created_id on proposals (org_id, created_at desc, id desc);
create index if not exists idx_audit_events_org_created_id on audit_events (org_id, created_at desc, id desc);
create index if not exists idx_audit_events_resource on audit_events (resource_type, resource_id);

-- The audit log is for admins.
drop policy if exists "Users can read org audit events" on audit_events;
drop policy if exists "Admins can read org audit events" on audit_events;
create policy "Admins can read org audit events" on audit_events for select to authenticated
    using (org_id = (select public.user_org_id()) and (select public.has_role(array['admin'])));

-- The caller's org, refusing non-members and, when p_roles is given, other roles.
create or replace function public.procurement_caller_org(p_roles text[]) returns uuid
language plpgsql stable security definer set search_path = public, pg_temp
as $$
declare
    v_org uuid := public.user_org_id();
begin
    if auth.uid() is null or v_org is null then
        raise exception 'User is not a member of any organization' using errcode = 'CA403';
    end if;
    if p_roles is not null and not public.has_role(p_roles) then
        raise exception 'Requires role: %', array_to_string(p_roles, ', ') using errcode = 'CA403';
    end if;
    return v_org;
end;
$$;

create or replace function public.write_audit_event(
    p_org_id uuid, p_event_type text, p_actor_id uuid,
    p_resource_type text, p_resource_id uuid, p_metadata jsonb
) returns void
language sql security definer set search_path = public, pg_temp
as $$
    insert into audit_events (org_id, event_type, actor_id, resource_type, resource_id, metadata)
    values (p_org_id, p_event_type, p_actor_id, p_resource_type, p_resource_id, coalesce(p_metadata, '{}'));
$$;

-- A proposal of p_org by p_actor from validated fields (proposals' own
-- column names), after the rules only the database can check: the item to
-- replace or deprecate and the request are the org's own.
create or replace function public.insert_proposal(
    p_org uuid, p_actor uuid, p_fields jsonb, p_request_id uuid, p_justification text
) returns proposals
language plpgsql security definer set search_path = public, pg_temp
as $$
declare
    v_new proposals := jsonb_populate_record(null::proposals, p_fields);
    v_row proposals;
begin
    if v_new.proposal_type is null then
        raise exception 'proposal_type is required' using errcode = 'CA400';
    end if;
    if v_new.proposal_type not in ('ADD_ITEM', 'REPLACE_ITEM', 'DEPRECATE_ITEM') then
        raise exception 'Invalid proposal_type. Must be one of: ADD_ITEM, REPLACE_ITEM, DEPRECATE_ITEM'
            using errcode = 'CA400';
    end if;
    if v_new.proposal_type in ('ADD_ITEM', 'REPLACE_ITEM') and v_new.item_name is null then
        raise exception 'item_name is required for %', v_new.proposal_type using errcode = 'CA400';
    end if;
    if v_new.proposal_type in ('REPLACE_ITEM', 'DEPRECATE_ITEM')
       and v_new.replacing_item_id is null then
        raise exception 'replacing_item_id is required for %', v_new.proposal_type
            using errcode = 'CA400';
    end if;
    -- Any item named must be the org's own (an ADD_ITEM may name one too).
    if v_new.replacing_item_id is not null
       and not exists (select 1 from catalog_items
                       where id = v_new.replacing_item_id and org_id = p_org) then
        raise exception 'Catalog item not found: %', v_new.replacing_item_id
            using errcode = 'CA404';
    end if;
    if p_request_id is not null
       and not exists (select 1 from requests where id = p_request_id and org_id = p_org) then
        raise exception 'Request not found: %', p_request_id using errcode = 'CA404';
    end if;

    insert into proposals (
        org_id, proposal_type, proposed_by, request_id, item_name, item_description,
        item_category, item_metadata, replacing_item_id, item_price, item_pricing_type,
        item_product_url, item_vendor, item_sku, justification
    ) values (
        p_org, v_new.proposal_type, p_actor, p_request_id, v_new.item_name, v_new.item_description,
        v_new.item_category, coalesce(v_new.item_metadata, '{}'), v_new.replacing_item_id,
        v_new.item_price, v_new.item_pricing_type, v_new.item_product_url, v_new.item_vendor,
        v_new.item_sku, p_justification
    )
    returning * into v_row;

    perform public.write_audit_event(p_org, 'proposal.created', p_actor, 'proposal', v_row.id,
        jsonb_build_object('proposal_type', v_row.proposal_type));
    return v_row;
end;
$$;

-- POST /api/requests: any member.
create or replace function public.create_request(
    p_search_query text, p_search_results jsonb default '[]', p_justification text default null
) returns jsonb
language plpgsql security definer set search_path = public, pg_temp
as $$
declare
    v_org uuid := public.procurement_caller_org(null);
    v_row requests;
begin
    insert into requests (org_id, created_by, search_query, search_results, justification)
    values (v_org, auth.uid(), p_search_query, coalesce(p_search_results, '[]'), p_justification)
    returning * into v_row;
    perform public.write_audit_event(v_org, 'request.created', auth.uid(), 'request', v_row.id,
        jsonb_build_object('search_query', p_search_query));
    return to_jsonb(v_row);
end;
$$;

-- POST /api/requests/{id}/review: reviewers and admins; with p_proposal
-- (approving only) the proposal is created in the same transaction.
create or replace function public.review_request(
    p_request_id uuid, p_status text, p_review_notes text default null, p_proposal jsonb default null
) returns jsonb
language plpgsql security definer set search_path = public, pg_temp
as $$
declare
    v_org uuid := public.procurement_caller_org(array['reviewer', 'admin']);
    v_row requests;
    v_proposal proposals;
begin
    if p_status is null or p_status not in ('approved', 'rejected') then
        raise exception 'status must be ''approved'' or ''rejected''' using errcode = 'CA400';
    end if;
    select * into v_row from requests where id = p_request_id for update;
    if not found then
        raise exception 'Request not found: %', p_request_id using errcode = 'CA404';
    end if;
    if v_row.org_id <> v_org then
        raise exception 'Cannot review request from different organization' using errcode = 'CA403';
    end if;
    if v_row.status <> 'pending' then
        raise exception 'Only pending requests can be reviewed (current: %)', v_row.status
            using errcode = 'CA409';
    end if;

    update requests
    set status = p_status, reviewed_by = auth.uid(), review_notes = p_review_notes, reviewed_at = now()
    where id = p_request_id
    returning * into v_row;
    perform public.write_audit_event(v_org, 'request.' || p_status, auth.uid(), 'request', v_row.id,
        jsonb_build_object('review_notes', p_review_notes));

    if p_status = 'approved' and p_proposal is not null then
        v_proposal := public.insert_proposal(v_org, auth.uid(), p_proposal, p_request_id, null);
        return to_jsonb(v_row) || jsonb_build_object('proposal', to_jsonb(v_proposal));
    end if;
    return to_jsonb(v_row);
end;
$$;

-- POST /api/proposals: reviewers and admins.
create or replace function public.create_proposal(p_proposal jsonb, p_request_id uuid default null)
returns jsonb
language plpgsql security definer set search_path = public, pg_temp
as $$
declare
    v_org uuid := public.procurement_caller_org(array['reviewer', 'admin']);
begin
    return to_jsonb(public.insert_proposal(v_org, auth.uid(), p_proposal, p_request_id, null));
end;
$$;

-- POST /api/catalog/request-new-item: any member asks for a new item; the
-- proposal waits for a reviewer.
create or replace function public.request_new_item(p_proposal jsonb, p_justification text default null)
returns jsonb
language plpgsql security definer set search_path = public, pg_temp
as $$
declare
    v_org uuid := public.procurement_caller_org(null);
begin
    return to_jsonb(public.insert_proposal(
        v_org, auth.uid(),
        coalesce(p_proposal, '{}') || jsonb_build_object('proposal_type', 'ADD_ITEM'),
        null, p_justification));
end;
$$;

-- Approving a proposal: one transaction, after the embedding was made.
create or replace function public.merge_proposal(
    p_proposal_id uuid, p_reviewed_by uuid, p_review_notes text,
    p_embedding vector(768), p_model_version text, p_expected_type text
) returns jsonb
language plpgsql security definer set search_path = public, pg_temp
as $$
declare
    v_org uuid := public.procurement_caller_org(array['reviewer', 'admin']);
    v_proposal proposals;
    v_item catalog_items;
    v_result jsonb;
begin
    if p_reviewed_by is distinct from auth.uid() then
        raise exception 'p_reviewed_by must be the caller' using errcode = 'CA403';
    end if;
    select * into v_proposal from proposals where id = p_proposal_id for update;
    if not found then
        raise exception 'Proposal not found: %', p_proposal_id using errcode = 'CA404';
    end if;
    if v_proposal.org_id <> v_org then
        raise exception 'Cannot approve proposal from different organization' using errcode = 'CA403';
    end if;
    if v_proposal.status <> 'pending' then
        raise exception 'Only pending proposals can be approved' using errcode = 'CA409';
    end if;
    if v_proposal.proposal_type <> p_expected_type then
        raise exception 'Proposal is %, not %', v_proposal.proposal_type, p_expected_type
            using errcode = 'CA400';
    end if;

    v_result := jsonb_build_object('proposal_id', v_proposal.id, 'status', 'merged');

    if v_proposal.proposal_type in ('ADD_ITEM', 'REPLACE_ITEM') then
        if v_proposal.item_name is null then
            raise exception 'Proposal has no item_name' using errcode = 'CA400';
        end if;
        -- The merge writes its own event, naming the proposal.
        perform set_config('catalogai.merging', 'on', true);
        insert into catalog_items (
            org_id, name, description, category, created_by, status,
            price, pricing_type, product_url, vendor, sku, metadata
        ) values (
            v_org, v_proposal.item_name, v_proposal.item_description, v_proposal.item_category,
            auth.uid(), 'active', v_proposal.item_price, v_proposal.item_pricing_type,
            v_proposal.item_product_url, v_proposal.item_vendor, v_proposal.item_sku,
            coalesce(v_proposal.item_metadata, '{}')
        )
        returning * into v_item;
        perform set_config('catalogai.merging', 'off', true);
        if p_embedding is not null then
            insert into catalog_item_embeddings (catalog_item_id, embedding, model_version)
            values (v_item.id, p_embedding, coalesce(p_model_version, 'models/text-embedding-004'));
        end if;
        perform public.write_audit_event(v_org, 'catalog.item.created', auth.uid(), 'catalog_item',
            v_item.id, jsonb_build_object('name', v_item.name, 'via_proposal', v_proposal.id));
    end if;

    if v_proposal.proposal_type in ('REPLACE_ITEM', 'DEPRECATE_ITEM') then
        -- Rechecked now: the item must still be this org's.
        update catalog_items
        set status = 'deprecated',
            replacement_item_id = case when v_item.id is not null then v_item.id else replacement_item_id end,
            updated_at = now()
        where id = v_proposal.replacing_item_id and org_id = v_org;
        if not found then
            raise exception 'The item to % is no longer in this organization''s catalog',
                case v_proposal.proposal_type when 'REPLACE_ITEM' then 'replace' else 'deprecate' end
                using errcode = 'CA409';
        end if;
    end if;

    update proposals
    set status = 'merged', reviewed_by = auth.uid(), review_notes = p_review_notes,
        reviewed_at = now(), merged_at = now()
    where id = p_proposal_id
    returning * into v_proposal;
    perform public.write_audit_event(v_org, 'proposal.merged', auth.uid(), 'proposal', v_proposal.id,
        jsonb_build_object('proposal_type', v_proposal.proposal_type));

    v_result := v_result || case v_proposal.proposal_type
        when 'ADD_ITEM' then jsonb_build_object('created_item_id', v_item.id)
        when 'REPLACE_ITEM' then jsonb_build_object('new_item_id', v_item.id,
                                                    'old_item_id', v_proposal.replacing_item_id)
        else jsonb_build_object('deprecated_item_id', v_proposal.replacing_item_id)
    end;
    return v_result || jsonb_build_object('proposal', to_jsonb(v_proposal));
end;
$$;

drop function if exists public.merge_add_item_proposal(uuid, uuid, text, vector);
drop function if exists public.merge_replace_item_proposal(uuid, uuid, text, vector);
drop function if exists public.merge_deprecate_item_proposal(uuid, uuid, text);

create or replace function public.merge_add_item_proposal(
    p_proposal_id uuid, p_reviewed_by uuid, p_review_notes text default null,
    p_embedding vector(768) default null, p_model_version text default null
) returns jsonb
language sql security definer set search_path = public, pg_temp
as $$
    select public.merge_proposal(p_proposal_id, p_reviewed_by, p_review_notes, p_embedding,
                                 p_model_version, 'ADD_ITEM');
$$;

create or replace function public.merge_replace_item_proposal(
    p_proposal_id uuid, p_reviewed_by uuid, p_review_notes text default null,
    p_embedding vector(768) default null, p_model_version text default null
) returns jsonb
language sql security definer set search_path = public, pg_temp
as $$
    select public.merge_proposal(p_proposal_id, p_reviewed_by, p_review_notes, p_embedding,
                                 p_model_version, 'REPLACE_ITEM');
$$;

create or replace function public.merge_deprecate_item_proposal(
    p_proposal_id uuid, p_reviewed_by uuid, p_review_notes text default null
) returns jsonb
language sql security definer set search_path = public, pg_temp
as $$
    select public.merge_proposal(p_proposal_id, p_reviewed_by, p_review_notes, null, null,
                                 'DEPRECATE_ITEM');
$$;

-- POST /api/proposals/{id}/reject: reviewers and admins.
create or replace function public.reject_proposal(p_proposal_id uuid, p_review_notes text default null)
returns jsonb
language plpgsql security definer set search_path = public, pg_temp
as $$
declare
    v_org uuid := public.procurement_caller_org(array['reviewer', 'admin']);
    v_row proposals;
begin
    select * into v_row from proposals where id = p_proposal_id for update;
    if not found then
        raise exception 'Proposal not found: %', p_proposal_id using errcode = 'CA404';
    end if;
    if v_row.org_id <> v_org then
        raise exception 'Cannot reject proposal from different organization' using errcode = 'CA403';
    end if;
    if v_row.status <> 'pending' then
        raise exception 'Only pending proposals can be rejected' using errcode = 'CA409';
    end if;
    update proposals
    set status = 'rejected', reviewed_by = auth.uid(), review_notes = p_review_notes, reviewed_at = now()
    where id = p_proposal_id
    returning * into v_row;
    perform public.write_audit_event(v_org, 'proposal.rejected', auth.uid(), 'proposal', v_row.id, '{}');
    return to_jsonb(v_row);
end;
$$;

-- Whether a request or proposal exists at all, whoever owns it, so another
-- org's id answers 403 rather than 404 (as items do). Service role only.
create or replace function public.procurement_row_exists(p_kind text, p_id uuid) returns boolean
language sql stable security definer set search_path = public, pg_temp
as $$
    select case p_kind
        when 'request' then exists (select 1 from requests where id = p_id)
        when 'proposal' then exists (select 1 from proposals where id = p_id)
        else false
    end
$$;

-- Every item created outside a merge (POST /api/catalog/items, an admin's
-- insert straight through PostgREST) is audited in its own transaction.
create or replace function public.audit_catalog_item_created() returns trigger
language plpgsql security definer set search_path = public, pg_temp
as $$
begin
    -- Merges write their own event (with via_proposal); this covers direct creates.
    if current_setting('catalogai.merging', true) is distinct from 'on' then
        perform public.write_audit_event(new.org_id, 'catalog.item.created',
            coalesce(auth.uid(), new.created_by), 'catalog_item', new.id,
            jsonb_build_object('name', new.name));
    end if;
    return new;
end;
$$;

drop trigger if exists audit_catalog_item_created on catalog_items;
create trigger audit_catalog_item_created after insert on catalog_items
    for each row execute function public.audit_catalog_item_created();

-- Internal helpers: only the functions above (running as their owner) call them.
revoke execute on function public.procurement_caller_org(text[]) from public, anon, authenticated;
revoke execute on function public.write_audit_event(uuid, text, uuid, text, uuid, jsonb) from public, anon, authenticated;
revoke execute on function public.insert_proposal(uuid, uuid, jsonb, uuid, text) from public, anon, authenticated;
revoke execute on function public.merge_proposal(uuid, uuid, text, vector, text, text) from public, anon, authenticated;
revoke execute on function public.audit_catalog_item_created() from public, anon, authenticated;
revoke execute on function public.procurement_row_exists(text, uuid) from public, anon, authenticated;
grant execute on function public.procurement_row_exists(text, uuid) to service_role;

-- What members call, as themselves.
revoke execute on function public.create_request(text, jsonb, text) from public, anon;
revoke execute on function public.review_request(uuid, text, text, jsonb) from public, anon;
revoke execute on function public.create_proposal(jsonb, uuid) from public, anon;
revoke execute on function public.request_new_item(jsonb, text) from public, anon;
revoke execute on function public.merge_add_item_proposal(uuid, uuid, text, vector, text) from public, anon;
revoke execute on function public.merge_replace_item_proposal(uuid, uuid, text, vector, text) from public, anon;
revoke execute on function public.merge_deprecate_item_proposal(uuid, uuid, text) from public, anon;
revoke execute on function public.reject_proposal(uuid, text) from public, anon;
grant execute on function
    public.create_request(text, jsonb, text),
    public.review_request(uuid, text, text, jsonb),
    public.create_proposal(jsonb, uuid),
    public.request_new_item(jsonb, text),
    public.merge_add_item_proposal(uuid, uuid, text, vector, text),
    public.merge_replace_item_proposal(uuid, uuid, text, vector, text),
    public.merge_deprecate_item_proposal(uuid, uuid, text),
    public.reject_proposal(uuid, text)
to authenticated;

-- Requests and proposals change only through the functions above, so their
-- audit events are never skipped: no direct writes by users.
revoke insert, update, delete on requests, proposals from anon, authenticated;
