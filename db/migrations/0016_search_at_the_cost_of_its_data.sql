-- Search at the cost of its data (issue 15), measured with pgbench, one
-- connection, an org of 2,000 items (exact path): 3.75-4.05 ms a call
-- before, 1.74-1.89 ms after, same results; 20,000 items (HNSW) unchanged
-- at 2.2-2.4 ms.
--
-- * Large orgs (over 10,000 active items, the HNSW path) fell back to the
--   exact scan only when none of the index's candidates passed the
--   similarity threshold. When the index scan gave up after finding fewer
--   than k of the org's items (its tuple or memory bound, other orgs'
--   near-duplicates crowding the graph), those few were returned as if
--   they were all. Now fewer than k candidates also means the exact scan
--   answers. The rule for an empty answer stays: at 20,000 items among
--   147,000 vectors, a query's 400 nearest by the index held none of the 14
--   items the exact scan finds above 0.3.
-- * Plans are cached (plan_cache_mode = force_generic_plan) instead of
--   made anew on every call, which cost about 0.8 ms; the large-org
--   statement alone is planned per call (EXECUTE), since only a plan made
--   for the org picks the HNSW index.
-- * The exact path no longer hash-joins every active id of the org: it
--   ranks the org's vectors by distance alone, keeps the k + d nearest,
--   where d counts the org's items that are not active (a new partial
--   index), and joins those rows only; at least k of them are active.
-- * That count is right only while every embedding row carries its item's
--   org. 0012's trigger sets it when an embedding is written; an item moved
--   to another org (by the service role: row-level security lets no member
--   do it) now carries its embedding's org along. Before, a moved item was
--   found in neither org.

create index if not exists idx_catalog_items_org_inactive
    on catalog_items (org_id) where status <> 'active';

-- Runs as whoever moves the item: only the service role can.
create or replace function public.catalog_item_moves_its_embedding() returns trigger
language plpgsql security invoker set search_path = public, pg_temp
as $$
begin
    update public.catalog_item_embeddings
       set org_id = new.org_id
     where catalog_item_id = new.id;
    return null;
end;
$$;
revoke execute on function public.catalog_item_moves_its_embedding() from public, anon, authenticated;

drop trigger if exists catalog_item_moves_its_embedding on catalog_items;
create trigger catalog_item_moves_its_embedding
    after update of org_id on catalog_items
    for each row when (old.org_id is distinct from new.org_id)
    execute function public.catalog_item_moves_its_embedding();

-- Embeddings of items moved before this migration.
update catalog_item_embeddings e
set org_id = ci.org_id
from catalog_items ci
where ci.id = e.catalog_item_id
  and e.org_id is distinct from ci.org_id;

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
set plan_cache_mode = force_generic_plan
as $$
declare
    v_org uuid;
    v_limit int := greatest(least(result_limit, 1000), 0);
    v_large boolean;
    v_ids uuid[];
    v_distances float8[];
    v_found bigint := 0;
    v_inactive bigint;
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
        -- The k nearest of the org's active items, as the index finds them.
        -- Planned for this org on every call (EXECUTE): whether the HNSW
        -- index pays depends on the org's size, which a cached plan would
        -- not see.
        execute $q$
            select coalesce(array_agg(c.id order by c.distance), '{}'),
                   coalesce(array_agg(c.distance order by c.distance), '{}')
            from (
                select cie.catalog_item_id as id, cie.embedding <=> $1 as distance
                from catalog_item_embeddings cie
                join catalog_items own
                  on own.id = cie.catalog_item_id and own.org_id = $2 and own.status = 'active'
                where cie.org_id = $2
                  and cie.model_version = $3
                order by cie.embedding <=> $1
                limit $4
            ) c
        $q$ into v_ids, v_distances using query_embedding, v_org, p_model_version, v_limit;
        -- Fewer than k means the index scan gave up before finding k of
        -- this org's items, not that there are fewer; and none passing the
        -- threshold may be the index's miss. Either way the exact scan
        -- answers.
        if cardinality(v_ids) = v_limit then
            return query
            select ci.id, ci.name, ci.description, ci.category, ci.metadata, ci.status,
                   1 - top.distance
            from unnest(v_ids, v_distances) with ordinality as top(id, distance, rank)
            join catalog_items ci on ci.id = top.id
            where 1 - top.distance >= similarity_threshold
              and top.distance <> 'NaN'::float8
            order by top.rank;
            get diagnostics v_found = row_count;
            if v_found > 0 then
                return;
            end if;
        end if;
    end if;

    -- Exact: the org's vectors by one range scan (the OFFSET 0 fence keeps
    -- the shared HNSW index out), ranked by distance alone. Of the k + d
    -- nearest, where d counts the org's items that are not active (few,
    -- from a partial index), at least k are active, so only those rows are
    -- joined: no join with every active id of the org.
    select count(*) into v_inactive
      from catalog_items
     where org_id = v_org and status <> 'active';
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
        where scored.distance is not null
          and scored.distance <> 'NaN'::float8
          and 1 - scored.distance >= similarity_threshold
        order by scored.distance
        limit v_limit + v_inactive
    ) top
    join catalog_items ci on ci.id = top.id and ci.org_id = v_org and ci.status = 'active'
    order by top.distance
    limit v_limit;
end;
$$;

revoke execute on function search_catalog_items(vector, uuid, float, int, text) from public, anon;
grant execute on function search_catalog_items(vector, uuid, float, int, text) to authenticated, service_role;
