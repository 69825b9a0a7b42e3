-- The original CatalogAI schema (tables and indexes), as its Supabase migrations
-- left it: product fields on catalog items and proposals, 768-dimension
-- embeddings. Column names and types are the interface existing clients and
-- databases depend on; do not change them here, add a migration instead.

create extension if not exists vector;

create table orgs (
    id uuid primary key default gen_random_uuid(),
    name text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- Which organisation a Supabase Auth user belongs to, and as what.
create table org_memberships (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references orgs (id) on delete cascade,
    user_id uuid not null,
    role text not null check (role in ('requester', 'reviewer', 'admin')),
    created_at timestamptz not null default now(),
    unique (org_id, user_id)
);

create table catalog_items (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references orgs (id) on delete cascade,
    name text not null,
    description text,
    category text,
    metadata jsonb default '{}',
    status text not null default 'active' check (status in ('active', 'deprecated')),
    replacement_item_id uuid references catalog_items (id) on delete set null,
    created_by uuid not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    price numeric(10, 2),
    pricing_type text check (pricing_type in ('one_time', 'monthly', 'yearly', 'usage_based')),
    product_url text,
    vendor text,
    sku text
);

comment on column catalog_items.metadata is 'Flexible product attributes: brand, specs, features.';
comment on column catalog_items.price is 'Base price in USD; for usage_based pricing, the per-unit price.';

-- One embedding per item; model_version says which model made it, so items
-- embedded by a retired model can be found and re-embedded.
create table catalog_item_embeddings (
    id uuid primary key default gen_random_uuid(),
    catalog_item_id uuid not null references catalog_items (id) on delete cascade,
    embedding vector(768),
    model_version text not null default 'models/text-embedding-004',
    created_at timestamptz not null default now(),
    unique (catalog_item_id)
);

-- Procurement workflow tables: outside the port's first scope, kept so the
-- schema matches databases created by the original service.
create table requests (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references orgs (id) on delete cascade,
    created_by uuid not null,
    search_query text not null,
    search_results jsonb,
    justification text,
    status text not null default 'pending' check (status in ('pending', 'approved', 'rejected')),
    reviewed_by uuid,
    review_notes text,
    reviewed_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table proposals (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references orgs (id) on delete cascade,
    proposal_type text not null check (proposal_type in ('ADD_ITEM', 'REPLACE_ITEM', 'DEPRECATE_ITEM')),
    proposed_by uuid not null,
    request_id uuid references requests (id) on delete set null,
    item_name text,
    item_description text,
    item_category text,
    item_metadata jsonb default '{}',
    replacing_item_id uuid references catalog_items (id) on delete set null,
    status text not null default 'pending' check (status in ('pending', 'approved', 'rejected', 'merged')),
    reviewed_by uuid,
    review_notes text,
    reviewed_at timestamptz,
    merged_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    item_price numeric(10, 2),
    item_pricing_type text check (item_pricing_type in ('one_time', 'monthly', 'yearly', 'usage_based')),
    item_product_url text,
    item_vendor text,
    item_sku text
);

create table audit_events (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references orgs (id) on delete cascade,
    event_type text not null,
    actor_id uuid not null,
    resource_type text not null,
    resource_id uuid not null,
    metadata jsonb default '{}',
    created_at timestamptz not null default now()
);

create index idx_org_memberships_org_id on org_memberships (org_id);
create index idx_org_memberships_user_id on org_memberships (user_id);

create index idx_catalog_items_org_id on catalog_items (org_id);
create index idx_catalog_items_status on catalog_items (status);
create index idx_catalog_items_category on catalog_items (category);
create index idx_catalog_items_created_at on catalog_items (created_at desc);
create index idx_catalog_items_vendor on catalog_items (vendor);
create index idx_catalog_items_pricing_type on catalog_items (pricing_type);
create index idx_catalog_items_sku on catalog_items (sku);

create index idx_requests_org_id on requests (org_id);
create index idx_requests_created_by on requests (created_by);
create index idx_requests_status on requests (status);
create index idx_requests_created_at on requests (created_at desc);

create index idx_proposals_org_id on proposals (org_id);
create index idx_proposals_status on proposals (status);
create index idx_proposals_request_id on proposals (request_id);
create index idx_proposals_created_at on proposals (created_at desc);

create index idx_audit_events_org_id on audit_events (org_id);
create index idx_audit_events_resource on audit_events (resource_type, resource_id);
create index idx_audit_events_created_at on audit_events (created_at desc);
