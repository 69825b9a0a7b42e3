-- Search at the cost of its data, same signature and results as 0012:
--   * the exact scan ranks ids by distance alone and joins the rows (name,
--     description, metadata) of the k winners only, where it used to carry
--     every row's text and metadata through the sort;
--   * the active items of an org come from a partial index on (org_id, id),
--     an index-only scan, not from the table;
--   * "is this org large?" stops counting at 10,001 items (the threshold
--     between the exact scan and the HNSW index) instead of counting all.

create index if not exists idx_catalog_items_org_active
    on catalog_items (org_id, id) where status = 'active';

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
        -- The shared HNSW index, iterating until this org's k are found.
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
        -- Nothing from an org this large: either nothing is above the
        -- threshold, or the index scan gave up. The exact scan tells which.
        if v_found > 0 then
            return;
        end if;
    end if;

    -- Exact: the org's active ids from the partial index, one probe per id
    -- for its vector's distance, the k nearest, then their rows.
    return query
    select ci.id, ci.name, ci.description, ci.category, ci.metadata, ci.status,
           1 - top.distance
    from (
        select own.id, own.distance
        from (
            select active.id,
                   (select cie.embedding <=> query_embedding
                    from catalog_item_embeddings cie
                    where cie.catalog_item_id = active.id
                      and cie.model_version = p_model_version) as distance
            from catalog_items active
            where active.org_id = v_org and active.status = 'active'
            offset 0
        ) own
        where own.distance is not null
          and own.distance <> 'NaN'::float8
          and 1 - own.distance >= similarity_threshold
        order by own.distance
        limit v_limit
    ) top
    join catalog_items ci on ci.id = top.id
    order by top.distance;
end;
$$;
