"""The ops API (the `/api` sub-application): bearer tokens, JSON, errors with stable ids."""
