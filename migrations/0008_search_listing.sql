-- "My searches" (the web console, issue 16): what a stored ES|QL or EQL search was, for a list
-- of them. SML tasks keep theirs in background_tasks.
ALTER TABLE searches ADD COLUMN description TEXT;   -- the query text, as the task shows it
ALTER TABLE searches ADD COLUMN target TEXT;        -- the index named beside the query (EQL's path)
ALTER TABLE searches ADD COLUMN finished_ms INTEGER; -- when its end was stored
