-- The re-embed of every org after a model change (or after taking over the
-- original's database, whose vectors are `models/text-embedding-004`), run
-- by the server in the background (src/services/backfill.rs). The database
-- decides who runs it: one lease row per model, taken and renewed through
-- these functions, so replicas never re-embed at once and a replica that
-- dies hands over when its lease runs out. The row also carries the
-- progress every replica's readiness reports.
--
-- PostgREST does not serve catalogai_meta; the functions are the service
-- key's alone, and the table grants nothing to the API roles.

create table catalogai_meta.embedding_backfill (
    model_version text primary key check (length(model_version) between 1 and 200),
    holder        text check (length(holder) between 1 and 200),
    lease_until   timestamptz,
    items_total   bigint not null default 0 check (items_total >= 0),
    items_done    bigint not null default 0 check (items_done >= 0),
    items_failed  bigint not null default 0 check (items_failed >= 0),
    started_at    timestamptz,
    updated_at    timestamptz not null default now(),
    finished_at   timestamptz
);

-- Takes the lease for `p_lease_seconds` (1..3600): 'claimed' when the caller
-- holds it now (it was free, expired, or already the caller's), 'held' when
-- another holder's lease is live, 'finished' when this model's re-embed is
-- done and nothing needs taking.
create function public.catalog_embedding_backfill_claim(
    p_model_version text,
    p_holder text,
    p_lease_seconds integer
) returns text
language plpgsql volatile security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_row catalogai_meta.embedding_backfill;
begin
    if p_model_version is null or length(p_model_version) not between 1 and 200
       or p_holder is null or length(p_holder) not between 1 and 200
       or p_lease_seconds is null or p_lease_seconds not between 1 and 3600 then
        raise exception 'invalid backfill lease request' using errcode = '22023';
    end if;
    insert into catalogai_meta.embedding_backfill (model_version)
    values (p_model_version) on conflict (model_version) do nothing;
    select * into v_row from catalogai_meta.embedding_backfill
    where model_version = p_model_version for update;
    if v_row.finished_at is not null then
        return 'finished';
    end if;
    if v_row.holder is distinct from p_holder and v_row.lease_until > now() then
        return 'held';
    end if;
    update catalogai_meta.embedding_backfill
    set holder = p_holder,
        lease_until = now() + make_interval(secs => p_lease_seconds),
        started_at = coalesce(started_at, now()),
        updated_at = now()
    where model_version = p_model_version;
    return 'claimed';
end;
$$;

-- Renews the caller's lease and records its progress; `p_finished` ends the
-- re-embed (the lease is given up), `p_lease_seconds` 0 gives the lease up
-- without finishing (a replica shutting down). False when the caller does
-- not hold the lease any more: it must stop.
create function public.catalog_embedding_backfill_report(
    p_model_version text,
    p_holder text,
    p_lease_seconds integer,
    p_items_total bigint,
    p_items_done bigint,
    p_items_failed bigint,
    p_finished boolean
) returns boolean
language plpgsql volatile security definer set search_path = public, extensions, pg_temp
as $$
begin
    if p_lease_seconds is null or p_lease_seconds not between 0 and 3600
       or p_items_total < 0 or p_items_done < 0 or p_items_failed < 0 then
        raise exception 'invalid backfill report' using errcode = '22023';
    end if;
    update catalogai_meta.embedding_backfill
    set lease_until = case when p_finished or p_lease_seconds = 0 then null
                           else now() + make_interval(secs => p_lease_seconds) end,
        holder = case when p_finished or p_lease_seconds = 0 then null else holder end,
        items_total = coalesce(p_items_total, items_total),
        items_done = coalesce(p_items_done, items_done),
        items_failed = coalesce(p_items_failed, items_failed),
        finished_at = case when p_finished then now() end,
        updated_at = now()
    where model_version = p_model_version
      and holder = p_holder
      and finished_at is null;
    return found;
end;
$$;

-- Where this model's re-embed stands, for readiness: `not_started`,
-- `running` (a live lease), `paused` (started, no live lease: the next
-- replica to start resumes it) or `finished`.
create function public.catalog_embedding_backfill_status(p_model_version text)
returns table (state text, items_total bigint, items_done bigint, items_failed bigint,
               updated_at timestamptz)
language sql stable security definer set search_path = public, extensions, pg_temp
as $$
    select case
               when b.finished_at is not null then 'finished'
               when b.lease_until > now() then 'running'
               when b.started_at is not null then 'paused'
               else 'not_started'
           end,
           b.items_total, b.items_done, b.items_failed, b.updated_at
    from (select 1) one
    left join catalogai_meta.embedding_backfill b on b.model_version = p_model_version
$$;

-- The orgs with active items that have no embedding by `p_model_version`,
-- and how many: what the re-embed has left to do.
create function public.catalog_orgs_needing_embedding(p_model_version text)
returns table (org_id uuid, items bigint)
language sql stable set search_path = public, extensions, pg_temp
as $$
    select ci.org_id, count(*)
    from catalog_items ci
    left join catalog_item_embeddings cie on cie.catalog_item_id = ci.id
    where ci.status = 'active'
      and (cie.embedding is null or cie.model_version is distinct from p_model_version)
    group by ci.org_id
    order by ci.org_id
$$;

revoke execute on function public.catalog_embedding_backfill_claim(text, text, integer) from public, anon, authenticated;
revoke execute on function public.catalog_embedding_backfill_report(text, text, integer, bigint, bigint, bigint, boolean) from public, anon, authenticated;
revoke execute on function public.catalog_embedding_backfill_status(text) from public, anon, authenticated;
revoke execute on function public.catalog_orgs_needing_embedding(text) from public, anon, authenticated;
grant execute on function public.catalog_embedding_backfill_claim(text, text, integer) to service_role;
grant execute on function public.catalog_embedding_backfill_report(text, text, integer, bigint, bigint, bigint, boolean) to service_role;
grant execute on function public.catalog_embedding_backfill_status(text) to service_role;
grant execute on function public.catalog_orgs_needing_embedding(text) to service_role;
