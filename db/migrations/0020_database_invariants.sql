-- The database holds the API's rules itself, since anyone with the public key
-- and a member's token can write through PostgREST without our server:
--
-- 1. Limits as CHECK constraints: text lengths, http(s) URLs, prices
--    0..10,000,000, item metadata an object of at most 50 keys and 64 KiB,
--    search results an array of at most 100 objects with a string name,
--    every stored JSON bounded in size and depth with numbers a double can
--    hold (so no stored value can make a client's read fail), timestamps
--    finite. Added NOT VALID and then validated: a database that already
--    holds rows breaking one (the original wrote without these rules) keeps
--    the constraint NOT VALID, which still holds every new and changed row;
--    catalogai_meta.validate_invariants() (run by scripts/migrate each time)
--    names the rows' count and validates it once they are fixed.
-- 2. Authorship and time set by the database for members' writes:
--    created_by / proposed_by / reviewed_by are auth.uid(), created_at is
--    kept, updated_at / reviewed_at are now(), whatever the caller sent.
--    The service key (and SQL) is trusted with them: it writes for a caller
--    our server has already checked.
-- 3. Audit events for direct item updates and deletes and for every
--    membership change, in the same transaction, the actor auth.uid().
-- 4. A merge stores a vector only when the service sends it: the server
--    calls the merges with the service key and the reviewer as the actor,
--    whose role in the proposal's org is checked here again; a member's
--    own vector is dropped (the item is embedded by the repair or the
--    background re-embed), so a reviewer cannot choose where it ranks. The
--    proposal is locked only when it is the actor's org's, and another
--    org's id answers as an unknown one.

-- Pure helpers for the constraints. Outside the API's schema; executable by
-- every role that writes, since a CHECK runs as the writer.
create or replace function catalogai_meta.json_depth(p_value jsonb) returns integer
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
    select case jsonb_typeof(p_value)
        when 'object' then 1 + coalesce((select max(catalogai_meta.json_depth(e.value))
                                         from jsonb_each(p_value) e), 0)
        when 'array' then 1 + coalesce((select max(catalogai_meta.json_depth(e.value))
                                        from jsonb_array_elements(p_value) e), 0)
        else 0
    end
$$;

-- At most p_max_bytes as text, nested at most p_max_depth, and every number
-- within a double's range (serde_json and most clients read numbers as
-- doubles; 1e400 would make every read of the row fail).
create or replace function catalogai_meta.json_is_bounded(p_value jsonb, p_max_bytes integer, p_max_depth integer)
returns boolean
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
    select p_value is null
        or (octet_length(p_value::text) <= p_max_bytes
            and catalogai_meta.json_depth(p_value) <= p_max_depth
            and not jsonb_path_exists(p_value,
                'strict $.** ? (@.type() == "number" && (@ > 1.7976931348623157e308 || @ < -1.7976931348623157e308))'))
$$;

-- An item's metadata: an object of at most 50 keys and 64 KiB, nested at most 32.
create or replace function catalogai_meta.item_metadata_is_valid(p_value jsonb) returns boolean
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
    select p_value is null
        or (jsonb_typeof(p_value) = 'object'
            and (select count(*) from jsonb_object_keys(p_value)) <= 50
            and catalogai_meta.json_is_bounded(p_value, 65536, 32))
$$;

-- A request's search results: at most 100 objects, each with a string name
-- of at most 1,000 characters; 512 KiB and nesting 8 at most in all.
create or replace function catalogai_meta.search_results_are_valid(p_value jsonb) returns boolean
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
    select p_value is null
        or (jsonb_typeof(p_value) = 'array'
            and jsonb_array_length(p_value) <= 100
            and catalogai_meta.json_is_bounded(p_value, 524288, 8)
            and not exists (
                select 1 from jsonb_array_elements(p_value) e
                where jsonb_typeof(e.value) <> 'object'
                   or jsonb_typeof(e.value -> 'name') is distinct from 'string'
                   or char_length(e.value ->> 'name') > 1000))
$$;

-- A product URL as the API takes it.
create or replace function catalogai_meta.product_url_is_valid(p_value text) returns boolean
language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$
    select p_value is null
        or ((p_value like 'https://%' or p_value like 'http://%') and char_length(p_value) <= 2048)
$$;

revoke execute on function
    catalogai_meta.json_depth(jsonb),
    catalogai_meta.json_is_bounded(jsonb, integer, integer),
    catalogai_meta.item_metadata_is_valid(jsonb),
    catalogai_meta.search_results_are_valid(jsonb),
    catalogai_meta.product_url_is_valid(text)
from public;
grant usage on schema catalogai_meta to authenticated, service_role;
grant execute on function
    catalogai_meta.json_depth(jsonb),
    catalogai_meta.json_is_bounded(jsonb, integer, integer),
    catalogai_meta.item_metadata_is_valid(jsonb),
    catalogai_meta.search_results_are_valid(jsonb),
    catalogai_meta.product_url_is_valid(text)
to authenticated, service_role;

-- 1. The limits. Named catalogai_* so validate_invariants finds ours alone.
alter table catalog_items
    add constraint catalogai_item_name check (char_length(name) between 1 and 255) not valid,
    add constraint catalogai_item_description check (char_length(description) <= 10000) not valid,
    add constraint catalogai_item_category check (char_length(category) <= 100) not valid,
    add constraint catalogai_item_vendor check (char_length(vendor) <= 255) not valid,
    add constraint catalogai_item_sku check (char_length(sku) <= 100) not valid,
    add constraint catalogai_item_product_url check (catalogai_meta.product_url_is_valid(product_url)) not valid,
    add constraint catalogai_item_price check (price between 0 and 10000000) not valid,
    add constraint catalogai_item_metadata check (catalogai_meta.item_metadata_is_valid(metadata)) not valid,
    add constraint catalogai_item_times check (isfinite(created_at) and isfinite(updated_at)) not valid;

alter table proposals
    add constraint catalogai_proposal_item_name check (char_length(item_name) between 1 and 255) not valid,
    add constraint catalogai_proposal_item_description check (char_length(item_description) <= 10000) not valid,
    add constraint catalogai_proposal_item_category check (char_length(item_category) <= 100) not valid,
    add constraint catalogai_proposal_item_vendor check (char_length(item_vendor) <= 255) not valid,
    add constraint catalogai_proposal_item_sku check (char_length(item_sku) <= 100) not valid,
    add constraint catalogai_proposal_item_product_url check (catalogai_meta.product_url_is_valid(item_product_url)) not valid,
    add constraint catalogai_proposal_item_price check (item_price between 0 and 10000000) not valid,
    add constraint catalogai_proposal_item_metadata check (catalogai_meta.item_metadata_is_valid(item_metadata)) not valid,
    add constraint catalogai_proposal_notes check (char_length(review_notes) <= 5000 and char_length(justification) <= 5000) not valid,
    add constraint catalogai_proposal_times check (isfinite(created_at) and isfinite(updated_at)
                                                   and isfinite(reviewed_at) and isfinite(merged_at)) not valid;

alter table requests
    add constraint catalogai_request_search_query check (char_length(search_query) between 1 and 1000) not valid,
    add constraint catalogai_request_search_results check (catalogai_meta.search_results_are_valid(search_results)) not valid,
    add constraint catalogai_request_notes check (char_length(review_notes) <= 5000 and char_length(justification) <= 5000) not valid,
    add constraint catalogai_request_times check (isfinite(created_at) and isfinite(updated_at) and isfinite(reviewed_at)) not valid;

alter table audit_events
    add constraint catalogai_audit_names check (char_length(event_type) <= 100 and char_length(resource_type) <= 100) not valid,
    add constraint catalogai_audit_metadata check (metadata is null or (jsonb_typeof(metadata) = 'object'
                                                   and catalogai_meta.json_is_bounded(metadata, 65536, 32))) not valid,
    add constraint catalogai_audit_time check (isfinite(created_at)) not valid;

-- Validates each of our constraints still NOT VALID that the rows now meet,
-- and names the others with the count of rows breaking them. Run by
-- scripts/migrate after every run, as the tables' owner.
create or replace function catalogai_meta.validate_invariants()
returns table (relation text, constraint_name text, rows_breaking bigint)
language plpgsql security invoker set search_path = public, extensions, pg_temp
as $$
declare
    c record;
begin
    for c in
        select con.conrelid::regclass as rel, con.conname, pg_get_expr(con.conbin, con.conrelid) as expr
        from pg_constraint con
        where con.connamespace = 'public'::regnamespace and con.contype = 'c'
          and con.conname like 'catalogai\_%' and not con.convalidated
        order by 1, 2
    loop
        begin
            execute format('alter table %s validate constraint %I', c.rel, c.conname);
        exception when check_violation then
            relation := c.rel::text;
            constraint_name := c.conname;
            execute format('select count(*) from %s where not coalesce((%s), true)', c.rel, c.expr)
                into rows_breaking;
            return next;
        end;
    end loop;
end;
$$;
revoke execute on function catalogai_meta.validate_invariants() from public;


-- 2. Authorship and time for members' writes (auth.uid() is the caller's;
-- the service key carries none). tg_argv[0] names the author column.
create or replace function public.catalogai_stamp_authorship() returns trigger
language plpgsql security invoker set search_path = public, extensions, pg_temp
as $$
declare
    v_uid uuid := auth.uid();
    v_author text := tg_argv[0];
    v_new jsonb;
    v_old jsonb;
    v_patch jsonb;
begin
    if v_uid is null then
        return new;
    end if;
    v_new := to_jsonb(new);
    if tg_op = 'INSERT' then
        v_patch := jsonb_build_object(v_author, v_uid, 'created_at', now(), 'updated_at', now());
        if v_new ? 'reviewed_by' and v_new ->> 'reviewed_by' is not null then
            v_patch := v_patch || jsonb_build_object('reviewed_by', v_uid, 'reviewed_at', now());
        end if;
    else
        v_old := to_jsonb(old);
        v_patch := jsonb_build_object(v_author, v_old -> v_author, 'created_at', v_old -> 'created_at',
                                      'updated_at', now());
        if v_new ? 'reviewed_by' and (v_new -> 'reviewed_by') is distinct from (v_old -> 'reviewed_by') then
            v_patch := v_patch || case when v_new ->> 'reviewed_by' is null
                then jsonb_build_object('reviewed_by', v_old -> 'reviewed_by', 'reviewed_at', v_old -> 'reviewed_at')
                else jsonb_build_object('reviewed_by', v_uid, 'reviewed_at', now())
            end;
        end if;
    end if;
    return jsonb_populate_record(new, v_patch);
end;
$$;
revoke execute on function public.catalogai_stamp_authorship() from public, anon, authenticated;

drop trigger if exists catalogai_stamp_authorship on catalog_items;
create trigger catalogai_stamp_authorship before insert or update on catalog_items
    for each row execute function public.catalogai_stamp_authorship('created_by');
drop trigger if exists catalogai_stamp_authorship on requests;
create trigger catalogai_stamp_authorship before insert or update on requests
    for each row execute function public.catalogai_stamp_authorship('created_by');
drop trigger if exists catalogai_stamp_authorship on proposals;
create trigger catalogai_stamp_authorship before insert or update on proposals
    for each row execute function public.catalogai_stamp_authorship('proposed_by');

-- 3. Audit of direct changes. The actor is the caller; a change made with
-- the service key or in SQL has none, and is recorded under the nil id.
create or replace function public.audit_catalog_item_changed() returns trigger
language plpgsql security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_changed jsonb;
begin
    -- Merges write their own events, naming the proposal.
    if current_setting('catalogai.merging', true) is not distinct from 'on' then
        return null;
    end if;
    if tg_op = 'DELETE' then
        -- Deleted with its org: the org's events go with it.
        if exists (select 1 from orgs where id = old.org_id) then
            perform public.write_audit_event(old.org_id, 'catalog.item.deleted',
                coalesce(auth.uid(), '00000000-0000-0000-0000-000000000000'), 'catalog_item', old.id,
                jsonb_build_object('name', old.name));
        end if;
        return null;
    end if;
    select coalesce(jsonb_agg(n.key order by n.key), '[]') into v_changed
    from jsonb_each(to_jsonb(new)) n
    where n.key <> 'updated_at' and n.value is distinct from to_jsonb(old) -> n.key;
    if jsonb_array_length(v_changed) > 0 then
        perform public.write_audit_event(new.org_id, 'catalog.item.updated',
            coalesce(auth.uid(), '00000000-0000-0000-0000-000000000000'), 'catalog_item', new.id,
            jsonb_build_object('name', new.name, 'changed_fields', v_changed));
    end if;
    return null;
end;
$$;
revoke execute on function public.audit_catalog_item_changed() from public, anon, authenticated;

drop trigger if exists audit_catalog_item_changed on catalog_items;
create trigger audit_catalog_item_changed after update or delete on catalog_items
    for each row execute function public.audit_catalog_item_changed();

create or replace function public.audit_membership_changed() returns trigger
language plpgsql security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_actor uuid := coalesce(auth.uid(), '00000000-0000-0000-0000-000000000000');
begin
    if tg_op = 'INSERT' then
        perform public.write_audit_event(new.org_id, 'membership.created', v_actor, 'membership', new.id,
            jsonb_build_object('user_id', new.user_id, 'role', new.role));
    elsif tg_op = 'UPDATE' then
        if new.org_id is distinct from old.org_id and exists (select 1 from orgs where id = old.org_id) then
            perform public.write_audit_event(old.org_id, 'membership.deleted', v_actor, 'membership', old.id,
                jsonb_build_object('user_id', old.user_id, 'role', old.role));
            perform public.write_audit_event(new.org_id, 'membership.created', v_actor, 'membership', new.id,
                jsonb_build_object('user_id', new.user_id, 'role', new.role));
        elsif (new.role, new.user_id) is distinct from (old.role, old.user_id) then
            perform public.write_audit_event(new.org_id, 'membership.updated', v_actor, 'membership', new.id,
                jsonb_build_object('user_id', new.user_id, 'old_user_id', old.user_id,
                                   'old_role', old.role, 'new_role', new.role));
        end if;
    elsif exists (select 1 from orgs where id = old.org_id) then
        perform public.write_audit_event(old.org_id, 'membership.deleted', v_actor, 'membership', old.id,
            jsonb_build_object('user_id', old.user_id, 'role', old.role));
    end if;
    return null;
end;
$$;
revoke execute on function public.audit_membership_changed() from public, anon, authenticated;

drop trigger if exists audit_membership_changed on org_memberships;
create trigger audit_membership_changed after insert or update or delete on org_memberships
    for each row execute function public.audit_membership_changed();

-- 4. The merges. The actor: with the service key, p_reviewed_by (the server
-- checked the caller; the role is checked again here); otherwise the caller,
-- who must name themselves, and whose vector is not taken.
create or replace function public.procurement_actor_org(p_actor uuid, p_roles text[]) returns uuid
language plpgsql stable security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_org uuid;
    v_role text;
begin
    select m.org_id, m.role into v_org, v_role from public.org_memberships m
    where m.user_id = p_actor
    order by m.created_at, m.id
    limit 1;
    if p_actor is null or v_org is null then
        raise exception 'User is not a member of any organization' using errcode = 'CA403';
    end if;
    if p_roles is not null and not (v_role = any (p_roles)) then
        raise exception 'Requires role: %', array_to_string(p_roles, ', ') using errcode = 'CA403';
    end if;
    return v_org;
end;
$$;
revoke execute on function public.procurement_actor_org(uuid, text[]) from public, anon, authenticated;

create or replace function public.merge_proposal(
    p_proposal_id uuid, p_reviewed_by uuid, p_review_notes text,
    p_embedding vector(768), p_model_version text, p_expected_type text
) returns jsonb
language plpgsql security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_from_service boolean := auth.role() = 'service_role' and auth.uid() is null;
    v_actor uuid;
    v_org uuid;
    v_proposal proposals;
    v_item catalog_items;
    v_result jsonb;
begin
    if v_from_service then
        v_actor := p_reviewed_by;
    else
        if p_reviewed_by is distinct from auth.uid() then
            raise exception 'p_reviewed_by must be the caller' using errcode = 'CA403';
        end if;
        v_actor := auth.uid();
        p_embedding := null;
    end if;
    v_org := public.procurement_actor_org(v_actor, array['reviewer', 'admin']);
    select * into v_proposal from proposals where id = p_proposal_id and org_id = v_org for update;
    if not found then
        raise exception 'Proposal not found: %', p_proposal_id using errcode = 'CA404';
    end if;
    if v_proposal.status <> 'pending' then
        raise exception 'Only pending proposals can be approved' using errcode = 'CA409';
    end if;
    if v_proposal.proposal_type <> p_expected_type then
        raise exception 'Proposal is %, not %', v_proposal.proposal_type, p_expected_type
            using errcode = 'CA400';
    end if;

    v_result := jsonb_build_object('proposal_id', v_proposal.id, 'status', 'merged');
    -- The merge writes its own events, naming the proposal.
    perform set_config('catalogai.merging', 'on', true);

    if v_proposal.proposal_type in ('ADD_ITEM', 'REPLACE_ITEM') then
        if v_proposal.item_name is null then
            raise exception 'Proposal has no item_name' using errcode = 'CA400';
        end if;
        insert into catalog_items (
            org_id, name, description, category, created_by, status,
            price, pricing_type, product_url, vendor, sku, metadata
        ) values (
            v_org, v_proposal.item_name, v_proposal.item_description, v_proposal.item_category,
            v_actor, 'active', v_proposal.item_price, v_proposal.item_pricing_type,
            v_proposal.item_product_url, v_proposal.item_vendor, v_proposal.item_sku,
            coalesce(v_proposal.item_metadata, '{}')
        )
        returning * into v_item;
        if p_embedding is not null then
            insert into catalog_item_embeddings (catalog_item_id, embedding, model_version)
            values (v_item.id, p_embedding, coalesce(p_model_version, 'models/text-embedding-004'));
        end if;
        perform public.write_audit_event(v_org, 'catalog.item.created', v_actor, 'catalog_item',
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
    perform set_config('catalogai.merging', 'off', true);

    update proposals
    set status = 'merged', reviewed_by = v_actor, review_notes = p_review_notes,
        reviewed_at = now(), merged_at = now()
    where id = p_proposal_id
    returning * into v_proposal;
    perform public.write_audit_event(v_org, 'proposal.merged', v_actor, 'proposal', v_proposal.id,
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
revoke execute on function public.merge_proposal(uuid, uuid, text, vector, text, text) from public, anon, authenticated;
-- The server calls the merges with the service key.
grant execute on function
    public.merge_add_item_proposal(uuid, uuid, text, vector, text),
    public.merge_replace_item_proposal(uuid, uuid, text, vector, text),
    public.merge_deprecate_item_proposal(uuid, uuid, text)
to service_role;

-- Review and reject, likewise, lock only a row of the caller's org, and
-- answer another org's id as an unknown one (the server, asking with the
-- service key, keeps the original's 403 for it).
create or replace function public.review_request(
    p_request_id uuid, p_status text, p_review_notes text default null, p_proposal jsonb default null
) returns jsonb
language plpgsql security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_org uuid := public.procurement_caller_org(array['reviewer', 'admin']);
    v_row requests;
    v_proposal proposals;
begin
    if p_status is null or p_status not in ('approved', 'rejected') then
        raise exception 'status must be ''approved'' or ''rejected''' using errcode = 'CA400';
    end if;
    select * into v_row from requests where id = p_request_id and org_id = v_org for update;
    if not found then
        raise exception 'Request not found: %', p_request_id using errcode = 'CA404';
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

create or replace function public.reject_proposal(p_proposal_id uuid, p_review_notes text default null)
returns jsonb
language plpgsql security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_org uuid := public.procurement_caller_org(array['reviewer', 'admin']);
    v_row proposals;
begin
    select * into v_row from proposals where id = p_proposal_id and org_id = v_org for update;
    if not found then
        raise exception 'Proposal not found: %', p_proposal_id using errcode = 'CA404';
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
