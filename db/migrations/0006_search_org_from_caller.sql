-- search_catalog_items, same signature as the original so old callers keep
-- working, but it no longer trusts `org_uuid`: a user always searches their
-- own org (read from their membership through auth.uid()). Only the service
-- role, which is trusted anyway, may name the org.
--
-- The HNSW scan is iterative (pgvector >= 0.8) so filtering by org and status
-- after the index scan still finds `result_limit` rows when other orgs'
-- vectors are nearer; on older pgvector the setting is an inert placeholder.

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
begin
    if auth.role() = 'service_role' then
        v_org := org_uuid;
    else
        v_org := public.user_org_id();
    end if;
    if v_org is null then
        return;
    end if;

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
        limit greatest(least(result_limit, 1000), 0)
    ) hit
    where 1 - hit.distance >= similarity_threshold
    order by hit.distance;
end;
$$;

revoke execute on function search_catalog_items(vector, uuid, float, int) from public, anon;
grant execute on function search_catalog_items(vector, uuid, float, int) to authenticated, service_role;
