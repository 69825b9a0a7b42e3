-- An upload holds at most 1,000,000 rows, the largest IMPORT_MAX_ROWS a
-- deployment may set. The server refuses a file past its own setting before
-- this; the cap is for an admin who stages rows straight through PostgREST,
-- who could otherwise fill catalog_import_rows without end. Past it a batch
-- is refused whole (CA413, which PostgREST answers as 400 with that code).
--
-- The rows staged so far are counted on the job (a count of the rows would
-- cost a scan per batch); the job's row lock orders concurrent batches of
-- one upload, so the count is exact.

alter table public.catalog_imports
    add column staged integer not null default 0 check (staged between 0 and 1000000);

create or replace function public.catalog_import_stage(p_import_id uuid, p_rows jsonb)
returns integer
language plpgsql volatile security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_job catalog_imports := catalogai_meta.import_being_received(p_import_id);
    v_count integer;
begin
    if jsonb_typeof(p_rows) is distinct from 'array' or jsonb_array_length(p_rows) > 1000 then
        raise exception 'rows must be an array of at most 1000' using errcode = '22023';
    end if;
    v_count := jsonb_array_length(p_rows);
    update catalog_imports set staged = staged + v_count, updated_at = now()
    where id = v_job.id and staged + v_count <= 1000000;
    if not found then
        raise exception 'an import holds at most 1000000 rows' using errcode = 'CA413';
    end if;
    insert into catalog_import_rows (import_id, line, item)
    select v_job.id, (r ->> 'line')::integer, r -> 'item'
    from jsonb_array_elements(p_rows) r;
    return v_count;
end;
$$;
