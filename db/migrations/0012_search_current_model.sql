-- Search compares the query's vector only with vectors made by the same
-- model. A catalog mid-migration (or written by the original with
-- text-embedding-004) holds vectors of another model: cosine similarity
-- between two models' spaces is meaningless, yet the 4-argument function
-- ranks them side by side. This overload takes the model the query was
-- embedded with; repair converts the rest. The original's 4-argument
-- function stays for its callers, unchanged. A zero vector (no direction)
-- has a NaN distance to everything, which Postgres sorts above every number
-- and PostgREST writes as null: such rows are left out, never returned.

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
    v_items bigint;
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

    select count(*) into v_items
    from catalog_items
    where org_id = v_org and status = 'active';

    if v_items > 10000 then
        return query
        select hit.id, hit.name, hit.description, hit.category, hit.metadata, hit.status,
               1 - hit.distance
        from (
            select ci.id, ci.name, ci.description, ci.category, ci.metadata, ci.status,
                   cie.embedding <=> query_embedding as distance
            from catalog_item_embeddings cie
            join catalog_items ci on ci.id = cie.catalog_item_id
            where ci.org_id = v_org
              and ci.status = 'active'
              and cie.model_version = p_model_version
            order by cie.embedding <=> query_embedding
            limit v_limit
        ) hit
        where 1 - hit.distance >= similarity_threshold
          and hit.distance <> 'NaN'::float8
        order by hit.distance;
        get diagnostics v_found = row_count;
        if v_found > 0 then
            return;
        end if;
    end if;

    return query
    select own.id, own.name, own.description, own.category, own.metadata, own.status,
           1 - own.distance
    from (
        select ci.id, ci.name, ci.description, ci.category, ci.metadata, ci.status,
               (select cie.embedding <=> query_embedding
                from catalog_item_embeddings cie
                where cie.catalog_item_id = ci.id
                  and cie.model_version = p_model_version) as distance
        from catalog_items ci
        where ci.org_id = v_org and ci.status = 'active'
        offset 0
    ) own
    where own.distance is not null
      and own.distance <> 'NaN'::float8
      and 1 - own.distance >= similarity_threshold
    order by own.distance
    limit v_limit;
end;
$$;

revoke execute on function search_catalog_items(vector, uuid, float, int, text) from public, anon;
grant execute on function search_catalog_items(vector, uuid, float, int, text) to authenticated, service_role;
