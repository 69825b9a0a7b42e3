-- Semantic search as the original defined it: cosine similarity over 768-d
-- embeddings, active items of one org, best first. The IVFFlat index and the
-- trust in `org_uuid` are the original's weaknesses; later migrations replace
-- them while keeping this function's signature for old callers.

create index idx_catalog_item_embeddings_vector
    on catalog_item_embeddings
    using ivfflat (embedding vector_cosine_ops)
    with (lists = 100);

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
as $$
begin
    return query
    select
        ci.id,
        ci.name,
        ci.description,
        ci.category,
        ci.metadata,
        ci.status,
        1 - (cie.embedding <=> query_embedding)
    from catalog_item_embeddings cie
    join catalog_items ci on ci.id = cie.catalog_item_id
    where ci.org_id = org_uuid
      and ci.status = 'active'
      and 1 - (cie.embedding <=> query_embedding) >= similarity_threshold
    order by cie.embedding <=> query_embedding asc
    limit result_limit;
end;
$$;

grant execute on function search_catalog_items(vector, uuid, float, int) to authenticated;

create or replace function get_item_embedding(item_uuid uuid) returns vector(768)
language sql stable security definer set search_path = public
as $$
    select embedding from catalog_item_embeddings where catalog_item_id = item_uuid limit 1
$$;

grant execute on function get_item_embedding(uuid) to authenticated;
