-- PL/pgSQL switches a statement to a generic plan after five calls on a
-- connection. For the search that plan cannot know the org or the limit, and
-- chose to compute every stored vector's distance: through the API, p50 went
-- from 6 ms to 144 ms at 20,000 items once PostgREST's pooled connections
-- had each served five searches. Plan every call for its own arguments.
alter function search_catalog_items(vector, uuid, float, int)
    set plan_cache_mode = force_custom_plan;
