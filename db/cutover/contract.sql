-- Contract: the original service is gone; close what db/cutover/expand.sql
-- opened for it, so requests and proposals change only through the
-- workflow functions again (their rules, audit and locking). Run by
-- `scripts/migrate --finish-cutover`; after it the original's create
-- request, review, create proposal and reject answer 403.

revoke insert, update on table public.requests, public.proposals from authenticated;

insert into catalogai_meta.cutover (phase) values ('contracted')
on conflict (singleton) do update set phase = 'contracted', changed_at = now();
