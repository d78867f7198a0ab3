"""A caller's own words: a recording fetched, recognised and classified into desks."""
