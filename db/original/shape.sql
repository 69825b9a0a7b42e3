-- The original service's database as its ten migrations leave it
-- (../shared/reference/original-schema.md): every column of its seven
-- tables with its type, and the functions our baseline migrations
-- 0001-0004 stand for. Prints one line per difference from the database it
-- runs on; nothing when the shape is the original's final one.
-- scripts/migrate runs it before it changes anything.

with expected(table_name, column_name, type_name) as (values
    ('orgs', 'id', 'uuid'), ('orgs', 'name', 'text'),
    ('orgs', 'created_at', 'timestamptz'), ('orgs', 'updated_at', 'timestamptz'),
    ('org_memberships', 'id', 'uuid'), ('org_memberships', 'org_id', 'uuid'),
    ('org_memberships', 'user_id', 'uuid'), ('org_memberships', 'role', 'text'),
    ('org_memberships', 'created_at', 'timestamptz'),
    ('catalog_items', 'id', 'uuid'), ('catalog_items', 'org_id', 'uuid'),
    ('catalog_items', 'name', 'text'), ('catalog_items', 'description', 'text'),
    ('catalog_items', 'category', 'text'), ('catalog_items', 'metadata', 'jsonb'),
    ('catalog_items', 'status', 'text'), ('catalog_items', 'replacement_item_id', 'uuid'),
    ('catalog_items', 'created_by', 'uuid'), ('catalog_items', 'created_at', 'timestamptz'),
    ('catalog_items', 'updated_at', 'timestamptz'), ('catalog_items', 'price', 'numeric'),
    ('catalog_items', 'pricing_type', 'text'), ('catalog_items', 'product_url', 'text'),
    ('catalog_items', 'vendor', 'text'), ('catalog_items', 'sku', 'text'),
    ('catalog_item_embeddings', 'id', 'uuid'),
    ('catalog_item_embeddings', 'catalog_item_id', 'uuid'),
    ('catalog_item_embeddings', 'embedding', 'vector'),
    ('catalog_item_embeddings', 'model_version', 'text'),
    ('catalog_item_embeddings', 'created_at', 'timestamptz'),
    ('requests', 'id', 'uuid'), ('requests', 'org_id', 'uuid'),
    ('requests', 'created_by', 'uuid'), ('requests', 'search_query', 'text'),
    ('requests', 'search_results', 'jsonb'), ('requests', 'justification', 'text'),
    ('requests', 'status', 'text'), ('requests', 'reviewed_by', 'uuid'),
    ('requests', 'review_notes', 'text'), ('requests', 'reviewed_at', 'timestamptz'),
    ('requests', 'created_at', 'timestamptz'), ('requests', 'updated_at', 'timestamptz'),
    ('proposals', 'id', 'uuid'), ('proposals', 'org_id', 'uuid'),
    ('proposals', 'proposal_type', 'text'), ('proposals', 'proposed_by', 'uuid'),
    ('proposals', 'request_id', 'uuid'), ('proposals', 'item_name', 'text'),
    ('proposals', 'item_description', 'text'), ('proposals', 'item_category', 'text'),
    ('proposals', 'item_metadata', 'jsonb'), ('proposals', 'replacing_item_id', 'uuid'),
    ('proposals', 'status', 'text'), ('proposals', 'reviewed_by', 'uuid'),
    ('proposals', 'review_notes', 'text'), ('proposals', 'reviewed_at', 'timestamptz'),
    ('proposals', 'merged_at', 'timestamptz'), ('proposals', 'created_at', 'timestamptz'),
    ('proposals', 'updated_at', 'timestamptz'), ('proposals', 'item_price', 'numeric'),
    ('proposals', 'item_pricing_type', 'text'), ('proposals', 'item_product_url', 'text'),
    ('proposals', 'item_vendor', 'text'), ('proposals', 'item_sku', 'text'),
    ('audit_events', 'id', 'uuid'), ('audit_events', 'org_id', 'uuid'),
    ('audit_events', 'event_type', 'text'), ('audit_events', 'actor_id', 'uuid'),
    ('audit_events', 'resource_type', 'text'), ('audit_events', 'resource_id', 'uuid'),
    ('audit_events', 'metadata', 'jsonb'), ('audit_events', 'created_at', 'timestamptz')
),
actual as (
    select c.relname::text as table_name, a.attname::text as column_name,
           t.typname::text as type_name
    from pg_attribute a
    join pg_class c on c.oid = a.attrelid
    join pg_type t on t.oid = a.atttypid
    where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
      and c.relname in (select distinct table_name from expected)
      and a.attnum > 0 and not a.attisdropped
),
expected_functions(signature) as (values
    ('user_org_id()'), ('user_role(uuid)'), ('has_role(text[])'),
    ('search_catalog_items(vector,uuid,double precision,integer)'),
    ('get_item_embedding(uuid)'),
    ('create_catalog_item_with_embedding(uuid,text,text,text,uuid,text,numeric,text,text,text,text,jsonb,vector)')
),
actual_functions as (
    select regexp_replace(p.oid::regprocedure::text, '^public\.', '') as signature
    from pg_proc p where p.pronamespace = 'public'::regnamespace
)
select format('missing table %s', e.table_name)
from (select distinct table_name from expected) e
where to_regclass('public.' || e.table_name) is null
union all
select format('missing column %s.%s (%s)', e.table_name, e.column_name, e.type_name)
from expected e
left join actual a using (table_name, column_name)
where a.column_name is null and to_regclass('public.' || e.table_name) is not null
union all
select format('column %s.%s is %s, the original''s is %s', e.table_name, e.column_name, a.type_name, e.type_name)
from expected e join actual a using (table_name, column_name)
where a.type_name <> e.type_name
union all
select format('column %s.%s is not the original''s', a.table_name, a.column_name)
from actual a left join expected e using (table_name, column_name)
where e.column_name is null
union all
select format('missing function %s', f.signature)
from expected_functions f
where not exists (
    select 1 from actual_functions a
    where a.signature = f.signature
       or a.signature = replace(f.signature, 'vector', 'extensions.vector')
)
union all
select 'row-level security is off on ' || relname
from pg_class
where relnamespace = 'public'::regnamespace and relkind = 'r'
  and relname in (select distinct table_name from expected) and not relrowsecurity;
