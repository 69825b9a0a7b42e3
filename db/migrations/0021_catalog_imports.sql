-- Bulk catalog imports (src/services/imports): a file of items uploaded
-- once, kept here row by row, and applied by the server in the background a
-- chunk at a time, each chunk one transaction with its audit events.
--
-- The database is the queue: a job is handed to one replica at a time by a
-- lease (`for update skip locked`, then `holder`/`lease_until`), only the
-- oldest unfinished job of an org is handed out (a second import of the
-- same org waits its turn), and `applied_through` records the last line a
-- committed chunk covered, so a job whose replica stopped resumes there and
-- a chunk whose answer was lost is recognised and not applied twice.
--
-- Admins of the org read their jobs (RLS); every write goes through the
-- functions below. The upload functions take the org from the caller and
-- check the admin role there; the worker's are the service key's alone.

create table public.catalog_imports (
    id               uuid primary key default gen_random_uuid(),
    org_id           uuid not null references public.orgs (id) on delete cascade,
    created_by       uuid not null,
    idempotency_key  text check (char_length(idempotency_key) between 1 and 255),
    body_sha256      text check (body_sha256 ~ '^[0-9a-f]{64}$'),
    format           text not null check (format in ('csv', 'ndjson')),
    -- `items`: rows write the catalog; `proposals`: rows become pending
    -- proposals a reviewer approves as the workflow does.
    mode             text not null default 'items' check (mode in ('items', 'proposals')),
    -- `missing`: Gemini fills what a row that creates an item leaves empty.
    enrich           text check (enrich in ('missing')),
    status           text not null default 'receiving'
                     check (status in ('receiving', 'queued', 'running', 'paused', 'completed')),
    paused_reason    text check (char_length(paused_reason) <= 1000),
    total            integer not null default 0 check (total >= 0),
    created          integer not null default 0 check (created >= 0),
    updated          integer not null default 0 check (updated >= 0),
    unchanged        integer not null default 0 check (unchanged >= 0),
    failed           integer not null default 0 check (failed >= 0),
    -- Rows applied or refused so far.
    processed        integer generated always as (created + updated + unchanged + failed) stored,
    price_up         integer not null default 0 check (price_up >= 0),
    price_down       integer not null default 0 check (price_down >= 0),
    -- The first 1,000 row errors: [{"line", "field", "message"}].
    errors           jsonb not null default '[]'
                     check (jsonb_typeof(errors) = 'array' and jsonb_array_length(errors) <= 1000),
    applied_through  integer not null default 0 check (applied_through >= 0),
    holder           text check (char_length(holder) between 1 and 200),
    lease_until      timestamptz,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    finished_at      timestamptz,
    unique (org_id, idempotency_key)
);

create index idx_catalog_imports_org_created_id
    on public.catalog_imports (org_id, created_at desc, id desc);
create index idx_catalog_imports_unfinished
    on public.catalog_imports (org_id, created_at, id)
    where status in ('queued', 'running', 'paused');

-- The valid rows of a job's file, as `catalog_items` columns (only those the
-- row gives), until a chunk applies them.
create table public.catalog_import_rows (
    import_id uuid not null references public.catalog_imports (id) on delete cascade,
    line      integer not null check (line >= 1),
    item      jsonb not null check (jsonb_typeof(item) = 'object'),
    primary key (import_id, line)
);

alter table public.catalog_imports enable row level security;
alter table public.catalog_import_rows enable row level security;

create policy "Admins can read org imports" on public.catalog_imports
    for select to authenticated
    using (org_id = (select public.user_org_id()) and (select public.has_role(array['admin'])));

revoke all on table public.catalog_imports, public.catalog_import_rows from public, anon, authenticated;
grant select on table public.catalog_imports to authenticated;
grant select on table public.catalog_imports, public.catalog_import_rows to service_role;

-- The natural keys an import matches on, among the org's active items.
create index idx_catalog_items_org_sku_active
    on public.catalog_items (org_id, sku) where status = 'active' and sku is not null;
create index idx_catalog_items_org_vendor_name_active
    on public.catalog_items (org_id, vendor, name) where status = 'active';

-- What the API shows of a job.
create function catalogai_meta.import_json(p_job public.catalog_imports)
returns jsonb
language sql immutable set search_path = public, extensions, pg_temp
as $$
    select jsonb_build_object(
        'id', p_job.id, 'org_id', p_job.org_id, 'created_by', p_job.created_by,
        'format', p_job.format, 'mode', p_job.mode, 'enrich', p_job.enrich, 'status', p_job.status, 'paused_reason', p_job.paused_reason,
        'total', p_job.total, 'processed', p_job.processed, 'created', p_job.created,
        'updated', p_job.updated, 'unchanged', p_job.unchanged, 'failed', p_job.failed,
        'price_up', p_job.price_up, 'price_down', p_job.price_down, 'errors', p_job.errors,
        'idempotency_key', p_job.idempotency_key, 'body_sha256', p_job.body_sha256,
        'created_at', p_job.created_at, 'updated_at', p_job.updated_at,
        'finished_at', p_job.finished_at)
$$;

-- Starts an upload for the caller's org (admins), or, when the org already
-- has a job with this idempotency key, returns that job unchanged with
-- `existing` true (the server then compares the bodies).
create function public.catalog_import_begin(
    p_format text,
    p_idempotency_key text default null,
    p_mode text default 'items',
    p_enrich text default null
)
returns jsonb
language plpgsql volatile security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_org uuid := public.procurement_caller_org(array['admin']);
    v_job catalog_imports;
begin
    if p_idempotency_key is not null then
        select * into v_job from catalog_imports
        where org_id = v_org and idempotency_key = p_idempotency_key;
        if found then
            return catalogai_meta.import_json(v_job) || '{"existing": true}';
        end if;
    end if;
    insert into catalog_imports (org_id, created_by, format, idempotency_key, mode, enrich)
    values (v_org, auth.uid(), p_format, p_idempotency_key, coalesce(p_mode, 'items'), p_enrich)
    on conflict (org_id, idempotency_key) do nothing
    returning * into v_job;
    if not found then
        -- The same key, in an upload that began a moment ago.
        select * into v_job from catalog_imports
        where org_id = v_org and idempotency_key = p_idempotency_key;
        return catalogai_meta.import_json(v_job) || '{"existing": true}';
    end if;
    return catalogai_meta.import_json(v_job) || '{"existing": false}';
end;
$$;

-- The caller's own upload in progress, locked; raises when it is not one.
create function catalogai_meta.import_being_received(p_import_id uuid)
returns public.catalog_imports
language plpgsql volatile set search_path = public, extensions, pg_temp
as $$
declare
    v_org uuid := public.procurement_caller_org(array['admin']);
    v_job catalog_imports;
begin
    select * into v_job from catalog_imports
    where id = p_import_id and org_id = v_org and created_by = auth.uid()
    for update;
    if not found or v_job.status <> 'receiving' then
        raise exception 'no upload in progress with this id' using errcode = 'CA404';
    end if;
    return v_job;
end;
$$;

-- Keeps a batch of the upload's valid rows: [{"line", "item"}].
create function public.catalog_import_stage(p_import_id uuid, p_rows jsonb)
returns integer
language plpgsql volatile security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_job catalog_imports := catalogai_meta.import_being_received(p_import_id);
    v_count integer;
begin
    if jsonb_typeof(p_rows) is distinct from 'array' or jsonb_array_length(p_rows) > 1000 then
        raise exception 'rows must be an array of at most 1000' using errcode = '22023';
    end if;
    insert into catalog_import_rows (import_id, line, item)
    select v_job.id, (r ->> 'line')::integer, r -> 'item'
    from jsonb_array_elements(p_rows) r;
    get diagnostics v_count = row_count;
    update catalog_imports set updated_at = now() where id = v_job.id;
    return v_count;
end;
$$;

-- Ends the upload: the job is queued with its row count, the rows refused
-- on upload counted as failed, and the body's hash kept for its
-- idempotency key.
create function public.catalog_import_seal(
    p_import_id uuid,
    p_total integer,
    p_failed integer,
    p_errors jsonb,
    p_body_sha256 text
) returns jsonb
language plpgsql volatile security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_job catalog_imports := catalogai_meta.import_being_received(p_import_id);
    v_staged boolean;
begin
    select exists (select 1 from catalog_import_rows where import_id = v_job.id) into v_staged;
    update catalog_imports
    set status = case when v_staged then 'queued' else 'completed' end,
        total = p_total,
        failed = p_failed,
        errors = coalesce(p_errors, '[]'),
        body_sha256 = p_body_sha256,
        finished_at = case when v_staged then null else now() end,
        updated_at = now()
    where id = v_job.id
    returning * into v_job;
    return catalogai_meta.import_json(v_job);
end;
$$;

-- Drops an upload that could not be completed (a malformed file, a limit).
create function public.catalog_import_discard(p_import_id uuid)
returns void
language plpgsql volatile security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_job catalog_imports := catalogai_meta.import_being_received(p_import_id);
begin
    delete from catalog_imports where id = v_job.id;
end;
$$;

-- Hands the caller (a replica, `p_holder`) the next job to work on with a
-- lease of `p_lease_seconds`: the oldest unfinished job of an org whose
-- oldest unfinished job is not leased elsewhere. Uploads abandoned for an
-- hour are dropped on the way. Null when there is nothing to do.
create function public.catalog_import_claim(p_holder text, p_lease_seconds integer)
returns jsonb
language plpgsql volatile security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_job catalog_imports;
begin
    if p_holder is null or length(p_holder) not between 1 and 200
       or p_lease_seconds is null or p_lease_seconds not between 1 and 3600 then
        raise exception 'invalid import lease request' using errcode = '22023';
    end if;
    delete from catalog_imports
    where status = 'receiving' and updated_at < now() - interval '1 hour';
    select j.* into v_job
    from catalog_imports j
    where j.status in ('queued', 'running', 'paused')
      and (j.lease_until is null or j.lease_until < now() or j.holder = p_holder)
      and j.id = (select first.id from catalog_imports first
                  where first.org_id = j.org_id
                    and first.status in ('queued', 'running', 'paused')
                  order by first.created_at, first.id
                  limit 1)
    order by j.created_at, j.id
    limit 1
    for update of j skip locked;
    if not found then
        return null;
    end if;
    update catalog_imports
    set holder = p_holder,
        lease_until = now() + make_interval(secs => p_lease_seconds),
        status = case when status = 'queued' then 'running' else status end,
        updated_at = now()
    where id = v_job.id
    returning * into v_job;
    return catalogai_meta.import_json(v_job)
        || jsonb_build_object('applied_through', v_job.applied_through);
end;
$$;

-- The next `p_limit` rows of a leased job after line `p_after`, each with
-- whether it matches an active item, the text its item will be embedded from (what the row gives, the rest
-- from the active item it matches) and whether that item already has this
-- text embedded by `p_model_version` (then the chunk need not embed it).
create function public.catalog_import_chunk(
    p_import_id uuid,
    p_holder text,
    p_after integer,
    p_limit integer,
    p_model_version text
) returns table (line integer, item jsonb, matched boolean, text_name text,
                 text_description text, text_category text, embedding_current boolean)
language plpgsql stable security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_org uuid;
begin
    select j.org_id into v_org from catalog_imports j
    where j.id = p_import_id and j.holder = p_holder and j.lease_until > now();
    if not found then
        raise exception 'the import lease is not held' using errcode = 'CA409';
    end if;
    return query
    select r.line, r.item, m.id is not null,
           coalesce(r.item ->> 'name', m.name),
           case when r.item ? 'description' then r.item ->> 'description' else m.description end,
           case when r.item ? 'category' then r.item ->> 'category' else m.category end,
           coalesce(e.model_version = p_model_version
                    and m.name = coalesce(r.item ->> 'name', m.name)
                    and (not r.item ? 'description' or m.description is not distinct from r.item ->> 'description')
                    and (not r.item ? 'category' or m.category is not distinct from r.item ->> 'category'),
                    false)
    from catalog_import_rows r
    left join lateral catalogai_meta.import_match(v_org, r.item) m on true
    left join catalog_item_embeddings e on e.catalog_item_id = m.id
    where r.import_id = p_import_id and r.line > p_after
    order by r.line
    limit least(greatest(p_limit, 1), 1000);
end;
$$;

-- The active item of the org an imported row names: by `sku` when the row
-- has one, otherwise by `vendor` (or its absence) and `name`, each through
-- its partial index. The oldest when several match.
create function catalogai_meta.import_match(p_org_id uuid, p_item jsonb)
returns setof public.catalog_items
language plpgsql stable set search_path = public, extensions, pg_temp
as $$
begin
    if p_item ? 'sku' then
        return query
        select ci.* from catalog_items ci
        where ci.org_id = p_org_id and ci.status = 'active' and ci.sku is not null
          and ci.sku = p_item ->> 'sku'
        order by ci.created_at, ci.id
        limit 1;
    else
        return query
        select ci.* from catalog_items ci
        where ci.org_id = p_org_id and ci.status = 'active'
          and ci.vendor is not distinct from p_item ->> 'vendor'
          and ci.name = p_item ->> 'name' and ci.sku is null
        order by ci.created_at, ci.id
        limit 1;
    end if;
end;
$$;

-- Applies one chunk of a leased job in one transaction: `p_rows` is
-- [{"line", "item", "embedding"?}] in line order, starting after
-- `p_after`. Each row updates the active item it matches (the fields it
-- gives; unchanged when they equal what is stored) or creates one, writes
-- its embedding when it carries one, and its audit event; in `proposals`
-- mode it files the pending proposal that would do so instead (ADD_ITEM,
-- REPLACE_ITEM, or DEPRECATE_ITEM for a row that retires its item). A row the
-- database refuses is a row error. The counters, the lease and
-- `applied_through` move with it. A chunk that was already applied (its
-- answer was lost and it is sent again) changes nothing.
create function public.catalog_import_apply(
    p_import_id uuid,
    p_holder text,
    p_after integer,
    p_rows jsonb,
    p_model_version text,
    p_lease_seconds integer
) returns jsonb
language plpgsql volatile security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_job catalog_imports;
    v_row jsonb;
    v_item jsonb;
    v_line integer;
    v_old catalog_items;
    v_new catalog_items;
    v_matched boolean;
    v_changed jsonb;
    v_created integer := 0;
    v_updated integer := 0;
    v_unchanged integer := 0;
    v_failed integer := 0;
    v_price_up integer := 0;
    v_price_down integer := 0;
    v_errors jsonb := '[]';
    v_last integer := p_after;
begin
    select * into v_job from catalog_imports where id = p_import_id for update;
    if not found or v_job.holder is distinct from p_holder or v_job.lease_until <= now() then
        raise exception 'the import lease is not held' using errcode = 'CA409';
    end if;
    if v_job.applied_through > p_after then
        return catalogai_meta.import_json(v_job) || '{"already_applied": true}';
    end if;
    if v_job.applied_through < p_after then
        raise exception 'chunk starts after line %, the job is at line %', p_after, v_job.applied_through
            using errcode = 'CA409';
    end if;
    -- The trigger's events would name no actor; these name the importer and the job.
    perform set_config('catalogai.merging', 'on', true);
    for v_row in select * from jsonb_array_elements(p_rows) loop
        v_line := (v_row ->> 'line')::integer;
        v_item := v_row -> 'item';
        if v_line <= v_last then
            raise exception 'rows must be in line order after line %', p_after using errcode = '22023';
        end if;
        v_last := v_line;
        begin
            select * into v_old from catalogai_meta.import_match(v_job.org_id, v_item);
            v_matched := found;
            if v_matched then
                perform 1 from catalog_items where id = v_old.id for update;
                v_new := v_old;
            else
                v_new := null;
                v_new.status := 'active';
                v_new.metadata := '{}';
            end if;
            -- What the row gives; the rest as stored.
            v_new.name := coalesce(v_item ->> 'name', v_new.name);
            v_new.description := coalesce(v_item ->> 'description', v_new.description);
            v_new.category := coalesce(v_item ->> 'category', v_new.category);
            v_new.status := coalesce(v_item ->> 'status', v_new.status);
            v_new.price := coalesce((v_item ->> 'price')::numeric, v_new.price);
            v_new.pricing_type := coalesce(v_item ->> 'pricing_type', v_new.pricing_type);
            v_new.product_url := coalesce(v_item ->> 'product_url', v_new.product_url);
            v_new.vendor := coalesce(v_item ->> 'vendor', v_new.vendor);
            v_new.sku := coalesce(v_item ->> 'sku', v_new.sku);
            v_new.metadata := coalesce(v_item -> 'metadata', v_new.metadata);
            v_changed := '[]';
            if v_matched then
                select coalesce(jsonb_agg(n.key order by n.key), '[]') into v_changed
                from jsonb_each(to_jsonb(v_new)) n
                where n.value is distinct from to_jsonb(v_old) -> n.key;
            end if;
            if v_matched and jsonb_array_length(v_changed) = 0 then
                v_unchanged := v_unchanged + 1;
            elsif v_job.mode = 'proposals' then
                -- A pending proposal per row, as a member's would be.
                perform public.insert_proposal(v_job.org_id, v_job.created_by,
                    jsonb_build_object(
                        'proposal_type', case when not v_matched then 'ADD_ITEM'
                                              when v_new.status = 'deprecated' then 'DEPRECATE_ITEM'
                                              else 'REPLACE_ITEM' end,
                        'replacing_item_id', case when v_matched then v_old.id end,
                        'item_name', v_new.name, 'item_description', v_new.description,
                        'item_category', v_new.category, 'item_metadata', v_new.metadata,
                        'item_price', v_new.price, 'item_pricing_type', v_new.pricing_type,
                        'item_product_url', v_new.product_url, 'item_vendor', v_new.vendor,
                        'item_sku', v_new.sku),
                    null, format('Imported: line %s of import %s', v_line, v_job.id));
                if v_matched then v_updated := v_updated + 1; else v_created := v_created + 1; end if;
            elsif v_matched then
                update catalog_items
                set name = v_new.name, description = v_new.description,
                    category = v_new.category, status = v_new.status, price = v_new.price,
                    pricing_type = v_new.pricing_type, product_url = v_new.product_url,
                    vendor = v_new.vendor, metadata = v_new.metadata, updated_at = now()
                where id = v_old.id;
                v_updated := v_updated + 1;
                perform public.write_audit_event(v_job.org_id, 'catalog.item.updated',
                    v_job.created_by, 'catalog_item', v_old.id,
                    jsonb_build_object('name', v_new.name, 'changed_fields', v_changed,
                                       'via_import', v_job.id, 'line', v_line));
            else
                insert into catalog_items (org_id, created_by, name, description, category, status,
                                           price, pricing_type, product_url, vendor, sku, metadata)
                values (v_job.org_id, v_job.created_by, v_new.name, v_new.description,
                        v_new.category, v_new.status, v_new.price, v_new.pricing_type,
                        v_new.product_url, v_new.vendor, v_new.sku, v_new.metadata)
                returning * into v_new;
                v_created := v_created + 1;
                perform public.write_audit_event(v_job.org_id, 'catalog.item.created',
                    v_job.created_by, 'catalog_item', v_new.id,
                    jsonb_build_object('name', v_new.name, 'via_import', v_job.id, 'line', v_line));
            end if;
            if v_matched and v_new.price > v_old.price then v_price_up := v_price_up + 1; end if;
            if v_matched and v_new.price < v_old.price then v_price_down := v_price_down + 1; end if;
            if v_row ? 'embedding' and v_job.mode = 'items' then
                insert into catalog_item_embeddings (catalog_item_id, embedding, model_version)
                values (v_new.id, (v_row ->> 'embedding')::vector(768), p_model_version)
                on conflict (catalog_item_id) do update
                    set embedding = excluded.embedding,
                        model_version = excluded.model_version,
                        created_at = now();
            end if;
        exception when others then
            v_failed := v_failed + 1;
            v_errors := v_errors || jsonb_build_object('line', v_line, 'field', null,
                'message', 'the database refused this row: ' || sqlerrm);
        end;
    end loop;
    delete from catalog_import_rows where import_id = v_job.id and line <= v_last;
    update catalog_imports j
    set created = j.created + v_created,
        updated = j.updated + v_updated,
        unchanged = j.unchanged + v_unchanged,
        failed = j.failed + v_failed,
        price_up = j.price_up + v_price_up,
        price_down = j.price_down + v_price_down,
        errors = case when jsonb_array_length(v_errors) = 0 then j.errors
                      else (select coalesce(jsonb_agg(e), '[]') from (
                                select e from jsonb_array_elements(j.errors || v_errors) e limit 1000) kept)
                 end,
        applied_through = v_last,
        status = 'running',
        paused_reason = null,
        lease_until = now() + make_interval(secs => greatest(least(p_lease_seconds, 3600), 1)),
        updated_at = now()
    where j.id = v_job.id
    returning * into v_job;
    if not exists (select 1 from catalog_import_rows where import_id = v_job.id) then
        update catalog_imports
        set status = 'completed', holder = null, lease_until = null,
            finished_at = now(), updated_at = now()
        where id = v_job.id
        returning * into v_job;
    end if;
    return catalogai_meta.import_json(v_job) || '{"already_applied": false}';
end;
$$;

-- Renews the caller's lease (`p_lease_seconds`; 0 gives it up); with
-- `p_paused_reason`, the job is `paused` for that reason (a chunk applied
-- makes it `running` again), without, only the lease changes. False when
-- the caller does not hold the lease any more: it must stop.
create function public.catalog_import_report(
    p_import_id uuid,
    p_holder text,
    p_lease_seconds integer,
    p_paused_reason text default null
) returns boolean
language plpgsql volatile security definer set search_path = public, extensions, pg_temp
as $$
begin
    if p_lease_seconds is null or p_lease_seconds not between 0 and 3600 then
        raise exception 'invalid import report' using errcode = '22023';
    end if;
    update catalog_imports
    set lease_until = case when p_lease_seconds = 0 then null
                           else now() + make_interval(secs => p_lease_seconds) end,
        holder = case when p_lease_seconds = 0 then null else holder end,
        status = case when p_paused_reason is not null then 'paused' else status end,
        paused_reason = coalesce(left(p_paused_reason, 1000), paused_reason),
        updated_at = case when p_paused_reason is not null then now() else updated_at end
    where id = p_import_id
      and holder = p_holder
      and status in ('running', 'paused');
    return found;
end;
$$;

revoke execute on function catalogai_meta.import_json(public.catalog_imports) from public;
revoke execute on function catalogai_meta.import_being_received(uuid) from public;
revoke execute on function catalogai_meta.import_match(uuid, jsonb) from public;
revoke execute on function public.catalog_import_begin(text, text, text, text) from public, anon;
revoke execute on function public.catalog_import_stage(uuid, jsonb) from public, anon;
revoke execute on function public.catalog_import_seal(uuid, integer, integer, jsonb, text) from public, anon;
revoke execute on function public.catalog_import_discard(uuid) from public, anon;
grant execute on function public.catalog_import_begin(text, text, text, text) to authenticated;
grant execute on function public.catalog_import_stage(uuid, jsonb) to authenticated;
grant execute on function public.catalog_import_seal(uuid, integer, integer, jsonb, text) to authenticated;
grant execute on function public.catalog_import_discard(uuid) to authenticated;
revoke execute on function public.catalog_import_claim(text, integer) from public, anon, authenticated;
revoke execute on function public.catalog_import_chunk(uuid, text, integer, integer, text) from public, anon, authenticated;
revoke execute on function public.catalog_import_apply(uuid, text, integer, jsonb, text, integer) from public, anon, authenticated;
revoke execute on function public.catalog_import_report(uuid, text, integer, text) from public, anon, authenticated;
grant execute on function public.catalog_import_claim(text, integer) to service_role;
grant execute on function public.catalog_import_chunk(uuid, text, integer, integer, text) to service_role;
grant execute on function public.catalog_import_apply(uuid, text, integer, jsonb, text, integer) to service_role;
grant execute on function public.catalog_import_report(uuid, text, integer, text) to service_role;
