-- Owner-only async results (issue 14): who submitted each stored ES|QL, EQL or SML search,
-- as the security step authenticated them (the user; an API key's searches are its owner's).
-- NULL: submitted while security was off; with security on such a search is nobody's to see.
ALTER TABLE searches ADD COLUMN owner TEXT;
