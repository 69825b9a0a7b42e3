-- Which phase of taking over the original's database this one is in, for
-- readiness: `expanded` while the original service may still run against it
-- (scripts/migrate opened its direct writes, db/cutover/expand.sql), or
-- `contracted` (a database of ours from the start, or after
-- `scripts/migrate --finish-cutover`). scripts/migrate keeps the phase in
-- catalogai_meta.cutover, which PostgREST does not serve; this function
-- reads it for the service key only.

create or replace function public.catalogai_cutover_phase() returns text
language plpgsql stable security definer set search_path = public, extensions, pg_temp
as $$
declare
    v_phase text;
begin
    if to_regclass('catalogai_meta.cutover') is not null then
        execute 'select phase from catalogai_meta.cutover' into v_phase;
    end if;
    return coalesce(v_phase, 'contracted');
end;
$$;

revoke execute on function public.catalogai_cutover_phase() from public, anon, authenticated;
grant execute on function public.catalogai_cutover_phase() to service_role;
