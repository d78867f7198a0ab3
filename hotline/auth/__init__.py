"""Who may do what: the ops API's bearer tokens and the agents' PINs."""
