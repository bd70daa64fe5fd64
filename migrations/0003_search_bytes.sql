-- The bytes of result rows each stored search holds, so the cap on stored results
-- (max_stored_search_bytes) is one sum over a small table rather than over every row.
ALTER TABLE searches ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE searches SET bytes = (SELECT coalesce(sum(length(row)), 0) FROM search_rows WHERE search_id = searches.id);
