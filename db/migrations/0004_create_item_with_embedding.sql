-- Creates a catalog item and its embedding in one transaction, so a failed
-- embedding insert never leaves an item behind. Returns the item as JSON.

create or replace function create_catalog_item_with_embedding(
    p_org_id uuid,
    p_name text,
    p_description text,
    p_category text,
    p_created_by uuid,
    p_status text default 'active',
    p_price numeric(10, 2) default null,
    p_pricing_type text default null,
    p_product_url text default null,
    p_vendor text default null,
    p_sku text default null,
    p_metadata jsonb default '{}',
    p_embedding vector(768) default null
) returns jsonb
language plpgsql security definer set search_path = public
as $$
declare
    v_item catalog_items%rowtype;
begin
    insert into catalog_items (
        org_id, name, description, category, created_by, status,
        price, pricing_type, product_url, vendor, sku, metadata
    ) values (
        p_org_id, p_name, p_description, p_category, p_created_by, p_status,
        p_price, p_pricing_type, p_product_url, p_vendor, p_sku, p_metadata
    )
    returning * into v_item;

    if p_embedding is not null then
        insert into catalog_item_embeddings (catalog_item_id, embedding)
        values (v_item.id, p_embedding);
    end if;

    return jsonb_build_object(
        'id', v_item.id,
        'org_id', v_item.org_id,
        'name', v_item.name,
        'description', v_item.description,
        'category', v_item.category,
        'status', v_item.status,
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

grant execute on function create_catalog_item_with_embedding(
    uuid, text, text, text, uuid, text, numeric, text, text, text, text, jsonb, vector
) to authenticated, service_role;
