-- Search, by the query's model and at the cost of its data. A five-argument
-- overload of search_catalog_items (the original's four-argument function
-- stays for its callers, unchanged):
--   * it compares the query's vector only with vectors made by the same
--     model: a catalog mid-migration (or written by the original with
--     text-embedding-004) holds vectors of another model, whose space is not
--     comparable; repair converts the rest;
--   * a zero vector (no direction) has a NaN distance to everything, which
--     Postgres sorts above every number and PostgREST writes as null: such
--     rows are left out, never returned;
--   * an org's vectors are read by one range scan: catalog_item_embeddings
--     gains org_id (derived, never trusted from a writer: a trigger copies it
--     from the item on every insert, and if an embedding is ever re-pointed,
--     so every write path keeps it right; backfilling rewrites each
--     embedding row once). The exact scan used to read each active item's
--     vector through a unique-index probe and heap fetch per item (six
--     buffer accesses each, EXPLAIN (ANALYZE, BUFFERS)); now about one
--     buffer per two vectors;
--   * deprecated items drop out by a hash join with the org's active ids
--     from a partial index on (org_id, id), an index-only scan;
--   * ids are ranked by distance alone and only the k winners' rows (name,
--     description, metadata) are joined, where every row's text and
--     metadata used to be carried through the sort;
--   * "is this org large?" stops counting at 10,001 items (the threshold
--     between the exact scan and the HNSW index) instead of counting all.

create index if not exists idx_catalog_items_org_active
    on catalog_items (org_id, id) where status = 'active';

alter table catalog_item_embeddings add column if not exists org_id uuid;

update catalog_item_embeddings e
set org_id = ci.org_id
from catalog_items ci
where ci.id = e.catalog_item_id
  and e.org_id is distinct from ci.org_id;

create or replace function public.catalog_item_embedding_org() returns trigger
language plpgsql security invoker set search_path = public, pg_temp
as $$
begin
    select ci.org_id into new.org_id from public.catalog_items ci where ci.id = new.catalog_item_id;
    return new;
end;
$$;
revoke execute on function public.catalog_item_embedding_org() from public, anon;

drop trigger if exists catalog_item_embedding_org on catalog_item_embeddings;
create trigger catalog_item_embedding_org
    before insert or update of catalog_item_id, org_id on catalog_item_embeddings
    for each row execute function public.catalog_item_embedding_org();

create index if not exists idx_catalog_item_embeddings_org_model
    on catalog_item_embeddings (org_id, model_version);

create or replace function search_catalog_items(
    query_embedding vector(768),
    org_uuid uuid,
    similarity_threshold float,
    result_limit int,
    p_model_version text
)
returns table (
    item_id uuid,
    item_name text,
    item_description text,
    item_category text,
    item_metadata jsonb,
    item_status text,
    similarity_score float
)
language plpgsql stable security definer
set search_path = public, pg_temp
set hnsw.iterative_scan = 'relaxed_order'
set plan_cache_mode = force_custom_plan
as $$
declare
    v_org uuid;
    v_limit int := greatest(least(result_limit, 1000), 0);
    v_large boolean;
    v_found bigint := 0;
begin
    if auth.role() = 'service_role' then
        v_org := org_uuid;
    else
        v_org := public.user_org_id();
    end if;
    if v_org is null or v_limit = 0 then
        return;
    end if;

    select exists (
        select 1 from catalog_items
        where org_id = v_org and status = 'active'
        offset 10000
    ) into v_large;

    if v_large then
        return query
        select ci.id, ci.name, ci.description, ci.category, ci.metadata, ci.status,
               1 - top.distance
        from (
            select cie.catalog_item_id as id, cie.embedding <=> query_embedding as distance
            from catalog_item_embeddings cie
            join catalog_items own on own.id = cie.catalog_item_id
            where own.org_id = v_org
              and own.status = 'active'
              and cie.model_version = p_model_version
            order by cie.embedding <=> query_embedding
            limit v_limit
        ) top
        join catalog_items ci on ci.id = top.id
        where 1 - top.distance >= similarity_threshold
          and top.distance <> 'NaN'::float8
        order by top.distance;
        get diagnostics v_found = row_count;
        if v_found > 0 then
            return;
        end if;
    end if;

    -- Exact: the org's vectors by one range scan (the OFFSET 0 fence keeps
    -- the shared HNSW index out), active items by hash join, the k nearest,
    -- then their rows.
    return query
    select ci.id, ci.name, ci.description, ci.category, ci.metadata, ci.status,
           1 - top.distance
    from (
        select scored.id, scored.distance
        from (
            select cie.catalog_item_id as id, cie.embedding <=> query_embedding as distance
            from catalog_item_embeddings cie
            where cie.org_id = v_org and cie.model_version = p_model_version
            offset 0
        ) scored
        join catalog_items active
          on active.id = scored.id and active.org_id = v_org and active.status = 'active'
        where scored.distance is not null
          and scored.distance <> 'NaN'::float8
          and 1 - scored.distance >= similarity_threshold
        order by scored.distance
        limit v_limit
    ) top
    join catalog_items ci on ci.id = top.id
    order by top.distance;
end;
$$;

revoke execute on function search_catalog_items(vector, uuid, float, int, text) from public, anon;
grant execute on function search_catalog_items(vector, uuid, float, int, text) to authenticated, service_role;
