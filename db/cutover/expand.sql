-- Expand: what the original service needs on an upgraded database so that it
-- keeps working beside the port during a rolling cut-over, and can be gone
-- back to. scripts/migrate, taking over the original's database, applies it
-- in the transaction of every migration it runs (idempotent), so the
-- original's writes never stop; undone by db/cutover/contract.sql
-- (`scripts/migrate --finish-cutover`).
--
-- The original app writes requests and proposals straight through PostgREST
-- with the user's token (create request, review, create proposal, reject);
-- migrations 0013 and 0017 closed those writes, which the port makes through
-- its workflow functions. They are reopened here for exactly the columns the
-- original writes; its row-level security policies (0007's fast form of its
-- own) still decide which rows. Everything else the original calls is
-- already served: its four-argument search and thirteen-argument create
-- resolve to ours (the extra parameters have defaults), and so do its
-- four-argument merges, and the service role keeps its reads and writes.

grant insert (org_id, created_by, search_query, search_results, justification, status)
    on table public.requests to authenticated;
grant update (status, reviewed_by, review_notes, reviewed_at)
    on table public.requests to authenticated;
grant insert (org_id, proposal_type, proposed_by, request_id, item_name, item_description,
              item_category, item_metadata, replacing_item_id, status, item_price,
              item_pricing_type, item_product_url, item_vendor, item_sku)
    on table public.proposals to authenticated;
grant update (status, reviewed_by, review_notes, reviewed_at)
    on table public.proposals to authenticated;

insert into catalogai_meta.cutover (phase) values ('expanded')
on conflict (singleton) do update set phase = 'expanded', changed_at = now();
