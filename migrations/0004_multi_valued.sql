-- The field paths whose column has ever held a multi-value (a JSON array blob), as a JSON
-- array: a column not listed holds only scalars or NULL, so a query may run on it in SQL.
-- NULL means not yet known (an index made before this column): computed from the table
-- when the database is next opened.
ALTER TABLE indices ADD COLUMN multi_valued TEXT;
