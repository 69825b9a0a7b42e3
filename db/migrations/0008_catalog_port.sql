-- What the Rust port needs on top of the original schema, all additive:
--   * an index for keyset pagination of an org's items, newest first;
--   * create_catalog_item_with_embedding that checks its caller and records
--     the embedding model (one extra, defaulted parameter: old callers work;
--     the optional parameters all have defaults, so a client may leave out
--     what it does not know instead of sending null);
--   * catalog_item_exists, so an item of another org answers 403, not 404,
--     as the original did, without the service key;
--   * bulk embedding repair for the service role: coverage counts, the items
--     needing a (new) embedding, and one upsert per chunk of vectors.

create index if not exists idx_catalog_items_org_created_id
    on catalog_items (org_id, created_at desc, id desc);

drop function if exists create_catalog_item_with_embedding(
    uuid, text, text, text, uuid, text, numeric, text, text, text, text, jsonb, vector
);

create function create_catalog_item_with_embedding(
    p_org_id uuid,
    p_name text,
    p_description text default null,
    p_category text default null,
    p_created_by uuid default null,
    p_status text default 'active',
    p_price numeric(10, 2) default null,
    p_pricing_type text default null,
    p_product_url text default null,
    p_vendor text default null,
    p_sku text default null,
    p_metadata jsonb default '{}',
    p_embedding vector(768) default null,
    p_model_version text default null
) returns jsonb
language plpgsql security definer set search_path = public
as $$
declare
    v_item catalog_items%rowtype;
begin
    -- SECURITY DEFINER skips RLS, so enforce its rule here: a user creates
    -- items only in their own org, as an admin, in their own name.
    p_created_by := coalesce(p_created_by, auth.uid());
    if auth.role() is distinct from 'service_role' then
        if p_org_id is distinct from public.user_org_id()
           or not public.has_role(array['admin'])
           or p_created_by is distinct from auth.uid() then
            raise exception 'only an admin of the organisation can create its catalog items'
                using errcode = '42501';
        end if;
    end if;

    insert into catalog_items (
        org_id, name, description, category, created_by, status,
        price, pricing_type, product_url, vendor, sku, metadata
    ) values (
        p_org_id, p_name, p_description, p_category, p_created_by, coalesce(p_status, 'active'),
        p_price, p_pricing_type, p_product_url, p_vendor, p_sku, coalesce(p_metadata, '{}')
    )
    returning * into v_item;

    if p_embedding is not null then
        insert into catalog_item_embeddings (catalog_item_id, embedding, model_version)
        values (v_item.id, p_embedding, coalesce(p_model_version, 'models/text-embedding-004'));
    end if;

    return jsonb_build_object(
        'id', v_item.id,
        'org_id', v_item.org_id,
        'name', v_item.name,
        'description', v_item.description,
        'category', v_item.category,
        'status', v_item.status,
        'replacement_item_id', v_item.replacement_item_id,
        'created_by', v_item.created_by,
        'created_at', v_item.created_at,
        'updated_at', v_item.updated_at,
        'price', v_item.price,
        'pricing_type', v_item.pricing_type,
        'product_url', v_item.product_url,
        'vendor', v_item.vendor,
        'sku', v_item.sku,
        'metadata', v_item.metadata
    );
end;
$$;

revoke execute on function create_catalog_item_with_embedding(
    uuid, text, text, text, uuid, text, numeric, text, text, text, text, jsonb, vector, text
) from public, anon;
grant execute on function create_catalog_item_with_embedding(
    uuid, text, text, text, uuid, text, numeric, text, text, text, text, jsonb, vector, text
) to authenticated, service_role;

-- Whether an item exists at all, whoever owns it. Ids are random UUIDs, so
-- this tells a caller nothing they could not already name.
create function catalog_item_exists(p_item_id uuid) returns boolean
language sql stable security definer set search_path = public
as $$
    select exists (select 1 from catalog_items where id = p_item_id)
$$;

revoke execute on function catalog_item_exists(uuid) from public, anon;
grant execute on function catalog_item_exists(uuid) to authenticated, service_role;

-- Active items of an org, and how many have an embedding by `p_model_version`.
create function catalog_embedding_coverage(p_org_id uuid, p_model_version text)
returns table (total_items bigint, items_with_embeddings bigint)
language sql stable set search_path = public
as $$
    select count(*),
           count(*) filter (where cie.embedding is not null and cie.model_version = p_model_version)
    from catalog_items ci
    left join catalog_item_embeddings cie on cie.catalog_item_id = ci.id
    where ci.org_id = p_org_id and ci.status = 'active'
$$;

-- Active items of an org with no embedding, or one made by another model;
-- a page of at most 1,000 by id, after `p_after`.
create function catalog_items_needing_embedding(
    p_org_id uuid,
    p_model_version text,
    p_after uuid default null,
    p_limit int default 1000
)
returns table (id uuid, name text, description text, category text)
language sql stable set search_path = public
as $$
    select ci.id, ci.name, ci.description, ci.category
    from catalog_items ci
    left join catalog_item_embeddings cie on cie.catalog_item_id = ci.id
    where ci.org_id = p_org_id
      and ci.status = 'active'
      and (cie.embedding is null or cie.model_version is distinct from p_model_version)
      and (p_after is null or ci.id > p_after)
    order by ci.id
    limit least(greatest(p_limit, 1), 1000)
$$;

-- Writes a chunk of embeddings in one statement: `p_embeddings` is
-- [{"catalog_item_id": uuid, "embedding": "[...]"}, ...]. Items that are not
-- the org's (or no longer exist) are skipped; the ids written are returned.
create function save_catalog_item_embeddings(p_org_id uuid, p_model_version text, p_embeddings jsonb)
returns setof uuid
language sql volatile set search_path = public
as $$
    insert into catalog_item_embeddings (catalog_item_id, embedding, model_version)
    select ci.id, (e ->> 'embedding')::vector(768), p_model_version
    from jsonb_array_elements(p_embeddings) e
    join catalog_items ci on ci.id = (e ->> 'catalog_item_id')::uuid and ci.org_id = p_org_id
    on conflict (catalog_item_id) do update
        set embedding = excluded.embedding,
            model_version = excluded.model_version,
            created_at = now()
    returning catalog_item_id
$$;

revoke execute on function catalog_embedding_coverage(uuid, text) from public, anon, authenticated;
revoke execute on function catalog_items_needing_embedding(uuid, text, uuid, int) from public, anon, authenticated;
revoke execute on function save_catalog_item_embeddings(uuid, text, jsonb) from public, anon, authenticated;
grant execute on function catalog_embedding_coverage(uuid, text) to service_role;
grant execute on function catalog_items_needing_embedding(uuid, text, uuid, int) to service_role;
grant execute on function save_catalog_item_embeddings(uuid, text, jsonb) to service_role;
