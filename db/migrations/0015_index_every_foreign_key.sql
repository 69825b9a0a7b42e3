-- Deleting an item (or an org, which deletes its items) ran a foreign-key
-- action per deleted item: `replacement_item_id` and
-- `proposals.replacing_item_id` are set to null wherever they name it, and
-- neither column had an index, so each action scanned the whole table.
-- Deleting an org of 20,000 items among 185,000 had not finished after
-- seven minutes. Partial indexes: both columns are null for nearly every
-- row, and the foreign-key action's `$1 = column` only matches non-null
-- values, so the planner uses them.

create index if not exists idx_catalog_items_replacement_item_id
    on catalog_items (replacement_item_id) where replacement_item_id is not null;

create index if not exists idx_proposals_replacing_item_id
    on proposals (replacing_item_id) where replacing_item_id is not null;
