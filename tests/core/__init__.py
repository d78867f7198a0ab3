"""The pure core, step by step over plain data: no HTTP, no database, no clock."""
