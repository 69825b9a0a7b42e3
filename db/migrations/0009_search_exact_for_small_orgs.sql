-- search_catalog_items, same signature and rules as 0006, choosing its plan by
-- the size of the caller's catalog. The HNSW index is shared by every org, so
-- for an org that holds a small share of all vectors the index scan walks
-- mostly other orgs' neighbours, filters them out, and can give up before it
-- finds this org's (measured: 0 of 10 results for an org of 2,000 items among
-- 65,000 vectors). An exact scan of the org's own items is both right and
-- fast at that size (one pass over at most 10,000 vectors); larger orgs use
-- the index, and fall back to the exact scan when it finds nothing.

create or replace function search_catalog_items(
    query_embedding vector(768),
    org_uuid uuid,
    similarity_threshold float default 0.3,
    result_limit int default 10
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
language plpgsql stable security definer set search_path = public
set hnsw.iterative_scan = 'relaxed_order'
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
            order by cie.embedding <=> query_embedding
            limit v_limit
        ) hit
        where 1 - hit.distance >= similarity_threshold
        order by hit.distance;
        get diagnostics v_found = row_count;
        -- Nothing from an org this large: either nothing is above the
        -- threshold, or the index scan gave up. The exact scan tells which.
        if v_found > 0 then
            return;
        end if;
    end if;

    -- Exact: one index probe per item of the org for its distance; the
    -- scalar subquery keeps the shared HNSW index out of it.
    return query
    select own.id, own.name, own.description, own.category, own.metadata, own.status,
           1 - own.distance
    from (
        select ci.id, ci.name, ci.description, ci.category, ci.metadata, ci.status,
               (select cie.embedding <=> query_embedding
                from catalog_item_embeddings cie
                where cie.catalog_item_id = ci.id) as distance
        from catalog_items ci
        where ci.org_id = v_org and ci.status = 'active'
        offset 0
    ) own
    where own.distance is not null
      and 1 - own.distance >= similarity_threshold
    order by own.distance
    limit v_limit;
end;
$$;

-- A 768-dimension vector is 3 KB, past the 2 KB at which Postgres moves a
-- value out of line into TOAST; reading it back then costs a dozen extra
-- buffer reads per vector (measured: 25,000 buffers for 2,000 vectors).
-- Keep vectors in the row. Applies to rows written from now on: repair and
-- creates rewrite rows as they touch them; nothing is rewritten here, so the
-- migration is quick on a large table.
alter table catalog_item_embeddings alter column embedding set storage plain;
